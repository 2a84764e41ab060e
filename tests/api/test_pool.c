// Region pools (hk_pool_*): bump allocation, large blocks, cleanups, reset,
// destroy, statistics, bad input.
#include "hk_test.h"
#include "heapkit.h"

static int order[16], norder;
static void note(void *arg) { order[norder++] = (int)(intptr_t)arg; }

/* Blocks are aligned, distinct and keep their contents; reset reuses the
 * same memory; cleanups run newest first at reset and at destroy. */
static void test_basics(void) {
    hk_pool_t *p = hk_pool_new(NULL);
    REQUIRE(p != NULL);
    enum { N = 20000 };
    static unsigned char *b[N];
    static size_t n[N];
    hk_rng_t r = hk_rng_seeded(7);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        n[i] = 1 + hk_rng_below(&r, hk_rng_below(&r, 10) ? 200 : 40000);
        b[i] = hk_pool_alloc(p, n[i]);
        if (!b[i] || ((uintptr_t)b[i] & 15)) bad++;
        else memset(b[i], (int)(i & 255), n[i]);
    }
    for (int i = 0; i < N; i++)
        for (size_t k = 0; k < n[i]; k += 97)
            if (b[i][k] != (unsigned char)(i & 255)) { bad++; break; }
    CHECK(bad == 0);
    hk_pool_stats_t s;
    hk_pool_stats(p, &s);
    size_t asked = 0;
    for (int i = 0; i < N; i++) asked += n[i];
    CHECK(s.handed_out == asked);
    CHECK(s.held >= asked);
    CHECK(s.waste < s.held);
    size_t pieces = s.pieces;

    CHECK(hk_pool_cleanup_add(p, note, (void *)1) == 0);
    CHECK(hk_pool_cleanup_add(p, note, (void *)2) == 0);
    void *first_small = hk_pool_alloc(p, 32);
    hk_pool_reset(p);
    CHECK(norder == 2 && order[0] == 2 && order[1] == 1);
    hk_pool_stats(p, &s);
    CHECK(s.handed_out == 0);
    CHECK(s.pieces == pieces); /* memory kept for the next round */
    /* The same work again takes no new piece. */
    for (int i = 0; i < N; i++) CHECK(hk_pool_alloc(p, n[i]) != NULL);
    hk_pool_stats(p, &s);
    CHECK(s.pieces == pieces);
    (void)first_small;
    CHECK(hk_pool_cleanup_add(p, note, (void *)3) == 0);
    norder = 0;
    hk_pool_destroy(p);
    CHECK(norder == 1 && order[0] == 3);
}

/* Large blocks: their own memory, freed early or with the pool. */
static void test_large(void) {
    hk_heap_t *h = hk_heap_new();
    hk_pool_t *p = hk_pool_new(h);
    REQUIRE(p != NULL);
    hk_stats_t s0, s1;
    hk_heap_stats(h, &s0);
    char *big = hk_pool_alloc(p, 1 << 20);
    REQUIRE(big != NULL);
    memset(big, 7, 1 << 20);
    hk_heap_stats(h, &s1);
    CHECK(s1.live_bytes >= s0.live_bytes + (1 << 20));
    hk_pool_free_large(p, big);
    hk_heap_stats(h, &s1);
    CHECK(s1.live_bytes < s0.live_bytes + (1 << 20));
    char *a = hk_pool_aligned_alloc(p, 4096, 100000);
    CHECK(a != NULL && ((uintptr_t)a & 4095) == 0);
    char *q = hk_pool_aligned_alloc(p, 64, 100);
    CHECK(q != NULL && ((uintptr_t)q & 63) == 0);
    CHECK(hk_pool_aligned_alloc(p, 48, 10) == NULL && errno == EINVAL);
    hk_pool_destroy(p);
    hk_heap_stats(h, &s1);
    CHECK(s1.live_blocks == 0); /* every piece and block went back */
    hk_heap_destroy(h);
}

static void test_helpers(void) {
    hk_pool_t *p = hk_pool_new(NULL);
    char *s = hk_pool_strdup(p, "pooled string");
    CHECK(s && strcmp(s, "pooled string") == 0);
    unsigned char *z = hk_pool_calloc(p, 1000, 3);
    int nz = 0;
    for (int i = 0; z && i < 3000; i++) nz += z[i] != 0;
    CHECK(z != NULL && nz == 0);
    errno = 0;
    CHECK(hk_pool_calloc(p, SIZE_MAX / 2, 3) == NULL && errno == ENOMEM);
    CHECK(hk_pool_alloc(p, SIZE_MAX) == NULL && errno == ENOMEM);
    hk_pool_destroy(p);
}

static void free_pool_block(void *arg) {
    (void)arg;
    hk_pool_t *p = hk_pool_new(NULL);
    hk_free(hk_pool_alloc(p, 100));
}
static void free_large_of_other_pool(void *arg) {
    (void)arg;
    hk_pool_t *a = hk_pool_new(NULL), *b = hk_pool_new(NULL);
    hk_pool_free_large(b, hk_pool_alloc(a, 100000));
}

int main(void) {
    test_basics();
    test_large();
    test_helpers();
    CHECK(hk_expect_death(free_pool_block, NULL, "free(): invalid pointer"));
    CHECK(hk_expect_death(free_large_of_other_pool, NULL, "not a large block of this pool"));
    return hk_test_done();
}
