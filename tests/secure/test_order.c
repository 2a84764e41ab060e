// test_order: the secure variant hands out the blocks of a slab in a
// random order. Over 1000 consecutive mallocs of one size, about half of
// the neighbours ascend (the plain library: all but a few) and few are
// adjacent in memory; two fresh slabs of one class do not share their
// order; every block is distinct, inside its slab, aligned, and writable.
// Statistics with wide margins (see the comments): a random order fails
// them with a probability far below 1e-12.
#include "secure_util.h"

enum { N = 1000 };

static int cmp_ptr(const void *a, const void *b) {
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

static void order_of_size(size_t size) {
    hk_heap_t *h = hk_heap_new(); /* fresh slabs, nothing freed into them */
    REQUIRE(h);
    static uintptr_t p[N], sorted[N];
    for (int i = 0; i < N; i++) {
        p[i] = (uintptr_t)hk_heap_malloc(h, size);
        REQUIRE(p[i] != 0);
        memset((void *)p[i], 0x5a, size);
    }
    size_t bs = sec_slab_of((void *)p[0]).block_size;
    int ascending = 0, adjacent = 0;
    for (int i = 0; i + 1 < N; i++) {
        ascending += p[i + 1] > p[i];
        adjacent += p[i + 1] == p[i] + bs;
    }
    /* Within one carving of n blocks a random order ascends at about half
     * of the n-1 steps, and a step from one carving to the next always
     * ascends (the next page is higher). For n = 4 (1 KiB blocks) that is
     * (1.5 + 1) / 4 = 62.5% with a spread of 1% over 1000 blocks; for
     * smaller blocks close to 50%. Address order: 99.9% (or 100%). */
    printf("size %zu (block %zu): %d ascending, %d adjacent of %d\n", size, bs, ascending,
           adjacent, N - 1);
    CHECK(ascending < (N - 1) * 3 / 4);
    /* Adjacent in a random order of n blocks: about 1/n of the steps plus
     * the carving boundaries; below 30% even for 4 blocks a carving. */
    CHECK(adjacent < (N - 1) * 3 / 10);
    /* Distinct blocks, each at a block start of its slab. */
    memcpy(sorted, p, sizeof p);
    qsort(sorted, N, sizeof sorted[0], cmp_ptr);
    int dup = 0, misplaced = 0;
    for (int i = 0; i < N; i++) {
        if (i && sorted[i] == sorted[i - 1]) dup++;
        sec_slab_t s = sec_slab_of((void *)p[i]);
        size_t off = (size_t)((uint8_t *)p[i] - s.start);
        if (off % s.block_size || off / s.block_size >= s.initialized) misplaced++;
    }
    CHECK(dup == 0);
    CHECK(misplaced == 0);
    hk_heap_destroy(h);
}

/* The offsets, in block units, of the first `n` blocks handed out by a
 * fresh slab of `size` in a fresh heap. */
static void first_offsets(size_t size, int n, unsigned *out) {
    hk_heap_t *h = hk_heap_new();
    REQUIRE(h);
    void *first = hk_heap_malloc(h, size);
    REQUIRE(first);
    sec_slab_t s = sec_slab_of(first);
    out[0] = (unsigned)(((uint8_t *)first - s.start) / s.block_size);
    for (int i = 1; i < n; i++) {
        uint8_t *q = hk_heap_malloc(h, size);
        REQUIRE(q);
        out[i] = (unsigned)((q - s.start) / s.block_size);
    }
    hk_heap_destroy(h);
}

int main(void) {
    static const size_t sizes[] = { 8, 16, 64, 100, 256, 1000 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) order_of_size(sizes[i]);

    /* Two fresh slabs: their first 32 blocks (of 64 a carving) in the same
     * order by chance has probability 64!/32!/64^32... far below 1e-40. */
    unsigned a[32], b[32];
    first_offsets(64, 32, a);
    first_offsets(64, 32, b);
    CHECK(memcmp(a, b, sizeof a) != 0);
    /* And the first block is not always the slab's first. */
    int at_start = 0;
    for (int t = 0; t < 20; t++) {
        unsigned o[1];
        first_offsets(128, 1, o);
        at_start += o[0] == 0;
    }
    CHECK(at_start < 10); /* 32 blocks a carving: expected 20/32 < 1 */
    return hk_test_done();
}
