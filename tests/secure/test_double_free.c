// test_double_free: the secure variant reports every double and invalid
// free on the owner thread, not only the immediate double free the plain
// library catches: free(a); free(b); free(a) for every small size, a block
// freed again long after (other frees and mallocs in between, slab full and
// partial again), in an explicit heap; a carved block never handed out
// ("double free": it is free) and a block past the carved part ("invalid
// pointer") of a partially carved slab; interior pointers of small,
// medium and huge blocks; medium and huge blocks freed twice. Each report
// must name the block's address. Then a clean run: many mallocs and frees
// in random order must never report anything.
#include "secure_util.h"

static void free_a_b_a(void *arg) {
    hk_free_arg_t *x = arg;
    hk_free(x->ptr);
    hk_free(x->extra);
    hk_free(x->ptr);
}

static void expect(void (*fn)(void *), void *ptr, void *extra, const void *at, const char *kind,
                   const char *what) {
    hk_free_arg_t arg = { ptr, extra };
    CHECK(hk_expect_report(fn, &arg, at, kind, true, what));
}

/* a, then mallocs and frees of other classes, then a again. */
static void free_late(void *arg) {
    void *a = ((hk_free_arg_t *)arg)->ptr;
    hk_free(a);
    void *keep[200];
    for (int i = 0; i < 200; i++) keep[i] = hk_malloc(i % 2 ? 24 : 300);
    for (int i = 0; i < 200; i += 2) hk_free(keep[i]);
    hk_free(a);
}

/* Fills slabs of 48-byte blocks, frees every other block (slabs go from
 * full to partial), then frees the first one freed again. */
static void free_after_churn(void *arg) {
    (void)arg;
    enum { N = 3000 };
    static void *v[N];
    for (int i = 0; i < N; i++) v[i] = hk_malloc(48);
    for (int i = 0; i < N; i += 2) hk_free(v[i]);
    fprintf(stderr, "target %p\n", v[0]);
    hk_free(v[0]);
}

static void free_one(void *arg) { hk_free(((hk_free_arg_t *)arg)->ptr); }

static void explicit_heap_twice(void *arg) {
    hk_heap_t *h = ((hk_free_arg_t *)arg)->extra;
    void *a = ((hk_free_arg_t *)arg)->ptr;
    void *b = hk_heap_malloc(h, 64);
    hk_free(a);
    hk_free(b);
    hk_free(a);
}

int main(void) {
    /* Non-immediate double frees of every small size class. */
    static const size_t sizes[] = { 1, 8, 16, 24, 48, 64, 100, 128, 200, 384, 512, 1000, 1024,
                                    1500, 2048, 4000, 4096, 10000, 20000, 32768 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *a = hk_malloc(sizes[i]), *b = hk_malloc(sizes[i]), *c = hk_malloc(sizes[i]);
        REQUIRE(a && b && c);
        char what[80];
        snprintf(what, sizeof what, "free(a); free(b); free(a) of %zu bytes", sizes[i]);
        expect(free_a_b_a, a, b, a, "double free", what);
        hk_free(a);
        hk_free(b);
        hk_free(c);
    }

    /* A block freed again after other work. */
    {
        void *a = hk_malloc(80);
        REQUIRE(a);
        hk_free_arg_t arg = { a, NULL };
        CHECK(hk_expect_report(free_late, &arg, a, "double free", true, "double free after churn"));
        hk_free(a);
    }
    {
        char out[8192];
        int st = hk_run_child(free_after_churn, NULL, out, sizeof out);
        void *target = NULL;
        const char *t = strstr(out, "target ");
        if (t) sscanf(t + 7, "%p", &target);
        char kind[64];
        uintptr_t addr = 0;
        CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
        CHECK(target != NULL && hk_parse_report(out, kind, sizeof kind, &addr) &&
              strcmp(kind, "double free") == 0 && addr == (uintptr_t)target);
    }

    /* An explicit heap. */
    {
        hk_heap_t *h = hk_heap_new();
        REQUIRE(h);
        void *a = hk_heap_malloc(h, 64);
        REQUIRE(a);
        hk_free_arg_t arg = { a, h };
        CHECK(hk_expect_report(explicit_heap_twice, &arg, a, "double free", true,
                               "explicit heap: free(a); free(b); free(a)"));
        hk_heap_destroy(h);
    }

    /* A partially carved slab of a fresh heap: one block handed out. */
    {
        hk_heap_t *h = hk_heap_new();
        REQUIRE(h);
        uint8_t *a = hk_heap_malloc(h, 64);
        REQUIRE(a);
        sec_slab_t s = sec_slab_of(a);
        REQUIRE(s.block_size == 64 && s.initialized >= 2 && s.initialized < s.capacity);
        /* A carved block that was never handed out (it is on the free list). */
        uint8_t *never = s.start + (a == s.start ? s.block_size : 0);
        expect(free_one, never, NULL, never, "double free", "carved block never handed out");
        /* The last carved one, and the first past the carved part. */
        uint8_t *last = s.start + (s.initialized - 1) * s.block_size;
        if (last != a) expect(free_one, last, NULL, last, "double free", "last carved block");
        uint8_t *past = s.start + s.initialized * s.block_size;
        expect(free_one, past, NULL, past, "invalid pointer", "block past the carved part");
        uint8_t *end = s.start + (s.capacity - 1) * s.block_size;
        expect(free_one, end, NULL, end, "invalid pointer", "last block of the slab, not carved");
        /* Interior pointers. */
        expect(free_one, a + 8, NULL, a + 8, "invalid pointer", "small block + 8");
        expect(free_one, a + 63, NULL, a + 63, "invalid pointer", "small block + 63");
        hk_heap_destroy(h);
    }

    /* Medium blocks: interior pointers, and a non-immediate double free. */
    {
        uint8_t *m1 = hk_malloc(100 * KiB), *m2 = hk_malloc(100 * KiB);
        REQUIRE(m1 && m2);
        expect(free_one, m1 + 16, NULL, m1 + 16, "invalid pointer", "medium block + 16");
        expect(free_one, m1 + 4096, NULL, m1 + 4096, "invalid pointer", "medium block + 4096");
        expect(free_a_b_a, m1, m2, m1, "double free", "medium: free(a); free(b); free(a)");
        hk_free(m1);
        hk_free(m2);
    }

    /* Huge blocks. */
    {
        uint8_t *g = hk_malloc(8 * MiB);
        REQUIRE(g);
        expect(free_one, g + 4096, NULL, g + 4096, "invalid pointer", "huge block + 4096");
        void *b = hk_malloc(16);
        REQUIRE(b);
        expect(free_a_b_a, g, b, g, "double free", "huge: free(a); free(b); free(a)");
        hk_free(g);
        hk_free(b);
    }

    /* No false report: random mallocs and frees of every kind of block. */
    {
        hk_rng_t r = hk_rng_seeded(6);
        enum { SLOTS = 4096 };
        static void *slot[SLOTS];
        static size_t len[SLOTS];
        size_t bad = 0;
        for (int step = 0; step < 400000; step++) {
            size_t i = (size_t)hk_rng_below(&r, SLOTS);
            if (slot[i]) {
                if (!hk_pat_ok(slot[i], i, len[i])) bad++;
                hk_free(slot[i]);
                slot[i] = NULL;
            } else {
                uint64_t k = hk_rng_below(&r, 1000);
                len[i] = k < 900 ? (size_t)hk_rng_below(&r, 600) + 1
                         : k < 995 ? (size_t)hk_rng_below(&r, 32 * KiB) + 1
                                   : (size_t)hk_rng_below(&r, 3 * MiB) + 1;
                slot[i] = hk_malloc(len[i]);
                REQUIRE(slot[i]);
                hk_pat_fill(slot[i], i, len[i]);
            }
        }
        for (size_t i = 0; i < SLOTS; i++) hk_free(slot[i]);
        CHECK(bad == 0);
    }
    return hk_test_done();
}
