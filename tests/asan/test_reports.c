// test_reports: with heapkit built under AddressSanitizer, a wrong access to
// memory of heapkit's chunks dies with ASan's report at the faulting
// instruction. Each case prepares its memory in this process, then a forked
// child makes the one access (in touch_read or touch_write, never inlined);
// the child must not exit cleanly, and its stderr must hold
// "AddressSanitizer: use-after-poison on address <the address>", the access
// ("READ of size 1 at <the address>") and the accessor as frame #0. Cases:
// a freed small block (local, calloc'd, freed by another thread and still
// queued), an unallocated slab slot next to a live block, the bytes past a
// live block's size (small, medium, huge, after a realloc in place), a freed
// medium block, a destroyed heap's blocks, a freed (cached) huge block, a
// pool's padding, space past its bump pointer and blocks after a reset, a
// freed cache object. A control: a live byte read in a child exits cleanly,
// with no report.
#include "hk_test.h"
#include "api/hk_util.h"
#include "wrong/report.h"

#include <pthread.h>

static volatile uint8_t sink;

static __attribute__((noinline)) void touch_read(volatile uint8_t *p) { sink = *p; }
static __attribute__((noinline)) void touch_write(volatile uint8_t *p) { *p = 0x5a; }

typedef struct {
    volatile uint8_t *at;
    bool write;
} access_t;

static void child_access(void *arg) {
    access_t *a = arg;
    if (a->write) touch_write(a->at);
    else touch_read(a->at);
    _exit(0); /* no report: the parent fails the case */
}

/* Runs the access in a child; true when it died with ASan's report of a
 * use-after-poison at exactly that address, made by the accessor. */
static bool expect_poison(void *at, bool write, const char *what) {
    access_t a = { at, write };
    char out[16384], kind[96], access[96], frame[64];
    int st = hk_run_child(child_access, &a, out, sizeof out);
    /* ASan prints addresses as 0x and at least 12 hex digits. */
    snprintf(kind, sizeof kind, "AddressSanitizer: use-after-poison on address 0x%012lx",
             (unsigned long)(uintptr_t)at);
    snprintf(access, sizeof access, "%s of size 1 at 0x%012lx", write ? "WRITE" : "READ",
             (unsigned long)(uintptr_t)at);
    snprintf(frame, sizeof frame, " in %s ", write ? "touch_write" : "touch_read");
    /* halt_on_error: ASan exits (1), or aborts with abort_on_error=1. */
    bool died = st != -1 && ((WIFEXITED(st) && WEXITSTATUS(st) != 0) ||
                             (WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT));
    const char *f0 = strstr(out, "#0 ");
    const char *eol = f0 ? strchr(f0, '\n') : NULL;
    const char *in = f0 ? strstr(f0, frame) : NULL;
    bool ok = died && strstr(out, kind) && strstr(out, access) && in && (!eol || in < eol);
    if (!ok)
        fprintf(stderr, "%s: %s at %p: want \"%s\", \"%s\", frame #0%s; status 0x%x\n  child: %s\n",
                what, write ? "write" : "read", at, kind, access, frame, st, out);
    return ok;
}

static bool expect_clean(void *at, const char *what) {
    access_t a = { at, false };
    char out[16384];
    int st = hk_run_child(child_access, &a, out, sizeof out);
    bool ok = st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0 && !strstr(out, "AddressSanitizer");
    if (!ok) fprintf(stderr, "%s: want a clean read at %p, status 0x%x\n  child: %s\n", what, at, st, out);
    return ok;
}

/* ---- Small blocks -------------------------------------------------------- */

static void *free_in_thread(void *p) {
    hk_free(p);
    return NULL;
}

static void small_blocks(void) {
    uint8_t *p = hk_malloc(40);
    REQUIRE(p);
    memset(p, 1, 40);
    CHECK(expect_clean(p + 39, "control: the last byte of a live block"));
    hk_free(p);
    CHECK(expect_poison(p, false, "freed small block, first byte (its link)"));
    CHECK(expect_poison(p + 20, true, "freed small block, a write inside"));

    uint8_t *z = hk_calloc(3, 100);
    REQUIRE(z);
    hk_free(z);
    CHECK(expect_poison(z + 299, false, "freed calloc'd block"));

    /* Freed by a thread that does not own it: poisoned before it is queued,
     * still on the owner's queue when the child reads it. */
    uint8_t *r = hk_malloc(200);
    REQUIRE(r);
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, free_in_thread, r) == 0);
    pthread_join(t, NULL);
    CHECK(expect_poison(r + 100, false, "block freed by another thread, queued"));

    /* A fresh explicit heap: its first slab holds one live block, every
     * other slot is unallocated. */
    hk_heap_t *h = hk_heap_new();
    REQUIRE(h);
    uint8_t *a = hk_heap_malloc(h, 13);
    REQUIRE(a);
    memset(a, 2, 13);
    /* Bytes 13..15 share a granule with byte 12: ASan records "13
     * addressable", so the first byte past the size is caught exactly. */
    CHECK(expect_poison(a + 13, false, "byte 13 of a 13-byte block"));
    CHECK(expect_poison(a + 15, true, "byte 15 of a 13-byte block"));
    size_t u = hk_usable_size(a); /* makes a's slack addressable, not its neighbour's */
    CHECK(expect_clean(a + u - 1, "control: last usable byte after hk_usable_size"));
    CHECK(expect_poison(a + u, false, "unallocated slot next to a live block"));

    uint8_t *e = hk_heap_malloc(h, 0);
    REQUIRE(e);
    CHECK(expect_poison(e, false, "a block of 0 bytes"));

    /* realloc in place: shrinking within the block moves the poisoned tail. */
    uint8_t *s = hk_heap_malloc(h, 100);
    REQUIRE(s);
    uint8_t *s2 = hk_heap_realloc(h, s, 60);
    REQUIRE(s2 == s); /* within half of the block: kept */
    CHECK(expect_poison(s2 + 60, false, "past the size after a realloc in place"));
    hk_heap_destroy(h);
}

/* ---- Medium and huge blocks ---------------------------------------------- */

static void big_blocks(void) {
    uint8_t *m = hk_malloc(40000);
    REQUIRE(m);
    memset(m, 3, 40000);
    CHECK(expect_poison(m + 40000, false, "past the size of a medium block"));
    hk_free(m);
    CHECK(expect_poison(m + 20000, false, "freed medium block"));

    uint8_t *g = hk_malloc(3 * MiB + 100);
    REQUIRE(g);
    memset(g, 4, 3 * MiB + 100);
    CHECK(expect_poison(g + 3 * MiB + 100, false, "huge block's slack"));
    CHECK(expect_poison(g + 3 * MiB + 4095, true, "huge block's last slack byte"));
    hk_free(g); /* 3 MiB: kept in the huge cache */
    CHECK(expect_poison(g + MiB, false, "freed huge block, cached"));
}

/* ---- Explicit heaps -------------------------------------------------------- */

static void destroyed_heap(void) {
    hk_heap_t *h = hk_heap_new();
    REQUIRE(h);
    uint8_t *s = hk_heap_malloc(h, 100), *m = hk_heap_malloc(h, 100 * KiB);
    REQUIRE(s && m);
    memset(s, 5, 100);
    memset(m, 6, 100 * KiB);
    hk_heap_destroy(h); /* live blocks, never freed one by one */
    CHECK(expect_poison(s, false, "small block of a destroyed heap"));
    CHECK(expect_poison(m + 50 * KiB, true, "medium block of a destroyed heap"));
}

/* ---- Pools and caches ---------------------------------------------------- */

static void pools(void) {
    hk_pool_t *pool = hk_pool_new(NULL);
    REQUIRE(pool);
    uint8_t *a = hk_pool_alloc(pool, 24); /* rounded to 32 */
    REQUIRE(a);
    memset(a, 7, 24);
    CHECK(expect_poison(a + 24, false, "pool block's rounding"));
    CHECK(expect_poison(a + 32, false, "pool space past the bump pointer"));
    uint8_t *big = hk_pool_alloc(pool, 40 * KiB); /* a large block of its own */
    REQUIRE(big);
    hk_pool_stats_t st;
    hk_pool_stats(pool, &st); /* asks the heap for the usable size */
    CHECK(expect_poison(big + 40 * KiB, false, "pool large block's slack after hk_pool_stats"));
    hk_pool_reset(pool);
    CHECK(expect_poison(a, false, "pool block after a reset"));
    hk_pool_destroy(pool);
}

static void caches(void) {
    hk_cache_t *c = hk_cache_new("asan", 48, 0, NULL, NULL);
    REQUIRE(c);
    uint8_t *o = hk_cache_alloc(c);
    REQUIRE(o);
    memset(o, 8, 48);
    hk_cache_free(c, o);
    CHECK(expect_poison(o + 8, false, "freed cache object"));
    hk_cache_destroy(c);
}

int main(void) {
    small_blocks();
    big_blocks();
    destroyed_heap();
    pools();
    caches();
    return hk_test_done();
}
