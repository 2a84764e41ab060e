// test_heap: explicit heaps on one thread. hk_heap_new / hk_heap_malloc /
// calloc / realloc / aligned_alloc, hk_heap_owns, hk_free of explicit-heap
// blocks, hk_heap_destroy with live blocks releasing everything at once
// (mapped and committed bytes drop), new heaps working afterwards, many
// heaps created and destroyed without growth.
#include "hk_test.h"
#include "api/hk_util.h"

/* A mixed population of blocks in heap h; returns the count. */
static int fill_heap(hk_heap_t *h, void **out, int max, size_t total, uint64_t seed) {
    hk_rng_t rng = hk_rng_seeded(seed);
    size_t sum = 0;
    int n = 0;
    while (sum < total && n < max) {
        uint64_t k = hk_rng_below(&rng, 100);
        size_t s;
        if (k < 80) s = 1 + hk_rng_below(&rng, 4096);
        else if (k < 97) s = 32 * KiB + hk_rng_below(&rng, 512 * KiB);
        else s = 2 * MiB + 1 + hk_rng_below(&rng, 3 * MiB);
        void *p = hk_heap_malloc(h, s);
        REQUIRE(p != NULL);
        memset(p, 0x3C, hk_usable_size(p));
        out[n++] = p;
        sum += s;
    }
    return n;
}

static void test_basic(void) {
    hk_heap_t *h = hk_heap_new();
    REQUIRE(h != NULL);
    hk_heap_t *d = hk_heap_default();
    REQUIRE(d != NULL);
    CHECK(h != d);
    CHECK(hk_heap_default() == d); /* stable */

    static const size_t sizes[] = { 1, 16, 100, 1000, 32 * KiB, 40 * KiB, 1 * MiB, 2 * MiB, 3 * MiB };
    enum { NS = sizeof sizes / sizeof sizes[0] };
    void *hp[NS], *dp[NS];
    for (int i = 0; i < NS; i++) {
        hp[i] = hk_heap_malloc(h, sizes[i]);
        dp[i] = hk_malloc(sizes[i]);
        REQUIRE(hp[i] && dp[i]);
        CHECK(hk_aligned_to(hp[i], hk_min_align(sizes[i])));
        CHECK(hk_usable_size(hp[i]) >= sizes[i]);
        hk_pat_fill(hp[i], 10 + i, hk_usable_size(hp[i]));
        hk_pat_fill(dp[i], 20 + i, hk_usable_size(dp[i]));
    }
    for (int i = 0; i < NS; i++) {
        CHECK(hk_heap_owns(h, hp[i]));
        CHECK(!hk_heap_owns(d, hp[i]));
        CHECK(hk_heap_owns(d, dp[i]));
        CHECK(!hk_heap_owns(h, dp[i]));
        /* an interior pointer is not a live block (from 16 bytes up, p + 8
         * cannot be the start of a neighbour) */
        if (sizes[i] >= 16) CHECK(!hk_heap_owns(h, (char *)hp[i] + 8));
        CHECK(hk_pat_check(hp[i], 10 + i, hk_usable_size(hp[i]), "heap block"));
        CHECK(hk_pat_check(dp[i], 20 + i, hk_usable_size(dp[i]), "default block"));
    }
    int x;
    CHECK(!hk_heap_owns(h, &x));
    CHECK(!hk_heap_owns(d, &x));
    CHECK(!hk_heap_owns(h, NULL));

    /* calloc */
    void *c = hk_heap_calloc(h, 100, 10);
    REQUIRE(c != NULL);
    CHECK(hk_is_zero(c, 1000));
    CHECK(hk_heap_owns(h, c));

    /* hk_free of an explicit-heap block: no longer owned */
    for (int i = 0; i < NS; i++) {
        hk_free(hp[i]);
        CHECK(!hk_heap_owns(h, hp[i]));
        hk_free(dp[i]);
        CHECK(!hk_heap_owns(d, dp[i]));
    }

    /* realloc into the heap: a block that must move lands in h */
    void *r = hk_malloc(16);
    REQUIRE(r != NULL);
    hk_pat_fill(r, 5, 16);
    r = hk_heap_realloc(h, r, 1 * MiB);
    REQUIRE(r != NULL);
    CHECK(hk_heap_owns(h, r));
    CHECK(!hk_heap_owns(d, r));
    CHECK(hk_pat_check(r, 5, 16, "heap realloc"));
    hk_pat_fill(r, 6, 1 * MiB);
    r = hk_heap_realloc(h, r, 5 * MiB); /* medium -> huge: moves */
    REQUIRE(r != NULL);
    CHECK(hk_heap_owns(h, r));
    CHECK(hk_pat_check(r, 6, 1 * MiB, "heap realloc huge"));
    void *r2 = hk_heap_realloc(h, NULL, 100); /* NULL: malloc from h */
    REQUIRE(r2 != NULL);
    CHECK(hk_heap_owns(h, r2));
    /* failure leaves the block in h intact */
    errno = 0;
    CHECK(hk_heap_realloc(h, r2, SIZE_MAX - 8) == NULL);
    CHECK(errno == ENOMEM);
    CHECK(hk_heap_owns(h, r2));
    errno = 0;
    CHECK(hk_heap_malloc(h, SIZE_MAX) == NULL);
    CHECK(errno == ENOMEM);
    hk_free(r2);
    hk_free(r);
    hk_free(c);

    hk_stats_t s;
    hk_heap_stats(h, &s);
    CHECK(s.live_blocks == 0);
    CHECK(s.live_bytes == 0);
    CHECK(s.heaps == 1);
    hk_heap_destroy(h);
    CHECK(hk_heap_default() == d);
}

/* Two explicit heaps side by side: their blocks never mix. */
static void test_two_heaps(void) {
    hk_heap_t *a = hk_heap_new(), *b = hk_heap_new();
    REQUIRE(a && b);
    CHECK(a != b);
    enum { N = 3000 };
    void **pa = malloc(N * sizeof *pa), **pb = malloc(N * sizeof *pb);
    REQUIRE(pa && pb);
    for (int i = 0; i < N; i++) {
        size_t s = 1 + (size_t)(i * 37) % 3000;
        pa[i] = hk_heap_malloc(a, s);
        pb[i] = hk_heap_malloc(b, s);
        REQUIRE(pa[i] && pb[i]);
        hk_pat_fill(pa[i], (uint64_t)i, s);
        hk_pat_fill(pb[i], (uint64_t)i + N, s);
    }
    int wrong = 0;
    for (int i = 0; i < N; i++) {
        size_t s = 1 + (size_t)(i * 37) % 3000;
        if (!hk_heap_owns(a, pa[i]) || hk_heap_owns(b, pa[i])) wrong++;
        if (!hk_heap_owns(b, pb[i]) || hk_heap_owns(a, pb[i])) wrong++;
        if (!hk_pat_ok(pa[i], (uint64_t)i, s) || !hk_pat_ok(pb[i], (uint64_t)i + N, s)) wrong++;
    }
    CHECK(wrong == 0);
    hk_stats_t sa, sb;
    hk_heap_stats(a, &sa);
    hk_heap_stats(b, &sb);
    CHECK(sa.live_blocks == N);
    CHECK(sb.live_blocks == N);
    /* destroying a leaves b's blocks alone */
    hk_heap_destroy(a);
    wrong = 0;
    for (int i = 0; i < N; i++) {
        size_t s = 1 + (size_t)(i * 37) % 3000;
        if (!hk_pat_ok(pb[i], (uint64_t)i + N, s)) wrong++;
    }
    CHECK(wrong == 0);
    for (int i = 0; i < N; i += 2) hk_free(pb[i]);
    hk_heap_stats(b, &sb);
    CHECK(sb.live_blocks == N / 2);
    hk_heap_destroy(b);
    free(pa);
    free(pb);
}

/* Destroy with ~96 MiB of live blocks: mapped and committed bytes of the
 * process drop by most of it, and a new heap works afterwards. */
static void test_destroy_releases(void) {
    enum { MAXB = 200000 };
    void **p = malloc(MAXB * sizeof *p);
    REQUIRE(p != NULL);
    hk_collect(true);
    hk_stats_t s0 = hk_all_stats();
    size_t rss0 = hk_rss_bytes();
    hk_heap_t *h = hk_heap_new();
    REQUIRE(h != NULL);
    int n = fill_heap(h, p, MAXB, 96 * MiB, 11);
    /* free a third through hk_free, as a program would */
    for (int i = 0; i < n; i += 3) { hk_free(p[i]); p[i] = NULL; }
    hk_stats_t s1 = hk_all_stats();
    size_t rss1 = hk_rss_bytes();
    CHECK(s1.heaps == s0.heaps + 1);
    CHECK(s1.mapped_bytes >= s0.mapped_bytes + 60 * MiB);
    CHECK(s1.committed_bytes >= s0.committed_bytes + 60 * MiB);
    CHECK(s1.live_blocks >= s0.live_blocks + (size_t)n / 2);
    hk_heap_destroy(h);
    hk_collect(true);
    hk_stats_t s2 = hk_all_stats();
    size_t rss2 = hk_rss_bytes();
    CHECK(s2.heaps == s0.heaps);
    CHECK(s2.live_blocks == s0.live_blocks);
    CHECK(s2.live_bytes == s0.live_bytes);
    /* at least 3/4 of what the heap held is gone */
    CHECK(s2.mapped_bytes <= s0.mapped_bytes + (s1.mapped_bytes - s0.mapped_bytes) / 4);
    CHECK(s2.committed_bytes <= s0.committed_bytes + (s1.committed_bytes - s0.committed_bytes) / 4);
    CHECK(rss2 <= rss0 + (rss1 - rss0) / 4);
    fprintf(stderr, "destroy: mapped %zu -> %zu -> %zu, committed %zu -> %zu -> %zu, rss %zu -> %zu -> %zu (KiB)\n",
            s0.mapped_bytes >> 10, s1.mapped_bytes >> 10, s2.mapped_bytes >> 10,
            s0.committed_bytes >> 10, s1.committed_bytes >> 10, s2.committed_bytes >> 10,
            rss0 >> 10, rss1 >> 10, rss2 >> 10);

    /* a new heap works afterwards (it may reuse the memory) */
    h = hk_heap_new();
    REQUIRE(h != NULL);
    n = fill_heap(h, p, MAXB, 20 * MiB, 12);
    for (int i = 0; i < n; i++) hk_pat_fill(p[i], (uint64_t)i, hk_usable_size(p[i]));
    int bad = 0;
    for (int i = 0; i < n; i++) {
        if (!hk_heap_owns(h, p[i])) bad++;
        if (!hk_pat_ok(p[i], (uint64_t)i, hk_usable_size(p[i]))) bad++;
    }
    CHECK(bad == 0);
    for (int i = 0; i < n; i++) hk_free(p[i]);
    hk_stats_t sh;
    hk_heap_stats(h, &sh);
    CHECK(sh.live_blocks == 0);
    hk_heap_destroy(h);
    free(p);
}

/* Many heaps created and destroyed with live blocks: no growth. */
static void test_many_heaps(void) {
    void *p[64];
    hk_stats_t s0 = hk_all_stats();
    size_t peak_mapped = 0;
    for (int round = 0; round < 300; round++) {
        hk_heap_t *h = hk_heap_new();
        REQUIRE(h != NULL);
        for (int i = 0; i < 64; i++) {
            size_t s = (i % 16 == 0) ? 64 * KiB + (size_t)round : 1 + (size_t)(i * 53 + round) % 2048;
            p[i] = hk_heap_malloc(h, s);
            REQUIRE(p[i] != NULL);
            memset(p[i], 0x11, s);
        }
        if (round % 2) hk_free(p[round % 64]);
        hk_heap_destroy(h);
        if (round % 50 == 49) {
            hk_stats_t s = hk_all_stats();
            if (s.mapped_bytes > peak_mapped) peak_mapped = s.mapped_bytes;
            CHECK(s.heaps == s0.heaps);
            CHECK(s.live_blocks == s0.live_blocks);
        }
    }
    hk_collect(true);
    hk_stats_t s1 = hk_all_stats();
    /* 300 heaps of >= 1 chunk each would be over 1 GiB if never released */
    CHECK(peak_mapped <= s0.mapped_bytes + 64 * MiB);
    CHECK(s1.mapped_bytes <= s0.mapped_bytes + 64 * MiB);
}

/* Several heaps alive at once, destroyed in a different order. */
static void test_heap_order(void) {
    enum { H = 16 };
    hk_heap_t *h[H];
    void *p[H][32];
    for (int i = 0; i < H; i++) {
        h[i] = hk_heap_new();
        REQUIRE(h[i] != NULL);
        for (int j = 0; j < 32; j++) {
            size_t s = 8 + (size_t)(i * 131 + j * 17) % 5000;
            p[i][j] = hk_heap_malloc(h[i], s);
            REQUIRE(p[i][j] != NULL);
            hk_pat_fill(p[i][j], (uint64_t)(i * 100 + j), s);
        }
    }
    for (int k = 0; k < H; k++) {
        int i = (k * 5) % H;
        hk_heap_destroy(h[i]);
        h[i] = NULL;
        int bad = 0;
        for (int m = 0; m < H; m++) {
            if (!h[m]) continue;
            for (int j = 0; j < 32; j++) {
                size_t s = 8 + (size_t)(m * 131 + j * 17) % 5000;
                if (!hk_pat_ok(p[m][j], (uint64_t)(m * 100 + j), s)) bad++;
                if (!hk_heap_owns(h[m], p[m][j])) bad++;
            }
        }
        CHECK(bad == 0);
    }
}

/* Destroying an empty, unused heap is fine too. */
static void test_empty(void) {
    hk_stats_t s0 = hk_all_stats();
    for (int i = 0; i < 100; i++) {
        hk_heap_t *h = hk_heap_new();
        REQUIRE(h != NULL);
        hk_heap_destroy(h);
    }
    hk_stats_t s1 = hk_all_stats();
    CHECK(s1.heaps == s0.heaps);
    CHECK(s1.mapped_bytes <= s0.mapped_bytes + 16 * MiB);
}

int main(void) {
    test_basic();
    test_two_heaps();
    test_empty();
    test_heap_order();
    test_destroy_releases();
    test_many_heaps();
    return hk_test_done();
}
