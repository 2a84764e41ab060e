// test_preload_malloc: the malloc family exported by libheapkit-secure.so
// (override/ compiled with HK_SECURE=1, its own inline fast paths) is the
// secure one: free(a); free(b); free(a) and a remote double free abort with
// "double free", a forged link makes the next malloc abort with the
// corruption report, consecutive mallocs are not in address order, the
// page past a huge block faults; and ordinary use (calloc, realloc across
// every kind of block, aligned allocation, threads) works. The program
// links the shared library; it uses no heapkit header.
#include "hk_test.h"

#include <malloc.h>
#include <pthread.h>

static void free_a_b_a(void *arg) {
    void **v = arg;
    free(v[0]);
    free(v[1]);
    free(v[0]);
}

static void *free_in_thread(void *p) {
    free(p);
    return NULL;
}
static void remote_then_local(void *arg) {
    void *p = *(void **)arg;
    pthread_t t;
    if (pthread_create(&t, NULL, free_in_thread, p) != 0) _exit(3);
    pthread_join(t, NULL);
    free(p);
}

static void forge_then_malloc(void *arg) {
    (void)arg;
    char *a = malloc(40), *b = malloc(40);
    free(a);
    memcpy(a, &b, sizeof b); /* the raw address of a live block */
    void *x = malloc(40), *y = malloc(40);
    fprintf(stderr, "got %p %p (b was %p)\n", x, y, (void *)b);
    _exit(0);
}

static void past_huge(void *arg) {
    signal(SIGSEGV, SIG_DFL);
    char *g = malloc(6u << 20);
    volatile char *end = g + malloc_usable_size(g);
    (void)arg;
    *end = 1;
    _exit(0);
}

static void *churn(void *arg) {
    hk_rng_t r = hk_rng_seeded((uint64_t)(uintptr_t)arg);
    void *slot[512] = {0};
    for (int i = 0; i < 200000; i++) {
        size_t k = (size_t)hk_rng_below(&r, 512);
        free(slot[k]);
        slot[k] = malloc((size_t)hk_rng_below(&r, 2000) + 1);
        if (!slot[k]) return (void *)1;
        memset(slot[k], (int)k, 1);
    }
    for (int k = 0; k < 512; k++) free(slot[k]);
    return NULL;
}

int main(void) {
    void *v[2] = { malloc(72), malloc(72) };
    REQUIRE(v[0] && v[1]);
    CHECK(hk_expect_death(free_a_b_a, v, "heapkit: free(): double free 0x"));
    CHECK(hk_expect_death(remote_then_local, &v[0], "heapkit: free(): double free 0x"));
    CHECK(hk_expect_death(forge_then_malloc, NULL, "heapkit: free list corrupted 0x"));
    {
        char out[256];
        int st = 0;
        int pipefd[2];
        REQUIRE(pipe(pipefd) == 0);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            close(pipefd[0]);
            dup2(pipefd[1], 2);
            past_huge(NULL);
        }
        close(pipefd[1]);
        ssize_t n = read(pipefd[0], out, sizeof out - 1);
        (void)n;
        close(pipefd[0]);
        waitpid(pid, &st, 0);
        CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
    }

    /* Address order is gone (see tests/secure/test_order.c for margins). */
    enum { N = 1000 };
    static char *p[N];
    int ascending = 0;
    for (int i = 0; i < N; i++) {
        p[i] = malloc(48);
        REQUIRE(p[i]);
        if (i) ascending += p[i] > p[i - 1];
    }
    CHECK(ascending < (N - 1) * 3 / 4);
    for (int i = 0; i < N; i++) free(p[i]);

    /* Ordinary use. */
    int *z = calloc(1000, sizeof *z);
    REQUIRE(z);
    int nonzero = 0;
    for (int i = 0; i < 1000; i++) nonzero += z[i] != 0;
    CHECK(nonzero == 0);
    char *s = malloc(10);
    REQUIRE(s);
    memcpy(s, "heapkit", 8);
    static const size_t grow[] = { 100, 5000, 40000, 3u << 20, 9u << 20, 64, 0 };
    for (int i = 0; grow[i]; i++) {
        s = realloc(s, grow[i]);
        REQUIRE(s);
        CHECK(memcmp(s, "heapkit", 8) == 0);
    }
    free(s);
    void *al = NULL;
    CHECK(posix_memalign(&al, 4096, 10000) == 0 && al && ((uintptr_t)al & 4095) == 0);
    free(al);
    pthread_t t[4];
    for (int i = 0; i < 4; i++) REQUIRE(pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i + 1)) == 0);
    for (int i = 0; i < 4; i++) {
        void *rc = (void *)1;
        pthread_join(t[i], &rc);
        CHECK(rc == NULL);
    }
    free(v[0]);
    free(v[1]);
    return hk_test_done();
}
