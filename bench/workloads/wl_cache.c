/* wl_cache.c: fixed-size object churn, the "cache" and "cache-xt"
 * comparisons of the benchmark's Beyond malloc section. It owns the churn
 * pattern and its checks; the runner (runner/beyond.c) compares the builds.
 * One source, built once per API (WL_CACHE_API):
 *   wl_cache         malloc/free (any allocator, through LD_PRELOAD)
 *   wl_cache_hk      hk_cache_alloc/hk_cache_free, one cache per object
 *                    size, shared by the threads (libheapkit)
 *   wl_cache_gslice  g_slice_alloc/g_slice_free1 (GLib; which allocator is
 *                    behind g_slice depends on the GLib version: the program
 *                    says which in an HKBENCH info line)
 *
 * Objects are of two sizes, 64 B and 200 B (two of the first for one of the
 * second). Each carries its id in its first 8 bytes and a tag of the id in
 * its last 8, checked when it is freed; the checksum sums the tags of the
 * objects freed, so it is the same for every API and allocator.
 *   --mode local   each thread keeps a working set of 16384 objects in a
 *                  slot table: it fills the table, replaces the object of a
 *                  random slot (free, then allocate) 10 million times over
 *                  the threads at scale 1, then frees the rest;
 *   --mode remote  threads in pairs (two at least): each allocates batches
 *                  of 32 objects and hands them to its partner through a
 *                  lock-free ring of 64 batches; the partner checks and frees
 *                  them, so every free is made by the other thread (4
 *                  million objects at scale 1).
 * The caches, the slot tables and the rings are set up before the clock
 * starts (and GLib's slice allocator is woken by one allocation), so the
 * time is the churn alone.
 */
#include "wl_common.h"

#include <sched.h>

#define WL_API_MALLOC 0
#define WL_API_HK     1
#define WL_API_GSLICE 2
#ifndef WL_CACHE_API
#define WL_CACHE_API WL_API_MALLOC
#endif

#if WL_CACHE_API == WL_API_HK
#include "heapkit.h"
#define CACHE_PROGRAM "wl_cache_hk"
#elif WL_CACHE_API == WL_API_GSLICE
#include <glib.h>
#define CACHE_PROGRAM "wl_cache_gslice"
#else
#define CACHE_PROGRAM "wl_cache"
#endif

enum { SLOTS = 16384, BATCH = 32, RING = 64 };
static const size_t object_size[2] = { 64, 200 };

/* ---- The API under test ------------------------------------------------------ */

#if WL_CACHE_API == WL_API_HK
static hk_cache_t *caches[2];
#endif

static void api_setup(void) {
#if WL_CACHE_API == WL_API_HK
    for (int t = 0; t < 2; t++) {
        char name[32];
        snprintf(name, sizeof name, "bench-%zu", object_size[t]);
        if (!(caches[t] = hk_cache_new(name, object_size[t], 0, NULL, NULL))) wl_fail("hk_cache_new failed");
        hk_cache_free(caches[t], hk_cache_alloc(caches[t]));
    }
#elif WL_CACHE_API == WL_API_GSLICE
    for (int t = 0; t < 2; t++) g_slice_free1(object_size[t], g_slice_alloc(object_size[t]));
    char info[200];
    const char *env = getenv("G_SLICE");
    int wrapper = glib_major_version > 2 || (glib_major_version == 2 && glib_minor_version >= 76);
    snprintf(info, sizeof info, "GLib %u.%u.%u: %s%s", glib_major_version, glib_minor_version, glib_micro_version,
             wrapper ? "g_slice_alloc is a wrapper of malloc (since GLib 2.76)"
                     : "g_slice has its own slab allocator with per-thread magazines (GLib before 2.76)",
             env && strstr(env, "always-malloc") ? "; but G_SLICE=always-malloc sends it to malloc" : "");
    wl_info(info);
#endif
}

static void api_teardown(void) {
#if WL_CACHE_API == WL_API_HK
    for (int t = 0; t < 2; t++) hk_cache_destroy(caches[t]);
#endif
}

static inline void *api_alloc(int type) {
#if WL_CACHE_API == WL_API_HK
    return hk_cache_alloc(caches[type]);
#elif WL_CACHE_API == WL_API_GSLICE
    return g_slice_alloc(object_size[type]);
#else
    return malloc(object_size[type]);
#endif
}

static inline void api_free(int type, void *p) {
#if WL_CACHE_API == WL_API_HK
    hk_cache_free(caches[type], p);
#elif WL_CACHE_API == WL_API_GSLICE
    g_slice_free1(object_size[type], p);
#else
    (void)type;
    free(p);
#endif
}

/* ---- Objects ------------------------------------------------------------------ */

/* Allocates an object of `type`, writes its id and tag. */
static inline void *object_new(int type, uint64_t id) {
    unsigned char *p = api_alloc(type);
    if (!p) wl_fail("allocation of a %zu-byte object failed", object_size[type]);
    uint64_t tag = wl_tagval(id);
    memcpy(p, &id, 8);
    memcpy(p + object_size[type] - 8, &tag, 8);
    return p;
}

/* Checks the object is the one expected, frees it, returns its share of the checksum. */
static inline uint64_t object_free(int type, void *obj, uint64_t id) {
    unsigned char *p = obj;
    uint64_t head, tag;
    memcpy(&head, p, 8);
    memcpy(&tag, p + object_size[type] - 8, 8);
    if (head != id || tag != wl_tagval(id))
        wl_fail("object %llu (%zu bytes) at %p corrupted", (unsigned long long)id, object_size[type], (void *)p);
    api_free(type, p);
    return tag ^ (uint64_t)type;
}

/* Two objects of 64 B for one of 200 B. */
static inline int draw_type(wl_rng_t *r) { return wl_below(r, 3) == 0; }

/* ---- Local churn ------------------------------------------------------------------ */

typedef struct {
    uintptr_t obj;       /* the object, its type in the low bit */
    uint64_t id;
} slot_t;

typedef struct {
    const wl_opts_t *o;
    int remote;
    uint64_t per_thread;             /* replacements (local), objects per thread (remote) */
    slot_t *slots[WL_MAX_SLOTS];     /* local: each thread's table */
    struct ring *rings;              /* remote: one outgoing ring per thread */
    uint64_t ops[WL_MAX_SLOTS];
    uint64_t check[WL_MAX_SLOTS];
} cache_work_t;

static void *local_worker(wl_thread_arg_t *ta) {
    cache_work_t *s = (cache_work_t *)ta->shared;
    int me = ta->index;
    slot_t *slot = s->slots[me];
    wl_rng_t r = wl_rng(s->o->seed, (uint64_t)me);
    uint64_t next_id = (uint64_t)me << 40, ops = 0, check = 0;
    int64_t live = 0;
    for (int i = 0; i < SLOTS; i++) {
        int type = draw_type(&r);
        slot[i].id = next_id++;
        slot[i].obj = (uintptr_t)object_new(type, slot[i].id) | (uintptr_t)type;
        live += (int64_t)object_size[type];
    }
    wl_live(me, live);
    int64_t filled = live;
    ops += SLOTS;
    for (uint64_t k = 0; k < s->per_thread; k++) {
        slot_t *x = &slot[wl_below(&r, SLOTS)];
        int old = (int)(x->obj & 1), type = draw_type(&r);
        check += object_free(old, (void *)(x->obj & ~(uintptr_t)1), x->id);
        x->id = next_id++;
        x->obj = (uintptr_t)object_new(type, x->id) | (uintptr_t)type;
        live += (int64_t)object_size[type] - (int64_t)object_size[old];
    }
    wl_live(me, live - filled); /* (the churn moves it a little either way) */
    ops += s->per_thread;
    for (int i = 0; i < SLOTS; i++) check += object_free((int)(slot[i].obj & 1), (void *)(slot[i].obj & ~(uintptr_t)1), slot[i].id);
    wl_live(me, -live);
    s->ops[me] = ops;
    s->check[me] = check;
    return NULL;
}

/* ---- Remote churn: pairs of threads and their rings ---------------------------------- */

typedef struct {
    uintptr_t obj[BATCH];            /* objects, type in the low bit */
    uint64_t first_id;               /* ids first_id .. first_id + BATCH - 1 */
} batch_t;

typedef struct ring {
    _Alignas(64) _Atomic uint64_t head;  /* the consumer's: batches taken */
    _Alignas(64) _Atomic uint64_t tail;  /* the producer's: batches put */
    _Alignas(64) batch_t batch[RING];
} ring_t;

static void *remote_worker(wl_thread_arg_t *ta) {
    cache_work_t *s = (cache_work_t *)ta->shared;
    int me = ta->index;
    ring_t *out = &s->rings[me], *in = &s->rings[me ^ 1];
    wl_rng_t r = wl_rng(s->o->seed, (uint64_t)me);
    uint64_t batches = s->per_thread / BATCH, made = 0, taken = 0, next_id = (uint64_t)me << 40, check = 0;
    /* Live bytes: each thread counts what it has in flight, its batches
     * the partner has not taken yet (owner-only counters, exact). */
    int64_t batch_bytes[RING];
    uint64_t acked = 0;
    while (made < batches || taken < batches) {
        int progress = 0;
        uint64_t tail = atomic_load_explicit(&out->tail, memory_order_relaxed);
        uint64_t out_head = atomic_load_explicit(&out->head, memory_order_acquire);
        for (; acked < out_head; acked++) wl_live(me, -batch_bytes[acked % RING]);
        if (made < batches && tail - out_head < RING) {
            batch_t *b = &out->batch[tail % RING];
            int64_t bytes = 0;
            b->first_id = next_id;
            for (int i = 0; i < BATCH; i++) {
                int type = draw_type(&r);
                b->obj[i] = (uintptr_t)object_new(type, next_id++) | (uintptr_t)type;
                bytes += (int64_t)object_size[type];
            }
            batch_bytes[tail % RING] = bytes;
            wl_live(me, bytes);
            atomic_store_explicit(&out->tail, tail + 1, memory_order_release);
            made++;
            progress = 1;
        }
        uint64_t head = atomic_load_explicit(&in->head, memory_order_relaxed);
        if (taken < batches && head < atomic_load_explicit(&in->tail, memory_order_acquire)) {
            batch_t *b = &in->batch[head % RING];
            for (int i = 0; i < BATCH; i++) {
                int type = (int)(b->obj[i] & 1);
                check += object_free(type, (void *)(b->obj[i] & ~(uintptr_t)1), b->first_id + (uint64_t)i);
            }
            atomic_store_explicit(&in->head, head + 1, memory_order_release);
            taken++;
            progress = 1;
        }
        if (!progress) sched_yield();
    }
    s->ops[me] = batches * BATCH;
    s->check[me] = check;
    return NULL;
}

int main(int argc, char **argv) {
    wl_opts_t o = wl_parse(argc, argv, CACHE_PROGRAM, "local|remote");
    static cache_work_t s;
    s.o = &o;
    s.remote = !strcmp(o.mode, "remote");
    api_setup();
    if (s.remote) {
        /* Pairs: an odd thread count leaves the last one out; one thread is a pair still. */
        int pairs = o.threads / 2 > 0 ? o.threads / 2 : 1;
        o.threads = 2 * pairs;
        s.per_thread = (wl_scaled(&o, 4e6, (uint64_t)o.threads * BATCH) / (uint64_t)o.threads + BATCH - 1) / BATCH * BATCH;
        if (posix_memalign((void **)&s.rings, 64, sizeof(ring_t) * (size_t)o.threads) != 0) wl_fail("no memory for the rings");
        memset(s.rings, 0, sizeof(ring_t) * (size_t)o.threads);
    } else {
        s.per_thread = wl_scaled(&o, 10e6, (uint64_t)o.threads) / (uint64_t)o.threads;
        for (int t = 0; t < o.threads; t++)
            if (!(s.slots[t] = calloc(SLOTS, sizeof(slot_t)))) wl_fail("no memory for the slot tables");
    }
    wl_own_frees = 1; /* each thread's counter is a live set of its own (see the workers) */
    wl_start();
    wl_run_threads(o.threads, s.remote ? remote_worker : local_worker, &s);
    wl_finish_threads(&o, s.ops, s.check);
    api_teardown();
    return 0;
}
