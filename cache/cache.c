/* cache/cache.c: object caches (hk_cache_*), built on the public heap API.
 *
 * Owns: caches of fixed-size objects in the style of Bonwick's slab
 * allocator with magazines (USENIX 1994 and 2001): slabs, the per-cache
 * depot of magazines, the per-thread object stacks, and the thread-exit
 * flush.
 * Calls: the public API only (hk_aligned_alloc, hk_malloc, hk_free,
 * hk_is_heap_memory): a cache is a client of the heaps, like a pool.
 *
 * Three layers, fastest first:
 *   1. Per-thread stacks. Each thread using a cache has a stack of free
 *      objects, room for two magazines (2 * mag_cap), inside its tcache
 *      struct. Alloc pops, free pushes: the object freed last is the next
 *      one handed out (it is still in the CPU's cache). No lock, no atomic
 *      read-modify-write: a thread's stack is its own.
 *   2. The depot: full and empty magazines shared by the threads, under
 *      the cache lock. A thread whose stack runs empty takes a full
 *      magazine; one whose stack is full gives away its oldest magazine's
 *      worth. Magazines are large (up to 256 objects) so that a thread's
 *      own churn rarely reaches the depot: objects stay on the thread (and
 *      in its core's cache) that used them last.
 *   3. Slabs: aligned blocks of slab_size bytes from the heaps: the objects
 *      from offset 0 (so objects of 64 bytes and multiples are each in
 *      whole cache lines), then a bitmap of the objects free in the slab,
 *      then a header in the slab's last bytes. Also under the cache lock.
 *      An object finds its slab by masking its address (slabs are aligned
 *      to their size).
 * Objects never hold a free-list link (the bitmap, the stacks and the
 * magazines keep track of them), so a constructed object keeps its state
 * while free: the constructor runs once per object when its slab is filled,
 * the destructor when the slab is given back.
 *
 * Any thread may free any object: it goes onto that thread's stack, and
 * from there to the depot and the slabs; objects do not belong to threads.
 *
 * Every free is checked before the object can be handed out again: the
 * pointer must lie in a slab of this cache (slab header tag, read once
 * hk_is_heap_memory says the address is heapkit's) and at the start of an
 * object (an exact-division test). A thread remembers the slabs it checked
 * in a small table (tcache.checked), valid for one value of the cache's
 * key; the key changes whenever the cache gives a slab back, so a slab
 * whose memory may be reused is never trusted from memory. A double free
 * is caught when the object reaches the slab bitmap twice.
 *
 * Finding a thread's tcache: each cache has a small slot number, reused
 * after destroy, and a 64-bit id, never reused. Each thread has an array of
 * tcache pointers indexed by slot (a power-of-two size, so the index is
 * masked, not bounds-checked; unused entries point to an empty dummy). The
 * fast paths compare the tcache's key with the cache's: keys are drawn from
 * one process-wide counter, so a match means at once "this thread's tcache
 * of this cache" and "its remembered slabs are valid". Anything else goes
 * to the slow path, which looks at ids (a slot of a destroyed cache) and
 * refreshes the key.
 *
 * Locks: registry_lock (global) orders cache creation and destruction,
 * tcache attach and the thread-exit flush; a cache's own lock guards its
 * depot and slabs. Order: registry_lock, then a cache lock. Constructors
 * and destructors run with no lock held, so they may use the cache.
 *
 * Under AddressSanitizer (src/internal/asan.h) a free object is poisoned
 * (its stride), from its free until it is handed out again, and so are the
 * objects of a new slab; poisoning keeps the bytes, so the constructed
 * state survives, and the objects are unpoisoned before a destructor runs
 * on them. The freeing thread poisons the object before it reaches a
 * magazine other threads can take (through the cache lock). Slab headers
 * (at the end of the slab) are never poisoned: the checks of a freed
 * pointer treat a poisoned would-be header as "no slab there".
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heapkit.h"
#include "../src/internal/asan.h"
#include "../src/internal/vg.h"

/* Under valgrind each cache is a memcheck memory pool: allocated objects
 * are its chunks (defined: they keep their constructed state), free ones
 * no-access (vg.h). Set by hk_cache_new, before any object exists. A
 * thread under valgrind gets no tcache: every alloc and free goes to the
 * slabs, where the client requests are made, and the fast paths need no
 * test of their own. */
HK_VG_FLAG(on_valgrind);

#define SLAB_MIN     ((size_t)64 * 1024)
#define SLAB_MAX     ((size_t)1024 * 1024)  /* buddy blocks up to the chunk's half */
#define SLAB_OBJECTS 16                     /* a slab holds at least this many, when it can */
#define MAG_BYTES    ((size_t)64 * 1024)    /* objects a magazine holds, in bytes at most */
#define MAG_MAX      256
#define DEPOT_FULL_MAX 16                   /* full magazines kept in the depot */
#define CHECKED_SETS 128                    /* slabs a thread remembers, per cache: 2 per set */
#define SLAB_MAGIC   0x686b636163686553ull  /* "hkcacheS" */
#define NAME_MAX_LEN 47

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* ---- Structures ---------------------------------------------------------- */

/* The last sizeof(slab_t) bytes of a slab, at the same place for every
 * slab size (so a report can find another cache's slab); the bitmap of
 * free objects is just below it (c->words words), the objects from the
 * slab's start. */
typedef struct slab_s {
    struct slab_s *next, *prev; /* on the cache's partial, full or empty list */
    uint32_t nfree;          /* bits set in the bitmap */
    uint32_t list;           /* which list: SLAB_PARTIAL, SLAB_FULL, SLAB_EMPTY */
    hk_cache_t *cache;
    uint64_t tag;            /* cache->tag ^ the slab's base address: this cache's slab */
    uint64_t magic;          /* SLAB_MAGIC while the slab lives */
} slab_t;

enum { SLAB_PARTIAL, SLAB_FULL, SLAB_EMPTY, SLAB_LISTS };

/* A magazine in the depot: a full one holds mag_cap objects. */
typedef struct mag_s {
    struct mag_s *next;      /* on a depot list */
    uint32_t n;              /* objects in obj[0..n) */
    void *obj[];             /* cache->mag_cap entries */
} mag_t;

/* One thread's state for one cache. The fast paths read key and n (first
 * cache line), one entry of checked and the top of the stack, all at fixed
 * offsets from the struct: no pointer to chase. */
typedef struct tcache_s {
    /* The cache's key when checked[] was last made valid; 0 in the dummy
     * (no key is 0). Owner only. */
    uint64_t key;
    /* Objects in stack[0..n). Atomic only so that hk_cache_stats may read
     * it from another thread; the owner uses plain loads and stores. */
    _Atomic(uint32_t) n;
    uint32_t unused;
    uint64_t id;             /* the cache's id: 0 in the dummy */
    /* The cache, or NULL once it is destroyed (then only the owner thread
     * touches the struct, to free it). Written under registry_lock. */
    hk_cache_t *cache;
    struct tcache_s *next, *prev; /* on cache->threads, under registry_lock */
    /* Slabs of this cache already checked: checked[way][set], set =
     * checked_set(base), two ways; a slab's base, or UINTPTR_MAX (slab
     * bases end in zero bits). */
    uintptr_t checked[2][CHECKED_SETS];
    void *stack[];           /* cache->stack_cap entries */
} tcache_t;

struct hk_cache_s {
    /* The fast paths' fields first, in one cache line (the struct is
     * 64-byte aligned). All but key are fixed at creation. */
    /* Changed (under the lock, to a new value of next_key) whenever a slab
     * is given back: every thread's remembered slabs become stale. */
    _Atomic(uint64_t) key;
    uint32_t slot;           /* index into the threads' tcache arrays */
    uint32_t stack_cap;      /* 2 * mag_cap: a thread's stack */
    uintptr_t slab_mask;     /* ~(slab_size - 1) */
    uint64_t div_inverse;    /* odd * div_inverse == 1 (mod 2^64), stride = odd << div_shift */
    uint64_t per_slab;       /* objects per slab */
    uint8_t div_shift;
    uint8_t unused[7];
    uint64_t id;             /* never reused */
    uint32_t mag_cap;        /* objects per magazine */
    uint32_t words;          /* 64-bit words of a slab's bitmap */

    uint64_t tag;            /* marks this cache's slabs (slab_t.tag) */
    size_t stride;           /* object size rounded to the alignment */
    size_t slab_size;        /* a power of two; slabs are aligned to it */
    int (*ctor)(void *);
    void (*dtor)(void *);
    char name[NAME_MAX_LEN + 1];

    pthread_mutex_t lock;    /* guards everything below */
    slab_t *slabs[SLAB_LISTS];
    size_t nslabs, nempty;
    mag_t *depot_full, *depot_empty;
    size_t depot_nfull;
    tcache_t *threads;       /* under registry_lock */
};

/* ---- The registry: slots, ids, keys, thread exit ------------------------- */

/* What an unused slot points to: key 0 and id 0 match no cache, n is 0. */
static tcache_t dummy_tc;
static tcache_t *dummy_slots[1] = {&dummy_tc};

/* The calling thread's tcaches, by cache slot: slots[slot & mask], an
 * array of mask + 1 entries (dummy_slots until the thread attaches one).
 * `exited` is set once the exit flush ran: later calls (from other
 * libraries' TLS destructors) are served from the slabs directly, under
 * the cache lock. */
static __thread struct {
    tcache_t **slots;
    uint32_t mask;
    bool exited;
} tls __attribute__((tls_model("initial-exec"))) = {dummy_slots, 0, false};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t next_id = 1;
static _Atomic(uint64_t) next_key = 1; /* 0 is the dummy's */
static uint8_t *slot_used;      /* slot_used[i]: a live cache has slot i */
static uint32_t slot_count;
static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

static void thread_exit(void *arg);
static void make_exit_key(void) { pthread_key_create(&exit_key, thread_exit); }

static inline uint64_t key_get(const hk_cache_t *c) {
    return atomic_load_explicit(&((hk_cache_t *)c)->key, memory_order_relaxed);
}
/* A key no cache had before (cache lock held, or the cache not yet shared). */
static void key_renew(hk_cache_t *c) {
    atomic_store_explicit(&c->key, atomic_fetch_add_explicit(&next_key, 1, memory_order_relaxed),
                          memory_order_relaxed);
}

/* Plain load and store of a count only its owner thread writes. */
static inline uint32_t count_get(_Atomic(uint32_t) *n) {
    return atomic_load_explicit(n, memory_order_relaxed);
}
static inline void count_set(_Atomic(uint32_t) *n, uint32_t v) {
    atomic_store_explicit(n, v, memory_order_relaxed);
}

/* ---- Reports ------------------------------------------------------------- */

static void report_and_abort(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void report_and_abort(const char *fmt, ...) {
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n > sizeof buf - 2) n = sizeof buf - 2;
    buf[n++] = '\n';
    ssize_t w = write(2, buf, (size_t)n);
    (void)w;
    abort();
}

/* ---- Slabs (cache lock held unless said otherwise) ----------------------- */

static inline uintptr_t slab_base(const hk_cache_t *c, const void *p) { return (uintptr_t)p & c->slab_mask; }
static inline slab_t *slab_at(const hk_cache_t *c, uintptr_t base) {
    return (slab_t *)(base + c->slab_size - sizeof(slab_t));
}
static inline slab_t *slab_of(const hk_cache_t *c, const void *obj) { return slab_at(c, slab_base(c, obj)); }
static inline uint64_t *slab_bits(const hk_cache_t *c, slab_t *s) { return (uint64_t *)s - c->words; }
static inline char *slab_object(const hk_cache_t *c, uintptr_t base, size_t i) {
    return (char *)base + i * c->stride;
}

/* The index of the object at byte offset off of its slab, or a number of
 * per_slab or more when off is not the start of an object. With stride =
 * odd << k, off * inverse(odd) rotated right by k is off / stride when
 * stride divides off, and above UINT64_MAX / stride (> per_slab) otherwise
 * (Granlund and Montgomery's exact division test): one multiply, one
 * rotate, one compare against per_slab. */
static inline uint64_t object_index(const hk_cache_t *c, uint64_t off) {
    uint64_t q = off * c->div_inverse;
    unsigned k = c->div_shift;
    return (q >> k) | (q << (-k & 63));
}

static void slab_link(hk_cache_t *c, slab_t *s, uint32_t list) {
    s->list = list;
    s->prev = NULL;
    s->next = c->slabs[list];
    if (s->next) s->next->prev = s;
    c->slabs[list] = s;
    if (list == SLAB_EMPTY) c->nempty++;
}
static void slab_unlink(hk_cache_t *c, slab_t *s) {
    if (s->prev) s->prev->next = s->next;
    else c->slabs[s->list] = s->next;
    if (s->next) s->next->prev = s->prev;
    if (s->list == SLAB_EMPTY) c->nempty--;
}
static uint32_t slab_list_for(const hk_cache_t *c, const slab_t *s) {
    return s->nfree == 0 ? SLAB_FULL : s->nfree == c->per_slab ? SLAB_EMPTY : SLAB_PARTIAL;
}
static void slab_relist(hk_cache_t *c, slab_t *s) {
    uint32_t list = slab_list_for(c, s);
    if (list == s->list) return;
    slab_unlink(c, s);
    slab_link(c, s, list);
}

/* A new slab with every object free and constructed; no lock held (the
 * constructor may use the cache). NULL when out of memory or when the
 * constructor failed (after destructing what it built). */
static slab_t *slab_new(hk_cache_t *c) {
    void *mem = hk_aligned_alloc(c->slab_size, c->slab_size);
    if (mem == NULL) return NULL;
    uintptr_t base = (uintptr_t)mem;
    slab_t *s = slab_at(c, base);
    s->magic = SLAB_MAGIC;
    s->tag = c->tag ^ base;
    s->cache = c;
    s->nfree = (uint32_t)c->per_slab;
    uint64_t *bits = slab_bits(c, s);
    memset(bits, 0xff, c->words * 8);
    if (c->per_slab % 64) bits[c->words - 1] = (1ull << (c->per_slab % 64)) - 1;
    if (c->ctor) {
        for (size_t i = 0; i < c->per_slab; i++) {
            if (c->ctor(slab_object(c, base, i)) == 0) continue;
            if (c->dtor)
                while (i-- > 0) c->dtor(slab_object(c, base, i));
            s->magic = 0;
            hk_free(mem);
            errno = ENOMEM;
            return NULL;
        }
    }
    if (hk_vg_known(&on_valgrind) > 0) VALGRIND_MAKE_MEM_NOACCESS(mem, c->per_slab * c->stride);
    hk_asan_poison(mem, c->per_slab * c->stride); /* ASan: all free */
    return s;
}

/* Gives a slab (off every list) back to the heap; no lock held. */
static void slab_release(hk_cache_t *c, slab_t *s) {
    char *mem = (char *)slab_base(c, s);
    if (hk_vg_known(&on_valgrind) > 0) VALGRIND_MAKE_MEM_DEFINED(mem, c->per_slab * c->stride);
    hk_asan_unpoison(mem, c->per_slab * c->stride); /* for the destructor, and the heap */
    if (c->dtor)
        for (size_t i = 0; i < c->per_slab; i++) c->dtor(mem + i * c->stride);
    s->magic = 0;
    s->tag = 0;
    hk_free(mem);
}

/* Takes up to `max` free objects from the slabs, partial ones first, in
 * address order. */
static uint32_t slabs_take(hk_cache_t *c, void **out, uint32_t max) {
    uint32_t got = 0;
    while (got < max) {
        slab_t *s = c->slabs[SLAB_PARTIAL] ? c->slabs[SLAB_PARTIAL] : c->slabs[SLAB_EMPTY];
        if (s == NULL) break;
        uint64_t *bits = slab_bits(c, s);
        uintptr_t base = slab_base(c, s);
        for (size_t w = 0; w < c->words && got < max; w++) {
            while (bits[w] && got < max) {
                unsigned b = (unsigned)__builtin_ctzll(bits[w]);
                bits[w] &= bits[w] - 1;
                s->nfree--;
                out[got++] = slab_object(c, base, w * 64 + b);
            }
        }
        slab_relist(c, s);
    }
    return got;
}

/* Unlinks an empty slab for release: the key changes first, so no thread
 * trusts its remembered copy of the slab once its memory may be reused. */
static void slab_retire(hk_cache_t *c, slab_t *s, slab_t **release) {
    slab_unlink(c, s);
    c->nslabs--;
    key_renew(c);
    s->next = *release;
    *release = s;
}

/* Puts objects (checked when they were freed) back into their slabs. Empty
 * slabs beyond one spare are unlinked onto *release, for the caller to
 * release without the lock. A second free of an object already in its
 * slab is reported. */
static void slabs_put(hk_cache_t *c, void *const *objs, uint32_t n, slab_t **release) {
    for (uint32_t k = 0; k < n; k++) {
        uintptr_t base = slab_base(c, objs[k]);
        slab_t *s = slab_at(c, base);
        uint64_t *bits = slab_bits(c, s);
        uint64_t i = object_index(c, (uintptr_t)objs[k] - base);
        uint64_t bit = 1ull << (i % 64);
        if (bits[i / 64] & bit)
            report_and_abort("heapkit: hk_cache_free(): double free %p (cache \"%s\")", objs[k],
                             c->name);
        bits[i / 64] |= bit;
        s->nfree++;
        slab_relist(c, s);
        if (s->list == SLAB_EMPTY && c->nempty > 1) slab_retire(c, s, release);
    }
}

static void release_all(hk_cache_t *c, slab_t *list) {
    while (list) {
        slab_t *next = list->next;
        slab_release(c, list);
        list = next;
    }
}

/* ---- Magazines ----------------------------------------------------------- */

static mag_t *mag_new(const hk_cache_t *c) {
    mag_t *m = hk_malloc(sizeof(mag_t) + c->mag_cap * sizeof(void *));
    if (m) {
        m->next = NULL;
        m->n = 0;
    }
    return m;
}

/* Empties a thread's stack into the slabs (cache lock held). */
static void tcache_flush(hk_cache_t *c, tcache_t *tc, slab_t **release) {
    slabs_put(c, tc->stack, count_get(&tc->n), release);
    count_set(&tc->n, 0);
}

/* ---- Validation of a freed pointer --------------------------------------- */

/* The slab of another cache that obj lies in, tried at every slab size,
 * or NULL. obj is heapkit memory; a candidate header is read only once it
 * is heapkit memory too (past the end of a huge block it may not be). */
static const slab_t *foreign_slab_of(const void *obj) {
    for (size_t size = SLAB_MIN; size <= SLAB_MAX; size *= 2) {
        uintptr_t base = (uintptr_t)obj & ~(uintptr_t)(size - 1);
        const slab_t *s = (const slab_t *)(base + size - sizeof(slab_t));
        /* (ASan: a poisoned would-be header is none.) */
        if (!hk_is_heap_memory(s) || hk_asan_is_poisoned(s, sizeof *s) || s->magic != SLAB_MAGIC ||
            !hk_is_heap_memory(s->cache))
            continue;
        const hk_cache_t *other = s->cache;
        if (hk_asan_is_poisoned(other, sizeof *other)) continue;
        if (s->tag == (other->tag ^ base) && other->slab_size == size) return s;
    }
    return NULL;
}

static void __attribute__((noinline, noreturn))
report_bad_object(const hk_cache_t *c, const void *obj, const char *why) {
    if (!hk_is_heap_memory(obj))
        report_and_abort("heapkit: hk_cache_free(): invalid pointer %p (cache \"%s\"): not heap memory",
                         obj, c->name);
    const slab_t *s = foreign_slab_of(obj);
    if (s && s->cache != c)
        report_and_abort("heapkit: hk_cache_free(): wrong cache %p: an object of cache \"%s\" "
                         "freed into cache \"%s\"",
                         obj, s->cache->name, c->name);
    report_and_abort("heapkit: hk_cache_free(): invalid pointer %p (cache \"%s\"): %s", obj, c->name,
                     why);
}

/* Reports and aborts unless obj is the start of an object in a slab of
 * cache c; returns the slab's base. The header is read only once obj and
 * the header are known to be heapkit memory. */
static uintptr_t check_object(const hk_cache_t *c, const void *obj) {
    uintptr_t base = slab_base(c, obj);
    const slab_t *s = slab_at(c, base);
    if (unlikely(!hk_is_heap_memory(obj))) report_bad_object(c, obj, "not heap memory");
    if (unlikely(!hk_is_heap_memory(s) || hk_asan_is_poisoned(s, sizeof *s) ||
                 s->magic != SLAB_MAGIC || s->tag != (c->tag ^ base)))
        report_bad_object(c, obj, "not an object of the cache");
    if (unlikely(object_index(c, (uintptr_t)obj - base) >= c->per_slab))
        report_bad_object(c, obj, "inside an object, not the start");
    return base;
}

/* ---- Thread caches ------------------------------------------------------- */

/* The tcache the fast paths try: this thread's for c when its key matches
 * c's, else something whose key does not (another slot's, or the dummy). */
static inline tcache_t *tcache_of(const hk_cache_t *c) { return tls.slots[c->slot & tls.mask]; }

/* The set of a slab in tcache.checked (two entries, one per way), chosen
 * by the top bits of base times
 * 2^64/phi (Fibonacci hashing: slabs carved next to each other get sets
 * far apart; one multiply, one shift, the constant pre-shifted by the 16
 * zero bits of a slab base). Low address bits alone would alias: heapkit
 * reserves chunks 16 MiB apart and every heap carves its slabs from the
 * same offsets. Two ways, because one way still collided at random on
 * 3% of the local churn's frees (each a slow-path free: checked again,
 * then remembered), two ways on none. */
#define CHECKED_SETS_SHIFT (64 - 7) /* 2^7 = CHECKED_SETS */
static inline size_t checked_set(uintptr_t base) {
    return (size_t)((base * 0x9e3779b97f4aull) >> CHECKED_SETS_SHIFT);
}
/* Remembers a checked slab: the newest in the first way, the one it
 * replaces in the second (the fast path looks at the first way first). */
static inline void checked_add(tcache_t *tc, uintptr_t base) {
    size_t i = checked_set(base);
    if (tc->checked[0][i] == base) return;
    tc->checked[1][i] = tc->checked[0][i];
    tc->checked[0][i] = base;
}

/* The calling thread's tcache for c, whatever its key, or NULL. */
static tcache_t *tcache_mine(const hk_cache_t *c) {
    if (c->slot > tls.mask) return NULL;
    tcache_t *tc = tls.slots[c->slot];
    return tc->id == c->id ? tc : NULL; /* ids are never reused; the dummy's is 0 */
}

/* Makes tc's remembered slabs valid for c's current key: a slab was given
 * back since, so forget them all. Read before any slab is checked, so a
 * slab given back after that changes the key again. */
static void tcache_sync(const hk_cache_t *c, tcache_t *tc) {
    uint64_t key = key_get(c);
    if (tc->key == key) return;
    for (int i = 0; i < CHECKED_SETS; i++) tc->checked[0][i] = tc->checked[1][i] = UINTPTR_MAX;
    tc->key = key;
}

/* Creates the calling thread's tcache for c. NULL when out of memory,
 * under valgrind, or when the thread is past its exit flush. */
static tcache_t *tcache_attach(hk_cache_t *c) {
    if (tls.exited || hk_vg_known(&on_valgrind) > 0) return NULL;
    if (tls.slots == dummy_slots || c->slot > tls.mask) { /* (dummy_slots is shared: never written) */
        uint32_t cap = 8;
        while (cap <= c->slot) cap *= 2;
        tcache_t **slots = hk_malloc(cap * sizeof *slots);
        if (slots == NULL) return NULL;
        uint32_t old = tls.slots == dummy_slots ? 0 : tls.mask + 1;
        /* Only this thread reads its slots: no lock. */
        for (uint32_t i = 0; i < cap; i++) slots[i] = i < old ? tls.slots[i] : &dummy_tc;
        if (old) hk_free(tls.slots);
        tls.slots = slots;
        tls.mask = cap - 1;
        pthread_setspecific(exit_key, &tls);
    }
    tcache_t *tc = hk_calloc(1, sizeof *tc + c->stack_cap * sizeof(void *));
    if (tc == NULL) return NULL;
    tc->id = c->id;
    tc->cache = c;
    tc->key = 0; /* matches no cache: tcache_sync fills checked[] */
    tcache_sync(c, tc);
    pthread_mutex_lock(&registry_lock);
    /* The entry is the dummy or a tcache of a destroyed cache that had the
     * same slot: destroy emptied and detached it. */
    if (tls.slots[c->slot] != &dummy_tc) hk_free(tls.slots[c->slot]);
    tls.slots[c->slot] = tc;
    tc->next = c->threads;
    if (tc->next) tc->next->prev = tc;
    c->threads = tc;
    pthread_mutex_unlock(&registry_lock);
    return tc;
}

/* The calling thread's tcache for c with valid remembered slabs (attached
 * if need be), or NULL: the thread has none (see tcache_attach). */
static tcache_t *tcache_get(hk_cache_t *c) {
    tcache_t *tc = tcache_mine(c);
    if (tc == NULL) return tcache_attach(c);
    tcache_sync(c, tc);
    return tc;
}

/* Thread exit: every live tcache's objects go back to their cache. */
static void thread_exit(void *arg) {
    (void)arg;
    pthread_mutex_lock(&registry_lock);
    tcache_t **slots = tls.slots;
    uint32_t n = slots == dummy_slots ? 0 : tls.mask + 1;
    for (uint32_t i = 0; i < n; i++) {
        tcache_t *tc = slots[i];
        if (tc == &dummy_tc) continue;
        hk_cache_t *c = tc->cache;
        if (c) {
            slab_t *release = NULL;
            pthread_mutex_lock(&c->lock);
            tcache_flush(c, tc, &release);
            if (tc->prev) tc->prev->next = tc->next;
            else c->threads = tc->next;
            if (tc->next) tc->next->prev = tc->prev;
            pthread_mutex_unlock(&c->lock);
            /* Destructors run with no cache lock; the registry lock only
             * keeps the cache alive meanwhile. */
            release_all(c, release);
        }
        hk_free(tc);
    }
    tls.slots = dummy_slots;
    tls.mask = 0;
    tls.exited = true;
    pthread_mutex_unlock(&registry_lock);
    if (n) hk_free(slots);
}

/* ---- Slow paths ---------------------------------------------------------- */

static bool add_slab(hk_cache_t *c) {
    slab_t *s = slab_new(c); /* no lock: the constructor may use the cache */
    if (s == NULL) return false;
    pthread_mutex_lock(&c->lock);
    slab_link(c, s, SLAB_EMPTY);
    c->nslabs++;
    pthread_mutex_unlock(&c->lock);
    return true;
}

/* Alloc and free for a thread without a tcache (under valgrind, past its
 * exit, or out of memory for one): straight from and to the slabs. */
static void *alloc_direct(hk_cache_t *c) {
    for (;;) {
        void *obj = NULL;
        pthread_mutex_lock(&c->lock);
        slabs_take(c, &obj, 1);
        pthread_mutex_unlock(&c->lock);
        if (obj) {
            if (hk_vg_known(&on_valgrind) > 0) {
                VALGRIND_MEMPOOL_ALLOC(c, obj, c->stride);
                VALGRIND_MAKE_MEM_DEFINED(obj, c->stride);
            }
            return obj;
        }
        if (!add_slab(c)) return NULL;
    }
}

static void free_direct(hk_cache_t *c, void *obj) {
    slab_t *release = NULL;
    if (hk_vg_known(&on_valgrind) > 0) VALGRIND_MEMPOOL_FREE(c, obj);
    pthread_mutex_lock(&c->lock);
    slabs_put(c, &obj, 1, &release);
    pthread_mutex_unlock(&c->lock);
    release_all(c, release);
}

/* The stack is empty: a full magazine from the depot, or a magazine's
 * worth from the slabs (the stack then has room for as many frees). False
 * when out of memory (or the constructor failed). */
static bool refill(hk_cache_t *c, tcache_t *tc) {
    for (;;) {
        uint32_t n;
        pthread_mutex_lock(&c->lock);
        mag_t *full = c->depot_full;
        if (full) {
            c->depot_full = full->next;
            c->depot_nfull--;
            n = full->n;
            memcpy(tc->stack, full->obj, n * sizeof(void *));
            full->n = 0;
            full->next = c->depot_empty;
            c->depot_empty = full;
        } else {
            n = slabs_take(c, tc->stack, c->mag_cap);
            /* Lowest address on top: handed out in address order. */
            for (uint32_t i = 0, j = n; i + 1 < j; i++, j--) {
                void *t = tc->stack[i];
                tc->stack[i] = tc->stack[j - 1];
                tc->stack[j - 1] = t;
            }
        }
        pthread_mutex_unlock(&c->lock);
        count_set(&tc->n, n);
        if (n) return true;
        if (!add_slab(c)) return false;
    }
}

/* The stack is full: its oldest mag_cap objects (the bottom, the coldest)
 * go to the depot in a magazine, or past the depot's bound (or out of
 * memory for a magazine) back to the slabs. The stack is consistent
 * before any destructor runs (they may use the cache). */
static void spill(hk_cache_t *c, tcache_t *tc) {
    uint32_t k = c->mag_cap, n = count_get(&tc->n);
    slab_t *release = NULL;
    mag_t *m = NULL;
    pthread_mutex_lock(&c->lock);
    if (c->depot_nfull < DEPOT_FULL_MAX) {
        m = c->depot_empty;
        if (m) {
            c->depot_empty = m->next;
        } else {
            pthread_mutex_unlock(&c->lock);
            m = mag_new(c);
            pthread_mutex_lock(&c->lock);
        }
    }
    if (m) {
        memcpy(m->obj, tc->stack, k * sizeof(void *));
        m->n = k;
        m->next = c->depot_full;
        c->depot_full = m;
        c->depot_nfull++;
    } else {
        slabs_put(c, tc->stack, k, &release);
    }
    pthread_mutex_unlock(&c->lock);
    memmove(tc->stack, tc->stack + k, (n - k) * sizeof(void *));
    count_set(&tc->n, n - k);
    release_all(c, release);
}

/* Every alloc the fast path does not finish: a thread without a tcache,
 * a stale key, an empty stack. */
static __attribute__((noinline)) void *alloc_slow(hk_cache_t *c) {
    tcache_t *tc = tcache_get(c);
    if (tc == NULL) return alloc_direct(c);
    uint32_t n;
    while ((n = count_get(&tc->n)) == 0)
        if (!refill(c, tc)) return NULL;
    count_set(&tc->n, n - 1);
    return tc->stack[n - 1];
}

/* Every free the fast path does not finish: NULL, a thread without a
 * tcache, a stale key, a slab this thread does not remember (checked in
 * full, then remembered), a bad pointer (reported), a full stack. */
static __attribute__((noinline)) void free_slow(hk_cache_t *c, void *obj) {
    if (obj == NULL) return;
    tcache_t *tc = tcache_get(c); /* first: its key is read before the slab is checked */
    uintptr_t base = check_object(c, obj);
    hk_asan_poison(obj, c->stride); /* ASan: free until handed out again */
    if (tc == NULL) {
        free_direct(c, obj);
        return;
    }
    checked_add(tc, base);
    uint32_t n;
    while ((n = count_get(&tc->n)) >= c->stack_cap) spill(c, tc);
    tc->stack[n] = obj;
    count_set(&tc->n, n + 1);
}

/* ---- Public API ---------------------------------------------------------- */

/* The fast paths: a pop or a push on the thread's stack, after one lookup
 * (tcache_of) whose key check also covers the remembered slabs. */
void *hk_cache_alloc(hk_cache_t *c) {
    tcache_t *tc = tcache_of(c);
    uint32_t n = count_get(&tc->n);
    if (likely(tc->key == key_get(c) && n != 0)) {
        count_set(&tc->n, n - 1);
        void *obj = tc->stack[n - 1];
        hk_asan_unpoison(obj, c->stride); /* ASan: handed out */
        return obj;
    }
    void *obj = alloc_slow(c);
    if (obj) hk_asan_unpoison(obj, c->stride);
    return obj;
}

void hk_cache_free(hk_cache_t *c, void *obj) {
    tcache_t *tc = tcache_of(c);
    uintptr_t a = (uintptr_t)obj, base = a & c->slab_mask;
    uint32_t n = count_get(&tc->n);
    /* NULL fails the slab test: no entry is ever 0. */
    size_t set = checked_set(base);
    if (likely(tc->key == key_get(c) && (tc->checked[0][set] == base || tc->checked[1][set] == base) &&
               object_index(c, a - base) < c->per_slab && n < c->stack_cap)) {
        hk_asan_poison(obj, c->stride); /* ASan: free until handed out again */
        tc->stack[n] = obj;
        count_set(&tc->n, n + 1);
        return;
    }
    free_slow(c, obj);
}

static bool is_pow2(size_t x) { return x && (x & (x - 1)) == 0; }

hk_cache_t *hk_cache_new(const char *name, size_t size, size_t align, int (*ctor)(void *),
                         void (*dtor)(void *)) {
    if (align == 0) align = size < 16 ? 8 : 16;
    if (size == 0 || size > HK_CACHE_MAX_SIZE || !is_pow2(align) || align > 4096) {
        errno = EINVAL;
        return NULL;
    }
    pthread_once(&exit_key_once, make_exit_key);
    hk_vg_check(&on_valgrind);
    hk_cache_t *c = hk_aligned_alloc(64, sizeof *c);
    if (c == NULL) return NULL;
    memset(c, 0, sizeof *c);
    c->stride = (size + align - 1) & ~(align - 1);
    /* The smallest slab holding SLAB_OBJECTS objects (bitmap and header
     * included), from 64 KiB to 1 MiB. Objects start at the slab's base,
     * so they are aligned as the slab is. */
    size_t per_slab;
    for (c->slab_size = SLAB_MIN;; c->slab_size *= 2) {
        size_t room = c->slab_size - sizeof(slab_t);
        per_slab = room / c->stride;
        while (per_slab * c->stride + (per_slab + 63) / 64 * 8 > room) per_slab--;
        if (per_slab >= SLAB_OBJECTS || c->slab_size == SLAB_MAX) break;
    }
    c->per_slab = per_slab;
    c->words = (uint32_t)((per_slab + 63) / 64);
    c->slab_mask = ~(uintptr_t)(c->slab_size - 1);
    c->mag_cap = (uint32_t)(MAG_BYTES / c->stride);
    if (c->mag_cap > MAG_MAX) c->mag_cap = MAG_MAX;
    if (c->mag_cap < 2) c->mag_cap = 2;
    c->stack_cap = 2 * c->mag_cap;
    c->div_shift = (uint8_t)__builtin_ctzll(c->stride);
    uint64_t odd = c->stride >> c->div_shift, inv = odd;
    for (int i = 0; i < 5; i++) inv *= 2 - odd * inv; /* Newton: 3, 6, ... 96 bits */
    c->div_inverse = inv;
    c->ctor = ctor;
    c->dtor = dtor;
    snprintf(c->name, sizeof c->name, "%s", name ? name : "(unnamed)");
    pthread_mutex_init(&c->lock, NULL);
    key_renew(c);

    pthread_mutex_lock(&registry_lock);
    uint32_t slot = 0;
    while (slot < slot_count && slot_used[slot]) slot++;
    if (slot == slot_count) {
        uint32_t n = slot_count ? slot_count * 2 : 16;
        uint8_t *used = hk_calloc(n, 1);
        if (used == NULL) {
            pthread_mutex_unlock(&registry_lock);
            pthread_mutex_destroy(&c->lock);
            hk_free(c);
            return NULL;
        }
        if (slot_count) memcpy(used, slot_used, slot_count);
        hk_free(slot_used);
        slot_used = used;
        slot_count = n;
    }
    slot_used[slot] = 1;
    c->slot = slot;
    c->id = next_id++;
    pthread_mutex_unlock(&registry_lock);
    /* A tag that differs per cache and is unlikely in user data. */
    c->tag = (c->id * 0x9e3779b97f4a7c15ull) ^ (uintptr_t)c ^ SLAB_MAGIC;
    if (hk_vg_known(&on_valgrind) > 0) VALGRIND_CREATE_MEMPOOL(c, 0, 0);
    return c;
}

/* Moves the calling thread's stack and the depot into the slabs, and
 * unlinks every empty slab onto *release (cache lock held). */
static void drain_all(hk_cache_t *c, tcache_t *tc, slab_t **release) {
    if (tc) tcache_flush(c, tc, release);
    while (c->depot_full) {
        mag_t *m = c->depot_full;
        c->depot_full = m->next;
        slabs_put(c, m->obj, m->n, release);
        m->n = 0;
        m->next = c->depot_empty;
        c->depot_empty = m;
    }
    c->depot_nfull = 0;
    while (c->slabs[SLAB_EMPTY]) slab_retire(c, c->slabs[SLAB_EMPTY], release);
}

void hk_cache_shrink(hk_cache_t *c) {
    slab_t *release = NULL;
    pthread_mutex_lock(&c->lock);
    drain_all(c, tcache_mine(c), &release);
    mag_t *empties = c->depot_empty;
    c->depot_empty = NULL;
    pthread_mutex_unlock(&c->lock);
    while (empties) {
        mag_t *next = empties->next;
        hk_free(empties);
        empties = next;
    }
    release_all(c, release);
}

void hk_cache_destroy(hk_cache_t *c) {
    if (c == NULL) return;
    slab_t *release = NULL;
    pthread_mutex_lock(&registry_lock);
    pthread_mutex_lock(&c->lock);
    /* Every thread's stack goes back to the slabs; the tcaches are
     * detached, for their threads to free. */
    for (tcache_t *tc = c->threads; tc; tc = tc->next) {
        tcache_flush(c, tc, &release);
        tc->cache = NULL;
    }
    c->threads = NULL;
    if (hk_vg_known(&on_valgrind) > 0) VALGRIND_DESTROY_MEMPOOL(c);
    drain_all(c, NULL, &release);
    /* Slabs with live objects: the free ones are destructed, the live ones
     * go as they are. */
    for (int list = SLAB_PARTIAL; list <= SLAB_FULL; list++) {
        while (c->slabs[list]) {
            slab_t *s = c->slabs[list];
            slab_unlink(c, s);
            char *mem = (char *)slab_base(c, s);
            uint64_t *bits = slab_bits(c, s);
            if (hk_vg_known(&on_valgrind) > 0) VALGRIND_MAKE_MEM_DEFINED(mem, c->per_slab * c->stride);
            hk_asan_unpoison(mem, c->per_slab * c->stride); /* for the destructor */
            if (c->dtor)
                for (size_t i = 0; i < c->per_slab; i++)
                    if (bits[i / 64] & (1ull << (i % 64))) c->dtor(mem + i * c->stride);
            s->magic = 0;
            s->tag = 0;
            hk_free(mem);
        }
    }
    mag_t *empties = c->depot_empty;
    slot_used[c->slot] = 0;
    pthread_mutex_unlock(&c->lock);
    pthread_mutex_unlock(&registry_lock);
    release_all(c, release);
    while (empties) {
        mag_t *next = empties->next;
        hk_free(empties);
        empties = next;
    }
    pthread_mutex_destroy(&c->lock);
    hk_free(c);
}

void hk_cache_stats(hk_cache_t *c, hk_cache_stats_t *out) {
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&registry_lock);
    pthread_mutex_lock(&c->lock);
    out->object_size = c->stride;
    out->slab_size = c->slab_size;
    out->slabs = c->nslabs;
    out->objects = c->nslabs * c->per_slab;
    for (int list = 0; list < SLAB_LISTS; list++)
        for (slab_t *s = c->slabs[list]; s; s = s->next) out->free_in_slabs += s->nfree;
    for (mag_t *m = c->depot_full; m; m = m->next) out->cached += m->n;
    /* Other threads' counts, read as they are now (exact when they are
     * not using the cache). */
    for (tcache_t *tc = c->threads; tc; tc = tc->next) out->cached += count_get(&tc->n);
    size_t outside = out->objects - out->free_in_slabs;
    out->live = outside >= out->cached ? outside - out->cached : 0;
    pthread_mutex_unlock(&c->lock);
    pthread_mutex_unlock(&registry_lock);
}

const char *hk_cache_name(const hk_cache_t *c) { return c->name; }
