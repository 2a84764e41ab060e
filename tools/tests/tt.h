/* tt.h: running programs from the heapkit command's tests.
 *
 * Owns: tt_run (a command to completion, stdout and stderr captured, an
 * environment change applied in the child), tt_start / tt_line / tt_stop /
 * tt_wait (a background process that says "ready ..." on stdout and runs
 * until its stdin closes), "key=value" fields of such a line, and the skip exit.
 * Checks come from tests/hk_test.h (CHECK, REQUIRE, hk_test_done).
 * Waits are bounded only so that a broken build fails instead of hanging;
 * no test asserts a duration.
 */
#ifndef HKT_TT_H
#define HKT_TT_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hk_test.h"

#define TT_WAIT_MS 60000

typedef struct {
    char *out, *err;
    size_t outlen, errlen;
    int status; /* exit code, 128+signal, -1 when it could not start */
} tt_result_t;

static inline int tt_status(int st) {
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return -1;
}

/* env: "NAME=VALUE" sets, "NAME" unsets; NULL-terminated (or NULL). */
static inline void tt_apply_env(char *const env[]) {
    for (size_t i = 0; env && env[i]; i++) {
        char *eq = strchr(env[i], '=');
        if (eq) {
            char *name = strndup(env[i], (size_t)(eq - env[i]));
            setenv(name, eq + 1, 1);
            free(name);
        } else {
            unsetenv(env[i]);
        }
    }
}

static inline void tt_append(char **buf, size_t *len, const char *data, size_t n) {
    *buf = realloc(*buf, *len + n + 1);
    if (*buf == NULL) abort();
    memcpy(*buf + *len, data, n);
    *len += n;
    (*buf)[*len] = 0;
}

/* Runs argv (argv[0] a path) to completion, stdin from /dev/null. */
static inline int tt_run(char *const argv[], char *const env[], tt_result_t *r) {
    memset(r, 0, sizeof *r);
    r->out = calloc(1, 1);
    r->err = calloc(1, 1);
    r->status = -1;
    int o[2], e[2];
    if (pipe(o) != 0 || pipe(e) != 0) return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        int null = open("/dev/null", O_RDONLY);
        dup2(null, 0);
        dup2(o[1], 1);
        dup2(e[1], 2);
        close(o[0]), close(e[0]), close(o[1]), close(e[1]);
        tt_apply_env(env);
        execv(argv[0], argv);
        fprintf(stderr, "tt_run: exec %s: %s\n", argv[0], strerror(errno));
        _exit(255);
    }
    close(o[1]);
    close(e[1]);
    struct pollfd pf[2] = {{.fd = o[0], .events = POLLIN}, {.fd = e[0], .events = POLLIN}};
    int open_fds = 2;
    while (open_fds > 0) {
        int n = poll(pf, 2, TT_WAIT_MS);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            fprintf(stderr, "tt_run: %s produced nothing for %d s; killing it\n", argv[0],
                    TT_WAIT_MS / 1000);
            kill(pid, SIGKILL);
            break;
        }
        for (int i = 0; i < 2; i++) {
            if (pf[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char buf[8192];
            ssize_t got = read(pf[i].fd, buf, sizeof buf);
            if (got > 0) {
                if (i == 0) tt_append(&r->out, &r->outlen, buf, (size_t)got);
                else tt_append(&r->err, &r->errlen, buf, (size_t)got);
            } else if (got == 0 || errno != EINTR) {
                close(pf[i].fd);
                pf[i].fd = -1;
                open_fds--;
            }
        }
    }
    for (int i = 0; i < 2; i++)
        if (pf[i].fd >= 0) close(pf[i].fd);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return -1;
    r->status = tt_status(st);
    return r->status;
}

static inline void tt_free(tt_result_t *r) {
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

/* Prints what a command wrote, for the log of a failed check. */
static inline void tt_show(const char *what, const tt_result_t *r) {
    fprintf(stderr, "---- %s: status %d\n---- stdout:\n%s---- stderr:\n%s----\n", what, r->status,
            r->out, r->err);
}

/* ---- Background processes ---------------------------------------------- */

typedef struct {
    pid_t pid;
    int in, out;      /* its stdin (ours to close), its stdout */
    char line[4096];  /* the last line read */
} tt_bg_t;

static inline bool tt_start(char *const argv[], char *const env[], tt_bg_t *bg) {
    int i[2], o[2];
    memset(bg, 0, sizeof *bg);
    if (pipe2(i, O_CLOEXEC) != 0 || pipe2(o, O_CLOEXEC) != 0) return false;
    fflush(NULL);
    bg->pid = fork();
    if (bg->pid < 0) return false;
    if (bg->pid == 0) {
        dup2(i[0], 0);
        dup2(o[1], 1);
        tt_apply_env(env);
        execv(argv[0], argv);
        fprintf(stderr, "tt_start: exec %s: %s\n", argv[0], strerror(errno));
        _exit(255);
    }
    close(i[0]);
    close(o[1]);
    bg->in = i[1];
    bg->out = o[0];
    return true;
}

/* The next line of its stdout (without the newline); false at end of file
 * or when none comes in time. */
static inline bool tt_line(tt_bg_t *bg) {
    size_t n = 0;
    for (;;) {
        struct pollfd pf = {.fd = bg->out, .events = POLLIN};
        int r = poll(&pf, 1, TT_WAIT_MS);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        char c;
        ssize_t got = read(bg->out, &c, 1);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return false;
        if (c == '\n') break;
        if (n + 1 < sizeof bg->line) bg->line[n++] = c;
    }
    bg->line[n] = 0;
    return true;
}

/* Closes its stdin and waits for it; its status. */
static inline int tt_stop(tt_bg_t *bg) {
    close(bg->in);
    char buf[512];
    while (read(bg->out, buf, sizeof buf) > 0) {
    }
    close(bg->out);
    int st;
    while (waitpid(bg->pid, &st, 0) < 0)
        if (errno != EINTR) return -1;
    return tt_status(st);
}

/* Waits for it to end by itself (its stdin still open), then closes the
 * pipes; its status. */
static inline int tt_wait(tt_bg_t *bg) {
    int st;
    while (waitpid(bg->pid, &st, 0) < 0)
        if (errno != EINTR) return -1;
    close(bg->in);
    close(bg->out);
    return tt_status(st);
}

/* The value of "key=value" in a line of words, into a static buffer;
 * NULL when absent. */
static inline const char *tt_field(const char *line, const char *key) {
    static char value[1024];
    size_t k = strlen(key);
    for (const char *p = line; (p = strstr(p, key)) != NULL; p++) {
        if ((p == line || p[-1] == ' ') && p[k] == '=') {
            size_t n = strcspn(p + k + 1, " ");
            if (n >= sizeof value) n = sizeof value - 1;
            memcpy(value, p + k + 1, n);
            value[n] = 0;
            return value;
        }
    }
    return NULL;
}

/* Copies s (or "" for NULL) into buf, cut to fit. */
static inline void tt_copy(char *buf, size_t size, const char *s) {
    size_t n = s ? strlen(s) : 0;
    if (n >= size) n = size - 1;
    memcpy(buf, s ? s : "", n);
    buf[n] = 0;
}

static inline bool tt_contains(const char *hay, const char *needle) {
    return hay && strstr(hay, needle) != NULL;
}

/* Ends the test as skipped: ctest sees exit 77 (SKIP_RETURN_CODE). */
static inline void tt_skip(const char *fmt, ...) {
    if (hk_test_failed) {
        fprintf(stderr, "not skipping: checks failed before the skip\n");
        exit(hk_test_done());
    }
    va_list ap;
    va_start(ap, fmt);
    printf("SKIP: ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
    exit(77);
}

#endif
