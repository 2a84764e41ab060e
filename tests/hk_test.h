/* hk_test.h: the small test framework shared by every test program.
 *
 * CHECK(cond) records a failure with file:line and goes on; REQUIRE(cond)
 * stops the test. A test program ends with `return hk_test_done();`, which
 * prints "N passed, M failed" and exits non-zero on any failure.
 * hk_expect_death() runs a function in a forked child and checks that it
 * aborted with a message on stderr: how wrong-use tests assert reports.
 * Random numbers come from a seeded xorshift so every run is reproducible
 * (set HK_TEST_SEED to vary it).
 */
#ifndef HK_TEST_H
#define HK_TEST_H

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static unsigned hk_test_passed, hk_test_failed;

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (cond) {                                                          \
            hk_test_passed++;                                                \
        } else {                                                             \
            hk_test_failed++;                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                  \
        }                                                                    \
    } while (0)

#define REQUIRE(cond)                                                          \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                    \
            hk_test_failed++;                                                  \
            exit(hk_test_done());                                              \
        }                                                                      \
        hk_test_passed++;                                                      \
    } while (0)

static inline int hk_test_done(void) {
    printf("%u passed, %u failed\n", hk_test_passed, hk_test_failed);
    fflush(stdout);
    return hk_test_failed ? 1 : 0;
}

/* ---- Deterministic random numbers --------------------------------------- */
typedef struct { uint64_t s; } hk_rng_t;
static inline hk_rng_t hk_rng_seeded(uint64_t salt) {
    const char *env = getenv("HK_TEST_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 0) : 0x9E3779B97F4A7C15ull;
    hk_rng_t r = { seed ^ (salt * 0xBF58476D1CE4E5B9ull) };
    if (r.s == 0) r.s = 1;
    return r;
}
static inline uint64_t hk_rng_next(hk_rng_t *r) {
    uint64_t x = r->s;
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    return r->s = x;
}
/* Uniform in [0, n). */
static inline uint64_t hk_rng_below(hk_rng_t *r, uint64_t n) {
    return n ? hk_rng_next(r) % n : 0;
}

/* ---- Death tests -------------------------------------------------------- */
/* Runs fn(arg) in a child with stderr captured. Passes when the child was
 * killed by SIGABRT and its stderr contains `expect` (and, when non-NULL,
 * `expect2`). The captured text is copied to `out` (if non-NULL). */
static inline int hk_expect_death_ex(void (*fn)(void *), void *arg,
                                     const char *expect, const char *expect2,
                                     char *out, size_t outsz) {
    int pipefd[2];
    if (pipe(pipefd) != 0) return 0;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return 0;
    if (pid == 0) {
        close(pipefd[0]);
        dup2(pipefd[1], 2);
        fn(arg);
        _exit(0); /* reaching here means nothing aborted */
    }
    close(pipefd[1]);
    char buf[8192];
    size_t len = 0;
    ssize_t n;
    while ((n = read(pipefd[0], buf + len, sizeof buf - 1 - len)) > 0) {
        len += (size_t)n;
        if (len >= sizeof buf - 1) break;
    }
    buf[len] = 0;
    close(pipefd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (out && outsz) snprintf(out, outsz, "%s", buf);
    int ok = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT &&
             strstr(buf, expect) != NULL &&
             (expect2 == NULL || strstr(buf, expect2) != NULL);
    if (!ok)
        fprintf(stderr, "death test: status=%d signaled=%d sig=%d, stderr was:\n%s\n",
                status, WIFSIGNALED(status), WIFSIGNALED(status) ? WTERMSIG(status) : 0, buf);
    return ok;
}
#define hk_expect_death(fn, arg, expect) \
    hk_expect_death_ex((fn), (arg), (expect), NULL, NULL, 0)

#endif /* HK_TEST_H */
