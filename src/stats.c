/* stats.c: statistics of a heap and of the process, and their printer.
 *
 * Owns: computing hk_stats_t, publishing a heap's figures for other
 * threads, the process-wide peaks, and the one printer for text and JSON.
 * Calls: heap.c (the list of heaps), chunk.c and os.c (cache and mapping
 * figures).
 * Threads: a heap's exact figures are computed by its owner. Other threads
 * see the figures the owner last published (on its slow paths, at thread
 * exit, and whenever it asks for statistics), so process-wide numbers for
 * running threads are as of their last slow path.
 *
 * The fast paths keep one counter (mallocs per direct slot, a plain
 * increment; the slow paths count per class);
 * live blocks come from the slabs' `used` counts, by a walk of the heap's
 * block heads, so publishing walks too and is rate-limited (heap.c).
 * Peaks are therefore sampled: at every publish and statistics call.
 */
#include <inttypes.h>

#include "internal/internal.h"

/* Process-wide sums of the published figures, for the peaks. */
static _Atomic(size_t) proc_live, proc_live_peak, proc_committed, proc_committed_peak;
/* Counts of heaps that no longer exist, so process totals never go back. */
static _Atomic(uint64_t) gone_mallocs, gone_frees;

static void raise_peak(_Atomic(size_t) *peak, size_t v) {
    size_t p = hk_load_relaxed(peak);
    while (v > p && !atomic_compare_exchange_weak_explicit(peak, &p, v, memory_order_relaxed,
                                                           memory_order_relaxed)) {
    }
}

/* The heap's figures (owner only): counters, plus a walk of its blocks
 * head to head for what only the slabs know (live blocks are the sum of
 * `used`, which the fast paths keep anyway). */
static void heap_counters(hk_heap_t *h, hk_stats_t *s) {
    memset(s, 0, sizeof *s);
    for (hk_chunk_t *c = h->chunks; c; c = c->h.next) {
        for (size_t i = 0; i < HK_CHUNK_PAGES;) {
            hk_page_t *pg = &c->pages[i];
            if (pg->kind == HK_PAGE_FREE) {
                i += (size_t)1 << pg->order;
            } else if (pg->kind == HK_PAGE_SLAB) {
                hk_class_stats_t *k = &s->classes[pg->size_class];
                k->live_blocks += pg->used - (h->current[pg->size_class] == pg); /* the bias */
                k->slabs++;
                k->slab_bytes += (size_t)pg->npages << HK_PAGE_SHIFT;
                i += pg->npages;
            } else if (pg->kind == HK_PAGE_MEDIUM) {
                i += pg->npages;
            } else {
                i++; /* cannot happen on a consistent heap: heads follow heads */
            }
        }
    }
    for (unsigned i = 0; i < _hk_class_count; i++) {
        size_t bs = _hk_classes[i].block_size;
        s->classes[i].block_size = bs;
        s->live_bytes += s->classes[i].live_blocks * bs;
        s->live_blocks += s->classes[i].live_blocks;
        s->mallocs += h->mallocs[i];
        for (unsigned g = _hk_classes[i].direct_first; g <= _hk_classes[i].direct_last; g++)
            s->mallocs += h->direct[g].mallocs;
    }
    uint64_t huge_m = hk_load_relaxed(&h->huge_mallocs), huge_f = hk_load_relaxed(&h->huge_frees);
    s->huge_live_bytes = hk_load_relaxed(&h->huge_live_bytes);
    s->live_bytes += h->c.medium_live_bytes + s->huge_live_bytes;
    s->live_blocks += (h->c.medium_mallocs - h->c.medium_frees) + (huge_m - huge_f);
    s->mallocs += h->c.medium_mallocs + huge_m;
    s->frees = s->mallocs - s->live_blocks;
    s->committed_bytes = h->committed_bytes + s->huge_live_bytes;
    s->mapped_bytes = h->nchunks * (HK_META_SIZE + HK_CHUNK_SIZE + HK_GUARD_SIZE) + s->huge_live_bytes;
    if (s->live_bytes > h->c.live_peak) h->c.live_peak = s->live_bytes;
    if (s->committed_bytes > h->c.committed_peak) h->c.committed_peak = s->committed_bytes;
    if (s->mapped_bytes > h->c.mapped_peak) h->c.mapped_peak = s->mapped_bytes;
    s->live_bytes_peak = h->c.live_peak;
    s->committed_peak = h->c.committed_peak;
    s->mapped_peak = h->c.mapped_peak;
    s->heaps = 1;
}

void _hk_heap_stats_exact(hk_heap_t *h, hk_stats_t *s) { heap_counters(h, s); }

void _hk_heap_publish(hk_heap_t *h) {
    hk_stats_t s;
    heap_counters(h, &s);
    hk_heap_published_t *p = &h->pub;
    size_t old_live = hk_load_relaxed(&p->live_bytes);
    size_t old_committed = hk_load_relaxed(&p->committed);
    hk_store_relaxed(&p->live_bytes, s.live_bytes);
    hk_store_relaxed(&p->live_peak, s.live_bytes_peak);
    hk_store_relaxed(&p->committed, s.committed_bytes);
    hk_store_relaxed(&p->mapped, s.mapped_bytes);
    hk_store_relaxed(&p->mallocs, s.mallocs);
    hk_store_relaxed(&p->frees, s.frees);
    hk_store_relaxed(&p->live_blocks, s.live_blocks);
    hk_store_relaxed(&p->huge_live_bytes, s.huge_live_bytes);
    for (unsigned i = 0; i < _hk_class_count; i++)
        hk_store_relaxed(&p->class_live[i], s.classes[i].live_blocks);
    size_t live = hk_add_relaxed(&proc_live, s.live_bytes - old_live) + (s.live_bytes - old_live);
    raise_peak(&proc_live_peak, live);
    size_t committed = hk_add_relaxed(&proc_committed, s.committed_bytes - old_committed) +
                       (s.committed_bytes - old_committed);
    raise_peak(&proc_committed_peak, committed);
}

void _hk_stats_heap_gone(hk_heap_t *h) {
    hk_sub_relaxed(&proc_live, hk_load_relaxed(&h->pub.live_bytes));
    hk_sub_relaxed(&proc_committed, hk_load_relaxed(&h->pub.committed));
    hk_add_relaxed(&gone_mallocs, hk_load_relaxed(&h->pub.mallocs));
    hk_add_relaxed(&gone_frees, hk_load_relaxed(&h->pub.frees));
}

void hk_heap_stats(hk_heap_t *h, hk_stats_t *out) {
    if (h == NULL) h = _hk_heap_get_default();
    if (h == NULL) {
        memset(out, 0, sizeof *out);
        return;
    }
    if (h->owner_tid == hk_thread_id()) {
        _hk_heap_drain_remote(h);
        _hk_heap_stats_exact(h, out);
        _hk_heap_publish(h);
        return;
    }
    /* Another thread's heap: its published figures. */
    memset(out, 0, sizeof *out);
    hk_heap_published_t *p = &h->pub;
    out->live_bytes = hk_load_relaxed(&p->live_bytes);
    out->live_bytes_peak = hk_load_relaxed(&p->live_peak);
    out->committed_bytes = out->committed_peak = hk_load_relaxed(&p->committed);
    out->mapped_bytes = out->mapped_peak = hk_load_relaxed(&p->mapped);
    out->mallocs = hk_load_relaxed(&p->mallocs);
    out->frees = hk_load_relaxed(&p->frees);
    out->live_blocks = hk_load_relaxed(&p->live_blocks);
    out->huge_live_bytes = hk_load_relaxed(&p->huge_live_bytes);
    for (unsigned i = 0; i < _hk_class_count; i++) {
        out->classes[i].block_size = _hk_classes[i].block_size;
        out->classes[i].live_blocks = hk_load_relaxed(&p->class_live[i]);
    }
    out->heaps = 1;
}

/* Adds one heap's published figures to the process total. */
static void add_published(hk_heap_t *h, void *arg) {
    hk_stats_t *s = arg;
    hk_heap_published_t *p = &h->pub;
    s->live_bytes += hk_load_relaxed(&p->live_bytes);
    s->committed_bytes += hk_load_relaxed(&p->committed);
    s->mallocs += hk_load_relaxed(&p->mallocs);
    s->frees += hk_load_relaxed(&p->frees);
    s->live_blocks += hk_load_relaxed(&p->live_blocks);
    s->huge_live_bytes += hk_load_relaxed(&p->huge_live_bytes);
    for (unsigned i = 0; i < _hk_class_count; i++)
        s->classes[i].live_blocks += hk_load_relaxed(&p->class_live[i]);
    s->heaps++;
}

/* Publishes every heap the caller owns, so its own explicit heaps count
 * exactly in the process figures. */
static void publish_if_mine(hk_heap_t *h, void *arg) {
    if (h->owner_tid == *(uintptr_t *)arg) _hk_heap_publish(h);
}

void hk_stats(hk_stats_t *out) {
    _hk_init();
    uintptr_t me = hk_thread_id();
    _hk_heap_foreach(publish_if_mine, &me);
    hk_heap_t *own = _hk_tls_heap;
    hk_stats_t mine;
    if (own != &_hk_heap_empty) {
        _hk_heap_drain_remote(own);
        _hk_heap_stats_exact(own, &mine);
        _hk_heap_publish(own);
    }
    memset(out, 0, sizeof *out);
    _hk_heap_foreach(add_published, out);
    for (unsigned i = 0; i < _hk_class_count; i++) {
        out->classes[i].block_size = _hk_classes[i].block_size;
        if (own != &_hk_heap_empty) {
            out->classes[i].slabs = mine.classes[i].slabs;
            out->classes[i].slab_bytes = mine.classes[i].slab_bytes;
        }
    }
    out->mallocs += hk_load_relaxed(&gone_mallocs);
    out->frees += hk_load_relaxed(&gone_frees);
    out->committed_bytes += _hk_chunk_cache_committed();
    out->mapped_bytes = _hk_os_mapped();
    out->mapped_peak = _hk_os_mapped_peak();
    raise_peak(&proc_live_peak, out->live_bytes);
    raise_peak(&proc_committed_peak, out->committed_bytes);
    out->live_bytes_peak = hk_load_relaxed(&proc_live_peak);
    out->committed_peak = hk_load_relaxed(&proc_committed_peak);
}

/* ---- Printer ---------------------------------------------------------------- */

void hk_stats_print(FILE *f, bool json) {
    hk_stats_t s;
    hk_stats(&s);
    if (json) {
        fprintf(f,
                "{\"live_bytes\":%zu,\"live_bytes_peak\":%zu,\"committed_bytes\":%zu,"
                "\"committed_peak\":%zu,\"mapped_bytes\":%zu,\"mapped_peak\":%zu,"
                "\"mallocs\":%" PRIu64 ",\"frees\":%" PRIu64 ",\"live_blocks\":%zu,"
                "\"huge_live_bytes\":%zu,\"heaps\":%zu,\"classes\":[",
                s.live_bytes, s.live_bytes_peak, s.committed_bytes, s.committed_peak,
                s.mapped_bytes, s.mapped_peak, s.mallocs, s.frees, s.live_blocks,
                s.huge_live_bytes, s.heaps);
        for (unsigned i = 0; i < _hk_class_count; i++) {
            fprintf(f, "%s{\"block_size\":%zu,\"live_blocks\":%zu,\"slabs\":%zu,\"slab_bytes\":%zu}",
                    i ? "," : "", s.classes[i].block_size, s.classes[i].live_blocks,
                    s.classes[i].slabs, s.classes[i].slab_bytes);
        }
        fprintf(f, "]}\n");
        return;
    }
    fprintf(f, "heapkit statistics (%zu heaps)\n", s.heaps);
    fprintf(f, "  %-12s %14s %14s\n", "", "now", "peak");
    fprintf(f, "  %-12s %14zu %14zu\n", "live bytes", s.live_bytes, s.live_bytes_peak);
    fprintf(f, "  %-12s %14zu %14zu\n", "committed", s.committed_bytes, s.committed_peak);
    fprintf(f, "  %-12s %14zu %14zu\n", "mapped", s.mapped_bytes, s.mapped_peak);
    fprintf(f, "  mallocs %" PRIu64 ", frees %" PRIu64 ", live blocks %zu (huge: %zu bytes)\n",
            s.mallocs, s.frees, s.live_blocks, s.huge_live_bytes);
    if (s.committed_bytes)
        fprintf(f, "  efficiency (live / committed): %.1f%%\n",
                100.0 * (double)s.live_bytes / (double)s.committed_bytes);
    fprintf(f, "  %10s %12s %8s %12s\n", "class", "live blocks", "slabs", "slab bytes");
    for (unsigned i = 0; i < _hk_class_count; i++) {
        if (!s.classes[i].live_blocks && !s.classes[i].slabs) continue;
        fprintf(f, "  %10zu %12zu %8zu %12zu\n", s.classes[i].block_size,
                s.classes[i].live_blocks, s.classes[i].slabs, s.classes[i].slab_bytes);
    }
}
