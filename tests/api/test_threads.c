// ctest-labels: threads
// ctest-args: 4 20000
// test_threads: thread-local heaps with cross-thread frees.
//   - ping-pong: thread A allocates, thread B checks and frees, both ways;
//   - producer/consumer through a bounded queue (P producers, C consumers);
//   - realloc and usable_size of blocks that another thread allocated;
//   - calloc of blocks that came back through remote frees is zero;
//   - hk_stats / hk_stats_print / hk_collect called from a poller thread
//     while the others allocate and free (races show under TSan);
//   - after everything is freed, process live_blocks/live_bytes return to
//     where they were (after hk_collect(true)).
// Arguments: threads (producers = consumers = threads/2, at least 1 each),
// items per producer.
#include "hk_test.h"
#include "api/hk_util.h"

#include <pthread.h>
#include <stdatomic.h>

static size_t pick_size(hk_rng_t *r) {
    uint64_t k = hk_rng_below(r, 1000);
    if (k < 900) return 16 + hk_rng_below(r, 256);
    if (k < 990) return 16 + hk_rng_below(r, 32 * KiB);
    if (k < 999) return 32 * KiB + hk_rng_below(r, 512 * KiB);
    return 2 * MiB + hk_rng_below(r, 2 * MiB);
}

/* ---- Bounded MPMC queue (mutex + condvars) ----------------------------- */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t not_full, not_empty;
    void **items;
    size_t cap, head, count;
    int producers_left;
} queue_t;
static void q_init(queue_t *q, size_t cap, int producers) {
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->not_full, NULL);
    pthread_cond_init(&q->not_empty, NULL);
    q->items = calloc(cap, sizeof *q->items);
    q->cap = cap; q->head = 0; q->count = 0;
    q->producers_left = producers;
}
static void q_push(queue_t *q, void *p) {
    pthread_mutex_lock(&q->mu);
    while (q->count == q->cap) pthread_cond_wait(&q->not_full, &q->mu);
    q->items[(q->head + q->count) % q->cap] = p;
    q->count++;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
}
/* NULL when every producer finished and the queue is empty. */
static void *q_pop(queue_t *q) {
    pthread_mutex_lock(&q->mu);
    while (q->count == 0 && q->producers_left > 0) pthread_cond_wait(&q->not_empty, &q->mu);
    void *p = NULL;
    if (q->count) {
        p = q->items[q->head];
        q->head = (q->head + 1) % q->cap;
        q->count--;
        pthread_cond_signal(&q->not_full);
    }
    pthread_mutex_unlock(&q->mu);
    return p;
}
static void q_producer_done(queue_t *q) {
    pthread_mutex_lock(&q->mu);
    q->producers_left--;
    pthread_cond_broadcast(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
}

static queue_t queue;
static unsigned long items_per_producer;
static _Atomic long consumed, bad_blocks;

static void *producer(void *arg) {
    int k = (int)(intptr_t)arg;
    hk_rng_t rng = hk_rng_seeded(100 + (uint64_t)k);
    for (unsigned long i = 0; i < items_per_producer; i++) {
        uint64_t id = ((uint64_t)k << 40) | i;
        void *p = hk_make_block(id, pick_size(&rng));
        if (!p) { atomic_fetch_add(&bad_blocks, 1); continue; }
        q_push(&queue, p);
        /* some local traffic too */
        if (i % 16 == 0) hk_free(hk_make_block(id, 16 + i % 300));
    }
    q_producer_done(&queue);
    return NULL;
}
static void *consumer(void *arg) {
    (void)arg;
    void *p;
    long n = 0;
    while ((p = q_pop(&queue)) != NULL) {
        if (!hk_block_ok(p)) atomic_fetch_add(&bad_blocks, 1);
        /* sometimes grow it here first (realloc of a foreign block) */
        if (n % 7 == 0) {
            size_t size;
            memcpy(&size, (char *)p + 8, 8);
            void *q = hk_realloc(p, size + 1000);
            if (!q) { atomic_fetch_add(&bad_blocks, 1); q = p; }
            else if (!hk_block_ok(q)) atomic_fetch_add(&bad_blocks, 1);
            p = q;
        }
        hk_free(p);
        n++;
    }
    atomic_fetch_add(&consumed, n);
    return NULL;
}

/* Polls statistics and collects while the others work. Racing snapshots
 * need not be consistent, but each must be sane. */
static _Atomic int stop_poller;
static void *poller(void *arg) {
    (void)arg;
    long polls = 0, insane = 0;
    FILE *devnull = fopen("/dev/null", "w");
    while (!atomic_load(&stop_poller)) {
        hk_stats_t s;
        hk_stats(&s);
        if (s.heaps < 1 || s.mapped_peak < s.mapped_bytes || s.committed_peak < s.committed_bytes) insane++;
        if (polls % 8 == 0) hk_collect(polls % 16 == 0);
        if (devnull && polls % 32 == 0) hk_stats_print(devnull, polls % 64 == 0);
        /* and some allocation of its own */
        void *p = hk_malloc(64 + (size_t)polls % 4000);
        if (!p) insane++;
        hk_free(p);
        polls++;
        usleep(200);
    }
    if (devnull) fclose(devnull);
    return (void *)(intptr_t)(polls > 0 && insane == 0);
}

static void test_producer_consumer(int threads, unsigned long items) {
    int np = threads / 2 > 0 ? threads / 2 : 1, nc = threads - np > 0 ? threads - np : 1;
    items_per_producer = items;
    q_init(&queue, 1024, np);
    REQUIRE(queue.items != NULL);
    atomic_store(&consumed, 0);
    atomic_store(&bad_blocks, 0);
    pthread_t *t = calloc((size_t)(np + nc), sizeof *t);
    REQUIRE(t != NULL);
    for (int i = 0; i < np; i++) REQUIRE(pthread_create(&t[i], NULL, producer, (void *)(intptr_t)i) == 0);
    for (int i = 0; i < nc; i++) REQUIRE(pthread_create(&t[np + i], NULL, consumer, NULL) == 0);
    pthread_t pt;
    atomic_store(&stop_poller, 0);
    REQUIRE(pthread_create(&pt, NULL, poller, NULL) == 0);
    for (int i = 0; i < np + nc; i++) pthread_join(t[i], NULL);
    atomic_store(&stop_poller, 1);
    void *poll_ok;
    pthread_join(pt, &poll_ok);
    CHECK((intptr_t)poll_ok == 1);
    CHECK(atomic_load(&bad_blocks) == 0);
    CHECK(atomic_load(&consumed) == (long)np * (long)items);
    free(t);
    free(queue.items);
}

/* ---- Ping-pong: two threads swap batches and free each other's --------- */
enum { BATCH = 500 };
typedef struct {
    pthread_barrier_t bar;
    void *slot[2][BATCH];
    int rounds;
    _Atomic long bad;
} pingpong_t;
static pingpong_t pp;
static void *pingpong(void *arg) {
    int me = (int)(intptr_t)arg;
    hk_rng_t rng = hk_rng_seeded(200 + (uint64_t)me);
    for (int r = 0; r < pp.rounds; r++) {
        for (int i = 0; i < BATCH; i++) {
            pp.slot[me][i] = hk_make_block(((uint64_t)me << 50) | ((uint64_t)r << 20) | (uint64_t)i, pick_size(&rng));
            if (!pp.slot[me][i]) atomic_fetch_add(&pp.bad, 1);
        }
        pthread_barrier_wait(&pp.bar);
        /* free the other thread's batch; check usable_size from here too */
        for (int i = 0; i < BATCH; i++) {
            void *p = pp.slot[1 - me][i];
            if (!p) continue;
            if (!hk_block_ok(p)) atomic_fetch_add(&pp.bad, 1);
            hk_free(p);
        }
        pthread_barrier_wait(&pp.bar);
    }
    return NULL;
}
static void test_pingpong(int rounds) {
    pp.rounds = rounds;
    atomic_store(&pp.bad, 0);
    pthread_barrier_init(&pp.bar, NULL, 2);
    pthread_t a, b;
    REQUIRE(pthread_create(&a, NULL, pingpong, (void *)0) == 0);
    REQUIRE(pthread_create(&b, NULL, pingpong, (void *)1) == 0);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    CHECK(atomic_load(&pp.bad) == 0);
    pthread_barrier_destroy(&pp.bar);
}

/* ---- Blocks of the main thread freed by a thread, and vice versa -------- */
static void *free_all(void *arg) {
    void **v = arg;
    int bad = 0;
    for (int i = 0; v[i]; i++) {
        if (!hk_block_ok(v[i])) bad++;
        hk_free(v[i]);
    }
    return (void *)(intptr_t)bad;
}
static void *alloc_many(void *arg) {
    void **v = arg;
    hk_rng_t rng = hk_rng_seeded(300);
    for (int i = 0; i < 5000; i++) v[i] = hk_make_block(0x77000 + (uint64_t)i, pick_size(&rng));
    v[5000] = NULL;
    return NULL;
}
static void test_main_and_worker(void) {
    void **v = calloc(5001, sizeof *v);
    REQUIRE(v != NULL);
    hk_rng_t rng = hk_rng_seeded(301);
    for (int i = 0; i < 5000; i++) {
        v[i] = hk_make_block(0x66000 + (uint64_t)i, pick_size(&rng));
        REQUIRE(v[i] != NULL);
    }
    pthread_t t;
    void *r;
    REQUIRE(pthread_create(&t, NULL, free_all, v) == 0);
    pthread_join(t, &r);
    CHECK((intptr_t)r == 0);
    /* the other way: a thread allocates, exits, main frees */
    REQUIRE(pthread_create(&t, NULL, alloc_many, v) == 0);
    pthread_join(t, NULL);
    int bad = 0;
    for (int i = 0; i < 5000; i++) {
        REQUIRE(v[i] != NULL);
        if (!hk_block_ok(v[i])) bad++;
        /* not ours: the main thread's default heap does not own it */
        if (hk_heap_owns(hk_heap_default(), v[i])) bad++;
        /* a realloc here moves it into our heap if it must move */
        if (i % 10 == 0) {
            size_t size;
            memcpy(&size, (char *)v[i] + 8, 8);
            void *q = hk_realloc(v[i], size + 3 * MiB);
            REQUIRE(q != NULL);
            if (!hk_block_ok(q)) bad++;
            v[i] = q;
        }
        hk_free(v[i]);
    }
    CHECK(bad == 0);
    free(v);
}

/* ---- calloc of blocks that came back through remote frees ------------- */
/* The main thread dirties blocks, a thread frees them (remote frees write
 * list links into blocks), then the main thread callocs the same sizes. */
static void *free_vec(void *arg) {
    void **v = arg;
    for (int i = 0; v[i]; i++) hk_free(v[i]);
    return NULL;
}
static void test_calloc_after_remote_free(void) {
    enum { N = 2000 };
    static const size_t sizes[] = { 8, 16, 24, 48, 100, 256, 1000, 4096, 20000, 40000, 300000 };
    void **v = calloc(N + 1, sizeof *v);
    REQUIRE(v != NULL);
    int bad = 0;
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t s = sizes[k];
        int n = s > 32 * KiB ? 64 : N;
        for (int i = 0; i < n; i++) {
            v[i] = hk_malloc(s);
            REQUIRE(v[i] != NULL);
            memset(v[i], 0xEB, hk_usable_size(v[i]));
        }
        v[n] = NULL;
        pthread_t t;
        REQUIRE(pthread_create(&t, NULL, free_vec, v) == 0);
        pthread_join(t, NULL);
        for (int i = 0; i < n; i++) {
            v[i] = hk_calloc(1, s);
            REQUIRE(v[i] != NULL);
            if (!hk_is_zero(v[i], s)) bad++;
        }
        for (int i = 0; i < n; i++) hk_free(v[i]);
    }
    CHECK(bad == 0);
    free(v);
}

int main(int argc, char **argv) {
    int threads = (int)hk_arg(argc, argv, 1, 4);
    unsigned long items = hk_arg(argc, argv, 2, 20000);
    if (threads < 2) threads = 2;
    hk_collect(true);
    hk_stats_t s0 = hk_all_stats();

    test_main_and_worker();
    test_calloc_after_remote_free();
    test_pingpong(40);
    test_producer_consumer(threads, items);

    hk_collect(true);
    hk_stats_t s1 = hk_all_stats();
    CHECK(s1.live_blocks == s0.live_blocks);
    CHECK(s1.live_bytes == s0.live_bytes);
    CHECK(s1.mallocs >= s0.mallocs + 5000 * 2 + 40 * BATCH * 2 + (threads / 2) * items);
    CHECK(s1.frees - s0.frees == s1.mallocs - s0.mallocs);
    if (s1.live_blocks != s0.live_blocks)
        fprintf(stderr, "  live_blocks %zu -> %zu\n", s0.live_blocks, s1.live_blocks);
    return hk_test_done();
}
