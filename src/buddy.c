/* buddy.c: blocks of pages inside a heap's chunks.
 *
 * Owns: the binary buddy allocator of each heap: its free lists (one per
 * order, across all its chunks), splitting, merging, exact-size trimming,
 * in-place growth and shrinking, and the delayed decommit of free blocks.
 * Calls: chunk.c (new chunks, giving fully free chunks back), os.c
 * (decommit).
 * Threads: everything here runs on the heap's owner thread.
 *
 * All bookkeeping lives in the page descriptors, never in the free memory
 * itself, so free and decommitted blocks are never touched (no faults, no
 * RSS). A block of order k starts at a page index that is a multiple of
 * 2^k; its buddy is found by flipping bit k of the index. Invariant: a
 * descriptor has kind HK_PAGE_FREE exactly when it heads a free block on
 * the heap's list of its order.
 *
 * Exact allocation: a request of n pages takes a block of 2^k >= n pages and
 * gives the tail [n, 2^k) back at once as maximal aligned pieces (as Linux's
 * alloc_pages_exact does), so a 5-page slab wastes nothing instead of 3
 * pages. Freeing n pages frees the same pieces, which merge as far as their
 * buddies are free.
 *
 * Under AddressSanitizer (asan.h) free pages are poisoned: a block's pages
 * are poisoned when it is freed or shrunk, and a whole chunk's data when it
 * is reset by hk_heap_destroy; taking pages leaves them poisoned (a slab
 * keeps its free blocks so, a medium block unpoisons what it hands out).
 * Only the shadow is written, never the pages themselves.
 */
#include "internal/internal.h"

static inline unsigned ceil_log2(size_t n) {
    return n <= 1 ? 0 : 64u - (unsigned)__builtin_clzl(n - 1);
}
static inline unsigned floor_log2(size_t n) {
    return 63u - (unsigned)__builtin_clzl(n);
}

/* ---- Free lists ----------------------------------------------------------- */

/* Committed blocks go to the front of their list (LIFO: the most recently
 * freed first, warm in the caches), decommitted ones to the back, so a
 * heap whose live set churns reuses the pages it holds instead of faulting
 * in fresh ones while committed free pages wait for the decommit delay.
 * The first page's flag stands for the block: purges decommit whole runs
 * of free blocks, and a merge of a committed and a decommitted buddy is
 * taken apart again by the split (_hk_buddy_alloc keeps the committed
 * half). */
static void list_push(hk_chunk_t *c, hk_page_t *pg, unsigned order, uint64_t when) {
    pg->kind = HK_PAGE_FREE;
    pg->order = (uint8_t)order;
    pg->freed_at = when;
    hk_page_t *first = c->h.free_blocks[order];
    if (first == NULL || pg->committed) {
        pg->prev = NULL;
        pg->next = first;
        if (first) first->prev = pg;
        else c->h.free_last[order] = pg;
        c->h.free_blocks[order] = pg;
    } else {
        hk_page_t *last = c->h.free_last[order];
        pg->next = NULL;
        pg->prev = last;
        last->next = pg;
        c->h.free_last[order] = pg;
    }
    c->h.free_mask |= (uint16_t)(1u << order);
}

static void list_remove(hk_chunk_t *c, hk_page_t *pg) {
    if (pg->prev) pg->prev->next = pg->next;
    else c->h.free_blocks[pg->order] = pg->next;
    if (pg->next) pg->next->prev = pg->prev;
    else c->h.free_last[pg->order] = pg->prev;
    if (c->h.free_blocks[pg->order] == NULL) c->h.free_mask &= (uint16_t)~(1u << pg->order);
    pg->next = pg->prev = NULL;
    pg->kind = HK_PAGE_INNER;
}

static bool chunk_is_free(const hk_chunk_t *c) {
    return c->h.free_mask == (1u << HK_MAX_ORDER);
}

/* ---- Chunks of a heap ------------------------------------------------------ */

void _hk_buddy_add_chunk(hk_heap_t *h, hk_chunk_t *c) {
    c->h.heap = h;
    atomic_store_explicit(&c->h.owner_tid, h->owner_tid, memory_order_relaxed);
    /* Appended: the list runs from oldest to newest. */
    c->h.next = NULL;
    c->h.prev = h->chunks_last;
    if (h->chunks_last) h->chunks_last->h.next = c;
    else h->chunks = c;
    h->chunks_last = c;
    h->nchunks++;
    h->committed_bytes += (size_t)c->h.committed_pages << HK_PAGE_SHIFT;
    for (unsigned o = 0; o < HK_ORDERS; o++) c->h.free_blocks[o] = c->h.free_last[o] = NULL;
    c->h.free_mask = 0;
    list_push(c, &c->pages[0], HK_MAX_ORDER, _hk_os_now_ms());
}

/* Takes a fully free chunk off the heap and gives it to the chunk cache. */
static void release_chunk(hk_heap_t *h, hk_chunk_t *c) {
    hk_page_t *pg = &c->pages[0];
    list_remove(c, pg);
    pg->kind = HK_PAGE_FREE; /* the cached state: page 0 heads the chunk */
    pg->order = HK_MAX_ORDER;
    if (c->h.prev) c->h.prev->h.next = c->h.next;
    else h->chunks = c->h.next;
    if (c->h.next) c->h.next->h.prev = c->h.prev;
    else h->chunks_last = c->h.prev;
    c->h.next = c->h.prev = NULL;
    h->nchunks--;
    h->committed_bytes -= (size_t)c->h.committed_pages << HK_PAGE_SHIFT;
    _hk_chunk_free(c);
}

void _hk_buddy_release_free_chunks(hk_heap_t *h, size_t keep) {
    size_t kept = 0;
    for (hk_chunk_t *c = h->chunks, *next; c; c = next) {
        next = c->h.next;
        if (!chunk_is_free(c)) continue;
        if (kept < keep) kept++;
        else release_chunk(h, c);
    }
}

void _hk_buddy_reset_chunk(hk_chunk_t *c) {
    for (unsigned o = 0; o < HK_ORDERS; o++) c->h.free_blocks[o] = c->h.free_last[o] = NULL;
    c->h.free_mask = 0;
    for (size_t i = 0; i < HK_CHUNK_PAGES; i++) {
        hk_page_t *pg = &c->pages[i];
#if HK_SECURE
        /* Its live blocks and queued frees go with it: the bits of a slab
         * (live and pending) and of a medium block's start (pending). */
        if (pg->kind == HK_PAGE_SLAB) _hk_secure_clear_bits(c, i, pg->npages);
        else if (pg->kind == HK_PAGE_MEDIUM) _hk_secure_clear_bits(c, i, 0);
#endif
        pg->kind = HK_PAGE_INNER;
        pg->head_off = 0;
        hk_store_relaxed(&pg->owner, 0);
        pg->next = pg->prev = NULL;
    }
    c->pages[0].kind = HK_PAGE_FREE;
    c->pages[0].order = HK_MAX_ORDER;
    c->h.used_pages = 0;
    hk_asan_poison(hk_chunk_data(c), HK_CHUNK_SIZE); /* ASan: its blocks end here */
}

/* ---- Freeing ---------------------------------------------------------------- */

/* Frees the aligned piece of 2^order pages at index i, merging upward. */
static void free_piece(hk_heap_t *h, hk_chunk_t *c, size_t i, unsigned order,
                       uint64_t now) {
    uint64_t since = now;
    while (order < HK_MAX_ORDER) {
        hk_page_t *buddy = &c->pages[i ^ ((size_t)1 << order)];
        if (buddy->kind != HK_PAGE_FREE || buddy->order != order) break;
        list_remove(c, buddy);
        /* The merged block keeps the older stamp: it holds memory free since
         * then. Stamping it `now` would let a busy chunk, whose blocks merge
         * all the time, keep its free memory committed for ever. */
        if (buddy->freed_at < since) since = buddy->freed_at;
        i &= ~((size_t)1 << order);
        order++;
    }
    list_push(c, &c->pages[i], order, since);
    if (order == HK_MAX_ORDER) {
        /* The chunk is free again: one spare is enough for a heap. */
        for (hk_chunk_t *o = h->chunks; o; o = o->h.next)
            if (o != c && chunk_is_free(o)) {
                release_chunk(h, c);
                return;
            }
    }
}

/* Frees pages [start, end) of chunk c as maximal aligned pieces. */
static void free_range(hk_heap_t *h, hk_chunk_t *c, size_t start, size_t end,
                       uint64_t now) {
    while (start < end) {
        unsigned align = start ? (unsigned)__builtin_ctzl(start) : HK_MAX_ORDER;
        unsigned fit = floor_log2(end - start);
        unsigned order = align < fit ? align : fit;
        free_piece(h, c, start, order, now);
        start += (size_t)1 << order;
    }
}

/* Pages [start, end) leave an allocated block: clear their back links. */
static void unmark_range(hk_chunk_t *c, size_t start, size_t end) {
    for (size_t i = start; i < end; i++) c->pages[i].head_off = 0;
    c->h.used_pages -= (uint32_t)(end - start);
}

void _hk_buddy_free(hk_heap_t *h, hk_page_t *head) {
    hk_chunk_t *c = hk_chunk_of_page(head);
    size_t idx = (size_t)(head - c->pages);
    size_t n = head->npages;
    hk_assert(head->kind == HK_PAGE_SLAB || head->kind == HK_PAGE_MEDIUM);
    head->kind = HK_PAGE_INNER;
    head->npages = 0;
    hk_asan_poison(hk_page_start(c, head), n << HK_PAGE_SHIFT);
    unmark_range(c, idx, idx + n);
    free_range(h, c, idx, idx + n, _hk_os_now_ms());
}

void _hk_buddy_shrink(hk_heap_t *h, hk_page_t *head, size_t npages) {
    hk_chunk_t *c = hk_chunk_of_page(head);
    size_t idx = (size_t)(head - c->pages);
    size_t n = head->npages;
    if (npages == 0 || npages >= n) return;
    head->npages = (uint16_t)npages;
    hk_asan_poison(hk_page_start(c, head) + (npages << HK_PAGE_SHIFT), (n - npages) << HK_PAGE_SHIFT);
    unmark_range(c, idx + npages, idx + n);
    free_range(h, c, idx + npages, idx + n, _hk_os_now_ms());
}

/* ---- Allocating --------------------------------------------------------------- */

/* Pages [start, end) join the block headed at `head_idx`. Returns true when
 * none of them was committed (so they read zero). */
static bool mark_range(hk_heap_t *h, hk_chunk_t *c, size_t head_idx, size_t start,
                       size_t end) {
    size_t fresh = 0;
    for (size_t i = start; i < end; i++) {
        hk_page_t *pg = &c->pages[i];
        pg->head_off = (uint16_t)((i - head_idx) * sizeof(hk_page_t));
        if (!pg->committed) {
            pg->committed = 1;
            fresh++;
        }
    }
    c->h.used_pages += (uint32_t)(end - start);
    c->h.committed_pages += (uint32_t)fresh;
    h->committed_bytes += fresh << HK_PAGE_SHIFT;
    if (h->committed_bytes > h->c.committed_peak) h->c.committed_peak = h->committed_bytes;
    return fresh == end - start;
}

/* A block of npages pages at the start of a run of adjacent free blocks,
 * in a chunk that is in use, whatever the run's alignment; NULL when no
 * run is long enough. The buddy needs an aligned free block of 2^k >= n
 * pages, which a churning mix of block sizes breaks up (free pages in
 * pieces between live blocks) long before the pages run out: glibc's
 * best fit over coalesced neighbours finds these runs, and so does this,
 * before a new chunk is taken. Freeing the block later frees maximal
 * aligned pieces, as for any block. A walk of the chunks' block heads: a
 * slow path, taken only where the alternative is fresh memory. */
static hk_page_t *take_run(hk_heap_t *h, size_t npages, bool *zeroed) {
    for (hk_chunk_t *c = h->chunks; c; c = c->h.next) {
        if (chunk_is_free(c) || HK_CHUNK_PAGES - c->h.used_pages < npages) continue;
        size_t start = 0, len = 0;
        for (size_t i = 0; i < HK_CHUNK_PAGES;) {
            hk_page_t *pg = &c->pages[i];
            size_t n = pg->kind == HK_PAGE_FREE ? (size_t)1 << pg->order
                       : pg->kind == HK_PAGE_INNER || pg->npages == 0 ? 1 : pg->npages;
            if (pg->kind != HK_PAGE_FREE) {
                len = 0;
            } else {
                if (len == 0) start = i;
                len += n;
                if (len >= npages) {
                    /* Blocks [start, i + n) leave the lists; what the last
                     * one holds past the request goes back. */
                    uint64_t when = pg->freed_at;
                    for (size_t t = start; t <= i;) {
                        hk_page_t *b = &c->pages[t];
                        t += (size_t)1 << b->order;
                        list_remove(c, b);
                    }
                    hk_page_t *head = &c->pages[start];
                    head->npages = (uint16_t)npages;
                    *zeroed = mark_range(h, c, start, start, start + npages);
                    free_range(h, c, start + npages, i + n, when);
                    return head;
                }
            }
            i += n;
        }
    }
    return NULL;
}

hk_page_t *_hk_buddy_alloc(hk_heap_t *h, size_t npages, unsigned min_order,
                           bool *zeroed) {
    unsigned k = ceil_log2(npages);
    if (k < min_order) k = min_order;
    if (npages == 0 || k > HK_MAX_ORDER) return NULL;
    /* Best fit across chunks, committed memory first: the smallest free
     * block that fits and holds committed pages (the head of its list, see
     * list_push), in the oldest chunk among equals; only when no such block
     * exists, the smallest that fits at all. Reusing pages that hold RSS
     * already costs no page faults and no growth of the peak, where a
     * fresh block would add both while the committed one waits for the
     * decommit delay. Otherwise large free blocks stay whole and young
     * chunks stay empty, so they can be decommitted and given back. */
    hk_chunk_t *c = NULL, *cc = NULL;
    unsigned j = HK_ORDERS, jc = HK_ORDERS;
    for (hk_chunk_t *t = h->chunks; t; t = t->h.next) {
        unsigned fit = t->h.free_mask >> k;
        if (fit == 0) continue;
        unsigned o = k + (unsigned)__builtin_ctz(fit);
        if (o < j) {
            j = o;
            c = t;
        }
        for (unsigned rest = fit; rest; rest &= rest - 1) {
            unsigned q = k + (unsigned)__builtin_ctz(rest);
            if (q >= jc) break;
            if (t->h.free_blocks[q]->committed) {
                jc = q;
                cc = t;
                break;
            }
        }
        if (jc == k) break;
    }
    if (cc != NULL) {
        c = cc;
        j = jc;
    }
    /* No aligned block fits but a fresh chunk (or a fully free one with no
     * committed memory): adjacent free blocks may hold the request. */
    if (min_order == 0 && (c == NULL || (j == HK_MAX_ORDER && !c->h.free_blocks[j]->committed))) {
        hk_page_t *run = take_run(h, npages, zeroed);
        if (run) return run;
    }
    if (c == NULL) {
        c = _hk_chunk_alloc();
        if (c == NULL) return NULL;
        _hk_buddy_add_chunk(h, c);
        j = HK_MAX_ORDER;
    }
    hk_page_t *pg = c->h.free_blocks[j];
    uint64_t when = pg->freed_at;
    list_remove(c, pg);
    /* Split: one half of each step goes back to the lists; the lower one
     * is kept unless only the upper one holds committed memory. */
    while (j > k) {
        j--;
        hk_page_t *upper = pg + ((size_t)1 << j);
        if (!pg->committed && upper->committed) {
            list_push(c, pg, j, when);
            pg = upper;
        } else {
            list_push(c, upper, j, when);
        }
    }
    /* Trim: the tail past npages goes back as maximal aligned pieces; their
     * buddies are all inside the block just taken, so none can merge. */
    size_t end = (size_t)1 << k;
    for (size_t i = npages; i < end;) {
        unsigned o = (unsigned)__builtin_ctzl(i);
        list_push(c, pg + i, o, when);
        i += (size_t)1 << o;
    }
    size_t idx = (size_t)(pg - c->pages);
    pg->npages = (uint16_t)npages;
    *zeroed = mark_range(h, c, idx, idx, idx + npages);
    return pg;
}

bool _hk_buddy_grow(hk_heap_t *h, hk_page_t *head, size_t npages) {
    hk_chunk_t *c = hk_chunk_of_page(head);
    size_t idx = (size_t)(head - c->pages);
    size_t old_end = idx + head->npages, new_end = idx + npages;
    if (new_end <= old_end) return true;
    if (new_end > HK_CHUNK_PAGES) return false;
    /* The pages after the block must be covered by free blocks; the first
     * one starts right at old_end since blocks never overlap. */
    size_t s = old_end;
    while (s < new_end) {
        hk_page_t *pg = &c->pages[s];
        if (pg->kind != HK_PAGE_FREE) return false;
        s += (size_t)1 << pg->order;
    }
    uint64_t now = _hk_os_now_ms();
    for (size_t t = old_end; t < new_end;) {
        hk_page_t *pg = &c->pages[t];
        size_t len = (size_t)1 << pg->order;
        list_remove(c, pg);
        t += len;
    }
    head->npages = (uint16_t)npages;
    mark_range(h, c, idx, old_end, new_end);
    /* The last free block may reach past the new end: give that part back. */
    free_range(h, c, new_end, s, now);
    return true;
}

/* ---- Decommit ------------------------------------------------------------------ */

/* Decommits pages [start, end) of chunk c, all free; the flags and counts
 * follow what the OS did. With OS pages larger than ours (16/64 KiB on some
 * aarch64 kernels) only the whole OS pages inside the run are decommitted:
 * the flag "uncommitted" promises calloc zeroed memory, so it must not be
 * set on a page the OS left alone. */
static void decommit_run(hk_heap_t *h, hk_chunk_t *c, size_t start, size_t end) {
    size_t per_os = _hk_os_page_size > HK_PAGE_SIZE ? _hk_os_page_size >> HK_PAGE_SHIFT : 1;
    /* The chunk's data is 4 MiB aligned, so page indices round like addresses. */
    start = (start + per_os - 1) / per_os * per_os;
    end = end / per_os * per_os;
    if (end <= start) return;
    size_t committed = 0;
    for (size_t p = start; p < end; p++) committed += c->pages[p].committed;
    if (committed == 0) return;
    if (_hk_os_decommit(hk_chunk_data(c) + (start << HK_PAGE_SHIFT),
                        (end - start) << HK_PAGE_SHIFT) != 0)
        return; /* still committed: the flags stay true */
    for (size_t p = start; p < end; p++) c->pages[p].committed = 0;
    c->h.committed_pages -= (uint32_t)committed;
    h->committed_bytes -= committed << HK_PAGE_SHIFT;
    /* The blocks now decommitted go behind the committed ones of their
     * lists (list_push). */
    for (size_t p = start; p < end;) {
        hk_page_t *pg = &c->pages[p];
        if (pg->kind != HK_PAGE_FREE) {
            p++;
            continue;
        }
        unsigned order = pg->order;
        uint64_t since = pg->freed_at;
        list_remove(c, pg);
        list_push(c, pg, order, since);
        p += (size_t)1 << order;
    }
}

/* Runs of free pages shorter than this are decommitted only when forced:
 * their madvise would cost more than the memory they hold. */
#define PURGE_MIN_PAGES 4 /* 16 KiB */

/* Walks each chunk's blocks in address order and decommits every run of
 * adjacent free blocks that have all waited for the delay, with one
 * madvise per run. Adjacent free blocks that are not buddies (the pieces
 * exact allocation leaves) cannot merge, but they can be purged together,
 * so small pieces do not hold RSS for ever. */
void _hk_buddy_purge(hk_heap_t *h, uint64_t now, bool force) {
    uint64_t delay = (uint64_t)_hk_options.decommit_delay_ms;
    size_t min_pages = force ? 1 : PURGE_MIN_PAGES;
    for (hk_chunk_t *c = h->chunks; c; c = c->h.next) {
        if (c->h.committed_pages == c->h.used_pages) continue; /* nothing free is committed */
        size_t run = 0; /* start of the current run of due free blocks */
        bool in_run = false;
        for (size_t i = 0; i <= HK_CHUNK_PAGES;) {
            hk_page_t *pg = i < HK_CHUNK_PAGES ? &c->pages[i] : NULL;
            bool due = pg && pg->kind == HK_PAGE_FREE && (force || now - pg->freed_at >= delay);
            if (due && !in_run) {
                run = i;
                in_run = true;
            } else if (!due && in_run) {
                if (i - run >= min_pages) decommit_run(h, c, run, i);
                in_run = false;
            }
            if (pg == NULL) break;
            i += pg->kind == HK_PAGE_FREE ? (size_t)1 << pg->order
                 : pg->kind == HK_PAGE_INNER ? 1 : pg->npages;
        }
    }
}
