/* cache/cache.c: object caches (hk_cache_*), built on the public heap API.
 *
 * Owns: caches of fixed-size objects in the style of Bonwick's slab
 * allocator with magazines (USENIX 1994 and 2001): slabs, the per-cache
 * depot of magazines, the per-thread magazines, and the thread-exit flush.
 * Calls: the public API only (hk_aligned_alloc, hk_malloc, hk_free,
 * hk_is_heap_memory): a cache is a client of the heaps, like a pool.
 *
 * Three layers, fastest first:
 *   1. Per-thread magazines. Each thread using a cache has two magazines
 *      (arrays of free objects), `loaded` and `previous`. Alloc pops from
 *      loaded, free pushes onto it; when loaded is empty (full) and
 *      previous is full (empty) they swap. No lock, no atomic
 *      read-modify-write: a thread's magazines are its own.
 *   2. The depot: full and empty magazines shared by the threads, under
 *      the cache lock. A thread whose two magazines are both empty (full)
 *      trades one with the depot, so it takes the lock once per magazine
 *      of objects, not once per object.
 *   3. Slabs: aligned blocks of slab_size bytes from the heaps, a header
 *      with a bitmap of the objects free in the slab, then the objects.
 *      Also under the cache lock. An object finds its slab by masking its
 *      address (slabs are aligned to their size).
 * Objects never hold a free-list link (the bitmap and the magazines keep
 * track of them), so a constructed object keeps its state while free: the
 * constructor runs once per object when its slab is filled, the destructor
 * when the slab is given back.
 *
 * Any thread may free any object: it goes into that thread's magazine, and
 * from there to the depot and the slabs; objects do not belong to threads.
 *
 * Finding a thread's magazines: each cache has a small slot number, reused
 * after destroy, and a 64-bit id, never reused. Each thread has an array of
 * (id, tcache) indexed by slot; the fast path checks the id. A slot whose id
 * is stale belongs to a destroyed cache, whose tcache destroy has already
 * emptied and detached (tcache.cache == NULL), so the thread frees it.
 *
 * Locks: registry_lock (global) orders cache creation and destruction,
 * tcache attach and the thread-exit flush; a cache's own lock guards its
 * depot and slabs. Order: registry_lock, then a cache lock. Constructors
 * and destructors run with no lock held, so they may use the cache.
 *
 * Under AddressSanitizer (src/internal/asan.h) a free object is poisoned
 * (its stride), from its free until it is handed out again, and so is the
 * part of a slab past its last object; poisoning keeps the bytes, so the
 * constructed state survives, and the objects are unpoisoned before a
 * destructor runs on them. The freeing thread poisons the object before it
 * reaches a magazine other threads can take (through the cache lock).
 * Slab headers are always addressable: the checks of a freed pointer treat
 * a poisoned would-be header as "no slab there".
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
 * no-access (vg.h). Set by hk_cache_new, before any object exists. */
HK_VG_FLAG(on_valgrind);

#define SLAB_MIN     ((size_t)64 * 1024)
#define SLAB_MAX     ((size_t)1024 * 1024)  /* buddy blocks up to the chunk's half */
#define SLAB_OBJECTS 16                     /* a slab holds at least this many, when it can */
#define MAG_BYTES    ((size_t)64 * 1024)    /* objects a magazine holds, in bytes at most */
#define MAG_MAX      64
#define DEPOT_FULL_MAX 16                   /* full magazines kept in the depot */
#define CHECKED_SLABS 64                    /* slabs a thread remembers as checked */
#define SLAB_MAGIC   0x686b636163686553ull  /* "hkcacheS" */
#define NAME_MAX_LEN 47

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* ---- Structures ---------------------------------------------------------- */

typedef struct slab_s {
    uint64_t magic;          /* SLAB_MAGIC while the slab lives */
    uint64_t tag;            /* cache->tag ^ (uintptr_t)slab: this cache's slab */
    hk_cache_t *cache;
    struct slab_s *next, *prev; /* on the cache's partial, full or empty list */
    uint32_t nfree;          /* bits set in free_bits */
    uint32_t list;           /* which list: SLAB_PARTIAL, SLAB_FULL, SLAB_EMPTY */
    uint64_t free_bits[];    /* bit i set: object i is in the slab, free */
} slab_t;

enum { SLAB_PARTIAL, SLAB_FULL, SLAB_EMPTY, SLAB_LISTS };

/* A magazine in the depot: a full one holds mag_cap objects. */
typedef struct mag_s {
    struct mag_s *next;      /* on a depot list */
    uint32_t n;              /* objects in obj[0..n) */
    void *obj[];             /* cache->mag_cap entries */
} mag_t;

/* One thread's magazines for one cache: two arrays of mag_cap objects
 * inside the struct (no pointer to chase on the fast path); trading with
 * the depot copies objects between an array and a depot magazine.
 * Counts are atomics only so that hk_cache_stats may read them from
 * another thread; the owner uses plain loads and stores on them. */
typedef struct tcache_s {
    void **loaded;           /* store or store + mag_cap */
    _Atomic(uint32_t) nloaded, nprevious;
    void **previous;         /* the other array */
    /* Slabs a free found to be this cache's (direct-mapped by address;
     * UINTPTR_MAX: none), valid while the cache's epoch is checked_epoch:
     * later frees into them skip the lookup. */
    uintptr_t checked[CHECKED_SLABS];
    uint64_t checked_epoch;
    /* The cache, or NULL once it is destroyed (then only the owner thread
     * touches the struct, to free it). Written under registry_lock. */
    hk_cache_t *cache;
    struct tcache_s *next, *prev; /* on cache->threads, under registry_lock */
    void *store[];           /* 2 * mag_cap entries */
} tcache_t;

struct hk_cache_s {
    /* Fixed at creation, read without a lock; the fast paths' fields first,
     * in one cache line (the struct is 64-byte aligned). */
    uint64_t id;             /* never reused */
    uint32_t slot;           /* index into the threads' tcache arrays */
    uint32_t mag_cap;        /* objects per magazine */
    uintptr_t slab_mask;     /* ~(slab_size - 1) */
    /* Bumped (under the lock) whenever a slab is given back, which makes
     * every thread's remembered slab (tcache.checked) stale. */
    _Atomic(uint64_t) epoch;
    uint32_t first;          /* offset of object 0 in its slab */
    uint32_t per_slab;       /* objects per slab */
    uint64_t div_inverse;    /* odd * div_inverse == 1 (mod 2^64) */
    uint64_t div_limit;      /* UINT64_MAX / stride */
    uint16_t div_shift;      /* stride = odd << div_shift */
    uint16_t slab_shift;     /* log2(slab_size) */
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

/* ---- The registry: slots, ids, thread exit ------------------------------- */

typedef struct {
    uint64_t id;
    tcache_t *tc;
} tslot_t;

/* The calling thread's tcaches, by cache slot. `exited` is set once the
 * exit flush ran: later calls (from other libraries' TLS destructors) are
 * served from the slabs directly, under the cache lock. */
static __thread struct {
    tslot_t *slots;
    uint32_t cap;
    bool exited;
} tls __attribute__((tls_model("initial-exec")));

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t next_id = 1;
static uint8_t *slot_used;      /* slot_used[i]: a live cache has slot i */
static uint32_t slot_count;
static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

static void thread_exit(void *arg);
static void make_exit_key(void) { pthread_key_create(&exit_key, thread_exit); }

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

static slab_t *slab_of(const hk_cache_t *c, const void *obj) {
    return (slab_t *)((uintptr_t)obj & c->slab_mask);
}
static char *slab_object(const hk_cache_t *c, slab_t *s, size_t i) {
    return (char *)s + c->first + i * c->stride;
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
    slab_t *s = hk_aligned_alloc(c->slab_size, c->slab_size);
    if (s == NULL) return NULL;
    s->magic = SLAB_MAGIC;
    s->tag = c->tag ^ (uintptr_t)s;
    s->cache = c;
    s->nfree = c->per_slab;
    size_t words = (c->per_slab + 63) / 64;
    memset(s->free_bits, 0xff, words * 8);
    if (c->per_slab % 64) s->free_bits[words - 1] = (1ull << (c->per_slab % 64)) - 1;
    if (c->ctor) {
        for (size_t i = 0; i < c->per_slab; i++) {
            if (c->ctor(slab_object(c, s, i)) == 0) continue;
            if (c->dtor)
                while (i-- > 0) c->dtor(slab_object(c, s, i));
            s->magic = 0;
            hk_free(s);
            errno = ENOMEM;
            return NULL;
        }
    }
    if (hk_vg_known(&on_valgrind) > 0) VALGRIND_MAKE_MEM_NOACCESS(slab_object(c, s, 0), c->per_slab * c->stride);
    hk_asan_poison(slab_object(c, s, 0), c->slab_size - c->first); /* ASan: all free */
    return s;
}

/* Gives a slab (off every list) back to the heap; no lock held. */
static void slab_release(hk_cache_t *c, slab_t *s) {
    if (hk_vg_known(&on_valgrind) > 0) VALGRIND_MAKE_MEM_DEFINED(slab_object(c, s, 0), c->per_slab * c->stride);
    hk_asan_unpoison(slab_object(c, s, 0), c->slab_size - c->first); /* for the destructor */
    if (c->dtor)
        for (size_t i = 0; i < c->per_slab; i++) c->dtor(slab_object(c, s, i));
    s->magic = 0;
    s->tag = 0;
    hk_free(s);
}

static void epoch_bump(hk_cache_t *c) {
    atomic_store_explicit(&c->epoch, atomic_load_explicit(&c->epoch, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

/* Takes up to `max` free objects from the slabs, partial ones first. */
static uint32_t slabs_take(hk_cache_t *c, void **out, uint32_t max) {
    uint32_t got = 0;
    while (got < max) {
        slab_t *s = c->slabs[SLAB_PARTIAL] ? c->slabs[SLAB_PARTIAL] : c->slabs[SLAB_EMPTY];
        if (s == NULL) break;
        size_t words = (c->per_slab + 63) / 64;
        for (size_t w = 0; w < words && got < max; w++) {
            while (s->free_bits[w] && got < max) {
                unsigned b = (unsigned)__builtin_ctzll(s->free_bits[w]);
                s->free_bits[w] &= s->free_bits[w] - 1;
                s->nfree--;
                out[got++] = slab_object(c, s, w * 64 + b);
            }
        }
        slab_relist(c, s);
    }
    return got;
}

/* Puts objects back into their slabs. Empty slabs beyond one spare are
 * unlinked onto *release, for the caller to release without the lock. A
 * second free of an object already in its slab is reported. */
static void slabs_put(hk_cache_t *c, void *const *objs, uint32_t n, slab_t **release) {
    for (uint32_t k = 0; k < n; k++) {
        slab_t *s = slab_of(c, objs[k]);
        size_t i = (size_t)((char *)objs[k] - (char *)s - c->first) / c->stride;
        uint64_t bit = 1ull << (i % 64);
        if (s->free_bits[i / 64] & bit)
            report_and_abort("heapkit: hk_cache_free(): double free %p (cache \"%s\")", objs[k],
                             c->name);
        s->free_bits[i / 64] |= bit;
        s->nfree++;
        slab_relist(c, s);
        if (s->list == SLAB_EMPTY && c->nempty > 1) {
            slab_unlink(c, s);
            c->nslabs--;
            epoch_bump(c);
            s->next = *release;
            *release = s;
        }
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

/* Plain load and store of a count only its owner thread writes. */
static inline uint32_t count_get(_Atomic(uint32_t) *n) {
    return atomic_load_explicit(n, memory_order_relaxed);
}
static inline void count_set(_Atomic(uint32_t) *n, uint32_t v) {
    atomic_store_explicit(n, v, memory_order_relaxed);
}

/* Empties a thread's two arrays into the slabs (cache lock held). */
static void tcache_flush(hk_cache_t *c, tcache_t *tc, slab_t **release) {
    slabs_put(c, tc->loaded, count_get(&tc->nloaded), release);
    slabs_put(c, tc->previous, count_get(&tc->nprevious), release);
    count_set(&tc->nloaded, 0);
    count_set(&tc->nprevious, 0);
}

/* ---- Validation of a freed pointer --------------------------------------- */

/* The slab of another cache that obj lies in, tried at every slab size,
 * or NULL. Reads heapkit memory only: obj is heapkit memory, and a slab
 * base (at most 1 MiB below it) lies in the same chunk or huge block. */
static const slab_t *foreign_slab_of(const void *obj) {
    for (size_t size = SLAB_MIN; size <= SLAB_MAX; size *= 2) {
        const slab_t *s = (const slab_t *)((uintptr_t)obj & ~(uintptr_t)(size - 1));
        if (hk_asan_is_poisoned(s, sizeof *s)) continue; /* ASan: free memory, no header */
        if (s->magic != SLAB_MAGIC || !hk_is_heap_memory(s->cache)) continue;
        const hk_cache_t *other = s->cache;
        if (hk_asan_is_poisoned(other, sizeof *other)) continue;
        if (s->tag == (other->tag ^ (uintptr_t)s) && other->slab_size == size) return s;
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

/* Reports and aborts unless obj lies in a slab of cache c (its slab header
 * is read only once obj is known to be heapkit memory: the header lies in
 * the same chunk). */
static void check_slab(const hk_cache_t *c, const void *obj) {
    if (unlikely(!hk_is_heap_memory(obj))) report_bad_object(c, obj, "not heap memory");
    const slab_t *s = slab_of(c, obj);
    /* (ASan: a slab header is always addressable; a poisoned one is none.) */
    if (unlikely(hk_asan_is_poisoned(s, sizeof *s) || s->tag != (c->tag ^ (uintptr_t)s)))
        report_bad_object(c, obj, "not an object of the cache");
}

/* True when obj, in slab s of c, is the start of an object: its offset is
 * a multiple of the stride below per_slab * stride. With stride = odd << k,
 * off * inverse(odd) rotated right by k is off / stride when stride divides
 * off, and above UINT64_MAX / stride otherwise (Granlund and Montgomery's
 * exact division test). */
static inline bool offset_ok(const hk_cache_t *c, const void *obj, uintptr_t s) {
    uint64_t off = (uint64_t)((uintptr_t)obj - s - c->first);
    uint64_t q = off * c->div_inverse;
    q = c->div_shift ? (q >> c->div_shift) | (q << (64 - c->div_shift)) : q;
    return q <= c->div_limit && q < c->per_slab;
}

/* ---- Thread caches ------------------------------------------------------- */

/* The calling thread's tcache for c, or NULL (slow path: tcache_attach). */
static inline tcache_t *tcache_find(const hk_cache_t *c) {
    if (likely(c->slot < tls.cap)) {
        tslot_t *ts = &tls.slots[c->slot];
        if (likely(ts->id == c->id)) return ts->tc;
    }
    return NULL;
}

static void swap_arrays(tcache_t *tc) {
    void **t = tc->loaded;
    tc->loaded = tc->previous;
    tc->previous = t;
    uint32_t n = count_get(&tc->nloaded);
    count_set(&tc->nloaded, count_get(&tc->nprevious));
    count_set(&tc->nprevious, n);
}

/* Creates the calling thread's tcache for c. NULL when out of memory or
 * when the thread is past its exit flush. */
static tcache_t *tcache_attach(hk_cache_t *c) {
    if (tls.exited) return NULL;
    if (c->slot >= tls.cap) {
        uint32_t cap = tls.cap ? tls.cap : 8;
        while (cap <= c->slot) cap *= 2;
        tslot_t *slots = hk_calloc(cap, sizeof *slots);
        if (slots == NULL) return NULL;
        /* Only this thread reads its slots: no lock. */
        if (tls.cap) memcpy(slots, tls.slots, tls.cap * sizeof *slots);
        hk_free(tls.slots);
        tls.slots = slots;
        tls.cap = cap;
        pthread_setspecific(exit_key, &tls);
    }
    tcache_t *tc = hk_calloc(1, sizeof *tc + 2 * c->mag_cap * sizeof(void *));
    if (tc == NULL) return NULL;
    tc->loaded = tc->store;
    tc->previous = tc->store + c->mag_cap;
    for (int i = 0; i < CHECKED_SLABS; i++)
        tc->checked[i] = UINTPTR_MAX; /* no slab: slab addresses end in zero bits */
    tc->cache = c;
    pthread_mutex_lock(&registry_lock);
    tslot_t *ts = &tls.slots[c->slot];
    /* A stale entry: its cache was destroyed, which emptied and detached
     * the tcache. */
    if (ts->tc) hk_free(ts->tc);
    ts->id = c->id;
    ts->tc = tc;
    tc->next = c->threads;
    if (tc->next) tc->next->prev = tc;
    c->threads = tc;
    pthread_mutex_unlock(&registry_lock);
    return tc;
}

/* Thread exit: every live tcache's objects go back to their cache. */
static void thread_exit(void *arg) {
    (void)arg;
    pthread_mutex_lock(&registry_lock);
    for (uint32_t i = 0; i < tls.cap; i++) {
        tcache_t *tc = tls.slots[i].tc;
        if (tc == NULL) continue;
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
    tslot_t *slots = tls.slots;
    tls.slots = NULL;
    tls.cap = 0;
    tls.exited = true;
    pthread_mutex_unlock(&registry_lock);
    hk_free(slots);
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

/* Alloc and free for a thread without magazines (past its exit, or out of
 * memory for them): straight from and to the slabs. */
static void *alloc_direct(hk_cache_t *c) {
    for (;;) {
        void *obj = NULL;
        pthread_mutex_lock(&c->lock);
        slabs_take(c, &obj, 1);
        pthread_mutex_unlock(&c->lock);
        if (obj) return obj;
        if (!add_slab(c)) return NULL;
    }
}

static void free_direct(hk_cache_t *c, void *obj) {
    slab_t *release = NULL;
    pthread_mutex_lock(&c->lock);
    slabs_put(c, &obj, 1, &release);
    pthread_mutex_unlock(&c->lock);
    release_all(c, release);
}

/* The loaded array is empty. */
static __attribute__((noinline)) void *alloc_refill(hk_cache_t *c, tcache_t *tc) {
    if (tc == NULL) {
        tc = tcache_attach(c);
        if (tc == NULL) return alloc_direct(c);
    }
    if (count_get(&tc->nprevious)) {
        swap_arrays(tc);
    } else {
        for (;;) {
            uint32_t n;
            pthread_mutex_lock(&c->lock);
            mag_t *full = c->depot_full;
            if (full) {
                /* Trade: the depot's full magazine becomes the loaded
                 * array, and goes back to the depot empty. */
                c->depot_full = full->next;
                c->depot_nfull--;
                n = full->n;
                memcpy(tc->loaded, full->obj, n * sizeof(void *));
                full->n = 0;
                full->next = c->depot_empty;
                c->depot_empty = full;
            } else {
                /* Half a magazine from the slabs: the next frees find room. */
                n = slabs_take(c, tc->loaded, (c->mag_cap + 1) / 2);
            }
            pthread_mutex_unlock(&c->lock);
            count_set(&tc->nloaded, n);
            if (n) break;
            if (!add_slab(c)) return NULL;
        }
    }
    uint32_t n = count_get(&tc->nloaded) - 1;
    count_set(&tc->nloaded, n);
    return tc->loaded[n];
}

/* The loaded array is full. */
static __attribute__((noinline)) void free_spill(hk_cache_t *c, tcache_t *tc, void *obj) {
    if (tc == NULL) {
        tc = tcache_attach(c);
        if (tc == NULL) {
            free_direct(c, obj);
            return;
        }
    } else if (count_get(&tc->nprevious) == 0) {
        swap_arrays(tc);
    } else {
        /* Both full: the previous array's objects go to the depot in a
         * magazine (or, past the depot's bound or out of memory for a
         * magazine, back to the slabs); then the arrays swap. */
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
        uint32_t n = count_get(&tc->nprevious);
        if (m) {
            memcpy(m->obj, tc->previous, n * sizeof(void *));
            m->n = n;
            m->next = c->depot_full;
            c->depot_full = m;
            c->depot_nfull++;
            count_set(&tc->nprevious, 0);
        } else {
            slabs_put(c, tc->previous, n, &release);
            count_set(&tc->nprevious, 0);
        }
        pthread_mutex_unlock(&c->lock);
        release_all(c, release);
        swap_arrays(tc);
    }
    uint32_t n = count_get(&tc->nloaded);
    tc->loaded[n] = obj;
    count_set(&tc->nloaded, n + 1);
}

/* ---- Public API ---------------------------------------------------------- */

static __attribute__((noinline)) void *hk_cache_alloc_slow(hk_cache_t *c, tcache_t *tc);

/* An object handed out: under ASan its stride becomes addressable. */
static inline void *handed_out(const hk_cache_t *c, void *obj) {
    if (obj) hk_asan_unpoison(obj, c->stride);
    return obj;
}

void *hk_cache_alloc(hk_cache_t *c) {
    if (unlikely(hk_vg_known(&on_valgrind) > 0)) return handed_out(c, hk_cache_alloc_slow(c, tcache_find(c)));
    tcache_t *tc = tcache_find(c);
    if (likely(tc != NULL)) {
        uint32_t n = count_get(&tc->nloaded);
        if (likely(n != 0)) {
            count_set(&tc->nloaded, n - 1);
            return handed_out(c, tc->loaded[n - 1]);
        }
    }
    return handed_out(c, alloc_refill(c, tc));
}

/* Under valgrind: the object becomes a chunk of the cache's memory pool. */
static void *hk_cache_alloc_slow(hk_cache_t *c, tcache_t *tc) {
    void *obj;
    uint32_t n = tc ? count_get(&tc->nloaded) : 0;
    if (n) {
        count_set(&tc->nloaded, n - 1);
        obj = tc->loaded[n - 1];
    } else {
        obj = alloc_refill(c, tc);
    }
    if (obj) {
        VALGRIND_MEMPOOL_ALLOC(c, obj, c->stride);
        VALGRIND_MAKE_MEM_DEFINED(obj, c->stride);
    }
    return obj;
}

static inline size_t checked_index(const hk_cache_t *c, uintptr_t slab) {
    return (slab >> c->slab_shift) & (CHECKED_SLABS - 1);
}

/* Every free the fast path does not finish: NULL, a thread without
 * magazines, a slab this thread has not checked since the last slab
 * release (checked in full, then remembered), a bad offset (reported), a
 * full loaded array. */
static __attribute__((noinline)) void free_slow(hk_cache_t *c, tcache_t *tc, void *obj) {
    if (obj == NULL) return;
    check_slab(c, obj);
    uintptr_t slab = (uintptr_t)obj & c->slab_mask;
    if (!offset_ok(c, obj, slab)) report_bad_object(c, obj, "inside an object, not the start");
    if (hk_vg_known(&on_valgrind) > 0) VALGRIND_MEMPOOL_FREE(c, obj);
    hk_asan_poison(obj, c->stride); /* ASan: free until handed out again */
    if (tc) {
        uint64_t epoch = atomic_load_explicit(&c->epoch, memory_order_relaxed);
        if (tc->checked_epoch != epoch) { /* a slab was given back: forget them all */
            for (int i = 0; i < CHECKED_SLABS; i++) tc->checked[i] = UINTPTR_MAX;
            tc->checked_epoch = epoch;
        }
        tc->checked[checked_index(c, slab)] = slab;
        uint32_t n = count_get(&tc->nloaded);
        if (n < c->mag_cap) {
            tc->loaded[n] = obj;
            count_set(&tc->nloaded, n + 1);
            return;
        }
    }
    free_spill(c, tc, obj);
}

void hk_cache_free(hk_cache_t *c, void *obj) {
    tcache_t *tc = tcache_find(c);
    uintptr_t slab = (uintptr_t)obj & c->slab_mask;
    /* NULL fails here too: no entry is ever 0. */
    if (unlikely(tc == NULL || tc->checked[checked_index(c, slab)] != slab || hk_vg_known(&on_valgrind) > 0 ||
                 tc->checked_epoch != atomic_load_explicit(&c->epoch, memory_order_relaxed)))
        return free_slow(c, tc, obj);
    uint32_t n = count_get(&tc->nloaded);
    if (unlikely(!offset_ok(c, obj, slab) || n >= c->mag_cap)) return free_slow(c, tc, obj);
    hk_asan_poison(obj, c->stride); /* ASan: free until handed out again */
    tc->loaded[n] = obj;
    count_set(&tc->nloaded, n + 1);
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
    /* The smallest slab holding SLAB_OBJECTS objects (bitmap included), from
     * 64 KiB to 1 MiB. */
    for (c->slab_size = SLAB_MIN;; c->slab_size *= 2) {
        size_t n = c->slab_size / c->stride;
        c->first = (sizeof(slab_t) + (n + 63) / 64 * 8 + align - 1) & ~(align - 1);
        c->per_slab = (uint32_t)((c->slab_size - c->first) / c->stride);
        if (c->per_slab >= SLAB_OBJECTS || c->slab_size == SLAB_MAX) break;
    }
    c->slab_mask = ~(uintptr_t)(c->slab_size - 1);
    c->slab_shift = (uint16_t)__builtin_ctzll(c->slab_size);
    c->mag_cap = (uint32_t)(MAG_BYTES / c->stride);
    if (c->mag_cap > MAG_MAX) c->mag_cap = MAG_MAX;
    if (c->mag_cap < 2) c->mag_cap = 2;
    c->div_shift = (uint16_t)__builtin_ctzll(c->stride);
    uint64_t odd = c->stride >> c->div_shift, inv = odd;
    for (int i = 0; i < 5; i++) inv *= 2 - odd * inv; /* Newton: 3, 6, ... 96 bits */
    c->div_inverse = inv;
    c->div_limit = UINT64_MAX / c->stride;
    c->ctor = ctor;
    c->dtor = dtor;
    snprintf(c->name, sizeof c->name, "%s", name ? name : "(unnamed)");
    pthread_mutex_init(&c->lock, NULL);

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

/* Moves the calling thread's magazines and the depot into the slabs, and
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
    while (c->slabs[SLAB_EMPTY]) {
        slab_t *s = c->slabs[SLAB_EMPTY];
        slab_unlink(c, s);
        c->nslabs--;
        epoch_bump(c);
        s->next = *release;
        *release = s;
    }
}

void hk_cache_shrink(hk_cache_t *c) {
    slab_t *release = NULL;
    pthread_mutex_lock(&c->lock);
    drain_all(c, tcache_find(c), &release);
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
    /* Every thread's magazines go back to the slabs; the tcaches are
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
            if (hk_vg_known(&on_valgrind) > 0)
                VALGRIND_MAKE_MEM_DEFINED(slab_object(c, s, 0), c->per_slab * c->stride);
            hk_asan_unpoison(slab_object(c, s, 0), c->slab_size - c->first); /* for the destructor */
            if (c->dtor)
                for (size_t i = 0; i < c->per_slab; i++)
                    if (s->free_bits[i / 64] & (1ull << (i % 64))) c->dtor(slab_object(c, s, i));
            s->magic = 0;
            s->tag = 0;
            hk_free(s);
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
    for (tcache_t *tc = c->threads; tc; tc = tc->next)
        out->cached += count_get(&tc->nloaded) + count_get(&tc->nprevious);
    size_t outside = out->objects - out->free_in_slabs;
    out->live = outside >= out->cached ? outside - out->cached : 0;
    pthread_mutex_unlock(&c->lock);
    pthread_mutex_unlock(&registry_lock);
}

const char *hk_cache_name(const hk_cache_t *c) { return c->name; }
