// test_calloc: hk_calloc returns zeroed memory even when it reuses a dirty
// block (small, medium 32 KiB - 2 MiB less a page, huge, explicit heaps, after
// buddy coalescing and after hk_collect), and count * size overflow gives
// NULL with ENOMEM.
#include "hk_test.h"
#include "api/hk_util.h"

/* Checks [0, n) of a calloc result is zero; reports the first bad byte. */
static bool zero_ok(const void *p, size_t n, const char *what) {
    size_t bad = hk_find_nonzero(p, n);
    if (bad == (size_t)-1) return true;
    fprintf(stderr, "calloc not zero (%s): block %p size %zu: byte %zu is 0x%02x\n",
            what, p, n, bad, ((const uint8_t *)p)[bad]);
    return false;
}

/* For one size: dirty K blocks (whole usable size), free them, calloc K
 * blocks of the same size (which should land on the dirty memory) and
 * check every requested byte is zero. Repeated with the calloc blocks
 * dirtied in turn. Several count/size splits of the same byte count. */
static void dirty_reuse(size_t size, int k) {
    void *p[64];
    if (k > 64) k = 64;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < k; i++) {
            p[i] = hk_malloc(size);
            REQUIRE(p[i] != NULL);
            memset(p[i], 0xA5, hk_usable_size(p[i]));
        }
        for (int i = k - 1; i >= 0; i--) hk_free(p[i]);
        for (int i = 0; i < k; i++) {
            size_t count = 1, sz = size;
            if (round == 1 && size % 4 == 0) { count = 4; sz = size / 4; }
            if (round == 2 && size % 2 == 0) { count = size / 2; sz = 2; }
            p[i] = hk_calloc(count, sz);
            REQUIRE(p[i] != NULL);
            CHECK(hk_aligned_to(p[i], hk_min_align(size)));
            CHECK(hk_usable_size(p[i]) >= size);
            CHECK(zero_ok(p[i], size, "dirty reuse"));
            memset(p[i], 0x5A, hk_usable_size(p[i]));
        }
        for (int i = 0; i < k; i++) hk_free(p[i]);
    }
}

static void test_dirty_reuse_sizes(void) {
    for (size_t s = 1; s <= 1024; s++) dirty_reuse(s, 8);
    for (size_t s = 1024; s <= 32 * KiB + 16; s += 368) dirty_reuse(s, 8);
    static const size_t medium[] = {
        32 * KiB + 1, 33 * KiB, 40 * KiB, 64 * KiB - 8, 64 * KiB, 100 * KiB,
        128 * KiB + 4096, 255 * KiB, 256 * KiB, 500 * KiB, 1 * MiB - 1, 1 * MiB,
        1 * MiB + 4097, 1536 * KiB, 2 * MiB - 4096,
    };
    for (size_t i = 0; i < sizeof medium / sizeof medium[0]; i++) dirty_reuse(medium[i], 6);
    static const size_t huge[] = { 2 * MiB - 4095, 2 * MiB, 2 * MiB + 1, 2 * MiB + 4096, 3 * MiB, 5 * MiB + 7, 8 * MiB, 17 * MiB };
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) dirty_reuse(huge[i], 2);
}

/* Medium churn: random dirty mallocs and frees let the buddy allocator
 * split and merge dirty and clean pieces; every calloc must still be zero. */
static void test_medium_churn(void) {
    enum { SLOTS = 24 };
    void *p[SLOTS] = { 0 };
    hk_rng_t rng = hk_rng_seeded(2);
    int bad = 0;
    for (int it = 0; it < 3000; it++) {
        int i = (int)hk_rng_below(&rng, SLOTS);
        if (p[i]) {
            hk_free(p[i]);
            p[i] = NULL;
            continue;
        }
        size_t s;
        uint64_t k = hk_rng_below(&rng, 10);
        if (k < 6) s = 32 * KiB + hk_rng_below(&rng, 256 * KiB);
        else if (k < 9) s = 256 * KiB + hk_rng_below(&rng, 1792 * KiB);
        else s = 1 + hk_rng_below(&rng, 32 * KiB);
        if (hk_rng_below(&rng, 2)) {
            p[i] = hk_calloc(1, s);
            REQUIRE(p[i] != NULL);
            if (!zero_ok(p[i], s, "medium churn")) bad++;
        } else {
            p[i] = hk_malloc(s);
            REQUIRE(p[i] != NULL);
        }
        /* Dirty everything, calloc'd or not, so later reuse is dirty. */
        memset(p[i], 0xC3, hk_usable_size(p[i]));
        if (it % 500 == 499) hk_collect(it % 1000 == 999);
    }
    CHECK(bad == 0);
    for (int i = 0; i < SLOTS; i++) hk_free(p[i]);
}

/* Small churn with many blocks of a handful of classes. */
static void test_small_churn(void) {
    enum { SLOTS = 4096 };
    void **p = calloc(SLOTS, sizeof *p);
    REQUIRE(p != NULL);
    hk_rng_t rng = hk_rng_seeded(3);
    int bad = 0;
    for (int it = 0; it < 200000; it++) {
        int i = (int)hk_rng_below(&rng, SLOTS);
        if (p[i]) { hk_free(p[i]); p[i] = NULL; continue; }
        size_t s = 1 + hk_rng_below(&rng, hk_rng_below(&rng, 8) ? 256 : 32 * KiB);
        if (hk_rng_below(&rng, 2)) {
            p[i] = hk_calloc(s, 1);
            REQUIRE(p[i] != NULL);
            if (!zero_ok(p[i], s, "small churn")) bad++;
        } else {
            p[i] = hk_malloc(s);
            REQUIRE(p[i] != NULL);
        }
        memset(p[i], 0xFF, hk_usable_size(p[i]));
    }
    CHECK(bad == 0);
    for (int i = 0; i < SLOTS; i++) hk_free(p[i]);
    free(p);
}

/* Explicit heaps: same contract. */
static void test_heap_calloc(void) {
    hk_heap_t *h = hk_heap_new();
    REQUIRE(h != NULL);
    static const size_t sizes[] = { 8, 24, 100, 1000, 5000, 32 * KiB, 40 * KiB, 700 * KiB, 2 * MiB, 3 * MiB };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t s = sizes[i];
        void *a[8];
        for (int j = 0; j < 8; j++) {
            a[j] = hk_heap_malloc(h, s);
            REQUIRE(a[j] != NULL);
            memset(a[j], 0x77, hk_usable_size(a[j]));
        }
        for (int j = 0; j < 8; j++) hk_free(a[j]);
        for (int j = 0; j < 8; j++) {
            a[j] = hk_heap_calloc(h, 1, s);
            REQUIRE(a[j] != NULL);
            CHECK(hk_heap_owns(h, a[j]));
            CHECK(zero_ok(a[j], s, "heap calloc"));
            memset(a[j], 0x77, hk_usable_size(a[j]));
        }
        for (int j = 0; j < 8; j++) hk_free(a[j]);
    }
    errno = 0;
    CHECK(hk_heap_calloc(h, SIZE_MAX / 2, 3) == NULL);
    CHECK(errno == ENOMEM);
    hk_heap_destroy(h);
}

/* Overflowing count * size: NULL with ENOMEM, earlier blocks intact. */
static void test_overflow(void) {
    void *keep = hk_malloc(300);
    REQUIRE(keep != NULL);
    hk_pat_fill(keep, 42, 300);
    static const size_t bad[][2] = {
        { SIZE_MAX, SIZE_MAX },
        { SIZE_MAX, 2 },
        { 2, SIZE_MAX },
        { SIZE_MAX / 2 + 1, 2 },
        { 2, SIZE_MAX / 2 + 1 },
        { (size_t)1 << 32, (size_t)1 << 32 },
        { ((size_t)1 << 32) + 1, ((size_t)1 << 32) - 1 }, /* 2^64 - 1: no overflow but too big */
        { (size_t)1 << 33, (size_t)1 << 31 },             /* exactly 2^64: wraps to 0 */
        { 65537, SIZE_MAX / 65536 },
        { 1, SIZE_MAX - 8 },
        { (size_t)1 << 24, (size_t)1 << 24 },             /* 256 TiB, no overflow: no room */
        { (size_t)1 << 20, (size_t)1 << 27 },             /* 128 TiB: no room */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        void *p = hk_calloc(bad[i][0], bad[i][1]);
        CHECK(p == NULL);
        CHECK(errno == ENOMEM);
        if (p || errno != ENOMEM)
            fprintf(stderr, "  hk_calloc(%zu, %zu) = %p errno %d\n", bad[i][0], bad[i][1], p, errno);
        if (p) hk_free(p);
    }
    CHECK(hk_pat_check(keep, 42, 300, "overflow"));
    hk_free(keep);
}

/* calloc with a zero count or size: the header is silent, accept NULL or a
 * freeable block. */
static void test_zero_count(void) {
    void *a = hk_calloc(0, 100);
    void *b = hk_calloc(100, 0);
    void *c = hk_calloc(0, 0);
    if (a && b) CHECK(a != b);
    CHECK(a == NULL || hk_aligned_to(a, 8));
    CHECK(b == NULL || hk_aligned_to(b, 8));
    hk_free(a); hk_free(b); hk_free(c);
}

int main(void) {
    test_overflow();
    test_zero_count();
    test_dirty_reuse_sizes();
    test_medium_churn();
    test_small_churn();
    test_heap_calloc();
    return hk_test_done();
}
