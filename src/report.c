/* report.c: where reports go, statistics at exit, statistics on a signal.
 *
 * Owns: the report destination (HEAPKIT_REPORT_FILE, with %p for the pid,
 * or a copy of stderr taken at start), the buffered writer the reports
 * use (hk_out_t: no allocation), statistics at exit (HEAPKIT_SHOW_STATS,
 * as text or HEAPKIT_REPORT_JSON), and the statistics service
 * (HEAPKIT_STATS_SIGNAL=N: the process answers signal N by writing its
 * statistics as JSON to /tmp/heapkit-stats.<pid>.json, for
 * `heapkit stats PID`).
 * Calls: stats.c (hk_stats_print), the C library.
 *
 * Why a copy of fd 2: many programs (every gnulib one) close stderr in an
 * atexit handler of their own, which runs before ours since ours was
 * registered first.
 * Why a thread for the signal: the statistics take heap locks, which the
 * interrupted thread may hold; the handler only writes a byte to a pipe,
 * and a thread of ours, blocked on the pipe, does the rest.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal/debug.h"

static int stderr_copy = -1;

/* Expands %p in HEAPKIT_REPORT_FILE to the pid. */
static void report_path(char *out, size_t n) {
    const char *s = _hk_options.report_file;
    size_t len = 0;
    for (; *s && len + 24 < n; s++) {
        if (s[0] == '%' && s[1] == 'p') {
            len += (size_t)snprintf(out + len, n - len, "%d", (int)getpid());
            s++;
        } else {
            out[len++] = *s;
        }
    }
    out[len] = 0;
}

void _hk_out_open(hk_out_t *o, bool error) {
    o->len = 0;
    o->fd = -1;
    o->owned = false;
    if (_hk_options.report_file) {
        char path[512];
        report_path(path, sizeof path);
        o->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        o->owned = o->fd >= 0;
    }
    if (o->fd < 0) o->fd = error || stderr_copy < 0 ? 2 : stderr_copy;
}

static void out_flush(hk_out_t *o) {
    size_t off = 0;
    while (off < o->len) {
        ssize_t w = write(o->fd, o->buf + off, o->len - off);
        if (w <= 0) break;
        off += (size_t)w;
    }
    o->len = 0;
}

void _hk_out_printf(hk_out_t *o, const char *fmt, ...) {
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n <= 0) return;
    size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    if (o->len + len > sizeof o->buf) out_flush(o);
    memcpy(o->buf + o->len, line, len);
    o->len += len;
}

void _hk_out_close(hk_out_t *o) {
    out_flush(o);
    if (o->owned) close(o->fd);
}

/* ---- Statistics at exit -------------------------------------------------- */

static void print_stats_at_exit(void) {
    hk_out_t o;
    _hk_out_open(&o, false);
    int fd = fcntl(o.fd, F_DUPFD_CLOEXEC, 3);
    _hk_out_close(&o);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (f == NULL) {
        if (fd >= 0) close(fd);
        return;
    }
    hk_stats_print(f, _hk_options.report_json != 0);
    fclose(f);
}

/* ---- Statistics on a signal ---------------------------------------------- */

static int signal_pipe[2] = {-1, -1};

static void on_stats_signal(int sig) {
    (void)sig;
    int saved = errno;
    char c = 1;
    ssize_t w = signal_pipe[1] >= 0 ? write(signal_pipe[1], &c, 1) : 0;
    (void)w;
    errno = saved;
}

static void write_stats_file(void) {
    char path[64], tmp[80];
    snprintf(path, sizeof path, "/tmp/heapkit-stats.%d.json", (int)getpid());
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return;
    FILE *f = fdopen(fd, "w");
    if (f == NULL) {
        close(fd);
        return;
    }
    hk_stats_print(f, true);
    if (fclose(f) == 0) rename(tmp, path);
    else unlink(tmp);
}

static void *stats_service(void *arg) {
    (void)arg;
    /* This thread never takes the signal itself: it is the one that answers. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, (int)_hk_options.stats_signal);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    for (;;) {
        char c[16];
        ssize_t n = read(signal_pipe[0], c, sizeof c);
        if (n > 0) write_stats_file();
        else if (n == 0 || errno != EINTR) return NULL;
    }
}

static bool start_service_thread(void) {
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &attr, stats_service, NULL);
    pthread_attr_destroy(&attr);
    return rc == 0;
}

/* A forked child has no service thread (fork copies only the caller):
 * start its own, so `heapkit stats` works on children that do not exec. */
static void restart_in_child(void) {
    if (signal_pipe[0] < 0) return;
    /* A pipe of its own: the parent's thread reads the inherited one. */
    close(signal_pipe[0]);
    close(signal_pipe[1]);
    if (pipe2(signal_pipe, O_CLOEXEC) != 0 || !start_service_thread())
        signal_pipe[0] = signal_pipe[1] = -1;
}

static void start_stats_service(void) {
    int sig = (int)_hk_options.stats_signal;
    if (sig <= 0 || sig >= NSIG || sig == SIGKILL || sig == SIGSTOP) {
        _hk_warn(true, "HEAPKIT_STATS_SIGNAL=%d is not a signal that can be caught; ignored", sig);
        return;
    }
    if (pipe2(signal_pipe, O_CLOEXEC) != 0) return;
    if (!start_service_thread()) {
        close(signal_pipe[0]);
        close(signal_pipe[1]);
        signal_pipe[0] = signal_pipe[1] = -1;
        return;
    }
    pthread_atfork(NULL, NULL, restart_in_child);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stats_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

void _hk_report_init(void) {
    /* Only when a report at exit may come: a program may count on its
     * next descriptor number. */
    if (_hk_options.show_stats || HK_DEBUG_MODE) stderr_copy = fcntl(2, F_DUPFD_CLOEXEC, 3);
    if (_hk_options.show_stats) atexit(print_stats_at_exit);
    if (_hk_options.stats_signal) start_stats_service();
}
