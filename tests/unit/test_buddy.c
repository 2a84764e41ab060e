// Unit tests of the buddy allocator (src/buddy.c) through its internal API.
// ctest-args: 20000
#include "hk_test.h"
#include "internal/internal.h"

/* Checks every invariant of the heap's buddy state; returns failures. */
static int check_heap(hk_heap_t *h, size_t *free_pages_out) {
    int bad = 0;
    size_t free_heads = 0, listed = 0, free_pages = 0;
    for (hk_chunk_t *c = h->chunks; c; c = c->h.next) {
        for (unsigned o = 0; o <= HK_MAX_ORDER; o++) {
            /* the mask says exactly which lists are non-empty */
            if (((c->h.free_mask >> o) & 1) != (c->h.free_blocks[o] != NULL)) bad++;
            hk_page_t *last = NULL;
            for (hk_page_t *pg = c->h.free_blocks[o]; pg; last = pg, pg = pg->next) {
                listed++;
                if (pg->prev != last) bad++; /* doubly linked */
                if (pg->kind != HK_PAGE_FREE || pg->order != o) bad++;
                if (hk_chunk_of_page(pg) != c) bad++; /* on its own chunk's list */
            }
            if (c->h.free_last[o] != last) bad++; /* the list's last block */
        }
    }
    for (hk_chunk_t *c = h->chunks; c; c = c->h.next) {
        size_t used = 0, committed = 0;
        for (size_t i = 0; i < HK_CHUNK_PAGES; i++) committed += c->pages[i].committed;
        if (committed != c->h.committed_pages) bad++;
        size_t i = 0;
        while (i < HK_CHUNK_PAGES) {
            hk_page_t *pg = &c->pages[i];
            if (pg->head_off != 0) { bad++; break; } /* a head is its own head */
            if (pg->kind == HK_PAGE_FREE) {
                size_t n = (size_t)1 << pg->order;
                free_heads++;
                free_pages += n;
                if (i % n != 0) bad++; /* naturally aligned */
                if (i + n > HK_CHUNK_PAGES) { bad++; break; }
                for (size_t k = i + 1; k < i + n; k++)
                    if (c->pages[k].kind != HK_PAGE_INNER || c->pages[k].head_off != 0) bad++;
                /* fully merged: the buddy of a free block is not a free block of the same order */
                if (pg->order < HK_MAX_ORDER) {
                    hk_page_t *b = &c->pages[i ^ n];
                    if (b->kind == HK_PAGE_FREE && b->order == pg->order) bad++;
                }
                i += n;
            } else if (pg->kind == HK_PAGE_MEDIUM || pg->kind == HK_PAGE_SLAB) {
                size_t n = pg->npages;
                if (n == 0 || i + n > HK_CHUNK_PAGES) { bad++; break; }
                for (size_t k = i + 1; k < i + n; k++)
                    if (c->pages[k].head_off != (k - i) * sizeof(hk_page_t) ||
                        c->pages[k].kind != HK_PAGE_INNER) bad++;
                used += n;
                i += n;
            } else {
                bad++; /* heads must follow heads: blocks tile the chunk */
                break;
            }
        }
        if (used != c->h.used_pages) bad++;
    }
    if (free_heads != listed) bad++;
    if (free_pages_out) *free_pages_out = free_pages;
    return bad;
}

/* The memory of an allocated block. The buddy hands out pages as they were
 * while free, poisoned in an ASan build (src/internal/asan.h); the test
 * uses them whole, as medium_alloc would use what it asked for. */
static uint8_t *block_mem(hk_page_t *pg) {
    uint8_t *mem = hk_page_start(hk_chunk_of_page(pg), pg);
    hk_asan_unpoison(mem, (size_t)pg->npages * HK_PAGE_SIZE);
    return mem;
}

typedef struct { hk_page_t *pg; size_t n; unsigned align; uint8_t tag; } live_t;

static void test_random(long ops) {
    hk_heap_t *h = hk_heap_new();
    REQUIRE(h != NULL);
    enum { MAXLIVE = 256 };
    live_t live[MAXLIVE];
    size_t nlive = 0;
    hk_rng_t r = hk_rng_seeded(1);
    int bad = 0;
    for (long op = 0; op < ops; op++) {
        if (nlive < MAXLIVE && (nlive == 0 || hk_rng_below(&r, 100) < 55)) {
            size_t n = 1 + hk_rng_below(&r, hk_rng_below(&r, 4) == 0 ? 600 : 40);
            unsigned a = (unsigned)hk_rng_below(&r, 4);
            bool zeroed;
            hk_page_t *pg = _hk_buddy_alloc(h, n, a, &zeroed);
            REQUIRE(pg != NULL);
            pg->kind = HK_PAGE_MEDIUM;
            hk_chunk_t *c = hk_chunk_of_page(pg);
            size_t idx = (size_t)(pg - c->pages);
            if (pg->npages != n) bad++;                     /* exact size */
            if (idx % ((size_t)1 << a) != 0) bad++;         /* alignment */
            uint8_t *mem = block_mem(pg);
            if (zeroed)                                     /* "zeroed" is true */
                for (size_t k = 0; k < n * HK_PAGE_SIZE; k += 512) if (mem[k]) { bad++; break; }
            uint8_t tag = (uint8_t)(op | 1);
            memset(mem, tag, n * HK_PAGE_SIZE);             /* no overlap: tags survive */
            live[nlive++] = (live_t){pg, n, a, tag};
        } else {
            size_t k = hk_rng_below(&r, nlive);
            live_t v = live[k];
            uint8_t *mem = hk_page_start(hk_chunk_of_page(v.pg), v.pg);
            for (size_t q = 0; q < v.n * HK_PAGE_SIZE; q += 256) if (mem[q] != v.tag) { bad++; break; }
            _hk_buddy_free(h, v.pg);
            live[k] = live[--nlive];
        }
        if (op % 97 == 0) bad += check_heap(h, NULL);
    }
    CHECK(bad == 0);
    /* Free everything: each chunk merges back to one free block and all but
     * one spare chunk go back to the chunk cache. */
    while (nlive) _hk_buddy_free(h, live[--nlive].pg);
    size_t free_pages;
    CHECK(check_heap(h, &free_pages) == 0);
    CHECK(h->nchunks == 1);
    CHECK(h->chunks->h.free_mask == 1u << HK_MAX_ORDER);
    CHECK(free_pages == HK_CHUNK_PAGES);
    hk_heap_destroy(h);
}

/* A 5-page request takes 5 pages, not 8: the tail goes back. */
static void test_exact(void) {
    hk_heap_t *h = hk_heap_new();
    bool z;
    hk_page_t *a = _hk_buddy_alloc(h, 5, 0, &z);
    REQUIRE(a != NULL);
    a->kind = HK_PAGE_MEDIUM;
    size_t free_pages;
    CHECK(check_heap(h, &free_pages) == 0);
    CHECK(free_pages == HK_CHUNK_PAGES - 5);
    CHECK(z); /* fresh memory */
    /* The tail went back as pieces [5] and [6,7]: they serve the next 1- and
     * 2-page requests, right after the block. */
    hk_page_t *b = _hk_buddy_alloc(h, 1, 0, &z);
    hk_page_t *c = _hk_buddy_alloc(h, 2, 0, &z);
    REQUIRE(b != NULL && c != NULL);
    b->kind = c->kind = HK_PAGE_MEDIUM;
    CHECK(b - a == 5);
    CHECK(c - a == 6);
    _hk_buddy_free(h, a);
    _hk_buddy_free(h, c);
    _hk_buddy_free(h, b);
    CHECK(check_heap(h, &free_pages) == 0);
    CHECK(free_pages == HK_CHUNK_PAGES);
    hk_heap_destroy(h);
}

/* Grow in place into free pages; refuse when the next block is taken;
 * shrink gives pages back. */
static void test_grow_shrink(void) {
    hk_heap_t *h = hk_heap_new();
    bool z;
    hk_page_t *a = _hk_buddy_alloc(h, 3, 0, &z);
    a->kind = HK_PAGE_MEDIUM;
    CHECK(_hk_buddy_grow(h, a, 20));
    CHECK(a->npages == 20);
    size_t free_pages;
    CHECK(check_heap(h, &free_pages) == 0);
    CHECK(free_pages == HK_CHUNK_PAGES - 20);
    hk_page_t *b = _hk_buddy_alloc(h, 1, 0, &z);
    b->kind = HK_PAGE_MEDIUM;
    CHECK(b - a == 20); /* lands right after */
    CHECK(!_hk_buddy_grow(h, a, 21));
    CHECK(a->npages == 20);
    _hk_buddy_shrink(h, a, 7);
    CHECK(a->npages == 7);
    CHECK(check_heap(h, &free_pages) == 0);
    CHECK(free_pages == HK_CHUNK_PAGES - 8);
    _hk_buddy_free(h, a);
    _hk_buddy_free(h, b);
    CHECK(check_heap(h, &free_pages) == 0 && free_pages == HK_CHUNK_PAGES);
    hk_heap_destroy(h);
}

/* Decommit: purge with force decommits free blocks and the counts follow;
 * reallocating reports the pages as zeroed. */
static void test_purge(void) {
    hk_heap_t *h = hk_heap_new();
    bool z;
    hk_page_t *a = _hk_buddy_alloc(h, 64, 0, &z);
    a->kind = HK_PAGE_MEDIUM;
    uint8_t *mem = block_mem(a);
    memset(mem, 0xAB, 64 * HK_PAGE_SIZE);
    CHECK(h->committed_bytes == 64 * HK_PAGE_SIZE);
    _hk_buddy_free(h, a);
    CHECK(hk_asan_is_poisoned(mem, 1) == HK_ASAN); /* ASan: free pages are poisoned */
    CHECK(h->committed_bytes == 64 * HK_PAGE_SIZE); /* delay: still committed */
    _hk_buddy_purge(h, _hk_os_now_ms(), true);
    CHECK(h->committed_bytes == 0);
    CHECK(check_heap(h, NULL) == 0);
    hk_page_t *b = _hk_buddy_alloc(h, 64, 0, &z);
    b->kind = HK_PAGE_MEDIUM;
    CHECK(z);
    uint8_t *m = block_mem(b);
    int nonzero = 0;
    for (size_t k = 0; k < 64 * HK_PAGE_SIZE; k += 64) nonzero += m[k] != 0;
    CHECK(nonzero == 0);
    _hk_buddy_free(h, b);
    hk_heap_destroy(h);
}

static hk_page_t *take(hk_heap_t *h, size_t n, bool *zeroed) {
    hk_page_t *pg = _hk_buddy_alloc(h, n, 0, zeroed);
    REQUIRE(pg != NULL);
    pg->kind = HK_PAGE_MEDIUM;
    memset(block_mem(pg), 0x5A, n * HK_PAGE_SIZE); /* committed for real */
    return pg;
}

/* Committed memory first: across chunks, a free chunk that holds RSS serves
 * a request before a smaller fresh block elsewhere (a live set rebuilt after
 * a free-all must not grow the committed pages). */
static void test_prefer_committed_chunk(void) {
    hk_heap_t *h = hk_heap_new();
    bool z;
    hk_page_t *a1 = take(h, 512, &z), *a2 = take(h, 512, &z); /* chunk A, full */
    hk_page_t *b1 = take(h, 256, &z), *keep = take(h, 16, &z); /* chunk B: 0..271 */
    CHECK(hk_chunk_of_page(b1) != hk_chunk_of_page(a1));
    _hk_buddy_free(h, a1);
    _hk_buddy_free(h, a2);
    _hk_buddy_free(h, b1);
    /* The rest of chunk B (272..1023) decommitted, whatever the chunks
     * held before (the chunk cache keeps memory committed): a purge for
     * which only those blocks are due. */
    uint64_t now = _hk_os_now_ms() + (uint64_t)_hk_options.decommit_delay_ms + 1000;
    CHECK(a1->kind == HK_PAGE_FREE && a1->order == HK_MAX_ORDER && b1->kind == HK_PAGE_FREE);
    a1->freed_at = b1->freed_at = now;
    _hk_buddy_purge(h, now, false);
    size_t committed = h->committed_bytes;
    CHECK(committed == (1024 + 272) * HK_PAGE_SIZE);
    /* Chunk B's fresh upper half (order 9) fits more tightly than chunk A
     * (order 10), but A's pages are committed. */
    hk_page_t *p = take(h, 512, &z);
    CHECK(!z);
    CHECK(hk_chunk_of_page(p) == hk_chunk_of_page(a1));
    CHECK(h->committed_bytes == committed);
    CHECK(check_heap(h, NULL) == 0);
    _hk_buddy_free(h, p);
    _hk_buddy_free(h, keep);
    hk_heap_destroy(h);
}

/* Within a list: a block the purge decommitted goes behind a committed one
 * freed before it, so the committed one serves first. */
static void test_prefer_committed_block(void) {
    hk_heap_t *h = hk_heap_new();
    bool z;
    hk_page_t *p1 = take(h, 16, &z), *k1 = take(h, 16, &z);
    hk_page_t *p2 = take(h, 16, &z), *k2 = take(h, 16, &z);
    (void)k1, (void)k2; /* live: p1 and p2 cannot merge with their buddies */
    uint8_t *mem2 = hk_page_start(hk_chunk_of_page(p2), p2);
    _hk_buddy_free(h, p2);
    _hk_buddy_free(h, p1); /* the head of the order-4 list now */
    /* Only p1 is due: the purge decommits it alone. */
    uint64_t now = _hk_os_now_ms() + (uint64_t)_hk_options.decommit_delay_ms + 1000;
    p2->freed_at = now;
    _hk_buddy_purge(h, now, false);
    CHECK(p1->committed == 0 && p2->committed == 1);
    CHECK(check_heap(h, NULL) == 0);
    size_t before = h->committed_bytes;
    hk_page_t *q = take(h, 16, &z);
    CHECK(!z);
    CHECK(hk_page_start(hk_chunk_of_page(q), q) == mem2);
    CHECK(h->committed_bytes == before);
    hk_heap_destroy(h);
}

/* Adjacent free blocks that are not buddies serve a request no aligned
 * block can, before a new chunk is taken. */
static void test_run(void) {
    hk_heap_t *h = hk_heap_new();
    bool z;
    hk_page_t *q[4];
    for (int i = 0; i < 4; i++) q[i] = take(h, 256, &z);
    CHECK(h->nchunks == 1 && q[3] - q[0] == 768);
    _hk_buddy_free(h, q[1]);
    _hk_buddy_free(h, q[2]); /* pages 256..767: two order-8 blocks, no order-9 one */
    hk_page_t *r = take(h, 400, &z);
    CHECK(h->nchunks == 1);
    CHECK(r == q[1]);
    CHECK(r->npages == 400);
    size_t free_pages;
    CHECK(check_heap(h, &free_pages) == 0 && free_pages == 512 - 400);
    /* The rest of the run serves the next request right after it. */
    hk_page_t *s = take(h, 100, &z);
    CHECK(s - r == 400);
    _hk_buddy_free(h, r);
    _hk_buddy_free(h, s);
    _hk_buddy_free(h, q[0]);
    _hk_buddy_free(h, q[3]);
    CHECK(check_heap(h, &free_pages) == 0 && free_pages == HK_CHUNK_PAGES);
    hk_heap_destroy(h);
}

int main(int argc, char **argv) {
    long ops = argc > 1 ? atol(argv[1]) : 20000;
    test_exact();
    test_grow_shrink();
    test_purge();
    test_prefer_committed_chunk();
    test_prefer_committed_block();
    test_run();
    test_random(ops);
    return hk_test_done();
}
