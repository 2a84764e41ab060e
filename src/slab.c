/* slab.c: slabs of small blocks carved from buddy blocks.
 *
 * Owns: creating a slab for a size class, carving its blocks lazily, the
 * per-class queues of partially used slabs, and the state changes of a slab
 * on free (full -> partial -> empty -> back to the buddy).
 * Calls: buddy.c.
 * Threads: owner thread of the heap only.
 *
 * A slab's life: new (from the buddy) -> current (malloc pops from it) ->
 * full (every block handed out; on no list, so the fast path never looks at
 * it) -> partial (a free made room; queued) -> current again, or empty
 * (retired to the buddy at once, unless it is current or the only slab
 * queued for its class: one spare per class avoids carving a new slab
 * right after retiring one).
 * Invariant: a slab is current for its class, or queued on the partial
 * queue with free blocks, or full and on no list.
 * The current slab's `used` carries a bias of one, so the free fast path's
 * "became empty" test never fires for it: a loop that mallocs and frees one
 * block stays on the fast path instead of calling out on every free.
 * _hk_slab_make_current() and _hk_slab_leave_current() add and remove it.
 *
 * Blocks are carved a page worth at a time ("initialized"), so a fresh slab
 * commits memory only as it is used.
 */
#include "internal/internal.h"

hk_page_t _hk_page_empty; /* free == NULL, capacity == 0: always "exhausted" */

hk_page_t *_hk_slab_new(hk_heap_t *h, unsigned cls) {
    const hk_class_t *k = &_hk_classes[cls];
    bool zeroed;
    hk_page_t *pg = _hk_buddy_alloc(h, k->slab_pages, 0, &zeroed);
    if (pg == NULL) return NULL;
    pg->kind = HK_PAGE_SLAB;
    pg->free = NULL;
    pg->used = 0;
    pg->capacity = k->capacity;
    pg->initialized = 0;
    /* floor(2^64 / d) + 1: UINT64_MAX / d is one less than 2^64 / d when d
     * is a power of two, and equal to floor(2^64 / d) otherwise. */
    uint64_t d = k->block_size;
    pg->div_magic = UINT64_MAX / d + 1 + ((d & (d - 1)) == 0);
    pg->valid_limit = 0;
    pg->size_class = (uint8_t)cls;
    pg->queued = 0;
    hk_store_relaxed(&pg->owner, 0); /* set when it becomes current */
    pg->next = pg->prev = NULL;
    return pg;
}

void _hk_slab_extend(hk_page_t *pg) {
    const hk_class_t *k = &_hk_classes[pg->size_class];
    size_t n = (size_t)(pg->capacity - pg->initialized);
    if (n > k->extend) n = k->extend;
    if (n == 0) return;
    size_t bs = k->block_size;
    hk_chunk_t *c = hk_chunk_of_page(pg);
    uint8_t *first = hk_page_start(c, pg) + (size_t)pg->initialized * bs;
#if HK_SECURE
    /* Secure: in a random order, so consecutive mallocs are not neighbours
     * and an overflow cannot count on what lies after its block. */
    pg->free = _hk_secure_carve(c, first, n, bs, pg->free);
#else
    /* In address order, so a fresh slab hands out ascending addresses.
     * (Under ASan the carved blocks stay poisoned: the slab's memory came
     * poisoned from the buddy, and the links are written through the
     * helper.) */
    uint8_t *b = first;
    for (size_t i = 1; i < n; i++, b += bs) hk_link_write((hk_block_t *)b, (hk_block_t *)(b + bs));
    hk_link_write((hk_block_t *)b, pg->free);
    pg->free = (hk_block_t *)first;
#endif
    pg->initialized = (uint16_t)(pg->initialized + n);
    pg->valid_limit = pg->initialized * (uint64_t)(pg->div_magic * bs);
}

/* ---- Partial queues ------------------------------------------------------- */

void _hk_queue_push(hk_page_queue_t *q, hk_page_t *pg) {
    pg->queued = 1;
    pg->next = NULL;
    pg->prev = q->last;
    if (q->last) q->last->next = pg;
    else q->first = pg;
    q->last = pg;
}

void _hk_queue_remove(hk_page_queue_t *q, hk_page_t *pg) {
    if (pg->prev) pg->prev->next = pg->next;
    else q->first = pg->next;
    if (pg->next) pg->next->prev = pg->prev;
    else q->last = pg->prev;
    pg->next = pg->prev = NULL;
    pg->queued = 0;
}

/* ---- Freeing -------------------------------------------------------------------- */

/* The block check without a division. With d the block size,
 * c = floor(2^64/d) + 1 and e = c*d mod 2^64 (so 1 <= e <= d): for an offset
 * n = k*d + r < 2^32 and d <= 2^15, n*c mod 2^64 is k*e when r == 0 and at
 * least c >= 2^49 otherwise. Hence n*c < initialized*e exactly when n is the
 * start of a block among the first `initialized`. The free fast path does
 * the same multiply and compare inline. */
bool _hk_slab_valid_block(const hk_chunk_t *c, const hk_page_t *pg, const void *p) {
    uint64_t off = (uint64_t)((const uint8_t *)p - hk_page_start(c, pg));
    return off < HK_CHUNK_SIZE && off * pg->div_magic < pg->valid_limit;
}

/* current[cls] and the class's direct slots, which must agree. */
static void set_current(hk_heap_t *h, unsigned cls, hk_page_t *pg) {
    h->current[cls] = pg;
    for (unsigned g = _hk_classes[cls].direct_first; g <= _hk_classes[cls].direct_last; g++) h->direct[g].page = pg;
}

void _hk_slab_make_current(hk_heap_t *h, unsigned cls, hk_page_t *pg) {
    pg->used++; /* the bias */
    set_current(h, cls, pg);
    hk_store_relaxed(&pg->owner, h->owner_tid);
}

hk_page_t *_hk_slab_leave_current(hk_heap_t *h, unsigned cls) {
    hk_page_t *pg = h->current[cls];
    if (pg == &_hk_page_empty) return NULL;
    set_current(h, cls, &_hk_page_empty);
    pg->used--; /* the bias */
    return pg;
}

void _hk_slab_retire(hk_heap_t *h, hk_page_t *pg) {
    hk_assert(h->current[pg->size_class] != pg && pg->used == 0);
    hk_store_relaxed(&pg->owner, 0);
    if (pg->queued) _hk_queue_remove(&h->partial[pg->size_class], pg);
    pg->free = NULL;
    _hk_buddy_free(h, pg);
}

void _hk_slab_after_free_fast(hk_page_t *pg) {
    _hk_slab_after_free(hk_chunk_of_page(pg)->h.heap, pg);
}

void _hk_slab_after_free(hk_heap_t *h, hk_page_t *pg) {
    if (h->current[pg->size_class] == pg) return; /* current slabs stay put */
    hk_page_queue_t *q = &h->partial[pg->size_class];
    /* An empty slab goes back to the buddy, unless it is the only slab its
     * class could use next: retiring it then means carving a new one
     * moments later (a thread draining frees from a consumer empties and
     * refills slabs all the time). Collect retires such spares. */
    bool alone = q->first == NULL || (q->first == pg && pg->next == NULL);
    if (pg->used == 0 && !alone) {
        _hk_slab_retire(h, pg);
        return;
    } else if (!pg->queued) {
        _hk_queue_push(&h->partial[pg->size_class], pg);
    }
    hk_store_relaxed(&pg->owner, h->owner_tid); /* current or queued from now on */
}

void _hk_slab_free(hk_heap_t *h, hk_page_t *pg, hk_block_t *b) {
    hk_chunk_t *c = hk_chunk_of_page(pg);
    if (hk_unlikely(!_hk_slab_valid_block(c, pg, b))) _hk_fatal("free", "invalid pointer", b);
#if HK_SECURE
    /* Secure: a carved block that is not live is free already (or was
     * never handed out): a double free wherever it sits on the list. The
     * caller checked the pending bit (a drained block has it cleared). */
    hk_block_bits_t *w = hk_bits_of(c, b);
    uint64_t m = hk_bit_of(b), live = hk_load_relaxed(&w->live);
    if (hk_unlikely((live & m) == 0)) _hk_fatal("free", "double free", b);
    hk_store_relaxed(&w->live, live & ~m);
    hk_asan_poison(b, hk_slab_block_size(pg)); /* ASan: free blocks are poisoned whole */
    hk_link_write(b, hk_link_encode(c, b, pg->free));
#else
    if (hk_unlikely(b == pg->free)) _hk_fatal("free", "double free", b);
    hk_asan_poison(b, hk_slab_block_size(pg)); /* ASan: free blocks are poisoned whole */
    hk_link_write(b, pg->free);
#endif
    pg->free = b;
    if (--pg->used == 0 || hk_load_relaxed(&pg->owner) != h->owner_tid || h->owner_tid == 0)
        _hk_slab_after_free(h, pg);
}
