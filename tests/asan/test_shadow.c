// test_shadow: what an AddressSanitizer build of heapkit poisons, read back
// from ASan's shadow after each operation, and a clean workload that must
// run without a report. Shadow checks: for sizes across the small classes,
// medium and huge blocks, malloc/calloc/aligned_alloc make exactly the
// bytes asked for addressable (the slack poisoned, to ASan's 8-byte
// granule), hk_usable_size makes every usable byte addressable, free
// poisons; realloc keeps the old bytes and moves the poisoned tail, in
// place (small, medium, huge) and when it moves; a block freed by another
// thread is poisoned while it waits on its owner's queue, and comes back
// addressable; hk_heap_destroy poisons the heap's blocks; hk_heap_owns
// walks a free list under poison; pools and caches poison what they do not
// hand out, and a cache object keeps its constructed bytes across free and
// alloc. The workload: threads allocating, filling and checking exactly
// the bytes they asked for, reallocating, and freeing each other's blocks,
// in default and explicit heaps, pools and a cache. A false poisoning
// anywhere kills the test with ASan's report.
// ctest-timeout: 300
#include "hk_test.h"
#include "api/hk_util.h"

#include <pthread.h>
#include <sanitizer/asan_interface.h>
#include <stdatomic.h>

/* True when every byte of [p, p + n) is addressable. */
static bool addressable(const void *p, size_t n) {
    return n == 0 || __asan_region_is_poisoned((void *)(uintptr_t)p, n) == NULL;
}
static bool poisoned(const void *p) { return __asan_address_is_poisoned(p) != 0; }

/* The first byte past `size` is poisoned, unless the block has no slack
 * there (size == usable). */
static bool tail_poisoned(const uint8_t *p, size_t size, size_t usable) {
    return size >= usable || poisoned(p + size);
}

/* ---- The malloc family ---------------------------------------------------- */

static const size_t sizes[] = { 0, 1, 7, 8, 9, 13, 16, 17, 31, 100, 127, 128, 129, 500, 1000, 1024,
                                1025, 3000, 4096, 5000, 16384, 32767, 32768, 32769, 40000,
                                100 * KiB + 3, MiB, 2 * MiB, 2 * MiB + 1, 3 * MiB + 100, 9 * MiB + 5 };
#define NSIZES (sizeof sizes / sizeof sizes[0])

static void malloc_family(void) {
    for (size_t i = 0; i < NSIZES; i++) {
        size_t n = sizes[i];
        uint8_t *p = hk_malloc(n);
        REQUIRE(p);
        CHECK(addressable(p, n));
        size_t u = hk_usable_size(p); /* from here on, all usable bytes are the caller's */
        CHECK(u >= n);
        CHECK(addressable(p, u));
        memset(p, 0x11, u);
        hk_free(p);
        CHECK(poisoned(p)); /* huge ones too: 3 and 9 MiB go to the huge cache */

        uint8_t *q = hk_malloc(n);
        REQUIRE(q);
        CHECK(addressable(q, n));
        /* The slack is poisoned again for a new block (usable size read
         * without asking heapkit: the block's class is the same). */
        if (n && n < u && q == p) CHECK(tail_poisoned(q, n, u));
        memset(q, 0x22, n);
        hk_free(q);

        uint8_t *z = hk_calloc(1, n);
        REQUIRE(z);
        CHECK(addressable(z, n));
        size_t nz = 0;
        for (size_t k = 0; k < n; k++) nz += z[k] != 0;
        CHECK(nz == 0);
        hk_free(z);
    }
    /* Granules: bytes [0, 13) addressable, [13, 16) poisoned. */
    hk_heap_t *h = hk_heap_new();
    REQUIRE(h);
    uint8_t *a = hk_heap_malloc(h, 13);
    REQUIRE(a);
    CHECK(addressable(a, 13));
    CHECK(poisoned(a + 13) && poisoned(a + 15) && poisoned(a + 16));
    /* The rest of the fresh slab is unallocated: poisoned. */
    CHECK(poisoned(a + 64) && poisoned(a + 1000));
    uint8_t *al = hk_heap_aligned_alloc(h, 64, 10);
    REQUIRE(al);
    CHECK(addressable(al, 10) && poisoned(al + 10) && poisoned(al + 63));
    hk_heap_destroy(h);

    uint8_t *e = hk_malloc(0);
    REQUIRE(e);
    CHECK(poisoned(e)); /* nothing asked, nothing addressable */
    hk_free(e);
}

/* ---- realloc --------------------------------------------------------------- */

static void fill(uint8_t *p, size_t n, uint64_t id) { hk_pat_fill(p, id, n); }
static bool same(const uint8_t *p, size_t n, uint64_t id) { return hk_pat_check(p, id, n, "kept bytes"); }

static void reallocs(void) {
    /* Small, in place: 100 bytes (block 112) shrunk to 60 and grown back. */
    uint8_t *p = hk_malloc(100);
    REQUIRE(p);
    fill(p, 100, 1);
    uint8_t *q = hk_realloc(p, 60);
    REQUIRE(q == p);
    CHECK(addressable(q, 60) && poisoned(q + 60) && same(q, 60, 1));
    q = hk_realloc(q, 112);
    REQUIRE(q == p);
    CHECK(addressable(q, 112) && same(q, 60, 1));
    /* Moves: the old block is poisoned, the new one has the bytes. */
    uint8_t *r = hk_realloc(q, 5000);
    REQUIRE(r && r != q);
    CHECK(poisoned(q) && addressable(r, 5000) && same(r, 60, 1));
    CHECK(poisoned(r + 5000) || hk_usable_size(r) == 5000);
    fill(r, 5000, 2);
    /* Medium in place: shrink gives pages back (poisoned), grow takes them. */
    uint8_t *m = hk_malloc(64 * KiB);
    REQUIRE(m);
    fill(m, 64 * KiB, 3);
    uint8_t *m2 = hk_realloc(m, 40 * KiB + 5);
    REQUIRE(m2 == m);
    CHECK(addressable(m2, 40 * KiB + 5) && poisoned(m2 + 40 * KiB + 5) && poisoned(m2 + 50 * KiB));
    CHECK(same(m2, 40 * KiB + 5, 3));
    uint8_t *m3 = hk_realloc(m2, 60 * KiB);
    if (m3 == m2) CHECK(addressable(m3, 60 * KiB) && poisoned(m3 + 60 * KiB));
    REQUIRE(m3);
    CHECK(same(m3, 40 * KiB + 5, 3));
    /* Huge in place: grown (the reservation grows by at least an eighth)
     * and shrunk; the tail follows the size. */
    uint8_t *g = hk_malloc(5 * MiB);
    REQUIRE(g);
    fill(g, 5 * MiB, 4);
    uint8_t *g2 = hk_realloc(g, 6 * MiB + 100);
    REQUIRE(g2);
    CHECK(addressable(g2, 6 * MiB + 100) && poisoned(g2 + 6 * MiB + 100) && same(g2, 5 * MiB, 4));
    uint8_t *g3 = hk_realloc(g2, 3 * MiB + 5);
    REQUIRE(g3 == g2);
    CHECK(addressable(g3, 3 * MiB + 5) && poisoned(g3 + 3 * MiB + 5) && poisoned(g3 + 4 * MiB));
    CHECK(same(g3, 3 * MiB + 5, 4));
    /* Huge to small: moves, the copy reads the old block's bytes. */
    uint8_t *s = hk_realloc(g3, 200);
    REQUIRE(s);
    CHECK(addressable(s, 200) && same(s, 200, 4));
    hk_free(s);
    hk_free(r);
    hk_free(m3);
}

/* ---- Other threads' frees ------------------------------------------------- */

enum { NREMOTE = 300 };
static void *free_all(void *arg) {
    uint8_t **v = arg;
    for (int i = 0; i < NREMOTE; i++) hk_free(v[i]);
    return NULL;
}

static void remote_frees(void) {
    static uint8_t *v[NREMOTE];
    for (int i = 0; i < NREMOTE; i++) {
        size_t n = i % 3 == 2 ? 20 * KiB * (size_t)(1 + i % 5) : (size_t)(1 + i * 7 % 600);
        v[i] = hk_malloc(n);
        REQUIRE(v[i]);
        memset(v[i], 0x33, n);
    }
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, free_all, v) == 0);
    pthread_join(t, NULL);
    /* Queued on this thread's heap, not yet drained: poisoned already. */
    int still = 0;
    for (int i = 0; i < NREMOTE; i++) still += poisoned(v[i]);
    CHECK(still == NREMOTE);
    /* The next slow paths drain the queue; blocks come back addressable. */
    for (int i = 0; i < NREMOTE; i++) {
        size_t n = 1 + (size_t)i * 13 % 900;
        uint8_t *p = hk_malloc(n);
        REQUIRE(p);
        CHECK(addressable(p, n));
        memset(p, 0x44, n);
        v[i] = p;
    }
    for (int i = 0; i < NREMOTE; i++) hk_free(v[i]);
}

/* ---- Explicit heaps ---------------------------------------------------------- */

static void heaps(void) {
    hk_heap_t *h = hk_heap_new();
    REQUIRE(h);
    uint8_t *b[64];
    for (int i = 0; i < 64; i++) {
        b[i] = hk_heap_malloc(h, 48);
        REQUIRE(b[i]);
        memset(b[i], 0x55, 48);
    }
    for (int i = 0; i < 64; i += 2) hk_free(b[i]);
    /* hk_heap_owns walks the slab's free list, whose links are poisoned. */
    int owned = 0, freed = 0;
    for (int i = 0; i < 64; i++) {
        if (i % 2) owned += hk_heap_owns(h, b[i]);
        else freed += !hk_heap_owns(h, b[i]) && poisoned(b[i]);
    }
    CHECK(owned == 32 && freed == 32);
    uint8_t *m = hk_heap_malloc(h, 300 * KiB), *g = hk_heap_malloc(h, 4 * MiB + 1);
    REQUIRE(m && g);
    memset(m, 0x66, 300 * KiB);
    memset(g, 0x66, 4 * MiB + 1);
    hk_heap_destroy(h);
    CHECK(poisoned(b[1]) && poisoned(m) && poisoned(m + 299 * KiB));
    CHECK(poisoned(g)); /* cached huge block */
}

/* ---- Pools and caches ---------------------------------------------------------- */

static void pools(void) {
    hk_pool_t *pool = hk_pool_new(NULL);
    REQUIRE(pool);
    uint8_t *a = hk_pool_alloc(pool, 10), *b = hk_pool_aligned_alloc(pool, 256, 33);
    REQUIRE(a && b);
    CHECK(addressable(a, 10) && poisoned(a + 10) && poisoned(a + 15));
    CHECK(addressable(b, 33) && poisoned(b + 40));
    if (b - 16 >= a + 16) CHECK(poisoned(b - 16)); /* alignment padding before b */
    CHECK(poisoned(b + 48)); /* past the bump pointer */
    char *s = hk_pool_strdup(pool, "poisoned around");
    REQUIRE(s);
    CHECK(addressable(s, 16) && strcmp(s, "poisoned around") == 0);
    uint8_t *z = hk_pool_calloc(pool, 7, 3);
    REQUIRE(z);
    CHECK(addressable(z, 21) && z[20] == 0 && poisoned(z + 21 + 3));
    /* Enough blocks for a second piece. */
    uint8_t *last = NULL;
    for (int i = 0; i < 200; i++) {
        last = hk_pool_alloc(pool, 1000);
        REQUIRE(last);
        memset(last, 0x77, 1000);
    }
    CHECK(poisoned(last + 1000)); /* rounding to 16 */
    uint8_t *big = hk_pool_alloc(pool, 20 * KiB + 3);
    REQUIRE(big);
    memset(big, 0x78, 20 * KiB + 3);
    hk_pool_stats_t st;
    hk_pool_stats(pool, &st);
    CHECK(st.pieces >= 2);
    CHECK(addressable(big, 20 * KiB + 3) && poisoned(big + 20 * KiB + 8));
    hk_pool_reset(pool);
    CHECK(poisoned(a) && poisoned(b) && poisoned(last) && poisoned(big));
    uint8_t *again = hk_pool_alloc(pool, 64);
    REQUIRE(again == a); /* the same memory, next round */
    CHECK(addressable(again, 64) && poisoned(again + 64));
    hk_pool_destroy(pool);
}

typedef struct {
    uint64_t magic;
    uint8_t body[40];
} obj_t;
static _Atomic int constructed, destructed;
static int ctor(void *p) {
    obj_t *o = p;
    o->magic = 0x0b7ec7ull;
    memset(o->body, 0x99, sizeof o->body);
    constructed++;
    return 0;
}
/* Runs on free objects: they must be addressable by then. */
static void dtor(void *p) {
    obj_t *o = p;
    if (o->magic == 0x0b7ec7ull) destructed++;
}

static void caches(void) {
    hk_cache_t *c = hk_cache_new("shadow", sizeof(obj_t), 0, ctor, dtor);
    REQUIRE(c);
    obj_t *o[100];
    for (int i = 0; i < 100; i++) {
        o[i] = hk_cache_alloc(c);
        REQUIRE(o[i]);
        CHECK(addressable(o[i], sizeof(obj_t)) && o[i]->magic == 0x0b7ec7ull);
    }
    for (int i = 0; i < 100; i++) hk_cache_free(c, o[i]);
    int all = 0;
    for (int i = 0; i < 100; i++) all += poisoned(o[i]);
    CHECK(all == 100);
    obj_t *x = hk_cache_alloc(c); /* constructed state kept under the poison */
    REQUIRE(x);
    CHECK(addressable(x, sizeof *x) && x->magic == 0x0b7ec7ull);
    hk_cache_free(c, x);
    hk_cache_shrink(c); /* destructors on free objects */
    hk_cache_destroy(c);
    CHECK(constructed > 0 && destructed == constructed);
}

/* ---- A clean workload ------------------------------------------------------------ */

enum { THREADS = 4, SLOTS = 512, ROUNDS = 30000 };
/* Blocks left for another thread to free. */
static _Atomic(uint8_t *) handoff[SLOTS];
static hk_cache_t *wl_cache;

static void *worker(void *arg) {
    unsigned id = (unsigned)(uintptr_t)arg;
    hk_rng_t r = hk_rng_seeded(100 + id);
    uint8_t *p[64] = { 0 };
    size_t n[64] = { 0 };
    hk_heap_t *h = hk_heap_new();
    hk_pool_t *pool = hk_pool_new(h);
    if (!h || !pool) return (void *)1;
    uintptr_t bad = 0;
    for (int round = 0; round < ROUNDS; round++) {
        unsigned k = (unsigned)hk_rng_below(&r, 64);
        if (p[k]) {
            bad += !same(p[k], n[k], (uint64_t)k << 32 | id);
            if (hk_rng_below(&r, 4) == 0) {
                /* Leave it for another thread, which frees it. */
                uint8_t *old = atomic_exchange(&handoff[hk_rng_below(&r, SLOTS)], p[k]);
                if (old) hk_free(old);
            } else if (hk_rng_below(&r, 3) == 0) {
                size_t m = 1 + hk_rng_below(&r, hk_rng_below(&r, 8) == 0 ? 200 * KiB : 2000);
                uint8_t *q = hk_realloc(p[k], m);
                if (!q) return (void *)2;
                size_t keep = m < n[k] ? m : n[k];
                bad += !same(q, keep, (uint64_t)k << 32 | id);
                p[k] = q;
                n[k] = m;
                fill(p[k], m, (uint64_t)k << 32 | id);
                continue;
            } else {
                hk_free(p[k]);
            }
            p[k] = NULL;
        } else {
            size_t m = hk_rng_below(&r, hk_rng_below(&r, 16) == 0 ? 100 * KiB : 1500);
            p[k] = hk_rng_below(&r, 5) == 0 ? hk_calloc(1, m) : hk_malloc(m);
            if (!p[k]) return (void *)3;
            n[k] = m;
            fill(p[k], m, (uint64_t)k << 32 | id);
        }
        /* Explicit heap, pool and cache traffic alongside. */
        if (round % 7 == 0) {
            uint8_t *x = hk_heap_malloc(h, 1 + hk_rng_below(&r, 3000));
            if (!x) return (void *)4;
            x[0] = 1;
            if (round % 2) hk_free(x);
        }
        if (round % 5 == 0) {
            size_t m = 1 + hk_rng_below(&r, 700);
            uint8_t *x = hk_pool_alloc(pool, m);
            if (!x) return (void *)5;
            memset(x, 0x12, m);
        }
        if (round % 1000 == 999) hk_pool_reset(pool);
        if (round % 3 == 0) {
            obj_t *o = hk_cache_alloc(wl_cache);
            if (!o) return (void *)6;
            bad += o->magic != 0x0b7ec7ull;
            o->body[0]++;
            hk_cache_free(wl_cache, o);
        }
    }
    for (int k = 0; k < 64; k++) hk_free(p[k]);
    hk_pool_destroy(pool);
    hk_heap_destroy(h); /* with its live blocks */
    return (void *)bad;
}

static void workload(void) {
    wl_cache = hk_cache_new("workload", sizeof(obj_t), 0, ctor, dtor);
    REQUIRE(wl_cache);
    pthread_t t[THREADS];
    for (unsigned i = 0; i < THREADS; i++)
        REQUIRE(pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i) == 0);
    int bad = 0;
    for (unsigned i = 0; i < THREADS; i++) {
        void *rc;
        pthread_join(t[i], &rc);
        bad += rc != NULL;
    }
    CHECK(bad == 0);
    for (int s = 0; s < SLOTS; s++) hk_free(atomic_exchange(&handoff[s], NULL));
    hk_cache_destroy(wl_cache);
    hk_collect(true);
}

int main(void) {
    malloc_family();
    reallocs();
    remote_frees();
    heaps();
    pools();
    caches();
    workload();
    return hk_test_done();
}
