/* heap.c: heaps, the threads that own them, and frees between threads.
 *
 * Owns: library start-up, the thread-local default heap (created on first
 * use, retired at thread exit), explicit heaps, the allocation slow paths,
 * the remote-free queue of each heap, and the global lists of heaps.
 * Calls: slab.c, buddy.c, chunk.c, sizeclass.c.
 * Threads: a heap is touched only by its owner, except its `remote` queue
 * (any thread pushes, the owner takes) and its published statistics. The
 * global lists are under heaps_lock (slow paths only).
 *
 * Cross-thread frees: a thread that frees a block whose chunk it does not
 * own pushes the block onto the owner heap's lock-free stack; the owner
 * takes the whole stack with one exchange on its next slow path and frees
 * each block locally. No global lock, and the owner's fast paths never
 * synchronise.
 *
 * Thread exit: the heap's remote queue is drained, empty slabs and chunks go
 * back, and the heap (with its live blocks, which stay valid and freeable)
 * joins the retired list. The next new thread adopts a retired heap instead
 * of making one, so memory of ended threads is reused and creating a thread
 * heap costs one lock and a pointer swap. Allocations made during thread
 * teardown after our destructor ran (other destructors, atexit) come from
 * a shared "orphan" heap under a lock.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>

#include "internal/internal.h"
#include "internal/vg.h"

__thread hk_heap_t *_hk_tls_heap __attribute__((tls_model("initial-exec"))) = &_hk_heap_empty;
/* Set once this thread's heap has been retired: later allocations of the
 * thread go to the orphan heap. */
static __thread uint8_t tls_exited __attribute__((tls_model("initial-exec")));

size_t _hk_fast_size_limit = HK_DIRECT_MAX + 1;

hk_heap_t _hk_heap_empty = {
    .direct = {[0 ... HK_DIRECT_SLOTS - 1] = {.page = &_hk_page_empty}},
    .current = {[0 ... HK_CLASSES - 1] = &_hk_page_empty},
};

static hk_lock_t heaps_lock;
static hk_heap_t *all_heaps;     /* every heap in use, retired ones too */
static hk_heap_t *retired_heaps; /* default heaps of exited threads */
static hk_heap_t *free_structs;  /* recycled heap structs */
static pthread_key_t exit_key;

/* The heap that serves threads in teardown; owner_tid stays 0 so every free
 * into it is a remote free, drained under orphan_lock. */
static hk_lock_t orphan_lock;
static hk_heap_t *orphan_heap;

static void thread_exit(void *arg);
static void retire_empty_slabs(hk_heap_t *h, bool force);

/* ---- Start-up ------------------------------------------------------------------- */

static _Atomic(int) init_state; /* 0 not started, 1 running, 2 done */

static void fork_prepare(void) {
    _hk_lock(&orphan_lock);
    _hk_lock(&heaps_lock);
    _hk_chunk_fork_prepare();
}
static void fork_parent(void) {
    _hk_chunk_fork_parent();
    hk_unlock(&heaps_lock);
    hk_unlock(&orphan_lock);
}
static void set_owner(hk_heap_t *h, uintptr_t tid);

static void fork_child(void) {
    _hk_chunk_fork_child();
    atomic_store(&heaps_lock.held, 0);
    atomic_store(&orphan_lock.held, 0);
    /* Only the forking thread lives on. The heaps of the others lose their
     * owner: default heaps join the retired list (a new thread of the child
     * adopts one, hk_collect trims them), explicit heaps become released (a
     * thread of the child that has the pointer may adopt them). Otherwise
     * their memory could never be reused in the child, and a new thread
     * whose thread pointer happens to equal a vanished one would pass for
     * their owner. A vanished thread stopped between two instructions of a
     * fast path could leave one slab's list half-updated; glibc's arenas
     * have the same exposure for their thread caches. */
    uintptr_t me = hk_thread_id();
    for (hk_heap_t *h = all_heaps; h; h = h->gnext) {
        uintptr_t owner = h->owner_tid;
        if (owner == 0 || owner == me) continue;
        set_owner(h, 0);
        if (h->is_default) {
            h->next_retired = retired_heaps;
            retired_heaps = h;
        } else {
            atomic_store_explicit(&h->released, 1, memory_order_relaxed);
        }
    }
}

void _hk_init(void) {
    if (hk_likely(atomic_load_explicit(&init_state, memory_order_acquire) == 2)) return;
    int expected = 0;
    if (atomic_compare_exchange_strong(&init_state, &expected, 1)) {
        /* Nothing here may allocate: malloc would recurse into _hk_init. */
        _hk_os_init();
        _hk_options_init();
        _hk_sizeclass_init();
        if (RUNNING_ON_VALGRIND && hk_vg_tool_tracks_heap()) {
            _hk_fast_size_limit = 0;
            _hk_map_start = HK_MAP_START_SLOW;
        }
        pthread_key_create(&exit_key, thread_exit);
        atomic_store_explicit(&init_state, 2, memory_order_release);
        /* These may allocate (glibc keeps a growing list): now that the
         * library works, a nested malloc is fine. */
        pthread_atfork(fork_prepare, fork_parent, fork_child);
        _hk_report_init(); /* statistics at exit, the statistics signal */
        return;
    }
    while (atomic_load_explicit(&init_state, memory_order_acquire) != 2) {
    }
}

/* Start-up before main, even in a program that never allocates: options are
 * read (and unknown ones reported) and the exit printer is registered before
 * any atexit handler of the program. A malloc from an earlier constructor
 * has already done it; _hk_init() runs once. */
__attribute__((constructor)) static void init_at_load(void) { _hk_init(); }

/* ---- Heap structs ------------------------------------------------------------------ */

/* Heap structs come from the OS in batches and are recycled, never unmapped,
 * so a stale heap pointer read from a chunk header is always memory-safe. */
static hk_heap_t *struct_alloc(bool is_default) {
    static uint8_t *bump, *bump_end;
    hk_heap_t *h = NULL;
    _hk_lock(&heaps_lock);
    if (free_structs) {
        h = free_structs;
        free_structs = h->gnext;
    } else {
        size_t sz = (sizeof(hk_heap_t) + 63) & ~(size_t)63;
        if (bump == NULL || bump + sz > bump_end) {
            size_t batch = 64 * HK_PAGE_SIZE;
            bump = _hk_os_reserve(batch, 0, 0);
            bump_end = bump ? bump + batch : NULL;
        }
        if (bump) {
            h = (hk_heap_t *)bump;
            bump += sz;
        }
    }
    if (h) {
        memset(h, 0, sizeof *h);
        h->is_default = is_default; /* under the lock: other threads walk the list */
        for (unsigned i = 0; i < HK_CLASSES; i++) h->current[i] = &_hk_page_empty;
        for (unsigned g = 0; g < HK_DIRECT_SLOTS; g++) h->direct[g].page = &_hk_page_empty;
        h->last_purge = _hk_os_now_ms();
        h->listed = 1;
        h->gnext = all_heaps;
        if (all_heaps) all_heaps->gprev = h;
        all_heaps = h;
    }
    hk_unlock(&heaps_lock);
    return h;
}

/* Called with heaps_lock held. */
static void struct_free_locked(hk_heap_t *h) {
    _hk_heap_publish(h);
    _hk_stats_heap_gone(h);
    if (h->gprev) h->gprev->gnext = h->gnext;
    else all_heaps = h->gnext;
    if (h->gnext) h->gnext->gprev = h->gprev;
    h->listed = 0;
    h->gnext = free_structs;
    free_structs = h;
}

void _hk_heap_foreach(void (*fn)(hk_heap_t *, void *), void *arg) {
    _hk_lock(&heaps_lock);
    for (hk_heap_t *h = all_heaps; h; h = h->gnext) fn(h, arg);
    hk_unlock(&heaps_lock);
}

/* ---- Ownership --------------------------------------------------------------------- */

/* Gives the heap, its chunks and its current and queued slabs a new owner
 * (0: none). Walks the heap's block heads: handovers are rare. */
static void set_owner(hk_heap_t *h, uintptr_t tid) {
    h->owner_tid = tid;
    for (hk_chunk_t *c = h->chunks; c; c = c->h.next) {
        atomic_store_explicit(&c->h.owner_tid, tid, memory_order_release);
        for (size_t i = 0; i < HK_CHUNK_PAGES;) {
            hk_page_t *pg = &c->pages[i];
            if (pg->kind == HK_PAGE_FREE) {
                i += (size_t)1 << pg->order;
                continue;
            }
            if (pg->kind == HK_PAGE_SLAB && (pg->queued || h->current[pg->size_class] == pg))
                atomic_store_explicit(&pg->owner, tid, memory_order_release);
            /* At least one page: after a fork, a vanished thread may have
             * left a descriptor half-written. */
            i += pg->kind == HK_PAGE_INNER || pg->npages == 0 ? 1 : pg->npages;
        }
    }
}

/* Puts the heap in a state fit to wait without an owner: no current slabs,
 * nothing pending, free memory given back. */
static void heap_quiesce(hk_heap_t *h, bool force) {
    _hk_heap_drain_remote(h);
    retire_empty_slabs(h, false);
    for (unsigned cls = 0; cls < _hk_class_count; cls++) {
        hk_page_t *pg = _hk_slab_leave_current(h, cls);
        if (pg == NULL) continue;
        if (pg->used == 0) {
            _hk_slab_retire(h, pg);
        } else if (pg->free || pg->initialized < pg->capacity) {
            _hk_queue_push(&h->partial[cls], pg); /* keeps its owner mark */
        } else {
            hk_store_relaxed(&pg->owner, 0); /* full, on no list */
        }
    }
    _hk_buddy_purge(h, _hk_os_now_ms(), force);
    _hk_buddy_release_free_chunks(h, 0);
    _hk_heap_publish(h);
}

/* True when nothing of the heap is alive: its struct may be recycled. */
static bool heap_is_empty(hk_heap_t *h) {
    return h->nchunks == 0 && h->huge == NULL &&
           atomic_load_explicit(&h->huge_live_bytes, memory_order_acquire) == 0 &&
           atomic_load_explicit(&h->remote, memory_order_acquire) == NULL;
}

static void heap_retire(hk_heap_t *h) {
    heap_quiesce(h, false);
    set_owner(h, 0);
    _hk_lock(&heaps_lock);
    if (heap_is_empty(h)) {
        struct_free_locked(h);
    } else {
        h->next_retired = retired_heaps;
        retired_heaps = h;
    }
    hk_unlock(&heaps_lock);
}

/* Explicit heaps still owned by an exiting thread become released, so no
 * later thread that reuses its thread pointer passes for their owner, and
 * any thread holding the pointer may adopt them. */
static void release_explicit_heaps(uintptr_t me) {
    hk_heap_t *mine[16];
    for (;;) {
        size_t n = 0;
        _hk_lock(&heaps_lock);
        for (hk_heap_t *h = all_heaps; h && n < 16; h = h->gnext)
            if (!h->is_default && h->owner_tid == me) mine[n++] = h;
        hk_unlock(&heaps_lock);
        if (n == 0) return;
        for (size_t i = 0; i < n; i++) hk_heap_release(mine[i]);
    }
}

static void thread_exit(void *arg) {
    (void)arg;
    tls_exited = 1;
    release_explicit_heaps(hk_thread_id());
    hk_heap_t *h = _hk_tls_heap;
    if (h == &_hk_heap_empty) return;
    _hk_tls_heap = &_hk_heap_empty;
    heap_retire(h);
}

hk_heap_t *_hk_heap_get_default(void) {
    hk_heap_t *h = _hk_tls_heap;
    if (h != &_hk_heap_empty) return h;
    _hk_init();
    if (tls_exited) return NULL; /* in teardown: the caller uses the orphan heap */
    _hk_lock(&heaps_lock);
    h = retired_heaps;
    if (h) retired_heaps = h->next_retired;
    hk_unlock(&heaps_lock);
    if (h == NULL) {
        h = struct_alloc(true);
        if (h == NULL) return NULL;
    }
    h->next_retired = NULL;
    set_owner(h, hk_thread_id());
    _hk_tls_heap = h;
    pthread_setspecific(exit_key, h);
    _hk_heap_drain_remote(h);
    return h;
}

/* ---- Remote frees ------------------------------------------------------------------- */

#if HK_ASAN
/* ASan: a block freed by a thread that does not own its heap is poisoned by
 * that thread, before the push publishes it: once pushed, the owner may
 * drain it and hand it out again at once, and a later shadow write of ours
 * would poison a live block (asan.h). Slab and medium blocks whole (the
 * usable size reads only what is fixed while the block is live); a huge
 * block only gets its link word poisoned, by the push: chunk.c poisons it
 * whole when it caches it, or clears it when it unmaps it. */
static void asan_poison_remote(void *p) {
    if (hk_chunk_of(p)->h.kind == HK_CHUNK_NORMAL) hk_asan_poison(p, _hk_block_usable(p));
}
#endif

void _hk_heap_free_remote(hk_heap_t *h, void *p) {
    hk_block_t *b = p;
#if HK_SECURE
    /* Checked and marked pending before it is queued: a second free of the
     * block, from any thread, is caught now rather than at the drain. */
    hk_chunk_t *c = hk_chunk_of(p);
    _hk_secure_remote_free(c, p);
#endif
#if HK_ASAN
    asan_poison_remote(p);
#endif
    hk_block_t *head = atomic_load_explicit(&h->remote, memory_order_relaxed);
    do {
        /* Under ASan the link word is poisoned again before the CAS. */
#if HK_SECURE
        hk_link_write(b, hk_link_encode(c, b, head));
#else
        hk_link_write(b, head);
#endif
    } while (!atomic_compare_exchange_weak_explicit(&h->remote, &head, b, memory_order_release,
                                                    memory_order_relaxed));
}

void _hk_heap_drain_remote(hk_heap_t *h) {
    if (atomic_load_explicit(&h->remote, memory_order_relaxed) == NULL) return;
    hk_block_t *b = atomic_exchange_explicit(&h->remote, NULL, memory_order_acquire);
    while (b) {
#if HK_SECURE
        hk_block_t *next = _hk_secure_drain_next(h, b); /* checked; b's pending bit cleared */
#else
        hk_block_t *next = hk_link_read(b);
#endif
        if (hk_unlikely(next == b)) _hk_fatal("free", "double free", b);
        _hk_heap_free_local(h, hk_chunk_of(b), b);
        b = next;
    }
}

/* ---- Freeing on the owner thread --------------------------------------------------- */

static void huge_unlink(hk_heap_t *h, hk_chunk_t *c) {
    if (c->h.prev) c->h.prev->h.next = c->h.next;
    else h->huge = c->h.next;
    if (c->h.next) c->h.next->h.prev = c->h.prev;
    c->h.next = c->h.prev = NULL;
}

static void huge_link(hk_heap_t *h, hk_chunk_t *c) {
    c->h.prev = NULL;
    c->h.next = h->huge;
    if (h->huge) h->huge->h.prev = c;
    h->huge = c;
}

static void huge_release(hk_heap_t *h, hk_chunk_t *c) {
    hk_add_relaxed(&h->huge_frees, 1);
    /* Release: a retiring owner that sees the live bytes reach 0 (acquire,
     * heap_is_empty) also sees the count above, before it recycles h. */
    atomic_fetch_sub_explicit(&h->huge_live_bytes, c->h.huge_reserved, memory_order_release);
    _hk_huge_free(c);
}

void _hk_heap_free_local(hk_heap_t *h, hk_chunk_t *c, void *p) {
#if HK_SECURE
    /* Freed by another thread already and waiting on the queue (a drained
     * block comes here with its pending bit cleared). */
    if (hk_unlikely(hk_is_pending(c, p))) _hk_fatal("free", "double free", p);
#endif
    if (c->h.kind == HK_CHUNK_HUGE) {
        /* Only huge blocks of explicit heaps come here (through the remote
         * queue or their owner); they are linked for hk_heap_destroy. */
        huge_unlink(h, c);
        huge_release(h, c);
        return;
    }
    hk_page_t *pg = hk_block_head(c, p);
    if (pg->kind == HK_PAGE_SLAB) {
        _hk_slab_free(h, pg, p);
    } else if (pg->kind == HK_PAGE_MEDIUM && hk_page_start(c, pg) == p) {
        h->c.medium_frees++;
        h->c.medium_live_bytes -= (size_t)pg->npages << HK_PAGE_SHIFT;
        _hk_buddy_free(h, pg);
    } else if (pg->kind == HK_PAGE_FREE || (pg->kind == HK_PAGE_INNER &&
                                            ((uintptr_t)p & (HK_PAGE_SIZE - 1)) == 0)) {
        _hk_fatal("free", "double free", p); /* a page-aligned block already freed */
    } else {
        _hk_fatal("free", "invalid pointer", p);
    }
}

/* Frees a huge block from any thread. */
static void huge_free_any(hk_chunk_t *c, void *p) {
    if (p != hk_chunk_data(c)) _hk_fatal("free", "invalid pointer", p);
    hk_heap_t *h = c->h.heap;
    if (h == NULL) _hk_fatal("free", "double free", p); /* sits in the huge cache */
    if (!c->h.linked) {
#if HK_SECURE
        /* Two threads freeing the block at once both see its heap: the
         * pending bit, taken atomically until the cache clears it, lets
         * one through. */
        if (atomic_fetch_or_explicit(&c->bits[0].pending, 1, memory_order_relaxed) & 1)
            _hk_fatal("free", "double free", p);
#endif
        huge_release(h, c); /* default heaps do not track their huge blocks */
    } else if (h->owner_tid == hk_thread_id()) {
        _hk_heap_free_local(h, c, p);
    } else {
        _hk_heap_free_remote(h, p);
    }
}

void _hk_free_generic(void *p) {
    if (!hk_chunk_map_has((uintptr_t)p)) {
        if (p == NULL) return;
        _hk_fatal("free", "invalid pointer", p);
    }
    hk_chunk_t *c = hk_chunk_of(p);
    if (c->h.kind == HK_CHUNK_HUGE) {
        huge_free_any(c, p);
        return;
    }
    hk_heap_t *h = c->h.heap;
    /* A chunk in the global cache holds no live block. */
    if (hk_unlikely(h == NULL)) _hk_fatal("free", "double free", p);
    if (atomic_load_explicit(&c->h.owner_tid, memory_order_relaxed) == hk_thread_id())
        _hk_heap_free_local(h, c, p);
    else
        _hk_heap_free_remote(h, p);
}

/* ---- Allocation slow paths ------------------------------------------------------------ */

/* Housekeeping every so many slow paths: publish statistics, decommit free
 * memory that has waited for the delay. */
#define PUBLISH_INTERVAL_MS 50 /* publishing walks the heap: not too often */

static void heap_tick(hk_heap_t *h) {
    if (++h->since_publish < 64) return;
    h->since_publish = 0;
    uint64_t now = _hk_os_now_ms();
    if (now - h->last_publish >= PUBLISH_INTERVAL_MS) {
        h->last_publish = now;
        _hk_heap_publish(h);
    }
    uint64_t delay = (uint64_t)_hk_options.decommit_delay_ms;
    if (now - h->last_purge >= delay / 2 + 1) {
        h->last_purge = now;
        _hk_buddy_purge(h, now, false);
        _hk_chunk_cache_purge(false);
    }
}

static inline hk_block_t *slab_pop(hk_heap_t *h, hk_page_t *pg, unsigned cls) {
    hk_block_t *b = pg->free;
#if HK_SECURE
    pg->free = hk_secure_take(pg, b); /* decodes and checks the link */
#else
    pg->free = hk_link_read(b);
#endif
    pg->used++;
    h->mallocs[cls]++;
    return b;
}

static hk_block_t *small_alloc(hk_heap_t *h, unsigned cls) {
    hk_page_t *pg = h->current[cls];
    if (hk_likely(pg->free != NULL)) return slab_pop(h, pg, cls);
    heap_tick(h);
    _hk_heap_drain_remote(h);
    pg = h->current[cls]; /* draining may have retired or refilled it */
    if (pg->free == NULL && pg->initialized < pg->capacity) _hk_slab_extend(pg);
    if (pg->free == NULL) {
        /* The current slab is full: it leaves, on no list, until a free
         * makes room in it. Take a partial slab, or a new one. */
        if (_hk_slab_leave_current(h, cls)) hk_store_relaxed(&pg->owner, 0);
        pg = h->partial[cls].first;
        if (pg) {
            _hk_queue_remove(&h->partial[cls], pg);
        } else {
            pg = _hk_slab_new(h, cls);
            if (pg == NULL) return NULL;
        }
        _hk_slab_make_current(h, cls, pg);
        if (pg->free == NULL) _hk_slab_extend(pg);
    }
    return slab_pop(h, pg, cls);
}

/* The class serving `size` at `align` (align <= HK_PAGE_SIZE): the first
 * whose block size is a multiple of the alignment, because slabs start on
 * page boundaries. */
static unsigned class_for(size_t size, size_t align) {
    if (size < align) size = align;
    unsigned cls = hk_class_of(size);
    while (cls < _hk_class_count && (_hk_classes[cls].block_size & (align - 1)) != 0) cls++;
    return cls;
}

static void *medium_alloc(hk_heap_t *h, size_t size, size_t align, bool zero) {
    size_t npages = (size + HK_PAGE_SIZE - 1) >> HK_PAGE_SHIFT;
    unsigned min_order = 0;
    while (((size_t)HK_PAGE_SIZE << min_order) < align) min_order++;
    heap_tick(h);
    _hk_heap_drain_remote(h);
    bool zeroed;
    hk_page_t *pg = _hk_buddy_alloc(h, npages, min_order, &zeroed);
    if (pg == NULL) return NULL;
    pg->kind = HK_PAGE_MEDIUM;
    h->c.medium_mallocs++;
    h->c.medium_live_bytes += npages << HK_PAGE_SHIFT;
    void *p = hk_page_start(hk_chunk_of_page(pg), pg);
    if (zero && !zeroed) {
        hk_asan_unpoison(p, npages << HK_PAGE_SHIFT); /* ASan: free pages, cleared whole */
        memset(p, 0, npages << HK_PAGE_SHIFT);
    }
    hk_asan_live(p, size, npages << HK_PAGE_SHIFT); /* ASan: the pages came poisoned */
    return p;
}

static void *huge_alloc(hk_heap_t *h, size_t size, size_t align, bool zero) {
    heap_tick(h);
    bool zeroed;
    hk_chunk_t *c = _hk_huge_alloc(size, align, &zeroed);
    if (c == NULL) return NULL;
    c->h.heap = h;
    c->h.linked = !h->is_default;
    atomic_store_explicit(&c->h.owner_tid, 0, memory_order_relaxed);
    if (c->h.linked) huge_link(h, c);
    hk_add_relaxed(&h->huge_mallocs, 1);
    hk_add_relaxed(&h->huge_live_bytes, c->h.huge_reserved);
    void *p = hk_chunk_data(c);
    /* Only the bytes asked for: a reused block's tail may be decommitted,
     * and clearing it would fault it back in for nothing. */
    if (zero && !zeroed) memset(p, 0, size);
    return p;
}

/* Allocation from the orphan heap, for threads in teardown. */
static void *orphan_alloc(size_t size, size_t align, bool zero) {
    _hk_lock(&orphan_lock);
    if (orphan_heap == NULL) orphan_heap = struct_alloc(false);
    void *p = NULL;
    if (orphan_heap) {
        _hk_heap_drain_remote(orphan_heap);
        p = _hk_heap_alloc(orphan_heap, size, align, zero);
    }
    hk_unlock(&orphan_lock);
    if (p == NULL) errno = ENOMEM;
    return p;
}

void *_hk_heap_alloc(hk_heap_t *h, size_t size, size_t align, bool zero) {
    if (hk_unlikely(h == &_hk_heap_empty)) {
        h = _hk_heap_get_default();
        if (h == NULL) return orphan_alloc(size, align, zero);
    }
    /* Plain malloc: 8-byte alignment under 16 bytes, 16 above. */
    if (align == 0) align = size < 16 ? 8 : 16;
    void *p;
    if (hk_unlikely(size > PTRDIFF_MAX)) {
        p = NULL;
    } else if (size <= HK_SMALL_MAX && align <= HK_PAGE_SIZE &&
               class_for(size, align) < _hk_class_count) {
        unsigned cls = class_for(size, align);
        p = small_alloc(h, cls);
        if (p && zero) {
            hk_asan_unpoison(p, _hk_classes[cls].block_size); /* ASan: a free block, cleared whole */
            memset(p, 0, _hk_classes[cls].block_size);
        }
        if (p) hk_asan_live(p, size, _hk_classes[cls].block_size);
    } else if (size <= HK_MEDIUM_MAX && align <= HK_CHUNK_SIZE) {
        p = medium_alloc(h, size ? size : 1, align, zero);
    } else {
        /* A huge alignment with size 0 still maps a page, as medium does. */
        p = huge_alloc(h, size ? size : 1, align, zero);
    }
    if (hk_unlikely(p == NULL)) errno = ENOMEM;
    return p;
}

void *_hk_malloc_miss(size_t size, hk_heap_t *h) { return _hk_heap_alloc(h, size, 0, false); }

/* A medium block that grows by realloc stays in the buddy up to a whole
 * chunk instead of moving into a mapping of its own past HK_MEDIUM_MAX.
 * Growth by realloc (a vector doubling, a string appended to) is where
 * memory freed at one size is needed again at another: in the chunks, the
 * pages a grown block leaves serve the medium blocks and slabs that come
 * next (and it can grow in place into free pages after it), while a huge
 * block's memory serves only huge blocks, so the huge cache and the
 * chunks' free pages would each hold on to their own recent peak. A plain
 * malloc of over HK_MEDIUM_MAX stays huge: its memory comes back through
 * the huge cache, which serves the next large block of any size. */
void *_hk_heap_alloc_grown(hk_heap_t *h, size_t size) {
    if (size <= HK_MEDIUM_MAX || size > HK_CHUNK_SIZE || h == &_hk_heap_empty)
        return _hk_heap_alloc(h, size, 0, false);
    void *p = medium_alloc(h, size, 16, false);
    if (p == NULL) errno = ENOMEM;
    return p;
}

/* ---- Collect -------------------------------------------------------------------------- */

/* Retires the empty spare slabs of every class (and with force the empty
 * current ones). */
static void retire_empty_slabs(hk_heap_t *h, bool force) {
    for (unsigned cls = 0; cls < _hk_class_count; cls++) {
        for (hk_page_t *pg = h->partial[cls].first, *next; pg; pg = next) {
            next = pg->next;
            if (pg->used == 0) _hk_slab_retire(h, pg);
        }
        hk_page_t *pg = h->current[cls];
        if (force && pg != &_hk_page_empty && pg->used == 1 /* the bias alone */) {
            _hk_slab_leave_current(h, cls);
            _hk_slab_retire(h, pg);
        }
    }
}

void _hk_heap_collect(hk_heap_t *h, bool force) {
    _hk_heap_drain_remote(h);
    retire_empty_slabs(h, force);
    _hk_buddy_purge(h, _hk_os_now_ms(), force);
    _hk_buddy_release_free_chunks(h, force ? 0 : 1);
    _hk_heap_publish(h);
}

/* Drains and trims every retired heap (and the orphan heap), so that blocks
 * freed after their thread exited are given back. */
static void collect_retired(bool force) {
    _hk_lock(&heaps_lock);
    hk_heap_t *list = retired_heaps;
    retired_heaps = NULL;
    hk_unlock(&heaps_lock);
    uintptr_t me = hk_thread_id();
    while (list) {
        hk_heap_t *h = list;
        list = h->next_retired;
        set_owner(h, me); /* exclusive: it is off the list */
        heap_quiesce(h, force);
        heap_retire(h);
    }
    _hk_lock(&orphan_lock);
    if (orphan_heap) _hk_heap_collect(orphan_heap, force);
    hk_unlock(&orphan_lock);
}

/* ---- Public: explicit heaps and collection ---------------------------------------- */

/* Under valgrind an explicit heap is a memcheck memory pool (vg.h), so
 * that hk_heap_destroy ends all its blocks at once. */
HK_VG_FLAG(on_valgrind);

hk_heap_t *hk_heap_new(void) {
    _hk_init();
    hk_heap_t *h = struct_alloc(false);
    if (h == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    h->owner_tid = hk_thread_id();
    if (hk_vg_check(&on_valgrind)) VALGRIND_CREATE_MEMPOOL(h, 0, 0);
    /* The thread-exit hook must run for this thread even if it never
     * allocates from its default heap (release_explicit_heaps). */
    if (pthread_getspecific(exit_key) == NULL) pthread_setspecific(exit_key, &_hk_heap_empty);
    return h;
}

static void check_owner(hk_heap_t *h, const char *func) {
    if (h == NULL || h == &_hk_heap_empty) _hk_fatal(func, "invalid heap", h);
    if (h->owner_tid != hk_thread_id()) {
        if (hk_load_relaxed(&h->released))
            _hk_fatal(func, "heap is released (adopt it first)", h);
        _hk_fatal(func, "heap not owned by this thread", h);
    }
}

/* ---- Moving a heap between threads ------------------------------------------------- */

void hk_heap_release(hk_heap_t *h) {
    check_owner(h, "hk_heap_release");
    if (h->is_default) _hk_fatal("hk_heap_release", "cannot release a thread's default heap", h);
    /* Like a thread exit: nothing current, nothing pending; from now on
     * every free into the heap is a remote free, kept on its queue. */
    heap_quiesce(h, false);
    set_owner(h, 0);
    atomic_store_explicit(&h->released, 1, memory_order_release);
}

void hk_heap_adopt(hk_heap_t *h) {
    if (h == NULL || h == &_hk_heap_empty || h->is_default)
        _hk_fatal("hk_heap_adopt", "invalid heap", h);
    uint8_t expected = 1;
    /* One adopter wins; a second adoption, or adopting a heap that was never
     * released, is a misuse. */
    if (!atomic_compare_exchange_strong_explicit(&h->released, &expected, 0,
                                                 memory_order_acquire, memory_order_relaxed))
        _hk_fatal("hk_heap_adopt", "heap is not released (adopted twice?)", h);
    set_owner(h, hk_thread_id());
    _hk_heap_drain_remote(h); /* frees made while it was in transit */
}

void hk_heap_destroy(hk_heap_t *h) {
    if (h == NULL) return;
    check_owner(h, "hk_heap_destroy");
    if (h->is_default) _hk_fatal("hk_heap_destroy", "cannot destroy a thread's default heap", h);
    if (hk_vg_check(&on_valgrind)) VALGRIND_DESTROY_MEMPOOL(h); /* all its blocks end */
    /* Every chunk goes back whole; the blocks in it are never visited. */
    while (h->chunks) {
        hk_chunk_t *c = h->chunks;
        h->chunks = c->h.next;
        h->committed_bytes -= (size_t)c->h.committed_pages << HK_PAGE_SHIFT;
        c->h.next = c->h.prev = NULL;
        _hk_buddy_reset_chunk(c);
        _hk_chunk_free(c);
    }
    h->chunks_last = NULL;
    h->nchunks = 0;
    while (h->huge) {
        hk_chunk_t *c = h->huge;
        huge_unlink(h, c);
        huge_release(h, c);
    }
    atomic_store(&h->remote, NULL);
    /* Its medium blocks went with the chunks: count them freed, so the
     * process totals keep mallocs - frees == live blocks. */
    h->c.medium_frees = h->c.medium_mallocs;
    h->c.medium_live_bytes = 0;
    _hk_lock(&heaps_lock);
    struct_free_locked(h);
    hk_unlock(&heaps_lock);
}

hk_heap_t *hk_heap_default(void) {
    hk_heap_t *h = _hk_heap_get_default();
    return h; /* NULL only in thread teardown or out of memory */
}

void *hk_heap_malloc(hk_heap_t *h, size_t size) {
    check_owner(h, "hk_heap_malloc");
    if (hk_unlikely(hk_vg_check(&on_valgrind))) return _hk_vg_alloc_in(h, size, 0, false);
    return _hk_heap_alloc(h, size, 0, false);
}

void *hk_heap_calloc(hk_heap_t *h, size_t count, size_t size) {
    check_owner(h, "hk_heap_calloc");
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    if (hk_unlikely(hk_vg_check(&on_valgrind))) return _hk_vg_alloc_in(h, total, 0, true);
    return _hk_heap_alloc(h, total, 0, true);
}

void *hk_heap_aligned_alloc(hk_heap_t *h, size_t align, size_t size) {
    check_owner(h, "hk_heap_aligned_alloc");
    if (align == 0 || (align & (align - 1)) != 0) {
        errno = EINVAL;
        return NULL;
    }
    if (hk_unlikely(hk_vg_check(&on_valgrind))) return _hk_vg_alloc_in(h, size, align, false);
    return _hk_heap_alloc(h, size, align, false);
}

bool hk_heap_owns(hk_heap_t *h, const void *p) {
    if (h == NULL || !hk_chunk_map_has((uintptr_t)p)) return false;
    hk_chunk_t *c = hk_chunk_of(p);
    if (c->h.kind == HK_CHUNK_HUGE) return c->h.heap == h && p == hk_chunk_data(c);
    if (c->h.heap != h) return false;
    hk_page_t *pg = hk_block_head(c, p);
    if (pg->kind == HK_PAGE_SLAB) {
        if (!_hk_slab_valid_block(c, pg, p)) return false;
#if HK_SECURE
        /* The live bit says it from any thread, and a block queued by a
         * remote free is no longer live. */
        return (hk_load_relaxed(&hk_bits_of(c, p)->live) & hk_bit_of(p)) != 0 &&
               !hk_is_pending(c, p);
#else
        if (h->owner_tid != hk_thread_id()) return true; /* cannot look further */
        /* A block on the slab's free list is not live (a slow walk: this
         * function is meant for assertions). */
        for (hk_block_t *b = pg->free; b; b = hk_link_read(b))
            if (b == p) return false;
        return true;
#endif
    }
    return pg->kind == HK_PAGE_MEDIUM && hk_page_start(c, pg) == p;
}

void hk_collect(bool force) {
    hk_heap_t *h = _hk_tls_heap;
    if (h != &_hk_heap_empty) _hk_heap_collect(h, force);
    if (force) collect_retired(force);
    _hk_chunk_cache_purge(force);
}
