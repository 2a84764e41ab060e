/* ovr.h: helpers for the override tests (tests/override).
 *
 * Every test here is built twice from the same source: once linked against
 * libheapkit.so (target_link_libraries(... heapkit)), once as an unmodified
 * program that knows nothing of heapkit and is run with
 * LD_PRELOAD=libheapkit.so (OVR_PRELOAD is defined). So the tests never call
 * an hk_ function by name: they look the few they need up at run time with
 * dlsym, which works the same both ways, and fail loudly when heapkit is not
 * in the process. heapkit.h is included for its types only.
 *
 * The programs are compiled with -fno-builtin so that the compiler does not
 * fold malloc/free pairs away; sink() hides a pointer from the optimiser.
 */
#ifndef OVR_H
#define OVR_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "heapkit.h"
#include "hk_test.h"

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)

#ifdef OVR_PRELOAD
#define OVR_MODE "preload"
#else
#define OVR_MODE "linked"
#endif

/* ---- heapkit's API, found at run time ------------------------------------ */
typedef struct {
    hk_heap_t *(*heap_default)(void);
    bool (*heap_owns)(hk_heap_t *, const void *);
    size_t (*usable_size)(const void *);
    void (*stats)(hk_stats_t *);
    void (*collect)(bool);
} ovr_hk_t;

static ovr_hk_t ovr_hk;

/* Finds heapkit's API; exits with a failure when heapkit is not loaded. */
static inline void ovr_init(void) {
    ovr_hk.heap_default = (hk_heap_t * (*)(void)) dlsym(RTLD_DEFAULT, "hk_heap_default");
    ovr_hk.heap_owns = (bool (*)(hk_heap_t *, const void *))dlsym(RTLD_DEFAULT, "hk_heap_owns");
    ovr_hk.usable_size = (size_t(*)(const void *))dlsym(RTLD_DEFAULT, "hk_usable_size");
    ovr_hk.stats = (void (*)(hk_stats_t *))dlsym(RTLD_DEFAULT, "hk_stats");
    ovr_hk.collect = (void (*)(bool))dlsym(RTLD_DEFAULT, "hk_collect");
    if (!ovr_hk.heap_default || !ovr_hk.heap_owns || !ovr_hk.usable_size || !ovr_hk.stats ||
        !ovr_hk.collect) {
        fprintf(stderr, "heapkit is not in this process (mode %s, LD_PRELOAD=%s)\n", OVR_MODE,
                getenv("LD_PRELOAD") ? getenv("LD_PRELOAD") : "(unset)");
        printf("0 passed, 1 failed\n");
        exit(1);
    }
}

/* True when p is a live block of the calling thread's heapkit heap. */
static inline bool ovr_owned(const void *p) {
    return p != NULL && ovr_hk.heap_owns(ovr_hk.heap_default(), p);
}

/* True when the function at address fn is defined in libheapkit.so (so the
 * dynamic linker bound the program's symbol to heapkit, not to glibc). */
static inline bool ovr_from_heapkit(const void *fn, const char *name) {
    Dl_info info;
    memset(&info, 0, sizeof info);
    if (!fn || !dladdr(fn, &info) || !info.dli_fname) {
        fprintf(stderr, "%s: no symbol information\n", name);
        return false;
    }
    if (strstr(info.dli_fname, "libheapkit") == NULL) {
        fprintf(stderr, "%s is bound to %s (%s), not to libheapkit.so\n", name, info.dli_fname,
                info.dli_sname ? info.dli_sname : "?");
        return false;
    }
    return true;
}

/* Hides a pointer from the optimiser (no folding of malloc/free pairs). */
static inline void *sink(void *p) {
    __asm__ volatile("" : "+r"(p) : : "memory");
    return p;
}

/* ---- Content patterns ------------------------------------------------------ */
static inline uint8_t ovr_pat(uint64_t id, size_t i) {
    uint64_t x = id * 0x9E3779B97F4A7C15ull + (i / 8) * 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
    return (uint8_t)((x >> (8 * (i % 8))) | 1);
}
static inline void ovr_fill(void *p, uint64_t id, size_t n) {
    uint8_t *b = (uint8_t *)p;
    for (size_t i = 0; i < n; i++) b[i] = ovr_pat(id, i);
}
static inline bool ovr_check(const void *p, uint64_t id, size_t n) {
    const uint8_t *b = (const uint8_t *)p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != ovr_pat(id, i)) {
            fprintf(stderr, "block %p id %llu: byte %zu of %zu is 0x%02x, want 0x%02x\n", p,
                    (unsigned long long)id, i, n, b[i], ovr_pat(id, i));
            return false;
        }
    return true;
}
/* Fills/checks only a sample of the bytes: the first 64 of every 4 KiB and
 * the last 64. ovr_check_prefix checks the sample of the first n bytes of a
 * block filled with a larger n (what realloc keeps when it shrinks). */
static inline bool ovr_sampled(size_t i, size_t n) {
    return (i & 4095) < 64 || i + 64 >= n;
}
static inline size_t ovr_sample_next(size_t i, size_t n) {
    if ((i & 4095) < 63 || i + 65 >= n) return i + 1;
    size_t next = (i | 4095) + 1; /* start of the next 4 KiB */
    return next + 64 < n ? next : (n > 64 ? n - 64 : next);
}
static inline void ovr_fill_sparse(void *p, uint64_t id, size_t n) {
    uint8_t *b = (uint8_t *)p;
    for (size_t i = 0; i < n; i = ovr_sample_next(i, n))
        if (ovr_sampled(i, n)) b[i] = ovr_pat(id, i);
}
static inline bool ovr_check_sparse(const void *p, uint64_t id, size_t n) {
    const uint8_t *b = (const uint8_t *)p;
    for (size_t i = 0; i < n; i = ovr_sample_next(i, n))
        if (ovr_sampled(i, n) && b[i] != ovr_pat(id, i)) return false;
    return true;
}
static inline bool ovr_check_prefix(const void *p, uint64_t id, size_t n) {
    const uint8_t *b = (const uint8_t *)p;
    for (size_t i = 0; i < n; i = (i & 4095) < 63 ? i + 1 : (i | 4095) + 1)
        if (b[i] != ovr_pat(id, i)) return false;
    return true;
}

/* ---- Process facts ----------------------------------------------------------- */
/* Resident set size in bytes (from /proc/self/statm). */
static inline size_t ovr_rss(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long size = 0, res = 0;
    if (fscanf(f, "%lu %lu", &size, &res) != 2) res = 0;
    fclose(f);
    return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

static inline double ovr_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- Running a child and capturing its output -------------------------------- */
typedef struct {
    int status;      /* from waitpid; -1 when it could not run */
    bool timed_out;  /* killed after the time limit */
    char out[1 << 21]; /* stdout (2 MiB; the rest is dropped) */
    char err[1 << 20]; /* stderr */
} ovr_run_t;

/* Reads both pipes to the end (or until full); then waits. */
static inline void ovr_collect(int ofd, int efd, ovr_run_t *r) {
    size_t on = 0, en = 0;
    int open_fds = 2;
    fd_set set;
    while (open_fds) {
        FD_ZERO(&set);
        if (ofd >= 0) FD_SET(ofd, &set);
        if (efd >= 0) FD_SET(efd, &set);
        int maxfd = ofd > efd ? ofd : efd;
        if (select(maxfd + 1, &set, NULL, NULL, NULL) < 0) break;
        char tmp[4096];
        if (ofd >= 0 && FD_ISSET(ofd, &set)) {
            ssize_t n = read(ofd, tmp, sizeof tmp);
            if (n <= 0) { close(ofd); ofd = -1; open_fds--; }
            else {
                size_t k = (size_t)n < sizeof r->out - 1 - on ? (size_t)n : sizeof r->out - 1 - on;
                memcpy(r->out + on, tmp, k);
                on += k;
            }
        }
        if (efd >= 0 && FD_ISSET(efd, &set)) {
            ssize_t n = read(efd, tmp, sizeof tmp);
            if (n <= 0) { close(efd); efd = -1; open_fds--; }
            else {
                size_t k = (size_t)n < sizeof r->err - 1 - en ? (size_t)n : sizeof r->err - 1 - en;
                memcpy(r->err + en, tmp, k);
                en += k;
            }
        }
    }
    r->out[on] = 0;
    r->err[en] = 0;
}

/* Runs argv with environment envp (NULL: inherit), stdin from /dev/null or
 * from the file `in`, capturing stdout and stderr; kills it after
 * timeout_s seconds. */
static inline void ovr_run(char *const argv[], char *const envp[], const char *in,
                           int timeout_s, ovr_run_t *r) {
    int op[2], ep[2];
    memset(r, 0, sizeof *r);
    r->status = -1;
    if (pipe(op) || pipe(ep)) return;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return;
    if (pid == 0) {
        int fd = open(in ? in : "/dev/null", O_RDONLY);
        if (fd >= 0) dup2(fd, 0);
        dup2(op[1], 1);
        dup2(ep[1], 2);
        close(op[0]); close(op[1]); close(ep[0]); close(ep[1]);
        alarm((unsigned)timeout_s); /* survives exec: SIGALRM ends a hung child */
        if (envp) execve(argv[0], argv, envp);
        else execv(argv[0], argv);
        _exit(127);
    }
    close(op[1]);
    close(ep[1]);
    ovr_collect(op[0], ep[0], r);
    waitpid(pid, &r->status, 0);
    r->timed_out = WIFSIGNALED(r->status) && WTERMSIG(r->status) == SIGALRM;
}

static inline bool ovr_exited_ok(const ovr_run_t *r) {
    return r->status >= 0 && WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0;
}

/* A copy of the environment without LD_PRELOAD and HEAPKIT_* variables,
 * plus the extra "NAME=value" entries of the NULL-terminated list `extra`.
 * Static storage: valid until the next call. */
static inline char **ovr_env_list(const char *const *extra) {
    static char *env[1024];
    size_t n = 0;
    for (char **e = environ; *e && n < 1000; e++) {
        if (strncmp(*e, "HEAPKIT_", 8) == 0 || strncmp(*e, "LD_PRELOAD=", 11) == 0) continue;
        env[n++] = *e;
    }
    for (size_t i = 0; extra && extra[i] && n < 1023; i++) env[n++] = (char *)extra[i];
    env[n] = NULL;
    return env;
}
/* The same with up to 4 extra entries (NULL ends them). */
static inline char **ovr_env(const char *e1, const char *e2, const char *e3, const char *e4) {
    const char *extra[5] = {e1, e1 ? e2 : NULL, e1 && e2 ? e3 : NULL, e1 && e2 && e3 ? e4 : NULL,
                            NULL};
    return ovr_env_list(extra);
}

#endif /* OVR_H */
