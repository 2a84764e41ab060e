/* alloc.c: the public malloc family (hk_malloc, hk_free, ...).
 *
 * Owns: the fast paths and the argument checks of the public API.
 * Calls: heap.c for every slow path.
 * Threads: any thread; the fast paths touch only the caller's own heap.
 *
 * Fast path of hk_malloc (size <= 1 KiB, the current slab has a free
 * block): one load from the heap's table of slabs by size, pop the slab's
 * free list, two counter increments; no lock, no atomic. Fast path of hk_free (the slab's owner
 * mark is the caller's thread id: its heap, current or queued): one byte test in the chunk
 * map (rejects foreign pointers), mask to the chunk, the immediate double
 * free check, push on the slab's free list, one decrement. A pointer into
 * the middle of a small block is caught there too, by one multiply and one
 * compare (slab.c), so a bad free never corrupts a free list. `make bench-instr` counts the instructions
 * of the pair with callgrind.
 */
#include "internal/fastpath.h"
#include "internal/debug.h" /* the debug library routes every entry through debug.c */
#include "internal/vg.h"

/* ---- Under valgrind ------------------------------------------------------------------- */
/* memcheck is told about every block of the hk_ malloc family (vg.h); the
 * allocator's own reads and writes of free blocks (free-list links) are
 * not the program's errors, so reporting is off while heapkit works. */
HK_VG_FLAG(on_valgrind);
#define VG_QUIET(stmt)                  \
    do {                                \
        VALGRIND_DISABLE_ERROR_REPORTING; \
        stmt;                           \
        VALGRIND_ENABLE_ERROR_REPORTING;  \
    } while (0)

/* A block of heap h, told to memcheck: a chunk of the explicit heap's
 * memory pool (so that hk_heap_destroy ends them all), or a malloc-like
 * block of a default heap; its slack up to the usable size is no-access,
 * so an overflow shows. */
void *_hk_vg_alloc_in(hk_heap_t *h, size_t size, size_t align, bool zero) {
    void *p;
    size_t usable = 0;
    VG_QUIET(p = _hk_heap_alloc(h, size, align, zero);
             if (p) usable = _hk_usable_size_checked(p, "malloc"));
    if (p == NULL) return NULL;
    if (h != &_hk_heap_empty && !h->is_default) {
        VALGRIND_MEMPOOL_ALLOC(h, p, size);
        if (zero) VALGRIND_MAKE_MEM_DEFINED(p, size);
    } else {
        VALGRIND_MALLOCLIKE_BLOCK(p, size, 0, zero);
    }
    VALGRIND_MAKE_MEM_NOACCESS((char *)p + size, usable - size);
    return p;
}

/* The vg_ functions stay out of line: their client requests keep arguments
 * on the stack, which inlined would give hk_malloc and hk_free a frame. */
__attribute__((noinline)) static void *vg_alloc(size_t size, size_t align, bool zero) {
    return _hk_vg_alloc_in(_hk_tls_heap, size, align, zero);
}

__attribute__((noinline)) static void vg_free(void *p) {
    if (p == NULL) return;
    hk_heap_t *h = NULL;
    VG_QUIET(if (hk_chunk_map_has((uintptr_t)p)) h = hk_chunk_of(p)->h.heap; hk_free_fast(p));
    if (h && !h->is_default) VALGRIND_MEMPOOL_FREE(h, p);
    else VALGRIND_FREELIKE_BLOCK(p, 0);
}

/* Always moves, as memcheck's own realloc does: the copy carries the
 * definedness of the old bytes. */
__attribute__((noinline)) static void *vg_realloc(hk_heap_t *h, void *p, size_t size) {
    if (p == NULL) return _hk_vg_alloc_in(h, size, 0, false);
    size_t old;
    VG_QUIET(old = _hk_usable_size_checked(p, "realloc"));
    if (size == 0) {
        vg_free(p);
        return NULL;
    }
    void *q = _hk_vg_alloc_in(h, size, 0, false);
    if (q == NULL) return NULL;
    hk_asan_unpoison(p, old < size ? old : size); /* as realloc_in does */
    VG_QUIET(memcpy(q, p, old < size ? old : size));
    vg_free(p);
    return q;
}

/* The misses of hk_malloc and hk_free. Under valgrind every call misses
 * (_hk_fast_size_limit, _hk_map_start), so the valgrind test is here, off
 * the fast paths, which stay tail calls without a stack frame. */
__attribute__((noinline)) static void *malloc_miss(size_t size, hk_heap_t *h) {
    if (hk_unlikely(hk_vg_check(&on_valgrind))) return vg_alloc(size, 0, false);
    return _hk_malloc_miss(size, h);
}

__attribute__((noinline)) static void free_miss(void *p) {
    if (hk_unlikely(hk_vg_check(&on_valgrind))) {
        vg_free(p);
        return;
    }
    _hk_free_generic(p);
}

void *hk_malloc(size_t size) { return hk_malloc_fast_or(size, malloc_miss); }

void hk_free(void *p) { hk_free_fast_or(p, free_miss); }

void *hk_calloc(size_t count, size_t size) {
    size_t total;
    if (hk_unlikely(__builtin_mul_overflow(count, size, &total))) {
        errno = ENOMEM;
        return NULL;
    }
#if HK_DEBUG_MODE
    return _hk_debug_alloc(total, 0, true);
#endif
    if (hk_unlikely(hk_vg_check(&on_valgrind))) return vg_alloc(total, 0, true);
    return _hk_heap_alloc(_hk_tls_heap, total, 0, true);
}

static bool bad_alignment(size_t align) { return align == 0 || (align & (align - 1)) != 0; }

void *hk_aligned_alloc(size_t align, size_t size) {
    if (bad_alignment(align)) {
        errno = EINVAL;
        return NULL;
    }
#if HK_DEBUG_MODE
    return _hk_debug_alloc(size, align, false);
#endif
    if (hk_unlikely(hk_vg_check(&on_valgrind))) return vg_alloc(size, align, false);
    return _hk_heap_alloc(_hk_tls_heap, size, align, false);
}

int hk_posix_memalign(void **out, size_t align, size_t size) {
    if (bad_alignment(align) || align < sizeof(void *)) return EINVAL;
    int saved = errno;
#if HK_DEBUG_MODE
    void *p = _hk_debug_alloc(size, align, false);
#else
    void *p = hk_vg_check(&on_valgrind) ? vg_alloc(size, align, false)
                                        : _hk_heap_alloc(_hk_tls_heap, size, align, false);
#endif
    if (p == NULL) {
        errno = saved;
        return ENOMEM;
    }
    *out = p;
    return 0;
}

#if HK_ASAN
/* ASan: the API promises the caller every usable byte of a block, so asking
 * for them makes them addressable; a program that never asks keeps its
 * slack poisoned (asan.h). Of a huge block only the tail was poisoned, and
 * unpoisoning the rest would write shadow for every byte of it. */
static void asan_usable(const void *p, size_t n) {
    hk_chunk_t *c = hk_chunk_of(p);
    size_t from = c->h.kind == HK_CHUNK_HUGE && c->h.huge_size < n ? c->h.huge_size : 0;
    hk_asan_unpoison((const uint8_t *)p + from, n - from);
}
#endif

size_t hk_usable_size(const void *p) {
    if (p == NULL) return 0;
#if HK_DEBUG_MODE
    return _hk_debug_usable_size(p);
#endif
    size_t n = _hk_usable_size_checked(p, "hk_usable_size");
#if HK_ASAN
    asan_usable(p, n);
#endif
    return n;
}

bool hk_is_heap_memory(const void *p) {
    uintptr_t a = (uintptr_t)p, slot = a >> HK_CHUNK_SHIFT;
    if (slot >= HK_CHUNK_MAP_SLOTS) return false;
    uint8_t v = hk_chunk_map_get(slot);
    /* Past the first 4 MiB of a huge block: back to its first slot. */
    while (v == HK_MAP_HUGE_TAIL && slot > 0) v = hk_chunk_map_get(--slot);
    if (!hk_map_is_start(v)) return false;
    hk_chunk_t *c = hk_chunk_of((void *)(slot << HK_CHUNK_SHIFT));
    /* A normal chunk's map slot is all data; a huge block may end before
     * its last slot does. */
    return c->h.kind == HK_CHUNK_NORMAL || a - (uintptr_t)hk_chunk_data(c) < c->h.huge_reserved;
}

size_t _hk_block_usable(const void *p) {
    if (!hk_chunk_map_has((uintptr_t)p)) return 0;
    hk_chunk_t *c = hk_chunk_of(p);
    if (c->h.kind == HK_CHUNK_HUGE)
        return p == hk_chunk_data(c) && c->h.heap != NULL ? c->h.huge_reserved : 0;
    hk_page_t *pg = hk_block_head(c, p);
    if (pg->kind == HK_PAGE_SLAB) {
        /* Other threads read only fields fixed while the slab lives (the
         * carved count is the owner's, so they check against capacity). */
        size_t off = (size_t)((const uint8_t *)p - hk_page_start(c, pg));
        size_t bs = hk_slab_block_size(pg);
        if (off % bs != 0 || off / bs >= pg->capacity) return 0;
        return bs;
    }
    if (pg->kind == HK_PAGE_MEDIUM && hk_page_start(c, pg) == p)
        return (size_t)pg->npages << HK_PAGE_SHIFT;
    return 0;
}

size_t _hk_usable_size_checked(const void *p, const char *func) {
    size_t n = _hk_block_usable(p);
    if (n == 0) _hk_fatal(func, "invalid pointer", p);
    return n;
}

/* ---- realloc ----------------------------------------------------------------- */

/* Resizes p in place when it can; returns p, or NULL when it must move. */
static void *resize_in_place(hk_heap_t *h, void *p, size_t old, size_t size) {
    hk_chunk_t *c = hk_chunk_of(p);
    if (c->h.kind == HK_CHUNK_HUGE) {
        if (size <= HK_MEDIUM_MAX) return NULL; /* shrinks into the buddy's range */
        hk_heap_t *owner = c->h.heap;
        if (c->h.linked && owner->owner_tid != hk_thread_id()) return NULL;
        if (c->h.linked) {
            /* The header may move: take it off the list while it does. */
            hk_chunk_t *prev = c->h.prev, *next = c->h.next;
            size_t before = c->h.huge_reserved;
            hk_chunk_t *n = _hk_huge_resize(c, size);
            if (n == NULL) return NULL;
            if (n != c) {
                if (prev) prev->h.next = n;
                else owner->huge = n;
                if (next) next->h.prev = n;
            }
            hk_add_relaxed(&owner->huge_live_bytes, n->h.huge_reserved - before);
            return hk_chunk_data(n);
        }
        size_t before = c->h.huge_reserved;
        hk_chunk_t *n = _hk_huge_resize(c, size);
        if (n == NULL) return NULL;
        hk_add_relaxed(&owner->huge_live_bytes, n->h.huge_reserved - before);
        return hk_chunk_data(n);
    }
    if (size <= old) {
        /* Shrinking: keep the block unless it would waste over half. */
        if (size >= old / 2) {
            hk_asan_live(p, size, old); /* ASan: the tail moves with the size */
            return p;
        }
    }
    hk_page_t *pg = hk_block_head(c, p);
    /* Up to a whole chunk: a medium block that grows stays in the buddy
     * (_hk_heap_alloc_grown). */
    if (pg->kind != HK_PAGE_MEDIUM || size <= HK_SMALL_MAX || size > HK_CHUNK_SIZE ||
        atomic_load_explicit(&c->h.owner_tid, memory_order_relaxed) != hk_thread_id())
        return NULL;
    /* A medium block of our own heap: give pages back, or take the free
     * pages right after it. */
    hk_heap_t *owner = c->h.heap;
    size_t npages = (size + HK_PAGE_SIZE - 1) >> HK_PAGE_SHIFT;
    size_t before = pg->npages;
    if (npages < before) {
        _hk_buddy_shrink(owner, pg, npages);
    } else if (!_hk_buddy_grow(owner, pg, npages)) {
        return NULL;
    }
    owner->c.medium_live_bytes += (npages << HK_PAGE_SHIFT);
    owner->c.medium_live_bytes -= (before << HK_PAGE_SHIFT);
    (void)h;
    /* ASan: the pages given back are poisoned (buddy.c); those taken came
     * poisoned; the tail moves with the size. */
    hk_asan_live(p, size, npages << HK_PAGE_SHIFT);
    return p;
}

static void *realloc_in(hk_heap_t *h, void *p, size_t size) {
    if (p == NULL) return _hk_heap_alloc(h, size, 0, false);
    if (size == 0) { /* glibc's behaviour: free, and return NULL */
        hk_free(p);
        return NULL;
    }
    size_t old = _hk_usable_size_checked(p, "realloc");
    if (hk_unlikely(size > PTRDIFF_MAX)) {
        errno = ENOMEM;
        return NULL;
    }
    void *q = resize_in_place(h, p, old, size);
    if (q) return q;
    /* A medium block (usable size past the slabs' largest, in a chunk) that
     * grows keeps to the buddy up to a whole chunk. */
    bool medium = old > HK_SMALL_MAX && hk_chunk_of(p)->h.kind == HK_CHUNK_NORMAL;
    q = medium && size > old ? _hk_heap_alloc_grown(h, size) : _hk_heap_alloc(h, size, 0, false);
    if (q == NULL) return NULL; /* p is untouched */
    /* ASan: the copy reads p's slack too (its size asked is not kept); the
     * free below poisons p again. */
    hk_asan_unpoison(p, old < size ? old : size);
    memcpy(q, p, old < size ? old : size);
    hk_free(p);
    return q;
}

void *hk_realloc(void *p, size_t size) {
#if HK_DEBUG_MODE
    if (size > PTRDIFF_MAX) {
        errno = ENOMEM;
        return NULL;
    }
    return _hk_debug_realloc(p, size);
#endif
    if (hk_unlikely(hk_vg_check(&on_valgrind))) return vg_realloc(_hk_tls_heap, p, size);
    return realloc_in(_hk_tls_heap, p, size);
}

void *hk_reallocarray(void *p, size_t count, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return hk_realloc(p, total);
}

void *hk_heap_realloc(hk_heap_t *h, void *p, size_t size) {
    if (h == NULL || h->owner_tid != hk_thread_id())
        _hk_fatal("hk_heap_realloc", "heap not owned by this thread", h);
    if (hk_unlikely(hk_vg_check(&on_valgrind))) return vg_realloc(h, p, size);
    return realloc_in(h, p, size);
}
