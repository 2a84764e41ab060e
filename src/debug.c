/* debug.c: checked allocation for the debug library (libheapkit-debug.so).
 *
 * Owns: the debug block layout, the checks on free (double and invalid
 * free, overflow and underflow through red zones), the quarantine of
 * freed blocks (use after free), the tables of live blocks and the leak
 * report at exit.
 * Calls: the thread heap (_hk_heap_alloc and the plain free), stack.c,
 * report.c.
 * Threads: any; each thread has a table of its live blocks (a stripe) and
 * a quarantine of its own; its malloc and free take no lock (see "Live
 * blocks" below for frees from other threads and the exit check).
 *
 * A block, inside a heap block of HDR + size + at least REDZONE bytes:
 *
 *   base      [padding for alignments over 16]
 *   user - 48 header (dbg_block_t): size, stacks, state, its slot in the
 *             live table, a check word, and 8 canary bytes just before
 *             the user bytes
 *   user      the size bytes asked for (filled with ALLOC_FILL unless
 *             calloc'd, a big block's first 4 KiB: reading them before
 *             writing shows)
 *   user+size red zone: every byte to the end of the heap block is
 *             REDZONE_FILL; free and the exit check find writes there
 *
 * The check word is user ^ state ^ a per-process constant: a pointer that
 * is not a debug block fails it (and is then freed plainly if it is the
 * start of a heap block, for allocations heapkit made for itself, or
 * reported as invalid), a block already freed has state FREED (double
 * free), and an underflow far enough to reach it shows as a corrupted
 * header. A freed block keeps its header and is filled with FREE_FILL (a
 * big block at its ends only: FREED_HEAD below) while it waits in the
 * quarantine of the thread that freed it (first in, first out,
 * HEAPKIT_QUARANTINE_MB per thread); when it leaves, a changed byte is a
 * write after free. Only then is its memory reused: by the thread's next
 * malloc of its size class (the stash), or back in the heap. Threads
 * empty their quarantine at exit, the main thread at the exit check.
 *
 * realloc keeps the block where it is when the new size leaves REDZONE
 * bytes of red zone in its heap block (the red zone moves), else moves it.
 *
 * Nested allocations (the stack walk's first pthread_getattr_np, reports,
 * addr2line's spawn) take the plain path: `busy` marks the thread.
 */
#define _GNU_SOURCE
#define HK_DEBUG_IMPL
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <sys/syscall.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal/fastpath.h"
#include "internal/debug.h"

#if HK_DEBUG_MODE /* the whole file: only the debug variant builds it */

#define HDR          48
#define REDZONE      16
#define ALLOC_FILL   0xbe
#define FREE_FILL    0xdf
#define REDZONE_FILL 0xab
#define CANARY_FILL  0xcd
/* Big blocks get their patterns at the ends only (the cost of a pattern is
 * a pass over the block, twice for the quarantine's: filled when freed,
 * read back cold when it leaves):
 *   - a new block: ALLOC_FILL on its first ALLOC_FILL_MAX bytes, as ASan
 *     fills only the first 4 KiB (max_malloc_fill_size);
 *   - a freed block: FREE_FILL on its first FREED_HEAD and last FREED_TAIL
 *     bytes, checked when it leaves the quarantine. A write after free
 *     between the two, in a block of more than FREED_HEAD + FREED_TAIL
 *     bytes, is not seen (guard pages, HEAPKIT_GUARD_MIN, see every access
 *     to a freed block). */
#define ALLOC_FILL_MAX 4096
#define FREED_HEAD     4096
#define FREED_TAIL     1024
#define STRIPES      256 /* live tables; a thread claims one while it lives */

enum { STATE_LIVE = 0x4c, STATE_FREED = 0x46 };

/* 48 bytes, so that the header shares its cache line with the first 16
 * user bytes (a 64-byte header took a line of its own: free read one line
 * more than the program did, and every block was 16 bytes bigger). What
 * made room: the slot and the freeing thread share a word (a block has a
 * slot while live, a freeing thread once freed), the check word is 32
 * bits (with the state byte, a pointer that is not a debug block matches
 * by chance once in 2^40), and the stash's link, which only a block that
 * left the quarantine needs, is written over the dead header's first word
 * instead of having a field. */
typedef struct dbg_block_s {
    union {
        uint32_t slot;   /* live: its entry in its stripe's table (0: none) */
        uint32_t free_tid; /* freed: the thread that freed it */
    };
    uint32_t alloc_tid;
    size_t size;         /* bytes asked for */
    uint32_t alloc_stack, free_stack; /* stack depot ids; 0: none */
    uint32_t slack;      /* red zone bytes from user + size to the block's end */
    uint32_t base_off;   /* the heap block starts this many bytes before the header */
    uint8_t state;       /* STATE_LIVE or STATE_FREED */
    uint8_t stripe;      /* the table that holds it */
    uint8_t guarded;     /* 1: a mapping of its own, ending at a guard page */
    uint8_t stash_class; /* 1 + the size class of its heap block when a freed
                            block may be reused from the stash, else 0 */
    uint32_t check;      /* the low 32 bits of (uintptr_t)user ^ state ^ secret */
    uint8_t canary[8];   /* CANARY_FILL: the front red zone */
} dbg_block_t;
_Static_assert(sizeof(dbg_block_t) == HDR, "the header is HDR bytes");
_Static_assert(HDR % 16 == 0, "user bytes keep malloc's 16-byte alignment");

/* ---- Live blocks ---------------------------------------------------------
 * Each thread claims a stripe while it lives: a table of its live blocks,
 * whose slot a block's header holds. Threads past STRIPES - 1 share the
 * last stripe, under its lock. A free by the owner puts the block's slot
 * on the table's free list; a free by another thread pushes it on the
 * table's pending list (one compare-and-swap), which the owner takes over
 * when its free list runs out. So the owner's malloc and free take no lock
 * and no atomic read-modify-write, and touch no other block (the doubly
 * linked list this replaces touched two other headers, cold, per free).
 *
 * The exit check reads every table, and other threads may still run. It
 * raises `stopping`, makes every thread pass a full memory barrier
 * (membarrier(2), private expedited) and waits until no stripe is inside
 * an operation; operations that start later wait for the exit check (the
 * world lock). An operation marks its stripe (in_op) before it reads
 * `stopping`: the barrier orders that store before the exit check's read
 * of in_op, so either the operation sees `stopping` or the check sees it
 * running. Where membarrier cannot be had (an old kernel, seccomp,
 * valgrind), every operation takes its stripe's lock instead and the exit
 * check takes them all. A table is freed never: exited threads' blocks stay
 * in theirs, for the leak report and for the next thread to claim it.
 */
#define PAGE_SLOTS  ((uint32_t)1 << 16)  /* slots per table page (512 KiB, committed as used) */
#define TABLE_PAGES 1024                 /* 64 Mi live blocks per thread; past that, untracked */
#define SHARED_STRIPE (STRIPES - 1)

/* Slot entries: a live block's header, or (the next free slot << 1) | 1
 * on a free or pending list (slot 0 ends a list and is never handed out). */
typedef struct {
    _Alignas(64) hk_lock_t lock; /* locked mode: every operation on the stripe */
    int claimed;                 /* a thread owns it (atomic; never the shared one) */
    int in_op;                   /* lock-free mode: its owner is in an operation (atomic) */
    uint32_t free_head;          /* the owner's: first free slot, 0: none */
    uint32_t count;              /* slots handed out (atomic: the exit check reads it) */
    _Alignas(64) uint32_t pending; /* slots freed by other threads (atomic) */
} stripe_t;

static stripe_t stripes[STRIPES];
static uintptr_t *table_pages[STRIPES][TABLE_PAGES]; /* published with release */

static bool lock_free_ops; /* membarrier registered (set before threads start) */
static int stopping;       /* the exit check runs or ran (atomic) */
static hk_lock_t world_lock; /* held by the exit check */


/* Which checks run: HEAPKIT_DEBUG's list (all but guard when unset). */
static bool want_quarantine = true, want_leaks = true;

#define TLS_IE __attribute__((tls_model("initial-exec")))
static __thread int busy TLS_IE;        /* > 0: allocations take the plain path */
static __thread uint32_t my_tid TLS_IE;
/* The thread's stripe, 1 + its index (0: none yet). */
static __thread unsigned stripe_plus_one TLS_IE;
static _Atomic(unsigned) next_stripe;

/* The thread's quarantine: the blocks it freed, oldest first, at most
 * HEAPKIT_QUARANTINE_MB of them. Per thread, so a free takes no lock and
 * a block leaving the quarantine goes back to the heap of the thread that
 * freed it (usually its owner: no remote free).
 *
 * A block leaves the quarantine 16 MiB of frees after it entered: its
 * header and bytes are out of the core's caches by then, and reading them
 * back (the pattern check) was a third of a small-block program's time,
 * one miss after another (a list linked through the headers cannot be
 * fetched ahead: each block's address is in the header before it). So the
 * blocks are in a ring of addresses, and each block leaving starts the
 * fetch of the block QUARANTINE_LEAD places behind it: its header, its
 * first lines (as many as the ring entry says) and the heap's descriptor
 * of its page. (A non-temporal fetch, prefetchnta, kept more of the
 * program's data in L2 but was slower here: 0.53 s against 0.37 s.) */
#define QUARANTINE_LEAD 8
#define PREFETCH_LINES  8    /* of a block, from its header: big blocks are
                                read in order, which the hardware follows */
#define ENTRY_LINES_SHIFT 56 /* ring entry: address | lines << 56 */
#define RING_MIN 1024        /* entries; the ring doubles when full */
/* What a block counts against HEAPKIT_QUARANTINE_MB: its size, header and
 * smallest red zone, the least heap memory it holds. (64 + size while the
 * header was 64 bytes: the same count of blocks as then.) */
#define QUARANTINE_COST(size) ((size) + HDR + REDZONE)
static __thread struct {
    uint64_t *ring;  /* cap entries (a power of two), NULL until needed */
    size_t cap, head, count;
    size_t bytes;    /* QUARANTINE_COST(size) of each block in it */
    bool closed;     /* the thread's exit emptied it: frees skip it */
} quarantine TLS_IE;

/* Blocks that left the quarantine with their pattern intact, kept per size
 * class (of the heap block) for the thread's next malloc of that class,
 * newest first, STASH_BYTES of them at most. The heap's free lists are per
 * slab and a freed block joins its own slab's list, rarely the current
 * one, so a block given back left malloc serving blocks that had waited in
 * a free list since long before, cold: a miss on every allocation. A block
 * from the stash was read moments ago (as long as the stash is smaller
 * than the core's second-level cache). */
#define STASH_BYTES     ((size_t)1 << 20)
#define STASH_BLOCK_MAX 4096 /* classes of heap blocks up to this size */
static __thread struct {
    uint8_t *head[HK_CLASSES]; /* heap blocks, linked by their first word */
    size_t bytes;
} stash TLS_IE;

/* Its destructor empties the thread's quarantine and gives its stripe up;
 * set when the thread claims a stripe (once the key exists: threads start
 * after the constructor that makes it). */
static pthread_key_t thread_key;
static bool thread_key_made;

/* The calling thread's stripe: claimed at its first operation, from where
 * the last claim started (threads take them in turn), else the shared one. */
static unsigned my_stripe(void) {
    if (hk_likely(stripe_plus_one)) return stripe_plus_one - 1;
    unsigned start = atomic_fetch_add_explicit(&next_stripe, 1, memory_order_relaxed), got = SHARED_STRIPE;
    for (unsigned k = 0; k < SHARED_STRIPE && got == SHARED_STRIPE; k++) {
        unsigned i = (start + k) % SHARED_STRIPE;
        int free_one = 0;
        if (!__atomic_load_n(&stripes[i].claimed, __ATOMIC_RELAXED) &&
            __atomic_compare_exchange_n(&stripes[i].claimed, &free_one, 1, false, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED))
            got = i;
    }
    stripe_plus_one = got + 1;
    if (thread_key_made) {
        busy++; /* pthread_setspecific may allocate: plainly */
        pthread_setspecific(thread_key, &quarantine);
        busy--;
    }
    return got;
}

static uintptr_t *slot_entry(unsigned stripe, uint32_t slot) {
    return &__atomic_load_n(&table_pages[stripe][slot / PAGE_SLOTS], __ATOMIC_ACQUIRE)[slot % PAGE_SLOTS];
}

/* A free slot of the stripe for a new block when its free list is empty
 * (the owner's, in an operation): the slots other threads freed, or a new
 * one; 0 when the table cannot grow. */
static uint32_t __attribute__((noinline)) slot_take_slow(unsigned si) {
    stripe_t *s = &stripes[si];
    if (__atomic_load_n(&s->pending, __ATOMIC_RELAXED) != 0) {
        uint32_t slot = __atomic_exchange_n(&s->pending, 0, __ATOMIC_ACQUIRE); /* the whole list */
        s->free_head = (uint32_t)(__atomic_load_n(slot_entry(si, slot), __ATOMIC_RELAXED) >> 1);
        return slot;
    }
    uint32_t n = s->count + 1;
    if (n >= PAGE_SLOTS * TABLE_PAGES) return 0;
    uintptr_t **page = &table_pages[si][n / PAGE_SLOTS];
    if (*page == NULL) {
        uintptr_t *mem = _hk_os_reserve(PAGE_SLOTS * sizeof(uintptr_t), HK_PAGE_SIZE, 0);
        if (mem == NULL) return 0;
        __atomic_store_n(page, mem, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&s->count, n, __ATOMIC_RELEASE);
    return n;
}

/* Operations on the live tables: malloc, free, realloc of a debug block. */
enum { OP_LOCK_FREE, OP_LOCKED, OP_WORLD };

static int op_begin(unsigned si) {
    stripe_t *s = &stripes[si];
    if (hk_likely(lock_free_ops && si != SHARED_STRIPE)) {
        __atomic_store_n(&s->in_op, 1, __ATOMIC_RELAXED);
        __atomic_signal_fence(__ATOMIC_SEQ_CST); /* the exit check's membarrier orders it */
        if (hk_likely(!__atomic_load_n(&stopping, __ATOMIC_RELAXED))) return OP_LOCK_FREE;
        __atomic_store_n(&s->in_op, 0, __ATOMIC_RELEASE);
        _hk_lock(&world_lock);
        return OP_WORLD;
    }
    _hk_lock(&s->lock);
    return OP_LOCKED;
}

static void op_end(unsigned si, int how) {
    if (how == OP_LOCK_FREE) __atomic_store_n(&stripes[si].in_op, 0, __ATOMIC_RELEASE);
    else if (how == OP_WORLD) hk_unlock(&world_lock);
    else hk_unlock(&stripes[si].lock);
}

/* Adds a new block to the table of stripe si, the caller's (in an
 * operation). A block without a slot is checked on free but left out of
 * the exit checks. */
static inline void live_add(dbg_block_t *b, unsigned si) {
    stripe_t *s = &stripes[si];
    uint32_t slot = s->free_head;
    if (hk_likely(slot != 0)) {
        /* The stripe's free list, through the entries. */
        uintptr_t *e = slot_entry(si, slot);
        uint32_t next = (uint32_t)(__atomic_load_n(e, __ATOMIC_RELAXED) >> 1);
        s->free_head = next;
        /* The next malloc reads the next free slot's entry, written when
         * its block was freed, maybe long ago: fetch it now. */
        if (next) __builtin_prefetch(slot_entry(si, next));
        __atomic_store_n(e, (uintptr_t)b, __ATOMIC_RELAXED);
    } else {
        slot = slot_take_slow(si);
        if (slot) __atomic_store_n(slot_entry(si, slot), (uintptr_t)b, __ATOMIC_RELAXED);
    }
    b->stripe = (uint8_t)si;
    b->slot = slot;
}

/* Takes a block off its table, from the thread of stripe my_si (in an
 * operation): the owner's free list, or another's pending list. */
static void live_remove(dbg_block_t *b, unsigned my_si) {
    uint32_t slot = b->slot;
    if (slot == 0) return;
    unsigned si = b->stripe;
    stripe_t *s = &stripes[si];
    uintptr_t *e = slot_entry(si, slot);
    if (si == my_si) {
        __atomic_store_n(e, ((uintptr_t)s->free_head << 1) | 1, __ATOMIC_RELAXED);
        s->free_head = slot;
        return;
    }
    /* No ABA: the owner takes the whole list at once, never one slot. */
    uint32_t head = __atomic_load_n(&s->pending, __ATOMIC_RELAXED);
    do __atomic_store_n(e, ((uintptr_t)head << 1) | 1, __ATOMIC_RELAXED);
    while (!__atomic_compare_exchange_n(&s->pending, &head, slot, true, __ATOMIC_RELEASE,
                                        __ATOMIC_RELAXED));
}

/* The live block in entry e, or NULL (the exit check, every thread stopped). */
static dbg_block_t *entry_block(uintptr_t e) {
    if (e == 0 || (e & 1)) return NULL;
    dbg_block_t *b = (dbg_block_t *)e;
    return b->state == STATE_LIVE ? b : NULL;
}

/* Calls fn(b, arg) on every live block (the exit check). */
static void each_live(void (*fn)(dbg_block_t *, void *), void *arg) {
    for (unsigned si = 0; si < STRIPES; si++) {
        uint32_t n = __atomic_load_n(&stripes[si].count, __ATOMIC_ACQUIRE);
        for (uint32_t slot = 1; slot <= n; slot++) {
            dbg_block_t *b = entry_block(__atomic_load_n(slot_entry(si, slot), __ATOMIC_RELAXED));
            if (b) fn(b, arg);
        }
    }
}

static uint32_t thread_number(void) {
    if (my_tid == 0) my_tid = (uint32_t)gettid();
    return my_tid;
}

static uint8_t *user_of(dbg_block_t *b) { return (uint8_t *)b + HDR; }
static void *base_of(dbg_block_t *b) { return (uint8_t *)b - b->base_off; }
static dbg_block_t *header_of(const void *p) { return (dbg_block_t *)((uintptr_t)p - HDR); }
/* The secret is only there to make a chance match with user data unlikely;
 * it must be the same from the first allocation on (before any
 * constructor ran), so it is derived from where the library was loaded. */
static uint32_t check_of(const void *user, uint8_t state) {
    uint64_t secret = ((uint64_t)(uintptr_t)stripes * 0x9e3779b97f4a7c15ull) ^ 0x6865617064626721ull;
    return (uint32_t)((uintptr_t)user ^ state ^ secret);
}

/* ---- Plain memory -------------------------------------------------------- */

static void *plain_alloc(size_t size, size_t align, bool zero) {
    return _hk_heap_alloc(_hk_tls_heap, size, align, zero);
}

/* True when p starts a live heap block (does not report). */
static bool plain_block_start(const void *p) { return _hk_block_usable(p) != 0; }

/* ---- Reports ------------------------------------------------------------- */

static void print_stack(hk_out_t *o, uint32_t id) {
    void *pc[HK_STACK_MAX];
    unsigned n = _hk_stack_get(id, pc);
    if (n == 0) {
        _hk_out_printf(o, "    (no stack)\n");
        return;
    }
    hk_frame_name_t f;
    for (unsigned i = 0; i < n; i++) {
        _hk_stack_symbolize(pc[i], &f);
        if (f.where[0])
            _hk_out_printf(o, "    #%u %s (%s)\n", i, f.func, f.where);
        else
            _hk_out_printf(o, "    #%u %s (%s+0x%lx)\n", i, f.func, f.module,
                           (unsigned long)f.offset);
    }
}

/* Reports an error about block b (or pointer p) and aborts:
 *   heapkit: <func>(): <kind> 0x<p> (<details>)
 * then the stacks that made and freed the block, and the current one. */
static void __attribute__((noreturn, format(printf, 5, 6)))
report_error(const char *func, const char *kind, const void *p, dbg_block_t *b, const char *fmt,
             ...) {
    busy++;
    uint32_t here = _hk_stack_capture();
    hk_out_t o;
    _hk_out_open(&o, true);
    _hk_out_printf(&o, "heapkit: %s(): %s %p", func, kind, p);
    if (fmt) {
        char detail[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail, sizeof detail, fmt, ap);
        va_end(ap);
        _hk_out_printf(&o, " (%s)", detail);
    }
    _hk_out_printf(&o, "\n");
    if (b) {
        _hk_out_printf(&o, "heapkit: block %p of %zu bytes, allocated by thread %u at:\n",
                       (void *)user_of(b), b->size, b->alloc_tid);
        print_stack(&o, b->alloc_stack);
        if (b->state == STATE_FREED) {
            _hk_out_printf(&o, "heapkit: freed by thread %u at:\n", (unsigned)b->free_tid);
            print_stack(&o, b->free_stack);
        }
    }
    _hk_out_printf(&o, "heapkit: detected by thread %u in %s() at:\n", thread_number(), func);
    print_stack(&o, here);
    _hk_out_close(&o);
    abort();
}

/* ---- Fill patterns -------------------------------------------------------
 * Every check reads a pattern back: the red zone on each free, a freed
 * block when it leaves the quarantine. 16 bytes at a time (GCC's vector
 * extension: SSE2 on x86-64), the differences of 64 bytes OR-ed together,
 * and the exact byte looked for only in a stretch that differs: a few
 * instructions per cache line where a word loop took about twenty.
 */
typedef uint8_t hk_v16 __attribute__((vector_size(16)));

/* True when any byte of d is not zero (one OR of its two halves). */
static inline bool v16_nonzero(hk_v16 d) {
    uint64_t half[2];
    memcpy(half, &d, sizeof half);
    return (half[0] | half[1]) != 0;
}

static inline hk_v16 v16_at(const uint8_t *p) {
    hk_v16 v;
    memcpy(&v, p, sizeof v); /* movdqu: aligned or not */
    return v;
}

/* Fills n bytes at p with `byte` through libc's memset, out of line: GCC
 * inlines a memset whose size it can bound as `rep stos`, whose start-up
 * costs more than a small block's whole fill. */
static void __attribute__((noinline)) fill_big(uint8_t *p, uint8_t byte, size_t n) {
    memset(p, byte, n);
}

/* Fills n bytes at p with `byte`: 16 bytes a store, the last one
 * overlapping, or libc's memset past 1024 bytes, where its wide stores
 * win. */
static inline void fill(uint8_t *p, uint8_t byte, size_t n) {
    if (n > 1024) {
        fill_big(p, byte, n);
    } else if (n > 64) {
        /* 64 bytes a turn, the last 64 bytes by four stores that may
         * overlap the turns before: no loop over what is left. */
        hk_v16 v = (hk_v16){0} + byte;
        for (size_t i = 0; i + 64 < n; i += 64) {
            memcpy(p + i, &v, sizeof v);
            memcpy(p + i + 16, &v, sizeof v);
            memcpy(p + i + 32, &v, sizeof v);
            memcpy(p + i + 48, &v, sizeof v);
            __asm__("" : "+r"(i)); /* hides the loop from GCC, which made it memset again */
        }
        memcpy(p + n - 64, &v, sizeof v);
        memcpy(p + n - 48, &v, sizeof v);
        memcpy(p + n - 32, &v, sizeof v);
        memcpy(p + n - 16, &v, sizeof v);
    } else if (n >= 16) { /* two or four stores, overlapping */
        hk_v16 v = (hk_v16){0} + byte;
        memcpy(p, &v, sizeof v);
        memcpy(p + n - 16, &v, sizeof v);
        if (n > 32) {
            memcpy(p + 16, &v, sizeof v);
            memcpy(p + n - 32, &v, sizeof v);
        }
    } else if (n >= 8) {
        uint64_t w = 0x0101010101010101ull * byte;
        memcpy(p, &w, sizeof w);
        memcpy(p + n - 8, &w, sizeof w);
    } else {
        for (size_t i = 0; i < n; i++) p[i] = byte;
    }
}

/* True when all n bytes at p equal `byte`. Nothing is decided before the
 * end: the differences are OR-ed together and tested once, so an intact
 * pattern (the common case) costs one load, XOR and OR per 16 bytes and no
 * branch but the loop's; where a byte differs, first_changed finds it. */
static inline bool pattern_intact(const uint8_t *p, size_t n, uint8_t byte) {
    hk_v16 pat = (hk_v16){0} + byte;
    if (n > 64) { /* as fill(): 64 bytes a turn, then the last 64 */
        hk_v16 d = (v16_at(p + n - 64) ^ pat) | (v16_at(p + n - 48) ^ pat) |
                   (v16_at(p + n - 32) ^ pat) | (v16_at(p + n - 16) ^ pat);
        for (size_t i = 0; i + 64 < n; i += 64)
            d |= (v16_at(p + i) ^ pat) | (v16_at(p + i + 16) ^ pat) | (v16_at(p + i + 32) ^ pat) |
                 (v16_at(p + i + 48) ^ pat);
        return !v16_nonzero(d);
    }
    if (n >= 16) { /* the first and last 16 (and 32) bytes, overlapping */
        hk_v16 d = (v16_at(p) ^ pat) | (v16_at(p + n - 16) ^ pat);
        if (n > 32) d |= (v16_at(p + 16) ^ pat) | (v16_at(p + n - 32) ^ pat);
        return !v16_nonzero(d);
    }
    if (n >= 8) { /* two words, overlapping */
        uint64_t w = 0x0101010101010101ull * byte, a, z;
        memcpy(&a, p, sizeof a);
        memcpy(&z, p + n - 8, sizeof z);
        return ((a ^ w) | (z ^ w)) == 0;
    }
    uint8_t d = 0;
    for (size_t i = 0; i < n; i++) d |= p[i] ^ byte;
    return d == 0;
}

/* Index of the first byte of [from, to) not equal to fill, or `to`. The
 * ends take one unaligned load each (overlapping the aligned middle), so
 * no stretch is read a byte at a time unless it differs or is shorter
 * than 16 bytes. */
static size_t first_changed(const uint8_t *u, size_t from, size_t to, uint8_t fill) {
    size_t i = from;
    if (to - from >= 16) {
        hk_v16 pat = (hk_v16){0} + fill;
        if (v16_nonzero(v16_at(u + i) ^ pat)) goto bytes;
        /* [from, from + 16) is intact: on from the next 16-byte boundary,
         * which is at most from + 16. */
        i = (size_t)((((uintptr_t)(u + i) + 16) & ~(uintptr_t)15) - (uintptr_t)u);
        for (; i + 64 <= to; i += 64) {
            const uint8_t *q = u + i;
            hk_v16 d = (v16_at(q) ^ pat) | (v16_at(q + 16) ^ pat) | (v16_at(q + 32) ^ pat) |
                       (v16_at(q + 48) ^ pat);
            if (v16_nonzero(d)) goto bytes;
        }
        for (; i + 16 <= to; i += 16)
            if (v16_nonzero(v16_at(u + i) ^ pat)) goto bytes;
        if (i == to || !v16_nonzero(v16_at(u + to - 16) ^ pat)) return to;
    }
bytes: /* the changed byte, if any, is within 64 bytes of i */
    for (; i < to; i++)
        if (u[i] != fill) return i;
    return to;
}

/* Index one past the last byte of [from, to) not equal to fill, or from. */
static size_t last_changed(const uint8_t *u, size_t from, size_t to, uint8_t fill) {
    size_t first = first_changed(u, from, to, fill);
    if (first == to) return from;
    size_t last = to;
    while (last > first && u[last - 1] == fill) last--;
    return last;
}

/* ---- Red zones ----------------------------------------------------------- */

/* The heap block's usable end (a guarded block's: its guard page), as an
 * offset from the user pointer; measured once, at allocation. usable: the
 * heap block's size when the caller knows it (its size class), else 0. */
static size_t measure_end(dbg_block_t *b, size_t usable) {
    if (b->guarded) {
        size_t page = _hk_os_page_size;
        uintptr_t end = (uintptr_t)user_of(b) + b->size;
        return (size_t)(((end + page - 1) & ~(page - 1)) - (uintptr_t)user_of(b));
    }
    if (usable == 0) usable = _hk_usable_size_checked(base_of(b), "debug");
    /* ASan: the whole heap block is the debug block's (its red zone runs to
     * the usable end), not only the bytes plain_alloc asked for. */
    hk_asan_unpoison(base_of(b), usable);
    return (size_t)((uint8_t *)base_of(b) + usable - user_of(b));
}

static size_t block_end(const dbg_block_t *b) { return b->size + b->slack; }

/* The 8 canary bytes in one compare. */
static bool canary_intact(const dbg_block_t *b) {
    uint64_t w;
    memcpy(&w, b->canary, sizeof w);
    return w == 0x0101010101010101ull * CANARY_FILL;
}

/* Checks the canaries of a live block; reports and aborts on damage. */
static void check_redzones(dbg_block_t *b, const char *func) {
    uint8_t *u = user_of(b);
    if (!canary_intact(b))
        for (int i = 0; i < 8; i++)
            if (b->canary[i] != CANARY_FILL)
                report_error(func, "underflow", u, b, "%d bytes before its start written",
                             8 - i);
    size_t end = block_end(b);
    if (hk_likely(pattern_intact(u + b->size, end - b->size, REDZONE_FILL))) return;
    size_t last = last_changed(u, b->size, end, REDZONE_FILL);
    if (last > b->size)
        report_error(func, "overflow", u, b, "block of %zu bytes, %zu bytes past its end written",
                     b->size, last - b->size);
}

/* ---- Guard pages ---------------------------------------------------------
 * A guarded block has a mapping of its own, its header and user bytes
 * ending just before an inaccessible page, so an overflow faults at the
 * instruction that makes it (the up to 15 bytes between the end and the
 * guard, left by the alignment, are red zone, checked on free). Freed,
 * the whole mapping becomes inaccessible and waits in a ring of
 * GUARD_FREED mappings before it is unmapped: a use after free faults
 * too. Guarded blocks are not heap memory; a table of their user pointers
 * tells them apart. Each takes two kernel maps (the kernel allows about
 * 65000), so when mapping fails a block falls back to a plain debug block.
 * HEAPKIT_DEBUG=guard guards every block, HEAPKIT_GUARD_MIN=N those of N
 * bytes and up.
 */
#define GUARD_TABLE (1u << 16)  /* open addressing, at most half full */
#define GUARD_FREED 1024
#define TOMBSTONE   1

static hk_lock_t guard_lock;
static uintptr_t guard_table[GUARD_TABLE]; /* user pointers; 0 empty */
static size_t guard_live;
static struct {
    uintptr_t map;         /* the mapping, PROT_NONE */
    size_t size;
    uintptr_t user;        /* the block it held */
    size_t block_size;
    uint32_t alloc_stack, free_stack;
} guard_freed[GUARD_FREED];
static size_t guard_freed_next;
static bool want_guard_all;

static size_t guard_slot(uintptr_t user) { return (size_t)((user >> 4) * 0x9e3779b97f4a7c15ull >> 48); }

/* guard_lock held. */
static bool guard_find_locked(uintptr_t user, size_t *slot) {
    for (size_t i = guard_slot(user), n = 0; n < GUARD_TABLE; i = (i + 1) % GUARD_TABLE, n++) {
        if (guard_table[i] == user) {
            *slot = i;
            return true;
        }
        if (guard_table[i] == 0) return false;
    }
    return false;
}

static bool is_guarded(const void *p) {
    size_t slot;
    _hk_lock(&guard_lock);
    bool found = guard_find_locked((uintptr_t)p, &slot);
    hk_unlock(&guard_lock);
    return found;
}

static bool want_guard(size_t size) {
    return want_guard_all || (_hk_options.guard_min > 0 && size >= (size_t)_hk_options.guard_min);
}

/* A guarded block's mapping: NULL when it cannot be had (then the caller
 * makes a plain debug block). */
static uint8_t *guard_alloc(size_t size, size_t align, uint8_t **map_out, size_t *map_size) {
    size_t page = _hk_os_page_size;
    size_t data = (HDR + size + align + page - 1) & ~(page - 1);
    if (data < HDR + size) return NULL; /* overflow */
    _hk_lock(&guard_lock);
    bool room = guard_live < GUARD_TABLE / 2;
    hk_unlock(&guard_lock);
    if (!room) return NULL;
    uint8_t *map = _hk_os_reserve(data + page, page, 0);
    if (map == NULL) return NULL;
    if (_hk_os_protect(map + data, page) != 0) {
        _hk_os_release(map, data + page);
        return NULL;
    }
    *map_out = map;
    *map_size = data + page;
    /* The user bytes end at the guard, rounded down to the alignment. */
    return (uint8_t *)(((uintptr_t)map + data - size) & ~(uintptr_t)(align - 1));
}

static void guard_register(uintptr_t user) {
    _hk_lock(&guard_lock);
    size_t i = guard_slot(user);
    while (guard_table[i] > TOMBSTONE) i = (i + 1) % GUARD_TABLE;
    guard_table[i] = user;
    guard_live++;
    hk_unlock(&guard_lock);
}

/* Frees a guarded block: its mapping becomes inaccessible, and the oldest
 * of the freed ones is unmapped. */
static void guard_free(dbg_block_t *b) {
    uintptr_t user = (uintptr_t)user_of(b);
    uint8_t *map = base_of(b);
    size_t page = _hk_os_page_size;
    /* The mapping ends one page past the page that holds the block's end. */
    size_t size = (size_t)(((user + b->size + page - 1) & ~(page - 1)) - (uintptr_t)map) + page;
    uint32_t alloc_stack = b->alloc_stack, free_stack = b->free_stack;
    size_t block_size = b->size;
    _hk_lock(&guard_lock);
    size_t slot;
    if (guard_find_locked(user, &slot)) {
        guard_table[slot] = TOMBSTONE;
        guard_live--;
    }
    size_t k = guard_freed_next++ % GUARD_FREED;
    uintptr_t old_map = guard_freed[k].map;
    size_t old_size = guard_freed[k].size;
    guard_freed[k].map = (uintptr_t)map;
    guard_freed[k].size = size;
    guard_freed[k].user = user;
    guard_freed[k].block_size = block_size;
    guard_freed[k].alloc_stack = alloc_stack;
    guard_freed[k].free_stack = free_stack;
    hk_unlock(&guard_lock);
    _hk_os_protect(map, size);
    if (old_map) _hk_os_release((void *)old_map, old_size);
}

/* True (with its size) when p is a guarded block freed lately. */
static bool guard_freed_before(const void *p, size_t *size) {
    bool found = false;
    _hk_lock(&guard_lock);
    for (size_t k = 0; k < GUARD_FREED && !found; k++)
        if (guard_freed[k].map && guard_freed[k].user == (uintptr_t)p) {
            found = true;
            *size = guard_freed[k].block_size;
        }
    hk_unlock(&guard_lock);
    return found;
}

static void print_stack(hk_out_t *o, uint32_t id);

/* A fault in a guard page or in a freed guarded block is reported with the
 * block's stacks; then the default action kills the process, at the
 * faulting instruction. */
static void on_fault(int sig, siginfo_t *info, void *ctx) {
    (void)ctx;
    uintptr_t addr = (uintptr_t)info->si_addr;
    size_t page = _hk_os_page_size;
    hk_out_t o;
    bool known = false;
    busy++;
    for (size_t i = 0; i < GUARD_TABLE && !known; i++) {
        uintptr_t user = guard_table[i];
        if (user <= TOMBSTONE) continue;
        dbg_block_t *b = header_of((void *)user);
        uintptr_t guard = (user + b->size + page - 1) & ~(page - 1);
        if (addr < guard || addr >= guard + page) continue;
        known = true;
        _hk_out_open(&o, true);
        _hk_out_printf(&o, "heapkit: overflow %p (block of %zu bytes, written or read %zu bytes "
                           "past its end: guard page)\n",
                       (void *)user, b->size, (size_t)(addr - user - b->size + 1));
        _hk_out_printf(&o, "heapkit: block %p of %zu bytes, allocated by thread %u at:\n",
                       (void *)user, b->size, b->alloc_tid);
        print_stack(&o, b->alloc_stack);
        _hk_out_close(&o);
    }
    for (size_t k = 0; k < GUARD_FREED && !known; k++) {
        if (addr < guard_freed[k].map || addr >= guard_freed[k].map + guard_freed[k].size) continue;
        known = true;
        _hk_out_open(&o, true);
        _hk_out_printf(&o, "heapkit: use after free %p (block %p of %zu bytes, at byte %zd, "
                           "guard pages)\n",
                       (void *)addr, (void *)guard_freed[k].user, guard_freed[k].block_size,
                       (ssize_t)(addr - guard_freed[k].user));
        _hk_out_printf(&o, "heapkit: allocated at:\n");
        print_stack(&o, guard_freed[k].alloc_stack);
        _hk_out_printf(&o, "heapkit: freed at:\n");
        print_stack(&o, guard_freed[k].free_stack);
        _hk_out_close(&o);
    }
    busy--;
    /* Default action: the instruction runs again and the process dies. */
    signal(sig, SIG_DFL);
}

/* ---- Allocation ---------------------------------------------------------- */

/* The quarantine hands blocks back to the heap long after they were used,
 * so the block the next malloc of a size class gets is cold: start
 * fetching it now (its header and first bytes, which malloc writes), while
 * this one is filled, its stack taken and the program runs. */
static inline void prefetch_next_block(size_t total) {
    if (total > HK_DIRECT_MAX) return;
    hk_heap_t *h = _hk_tls_heap;
    const hk_block_t *next = h->direct[(total + 7) >> 3].page->free;
    if (next) {
        __builtin_prefetch(next, 1);
        __builtin_prefetch((const char *)next + HDR, 1);
    }
}

/* A new block's header armed and its bytes filled (zeroed for calloc);
 * the red zone, the stack and the live table are the caller's. */
static inline void header_arm(dbg_block_t *b, uint8_t *user, size_t size, uint8_t stash_class,
                              bool guarded, uint32_t base_off, bool zero) {
    b->stash_class = stash_class;
    b->guarded = guarded;
    b->base_off = base_off;
    b->size = size;
    b->state = STATE_LIVE;
    b->check = check_of(user, STATE_LIVE);
    b->alloc_tid = thread_number();
    b->free_stack = 0;
    uint64_t canary = 0x0101010101010101ull * CANARY_FILL;
    memcpy(b->canary, &canary, sizeof canary);
    if (zero) memset(user, 0, size);
    else fill(user, ALLOC_FILL, size < ALLOC_FILL_MAX ? size : ALLOC_FILL_MAX);
}

/* Every case: alignments, guard pages, blocks past the small classes,
 * allocations of a busy thread, and all of them before the library's
 * constructor has run. */
static void *__attribute__((noinline)) debug_alloc_any(size_t size, size_t align, bool zero) {
    if (busy) return plain_alloc(size, align, zero);
    if (align < 16) align = 16;
    size_t total;
    if (size > PTRDIFF_MAX || __builtin_add_overflow(size, HDR + REDZONE + (align - 16), &total)) {
        errno = ENOMEM;
        return NULL;
    }
    uint8_t *base = NULL, *user = NULL;
    size_t map_size = 0;
    if (want_guard(size)) user = guard_alloc(size, align, &base, &map_size);
    size_t usable = 0;
    unsigned stash_class = 0;
    if (user == NULL) {
        /* A small block's size is its class's, known without asking the
         * heap; a block of the class from the stash, else the inline fast
         * path (plain malloc's own: 16-byte aligned, since every class from
         * 16 bytes up is a multiple of 16). */
        unsigned cls = HK_CLASSES;
        if (total <= HK_SMALL_MAX && (cls = hk_class_of(total)) < _hk_class_count) {
            usable = _hk_classes[cls].block_size;
            if (usable <= STASH_BLOCK_MAX) stash_class = cls + 1;
        }
        if (stash_class && stash.head[cls]) {
            base = stash.head[cls];
            stash.head[cls] = *(uint8_t **)base;
            stash.bytes -= usable;
            if (stash.head[cls]) __builtin_prefetch(stash.head[cls], 1);
        } else {
            base = hk_malloc_fast(total);
            if (base == NULL) return NULL;
            prefetch_next_block(total);
        }
        user = (uint8_t *)(((uintptr_t)base + HDR + align - 1) & ~(uintptr_t)(align - 1));
    }
    dbg_block_t *b = header_of(user);
    header_arm(b, user, size, (uint8_t)stash_class, map_size != 0, (uint32_t)((uint8_t *)b - base), zero);
    size_t end = measure_end(b, usable);
    b->slack = (uint32_t)(end - size);
    fill(user + size, REDZONE_FILL, end - size);
    busy++;
    b->alloc_stack = _hk_stack_capture(); /* past this function and the entry point */
    busy--;
    if (b->guarded) guard_register((uintptr_t)user);
    unsigned si = my_stripe();
    int how = op_begin(si);
    live_add(b, si);
    op_end(si, how);
    return user;
}

/* Sizes below this take the fast path of _hk_debug_alloc: a small block,
 * no guard page. 0 (nothing) until the constructor has read the options. */
static size_t fast_alloc_below;

/* malloc's alignment, a block of a small class without a guard page: the
 * same block as debug_alloc_any makes, with nothing to decide but the
 * stash. Its size class gives the heap block's size, so the red zone runs
 * to usable - HDR. */
void *_hk_debug_alloc(size_t size, size_t align, bool zero) {
    if (hk_unlikely(size >= fast_alloc_below || align > 16 || busy))
        return debug_alloc_any(size, align, zero);
    size_t total = size + HDR + REDZONE;
    unsigned cls = hk_class_of(total);
    size_t usable = _hk_classes[cls].block_size;
    uint8_t *base = stash.head[cls];
    if (base != NULL && usable <= STASH_BLOCK_MAX) {
        stash.head[cls] = *(uint8_t **)base;
        stash.bytes -= usable;
        if (stash.head[cls]) __builtin_prefetch(stash.head[cls], 1);
    } else {
        base = hk_malloc_fast(total);
        if (hk_unlikely(base == NULL)) return NULL;
        prefetch_next_block(total);
    }
    uint8_t *user = base + HDR;
    dbg_block_t *b = (dbg_block_t *)base;
    header_arm(b, user, size, usable <= STASH_BLOCK_MAX ? (uint8_t)(cls + 1) : 0, false, 0, zero);
    hk_asan_unpoison(base, usable); /* (ASan: the red zone is the block's) */
    size_t end = usable - HDR;
    b->slack = (uint32_t)(end - size);
    fill(user + size, REDZONE_FILL, end - size);
    busy++;
    b->alloc_stack = _hk_stack_capture();
    busy--;
    unsigned si = my_stripe();
    int how = op_begin(si);
    live_add(b, si);
    op_end(si, how);
    return user;
}

/* The header of a debug block p, or NULL when p is not one (a plain block
 * or a bad pointer). Reports a double free. */
static dbg_block_t *find_block(void *p, const char *func) {
    if (((uintptr_t)p & 15) != 0) return NULL;
    /* A normal chunk's data is mapped whole: the common case, inline. */
    bool in_chunk = hk_chunk_map_has((uintptr_t)p) && hk_chunk_of(p)->h.kind == HK_CHUNK_NORMAL;
    if (!in_chunk && !hk_is_heap_memory(p) && !is_guarded(p)) return NULL;
    /* The header is heapkit memory too: a user pointer is at least HDR
     * bytes into its heap block. For other pointers, the word read is in
     * the same chunk (or the chunk's metadata just below its data). */
    dbg_block_t *b = header_of(p);
    /* ASan: a debug block's header is always addressable; poisoned bytes
     * there mean free memory, not a debug block. */
    if (hk_asan_is_poisoned(b, sizeof *b)) return NULL;
    if (b->check == check_of(p, STATE_LIVE) && b->state == STATE_LIVE) return b;
    if (b->check == check_of(p, STATE_FREED) && b->state == STATE_FREED)
        report_error(func, "double free", p, b, "block of %zu bytes", b->size);
    return NULL;
}

/* A freed block's pattern: all of it, or the ends of a big one. */
static void fill_freed(uint8_t *u, size_t size) {
    if (size <= FREED_HEAD + FREED_TAIL) {
        fill(u, FREE_FILL, size);
    } else {
        fill_big(u, FREE_FILL, FREED_HEAD);
        fill_big(u + size - FREED_TAIL, FREE_FILL, FREED_TAIL);
    }
}

/* The first byte of a freed block's pattern that changed, or size. */
static size_t freed_changed(const uint8_t *u, size_t size) {
    if (size <= FREED_HEAD + FREED_TAIL) {
        if (hk_likely(pattern_intact(u, size, FREE_FILL))) return size;
        return first_changed(u, 0, size, FREE_FILL);
    }
    size_t i = first_changed(u, 0, FREED_HEAD, FREE_FILL);
    if (i < FREED_HEAD) return i;
    i = first_changed(u, size - FREED_TAIL, size, FREE_FILL);
    return i;
}

/* A block leaves the quarantine: its fill must be intact. Then its heap
 * block goes to the stash, or back to the heap when the stash has enough
 * of its class. */
static void release_quarantined(dbg_block_t *b) {
    uint8_t *u = user_of(b);
    size_t i = freed_changed(u, b->size);
    if (i < b->size)
        report_error("free", "write after free", u, b,
                     "block of %zu bytes, byte %zu written after it was freed", b->size, i);
    b->state = 0;
    b->check = 0;
    uint8_t *base = base_of(b);
    unsigned cls = b->stash_class;
    if (cls != 0 && stash.bytes + HDR + b->size + b->slack <= STASH_BYTES) {
        *(uint8_t **)base = stash.head[cls - 1];
        stash.head[cls - 1] = base;
        stash.bytes += _hk_classes[cls - 1].block_size;
        return;
    }
    hk_free_fast(base);
}

/* Gives the stash's blocks back to the heap (thread exit). */
static void stash_empty(void) {
    for (unsigned c = 0; c < HK_CLASSES; c++) {
        while (stash.head[c]) {
            uint8_t *base = stash.head[c];
            stash.head[c] = *(uint8_t **)base;
            hk_free_fast(base);
        }
    }
    stash.bytes = 0;
}

static void quarantine_release_oldest(void);
static bool quarantine_push(dbg_block_t *b);

void _hk_debug_free(void *p, const char *func) {
    if (p == NULL) return;
    dbg_block_t *b = find_block(p, func);
    if (b == NULL) {
        if (plain_block_start(p)) { /* heapkit's own or a busy thread's */
            hk_free_fast(p);
            return;
        }
        size_t freed_size;
        if (guard_freed_before(p, &freed_size))
            report_error(func, "double free", p, NULL, "block of %zu bytes, freed before (guard pages)",
                         freed_size);
        report_error(func, "invalid pointer", p, NULL,
                     hk_is_heap_memory(p) ? "not the start of a block"
                                          : "not memory heapkit allocated");
    }
    check_redzones(b, func);
    unsigned si = my_stripe();
    int how = op_begin(si);
    live_remove(b, si);
    op_end(si, how);
    busy++;
    b->free_stack = _hk_stack_capture();
    busy--;
    b->free_tid = thread_number();
    if (b->guarded) { /* its own quarantine: the mapping, made inaccessible */
        guard_free(b);
        return;
    }
    b->state = STATE_FREED;
    b->check = check_of(p, STATE_FREED);
    if (!want_quarantine) {
        b->state = 0;
        b->check = 0;
        hk_free_fast(base_of(b));
        return;
    }
    fill_freed(p, b->size);
    if (hk_unlikely(quarantine.closed || !quarantine_push(b))) {
        b->state = 0;
        b->check = 0;
        hk_free_fast(base_of(b));
    }
}

/* The ring entry of block b: its address and the lines its check reads
 * first (header included). */
static uint64_t ring_entry(const dbg_block_t *b) {
    uintptr_t first = (uintptr_t)b & ~(uintptr_t)63;
    uintptr_t end = (uintptr_t)user_of((dbg_block_t *)b) + b->size;
    uint64_t lines = (end - first + 63) / 64;
    if (lines > PREFETCH_LINES) lines = PREFETCH_LINES;
    return (uint64_t)(uintptr_t)b | lines << ENTRY_LINES_SHIFT;
}

static dbg_block_t *ring_block(uint64_t e) {
    return (dbg_block_t *)(uintptr_t)(e & (((uint64_t)1 << ENTRY_LINES_SHIFT) - 1));
}

/* Doubles the ring (plain memory); false when it cannot grow. */
static bool ring_grow(void) {
    size_t cap = quarantine.cap ? quarantine.cap * 2 : RING_MIN;
    busy++;
    uint64_t *ring = plain_alloc(cap * sizeof *ring, 0, false);
    busy--;
    if (ring == NULL) return false;
    for (size_t i = 0; i < quarantine.count; i++)
        ring[i] = quarantine.ring[(quarantine.head + i) & (quarantine.cap - 1)];
    if (quarantine.ring) hk_free_fast(quarantine.ring);
    quarantine.ring = ring;
    quarantine.cap = cap;
    quarantine.head = 0;
    return true;
}

/* A freed block (filled) joins the quarantine; older blocks leave while it
 * holds more than its budget. False when the ring cannot grow. */
static bool quarantine_push(dbg_block_t *b) {
    if (quarantine.count == quarantine.cap && !ring_grow()) return false;
    quarantine.ring[(quarantine.head + quarantine.count++) & (quarantine.cap - 1)] = ring_entry(b);
    quarantine.bytes += QUARANTINE_COST(b->size);
    size_t budget = (size_t)_hk_options.quarantine_mb << 20;
    while (quarantine.bytes > budget) quarantine_release_oldest();
    return true;
}

/* The oldest block leaves the thread's quarantine: checked, then freed;
 * the one QUARANTINE_LEAD places behind it starts coming in. */
static void quarantine_release_oldest(void) {
    size_t mask = quarantine.cap - 1;
    dbg_block_t *old = ring_block(quarantine.ring[quarantine.head]);
    quarantine.head = (quarantine.head + 1) & mask;
    quarantine.count--;
    if (quarantine.count >= QUARANTINE_LEAD) {
        uint64_t e = quarantine.ring[(quarantine.head + QUARANTINE_LEAD - 1) & mask];
        const dbg_block_t *next = ring_block(e);
        const char *line = (const char *)((uintptr_t)next & ~(uintptr_t)63);
        for (unsigned k = 0; k < (unsigned)(e >> ENTRY_LINES_SHIFT); k++)
            __builtin_prefetch(line + 64 * k);
        /* And the heap's descriptor of its page, which the free reads. */
        __builtin_prefetch((const uint8_t *)hk_chunk_of(next)->pages +
                           (((uintptr_t)next >> 6) & HK_DESC_OFFSET_MASK));
    }
    quarantine.bytes -= QUARANTINE_COST(old->size);
    release_quarantined(old);
}

/* Empties the thread's quarantine (thread exit, the exit check). */
static void quarantine_empty(void) {
    while (quarantine.count) quarantine_release_oldest();
}

/* realloc within the heap block: when the new size leaves at least
 * REDZONE bytes of red zone before the block's end (as a new block has)
 * and keeps at least half the old size (a block shrunk further moves, so
 * its memory can be reused). The red zone moves with the end: bytes that
 * were red zone become ALLOC_FILL, bytes given up become red zone. The
 * block is as if allocated here (stack, thread), as a moved one would be.
 * Stale pointers cannot exist: the block did not move. */
static bool resize_in_place(dbg_block_t *b, size_t size) {
    size_t end = block_end(b), old = b->size;
    if (b->guarded || size > end - REDZONE || size < old / 2 || end - size > UINT32_MAX)
        return false;
    uint8_t *u = user_of(b);
    if (size > old) fill(u + old, ALLOC_FILL, size - old);
    else fill(u + size, REDZONE_FILL, old - size);
    unsigned si = my_stripe();
    int how = op_begin(si); /* the exit check reads the size */
    b->size = size;
    b->slack = (uint32_t)(end - size);
    op_end(si, how);
    b->alloc_tid = thread_number();
    busy++;
    b->alloc_stack = _hk_stack_capture();
    busy--;
    return true;
}

void *_hk_debug_realloc(void *p, size_t size) {
    if (p == NULL) return _hk_debug_alloc(size, 0, false);
    dbg_block_t *b = find_block(p, "realloc");
    size_t old;
    if (b) {
        check_redzones(b, "realloc");
        old = b->size;
        if (size != 0 && resize_in_place(b, size)) return p;
    } else if (plain_block_start(p)) {
        old = _hk_usable_size_checked(p, "realloc");
    } else {
        report_error("realloc", "invalid pointer", p, NULL, "not a live block");
    }
    if (size == 0) {
        _hk_debug_free(p, "realloc");
        return NULL;
    }
    /* Moved: a stale pointer to the old block shows up as a write after
     * free. */
    void *q = _hk_debug_alloc(size, 0, false);
    if (q == NULL) return NULL; /* p is untouched */
    memcpy(q, p, old < size ? old : size);
    _hk_debug_free(p, "realloc");
    return q;
}

size_t _hk_debug_usable_size(const void *p) {
    if (p == NULL) return 0;
    dbg_block_t *b = find_block((void *)p, "malloc_usable_size");
    if (b) return b->size;
    return _hk_usable_size_checked(p, "malloc_usable_size");
}

/* ---- At exit: red zones of live blocks, leaks ---------------------------- */

typedef struct {
    uint32_t stack;
    size_t blocks, bytes;
} leak_group_t;

static int by_bytes_desc(const void *a, const void *b) {
    const leak_group_t *x = a, *y = b;
    return x->bytes < y->bytes ? 1 : x->bytes > y->bytes ? -1 : (x->stack > y->stack) - (x->stack < y->stack);
}

static void json_string(hk_out_t *o, const char *s) {
    _hk_out_printf(o, "\"");
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') _hk_out_printf(o, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) _hk_out_printf(o, "\\u%04x", (unsigned char)*s);
        else _hk_out_printf(o, "%c", *s);
    }
    _hk_out_printf(o, "\"");
}

static void json_stack(hk_out_t *o, uint32_t id) {
    void *pc[HK_STACK_MAX];
    unsigned n = _hk_stack_get(id, pc);
    hk_frame_name_t f;
    _hk_out_printf(o, "[");
    for (unsigned i = 0; i < n; i++) {
        _hk_stack_symbolize(pc[i], &f);
        _hk_out_printf(o, "%s{\"func\": ", i ? ", " : "");
        json_string(o, f.func);
        _hk_out_printf(o, ", \"where\": ");
        json_string(o, f.where);
        _hk_out_printf(o, ", \"module\": ");
        json_string(o, f.module);
        _hk_out_printf(o, ", \"offset\": %lu}", (unsigned long)f.offset);
    }
    _hk_out_printf(o, "]");
}

/* ---- Reachability --------------------------------------------------------
 * A block is a leak when no pointer to it (or into it) can be found from
 * the roots: the writable segments of every loaded module (globals), the
 * exiting thread's stack, and the blocks the dynamic loader allocated for
 * itself (thread descriptors' TLS, which live outside any root). What is
 * reachable is counted as such and not listed: stdio's buffers, a global
 * cache a program keeps to the end. Conservative, like valgrind's and
 * LeakSanitizer's scans: any word that looks like a pointer counts.
 */
typedef struct {
    uintptr_t start, end;  /* the user bytes */
    dbg_block_t *block;
    bool marked;
} live_t;

typedef struct {
    live_t *v;
    size_t n;
    size_t *todo;          /* indices of marked blocks not yet scanned */
    size_t ntodo;
    uintptr_t lo, hi;      /* v[0].start and v[n - 1].end: a word outside
                              points at no block (most words: no search) */
    uintptr_t own_base;    /* heapkit's library, whose globals are not roots */
} scan_t;

static int by_start(const void *a, const void *b) {
    const live_t *x = a, *y = b;
    return (x->start > y->start) - (x->start < y->start);
}

static void mark_word(scan_t *sc, uintptr_t w) {
    if (w < sc->lo || w > sc->hi) return;
    size_t lo = 0, hi = sc->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (w < sc->v[mid].start) hi = mid;
        else if (w >= sc->v[mid].end && !(w == sc->v[mid].start)) lo = mid + 1;
        else {
            if (!sc->v[mid].marked) {
                sc->v[mid].marked = true;
                sc->todo[sc->ntodo++] = mid;
            }
            return;
        }
    }
}

/* Not instrumented under ASan: the scan reads globals and stack frames word
 * by word, their red zones included, as any conservative scan does. */
HK_NO_ASAN static void scan_range(scan_t *sc, uintptr_t lo, uintptr_t hi) {
    lo = (lo + sizeof(void *) - 1) & ~(uintptr_t)(sizeof(void *) - 1);
    for (uintptr_t a = lo; a + sizeof(void *) <= hi; a += sizeof(void *))
        mark_word(sc, *(const uintptr_t *)a);
}

static int scan_module(struct dl_phdr_info *info, size_t size, void *arg) {
    (void)size;
    /* Not heapkit's own globals: they hold headers, never user pointers,
     * and the chunk map alone is 64 MiB of bss. */
    scan_t *sc = arg;
    if (info->dlpi_addr == sc->own_base) return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_W)) {
            uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
            scan_range(arg, lo, lo + ph->p_memsz);
        }
    }
    return 0;
}

/* The dynamic loader's segments, [lo, hi): the module named ld-*. Found
 * once; asking dladdr of every live block's first frame (a search of the
 * module's symbols each) was most of the exit check's time. */
typedef struct {
    uintptr_t lo, hi;
} span_t;

static int find_loader(struct dl_phdr_info *info, size_t size, void *arg) {
    (void)size;
    const char *name = info->dlpi_name ? info->dlpi_name : "";
    const char *slash = strrchr(name, '/');
    if (strncmp(slash ? slash + 1 : name, "ld-", 3) != 0) return 0;
    span_t *sp = arg;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD) continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
        if (sp->lo == 0 || lo < sp->lo) sp->lo = lo;
        if (hi > sp->hi) sp->hi = hi;
    }
    return 1;
}

/* True when the block was allocated by the dynamic loader (its first
 * frame is in ld.so). */
static bool from_loader(const dbg_block_t *b, const span_t *loader) {
    void *pc[HK_STACK_MAX];
    if (_hk_stack_get(b->alloc_stack, pc) == 0) return false;
    return (uintptr_t)pc[0] >= loader->lo && (uintptr_t)pc[0] < loader->hi;
}

/* Marks every live block reachable from the roots; returns the array of
 * live blocks (sorted, `marked` set), or NULL when out of memory. The
 * thread's stack is scanned from stack_from up: the frames of the program,
 * not those of the exit check, whose locals point at every block. */
static void count_block(dbg_block_t *b, void *arg) {
    (void)b;
    ++*(size_t *)arg;
}

static void collect_block(dbg_block_t *b, void *arg) {
    scan_t *sc = arg;
    sc->v[sc->n++] = (live_t){(uintptr_t)user_of(b), (uintptr_t)user_of(b) + b->size, b, false};
}

static live_t *mark_reachable(size_t *count, uintptr_t stack_from) {
    size_t n = 0;
    each_live(count_block, &n);
    scan_t sc = {plain_alloc((n + 1) * sizeof(live_t), 0, false), 0,
                 plain_alloc((n + 1) * sizeof(size_t), 0, false), 0, 0, 0, 0};
    if (sc.v == NULL || sc.todo == NULL) {
        hk_free_fast(sc.v);
        hk_free_fast(sc.todo);
        return NULL;
    }
    each_live(collect_block, &sc); /* the same n: every other thread waits */
    qsort(sc.v, sc.n, sizeof *sc.v, by_start);
    /* Blocks do not overlap: sorted by start, they are sorted by end. */
    sc.lo = sc.n ? sc.v[0].start : 1;
    sc.hi = sc.n ? sc.v[sc.n - 1].end : 0;
    Dl_info self;
    sc.own_base = dladdr((void *)mark_reachable, &self) ? (uintptr_t)self.dli_fbase : 0;
    span_t loader = {0, 0};
    dl_iterate_phdr(find_loader, &loader);
    for (size_t i = 0; i < sc.n; i++)
        if (from_loader(sc.v[i].block, &loader)) {
            sc.v[i].marked = true;
            sc.todo[sc.ntodo++] = i;
        }
    dl_iterate_phdr(scan_module, &sc);
    scan_range(&sc, stack_from, _hk_stack_top());
    while (sc.ntodo) {
        live_t *l = &sc.v[sc.todo[--sc.ntodo]];
        scan_range(&sc, l->start, l->end);
    }
    hk_free_fast(sc.todo);
    *count = sc.n;
    return sc.v;
}

static void report_leaks(uintptr_t stack_from) {
    size_t blocks = 0, groups = 0, cap = 0, bytes = 0, reach_blocks = 0, reach_bytes = 0, n = 0;
    leak_group_t *g = NULL;
    live_t *live = mark_reachable(&n, stack_from);
    for (size_t k = 0; k < n; k++) {
        dbg_block_t *b = live[k].block;
        if (live[k].marked) {
            reach_blocks++;
            reach_bytes += b->size;
            continue;
        }
        blocks++;
        bytes += b->size;
        size_t i = 0;
        while (i < groups && g[i].stack != b->alloc_stack) i++;
        if (i == groups) {
            if (groups == cap) {
                cap = cap ? cap * 2 : 64;
                leak_group_t *ng = plain_alloc(cap * sizeof *g, 0, false);
                if (ng == NULL) break;
                if (g) memcpy(ng, g, groups * sizeof *g);
                hk_free_fast(g);
                g = ng;
            }
            g[groups++] = (leak_group_t){b->alloc_stack, 0, 0};
        }
        g[i].blocks++;
        g[i].bytes += b->size;
    }
    hk_free_fast(live);
    if (groups) qsort(g, groups, sizeof *g, by_bytes_desc);
    hk_out_t o;
    _hk_out_open(&o, false);
    if (_hk_options.report_json) {
        _hk_out_printf(&o, "{\"leaks\": {\"blocks\": %zu, \"bytes\": %zu, "
                           "\"reachable_blocks\": %zu, \"reachable_bytes\": %zu, \"stacks\": [",
                       blocks, bytes, reach_blocks, reach_bytes);
        for (size_t i = 0; i < groups; i++) {
            _hk_out_printf(&o, "%s{\"blocks\": %zu, \"bytes\": %zu, \"frames\": ", i ? ", " : "",
                           g[i].blocks, g[i].bytes);
            json_stack(&o, g[i].stack);
            _hk_out_printf(&o, "}");
        }
        _hk_out_printf(&o, "]}}\n");
    } else {
        if (blocks == 0)
            _hk_out_printf(&o, "heapkit: no leaks");
        else
            _hk_out_printf(&o, "heapkit: leaks: %zu bytes in %zu blocks lost, from %zu call stacks",
                           bytes, blocks, groups);
        _hk_out_printf(&o, " (%zu bytes in %zu blocks still reachable at exit, not listed)\n",
                       reach_bytes, reach_blocks);
        for (size_t i = 0; i < groups; i++) {
            _hk_out_printf(&o, "heapkit: %zu bytes in %zu block%s allocated at:\n", g[i].bytes,
                           g[i].blocks, g[i].blocks == 1 ? "" : "s");
            print_stack(&o, g[i].stack);
        }
    }
    _hk_out_close(&o);
    hk_free_fast(g);
}

/* Thread exit: the quarantine is emptied, and the stripe given up for the
 * next thread to claim; what the thread frees after this (other
 * destructors) goes through the shared stripe. */
static void thread_exit_debug(void *arg) {
    (void)arg;
    busy++;
    quarantine_empty();
    quarantine.closed = true;
    if (quarantine.ring) hk_free_fast(quarantine.ring);
    quarantine.ring = NULL;
    quarantine.cap = 0;
    stash_empty();
    busy--;
    unsigned si = stripe_plus_one - 1;
    stripe_plus_one = SHARED_STRIPE + 1;
    if (si != SHARED_STRIPE) __atomic_store_n(&stripes[si].claimed, 0, __ATOMIC_RELEASE);
}

static long membarrier(int cmd) { return syscall(SYS_membarrier, cmd, 0, 0); }

/* Stops every operation on the live tables, for good (see "Live blocks"):
 * operations in progress end, later ones wait for the world lock or their
 * stripe's lock, which the caller keeps. */
static void stop_operations(void) {
    __atomic_store_n(&stopping, 1, __ATOMIC_SEQ_CST);
    if (lock_free_ops) {
        /* After a fork the child may have to register again. */
        if (membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0 &&
            membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0)
            membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
        for (unsigned si = 0; si < STRIPES; si++)
            while (__atomic_load_n(&stripes[si].in_op, __ATOMIC_ACQUIRE)) sched_yield();
        _hk_lock(&world_lock);
    }
    for (unsigned si = 0; si < STRIPES; si++) _hk_lock(&stripes[si].lock);
}

static void resume_operations(void) {
    for (unsigned si = 0; si < STRIPES; si++) hk_unlock(&stripes[si].lock);
    if (lock_free_ops) hk_unlock(&world_lock);
}

/* A live block whose red zones were written (the exit check). */
static void find_damaged(dbg_block_t *b, void *arg) {
    dbg_block_t **bad = arg;
    if (*bad) return;
    size_t end = block_end(b);
    if (!canary_intact(b) || first_changed(user_of(b), b->size, end, REDZONE_FILL) < end) *bad = b;
}

static void __attribute__((noinline)) at_exit(void) {
    /* The program's frames start above ours (saved frame pointer and
     * return address); the registers it left are in them or in exit's. */
    uintptr_t program_stack = (uintptr_t)__builtin_frame_address(0) + 2 * sizeof(void *);
    busy++;
    stop_operations();
    /* Damage in blocks that were never freed. */
    dbg_block_t *bad = NULL;
    each_live(find_damaged, &bad);
    if (bad) check_redzones(bad, "exit");
    /* Blocks in this thread's quarantine: writes after free. */
    quarantine_empty();
    if (want_leaks) report_leaks(program_stack);
    resume_operations();
    busy--;
}

/* In a child forked without exec only the forking thread lives: the other
 * threads' stripes are free to claim, and no operation is in progress. */
static void debug_fork_child(void) {
    for (unsigned si = 0; si < STRIPES; si++) {
        __atomic_store_n(&stripes[si].in_op, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&stripes[si].lock.held, 0, __ATOMIC_RELAXED);
        if (si + 1 != stripe_plus_one) __atomic_store_n(&stripes[si].claimed, 0, __ATOMIC_RELAXED);
    }
    __atomic_store_n(&world_lock.held, 0, __ATOMIC_RELAXED);
}

/* HEAPKIT_DEBUG: unset or "all": everything; else a comma-separated list. */
static bool listed(const char *list, const char *word) {
    size_t n = strlen(word);
    for (const char *s = list; *s;) {
        size_t len = strcspn(s, ",");
        if ((len == n && strncmp(s, word, n) == 0) || (len == 3 && strncmp(s, "all", 3) == 0) ||
            (len == 1 && *s == '1'))
            return true;
        s += len;
        if (*s == ',') s++;
    }
    return false;
}

__attribute__((constructor(101))) static void debug_init(void) {
    _hk_init();
    const char *list = _hk_options.debug;
    if (list) {
        want_quarantine = listed(list, "quarantine");
        want_leaks = listed(list, "leaks");
        /* "all" leaves guard pages out (two kernel maps per block); only
         * "guard" by name asks for them. */
        want_guard_all = strstr(list, "guard") != NULL;
    }
    if (want_guard_all || _hk_options.guard_min > 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_fault;
        sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGSEGV, &sa, NULL);
    }
    /* The fast path from here on: small classes, guard pages aside. */
    size_t fast = HK_SMALL_MAX - HDR - REDZONE + 1;
    while (fast > 0 && hk_class_of(fast - 1 + HDR + REDZONE) >= _hk_class_count) fast--;
    if (want_guard_all) fast = 0;
    else if (_hk_options.guard_min > 0 && (size_t)_hk_options.guard_min < fast)
        fast = (size_t)_hk_options.guard_min;
    fast_alloc_below = fast;
    if (_hk_options.leaks) want_leaks = true;
    if (_hk_options.quarantine_mb == 0) want_quarantine = false;
    thread_key_made = pthread_key_create(&thread_key, thread_exit_debug) == 0;
    /* Before any thread but this one runs (a constructor): from here on the
     * live tables take no lock where membarrier(2) works. */
    lock_free_ops = membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
    busy++;
    pthread_atfork(NULL, NULL, debug_fork_child);
    busy--;
    atexit(at_exit);
}

#endif /* HK_DEBUG_MODE */
