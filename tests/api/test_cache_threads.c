// ctest-labels: threads
// test_cache_threads: object caches shared by threads. Objects allocated on
// one thread and freed on another keep their contents and constructed
// state; threads that exit give their magazines back (nothing is lost: a
// shrink then returns every slab); a thread holding magazines of a
// destroyed cache uses a new cache in the same slot; counts add up; a
// thread's stack of free objects is its own.
#include <pthread.h>
#include <stdatomic.h>

#include "hk_test.h"
#include "api/hk_util.h"

typedef struct {
    uint64_t state;
    uint64_t id;
    char payload[48];
} obj_t;
#define CONSTRUCTED 0xC0757A7EDull

static atomic_long ctors, dtors;
static int obj_ctor(void *p) {
    ((obj_t *)p)->state = CONSTRUCTED;
    atomic_fetch_add(&ctors, 1);
    return 0;
}
static void obj_dtor(void *p) {
    obj_t *o = p;
    if (o->state != CONSTRUCTED) abort();
    o->state = 0;
    atomic_fetch_add(&dtors, 1);
}

/* ---- Producers and consumers through a ring ----------------------------- */

enum { RING = 1024 };
typedef struct {
    obj_t *slot[RING];
    atomic_uint head, tail; /* single producer, single consumer */
    hk_cache_t *cache;
    unsigned count;
    atomic_int bad;
} ring_t;

static void *producer(void *arg) {
    ring_t *r = arg;
    for (unsigned i = 0; i < r->count; i++) {
        obj_t *o = hk_cache_alloc(r->cache);
        if (o == NULL || o->state != CONSTRUCTED) {
            atomic_fetch_add(&r->bad, 1);
            continue;
        }
        o->id = i;
        hk_pat_fill(o->payload, i, sizeof o->payload);
        while (atomic_load(&r->tail) - atomic_load(&r->head) == RING) sched_yield();
        r->slot[atomic_load(&r->tail) % RING] = o;
        atomic_fetch_add(&r->tail, 1);
        /* The producer also churns locally, so its magazines turn over. */
        if (i % 7 == 0) {
            obj_t *t = hk_cache_alloc(r->cache);
            if (t == NULL || t->state != CONSTRUCTED) atomic_fetch_add(&r->bad, 1);
            hk_cache_free(r->cache, t);
        }
    }
    return NULL;
}

static void *consumer(void *arg) {
    ring_t *r = arg;
    for (unsigned got = 0; got < r->count;) {
        if (atomic_load(&r->head) == atomic_load(&r->tail)) {
            if (atomic_load(&r->bad)) break; /* the producer gave up on some */
            sched_yield();
            continue;
        }
        obj_t *o = r->slot[atomic_load(&r->head) % RING];
        atomic_fetch_add(&r->head, 1);
        if (o->state != CONSTRUCTED || !hk_pat_ok(o->payload, o->id, sizeof o->payload))
            atomic_fetch_add(&r->bad, 1);
        hk_cache_free(r->cache, o);
        got++;
    }
    return NULL;
}

static void test_cross_thread(unsigned count) {
    atomic_store(&ctors, 0);
    atomic_store(&dtors, 0);
    hk_cache_t *c = hk_cache_new("ring", sizeof(obj_t), 0, obj_ctor, obj_dtor);
    REQUIRE(c != NULL);
    enum { PAIRS = 2 };
    static ring_t rings[PAIRS];
    pthread_t t[2 * PAIRS];
    for (int i = 0; i < PAIRS; i++) {
        memset(&rings[i], 0, sizeof rings[i]);
        rings[i].cache = c;
        rings[i].count = count;
        REQUIRE(pthread_create(&t[2 * i], NULL, producer, &rings[i]) == 0);
        REQUIRE(pthread_create(&t[2 * i + 1], NULL, consumer, &rings[i]) == 0);
    }
    for (int i = 0; i < 2 * PAIRS; i++) pthread_join(t[i], NULL);
    int bad = 0;
    for (int i = 0; i < PAIRS; i++) bad += atomic_load(&rings[i].bad);
    CHECK(bad == 0);
    hk_cache_stats_t s;
    hk_cache_stats(c, &s);
    /* Every thread has exited: their magazines went back at exit. */
    CHECK(s.live == 0 && s.objects == s.cached + s.free_in_slabs);
    hk_cache_shrink(c);
    hk_cache_stats(c, &s);
    CHECK(s.slabs == 0 && s.cached == 0);
    CHECK(atomic_load(&dtors) == atomic_load(&ctors));
    hk_cache_destroy(c);
}

/* ---- Threads that keep objects alive past their exit -------------------- */

typedef struct {
    hk_cache_t *cache;
    obj_t **out;
    unsigned n;
} keep_arg_t;

static void *alloc_and_exit(void *arg) {
    keep_arg_t *a = arg;
    for (unsigned i = 0; i < a->n; i++) {
        a->out[i] = hk_cache_alloc(a->cache);
        if (a->out[i]) a->out[i]->id = i;
    }
    /* Churn a little so both magazines hold objects at exit. */
    for (unsigned i = 0; i < 300; i++) {
        obj_t *o = hk_cache_alloc(a->cache);
        hk_cache_free(a->cache, o);
    }
    return NULL;
}

static void test_objects_outlive_thread(void) {
    atomic_store(&ctors, 0);
    atomic_store(&dtors, 0);
    hk_cache_t *c = hk_cache_new("outlive", sizeof(obj_t), 0, obj_ctor, obj_dtor);
    REQUIRE(c != NULL);
    enum { THREADS = 16, N = 500 };
    static obj_t *objs[THREADS][N];
    for (int round = 0; round < 4; round++) {
        pthread_t t[THREADS];
        keep_arg_t a[THREADS];
        for (int i = 0; i < THREADS; i++) {
            a[i] = (keep_arg_t){c, objs[i], N};
            REQUIRE(pthread_create(&t[i], NULL, alloc_and_exit, &a[i]) == 0);
        }
        for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
        int bad = 0;
        for (int i = 0; i < THREADS; i++)
            for (unsigned k = 0; k < N; k++)
                if (objs[i][k] == NULL || objs[i][k]->state != CONSTRUCTED || objs[i][k]->id != k)
                    bad++;
        CHECK(bad == 0);
        hk_cache_stats_t s;
        hk_cache_stats(c, &s);
        CHECK(s.live == (size_t)THREADS * N);
        /* The main thread frees what the exited threads allocated. */
        for (int i = 0; i < THREADS; i++)
            for (unsigned k = 0; k < N; k++) hk_cache_free(c, objs[i][k]);
        hk_cache_stats(c, &s);
        CHECK(s.live == 0);
    }
    hk_cache_shrink(c);
    hk_cache_stats_t s;
    hk_cache_stats(c, &s);
    CHECK(s.slabs == 0);
    CHECK(atomic_load(&dtors) == atomic_load(&ctors));
    hk_cache_destroy(c);
}

/* ---- A thread's magazines for a destroyed cache ------------------------- */

static hk_cache_t *shared;
static pthread_barrier_t barrier;
static atomic_int stale_bad;

static void *user_of_two_caches(void *arg) {
    (void)arg;
    void *o = hk_cache_alloc(shared);
    hk_cache_free(shared, o); /* the thread now holds magazines of `shared` */
    pthread_barrier_wait(&barrier);
    pthread_barrier_wait(&barrier); /* main destroyed it and made a new one */
    for (int i = 0; i < 1000; i++) {
        obj_t *p = hk_cache_alloc(shared);
        if (p == NULL || p->state != CONSTRUCTED) atomic_fetch_add(&stale_bad, 1);
        else hk_cache_free(shared, p);
    }
    return NULL;
}

static void test_destroy_then_reuse_slot(void) {
    atomic_store(&ctors, 0);
    atomic_store(&dtors, 0);
    shared = hk_cache_new("first", 64, 0, NULL, NULL);
    REQUIRE(shared != NULL);
    pthread_barrier_init(&barrier, NULL, 2);
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, user_of_two_caches, NULL) == 0);
    pthread_barrier_wait(&barrier);
    hk_cache_destroy(shared);
    shared = hk_cache_new("second", sizeof(obj_t), 0, obj_ctor, obj_dtor);
    REQUIRE(shared != NULL);
    pthread_barrier_wait(&barrier);
    pthread_join(t, NULL);
    CHECK(atomic_load(&stale_bad) == 0);
    hk_cache_stats_t s;
    hk_cache_stats(shared, &s);
    CHECK(s.live == 0 && s.slabs >= 1);
    hk_cache_destroy(shared);
    CHECK(atomic_load(&dtors) == atomic_load(&ctors));
    pthread_barrier_destroy(&barrier);
}

/* ---- A thread's stack is its own ----------------------------------------- */

/* A thread that has no tcache yet must not reach another thread's: the
 * first thread frees an object onto its stack, a second thread (its first
 * call on any cache) allocates, and the first thread's next alloc still
 * returns its own object (the stack is LIFO). A shared entry of the
 * per-thread slot arrays would hand the second thread that object. */
static hk_cache_t *own_cache;
static void *own_obj, *other_obj;
static void *other_thread_alloc(void *arg) {
    (void)arg;
    other_obj = hk_cache_alloc(own_cache);
    return NULL;
}
static void *first_thread(void *arg) {
    (void)arg;
    void *o = hk_cache_alloc(own_cache);
    hk_cache_free(own_cache, o);
    pthread_t t;
    if (pthread_create(&t, NULL, other_thread_alloc, NULL) != 0) return NULL;
    pthread_join(t, NULL);
    own_obj = hk_cache_alloc(own_cache);
    if (own_obj != o) own_obj = NULL;
    return NULL;
}
static void test_stacks_are_private(void) {
    own_cache = hk_cache_new("own", 48, 0, NULL, NULL);
    REQUIRE(own_cache != NULL);
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, first_thread, NULL) == 0);
    pthread_join(t, NULL);
    CHECK(own_obj != NULL && other_obj != NULL && own_obj != other_obj);
    hk_cache_destroy(own_cache);
}

int main(int argc, char **argv) {
    unsigned count = (unsigned)hk_arg(argc, argv, 1, 200000);
    test_cross_thread(count);
    test_objects_outlive_thread();
    test_destroy_then_reuse_slot();
    test_stacks_are_private();
    return hk_test_done();
}
