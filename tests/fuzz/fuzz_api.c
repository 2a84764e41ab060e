/* fuzz_api.c: the fuzz target of heapkit's public API, checked against a
 * shadow model.
 *
 * Owns: LLVMFuzzerTestOneInput (libFuzzer's entry point, also called by the
 * standalone driver fuzz_api_main.c), the decoding of an input into a
 * sequence of hk_ calls, and the model that checks every answer.
 *
 * Decoding: every byte string is a valid program. One byte picks an
 * operation (weighted table), the next bytes its arguments: sizes from a
 * selector (tiny, small, medium, huge, class edges, impossible), alignments
 * (good, bad, absurd), which live block or heap or pool to use. When the
 * input runs out, every byte reads as 0 and the program ends.
 *
 * The model: every live block or object has an id and is filled with a
 * pattern derived from the id and the offset (all usable bytes of a heap
 * block, the bytes asked for of a pool block or cache object). The pattern
 * is verified before the block is freed, reallocated, reset or destroyed
 * with its heap or pool; realloc must keep the old bytes up to the smaller
 * size. Each new block is checked for alignment, usable size >= asked,
 * zeroed memory where promised, and against a sorted array of the live
 * intervals (no two live blocks overlap). Failing requests must return NULL
 * with the documented errno and leave everything else as it was. Pool
 * cleanups must run exactly once, newest first (a handler that adds a
 * handler makes that one run next); heaps and pools that go take their
 * blocks out of the model. With the object cache built (HK_FUZZ_CACHE), the
 * constructor and destructor calls are checked for consistency: an object
 * is constructed once before it is handed out, destroyed only while free
 * and constructed, and keeps its constructed bytes across free and alloc.
 *
 * Bounds: at most MAX_BLOCKS live blocks, BUDGET bytes of them, MAX_OPS
 * operations per input; the end of every input frees everything (checking
 * once more), so inputs do not depend on one another and the heap's own
 * statistics must come back to zero live blocks.
 *
 * A mismatch prints what differed, the operation and the ones before it,
 * calls the driver's hook (seed, saved input) and aborts.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_api.h"
#include "heapkit.h"

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)

#define MAX_BLOCKS     1024           /* live blocks, pool blocks and objects */
#define MAX_OPS        2000           /* operations per input */
#define BUDGET         (48 * MiB)     /* bytes of live blocks */
#define NHEAPS         4              /* slot 0: the thread's default heap */
#define NPOOLS         4
#define MAX_CLEANUPS   512            /* cleanup records per input */
#define MEDIUM_MAX     (2 * MiB - 4 * KiB) /* larger blocks are mapped on their own */
#define POOL_LARGE     (16 * KiB)     /* larger pool requests get a block of their own */
#define IMPOSSIBLE_MIN ((size_t)1 << 48) /* more than the address space */

/* ---- Input ------------------------------------------------------------------ */

static const uint8_t *in_data;
static size_t in_size, in_pos;

static uint8_t rd8(void) { return in_pos < in_size ? in_data[in_pos++] : 0; }
static uint16_t rd16(void) { return (uint16_t)(rd8() | rd8() << 8); }
static uint32_t rd32(void) { return (uint32_t)rd16() | (uint32_t)rd16() << 16; }
static uint64_t rd64(void) { return (uint64_t)rd32() | (uint64_t)rd32() << 32; }

/* ---- Operations ------------------------------------------------------------- */

/* X(name, weight, description with three unsigned long long arguments) */
#define FZ_OPS(X)                                                                 \
    X(MALLOC, 22, "hk_malloc(%llu) -> id %llu")                                   \
    X(CALLOC, 6, "hk_calloc(%llu, %llu) -> id %llu")                              \
    X(REALLOC, 12, "hk_realloc(id %llu, %llu) -> id %llu")                        \
    X(REALLOCARRAY, 4, "hk_reallocarray(id %llu, %llu, %llu)")                    \
    X(FREE, 26, "hk_free(id %llu) size %llu")                               \
    X(ALIGNED, 8, "hk_aligned_alloc(%llu, %llu) -> id %llu")                      \
    X(MEMALIGN, 4, "hk_posix_memalign(%llu, %llu) -> id %llu")                    \
    X(USABLE, 3, "hk_usable_size(id %llu) = %llu")                          \
    X(FAILS, 4, "impossible request kind %llu, size %llu, count %llu")            \
    X(HEAP_NEW, 3, "hk_heap_new() -> slot %llu")                      \
    X(HEAP_MALLOC, 10, "hk_heap_malloc(slot %llu, %llu) -> id %llu")              \
    X(HEAP_CALLOC, 3, "hk_heap_calloc(slot %llu, %llu) -> id %llu")               \
    X(HEAP_ALIGNED, 3, "hk_heap_aligned_alloc(slot %llu, %llu, size %llu)")       \
    X(HEAP_REALLOC, 6, "hk_heap_realloc(slot %llu, id %llu, %llu)")               \
    X(HEAP_DESTROY, 2, "hk_heap_destroy(slot %llu) with %llu blocks")       \
    X(HEAP_MOVE, 2, "hk_heap_release/adopt(slot %llu) frees %llu, adopt %llu")    \
    X(HEAP_OWNS, 2, "hk_heap_owns(id %llu) heap slot %llu, other %llu")           \
    X(HEAP_STATS, 2, "hk_heap_stats(slot %llu) blocks %llu bytes %llu")           \
    X(POOL_NEW, 3, "hk_pool_new(heap slot %llu) -> pool %llu")              \
    X(POOL_ALLOC, 14, "hk_pool_alloc(pool %lld, %llu) -> id %llu")                \
    X(POOL_CALLOC, 3, "hk_pool_calloc(pool %lld, %llu) -> id %llu")               \
    X(POOL_ALIGNED, 3, "hk_pool_aligned_alloc(pool %lld, %llu, %llu)")            \
    X(POOL_STRDUP, 3, "hk_pool_strdup(pool %lld, %llu chars) -> id %llu")         \
    X(POOL_FREE_LARGE, 3, "hk_pool_free_large(pool %lld, id %llu) %llu bytes")    \
    X(POOL_CLEANUP, 4, "hk_pool_cleanup_add(pool %lld) record %llu chain %llu")   \
    X(POOL_RESET, 3, "hk_pool_reset(pool %lld) %llu blocks, %llu cleanups")       \
    X(POOL_DESTROY, 2, "hk_pool_destroy(pool %lld) %llu blocks, %llu cleanups")   \
    X(POOL_STATS, 2, "hk_pool_stats(pool %lld) handed out %llu asked %llu")       \
    X(COLLECT, 2, "hk_collect(%llu)")                                 \
    X(VERIFY_ALL, 1, "verify all %llu blocks")                        \
    X(NULL_ARGS, 1, "NULL arguments")                           \
    X(STATS, 1, "hk_stats / hk_stats_print(json %llu): %llu live blocks, model %llu") \
    X(CACHE_NEW, FZ_CACHE_W(3), "hk_cache_new(size %llu, align %llu) -> slot %llu") \
    X(CACHE_ALLOC, FZ_CACHE_W(14), "hk_cache_alloc(slot %lld) -> id %llu ctor fail %llu") \
    X(CACHE_FREE, FZ_CACHE_W(12), "hk_cache_free(slot %lld, id %llu)")      \
    X(CACHE_SHRINK, FZ_CACHE_W(2), "hk_cache_shrink(slot %lld) dtors %llu") \
    X(CACHE_DESTROY, FZ_CACHE_W(1), "hk_cache_destroy(slot %lld) live %llu dtors %llu") \
    X(CACHE_STATS, FZ_CACHE_W(2), "hk_cache_stats(slot %lld) live %llu")

#ifdef HK_FUZZ_CACHE
#define FZ_CACHE_W(w) (w)
#else
#define FZ_CACHE_W(w) 0
#endif

enum {
#define X(name, w, fmt) OP_##name,
    FZ_OPS(X)
#undef X
        OP_COUNT,
    OP_TEARDOWN = OP_COUNT
};
static const char *const op_fmt[OP_COUNT + 1] = {
#define X(name, w, fmt) fmt,
    FZ_OPS(X)
#undef X
        "end of input: free everything (%llu blocks)",
};
static const char *const op_names[OP_COUNT] = {
#define X(name, w, fmt) #name,
    FZ_OPS(X)
#undef X
};
static const unsigned op_weight[OP_COUNT] = {
#define X(name, w, fmt) w,
    FZ_OPS(X)
#undef X
};
#define X(name, w, fmt) +(w)
enum { OP_WEIGHTS = 0 FZ_OPS(X) };
#undef X
_Static_assert(OP_WEIGHTS > 0 && OP_WEIGHTS <= 256, "one byte picks the operation");
static uint8_t op_table[OP_WEIGHTS];
static unsigned op_table_len;
static uint64_t op_counts[OP_COUNT];

/* The last operations, for the report of a mismatch. */
typedef struct {
    uint64_t no;
    unsigned op;
    unsigned long long a, b, c;
} oplog_t;
#define RING 16
static oplog_t ring[RING];
static uint64_t op_no;      /* operations in this input */
static oplog_t *cur;

static void note(unsigned op, unsigned long long a, unsigned long long b, unsigned long long c) {
    cur = &ring[op_no % RING];
    cur->no = op_no++;
    cur->op = op;
    cur->a = a, cur->b = b, cur->c = c;
}

static void (*failure_hook)(void);
void fz_set_failure_hook(void (*hook)(void)) { failure_hook = hook; }

static void print_op(const oplog_t *o) {
    fprintf(stderr, "  op #%" PRIu64 ": ", o->no);
    fprintf(stderr, op_fmt[o->op], o->a, o->b, o->c);
    fputc('\n', stderr);
}

__attribute__((noreturn, format(printf, 1, 2))) static void fail(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "heapkit fuzz: MODEL MISMATCH: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n  in the operation:\n");
    if (cur) print_op(cur);
    fprintf(stderr, "  operations before it (oldest first):\n");
    uint64_t first = op_no > RING ? op_no - RING : 0;
    for (uint64_t i = first; i + 1 < op_no; i++) print_op(&ring[i % RING]);
    fflush(stderr);
    if (failure_hook) failure_hook();
    abort();
}

void fz_print_counts(FILE *out) {
    for (unsigned i = 0; i < OP_COUNT; i++)
        if (op_weight[i]) fprintf(out, "  %-16s %" PRIu64 "\n", op_names[i], op_counts[i]);
#ifndef HK_FUZZ_CACHE
    fprintf(out, "  (hk_cache_*: not in this build, the object cache is not implemented)\n");
#endif
}

uint64_t fz_total_ops(void) {
    uint64_t t = 0;
    for (unsigned i = 0; i < OP_COUNT; i++) t += op_counts[i];
    return t;
}

int fz_cache_enabled(void) {
#ifdef HK_FUZZ_CACHE
    return 1;
#else
    return 0;
#endif
}

/* ---- Pattern ---------------------------------------------------------------- */

/* The pattern loops touch every byte of every block: under libFuzzer their
 * comparisons would each call the coverage hooks, and under
 * AddressSanitizer each access would check shadow memory, for nothing (the
 * loops have no branch worth learning, and heapkit's memory is mapped by
 * heapkit, not by ASan's allocator). So they are built without both, and
 * asan_check() asks ASan once per block whether any byte is poisoned (a
 * heapkit built to poison its free memory must unpoison live blocks). */
#if defined(__clang__)
#define FZ_BULK __attribute__((no_sanitize("address", "coverage")))
#else
#define FZ_BULK __attribute__((no_sanitize_address))
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FZ_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define FZ_ASAN 1
#endif
#ifdef FZ_ASAN
#include <sanitizer/asan_interface.h>
#endif

#define PAT_STEP 0x9E3779B97F4A7C15ull

static uint64_t pat_key(uint64_t id) {
    uint64_t x = id * 0xD1B54A32D192ED03ull + 0x632BE59BD9B4E019ull;
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
    return x;
}

/* Byte k of the pattern is byte k % 8 of the word key + (k / 8) * STEP. */
FZ_BULK static void pat_fill(uint8_t *p, size_t n, uint64_t id) {
    uint64_t w = pat_key(id);
    size_t i = 0;
    for (; i + 8 <= n; i += 8, w += PAT_STEP) memcpy(p + i, &w, 8);
    if (i < n) memcpy(p + i, &w, n - i);
}

FZ_BULK static uint8_t pat_byte(size_t k, uint64_t id) {
    uint64_t w = pat_key(id) + (uint64_t)(k / 8) * PAT_STEP;
    return (uint8_t)(w >> (8 * (k % 8))); /* little-endian, as memcpy of w stores it */
}

/* The offset of the first byte that is not the pattern, or SIZE_MAX. */
FZ_BULK static size_t pat_check(const uint8_t *p, size_t n, uint64_t id) {
    uint64_t w = pat_key(id), v;
    size_t i = 0;
    for (; i + 8 <= n; i += 8, w += PAT_STEP) {
        memcpy(&v, p + i, 8);
        if (v != w) break;
    }
    for (size_t k = i; k < n; k++)
        if (p[k] != pat_byte(k, id)) return k;
    return SIZE_MAX;
}

FZ_BULK static bool all_zero(const uint8_t *p, size_t n, size_t *at) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) {
            *at = i;
            return false;
        }
    return true;
}

/* ---- The model -------------------------------------------------------------- */

enum { K_HEAP, K_POOL, K_CACHE };
static const char *const kind_names[] = {"heap block", "pool block", "cache object"};

typedef struct {
    uint8_t *p;
    size_t asked;   /* bytes asked for */
    size_t len;     /* bytes under the pattern: usable size of a heap block */
    uint64_t id;
    uint8_t kind;
    uint8_t owner;  /* heap, pool or cache slot */
    bool large;     /* pool: over POOL_LARGE, a block of its own */
    bool own;       /* pool: large, or aligned over 8 KiB (a block of its own too) */
} blk_t;

typedef struct {
    uintptr_t lo, hi;
    uint64_t id;
} iv_t;

typedef struct {
    hk_heap_t *h;
    bool live, released;
} heap_slot_t;

enum { CL_FREE, CL_REGISTERED, CL_RAN, CL_ABANDONED };
typedef struct {
    int state;
    int pool;
    bool chain;    /* when it runs, it adds one more handler to its pool */
    int below;     /* the handler registered before it (the pool's stack) */
    int child;     /* the handler it added when it ran, or -1 */
} cleanup_t;

typedef struct {
    hk_pool_t *p;
    bool live;
    int heap;            /* heap slot */
    int top;             /* newest registered cleanup, or -1 */
    size_t asked;        /* bytes asked for since the last reset */
} pool_slot_t;

/* Live blocks and bytes of the default heap when the input started: what
 * the model does not own (the object cache's per-thread structures). */
static size_t base_blocks, base_bytes;
static blk_t blocks[MAX_BLOCKS];
static unsigned nblocks;
static iv_t ivs[MAX_BLOCKS];
static unsigned nivs;
static size_t live_bytes;
static uint64_t next_id;
static heap_slot_t heaps[NHEAPS];
static pool_slot_t pools[NPOOLS];
static cleanup_t cleanups[MAX_CLEANUPS];
static int ncleanups;
/* The pool whose reset or destroy is running cleanups (-1: none may run),
 * and the records that ran, in order. */
static int cleanup_pool = -1;
static int cleanup_log[MAX_CLEANUPS];
static int ncleanup_log;

static void describe(const blk_t *b, char *buf, size_t n) {
    snprintf(buf, n, "%s id %" PRIu64 " (%s %u, %zu bytes asked, %zu under the pattern, at %p)",
             kind_names[b->kind], b->id, b->kind == K_HEAP ? "heap slot" : b->kind == K_POOL ? "pool" : "cache",
             b->owner, b->asked, b->len, (void *)b->p);
}

/* Index of the first interval with lo >= a. */
static unsigned iv_find(uintptr_t a) {
    unsigned lo = 0, hi = nivs;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (ivs[mid].lo < a) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* An interval of `what` overlapping a live block, or NULL. */
static const iv_t *iv_overlap(uintptr_t lo, uintptr_t hi) {
    unsigned i = iv_find(lo);
    if (i > 0 && ivs[i - 1].hi > lo) return &ivs[i - 1];
    if (i < nivs && ivs[i].lo < hi) return &ivs[i];
    return NULL;
}

static void iv_insert(const blk_t *b) {
    if (b->len == 0) return;
    uintptr_t lo = (uintptr_t)b->p, hi = lo + b->len;
    if (hi < lo) fail("block at %p of %zu bytes wraps around the address space", (void *)b->p, b->len);
    const iv_t *o = iv_overlap(lo, hi);
    if (o) {
        char d[200];
        describe(b, d, sizeof d);
        fail("new %s overlaps live block id %" PRIu64 " [%#" PRIxPTR ", %#" PRIxPTR ")", d, o->id, o->lo,
             o->hi);
    }
    unsigned i = iv_find(lo);
    memmove(&ivs[i + 1], &ivs[i], (nivs - i) * sizeof ivs[0]);
    ivs[i] = (iv_t){lo, hi, b->id};
    nivs++;
}

static void iv_remove(const blk_t *b) {
    if (b->len == 0) return;
    unsigned i = iv_find((uintptr_t)b->p);
    if (i >= nivs || ivs[i].id != b->id) fail("model: interval of block id %" PRIu64 " lost", b->id);
    memmove(&ivs[i], &ivs[i + 1], (nivs - i - 1) * sizeof ivs[0]);
    nivs--;
}

static void asan_check(const uint8_t *p, size_t n, const char *what) {
#ifdef FZ_ASAN
    void *bad = __asan_region_is_poisoned((void *)(uintptr_t)p, n);
    if (bad) fail("%s: byte %zu of the block at %p is poisoned for AddressSanitizer", what,
                  (size_t)((uint8_t *)bad - p), (const void *)p);
#else
    (void)p, (void)n, (void)what;
#endif
}

/* hk_is_heap_memory must be true for every byte of a live block (and for
 * the pointer of a block of any size). The two issues the target found
 * here (past the first 4 MiB of a huge block; an aligned request of 0
 * bytes over 4 MiB) are fixed; tests/fuzz/regress/ keeps their inputs. */
static void check_heap_memory(const blk_t *b, const uint8_t *q) {
    if (hk_is_heap_memory(q)) return;
    char d[200];
    describe(b, d, sizeof d);
    fail("hk_is_heap_memory(%p) is false, byte %zu of %s", (const void *)q, (size_t)(q - b->p), d);
}

/* Adds a block to the model, fills it with its pattern; returns its index. */
static unsigned blk_add(uint8_t *p, size_t asked, size_t len, int kind, int owner, bool large, bool own) {
    blk_t *b = &blocks[nblocks];
    *b = (blk_t){p, asked, len, ++next_id, (uint8_t)kind, (uint8_t)owner, large, own};
    iv_insert(b);
    check_heap_memory(b, p);
    if (len > 1) check_heap_memory(b, p + len - 1);
    asan_check(p, len, "a new block");
    pat_fill(p, len, b->id);
    live_bytes += len;
    return nblocks++;
}

static void blk_remove(unsigned i) {
    iv_remove(&blocks[i]);
    live_bytes -= blocks[i].len;
    blocks[i] = blocks[--nblocks];
}

static void blk_verify(unsigned i) {
    const blk_t *b = &blocks[i];
    asan_check(b->p, b->len, "a live block");
    size_t at = pat_check(b->p, b->len, b->id);
    if (at != SIZE_MAX) {
        char d[200];
        describe(b, d, sizeof d);
        fail("%s: byte %zu is %#x, the pattern says %#x", d, at, b->p[at], pat_byte(at, b->id));
    }
    if (b->kind == K_HEAP) {
        size_t u = hk_usable_size(b->p);
        if (u != b->len) {
            char d[200];
            describe(b, d, sizeof d);
            fail("%s: hk_usable_size changed from %zu to %zu", d, b->len, u);
        }
    }
}

/* A live block of one of the kinds in `mask` (bit per kind) chosen by the
 * input, or -1. */
static int pick_block(unsigned mask) {
    uint16_t r = rd16();
    if (nblocks == 0) return -1;
    unsigned start = r % nblocks;
    for (unsigned k = 0; k < nblocks; k++) {
        unsigned i = (start + k) % nblocks;
        if (mask & (1u << blocks[i].kind)) return (int)i;
    }
    return -1;
}

static void spot_check(void) {
    if (nblocks) blk_verify(rd16() % nblocks);
}

/* ---- Argument decoding ------------------------------------------------------- */

static const size_t edge_sizes[] = {
    0,    1,    7,    8,    9,    15,   16,   17,    31,    32,    127,   128,   129,
    1023, 1024, 1025, 4095, 4096, 4097, 16383, 16384, 16385, 32767, 32768, 32769, 65536,
    2 * MiB - 4096, 2 * MiB - 4095, 2 * MiB - 1, 2 * MiB, 2 * MiB + 1, 4 * MiB - 1, 4 * MiB, 4 * MiB + 1,
};

static size_t impossible_size(void) {
    static const size_t t[] = {
        SIZE_MAX,          SIZE_MAX - 1,          SIZE_MAX - 4095,      SIZE_MAX - 4 * MiB,
        SIZE_MAX - 68 * KiB, (size_t)PTRDIFF_MAX, (size_t)PTRDIFF_MAX + 1, (size_t)PTRDIFF_MAX - 4095,
        SIZE_MAX / 2 - 4 * MiB, IMPOSSIBLE_MIN,   IMPOSSIBLE_MIN + 1,   (size_t)1 << 56,
    };
    uint8_t s = rd8();
    if (s < 2 * (sizeof t / sizeof t[0])) return t[s / 2];
    return rd64() | IMPOSSIBLE_MIN;
}

typedef struct {
    size_t n;
    bool impossible;
} size_arg_t;

static size_arg_t rd_size(void) {
    uint8_t sel = rd8() & 31;
    uint32_t v = rd16();
    size_arg_t r = {0, false};
    if (sel < 14) r.n = v % 257;
    else if (sel < 20) r.n = v % 1025;
    else if (sel < 25) r.n = v % (32 * KiB + 1);
    else if (sel < 27) r.n = 32 * KiB + (((size_t)v << 6) | (rd8() & 63)) % (MEDIUM_MAX - 32 * KiB + 1);
    else if (sel < 28) r.n = (v & 1 ? 32 * KiB : MEDIUM_MAX) + ((size_t)v << 4) % (256 * KiB); /* just past an edge */
    else if (sel < 29) r.n = MEDIUM_MAX + 1 + (((size_t)v << 8 | rd8()) * 97) % (6 * MiB);
    else if (sel < 31) r.n = edge_sizes[v % (sizeof edge_sizes / sizeof edge_sizes[0])];
    else {
        r.n = impossible_size();
        r.impossible = true;
    }
    return r;
}

/* Keeps a feasible request within the budget (`freed`: bytes the operation
 * gives back). */
static size_t fit(size_t n, size_t freed) {
    if (live_bytes - freed + n > BUDGET) n %= 4096;
    return n;
}

enum { AL_OK, AL_EINVAL, AL_MAYFAIL, AL_MUSTFAIL };
typedef struct {
    size_t a;
    int kind;
} align_arg_t;

static align_arg_t rd_align(void) {
    static const size_t bad[] = {0,     3,       5,         6,        12,        24,       48,
                                 96,    4095,    4097,      65535,    0x30000,   SIZE_MAX, SIZE_MAX / 2,
                                 (1u << 20) + 1, 0x8000000000000001ull, 0xC000000000000000ull};
    uint8_t s = rd8();
    if (s < 160) return (align_arg_t){(size_t)1 << (s % 13), AL_OK}; /* 1 .. 4 KiB */
    if (s < 200) return (align_arg_t){(size_t)1 << (13 + s % 10), AL_OK}; /* 8 KiB .. 4 MiB */
    if (s < 240) return (align_arg_t){bad[s % (sizeof bad / sizeof bad[0])], AL_EINVAL};
    unsigned k = 23 + rd8() % 41; /* 8 MiB .. 2^63 */
    return (align_arg_t){(size_t)1 << k, k >= 48 ? AL_MUSTFAIL : k > 23 ? AL_MAYFAIL : AL_OK};
}

/* ---- Heaps ------------------------------------------------------------------ */

static void heap_adopt_if_released(int s) {
    if (heaps[s].released) {
        hk_heap_adopt(heaps[s].h);
        heaps[s].released = false;
    }
}

/* A live heap slot chosen by the input (slot 0 when the chosen one is not
 * live), adopted back if it was released. */
static int pick_heap(void) {
    int s = rd8() % NHEAPS;
    if (!heaps[s].live) s = 0;
    heap_adopt_if_released(s);
    return s;
}

static void expect_null(void *p, int err, const char *what) {
    int e = errno;
    if (p != NULL) fail("%s succeeded (%p), it must fail with errno %d", what, p, err);
    if (e != err) fail("%s failed with errno %d, expected %d", what, e, err);
}

/* Checks and records a heap block just allocated with `asked` bytes at
 * alignment `align` (0: the default) into heap slot `heap`. */
static unsigned heap_block_new(uint8_t *p, size_t asked, size_t align, int heap, bool zeroed,
                               const char *what) {
    if (p == NULL) fail("%s of %zu bytes returned NULL (errno %d)", what, asked, errno);
    size_t min = asked < 16 ? 8 : 16;
    if (align > min) min = align;
    if ((uintptr_t)p % min) fail("%s returned %p, not aligned to %zu", what, (void *)p, min);
    size_t u = hk_usable_size(p);
    if (u < asked) fail("%s: hk_usable_size %zu < %zu asked", what, u, asked);
    size_t at;
    if (zeroed && !all_zero(p, asked, &at))
        fail("%s: byte %zu of %zu is %#x, not zero", what, at, asked, p[at]);
    if (nblocks >= MAX_BLOCKS) fail("model: too many blocks");
    return blk_add(p, asked, u, K_HEAP, heap, false, false);
}

/* ---- Cleanups --------------------------------------------------------------- */

static void cleanup_fn(void *arg);

static int cleanup_new(int pool, bool chain) {
    if (ncleanups >= MAX_CLEANUPS) return -1;
    int r = ncleanups++;
    cleanups[r] = (cleanup_t){CL_REGISTERED, pool, chain, pools[pool].top, -1};
    return r;
}

static void cleanup_fn(void *arg) {
    cleanup_t *c = arg;
    int r = (int)(c - cleanups);
    if (r < 0 || r >= ncleanups) fail("a cleanup ran with an argument that is no record (%p)", arg);
    if (cleanup_pool < 0) fail("cleanup record %d ran outside any reset or destroy", r);
    if (c->pool != cleanup_pool)
        fail("cleanup record %d of pool %d ran at the reset/destroy of pool %d", r, c->pool, cleanup_pool);
    if (c->state != CL_REGISTERED)
        fail("cleanup record %d ran again (state %s)", r, c->state == CL_RAN ? "already ran" : "abandoned");
    c->state = CL_RAN;
    cleanup_log[ncleanup_log++] = r;
    if (c->chain) {
        /* A handler may add memory and handlers to its pool while it runs. */
        pool_slot_t *ps = &pools[c->pool];
        uint8_t *m = hk_pool_alloc(ps->p, 40);
        if (m == NULL) fail("hk_pool_alloc inside a cleanup returned NULL");
        memset(m, 0xC1, 40);
        int child = cleanup_new(c->pool, false);
        if (child >= 0) {
            if (hk_pool_cleanup_add(ps->p, cleanup_fn, &cleanups[child]) != 0)
                fail("hk_pool_cleanup_add inside a cleanup failed");
            c->child = child;
            ps->top = child;
        }
    }
}

/* The handlers registered on pool `s`, oldest first (the top of its stack
 * last); returns how many. */
static int cleanup_snapshot(int s, int *stack) {
    int n = 0;
    for (int r = pools[s].top; r >= 0; r = cleanups[r].below) stack[n++] = r;
    for (int i = 0; i < n / 2; i++) {
        int t = stack[i];
        stack[i] = stack[n - 1 - i];
        stack[n - 1 - i] = t;
    }
    return n;
}

/* After pool `s` ran its cleanups: they must have run as a stack, newest
 * first, each exactly once, and a handler added by a running handler runs
 * next. `stack` holds the handlers registered before the run. */
static void cleanup_check(int s, int *stack, int n) {
    for (int j = 0; j < ncleanup_log; j++) {
        int r = cleanup_log[j];
        if (n == 0) fail("cleanup record %d ran after every handler of pool %d had run", r, s);
        if (stack[n - 1] != r)
            fail("cleanup record %d ran where record %d (newest first) was due", r, stack[n - 1]);
        n--;
        if (cleanups[r].child >= 0) stack[n++] = cleanups[r].child;
    }
    if (n) fail("cleanup record %d of pool %d never ran", stack[n - 1], s);
    pools[s].top = -1;
    ncleanup_log = 0;
}

/* Pool `s` goes without running its cleanups (its heap was destroyed):
 * they must never run. */
static void pool_abandon(int s) {
    for (int r = 0; r < ncleanups; r++)
        if (cleanups[r].pool == s && cleanups[r].state == CL_REGISTERED) cleanups[r].state = CL_ABANDONED;
    for (unsigned i = 0; i < nblocks;)
        if (blocks[i].kind == K_POOL && blocks[i].owner == s) blk_remove(i);
        else i++;
    pools[s].live = false;
    pools[s].top = -1;
}

/* ---- Object caches ------------------------------------------------------------ */

#ifdef HK_FUZZ_CACHE
#include "fuzz_cache.inc"
#else
static void caches_teardown(void) {}
static void caches_reset(void) {}
#endif

/* ---- Operations ------------------------------------------------------------- */

static void op_malloc(void) {
    size_arg_t s = rd_size();
    note(OP_MALLOC, s.n, 0, 0);
    if (s.impossible) {
        errno = 0;
        expect_null(hk_malloc(s.n), ENOMEM, "hk_malloc of an impossible size");
        spot_check();
        return;
    }
    if (nblocks >= MAX_BLOCKS) return;
    size_t n = fit(s.n, 0);
    cur->a = n;
    unsigned i = heap_block_new(hk_malloc(n), n, 0, 0, false, "hk_malloc");
    cur->b = blocks[i].id;
}

/* count and element size of a calloc-style request; *impossible when the
 * product overflows or is beyond the address space. */
static void rd_count_size(size_t *count, size_t *size, bool *impossible) {
    uint8_t m = rd8();
    if (m < 200) {
        *count = rd8() % 17;
        size_arg_t s = rd_size();
        *size = s.n;
        if (*count > 1 && !s.impossible) *size /= *count; /* a total of about the size decoded */
    } else {
        static const size_t pairs[][2] = {
            {SIZE_MAX / 2 + 1, 2}, {(size_t)1 << 32, (size_t)1 << 32}, {SIZE_MAX, SIZE_MAX},
            {3, SIZE_MAX / 3 + 1}, {(size_t)1 << 24, (size_t)1 << 24}, {65537, (size_t)1 << 48},
            {0, SIZE_MAX},         {SIZE_MAX, 0},
        };
        uint8_t k = rd8();
        if (k < 2 * (sizeof pairs / sizeof pairs[0])) {
            *count = pairs[k / 2][0];
            *size = pairs[k / 2][1];
        } else {
            *count = rd64() | ((size_t)1 << 32);
            *size = rd64() | ((size_t)1 << 32);
        }
    }
    size_t total;
    *impossible = __builtin_mul_overflow(*count, *size, &total) || total >= IMPOSSIBLE_MIN;
    if (!*impossible && live_bytes + total > BUDGET) {
        *count = 1;
        *size = total % 4096;
    }
}

static void op_calloc(void) {
    size_t count, size;
    bool impossible;
    rd_count_size(&count, &size, &impossible);
    note(OP_CALLOC, count, size, 0);
    errno = 0;
    if (impossible) {
        expect_null(hk_calloc(count, size), ENOMEM, "hk_calloc of an overflowing size");
        spot_check();
        return;
    }
    if (nblocks >= MAX_BLOCKS) return;
    unsigned i = heap_block_new(hk_calloc(count, size), count * size, 0, 0, true, "hk_calloc");
    cur->c = blocks[i].id;
}

/* The heap slot holding a block that hk_heap_realloc / hk_realloc returned:
 * in place, it stays where it was; moved, it lands in the target heap,
 * except a huge block that mremap moved within its own heap. */
static int realloc_owner(const blk_t *old, uint8_t *q, size_t size, int target) {
    if (q == old->p) return old->owner;
    if (old->len > MEDIUM_MAX && size > MEDIUM_MAX && old->owner != target && !heaps[old->owner].released &&
        hk_heap_owns(heaps[old->owner].h, q))
        return old->owner;
    if (!hk_heap_owns(heaps[target].h, q))
        fail("a block moved by realloc (%p) is no block of the target heap slot %d", (void *)q, target);
    return target;
}

/* realloc of block `bi` (-1: NULL) to `size`; `api` 0: hk_realloc, 1:
 * hk_reallocarray(count, elem), 2: hk_heap_realloc into heap slot `target`. */
static void do_realloc(int bi, size_t size, size_t count, size_t elem, bool impossible, int api,
                       int target) {
    static const char *const names[] = {"hk_realloc", "hk_reallocarray", "hk_heap_realloc"};
    blk_t old = {0};
    if (bi >= 0) {
        blk_verify((unsigned)bi);
        old = blocks[bi];
    }
    errno = 0;
    uint8_t *q = api == 0   ? hk_realloc(old.p, size)
                 : api == 1 ? hk_reallocarray(old.p, count, elem)
                            : hk_heap_realloc(heaps[target].h, old.p, size);
    if (impossible) {
        expect_null(q, ENOMEM, names[api]);
        if (bi >= 0) blk_verify((unsigned)bi); /* untouched */
        return;
    }
    if (bi >= 0 && size == 0) {
        /* heapkit's (and glibc's) realloc(p, 0): frees p, returns NULL. */
        if (q != NULL) fail("%s(p, 0) returned %p, heapkit frees and returns NULL", names[api], (void *)q);
        blk_remove((unsigned)bi);
        return;
    }
    if (q == NULL) fail("%s of %zu bytes returned NULL (errno %d)", names[api], size, errno);
    int owner = bi >= 0 ? realloc_owner(&old, q, size, target) : target;
    if (bi >= 0) {
        size_t keep = old.len < size ? old.len : size;
        size_t at = pat_check(q, keep, old.id);
        if (at != SIZE_MAX)
            fail("%s from %zu to %zu bytes (%p -> %p) lost the content: byte %zu is %#x, expected %#x",
                 names[api], old.len, size, (void *)old.p, (void *)q, at, q[at], pat_byte(at, old.id));
        blk_remove((unsigned)bi);
    }
    unsigned i = heap_block_new(q, size, 0, owner, false, names[api]);
    if (cur) cur->c = blocks[i].id;
}

static void op_realloc(void) {
    int bi = rd8() < 24 ? -1 : pick_block(1u << K_HEAP);
    size_arg_t s = rd_size();
    size_t n = s.impossible ? s.n : fit(s.n, bi >= 0 ? blocks[bi].len : 0);
    note(OP_REALLOC, bi >= 0 ? blocks[bi].id : 0, n, 0);
    if (bi < 0 && nblocks >= MAX_BLOCKS) return;
    do_realloc(bi, n, 0, 0, s.impossible, 0, 0);
}

static void op_reallocarray(void) {
    int bi = rd8() < 24 ? -1 : pick_block(1u << K_HEAP);
    size_t count, elem;
    bool impossible;
    rd_count_size(&count, &elem, &impossible);
    note(OP_REALLOCARRAY, bi >= 0 ? blocks[bi].id : 0, count, elem);
    if (bi < 0 && nblocks >= MAX_BLOCKS) return;
    do_realloc(bi, count * elem, count, elem, impossible, 1, 0);
}

static void op_heap_realloc(void) {
    int target = pick_heap();
    int bi = rd8() < 24 ? -1 : pick_block(1u << K_HEAP);
    size_arg_t s = rd_size();
    size_t n = s.impossible ? s.n : fit(s.n, bi >= 0 ? blocks[bi].len : 0);
    note(OP_HEAP_REALLOC, target, bi >= 0 ? blocks[bi].id : 0, n);
    if (bi < 0 && nblocks >= MAX_BLOCKS) return;
    do_realloc(bi, n, 0, 0, s.impossible, 2, target);
}

static void op_free(void) {
    int bi = pick_block(1u << K_HEAP);
    if (bi < 0) {
        note(OP_FREE, 0, 0, 0);
        hk_free(NULL);
        return;
    }
    note(OP_FREE, blocks[bi].id, blocks[bi].len, 0);
    blk_verify((unsigned)bi);
    hk_free(blocks[bi].p);
    blk_remove((unsigned)bi);
}

/* hk_aligned_alloc (api 0), hk_posix_memalign (1), hk_heap_aligned_alloc (2). */
static void do_aligned(int api, int heap) {
    static const char *const names[] = {"hk_aligned_alloc", "hk_posix_memalign", "hk_heap_aligned_alloc"};
    align_arg_t a = rd_align();
    size_arg_t s = rd_size();
    size_t n = s.n;
    if (!s.impossible) {
        n = fit(n, 0);
        if (a.kind == AL_MAYFAIL) n %= 64 * KiB; /* most of the mapping is address space only */
    }
    note(api == 0 ? OP_ALIGNED : api == 1 ? OP_MEMALIGN : OP_HEAP_ALIGNED, api == 2 ? (unsigned)heap : a.a,
         api == 2 ? a.a : n, api == 2 ? n : 0);
    if (nblocks >= MAX_BLOCKS) return;
    /* Which outcome is allowed: EINVAL for a bad alignment (posix_memalign
     * also for one under sizeof(void *)), ENOMEM for an impossible size or
     * alignment, either success or ENOMEM for a merely absurd alignment. */
    int expect = a.kind;
    if (api == 1 && a.kind != AL_EINVAL && a.a < sizeof(void *)) expect = AL_EINVAL;
    if (expect != AL_EINVAL && s.impossible) expect = AL_MUSTFAIL;
    errno = 0;
    uint8_t *p;
    int rc = 0;
    if (api == 1) {
        static char untouched;
        void *out = &untouched;
        rc = hk_posix_memalign(&out, a.a, n);
        if (rc != 0 && out != &untouched) fail("hk_posix_memalign failed (%d) and changed *out", rc);
        if (rc == 0 && out == &untouched) fail("hk_posix_memalign returned 0 without setting *out");
        if (rc != 0 && rc != EINVAL && rc != ENOMEM) fail("hk_posix_memalign returned %d", rc);
        p = rc ? NULL : out;
    } else {
        p = api == 0 ? hk_aligned_alloc(a.a, n) : hk_heap_aligned_alloc(heaps[heap].h, a.a, n);
    }
    int err = api == 1 ? rc : errno;
    if (expect == AL_EINVAL || expect == AL_MUSTFAIL) {
        int want = expect == AL_EINVAL ? EINVAL : ENOMEM;
        if (p != NULL) fail("%s(%zu, %zu) succeeded (%p), it must fail with %d", names[api], a.a, n, (void *)p, want);
        if (err != want) fail("%s(%zu, %zu) failed with %d, expected %d", names[api], a.a, n, err, want);
        spot_check();
        return;
    }
    if (expect == AL_MAYFAIL && p == NULL) {
        if (err != ENOMEM) fail("%s(%zu, %zu) failed with %d, expected ENOMEM", names[api], a.a, n, err);
        return;
    }
    unsigned i = heap_block_new(p, n, a.a, api == 2 ? heap : 0, false, names[api]);
    cur->c = blocks[i].id;
}

static void op_usable(void) {
    int bi = pick_block(1u << K_HEAP);
    if (bi < 0) {
        note(OP_USABLE, 0, 0, 0);
        if (hk_usable_size(NULL) != 0) fail("hk_usable_size(NULL) != 0");
        return;
    }
    note(OP_USABLE, blocks[bi].id, blocks[bi].len, 0);
    blk_verify((unsigned)bi); /* checks the usable size too */
}

/* Requests that cannot be served, through every entry point. */
static void op_fails(void) {
    uint8_t k = rd8() % 9;
    size_t n = impossible_size();
    note(OP_FAILS, k, n, 0);
    errno = 0;
    int h = 0;
    switch (k) {
    case 0: expect_null(hk_malloc(n), ENOMEM, "hk_malloc"); break;
    case 1: {
        size_t c = rd8() | 2;
        size_t e = SIZE_MAX / c + 1 + rd8();
        cur->c = c;
        expect_null(hk_calloc(c, e), ENOMEM, "hk_calloc overflowing");
        break;
    }
    case 2: expect_null(hk_aligned_alloc(16, n), ENOMEM, "hk_aligned_alloc"); break;
    case 3: {
        int bi = pick_block(1u << K_HEAP);
        if (bi >= 0) cur->c = blocks[bi].id;
        do_realloc(bi, n, 0, 0, true, 0, 0);
        break;
    }
    case 4: {
        int bi = pick_block(1u << K_HEAP);
        if (bi >= 0) cur->c = blocks[bi].id;
        do_realloc(bi, 0, SIZE_MAX / 4 + 1 + rd8(), 4, true, 1, 0);
        break;
    }
    case 5:
        h = pick_heap();
        expect_null(hk_heap_malloc(heaps[h].h, n), ENOMEM, "hk_heap_malloc");
        break;
    case 6:
        h = pick_heap();
        expect_null(hk_heap_calloc(heaps[h].h, 2, SIZE_MAX / 2 + 1 + rd8()), ENOMEM, "hk_heap_calloc overflowing");
        break;
    case 7: {
        static char untouched;
        void *out = &untouched;
        int rc = hk_posix_memalign(&out, 64, n);
        if (rc != ENOMEM || out != &untouched)
            fail("hk_posix_memalign of an impossible size: %d, *out %s", rc, out == &untouched ? "kept" : "changed");
        break;
    }
    default: {
        int p = rd8() % NPOOLS;
        if (!pools[p].live) break;
        heap_adopt_if_released(pools[p].heap);
        expect_null(hk_pool_alloc(pools[p].p, n), ENOMEM, "hk_pool_alloc");
        break;
    }
    }
    spot_check();
}

static void op_heap_new(void) {
    int s = 1 + rd8() % (NHEAPS - 1);
    note(OP_HEAP_NEW, s, 0, 0);
    if (heaps[s].live) return;
    hk_heap_t *h = hk_heap_new();
    if (h == NULL) fail("hk_heap_new returned NULL (errno %d)", errno);
    for (int i = 0; i < NHEAPS; i++)
        if (heaps[i].live && heaps[i].h == h) fail("hk_heap_new returned live heap slot %d", i);
    heaps[s] = (heap_slot_t){h, true, false};
}

static void op_heap_malloc(bool zero) {
    int h = pick_heap();
    size_t count = 1, size;
    bool impossible;
    if (zero) {
        rd_count_size(&count, &size, &impossible);
    } else {
        size_arg_t s = rd_size();
        size = s.impossible ? s.n : fit(s.n, 0);
        impossible = s.impossible;
    }
    note(zero ? OP_HEAP_CALLOC : OP_HEAP_MALLOC, h, count * size, 0);
    errno = 0;
    if (impossible) {
        expect_null(zero ? hk_heap_calloc(heaps[h].h, count, size) : hk_heap_malloc(heaps[h].h, size), ENOMEM,
                    zero ? "hk_heap_calloc" : "hk_heap_malloc");
        return;
    }
    if (nblocks >= MAX_BLOCKS) return;
    uint8_t *p = zero ? hk_heap_calloc(heaps[h].h, count, size) : hk_heap_malloc(heaps[h].h, size);
    unsigned i = heap_block_new(p, count * size, 0, h, zero, zero ? "hk_heap_calloc" : "hk_heap_malloc");
    cur->c = blocks[i].id;
}

/* Takes every block of heap slot `s` (and its pools) out of the model. */
static unsigned heap_forget(int s) {
    unsigned n = 0;
    for (int p = 0; p < NPOOLS; p++)
        if (pools[p].live && pools[p].heap == s) pool_abandon(p);
    for (unsigned i = 0; i < nblocks;)
        if (blocks[i].kind == K_HEAP && blocks[i].owner == s) {
            blk_verify(i);
            blk_remove(i);
            n++;
        } else {
            i++;
        }
    return n;
}

static void heap_destroy_slot(int s) {
    heap_adopt_if_released(s);
    unsigned n = heap_forget(s);
    if (cur) cur->b = n;
    hk_heap_destroy(heaps[s].h);
    heaps[s].live = false;
}

static void op_heap_destroy(void) {
    int s = 1 + rd8() % (NHEAPS - 1);
    note(OP_HEAP_DESTROY, s, 0, 0);
    if (!heaps[s].live) return;
#ifdef HK_FUZZ_CACHE
    if (cache_uses_heap(s)) return;
#endif
    heap_destroy_slot(s);
}

/* Release a heap, free some of its blocks while it is in transit (they are
 * kept for the adopter), then adopt it now or leave it released. */
static void op_heap_move(void) {
    int s = 1 + rd8() % (NHEAPS - 1);
    uint8_t frees = rd8() % 4, adopt = rd8() & 1;
    note(OP_HEAP_MOVE, s, frees, adopt);
    if (!heaps[s].live) return;
    if (heaps[s].released) {
        heap_adopt_if_released(s);
        return;
    }
    hk_heap_release(heaps[s].h);
    heaps[s].released = true;
    for (unsigned k = 0; k < frees; k++) {
        unsigned start = rd16();
        for (unsigned j = 0; j < nblocks; j++) {
            unsigned i = (start + j) % nblocks;
            if (blocks[i].kind == K_HEAP && blocks[i].owner == s) {
                blk_verify(i);
                hk_free(blocks[i].p);
                blk_remove(i);
                break;
            }
        }
    }
    if (adopt) heap_adopt_if_released(s);
}

static void op_heap_owns(void) {
    int bi = pick_block(1u << K_HEAP);
    int other = rd8() % NHEAPS;
    if (bi < 0) {
        note(OP_HEAP_OWNS, 0, 0, 0);
        return;
    }
    const blk_t *b = &blocks[bi];
    note(OP_HEAP_OWNS, b->id, b->owner, other);
    if (heaps[b->owner].released) return;
    if (!hk_heap_owns(heaps[b->owner].h, b->p)) fail("hk_heap_owns(slot %d, id %" PRIu64 ") is false", b->owner, b->id);
    if (other != b->owner && heaps[other].live && !heaps[other].released && hk_heap_owns(heaps[other].h, b->p))
        fail("hk_heap_owns(slot %d, id %" PRIu64 ") is true, the block is in slot %d", other, b->id, b->owner);
}

/* The heap's own statistics are exact for its owner: live blocks and bytes
 * are the model's, when nothing else (a pool, a cache) allocates from it. */
static void op_heap_stats(void) {
    int s = rd8() % NHEAPS;
    if (!heaps[s].live || heaps[s].released) {
        note(OP_HEAP_STATS, s, 0, 0);
        return;
    }
    for (int p = 0; p < NPOOLS; p++)
        if (pools[p].live && pools[p].heap == s) {
            note(OP_HEAP_STATS, s, 0, 0);
            return;
        }
#ifdef HK_FUZZ_CACHE
    if (cache_uses_heap(s)) {
        note(OP_HEAP_STATS, s, 0, 0);
        return;
    }
#endif
    size_t n = 0, bytes = 0;
    if (s == 0) n = base_blocks, bytes = base_bytes; /* not the model's */
    for (unsigned i = 0; i < nblocks; i++)
        if (blocks[i].kind == K_HEAP && blocks[i].owner == s) n++, bytes += blocks[i].len;
    note(OP_HEAP_STATS, s, n, bytes);
    hk_stats_t st;
    hk_heap_stats(heaps[s].h, &st);
    if (st.live_blocks != n || st.live_bytes != bytes)
        fail("hk_heap_stats(slot %d): %zu live blocks, %zu live bytes; the model has %zu and %zu", s,
             st.live_blocks, st.live_bytes, n, bytes);
    if (st.mallocs - st.frees != st.live_blocks)
        fail("hk_heap_stats(slot %d): mallocs %" PRIu64 " - frees %" PRIu64 " != live blocks %zu", s, st.mallocs,
             st.frees, st.live_blocks);
}

/* ---- Pools ------------------------------------------------------------------ */

static int pick_pool(void) {
    int p = rd8() % NPOOLS;
    if (!pools[p].live) return -1;
    heap_adopt_if_released(pools[p].heap);
    return p;
}

static void op_pool_new(void) {
    int s = rd8() % NPOOLS;
    int h = pick_heap();
    bool use_null = h == 0 && (rd8() & 1);
    note(OP_POOL_NEW, h, s, 0);
    if (pools[s].live) return;
    hk_pool_t *p = hk_pool_new(use_null ? NULL : heaps[h].h);
    if (p == NULL) fail("hk_pool_new returned NULL (errno %d)", errno);
    if ((uintptr_t)p < 4096 || hk_is_heap_memory(p) == false)
        fail("hk_pool_new returned %p, not in heapkit's memory", (void *)p);
    pools[s] = (pool_slot_t){p, true, h, -1, 0};
}

static void pool_block_new(int s, uint8_t *p, size_t n, size_t align, bool zeroed, const char *what) {
    if (p == NULL) fail("%s of %zu bytes returned NULL (errno %d)", what, n, errno);
    size_t min = align > 16 ? align : 16;
    if ((uintptr_t)p % min) fail("%s returned %p, not aligned to %zu", what, (void *)p, min);
    size_t at;
    if (zeroed && !all_zero(p, n, &at)) fail("%s: byte %zu of %zu is %#x, not zero", what, at, n, p[at]);
    unsigned i = blk_add(p, n, n, K_POOL, s, n > POOL_LARGE, n > POOL_LARGE || align > 8 * KiB);
    pools[s].asked += n;
    cur->c = blocks[i].id;
}

static void op_pool_alloc(int op) {
    int s = pick_pool();
    size_t count = 1, size, align = 0;
    bool impossible;
    align_arg_t a = {16, AL_OK};
    if (op == OP_POOL_CALLOC) {
        rd_count_size(&count, &size, &impossible);
    } else {
        if (op == OP_POOL_ALIGNED) {
            a = rd_align();
            if (a.kind == AL_MAYFAIL) a = (align_arg_t){(size_t)1 << 22, AL_OK};
            align = a.a;
        }
        size_arg_t z = rd_size();
        size = z.impossible ? z.n : fit(z.n, 0);
        impossible = z.impossible;
    }
    note((unsigned)op, s, count * size, align);
    if (s < 0 || nblocks >= MAX_BLOCKS) return;
    hk_pool_t *p = pools[s].p;
    errno = 0;
    if (op == OP_POOL_ALIGNED && a.kind != AL_OK) {
        int want = a.kind == AL_EINVAL ? EINVAL : ENOMEM;
        expect_null(hk_pool_aligned_alloc(p, align, size), want, "hk_pool_aligned_alloc (bad alignment)");
        spot_check();
        return;
    }
    if (impossible) {
        void *q = op == OP_POOL_CALLOC ? hk_pool_calloc(p, count, size)
                  : op == OP_POOL_ALIGNED ? hk_pool_aligned_alloc(p, align, size)
                                          : hk_pool_alloc(p, size);
        expect_null(q, ENOMEM, "a pool request of an impossible size");
        spot_check();
        return;
    }
    if (op == OP_POOL_CALLOC)
        pool_block_new(s, hk_pool_calloc(p, count, size), count * size, 0, true, "hk_pool_calloc");
    else if (op == OP_POOL_ALIGNED)
        pool_block_new(s, hk_pool_aligned_alloc(p, align, size), size, align, false, "hk_pool_aligned_alloc");
    else
        pool_block_new(s, hk_pool_alloc(p, size), size, 0, false, "hk_pool_alloc");
}

static void op_pool_strdup(void) {
    int s = pick_pool();
    char str[96];
    size_t n = rd8() % 90;
    if (n > in_size - in_pos) n = in_size - in_pos;
    memcpy(str, in_data + in_pos, n); /* the string comes from the input */
    in_pos += n;
    str[n] = 0;
    n = strlen(str);
    note(OP_POOL_STRDUP, s, n, 0);
    if (s < 0 || nblocks >= MAX_BLOCKS) return;
    char *q = hk_pool_strdup(pools[s].p, str);
    if (q == NULL) fail("hk_pool_strdup of %zu chars returned NULL", n);
    if (memcmp(q, str, n + 1) != 0) fail("hk_pool_strdup copied \"%.*s\" as \"%.*s\"", (int)n, str, (int)n, q);
    pool_block_new(s, (uint8_t *)q, n + 1, 0, false, "hk_pool_strdup");
}

static void op_pool_free_large(void) {
    int s = pick_pool();
    note(OP_POOL_FREE_LARGE, s, 0, 0);
    if (s < 0) return;
    unsigned start = rd16();
    for (unsigned j = 0; j < nblocks; j++) {
        unsigned i = (start + j) % nblocks;
        if (blocks[i].kind == K_POOL && blocks[i].owner == s && blocks[i].large) {
            cur->b = blocks[i].id;
            cur->c = blocks[i].asked;
            blk_verify(i);
            hk_pool_free_large(pools[s].p, blocks[i].p);
            blk_remove(i);
            return;
        }
    }
}

static void op_pool_cleanup(void) {
    int s = pick_pool();
    bool chain = rd8() & 1;
    note(OP_POOL_CLEANUP, s, 0, chain);
    if (s < 0) return;
    int r = cleanup_new(s, chain);
    if (r < 0) return;
    cur->b = (unsigned)r;
    if (hk_pool_cleanup_add(pools[s].p, cleanup_fn, &cleanups[r]) != 0) fail("hk_pool_cleanup_add failed");
    pools[s].top = r;
}

/* Verifies and forgets pool `s`'s blocks; returns how many. */
static unsigned pool_forget_blocks(int s) {
    unsigned n = 0;
    for (unsigned i = 0; i < nblocks;)
        if (blocks[i].kind == K_POOL && blocks[i].owner == s) {
            blk_verify(i);
            blk_remove(i);
            n++;
        } else {
            i++;
        }
    return n;
}

static unsigned pool_pending_cleanups(int s) {
    unsigned n = 0;
    for (int r = pools[s].top; r >= 0; r = cleanups[r].below) n++;
    return n;
}

static void pool_end(int s, bool destroy) {
    heap_adopt_if_released(pools[s].heap);
    unsigned nb = pool_forget_blocks(s);
    if (cur) cur->b = nb, cur->c = pool_pending_cleanups(s);
    static int stack[MAX_CLEANUPS];
    int n = cleanup_snapshot(s, stack);
    cleanup_pool = s;
    ncleanup_log = 0;
    if (destroy) hk_pool_destroy(pools[s].p);
    else hk_pool_reset(pools[s].p);
    cleanup_pool = -1;
    cleanup_check(s, stack, n);
    pools[s].asked = 0;
    if (destroy) pools[s].live = false;
}

static void op_pool_end(bool destroy) {
    int s = pick_pool();
    note(destroy ? OP_POOL_DESTROY : OP_POOL_RESET, s, 0, 0);
    if (s < 0) return;
    pool_end(s, destroy);
}

static void op_pool_stats(void) {
    int s = pick_pool();
    note(OP_POOL_STATS, s, 0, 0);
    if (s < 0) return;
    hk_pool_stats_t st;
    hk_pool_stats(pools[s].p, &st);
    cur->b = st.handed_out;
    cur->c = pools[s].asked;
    if (st.handed_out < pools[s].asked)
        fail("hk_pool_stats: handed out %zu bytes, the model asked for %zu since the reset", st.handed_out,
             pools[s].asked);
    size_t live = 0;
    for (unsigned i = 0; i < nblocks; i++)
        if (blocks[i].kind == K_POOL && blocks[i].owner == s) live += blocks[i].asked;
    if (st.pieces < 1 || st.held < st.pieces * 64 * KiB || st.held < live || st.waste >= st.held)
        fail("hk_pool_stats: held %zu, pieces %zu (of 64 KiB), waste %zu; the model has %zu bytes live in the pool",
             st.held, st.pieces, st.waste, live);
}

/* ---- The rest --------------------------------------------------------------- */

static void op_collect(void) {
    bool force = rd8() & 1;
    note(OP_COLLECT, force, 0, 0);
    hk_collect(force);
    spot_check();
    spot_check();
}

static void op_verify_all(void) {
    note(OP_VERIFY_ALL, nblocks, 0, 0);
    for (unsigned i = 0; i < nblocks; i++) blk_verify(i);
}

static void op_null_args(void) {
    note(OP_NULL_ARGS, 0, 0, 0);
    hk_free(NULL);
    if (hk_usable_size(NULL) != 0) fail("hk_usable_size(NULL) != 0");
    hk_pool_destroy(NULL);
    if (hk_is_heap_memory(NULL)) fail("hk_is_heap_memory(NULL) is true");
    static int not_heap;
    if (hk_is_heap_memory(&not_heap)) fail("hk_is_heap_memory(a static) is true");
    int bi = pick_block(1u << K_HEAP | 1u << K_POOL | 1u << K_CACHE);
    if (bi >= 0) {
        check_heap_memory(&blocks[bi], blocks[bi].p);
        if (blocks[bi].len > 1) check_heap_memory(&blocks[bi], blocks[bi].p + blocks[bi].len / 2);
    }
}

/* Process-wide statistics: with no heap in transit, every heap of this
 * thread is published by the call, so the figures cover the model's heap
 * blocks (and more: pool pieces, cache slabs); live within committed
 * within mapped; live blocks = mallocs - frees. The printer must not fail. */
static void op_stats(void) {
    static FILE *devnull;
    bool json = rd8() & 1;
    size_t n = 0, bytes = 0;
    bool in_transit = false;
    for (unsigned i = 0; i < nblocks; i++)
        if (blocks[i].kind == K_HEAP) n++, bytes += blocks[i].len;
    for (int s = 0; s < NHEAPS; s++) in_transit |= heaps[s].live && heaps[s].released;
    hk_stats_t st;
    hk_stats(&st);
    note(OP_STATS, json, st.live_blocks, n);
    if (!in_transit && (st.live_blocks < n || st.live_bytes < bytes))
        fail("hk_stats: %zu live blocks, %zu live bytes; the model alone has %zu blocks of %zu bytes", st.live_blocks,
             st.live_bytes, n, bytes);
    if (st.mallocs - st.frees != st.live_blocks)
        fail("hk_stats: mallocs %" PRIu64 " - frees %" PRIu64 " != live blocks %zu", st.mallocs, st.frees,
             st.live_blocks);
    if (st.live_bytes > st.committed_bytes || st.committed_bytes > st.mapped_bytes ||
        st.live_bytes_peak < st.live_bytes || st.committed_peak < st.committed_bytes ||
        st.mapped_peak < st.mapped_bytes || st.huge_live_bytes > st.live_bytes)
        fail("hk_stats: live %zu (peak %zu, huge %zu), committed %zu (peak %zu), mapped %zu (peak %zu)", st.live_bytes,
             st.live_bytes_peak, st.huge_live_bytes, st.committed_bytes, st.committed_peak, st.mapped_bytes,
             st.mapped_peak);
    if (devnull == NULL) devnull = fopen("/dev/null", "w");
    if (devnull) {
        hk_stats_print(devnull, json);
        if (ferror(devnull)) fail("hk_stats_print failed");
    }
}

/* ---- Input boundaries ---------------------------------------------------------- */

static void model_reset(void) {
    if (op_table_len == 0) {
        for (unsigned op = 0; op < OP_COUNT; op++)
            for (unsigned w = 0; w < op_weight[op]; w++) op_table[op_table_len++] = (uint8_t)op;
    }
    nblocks = nivs = 0;
    live_bytes = 0;
    next_id = 0;
    ncleanups = 0;
    ncleanup_log = 0;
    cleanup_pool = -1;
    op_no = 0;
    cur = NULL;
    memset(heaps, 0, sizeof heaps);
    memset(pools, 0, sizeof pools);
    heaps[0].h = hk_heap_default();
    if (heaps[0].h == NULL) fail("hk_heap_default returned NULL");
    heaps[0].live = true;
    caches_reset();
    hk_stats_t st;
    hk_heap_stats(heaps[0].h, &st);
    base_blocks = st.live_blocks;
    base_bytes = st.live_bytes;
}

/* Frees everything, checking once more, and asks the default heap for its
 * statistics: nothing of the input may be left live in it. */
static void teardown(void) {
    note(OP_TEARDOWN, nblocks, 0, 0);
    for (int s = 0; s < NHEAPS; s++)
        if (heaps[s].live) heap_adopt_if_released(s);
    for (int p = 0; p < NPOOLS; p++)
        if (pools[p].live) pool_end(p, true);
    caches_teardown();
    for (unsigned i = 0; i < nblocks;)
        if (blocks[i].kind == K_HEAP && blocks[i].owner == 0) {
            blk_verify(i);
            hk_free(blocks[i].p);
            blk_remove(i);
        } else {
            i++;
        }
    for (int s = 1; s < NHEAPS; s++)
        if (heaps[s].live) heap_destroy_slot(s);
    if (nblocks || nivs || live_bytes)
        fail("model: %u blocks, %u intervals, %zu bytes left after the teardown", nblocks, nivs, live_bytes);
    for (int r = 0; r < ncleanups; r++)
        if (cleanups[r].state == CL_REGISTERED) fail("cleanup record %d never ran", r);
    hk_stats_t st;
    hk_heap_stats(heaps[0].h, &st);
#ifdef HK_FUZZ_CACHE
    /* A cache keeps small per-thread structures in the default heap after
     * it is destroyed (for reuse by the next cache in the thread): bounded,
     * not exact, in an input that used caches. */
    if (cache_touched) {
        if (st.live_blocks > CACHE_LEFTOVER_MAX)
            fail("the default heap still has %zu live blocks after everything was freed (caches leave at most %d)",
                 st.live_blocks, CACHE_LEFTOVER_MAX);
        return;
    }
#endif
    if (st.live_blocks != base_blocks || st.live_bytes != base_bytes)
        fail("the default heap has %zu live blocks (%zu bytes) after everything was freed, %zu (%zu bytes) at the start",
             st.live_blocks, st.live_bytes, base_blocks, base_bytes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    in_data = data;
    in_size = size;
    in_pos = 0;
    model_reset();
    while (in_pos < in_size && op_no < MAX_OPS) {
        unsigned op = op_table[rd8() % op_table_len];
        op_counts[op]++;
        switch (op) {
        case OP_MALLOC: op_malloc(); break;
        case OP_CALLOC: op_calloc(); break;
        case OP_REALLOC: op_realloc(); break;
        case OP_REALLOCARRAY: op_reallocarray(); break;
        case OP_FREE: op_free(); break;
        case OP_ALIGNED: do_aligned(0, 0); break;
        case OP_MEMALIGN: do_aligned(1, 0); break;
        case OP_USABLE: op_usable(); break;
        case OP_FAILS: op_fails(); break;
        case OP_HEAP_NEW: op_heap_new(); break;
        case OP_HEAP_MALLOC: op_heap_malloc(false); break;
        case OP_HEAP_CALLOC: op_heap_malloc(true); break;
        case OP_HEAP_ALIGNED: do_aligned(2, pick_heap()); break;
        case OP_HEAP_REALLOC: op_heap_realloc(); break;
        case OP_HEAP_DESTROY: op_heap_destroy(); break;
        case OP_HEAP_MOVE: op_heap_move(); break;
        case OP_HEAP_OWNS: op_heap_owns(); break;
        case OP_HEAP_STATS: op_heap_stats(); break;
        case OP_POOL_NEW: op_pool_new(); break;
        case OP_POOL_ALLOC:
        case OP_POOL_CALLOC:
        case OP_POOL_ALIGNED: op_pool_alloc((int)op); break;
        case OP_POOL_STRDUP: op_pool_strdup(); break;
        case OP_POOL_FREE_LARGE: op_pool_free_large(); break;
        case OP_POOL_CLEANUP: op_pool_cleanup(); break;
        case OP_POOL_RESET: op_pool_end(false); break;
        case OP_POOL_DESTROY: op_pool_end(true); break;
        case OP_POOL_STATS: op_pool_stats(); break;
        case OP_COLLECT: op_collect(); break;
        case OP_VERIFY_ALL: op_verify_all(); break;
        case OP_NULL_ARGS: op_null_args(); break;
        case OP_STATS: op_stats(); break;
#ifdef HK_FUZZ_CACHE
        case OP_CACHE_NEW: op_cache_new(); break;
        case OP_CACHE_ALLOC: op_cache_alloc(); break;
        case OP_CACHE_FREE: op_cache_free(); break;
        case OP_CACHE_SHRINK: op_cache_shrink(); break;
        case OP_CACHE_DESTROY: op_cache_destroy(); break;
        case OP_CACHE_STATS: op_cache_stats(); break;
#endif
        default: break;
        }
    }
    teardown();
    return 0;
}
