/* fastpath.h: the malloc and free fast paths, inline.
 *
 * Included by alloc.c (hk_malloc, hk_free) and by the override layer
 * (malloc, free, operator new/delete), so every entry point runs the same
 * few instructions without an extra call. See alloc.c for what they do.
 */
#ifndef HK_FASTPATH_H
#define HK_FASTPATH_H

#include "internal/internal.h"

/* `miss` serves every other case: larger sizes, an empty slab, a thread
 * without a heap yet (its heap is the empty sentinel), valgrind. */
static inline void *hk_malloc_fast_or(size_t size, void *(*miss)(size_t, hk_heap_t *)) {
    hk_heap_t *h = _hk_tls_heap;
    if (hk_likely(size < _hk_fast_size_limit)) {
        hk_direct_t *d = &h->direct[(size + 7) >> 3];
        hk_page_t *pg = d->page;
        hk_block_t *b = pg->free;
        if (hk_likely(b != NULL)) {
#if HK_SECURE
            pg->free = hk_secure_take(pg, b); /* decodes and checks the link */
#else
            pg->free = hk_link_read(b);
#endif
            pg->used++;
            d->mallocs++;
            /* ASan: the bytes asked for; the rest of the free (poisoned)
             * block stays poisoned (asan.h). */
            hk_asan_unpoison(b, size);
            return b;
        }
    }
    return miss(size, h);
}

static inline void *hk_malloc_fast(size_t size) { return hk_malloc_fast_or(size, _hk_malloc_miss); }

/* `miss` takes every pointer the fast path does not free itself. */
static inline void hk_free_fast_or(void *p, void (*miss)(void *)) {
    uintptr_t a = (uintptr_t)p;
    if (hk_likely(hk_chunk_map_fast(a))) {
        hk_chunk_t *c = hk_chunk_of(p);
        hk_page_t *pd = (hk_page_t *)((uint8_t *)c->pages + ((a >> 6) & HK_DESC_OFFSET_MASK));
        unsigned back = pd->head_off;
        hk_page_t *pg = (hk_page_t *)((uint8_t *)pd - back);
        if (hk_likely(hk_load_relaxed(&pg->owner) == hk_thread_id())) {
            /* p's offset in the slab: in its page, plus the pages back to
             * the head (head_off is pages back times 64). A pointer into the
             * middle of a block, or past the carved part, fails the check
             * (slab.c explains the multiply). */
            uint64_t off = (a & (HK_PAGE_SIZE - 1)) + ((uint64_t)back << 6);
            hk_block_t *b = p, *head = pg->free;
#if HK_SECURE
            /* Secure: p must be live (every double free, and every free of
             * a carved block never handed out, fails this) and not waiting
             * on the remote queue (freed by another thread already). The
             * bits word of an interior pointer exists too: the chunk's
             * bitmap covers all of its data. */
            hk_block_bits_t *w = hk_bits_of(c, p);
            uint64_t m = hk_bit_of(p), live = hk_load_relaxed(&w->live);
            if (hk_likely(off * pg->div_magic < pg->valid_limit && (live & m) != 0 &&
                          (hk_load_relaxed(&w->pending) & m) == 0)) {
                hk_store_relaxed(&w->live, live & ~m);
                hk_asan_poison(b, hk_slab_block_size(pg)); /* ASan: free blocks are poisoned whole */
                hk_link_write(b, hk_link_encode(c, b, head));
                pg->free = b;
                if (hk_unlikely(--pg->used == 0)) _hk_slab_after_free_fast(pg);
                return;
            }
#else
            /* A bad pointer or an immediate double free goes to the generic
             * path, which checks again and reports: a jump, where calling
             * the report here would cost a stack frame on every free. */
            if (hk_likely(off * pg->div_magic < pg->valid_limit && b != head)) {
                hk_asan_poison(b, hk_slab_block_size(pg)); /* ASan: free blocks are poisoned whole */
                hk_link_write(b, head);
                pg->free = b;
                if (hk_unlikely(--pg->used == 0)) _hk_slab_after_free_fast(pg);
                return;
            }
#endif
        }
    }
    miss(p);
}

static inline void hk_free_fast(void *p) { hk_free_fast_or(p, _hk_free_generic); }

#endif /* HK_FASTPATH_H */
