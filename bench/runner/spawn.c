/* spawn.c: runs one child and measures it. It owns fork/exec, the
 * environment the child sees (LD_PRELOAD set to the allocator, or removed
 * for glibc), the capture of its stdout and stderr, the timeout, and the
 * resource usage that wait4() reports for exactly that child: user and
 * system CPU time (all its threads), peak RSS and page faults.
 *
 * Real programs (realprog.c) also get extra environment variables, and a
 * server they start in the background is registered with hkb_spawn_guard()
 * so that an interrupted runner still kills it.
 *
 * Peak RSS note: Linux carries the fork-time RSS of the runner into the
 * child's ru_maxrss (the exec records the old image's high-water mark), so
 * the runner keeps itself small; the workloads' own VmHWM is recorded too.
 */
#define _GNU_SOURCE
#include "hkbench.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* The child being run, so that Ctrl-C on the runner also stops it (it has
 * its own process group and would not get the terminal's signal). */
static volatile pid_t current_child, guarded_child;

static void on_signal(int sig) {
    pid_t p = current_child, g = guarded_child;
    if (p > 0) kill(-p, SIGKILL);
    if (g > 0) kill(-g, SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

void hkb_spawn_guard(int pgid) { guarded_child = pgid; }

void hkb_spawn_init(void) {
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The child's environment: ours, minus any LD_PRELOAD (an inherited one
 * would stack a second allocator under every run), plus the one we want.
 * `extra` (NULL-terminated, may be NULL) adds "NAME=VALUE" entries, which
 * replace inherited ones of the same name, and removes with "-PREFIX"
 * every inherited variable whose name starts with PREFIX. */
static int env_removed(const char *var, char *const extra[]) {
    if (!strncmp(var, "LD_PRELOAD=", 11)) return 1;
    for (int i = 0; extra && extra[i]; i++) {
        const char *e = extra[i];
        if (e[0] == '-') {
            if (!strncmp(var, e + 1, strlen(e + 1))) return 1;
        } else {
            size_t n = strcspn(e, "=");
            if (!strncmp(var, e, n) && var[n] == '=') return 1;
        }
    }
    return 0;
}

static char **child_env(const char *preload, char *const extra[], char *preload_buf, size_t cap) {
    size_t n = 0, ne = 0;
    while (environ[n]) n++;
    while (extra && extra[ne]) ne++;
    char **env = calloc(n + ne + 2, sizeof *env);
    if (!env) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!env_removed(environ[i], extra)) env[k++] = environ[i];
    for (size_t i = 0; i < ne; i++)
        if (extra[i][0] != '-' && strchr(extra[i], '=')) env[k++] = extra[i];
    if (preload && *preload) {
        snprintf(preload_buf, cap, "LD_PRELOAD=%s", preload);
        env[k++] = preload_buf;
    }
    env[k] = NULL;
    return env;
}

char **hkb_spawn_environ(const char *preload, char *const extra[], char *preload_buf, size_t cap) {
    return child_env(preload, extra, preload_buf, cap);
}

int hkb_spawn(char *const argv[], const char *preload, double timeout_s, hkb_child_t *c) {
    return hkb_spawn_env(argv, preload, NULL, timeout_s, c);
}

int hkb_spawn_env(char *const argv[], const char *preload, char *const extra_env[], double timeout_s,
                  hkb_child_t *c) {
    memset(c, 0, sizeof *c);
    c->exit_code = -1;
    char preload_buf[2 * PATH_MAX + 16];
    char **env = child_env(preload, extra_env, preload_buf, sizeof preload_buf);
    int po[2], pe[2];
    if (!env || pipe2(po, O_CLOEXEC) != 0) {
        free(env);
        return -1;
    }
    if (pipe2(pe, O_CLOEXEC) != 0) {
        close(po[0]);
        close(po[1]);
        free(env);
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    double t0 = now_s();
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(po[0]); close(po[1]); close(pe[0]); close(pe[1]);
        free(env);
        errno = e;
        return -1;
    }
    if (pid == 0) {
        /* Its own process group, so a timeout kills everything it started. */
        setpgid(0, 0);
        /* Nothing to read: a program that would wait on a terminal gets EOF. */
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0) {
            dup2(null, 0);
            if (null > 2) close(null);
        }
        dup2(po[1], 1);
        dup2(pe[1], 2);
        execve(argv[0], argv, env);
        dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid); /* also here: whichever runs first */
    current_child = pid;
    c->pid = pid;
    close(po[1]);
    close(pe[1]);
    free(env);

    size_t cap = 1 << 16;
    c->out = malloc(cap);
    struct pollfd pf[2] = { { po[0], POLLIN, 0 }, { pe[0], POLLIN, 0 } };
    int open_fds = 2;
    double deadline = t0 + timeout_s;
    while (open_fds > 0) {
        double left = deadline - now_s();
        if (timeout_s > 0 && left <= 0) {
            c->timed_out = 1;
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            break;
        }
        int ms = timeout_s > 0 ? (int)(left * 1000) + 1 : -1;
        int r = poll(pf, 2, ms);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) break;
        for (int i = 0; i < 2; i++) {
            if (pf[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char buf[8192];
            ssize_t n = read(pf[i].fd, buf, sizeof buf);
            if (n <= 0) {
                if (n < 0 && errno == EINTR) continue;
                close(pf[i].fd);
                pf[i].fd = -1;
                open_fds--;
                continue;
            }
            if (i == 0 && c->out) {
                /* Keep at most 64 MiB of output: far more than any workload prints. */
                if (c->out_len + (size_t)n + 1 > cap && cap < (64u << 20)) {
                    while (c->out_len + (size_t)n + 1 > cap) cap *= 2;
                    char *nb = realloc(c->out, cap);
                    if (!nb) continue;
                    c->out = nb;
                }
                if (c->out_len + (size_t)n + 1 <= cap) {
                    memcpy(c->out + c->out_len, buf, (size_t)n);
                    c->out_len += (size_t)n;
                }
            } else if (i == 1) {
                size_t room = sizeof c->err - 1 - c->err_len;
                size_t k = (size_t)n < room ? (size_t)n : room;
                memcpy(c->err + c->err_len, buf, k);
                c->err_len += k;
            }
        }
    }
    for (int i = 0; i < 2; i++)
        if (pf[i].fd >= 0) close(pf[i].fd);
    int status = 0;
    while (wait4(pid, &status, 0, &c->ru) < 0 && errno == EINTR) {
    }
    current_child = 0;
    c->wall_s = now_s() - t0;
    if (c->out) c->out[c->out_len] = 0;
    c->err[c->err_len] = 0;
    if (WIFEXITED(status)) {
        c->exit_code = WEXITSTATUS(status);
        c->exec_failed = c->exit_code == 127 && strstr(c->err, "exec ") != NULL;
    } else if (WIFSIGNALED(status)) {
        c->signal = WTERMSIG(status);
    }
    return 0;
}

void hkb_child_free(hkb_child_t *c) {
    free(c->out);
    c->out = NULL;
}

/* A line made only of '=', '-', '*' and blanks says nothing (ASan opens
 * its report with a row of '='). */
static int banner_line(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!strchr("=-* \t\r", s[i])) return 0;
    return 1;
}

void hkb_first_line(const char *text, char *out, size_t cap) {
    const char *s = text ? text : "";
    for (;;) {
        size_t n = strcspn(s, "\r\n");
        if (!banner_line(s, n)) {
            snprintf(out, cap, "%.*s", (int)n, s);
            return;
        }
        if (!s[n]) {
            snprintf(out, cap, "%s", "");
            return;
        }
        s += n + 1;
    }
}

int hkb_kv(const char *line, const char *key, char *val, size_t cap) {
    size_t kl = strlen(key);
    const char *end = strchr(line, '\n');
    if (!end) end = line + strlen(line);
    for (const char *p = line; p < end; p++) {
        if ((p == line || p[-1] == ' ') && (size_t)(end - p) > kl && !strncmp(p, key, kl) && p[kl] == '=') {
            const char *v = p + kl + 1, *e;
            if (*v == '"') {
                v++;
                e = memchr(v, '"', (size_t)(end - v));
                if (!e) e = end;
            } else {
                e = v;
                while (e < end && *e != ' ') e++;
            }
            size_t n = (size_t)(e - v);
            if (n >= cap) n = cap - 1;
            memcpy(val, v, n);
            val[n] = 0;
            return 1;
        }
    }
    return 0;
}

/* Same file after symlinks (libfoo.so.2 -> libfoo.so.2.0.1). */
int hkb_same_file(const char *a, const char *b) {
    struct stat sa, sb;
    if (stat(a, &sa) != 0 || stat(b, &sb) != 0) return 0;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}
