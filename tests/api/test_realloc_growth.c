// test_realloc_growth: where the memory of blocks grown by realloc goes.
//   - a medium block grown past 2 MiB stays in its chunk, and grows in
//     place into the free pages after it, up to a whole chunk (4 MiB);
//   - vectors grown by doubling to 2-4 MiB, then freed, leave pages that
//     serve the medium blocks made next: committed memory (hk_stats: the
//     heaps' chunks, huge blocks and both caches) stays near what is live,
//     where a cache of huge blocks beside the chunks' own free pages
//     would hold both at once.
#include "hk_test.h"
#include "api/hk_util.h"

static size_t committed_now(void) {
    hk_stats_t st;
    hk_stats(&st);
    return st.committed_bytes;
}

static void grows_in_place_past_2mib(void) {
    hk_heap_t *h = hk_heap_new(); /* no chunk yet: the block starts one */
    REQUIRE(h != NULL);
    uint8_t *p = hk_heap_malloc(h, 1 * MiB);
    REQUIRE(p != NULL);
    hk_pat_fill(p, 1, 1 * MiB);
    const size_t sizes[] = { 2 * MiB, 2 * MiB + 1, 3 * MiB, 4 * MiB };
    for (int i = 0; i < 4; i++) {
        uint8_t *q = hk_heap_realloc(h, p, sizes[i]);
        REQUIRE(q != NULL);
        CHECK(q == p); /* the pages after it were free */
        CHECK(hk_usable_size(q) >= sizes[i]);
        CHECK(hk_pat_check(q, 1, 1 * MiB, "grown block"));
        p = q;
    }
    /* Past a whole chunk it moves, contents kept. */
    uint8_t *q = hk_heap_realloc(h, p, 4 * MiB + 1);
    REQUIRE(q != NULL);
    CHECK(hk_pat_check(q, 1, 1 * MiB, "block moved past 4 MiB"));
    hk_heap_destroy(h);
}

enum { VECTORS = 4, ROUNDS = 6, PIECE = 512 * 1024 };

/* Builds a vector the way a growing array does: doubling from 64 KiB to 2
 * MiB, then one last step to `final`, each new part written. */
static uint8_t *build_vector(size_t final, uint64_t id) {
    uint8_t *p = NULL;
    size_t had = 0;
    for (size_t n = 64 * KiB;; n = n * 2 < final ? n * 2 : final) {
        p = hk_realloc(p, n);
        REQUIRE(p != NULL);
        memset(p + had, 0x5a, n - had);
        had = n;
        if (n == final) break;
    }
    hk_pat_fill(p, id, 4096);
    return p;
}

/* Rounds of: vectors of 2.25-3.75 MiB built and freed, then medium blocks
 * of the same total size made and freed. */
static void vectors_then_medium(void) {
    hk_collect(true);
    size_t base = committed_now(), peak = 0, vector_bytes = 0;
    for (int r = 0; r < ROUNDS; r++) {
        uint8_t *v[VECTORS];
        vector_bytes = 0;
        for (int i = 0; i < VECTORS; i++) {
            size_t final = 2 * MiB + MiB / 4 + (size_t)i * (MiB / 2);
            v[i] = build_vector(final, (uint64_t)(r * VECTORS + i));
            vector_bytes += final;
        }
        size_t c = committed_now() - base;
        if (c > peak) peak = c;
        for (int i = 0; i < VECTORS; i++) {
            CHECK(hk_pat_check(v[i], (uint64_t)(r * VECTORS + i), 4096, "vector"));
            hk_free(v[i]);
        }
        enum { PIECES = 24 }; /* 12 MiB, as much as the vectors held */
        uint8_t *m[PIECES];
        for (int i = 0; i < PIECES; i++) {
            m[i] = hk_malloc(PIECE);
            REQUIRE(m[i] != NULL);
            memset(m[i], 0xa5, PIECE);
        }
        c = committed_now() - base;
        if (c > peak) peak = c;
        for (int i = 0; i < PIECES; i++) hk_free(m[i]);
    }
    printf("vectors (%zu KiB) then medium blocks (%zu KiB), %d rounds: peak %zu KiB committed\n",
           vector_bytes / KiB, (size_t)24 * PIECE / KiB, ROUNDS, peak / KiB);
    /* The live bytes of either phase (12 MiB) and at most a few chunks
     * waiting for reuse. With vectors in huge blocks, their cache keeps
     * 12 MiB committed through the medium phase, which needs chunks. */
    CHECK(peak <= vector_bytes + 8 * MiB);
}

int main(void) {
    hk_free(hk_malloc(1)); /* start-up done before the first reading */
    grows_in_place_past_2mib();
    vectors_then_medium();
    return hk_test_done();
}
