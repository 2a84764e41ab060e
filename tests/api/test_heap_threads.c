// ctest-labels: threads
// test_heap_threads: explicit heaps and default heaps with several threads.
// Blocks of an explicit heap freed by other threads while the owner keeps
// allocating; destroy after remote frees; a worker's heap fed to the main
// thread; hk_heap_default is one distinct heap per thread.
#include "hk_test.h"
#include "api/hk_util.h"

#include <pthread.h>
#include <stdatomic.h>

enum { FREERS = 3 };

typedef struct {
    void **blocks;
    size_t *sizes;
    int from, to;
    _Atomic int *bad;
} slice_t;

static uint64_t blk_id(int i) { return 0xABC000ull + (uint64_t)i; }

/* Verifies and frees blocks[from, to). */
static void *free_slice(void *arg) {
    slice_t *s = arg;
    for (int i = s->from; i < s->to; i++) {
        if (!hk_pat_ok(s->blocks[i], blk_id(i), s->sizes[i])) atomic_fetch_add(s->bad, 1);
        hk_free(s->blocks[i]);
    }
    return NULL;
}

/* The owner allocates N blocks from h, FREERS threads free them while the
 * owner keeps allocating and freeing its own blocks from h. */
static void test_remote_free_while_owner_works(void) {
    enum { N = 60000, OWN = 256 };
    hk_heap_t *h = hk_heap_new();
    REQUIRE(h != NULL);
    void **b = malloc(N * sizeof *b);
    size_t *sz = malloc(N * sizeof *sz);
    REQUIRE(b && sz);
    hk_rng_t rng = hk_rng_seeded(21);
    for (int i = 0; i < N; i++) {
        uint64_t k = hk_rng_below(&rng, 1000);
        sz[i] = k < 990 ? 1 + hk_rng_below(&rng, 1024)
                        : (k < 999 ? 32 * KiB + hk_rng_below(&rng, 256 * KiB) : 3 * MiB);
        b[i] = hk_heap_malloc(h, sz[i]);
        REQUIRE(b[i] != NULL);
        hk_pat_fill(b[i], blk_id(i), sz[i]);
    }
    _Atomic int bad = 0;
    pthread_t t[FREERS];
    slice_t sl[FREERS];
    for (int k = 0; k < FREERS; k++) {
        sl[k] = (slice_t){ b, sz, N * k / FREERS, N * (k + 1) / FREERS, &bad };
        REQUIRE(pthread_create(&t[k], NULL, free_slice, &sl[k]) == 0);
    }
    /* Meanwhile: the owner churns blocks of the same heap. */
    void *own[OWN] = { 0 };
    int own_bad = 0;
    for (int it = 0; it < 100000; it++) {
        int i = (int)hk_rng_below(&rng, OWN);
        if (own[i]) {
            if (!hk_pat_ok(own[i], 0x5000 + (uint64_t)i, 24)) own_bad++;
            hk_free(own[i]);
            own[i] = NULL;
        } else {
            own[i] = hk_heap_malloc(h, 24 + hk_rng_below(&rng, 1000));
            REQUIRE(own[i] != NULL);
            hk_pat_fill(own[i], 0x5000 + (uint64_t)i, 24);
        }
    }
    for (int k = 0; k < FREERS; k++) pthread_join(t[k], NULL);
    CHECK(atomic_load(&bad) == 0);
    CHECK(own_bad == 0);
    /* After the remote frees, the heap counts only the owner's blocks. */
    size_t own_live = 0;
    for (int i = 0; i < OWN; i++) own_live += own[i] != NULL;
    /* a few more owner operations let it take in the remote frees */
    for (int i = 0; i < 1000; i++) hk_free(hk_heap_malloc(h, 16 + (size_t)i % 500));
    hk_stats_t s;
    hk_heap_stats(h, &s);
    CHECK(s.live_blocks == own_live);
    if (s.live_blocks != own_live)
        fprintf(stderr, "  heap live_blocks %zu, expected %zu\n", s.live_blocks, own_live);
    for (int i = 0; i < OWN; i++) {
        if (own[i]) CHECK(hk_heap_owns(h, own[i]));
        hk_free(own[i]);
    }
    hk_heap_stats(h, &s);
    CHECK(s.live_blocks == 0);
    hk_heap_destroy(h);
    free(b);
    free(sz);
}

/* Remote frees of half the blocks, then destroy straight away. */
static void test_destroy_after_remote_frees(void) {
    enum { N = 20000 };
    hk_stats_t s0 = hk_all_stats();
    for (int round = 0; round < 5; round++) {
        hk_heap_t *h = hk_heap_new();
        REQUIRE(h != NULL);
        void **b = malloc(N * sizeof *b);
        size_t *sz = malloc(N * sizeof *sz);
        REQUIRE(b && sz);
        for (int i = 0; i < N; i++) {
            sz[i] = 8 + (size_t)(i * 31 + round) % 700;
            if (i % 1000 == 0) sz[i] = 100 * KiB;
            b[i] = hk_heap_malloc(h, sz[i]);
            REQUIRE(b[i] != NULL);
            hk_pat_fill(b[i], blk_id(i), sz[i]);
        }
        _Atomic int bad = 0;
        pthread_t t[FREERS];
        slice_t sl[FREERS];
        for (int k = 0; k < FREERS; k++) {
            /* each thread frees a slice of the first half */
            sl[k] = (slice_t){ b, sz, (N / 2) * k / FREERS, (N / 2) * (k + 1) / FREERS, &bad };
            REQUIRE(pthread_create(&t[k], NULL, free_slice, &sl[k]) == 0);
        }
        for (int k = 0; k < FREERS; k++) pthread_join(t[k], NULL);
        CHECK(atomic_load(&bad) == 0);
        int bad2 = 0;
        for (int i = N / 2; i < N; i++)
            if (!hk_pat_ok(b[i], blk_id(i), sz[i])) bad2++;
        CHECK(bad2 == 0);
        hk_heap_destroy(h);
        free(b);
        free(sz);
    }
    hk_collect(true);
    hk_stats_t s1 = hk_all_stats();
    CHECK(s1.heaps == s0.heaps);
    CHECK(s1.live_blocks == s0.live_blocks);
    CHECK(s1.mapped_bytes <= s0.mapped_bytes + 32 * MiB);
}

/* A worker owns an explicit heap and hands blocks to the main thread,
 * which frees half while the worker lives; the worker then destroys its
 * heap (with the rest still live) and exits. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    void **blocks;
    size_t *sizes;
    int n;
    int stage; /* 0 start, 1 blocks ready, 2 main done freeing, 3 destroyed */
    hk_heap_t *heap;
    int bad;
} worker_t;

static void *worker_heap(void *arg) {
    worker_t *w = arg;
    hk_heap_t *h = hk_heap_new();
    if (!h) { w->bad++; return NULL; }
    for (int i = 0; i < w->n; i++) {
        w->sizes[i] = 1 + (size_t)(i * 97) % 5000;
        if (i % 500 == 0) w->sizes[i] = 40 * KiB;
        w->blocks[i] = hk_heap_malloc(h, w->sizes[i]);
        if (!w->blocks[i]) { w->bad++; w->sizes[i] = 0; continue; }
        hk_pat_fill(w->blocks[i], blk_id(i), w->sizes[i]);
    }
    pthread_mutex_lock(&w->mu);
    w->heap = h;
    w->stage = 1;
    pthread_cond_broadcast(&w->cv);
    while (w->stage != 2) pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
    /* the owner still allocates fine after the remote frees */
    for (int i = 0; i < 5000; i++) {
        void *p = hk_heap_malloc(h, 1 + (size_t)i % 3000);
        if (!p) { w->bad++; break; }
        memset(p, 0x44, 1 + (size_t)i % 3000);
        hk_free(p);
    }
    /* every block main did not free is still intact and owned */
    for (int i = 1; i < w->n; i += 2)
        if (w->sizes[i] && (!hk_pat_ok(w->blocks[i], blk_id(i), w->sizes[i]) ||
                            !hk_heap_owns(h, w->blocks[i]))) w->bad++;
    hk_heap_destroy(h);
    pthread_mutex_lock(&w->mu);
    w->stage = 3;
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static void test_worker_heap(void) {
    worker_t w;
    memset(&w, 0, sizeof w);
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    w.n = 20000;
    w.blocks = malloc((size_t)w.n * sizeof *w.blocks);
    w.sizes = malloc((size_t)w.n * sizeof *w.sizes);
    REQUIRE(w.blocks && w.sizes);
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, worker_heap, &w) == 0);
    pthread_mutex_lock(&w.mu);
    while (w.stage != 1) pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    int bad = 0;
    for (int i = 0; i < w.n; i += 2) {
        if (!w.sizes[i]) continue;
        if (!hk_pat_ok(w.blocks[i], blk_id(i), w.sizes[i])) bad++;
        if (!hk_heap_owns(w.heap, w.blocks[i])) bad++;
        if (hk_heap_owns(hk_heap_default(), w.blocks[i])) bad++;
        hk_free(w.blocks[i]);
    }
    CHECK(bad == 0);
    pthread_mutex_lock(&w.mu);
    w.stage = 2;
    pthread_cond_broadcast(&w.cv);
    pthread_mutex_unlock(&w.mu);
    pthread_join(t, NULL);
    CHECK(w.stage == 3);
    CHECK(w.bad == 0);
    free(w.blocks);
    free(w.sizes);
}

/* hk_heap_default: one heap per thread, distinct while the threads live,
 * stable within a thread, and owning what hk_malloc returns there. */
enum { DT = 6 };
static pthread_barrier_t barrier;
static hk_heap_t *dheap[DT + 1];
static void *default_probe(void *arg) {
    int k = (int)(intptr_t)arg;
    hk_heap_t *h = hk_heap_default();
    dheap[k] = h;
    void *p = hk_malloc(100);
    int ok = p && h && hk_heap_default() == h && hk_heap_owns(h, p);
    pthread_barrier_wait(&barrier); /* all threads alive at once */
    hk_free(p);
    return (void *)(intptr_t)ok;
}
static void test_default_per_thread(void) {
    /* main's heap first: taken after the workers exit it could be one of
     * theirs, recycled (that is allowed) */
    dheap[DT] = hk_heap_default();
    pthread_barrier_init(&barrier, NULL, DT);
    pthread_t t[DT];
    for (int k = 0; k < DT; k++)
        REQUIRE(pthread_create(&t[k], NULL, default_probe, (void *)(intptr_t)k) == 0);
    int ok = 0;
    for (int k = 0; k < DT; k++) {
        void *r;
        pthread_join(t[k], &r);
        ok += (int)(intptr_t)r;
    }
    CHECK(ok == DT);
    CHECK(hk_heap_default() == dheap[DT]);
    int dup = 0;
    for (int i = 0; i <= DT; i++)
        for (int j = i + 1; j <= DT; j++)
            if (dheap[i] == dheap[j]) dup++;
    CHECK(dup == 0);
    pthread_barrier_destroy(&barrier);
}

int main(void) {
    test_default_per_thread();
    test_remote_free_while_owner_works();
    test_destroy_after_remote_frees();
    test_worker_heap();
    return hk_test_done();
}
