// test_malloc: hk_malloc / hk_free / hk_usable_size and the alignment
// guarantee, over every size class boundary region (small, medium 32 KiB -
// 2 MiB less a page, huge from there), plus sizes that cannot be served
// (NULL + ENOMEM).
#include "hk_test.h"
#include "api/hk_util.h"

#include <stdint.h>

/* One block: allocate, check alignment and usable size, write the whole
 * usable size, return it. */
static void *alloc_checked(size_t size, uint64_t id, size_t *usable) {
    void *p = hk_malloc(size);
    CHECK(p != NULL);
    if (!p) return NULL;
    CHECK(hk_aligned_to(p, hk_min_align(size)));
    size_t u = hk_usable_size(p);
    CHECK(u >= size);
    hk_pat_fill(p, id, u);
    *usable = u;
    return p;
}

/* Every size 1..4096 and a geometric walk up to 64 MiB, one at a time. */
static void test_each_size(void) {
    size_t u;
    for (size_t s = 1; s <= 4096; s++) {
        void *p = alloc_checked(s, s, &u);
        if (!p) continue;
        CHECK(hk_usable_size(p) == u); /* stable */
        CHECK(hk_pat_check(p, s, u, "each_size"));
        hk_free(p);
    }
    for (size_t s = 4096; s <= 64 * MiB; s += s / 7 + 1) {
        void *p = alloc_checked(s, s, &u);
        if (!p) continue;
        CHECK(hk_pat_check(p, s, u, "geometric"));
        hk_free(p);
    }
}

/* Sizes right at the small/medium/huge boundaries, all live together. */
static void test_boundaries(void) {
    static const size_t sizes[] = {
        1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129,
        1023, 1024, 1025, 4095, 4096, 4097, 8191, 8192, 8193,
        32 * 1024 - 1, 32 * 1024, 32 * 1024 + 1, 48 * 1024, 64 * 1024 - 1,
        64 * 1024, 64 * 1024 + 1, 1024 * 1024 - 1, 1024 * 1024,
        1024 * 1024 + 1, 2 * 1024 * 1024 - 4096, 2 * 1024 * 1024 - 1,
        2 * 1024 * 1024, 2 * 1024 * 1024 + 1, 2 * 1024 * 1024 + 4096,
        4 * 1024 * 1024 - 1, 4 * 1024 * 1024, 4 * 1024 * 1024 + 1,
        9 * 1024 * 1024 + 123,
    };
    enum { N = sizeof sizes / sizeof sizes[0] };
    void *p[N];
    size_t u[N];
    for (int i = 0; i < N; i++) p[i] = alloc_checked(sizes[i], 1000 + i, &u[i]);
    for (int i = 0; i < N; i++) {
        if (!p[i]) continue;
        CHECK(hk_usable_size(p[i]) == u[i]);
        CHECK(hk_pat_check(p[i], 1000 + i, u[i], "boundaries"));
    }
    /* free in a shuffled order */
    for (int i = 0; i < N; i++) hk_free(p[(i * 7) % N]);
}

/* Many live blocks at once: pairwise disjoint (sorted check) and intact. */
typedef struct { uintptr_t lo, hi; int idx; } range_t;
static int cmp_range(const void *a, const void *b) {
    const range_t *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}
static void test_many_live(void) {
    enum { N = 20000 };
    void **p = calloc(N, sizeof *p);
    size_t *u = calloc(N, sizeof *u);
    range_t *r = calloc(N, sizeof *r);
    REQUIRE(p && u && r);
    hk_rng_t rng = hk_rng_seeded(1);
    for (int i = 0; i < N; i++) {
        uint64_t k = hk_rng_below(&rng, 1000);
        size_t s;
        if (k < 900) s = 1 + hk_rng_below(&rng, 512);            /* small */
        else if (k < 990) s = 512 + hk_rng_below(&rng, 32 * KiB); /* larger small */
        else if (k < 999) s = 32 * KiB + hk_rng_below(&rng, 512 * KiB); /* medium */
        else s = 2 * MiB + hk_rng_below(&rng, 2 * MiB);          /* huge */
        p[i] = alloc_checked(s, 50000 + i, &u[i]);
        r[i].lo = (uintptr_t)p[i];
        r[i].hi = (uintptr_t)p[i] + u[i];
        r[i].idx = i;
    }
    qsort(r, N, sizeof *r, cmp_range);
    int overlaps = 0;
    for (int i = 1; i < N; i++)
        if (r[i].lo && r[i - 1].lo && r[i].lo < r[i - 1].hi) overlaps++;
    CHECK(overlaps == 0);
    int broken = 0;
    for (int i = 0; i < N; i++)
        if (p[i] && !hk_pat_check(p[i], 50000 + i, u[i], "many_live")) broken++;
    CHECK(broken == 0);
    /* Free the odd ones, allocate again, everything still intact. */
    for (int i = 1; i < N; i += 2) { hk_free(p[i]); p[i] = NULL; }
    for (int i = 1; i < N; i += 2) {
        size_t s = 1 + hk_rng_below(&rng, 2048);
        p[i] = alloc_checked(s, 90000 + i, &u[i]);
    }
    broken = 0;
    for (int i = 0; i < N; i++) {
        uint64_t id = (i % 2) ? 90000 + i : 50000 + i;
        if (p[i] && !hk_pat_check(p[i], id, u[i], "many_live 2")) broken++;
    }
    CHECK(broken == 0);
    for (int i = 0; i < N; i++) hk_free(p[i]);
    free(p); free(u); free(r);
}

/* The header is silent on malloc(0): accept NULL or a real block; a real
 * block must be freeable, and two live ones must be distinct. */
static void test_zero(void) {
    void *a = hk_malloc(0);
    void *b = hk_malloc(0);
    if (a && b) CHECK(a != b);
    if (a) CHECK(hk_aligned_to(a, 8));
    CHECK(a == NULL || hk_usable_size(a) < SIZE_MAX);
    hk_free(a);
    hk_free(b);
}

static void test_null(void) {
    hk_free(NULL); /* no-op */
    CHECK(hk_usable_size(NULL) == 0);
}

/* Sizes that overflow or the OS refuses: NULL with ENOMEM, nothing lost. */
static void test_too_big(void) {
    size_t u;
    void *keep = alloc_checked(1000, 7, &u);
    void *keep2 = alloc_checked(100 * KiB, 8, &u);
    static const size_t bad[] = {
        SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 15, SIZE_MAX - 4096, SIZE_MAX - 4 * 1024 * 1024,
        SIZE_MAX / 2, SIZE_MAX / 2 + 1, (size_t)PTRDIFF_MAX, (size_t)PTRDIFF_MAX + 1,
        /* No overflow, but more than the 47-bit user address space holds:
         * the OS must refuse. (2^46 is not used: with overcommit and
         * MAP_NORESERVE Linux may really reserve 64 TiB.) */
        (size_t)1 << 48, (size_t)1 << 47, ((size_t)1 << 47) - 4096 * 1024,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        void *p = hk_malloc(bad[i]);
        CHECK(p == NULL);
        CHECK(errno == ENOMEM);
        if (p == NULL && errno != ENOMEM)
            fprintf(stderr, "  hk_malloc(%zu): errno %d\n", bad[i], errno);
        if (p) hk_free(p);
    }
    CHECK(hk_pat_check(keep, 7, 1000, "too_big"));
    CHECK(hk_pat_check(keep2, 8, 100 * KiB, "too_big"));
    /* still working afterwards */
    void *p = alloc_checked(12345, 9, &u);
    hk_free(p);
    hk_free(keep);
    hk_free(keep2);
}

/* Blocks are reused: a free/malloc loop of one size must not grow the heap
 * without bound (it would with a leak). Live bytes go back to where they
 * were. */
static void test_no_leak_loop(void) {
    hk_stats_t s0 = hk_my_stats();
    for (int i = 0; i < 200000; i++) {
        void *p = hk_malloc(1 + (size_t)(i % 3000));
        CHECK(p != NULL);
        if (p) *(volatile char *)p = 1;
        hk_free(p);
    }
    for (int i = 0; i < 300; i++) {
        void *p = hk_malloc(64 * KiB + (size_t)i * 4096);
        REQUIRE(p != NULL);
        hk_free(p);
    }
    hk_stats_t s1 = hk_my_stats();
    CHECK(s1.live_blocks == s0.live_blocks);
    CHECK(s1.live_bytes == s0.live_bytes);
    /* 200k blocks of up to 3000 bytes were handed out; if none were reused
     * mapped would be hundreds of MiB. */
    CHECK(s1.mapped_bytes <= s0.mapped_bytes + 64 * MiB);
}

int main(void) {
    test_null();
    test_zero();
    test_each_size();
    test_boundaries();
    test_many_live();
    test_too_big();
    test_no_leak_loop();
    return hk_test_done();
}
