// Object caches (hk_cache_*) on one thread: bad arguments, distinct aligned
// objects, constructed state kept across free and alloc, constructor and
// destructor at slab fill and release, constructor failure, shrink,
// destroy with live objects, slot reuse, statistics, and every bad free.
#include <stdatomic.h>

#include "hk_test.h"
#include "api/hk_util.h"

/* An object type whose constructor marks it, and counts. */
typedef struct {
    uint64_t state;     /* CONSTRUCTED between ctor and dtor */
    uint64_t kept;      /* set by the user, must survive free + alloc */
    char payload[40];
} obj_t;
#define CONSTRUCTED 0xC0757A7EDull
#define DESTRUCTED  0xDE57A7EDull

static long ctors, dtors, fail_after = -1;
static int obj_ctor(void *p) {
    if (fail_after >= 0 && ctors >= fail_after) return -1;
    obj_t *o = p;
    o->state = CONSTRUCTED;
    o->kept = 0;
    ctors++;
    return 0;
}
static void obj_dtor(void *p) {
    obj_t *o = p;
    if (o->state != CONSTRUCTED) abort(); /* destructed twice or never built */
    o->state = DESTRUCTED;
    dtors++;
}

static int cmp_ptr(const void *a, const void *b) {
    uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
    return x < y ? -1 : x > y;
}

static void test_bad_arguments(void) {
    errno = 0;
    CHECK(hk_cache_new("x", 0, 0, NULL, NULL) == NULL && errno == EINVAL);
    errno = 0;
    CHECK(hk_cache_new("x", HK_CACHE_MAX_SIZE + 1, 0, NULL, NULL) == NULL && errno == EINVAL);
    errno = 0;
    CHECK(hk_cache_new("x", SIZE_MAX, 0, NULL, NULL) == NULL && errno == EINVAL);
    errno = 0;
    CHECK(hk_cache_new("x", 16, 24, NULL, NULL) == NULL && errno == EINVAL);
    errno = 0;
    CHECK(hk_cache_new("x", 16, 8192, NULL, NULL) == NULL && errno == EINVAL);
    hk_cache_t *c = hk_cache_new(NULL, HK_CACHE_MAX_SIZE, 4096, NULL, NULL);
    REQUIRE(c != NULL);
    CHECK(strcmp(hk_cache_name(c), "(unnamed)") == 0);
    void *o = hk_cache_alloc(c);
    CHECK(o != NULL && ((uintptr_t)o & 4095) == 0);
    if (o) memset(o, 1, HK_CACHE_MAX_SIZE);
    hk_cache_free(c, o);
    hk_cache_free(c, NULL); /* a no-op */
    hk_cache_destroy(c);
    hk_cache_destroy(NULL);
}

/* Many objects of several sizes and alignments: distinct, aligned, keeping
 * their contents; statistics add up. */
static void test_objects(size_t size, size_t align, size_t n) {
    hk_cache_t *c = hk_cache_new("objects", size, align, NULL, NULL);
    REQUIRE(c != NULL);
    CHECK(strcmp(hk_cache_name(c), "objects") == 0);
    size_t want_align = align ? align : size < 16 ? 8 : 16;
    void **v = malloc(n * sizeof *v);
    REQUIRE(v != NULL);
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        v[i] = hk_cache_alloc(c);
        if (v[i] == NULL || ((uintptr_t)v[i] & (want_align - 1)) != 0) bad++;
        else hk_pat_fill(v[i], i, size);
    }
    CHECK(bad == 0);
    for (size_t i = 0; i < n; i++)
        if (v[i] && !hk_pat_ok(v[i], i, size)) bad++;
    CHECK(bad == 0);
    hk_cache_stats_t s;
    hk_cache_stats(c, &s);
    CHECK(s.object_size >= size && s.object_size % want_align == 0);
    CHECK(s.live == n && s.objects == s.live + s.cached + s.free_in_slabs);
    CHECK(s.objects >= n && s.slabs >= 1 && s.slab_size >= 64 * KiB);
    CHECK(s.objects <= s.slabs * (s.slab_size / s.object_size));
    CHECK(s.cached <= s.objects - n); /* the rest of the objects are free in slabs */
    /* Free in a scrambled order; half, then alloc again, then the rest. */
    hk_rng_t r = hk_rng_seeded(size);
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = hk_rng_below(&r, i + 1);
        void *t = v[i]; v[i] = v[j]; v[j] = t;
    }
    for (size_t i = 0; i < n / 2; i++) hk_cache_free(c, v[i]);
    for (size_t i = 0; i < n / 2; i++) {
        v[i] = hk_cache_alloc(c);
        if (v[i] == NULL) bad++;
    }
    CHECK(bad == 0);
    /* No two live objects are the same. */
    qsort(v, n, sizeof *v, cmp_ptr);
    for (size_t i = 1; i < n; i++)
        if (v[i] == v[i - 1] || (char *)v[i] - (char *)v[i - 1] < (ptrdiff_t)size) bad++;
    CHECK(bad == 0);
    for (size_t i = 0; i < n; i++) hk_cache_free(c, v[i]);
    hk_cache_stats(c, &s);
    CHECK(s.live == 0 && s.cached > 0 && s.cached + s.free_in_slabs == s.objects);
    CHECK(s.cached <= s.objects);
    hk_cache_shrink(c);
    hk_cache_stats(c, &s);
    CHECK(s.slabs == 0 && s.objects == 0 && s.cached == 0 && s.live == 0);
    free(v);
    hk_cache_destroy(c);
}

/* Bonwick's contract: the constructor runs when a slab is filled, not on
 * alloc; an object keeps its state across free and the next alloc; the
 * destructor runs when the slab is given back. */
static void test_constructed_state(void) {
    ctors = dtors = 0;
    fail_after = -1;
    hk_cache_t *c = hk_cache_new("obj", sizeof(obj_t), 0, obj_ctor, obj_dtor);
    REQUIRE(c != NULL);
    CHECK(ctors == 0); /* nothing is built before it is needed */
    obj_t *o = hk_cache_alloc(c);
    REQUIRE(o != NULL);
    CHECK(o->state == CONSTRUCTED);
    long built = ctors;
    CHECK(built >= 16); /* a whole slab */
    o->kept = 42;
    hk_cache_free(c, o);
    obj_t *again = hk_cache_alloc(c);
    CHECK(again == o && again->kept == 42); /* the same object, its state kept */
    CHECK(ctors == built && dtors == 0);
    hk_cache_free(c, again);

    /* Thousands of objects: every one is constructed, none destructed while
     * the cache holds it. */
    enum { N = 5000 };
    static obj_t *v[N];
    int bad = 0;
    for (int i = 0; i < N; i++) {
        v[i] = hk_cache_alloc(c);
        if (v[i] == NULL || v[i]->state != CONSTRUCTED) bad++;
    }
    CHECK(bad == 0);
    CHECK(dtors == 0 && ctors >= N);
    for (int i = 0; i < N; i++) hk_cache_free(c, v[i]);
    hk_cache_shrink(c);
    CHECK(dtors == ctors); /* every slab given back, each object destructed once */
    hk_cache_stats_t s;
    hk_cache_stats(c, &s);
    CHECK(s.slabs == 0);
    /* The cache works on after a shrink. */
    o = hk_cache_alloc(c);
    CHECK(o != NULL && o->state == CONSTRUCTED);
    hk_cache_free(c, o);
    hk_cache_destroy(c);
    CHECK(dtors == ctors);
}

/* A constructor that fails: alloc returns NULL with ENOMEM, what was built
 * is destructed, and the cache works once the constructor succeeds. */
static void test_ctor_failure(void) {
    ctors = dtors = 0;
    fail_after = 5;
    hk_cache_t *c = hk_cache_new("failing", sizeof(obj_t), 0, obj_ctor, obj_dtor);
    REQUIRE(c != NULL);
    errno = 0;
    CHECK(hk_cache_alloc(c) == NULL && errno == ENOMEM);
    CHECK(ctors == 5 && dtors == 5);
    hk_cache_stats_t s;
    hk_cache_stats(c, &s);
    CHECK(s.slabs == 0 && s.live == 0);
    fail_after = -1;
    obj_t *o = hk_cache_alloc(c);
    CHECK(o != NULL && o->state == CONSTRUCTED);
    hk_cache_free(c, o);
    hk_cache_destroy(c);
    CHECK(dtors == ctors);
}

/* Destroy with objects still allocated: the free ones are destructed, the
 * live ones released as they are. */
static void test_destroy_with_live(void) {
    ctors = dtors = 0;
    fail_after = -1;
    hk_cache_t *c = hk_cache_new("live", sizeof(obj_t), 0, obj_ctor, obj_dtor);
    REQUIRE(c != NULL);
    enum { N = 300, FREED = 120 };
    obj_t *v[N];
    for (int i = 0; i < N; i++) REQUIRE((v[i] = hk_cache_alloc(c)) != NULL);
    for (int i = 0; i < FREED; i++) hk_cache_free(c, v[i]);
    hk_cache_destroy(c);
    CHECK(dtors == ctors - (N - FREED));
}

/* Caches made and destroyed in a loop reuse slots; a long-lived cache
 * beside them is not disturbed. */
static void test_many_caches(void) {
    hk_cache_t *keep = hk_cache_new("keep", 24, 8, NULL, NULL);
    REQUIRE(keep != NULL);
    enum { K = 200 };
    void *kv[K];
    for (int i = 0; i < K; i++) {
        REQUIRE((kv[i] = hk_cache_alloc(keep)) != NULL);
        hk_pat_fill(kv[i], (uint64_t)i, 24);
    }
    int bad = 0;
    for (int round = 0; round < 300; round++) {
        hk_cache_t *c[3];
        for (int k = 0; k < 3; k++) {
            c[k] = hk_cache_new("tmp", (size_t)(8 + 24 * k + round % 50), 0, NULL, NULL);
            if (c[k] == NULL) { bad++; continue; }
            void *o[10];
            for (int i = 0; i < 10; i++) o[i] = hk_cache_alloc(c[k]);
            for (int i = 0; i < 10; i++) {
                if (o[i] == NULL) bad++;
                hk_cache_free(c[k], o[i]);
            }
        }
        for (int k = 0; k < 3; k++) hk_cache_destroy(c[k]);
    }
    CHECK(bad == 0);
    for (int i = 0; i < K; i++)
        if (!hk_pat_ok(kv[i], (uint64_t)i, 24)) bad++;
    CHECK(bad == 0);
    for (int i = 0; i < K; i++) hk_cache_free(keep, kv[i]);
    hk_cache_stats_t s;
    hk_cache_stats(keep, &s);
    CHECK(s.live == 0 && s.cached > 0 && s.cached + s.free_in_slabs == s.objects);
    hk_cache_destroy(keep);
}

static void test_is_heap_memory(void) {
    int local = 0;
    CHECK(!hk_is_heap_memory(&local));
    CHECK(!hk_is_heap_memory(NULL));
    CHECK(!hk_is_heap_memory((void *)test_is_heap_memory));
    void *small = hk_malloc(24), *medium = hk_malloc(100 * KiB);
    size_t huge_size = 3 * MiB + 5;
    char *huge = hk_malloc(huge_size);
    REQUIRE(small && medium && huge);
    CHECK(hk_is_heap_memory(small) && hk_is_heap_memory(medium));
    CHECK(hk_is_heap_memory(huge) && hk_is_heap_memory(huge + huge_size - 1));
    /* Past the first 4 MiB of a huge block, and a pool block far into one. */
    size_t big_size = 13 * MiB;
    char *big = hk_malloc(big_size);
    REQUIRE(big != NULL);
    CHECK(hk_is_heap_memory(big + 5 * MiB) && hk_is_heap_memory(big + 9 * MiB));
    CHECK(hk_is_heap_memory(big + big_size - 1));
    hk_pool_t *pool = hk_pool_new(NULL);
    REQUIRE(pool != NULL);
    char *far = hk_pool_aligned_alloc(pool, 4 * MiB, 100);
    CHECK(far != NULL && hk_is_heap_memory(far) && hk_is_heap_memory(far + 99));
    hk_pool_destroy(pool);
    hk_free(big);
    hk_free(small);
    hk_free(medium);
    hk_free(huge);
}

/* ---- Bad frees: reported with the cache's name, then abort ------------- */

static hk_cache_t *ca, *cb;
static void free_into_wrong_cache(void *arg) {
    (void)arg;
    void *o = hk_cache_alloc(ca);
    hk_cache_free(cb, o);
}
/* The thread remembers the slab it last checked; a slab given back and its
 * memory reused by another cache must not pass for the first cache's. */
static void free_into_wrong_cache_after_shrink(void *arg) {
    (void)arg;
    void *o = hk_cache_alloc(ca);
    hk_cache_free(ca, o); /* remembered */
    hk_cache_shrink(ca);  /* and given back */
    void *b = hk_cache_alloc(cb);
    if (((uintptr_t)b & ~(uintptr_t)0xffff) == ((uintptr_t)o & ~(uintptr_t)0xffff))
        fprintf(stderr, "(same slab memory reused)\n");
    hk_cache_free(ca, b);
}
static void free_malloc_block(void *arg) {
    (void)arg;
    hk_cache_free(ca, hk_malloc(48));
}
static void free_stack_address(void *arg) {
    (void)arg;
    char local[64];
    hk_cache_free(ca, local);
}
static void free_interior(void *arg) {
    size_t off = (size_t)(uintptr_t)arg;
    char *o = hk_cache_alloc(ca);
    hk_cache_free(ca, o + off);
}
static void free_twice(void *arg) {
    (void)arg;
    void *o = hk_cache_alloc(ca);
    hk_cache_free(ca, o);
    hk_cache_free(ca, o);
    hk_cache_shrink(ca); /* the magazines go back to the slabs: caught there */
}

static void test_bad_frees(void) {
    ca = hk_cache_new("apples", 40, 0, NULL, NULL);
    cb = hk_cache_new("pears", 40, 0, NULL, NULL);
    REQUIRE(ca && cb);
    char out[8192];
    CHECK(hk_expect_death_ex(free_into_wrong_cache, NULL, "hk_cache_free(): wrong cache 0x",
                             "an object of cache \"apples\" freed into cache \"pears\"", out, sizeof out));
    CHECK(hk_expect_death_ex(free_into_wrong_cache_after_shrink, NULL, "hk_cache_free(): wrong cache 0x",
                             "an object of cache \"pears\" freed into cache \"apples\"", out, sizeof out));
    CHECK(hk_expect_death_ex(free_malloc_block, NULL, "hk_cache_free(): invalid pointer 0x",
                             "not an object of the cache", out, sizeof out));
    CHECK(hk_expect_death_ex(free_stack_address, NULL, "hk_cache_free(): invalid pointer 0x",
                             "not heap memory", out, sizeof out));
    /* Interior pointers, for strides with and without a power-of-two factor. */
    size_t offs[] = {1, 8, 16, 20, 39};
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++)
        CHECK(hk_expect_death_ex(free_interior, (void *)(uintptr_t)offs[i], "invalid pointer 0x",
                                 "inside an object", out, sizeof out));
    CHECK(hk_expect_death_ex(free_twice, NULL, "hk_cache_free(): double free 0x", "\"apples\"", out,
                             sizeof out));
    hk_cache_destroy(ca);
    hk_cache_destroy(cb);
    /* Strides of odd multiples: 24 (3 << 3), 100 (25 << 2), 4096 (1 << 12). */
    size_t sizes[] = {24, 100, 4096, 7};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        ca = hk_cache_new("odd", sizes[k], sizes[k] == 7 ? 1 : 0, NULL, NULL);
        REQUIRE(ca != NULL);
        hk_cache_stats_t s;
        hk_cache_stats(ca, &s);
        size_t probe[] = {1, s.object_size / 2, s.object_size - 1};
        for (size_t i = 0; i < 3; i++)
            CHECK(hk_expect_death_ex(free_interior, (void *)(uintptr_t)probe[i], "invalid pointer 0x",
                                     "inside an object", out, sizeof out));
        /* And the start of every object of a slab is accepted. */
        void *o[600];
        int n = 0, bad = 0;
        for (; n < 600; n++)
            if ((o[n] = hk_cache_alloc(ca)) == NULL) bad++;
        for (int i = 0; i < n; i++) hk_cache_free(ca, o[i]);
        CHECK(bad == 0);
        hk_cache_destroy(ca);
    }
}

int main(void) {
    test_bad_arguments();
    test_objects(8, 0, 20000);
    test_objects(40, 0, 20000);
    test_objects(24, 64, 5000);
    test_objects(200, 0, 20000);
    test_objects(5000, 0, 300);
    test_objects(100 * KiB, 0, 40);
    test_constructed_state();
    test_ctor_failure();
    test_destroy_with_live();
    test_many_caches();
    test_is_heap_memory();
    test_bad_frees();
    return hk_test_done();
}
