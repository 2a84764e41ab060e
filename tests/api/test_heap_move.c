// Moving an explicit heap between threads: hk_heap_release / hk_heap_adopt.
// ctest-labels: threads
// ctest-args: 100000 40
#include <pthread.h>

#include "hk_test.h"
#include "heapkit.h"

typedef struct node { struct node *next; uint64_t value; char pad[40]; } node_t;

/* ---- A producer builds a list in a heap; a consumer adopts it ---------- */
typedef struct {
    hk_heap_t *heap;
    node_t *head;
    long n;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stage;
} handoff_t;

static void wait_stage(handoff_t *h, int s) {
    pthread_mutex_lock(&h->mu);
    while (h->stage < s) pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
}
static void set_stage(handoff_t *h, int s) {
    pthread_mutex_lock(&h->mu);
    h->stage = s;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

static void *producer(void *arg) {
    handoff_t *h = arg;
    h->heap = hk_heap_new();
    node_t *head = NULL;
    for (long i = 0; i < h->n; i++) {
        node_t *x = hk_heap_malloc(h->heap, sizeof *x);
        if (!x) return NULL;
        x->value = (uint64_t)i * 2654435761u;
        x->next = head;
        head = x;
    }
    h->head = head;
    hk_heap_release(h->heap);
    set_stage(h, 1);
    return NULL;
}

static void test_producer_consumer(long n) {
    handoff_t h = {.n = n, .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, producer, &h) == 0);
    wait_stage(&h, 1);
    pthread_join(t, NULL); /* the producer is gone: the heap has no owner */
    REQUIRE(h.head != NULL);
    hk_heap_adopt(h.heap);
    long count = 0, bad = 0;
    for (node_t *x = h.head; x; x = x->next, count++)
        if (x->value != (uint64_t)(n - 1 - count) * 2654435761u) bad++;
    CHECK(count == n);
    CHECK(bad == 0);
    hk_stats_t s;
    hk_heap_stats(h.heap, &s);
    CHECK(s.live_blocks == (size_t)n);
    /* The adopter allocates from it and frees into it as its own. */
    node_t *more = hk_heap_malloc(h.heap, sizeof *more);
    CHECK(more != NULL && hk_heap_owns(h.heap, more));
    hk_free(h.head); /* a local free now */
    hk_heap_stats(h.heap, &s);
    CHECK(s.live_blocks == (size_t)n);
    hk_stats_t before, after;
    hk_stats(&before);
    hk_heap_destroy(h.heap);
    hk_stats(&after);
    CHECK(after.live_blocks + (size_t)n <= before.live_blocks);
}

/* ---- Frees made while the heap is in transit are kept ------------------ */
typedef struct { void **blocks; long from, to; } freer_t;
static void *free_range(void *arg) {
    freer_t *f = arg;
    for (long i = f->from; i < f->to; i++) hk_free(f->blocks[i]);
    return NULL;
}

static void test_frees_in_transit(long n) {
    hk_heap_t *heap = hk_heap_new();
    void **blocks = malloc(sizeof(void *) * (size_t)n);
    REQUIRE(blocks != NULL);
    for (long i = 0; i < n; i++) {
        blocks[i] = hk_heap_malloc(heap, 16 + (size_t)(i % 7) * 100);
        REQUIRE(blocks[i] != NULL);
    }
    hk_heap_release(heap);
    /* Another thread frees half while nobody owns the heap; this thread
     * frees a quarter too (a remote free: it released the heap). */
    freer_t f = {blocks, 0, n / 2};
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, free_range, &f) == 0);
    pthread_join(t, NULL);
    for (long i = n / 2; i < n * 3 / 4; i++) hk_free(blocks[i]);
    hk_heap_adopt(heap);
    hk_stats_t s;
    hk_heap_stats(heap, &s);
    CHECK(s.live_blocks == (size_t)(n - n * 3 / 4));
    CHECK(s.frees == (uint64_t)(n * 3 / 4));
    for (long i = n * 3 / 4; i < n; i++) CHECK(hk_heap_owns(heap, blocks[i]));
    hk_heap_destroy(heap);
    free(blocks);
}

/* ---- A heap travels around a ring of threads many times ---------------- */
enum { RING = 3 };
typedef struct {
    hk_heap_t *heap;
    int turn, moves, done;
    long per_move;
    void **blocks;
    long nblocks;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int bad;
} ring_t;
typedef struct { ring_t *r; int me; } ring_arg_t;

static void *ring_worker(void *arg) {
    ring_arg_t *a = arg;
    ring_t *r = a->r;
    for (;;) {
        pthread_mutex_lock(&r->mu);
        while (r->turn % RING != a->me && !r->done) pthread_cond_wait(&r->cv, &r->mu);
        if (r->done) {
            pthread_mutex_unlock(&r->mu);
            return NULL;
        }
        pthread_mutex_unlock(&r->mu);
        hk_heap_adopt(r->heap);
        /* Check what earlier owners wrote, add blocks, free some. */
        for (long i = 0; i < r->nblocks; i++)
            if (*(long *)r->blocks[i] != i) r->bad++;
        for (long k = 0; k < r->per_move; k++) {
            long *p = hk_heap_malloc(r->heap, 24 + (size_t)(k % 13) * 40);
            if (!p) { r->bad++; break; }
            *p = r->nblocks;
            r->blocks[r->nblocks++] = p;
        }
        pthread_mutex_lock(&r->mu);
        r->turn++;
        int last = r->turn >= r->moves;
        if (!last) hk_heap_release(r->heap);
        else r->done = 1; /* the last owner keeps it and destroys it */
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        if (last) {
            hk_stats_t s;
            hk_heap_stats(r->heap, &s);
            if (s.live_blocks != (size_t)r->nblocks) r->bad++;
            hk_heap_destroy(r->heap);
            return NULL;
        }
    }
}

static void test_ring(int moves) {
    ring_t r = {.moves = moves, .per_move = 500, .mu = PTHREAD_MUTEX_INITIALIZER,
                .cv = PTHREAD_COND_INITIALIZER};
    r.blocks = malloc(sizeof(void *) * (size_t)(moves * r.per_move));
    REQUIRE(r.blocks != NULL);
    r.heap = hk_heap_new();
    hk_heap_release(r.heap);
    pthread_t t[RING];
    ring_arg_t a[RING];
    for (int i = 0; i < RING; i++) {
        a[i] = (ring_arg_t){&r, i};
        REQUIRE(pthread_create(&t[i], NULL, ring_worker, &a[i]) == 0);
    }
    for (int i = 0; i < RING; i++) pthread_join(t[i], NULL);
    CHECK(r.turn == moves);
    CHECK(r.bad == 0);
    CHECK(r.nblocks == moves * r.per_move);
    free(r.blocks);
}

/* ---- Misuse is reported -------------------------------------------------- */
static void alloc_from_released(void *arg) {
    (void)arg;
    hk_heap_t *h = hk_heap_new();
    hk_heap_release(h);
    void *p = hk_heap_malloc(h, 10);
    (void)p;
}
static void adopt_twice(void *arg) {
    (void)arg;
    hk_heap_t *h = hk_heap_new();
    hk_heap_release(h);
    hk_heap_adopt(h);
    hk_heap_adopt(h);
}
static void adopt_unreleased(void *arg) {
    (void)arg;
    hk_heap_adopt(hk_heap_new());
}
static void release_default(void *arg) {
    (void)arg;
    hk_heap_release(hk_heap_default());
}
static void destroy_released(void *arg) {
    (void)arg;
    hk_heap_t *h = hk_heap_new();
    hk_heap_release(h);
    hk_heap_destroy(h);
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 100000;
    int moves = argc > 2 ? atoi(argv[2]) : 40;
    test_producer_consumer(n);
    test_frees_in_transit(n / 4);
    test_ring(moves);
    CHECK(hk_expect_death(alloc_from_released, NULL, "hk_heap_malloc(): heap is released"));
    CHECK(hk_expect_death(adopt_twice, NULL, "hk_heap_adopt(): heap is not released"));
    CHECK(hk_expect_death(adopt_unreleased, NULL, "hk_heap_adopt(): heap is not released"));
    CHECK(hk_expect_death(release_default, NULL, "cannot release a thread's default heap"));
    CHECK(hk_expect_death(destroy_released, NULL, "hk_heap_destroy(): heap is released"));
    return hk_test_done();
}
