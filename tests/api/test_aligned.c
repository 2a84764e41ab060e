// test_aligned: hk_aligned_alloc / hk_posix_memalign / hk_heap_aligned_alloc
// with every power-of-two alignment 1 .. 4 MiB and many sizes; bad
// alignments give NULL with EINVAL (posix_memalign returns EINVAL and leaves
// *out alone); impossible sizes give ENOMEM.
#include "hk_test.h"
#include "api/hk_util.h"

static const size_t sizes[] = { 1, 7, 8, 15, 16, 17, 100, 1000, 4095, 4096, 4097,
                                32 * 1024, 32 * 1024 + 1, 100 * 1024, 2 * 1024 * 1024 - 4096, 2 * 1024 * 1024 - 1,
                                2 * 1024 * 1024 + 1, 3 * 1024 * 1024 };
enum { NSIZES = sizeof sizes / sizeof sizes[0] };

/* Checks an aligned block and fills its whole usable size. */
static bool check_block(void *p, size_t align, size_t size, uint64_t id) {
    CHECK(p != NULL);
    if (!p) return false;
    bool ok = hk_aligned_to(p, align) && hk_aligned_to(p, hk_min_align(size));
    CHECK(ok);
    if (!ok) fprintf(stderr, "  %p: alignment %zu size %zu\n", p, align, size);
    size_t u = hk_usable_size(p);
    CHECK(u >= size);
    hk_pat_fill(p, id, u);
    return true;
}

/* Every alignment 1 .. 4 MiB times a set of sizes; blocks of one alignment
 * are live together and checked for damage before they are freed. */
static void test_alignments(void) {
    uint64_t id = 1;
    for (size_t align = 1; align <= 4 * MiB; align *= 2) {
        void *a[NSIZES], *b[NSIZES];
        size_t extra[3] = { align - 1 ? align - 1 : 1, align, align + 1 };
        void *c[3];
        for (int i = 0; i < NSIZES; i++) {
            a[i] = hk_aligned_alloc(align, sizes[i]);
            check_block(a[i], align, sizes[i], id * 1000 + i);
            void *out = (void *)0x1;
            int rc = hk_posix_memalign(&out, align, sizes[i]);
            if (align < sizeof(void *)) {
                /* POSIX wants a multiple of sizeof(void *); the header only
                 * says "power of two". Accept both readings, but they must
                 * be consistent: 0 with a block, or EINVAL with *out as is. */
                CHECK((rc == 0 && out != (void *)0x1) || (rc == EINVAL && out == (void *)0x1));
                b[i] = rc == 0 ? out : NULL;
                if (b[i]) check_block(b[i], align, sizes[i], id * 1000 + 500 + i);
            } else {
                CHECK(rc == 0);
                b[i] = rc == 0 ? out : NULL;
                check_block(b[i], align, sizes[i], id * 1000 + 500 + i);
            }
        }
        for (int i = 0; i < 3; i++) {
            c[i] = hk_aligned_alloc(align, extra[i]);
            check_block(c[i], align, extra[i], id * 1000 + 900 + i);
        }
        for (int i = 0; i < NSIZES; i++) {
            if (a[i]) CHECK(hk_pat_check(a[i], id * 1000 + i, hk_usable_size(a[i]), "aligned_alloc"));
            if (b[i]) CHECK(hk_pat_check(b[i], id * 1000 + 500 + i, hk_usable_size(b[i]), "posix_memalign"));
            hk_free(a[i]);
            hk_free(b[i]);
        }
        for (int i = 0; i < 3; i++) {
            if (c[i]) CHECK(hk_pat_check(c[i], id * 1000 + 900 + i, hk_usable_size(c[i]), "aligned extra"));
            hk_free(c[i]);
        }
        id++;
    }
}

/* Random aligned and plain blocks mixed, many live, frees in random order:
 * aligned blocks carved out of larger ones must not hurt their neighbours. */
static void test_churn(void) {
    enum { N = 512 };
    void *p[N] = { 0 };
    size_t us[N] = { 0 };
    hk_rng_t rng = hk_rng_seeded(5);
    int bad = 0;
    for (int it = 0; it < 20000; it++) {
        int i = (int)hk_rng_below(&rng, N);
        if (p[i]) {
            if (!hk_pat_ok(p[i], (uint64_t)i * 7919 + 1, us[i])) bad++;
            hk_free(p[i]);
            p[i] = NULL;
            continue;
        }
        size_t align = (size_t)1 << hk_rng_below(&rng, hk_rng_below(&rng, 16) ? 13 : 22);
        size_t s = 1 + hk_rng_below(&rng, hk_rng_below(&rng, 10) ? 2000 : 300 * KiB);
        p[i] = hk_aligned_alloc(align, s);
        REQUIRE(p[i] != NULL);
        if (!hk_aligned_to(p[i], align) || !hk_aligned_to(p[i], hk_min_align(s))) bad++;
        us[i] = hk_usable_size(p[i]);
        if (us[i] < s) bad++;
        hk_pat_fill(p[i], (uint64_t)i * 7919 + 1, us[i]);
    }
    for (int i = 0; i < N; i++) {
        if (p[i] && !hk_pat_ok(p[i], (uint64_t)i * 7919 + 1, us[i])) bad++;
        hk_free(p[i]);
    }
    CHECK(bad == 0);
}

/* Not powers of two: NULL + EINVAL; posix_memalign returns EINVAL and does
 * not touch *out. */
static void test_bad_alignment(void) {
    static const size_t bad[] = { 0, 3, 5, 6, 7, 12, 24, 48, 96, 1000, 4097, 4095, 12288,
                                  (1u << 20) + 1, (1u << 20) + 4096, 3u << 20,
                                  SIZE_MAX, SIZE_MAX - 1, SIZE_MAX / 2, ((size_t)1 << 63) + 1 };
    void *keep = hk_malloc(500);
    REQUIRE(keep != NULL);
    hk_pat_fill(keep, 3, 500);
    hk_heap_t *h = hk_heap_new();
    REQUIRE(h != NULL);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        void *p = hk_aligned_alloc(bad[i], 64);
        CHECK(p == NULL);
        CHECK(errno == EINVAL);
        if (p || errno != EINVAL)
            fprintf(stderr, "  hk_aligned_alloc(%zu, 64) = %p errno %d\n", bad[i], p, errno);
        hk_free(p);
        errno = 0;
        p = hk_heap_aligned_alloc(h, bad[i], 64);
        CHECK(p == NULL);
        CHECK(errno == EINVAL);
        hk_free(p);
        void *out = (void *)0x1234;
        int rc = hk_posix_memalign(&out, bad[i], 64);
        CHECK(rc == EINVAL);
        CHECK(out == (void *)0x1234);
        if (rc == 0) hk_free(out);
    }
    CHECK(hk_pat_check(keep, 3, 500, "bad alignment"));
    hk_heap_destroy(h);
    hk_free(keep);
}

/* Sizes (or alignments) that cannot be served: NULL + ENOMEM. */
static void test_too_big(void) {
    static const size_t al[] = { 16, 4096, 1u << 20, 4u << 20 };
    static const size_t sz[] = { SIZE_MAX, SIZE_MAX - 100, SIZE_MAX - (4u << 20), (size_t)1 << 47 };
    for (size_t i = 0; i < 4; i++) {
        for (size_t j = 0; j < 4; j++) {
            errno = 0;
            void *p = hk_aligned_alloc(al[i], sz[j]);
            CHECK(p == NULL);
            CHECK(errno == ENOMEM);
            if (p || errno != ENOMEM)
                fprintf(stderr, "  hk_aligned_alloc(%zu, %zu) = %p errno %d\n", al[i], sz[j], p, errno);
            hk_free(p);
            void *out = (void *)0x5678;
            int rc = hk_posix_memalign(&out, al[i], sz[j]);
            CHECK(rc == ENOMEM);
            CHECK(out == (void *)0x5678);
            if (rc == 0) hk_free(out);
        }
    }
    /* A power-of-two alignment no address space can honour. */
    errno = 0;
    void *p = hk_aligned_alloc((size_t)1 << 63, 16);
    CHECK(p == NULL);
    CHECK(errno == ENOMEM);
    hk_free(p);
    errno = 0;
    p = hk_aligned_alloc((size_t)1 << 47, 16);
    CHECK(p == NULL);
    CHECK(errno == ENOMEM);
    hk_free(p);
}

/* Explicit heap: aligned blocks are aligned and owned by that heap. */
static void test_heap_aligned(void) {
    hk_heap_t *h = hk_heap_new();
    REQUIRE(h != NULL);
    void *p[23];
    for (int k = 0; k <= 22; k++) {
        size_t align = (size_t)1 << k;
        size_t s = 10 + (size_t)k * 5000;
        p[k] = hk_heap_aligned_alloc(h, align, s);
        if (!check_block(p[k], align, s, 300 + k)) continue;
        CHECK(hk_heap_owns(h, p[k]));
        CHECK(!hk_heap_owns(hk_heap_default(), p[k]));
    }
    for (int k = 0; k <= 22; k++) {
        if (!p[k]) continue;
        CHECK(hk_pat_check(p[k], 300 + k, hk_usable_size(p[k]), "heap aligned"));
        if (k % 2) hk_free(p[k]);
    }
    hk_heap_destroy(h); /* the even ones go with the heap */
}

int main(void) {
    test_bad_alignment();
    test_too_big();
    test_alignments();
    test_churn();
    test_heap_aligned();
    return hk_test_done();
}
