// test_realloc: hk_realloc / hk_reallocarray grow and shrink across the
// small / medium (32 KiB - 2 MiB less a page) / huge boundaries keeping the
// contents up to min(old, new); NULL acts as malloc; a failed realloc
// leaves the block intact; realloc to 0 neither crashes nor leaks.
#include "hk_test.h"
#include "api/hk_util.h"

/* Reallocates p (holding `old` bytes of pattern `id`) to `size`, checks the
 * first min(old, size) bytes survived, refills the whole usable size with
 * pattern id+1. Returns the new block. */
static void *step(void *p, size_t old, size_t size, uint64_t id, const char *what) {
    void *q = hk_realloc(p, size);
    REQUIRE(q != NULL);
    CHECK(hk_aligned_to(q, hk_min_align(size)));
    size_t u = hk_usable_size(q);
    CHECK(u >= size);
    size_t keep = old < size ? old : size;
    if (!hk_pat_check(q, id, keep, what)) {
        CHECK(0);
        fprintf(stderr, "  realloc %zu -> %zu\n", old, size);
    }
    hk_pat_fill(q, id + 1, u);
    return q;
}

static const size_t walk[] = {
    1, 8, 15, 16, 17, 100, 1000, 4096, 4097, 20000,
    32 * 1024 - 1, 32 * 1024, 32 * 1024 + 1, 40000, 100000, 1024 * 1024,
    2 * 1024 * 1024 - 4096, 2 * 1024 * 1024 - 1, 2 * 1024 * 1024, 2 * 1024 * 1024 + 1, 3 * 1024 * 1024,
    5 * 1024 * 1024 + 5, 16 * 1024 * 1024,
};
enum { NWALK = sizeof walk / sizeof walk[0] };

/* Up the walk one step at a time, then down, then big jumps both ways. */
static void test_walks(void) {
    uint64_t id = 1;
    void *p = hk_malloc(walk[0]);
    REQUIRE(p != NULL);
    size_t old = walk[0];
    hk_pat_fill(p, id, hk_usable_size(p));
    for (int i = 1; i < NWALK; i++) { p = step(p, old, walk[i], id, "up"); old = hk_usable_size(p); id++; }
    for (int i = NWALK - 2; i >= 0; i--) { p = step(p, old, walk[i], id, "down"); old = hk_usable_size(p); id++; }
    /* every pair (a -> b) */
    for (int a = 0; a < NWALK; a++) {
        for (int b = 0; b < NWALK; b++) {
            p = step(p, old, walk[a], id, "pair a");
            old = walk[a]; id++;
            p = step(p, old, walk[b], id, "pair b");
            old = walk[b]; id++;
        }
    }
    hk_free(p);
}

/* Same size and tiny changes: contents stay. */
static void test_small_changes(void) {
    uint64_t id = 100;
    for (int a = 0; a < NWALK; a++) {
        size_t s = walk[a];
        void *p = hk_malloc(s);
        REQUIRE(p != NULL);
        hk_pat_fill(p, id, hk_usable_size(p));
        p = step(p, s, s, id, "same"); id++;
        p = step(p, s, s + 1, id, "plus one"); id++;
        p = step(p, s + 1, s > 1 ? s - 1 : 1, id, "minus one"); id++;
        /* to exactly the usable size: must keep all of it */
        size_t u = hk_usable_size(p);
        p = step(p, u, u, id, "usable"); id++;
        hk_free(p);
    }
}

/* Random walk with several blocks live, each checked on every step. */
static void test_random(void) {
    enum { N = 64 };
    void *p[N] = { 0 };
    size_t sz[N] = { 0 };
    uint64_t ids[N] = { 0 };
    hk_rng_t rng = hk_rng_seeded(4);
    uint64_t id = 1000;
    for (int it = 0; it < 6000; it++) {
        int i = (int)hk_rng_below(&rng, N);
        uint64_t k = hk_rng_below(&rng, 100);
        size_t s;
        if (k < 70) s = 1 + hk_rng_below(&rng, 2048);
        else if (k < 90) s = 1 + hk_rng_below(&rng, 64 * KiB);
        else if (k < 99) s = 32 * KiB + hk_rng_below(&rng, 2 * MiB);
        else s = 2 * MiB + hk_rng_below(&rng, 4 * MiB);
        if (p[i] && hk_rng_below(&rng, 8) == 0) {
            CHECK(hk_pat_check(p[i], ids[i], hk_usable_size(p[i]), "random before free"));
            hk_free(p[i]);
            p[i] = NULL;
            continue;
        }
        /* p[i] may be NULL: realloc(NULL, s) is malloc */
        void *q = hk_realloc(p[i], s);
        REQUIRE(q != NULL);
        CHECK(hk_aligned_to(q, hk_min_align(s)));
        CHECK(hk_usable_size(q) >= s);
        if (p[i]) {
            size_t keep = sz[i] < s ? sz[i] : s;
            CHECK(hk_pat_check(q, ids[i], keep, "random"));
        }
        p[i] = q;
        sz[i] = hk_usable_size(q);
        ids[i] = id++;
        hk_pat_fill(q, ids[i], sz[i]);
    }
    for (int i = 0; i < N; i++) {
        if (p[i]) CHECK(hk_pat_check(p[i], ids[i], sz[i], "random end"));
        hk_free(p[i]);
    }
}

/* realloc(NULL, n) is malloc from the calling thread's heap. */
static void test_null(void) {
    static const size_t sizes[] = { 1, 16, 1000, 40 * 1024, 3 * 1024 * 1024 };
    for (size_t i = 0; i < 5; i++) {
        void *p = hk_realloc(NULL, sizes[i]);
        REQUIRE(p != NULL);
        CHECK(hk_usable_size(p) >= sizes[i]);
        CHECK(hk_aligned_to(p, hk_min_align(sizes[i])));
        CHECK(hk_heap_owns(hk_heap_default(), p));
        memset(p, 1, sizes[i]);
        hk_free(p);
        p = hk_reallocarray(NULL, sizes[i], 1);
        REQUIRE(p != NULL);
        CHECK(hk_usable_size(p) >= sizes[i]);
        hk_free(p);
    }
}

/* A realloc that cannot be served: NULL, ENOMEM, the old block is intact,
 * still owned, and can be freed afterwards. */
static void test_failure(void) {
    static const size_t start[] = { 10, 1000, 30000, 100000, 3 * 1024 * 1024 };
    static const size_t bad[] = { SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 4096, SIZE_MAX / 2 + 1,
                                  (size_t)PTRDIFF_MAX + 1, (size_t)1 << 47 };
    for (size_t i = 0; i < 5; i++) {
        void *p = hk_malloc(start[i]);
        REQUIRE(p != NULL);
        size_t u = hk_usable_size(p);
        hk_pat_fill(p, 7 + i, u);
        for (size_t j = 0; j < sizeof bad / sizeof bad[0]; j++) {
            errno = 0;
            void *q = hk_realloc(p, bad[j]);
            CHECK(q == NULL);
            CHECK(errno == ENOMEM);
            if (q) { /* served after all: do not touch it, go on with it */
                fprintf(stderr, "  hk_realloc(%zu -> %zu) = %p\n", start[i], bad[j], q);
                hk_free(q);
                p = hk_malloc(start[i]);
                REQUIRE(p != NULL);
                u = hk_usable_size(p);
                hk_pat_fill(p, 7 + i, u);
                continue;
            }
            CHECK(hk_usable_size(p) == u);
            CHECK(hk_heap_owns(hk_heap_default(), p));
            CHECK(hk_pat_check(p, 7 + i, u, "failed realloc"));
        }
        /* reallocarray overflow */
        errno = 0;
        CHECK(hk_reallocarray(p, SIZE_MAX / 2 + 1, 2) == NULL);
        CHECK(errno == ENOMEM);
        errno = 0;
        CHECK(hk_reallocarray(p, (size_t)1 << 33, (size_t)1 << 31) == NULL); /* wraps to 0 */
        CHECK(errno == ENOMEM);
        CHECK(hk_pat_check(p, 7 + i, u, "failed reallocarray"));
        /* the block still reallocs fine */
        p = step(p, u, u + 100, 7 + i, "after failure");
        hk_free(p);
    }
}

/* reallocarray without overflow behaves as realloc(count * size). */
static void test_reallocarray(void) {
    void *p = hk_reallocarray(NULL, 10, 10);
    REQUIRE(p != NULL);
    CHECK(hk_usable_size(p) >= 100);
    hk_pat_fill(p, 5, 100);
    p = hk_reallocarray(p, 1000, 100);
    REQUIRE(p != NULL);
    CHECK(hk_usable_size(p) >= 100000);
    CHECK(hk_pat_check(p, 5, 100, "reallocarray grow"));
    hk_pat_fill(p, 6, 100000);
    p = hk_reallocarray(p, 3, 7);
    REQUIRE(p != NULL);
    CHECK(hk_usable_size(p) >= 21);
    CHECK(hk_pat_check(p, 6, 21, "reallocarray shrink"));
    hk_free(p);
}

/* realloc(p, 0): the header says nothing, so accept NULL or a block, but
 * nothing may leak: after freeing a non-NULL result, the heap's live
 * blocks and bytes are back where they were. */
static void test_zero(void) {
    static const size_t sizes[] = { 1, 100, 5000, 50000, 1024 * 1024, 3 * 1024 * 1024 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        hk_stats_t s0 = hk_my_stats();
        void *p = hk_malloc(sizes[i]);
        REQUIRE(p != NULL);
        memset(p, 0xEE, sizes[i]);
        void *q = hk_realloc(p, 0);
        if (q) {
            CHECK(hk_aligned_to(q, 8));
            hk_free(q);
        }
        hk_stats_t s1 = hk_my_stats();
        CHECK(s1.live_blocks == s0.live_blocks);
        CHECK(s1.live_bytes == s0.live_bytes);
    }
}

/* Aligned blocks can be reallocated; contents stay (alignment need not). */
static void test_aligned_source(void) {
    static const size_t al[] = { 64, 4096, 65536, 1024 * 1024 };
    for (size_t i = 0; i < 4; i++) {
        void *p = hk_aligned_alloc(al[i], 300);
        REQUIRE(p != NULL);
        hk_pat_fill(p, 77, 300);
        p = step(p, 300, 70000, 77, "aligned grow");
        p = step(p, 70000, 50, 78, "aligned shrink");
        hk_free(p);
    }
}

int main(void) {
    test_null();
    test_walks();
    test_small_changes();
    test_random();
    test_failure();
    test_reallocarray();
    test_zero();
    test_aligned_source();
    return hk_test_done();
}
