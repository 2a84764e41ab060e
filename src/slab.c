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
    pg->block_size = k->block_size;
    pg->capacity = k->capacity;
    pg->initialized = 0;
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
    size_t bs = pg->block_size;
    uint8_t *first = hk_page_start(hk_chunk_of_page(pg), pg) + (size_t)pg->initialized * bs;
    /* In address order, so a fresh slab hands out ascending addresses. */
    uint8_t *b = first;
    for (size_t i = 1; i < n; i++, b += bs) ((hk_block_t *)b)->next = (hk_block_t *)(b + bs);
    ((hk_block_t *)b)->next = pg->free;
    pg->free = (hk_block_t *)first;
    pg->initialized = (uint16_t)(pg->initialized + n);
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

bool _hk_slab_valid_block(const hk_chunk_t *c, const hk_page_t *pg, const void *p) {
    size_t off = (size_t)((const uint8_t *)p - hk_page_start(c, pg));
    return off % pg->block_size == 0 && off / pg->block_size < pg->initialized;
}

void _hk_slab_retire(hk_heap_t *h, hk_page_t *pg) {
    hk_store_relaxed(&pg->owner, 0);
    if (pg->queued) _hk_queue_remove(&h->partial[pg->size_class], pg);
    if (h->current[pg->size_class] == pg) h->current[pg->size_class] = &_hk_page_empty;
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
    if (hk_unlikely(b == pg->free)) _hk_fatal("free", "double free", b);
    hk_block_t *head = pg->free;
    b->next = head;
    pg->free = b;
    if (--pg->used == 0 || hk_load_relaxed(&pg->owner) != h->owner_tid || h->owner_tid == 0)
        _hk_slab_after_free(h, pg);
}
