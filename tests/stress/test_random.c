// ctest-args: 200000 4096
// test_random: randomized single-thread stress against a shadow model.
// Operations: malloc, calloc, realloc (incl. NULL), reallocarray, aligned
// alloc, posix_memalign, free, usable_size; sizes skewed small with some
// medium (32 KiB - 2 MiB less a page) and a few huge (> 2 MiB). Every live block is
// filled over its whole usable size with a pattern derived from its id and
// checked before free and realloc; a treap of live ranges [p, p + usable)
// catches any overlap the moment a block is handed out; calloc memory is
// checked zero; heap statistics are compared with the model periodically.
// Arguments: operations (200000), slots (4096). HK_TEST_SEED varies runs.
#include "hk_test.h"
#include "api/hk_util.h"

/* ---- Shadow model ----------------------------------------------------- */
typedef struct {
    void *p;
    size_t size;    /* asked for */
    size_t usable;  /* hk_usable_size at allocation */
    uint64_t id;
    /* treap node: the block's range, keyed by address */
    int left, right;
    uint32_t prio;
} slot_t;

static slot_t *S;
static int nslots;
static int root = -1;
static uint64_t next_id = 1, op_no;
static hk_rng_t rng;
static size_t live_count, live_usable;
static unsigned long n_ops[16];

static void fail_stop(const char *what, int i) {
    fprintf(stderr, "op %llu: %s: slot %d p=%p size=%zu usable=%zu id=%llu\n",
            (unsigned long long)op_no, what, i, S[i].p, S[i].size, S[i].usable,
            (unsigned long long)S[i].id);
    CHECK(0);
    exit(hk_test_done());
}

/* ---- Treap of live ranges -------------------------------------------- */
static uintptr_t lo_of(int i) { return (uintptr_t)S[i].p; }
static uintptr_t hi_of(int i) { return (uintptr_t)S[i].p + S[i].usable; }
/* Splits t into keys < k and keys >= k. */
static void split(int t, uintptr_t k, int *l, int *r) {
    if (t < 0) { *l = *r = -1; return; }
    if (lo_of(t) < k) { split(S[t].right, k, &S[t].right, r); *l = t; }
    else { split(S[t].left, k, l, &S[t].left); *r = t; }
}
static int merge(int a, int b) {
    if (a < 0) return b;
    if (b < 0) return a;
    if (S[a].prio > S[b].prio) { S[a].right = merge(S[a].right, b); return a; }
    S[b].left = merge(a, S[b].left);
    return b;
}
static int t_max(int t) { while (t >= 0 && S[t].right >= 0) t = S[t].right; return t; }
static int t_min(int t) { while (t >= 0 && S[t].left >= 0) t = S[t].left; return t; }
static void range_insert(int i) {
    S[i].left = S[i].right = -1;
    S[i].prio = (uint32_t)hk_rng_next(&rng);
    int l, r;
    split(root, lo_of(i), &l, &r);
    int a = t_max(l), b = t_min(r);
    if (a >= 0 && hi_of(a) > lo_of(i)) {
        fprintf(stderr, "overlap with slot %d [%p, +%zu)\n", a, S[a].p, S[a].usable);
        fail_stop("new block overlaps a live block", i);
    }
    if (b >= 0 && lo_of(b) < hi_of(i)) {
        fprintf(stderr, "overlap with slot %d [%p, +%zu)\n", b, S[b].p, S[b].usable);
        fail_stop("new block overlaps a live block", i);
    }
    root = merge(merge(l, i), r);
}
static void range_remove(int i) {
    int l, m, r;
    split(root, lo_of(i), &l, &m);
    split(m, lo_of(i) + 1, &m, &r);
    if (m != i || S[m].left >= 0 || S[m].right >= 0) fail_stop("treap lost a block (test bug)", i);
    root = merge(l, r);
}

/* ---- Size and alignment choice --------------------------------------- */
static size_t pick_size(void) {
    uint64_t k = hk_rng_below(&rng, 1000);
    if (k < 500) return 1 + hk_rng_below(&rng, 128);
    if (k < 780) return 1 + hk_rng_below(&rng, 1024);
    if (k < 960) return 1 + hk_rng_below(&rng, 32 * KiB);
    if (k < 998) { /* medium, log-uniform 32 KiB .. 2 MiB less a page */
        unsigned sh = 15 + (unsigned)hk_rng_below(&rng, 6);
        size_t base = (size_t)1 << sh;
        return base + hk_rng_below(&rng, base - 4 * KiB + 1);
    }
    return 2 * MiB + 1 + hk_rng_below(&rng, 6 * MiB); /* huge */
}
static size_t pick_align(void) {
    uint64_t k = hk_rng_below(&rng, 100);
    if (k < 80) return (size_t)1 << (3 + hk_rng_below(&rng, 5));   /* 8 .. 128 */
    if (k < 98) return (size_t)1 << (7 + hk_rng_below(&rng, 7));   /* 128 .. 8 KiB */
    return (size_t)1 << (13 + hk_rng_below(&rng, 9));              /* 8 KiB .. 1 MiB */
}

/* ---- Checks -------------------------------------------------------------- */
/* Checks the pattern over [0, n): all of it up to 256 KiB; beyond, the
 * first and last 16 KiB and 64 random 64-byte windows. */
static bool pat_verify(const void *p, uint64_t id, size_t n) {
    const size_t FULL = 256 * KiB;
    if (n <= FULL) return hk_pat_ok(p, id, n);
    if (hk_pat_find_bad_range(p, id, 0, 16 * KiB) != (size_t)-1) return false;
    if (hk_pat_find_bad_range(p, id, n - 16 * KiB, n) != (size_t)-1) return false;
    for (int k = 0; k < 64; k++) {
        size_t at = hk_rng_below(&rng, n - 64);
        if (hk_pat_find_bad_range(p, id, at, at + 64) != (size_t)-1) return false;
    }
    return true;
}
static bool zero_verify(const void *p, size_t n) {
    const size_t FULL = 1 * MiB;
    if (n <= FULL) return hk_is_zero(p, n);
    if (!hk_is_zero(p, 64 * KiB) || !hk_is_zero((const char *)p + n - 64 * KiB, 64 * KiB)) return false;
    for (int k = 0; k < 256; k++) {
        size_t at = hk_rng_below(&rng, n - 256);
        if (!hk_is_zero((const char *)p + at, 256)) return false;
    }
    return true;
}

/* A block just handed out for slot i: record it, check the contract, add
 * its range, fill it. */
static void adopt(int i, void *p, size_t size, size_t align, bool zeroed) {
    if (!p) fail_stop("allocation failed", i);
    S[i].p = p;
    S[i].size = size;
    S[i].usable = hk_usable_size(p);
    S[i].id = next_id++;
    if (S[i].usable < size) fail_stop("usable size below the size asked", i);
    if (!hk_aligned_to(p, hk_min_align(size))) fail_stop("block misaligned", i);
    if (align && !hk_aligned_to(p, align)) fail_stop("aligned block misaligned", i);
    if (zeroed && !zero_verify(p, size)) fail_stop("calloc memory not zero", i);
    range_insert(i);
    live_count++;
    live_usable += S[i].usable;
    hk_pat_fill(p, S[i].id, S[i].usable);
}
static void drop(int i) {
    if (!pat_verify(S[i].p, S[i].id, S[i].usable)) fail_stop("block damaged", i);
    if (hk_usable_size(S[i].p) != S[i].usable) fail_stop("usable size changed", i);
    range_remove(i);
    live_count--;
    live_usable -= S[i].usable;
}

static void do_realloc(int i, bool array) {
    size_t size = pick_size();
    void *old = S[i].p;
    size_t count = 1, each = size;
    if (array && size % 8 == 0) { count = size / 8; each = 8; }
    if (old) drop(i);
    void *q = array ? hk_reallocarray(old, count, each) : hk_realloc(old, size);
    if (!q) fail_stop("realloc failed", i);
    if (!old) { adopt(i, q, size, 0, false); return; }
    /* contents kept up to min(old usable, new size), same id */
    size_t keep = S[i].usable < size ? S[i].usable : size;
    size_t old_usable = S[i].usable;
    S[i].p = q;
    S[i].size = size;
    S[i].usable = hk_usable_size(q);
    if (S[i].usable < size) fail_stop("realloc: usable size below the size asked", i);
    if (!hk_aligned_to(q, hk_min_align(size))) fail_stop("realloc: misaligned", i);
    if (!pat_verify(q, S[i].id, keep)) {
        fprintf(stderr, "realloc %zu (usable) -> %zu\n", old_usable, size);
        fail_stop("realloc lost contents", i);
    }
    range_insert(i);
    live_count++;
    live_usable += S[i].usable;
    /* the kept prefix already holds the id's pattern: fill the rest */
    hk_pat_fill_range(q, S[i].id, keep, S[i].usable);
}

static void check_stats(hk_stats_t *base) {
    hk_stats_t s = hk_my_stats();
    if (s.live_blocks != base->live_blocks + live_count ||
        s.live_bytes != base->live_bytes + live_usable) {
        fprintf(stderr, "op %llu: stats live_blocks %zu live_bytes %zu, model %zu %zu\n",
                (unsigned long long)op_no, s.live_blocks - base->live_blocks,
                s.live_bytes - base->live_bytes, live_count, live_usable);
        CHECK(0);
    } else {
        CHECK(1);
    }
}

int main(int argc, char **argv) {
    unsigned long ops = hk_arg(argc, argv, 1, 200000);
    nslots = (int)hk_arg(argc, argv, 2, 4096);
    if (nslots < 2) nslots = 2;
    rng = hk_rng_seeded(77);
    S = calloc((size_t)nslots, sizeof *S);
    REQUIRE(S != NULL);
    hk_stats_t base = hk_my_stats();

    for (op_no = 0; op_no < ops; op_no++) {
        int i = (int)hk_rng_below(&rng, (uint64_t)nslots);
        uint64_t k = hk_rng_below(&rng, 100);
        if (!S[i].p) {
            if (k < 50) { size_t s = pick_size(); adopt(i, hk_malloc(s), s, 0, false); n_ops[0]++; }
            else if (k < 65) {
                size_t s = pick_size(), c = 1, e = s;
                if (s % 4 == 0 && hk_rng_below(&rng, 2)) { c = s / 4; e = 4; }
                adopt(i, hk_calloc(c, e), s, 0, true);
                n_ops[1]++;
            } else if (k < 77) {
                size_t s = pick_size(), a = pick_align();
                adopt(i, hk_aligned_alloc(a, s), s, a, false);
                n_ops[2]++;
            } else if (k < 85) {
                size_t s = pick_size(), a = pick_align();
                void *out = NULL;
                int rc = hk_posix_memalign(&out, a, s);
                if (rc != 0) fail_stop("posix_memalign failed", i);
                adopt(i, out, s, a, false);
                n_ops[3]++;
            } else {
                do_realloc(i, k >= 95); /* realloc(NULL, n) */
                n_ops[4]++;
            }
        } else {
            if (k < 55) { drop(i); hk_free(S[i].p); S[i].p = NULL; n_ops[5]++; }
            else if (k < 85) { do_realloc(i, false); n_ops[6]++; }
            else if (k < 90) { do_realloc(i, true); n_ops[7]++; }
            else {
                if (hk_usable_size(S[i].p) != S[i].usable) fail_stop("usable size changed", i);
                /* touch the last usable byte: it is ours */
                volatile uint8_t *last = (uint8_t *)S[i].p + S[i].usable - 1;
                if (*last != hk_pat_byte(S[i].id, S[i].usable - 1)) fail_stop("last byte damaged", i);
                n_ops[8]++;
            }
        }
        if (op_no % 10000 == 9999) check_stats(&base);
        if (op_no % 50000 == 49999) {
            hk_collect(op_no % 100000 == 99999);
            check_stats(&base);
        }
    }
    /* everything still intact, then free in address order (treap order) */
    int freed = 0;
    while (root >= 0) {
        int i = t_min(root);
        drop(i);
        hk_free(S[i].p);
        S[i].p = NULL;
        freed++;
    }
    CHECK(live_count == 0);
    check_stats(&base);
    hk_stats_t end = hk_my_stats();
    CHECK(end.live_blocks == base.live_blocks);
    CHECK(end.live_bytes == base.live_bytes);
    fprintf(stderr, "%lu ops: malloc %lu calloc %lu aligned %lu posix %lu realloc(NULL) %lu "
            "free %lu realloc %lu reallocarray %lu usable %lu; %d freed at end\n",
            ops, n_ops[0], n_ops[1], n_ops[2], n_ops[3], n_ops[4], n_ops[5], n_ops[6], n_ops[7],
            n_ops[8], freed);
    free(S);
    return hk_test_done();
}
