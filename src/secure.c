/* secure.c: the slow parts of the secure variant (libheapkit-secure.so).
 *
 * Owns: the keys and generator of each chunk, the guard pages of a new
 * reservation, the shuffled carving of slab blocks, the checks of a free
 * from another thread and of the owner's drain of its remote queue, and
 * clearing the bits of a chunk reset whole. internal/secure.h describes
 * the whole mode; the inline parts (link codec, the malloc pop, the free
 * fast path) are there and in fastpath.h.
 * Calls: os.c (getrandom, mprotect), error.c (reports).
 * Threads: _hk_secure_remote_free runs on any thread and reads only what
 * is fixed while its block is live (descriptor kind, block size, capacity)
 * plus the atomic bit words; everything else runs on the heap's owner.
 *
 * Compiled into the secure variant only (cmake/secure.cmake adds it); the
 * #if keeps a stray build of it elsewhere empty.
 */
#include "internal/internal.h"

#if HK_SECURE

/* ---- Keys, generator, guards ----------------------------------------------- */

void _hk_secure_chunk_keys(hk_chunk_t *c) {
    uint64_t r[3];
    _hk_os_random(r, 3);
    c->h.key[0] = r[0];
    c->h.key[1] = r[1];
    c->h.rng = r[2];
}

/* splitmix64: any state is fine, one add and a few multiplies per draw.
 * It is not a cryptographic generator: the order it makes only has to be
 * unknown to a program that cannot read the chunk's metadata, whose seed
 * came from getrandom. */
static uint64_t rng_next(hk_chunk_t *c) {
    uint64_t x = (c->h.rng += 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}


int _hk_secure_guard(uint8_t *data, size_t after) {
    int rc = _hk_os_protect(data - HK_GUARD_SIZE, HK_GUARD_SIZE);
    if (rc == 0) rc = _hk_os_protect(data + after, HK_GUARD_SIZE);
    return rc;
}

/* ---- Carving ------------------------------------------------------------------ */

/* The most blocks carved at a time: a page worth of the 8-byte class. */
#define CARVE_MAX (HK_PAGE_SIZE / 8)

hk_block_t *_hk_secure_carve(hk_chunk_t *c, uint8_t *first, size_t n, size_t bs,
                             hk_block_t *tail) {
    hk_assert(n >= 1 && n <= CARVE_MAX);
    uint16_t order[CARVE_MAX];
    for (size_t i = 0; i < n; i++) order[i] = (uint16_t)i;
    /* Fisher-Yates: every order (nearly) equally likely. Each index comes
     * from 16 random bits scaled to [0, i] (a bias below i/2^16 <= 1/128
     * for at most 512 blocks), four to a draw of the generator. */
    uint64_t bits = 0;
    for (size_t i = n - 1; i > 0; i--) {
        if ((i & 3) == ((n - 1) & 3)) bits = rng_next(c);
        size_t j = (size_t)(((bits & 0xffff) * (uint64_t)(i + 1)) >> 16);
        bits >>= 16;
        uint16_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    /* The keys in registers: a store through b could alias them. */
    uint64_t k0 = c->h.key[0], k1 = c->h.key[1];
    hk_block_t *head = (hk_block_t *)(first + order[0] * bs), *b = head;
    for (size_t k = 1; k < n; k++) {
        hk_block_t *next = (hk_block_t *)(first + order[k] * bs);
        hk_link_write(b, hk_link_encode_k(k0, k1, b, next));
        b = next;
    }
    hk_link_write(b, hk_link_encode_k(k0, k1, b, tail));
    return head;
}

/* ---- Frees from other threads -------------------------------------------------- */

void _hk_secure_remote_free(hk_chunk_t *c, void *p) {
    if (c->h.kind == HK_CHUNK_NORMAL) {
        hk_page_t *pg = hk_block_head(c, p);
        uint8_t *start = hk_page_start(c, pg);
        uint64_t off = (uint64_t)((uint8_t *)p - start);
        if (pg->kind == HK_PAGE_SLAB) {
            /* The block check of slab.c against the capacity: the carved
             * count is the owner's to change, the capacity is fixed. */
            uint64_t e = pg->div_magic * hk_slab_block_size(pg);
            if (off >= HK_CHUNK_SIZE || off * pg->div_magic >= pg->capacity * e)
                _hk_fatal("free", "invalid pointer", p);
            /* Not live: freed already (by its owner, or by another thread
             * and drained since), or never handed out. The owner set the
             * bit before the block could reach this thread, and only a free
             * clears it, so a clear bit is never stale. */
            if ((hk_load_relaxed(&hk_bits_of(c, p)->live) & hk_bit_of(p)) == 0)
                _hk_fatal("free", "double free", p);
        } else if (pg->kind == HK_PAGE_MEDIUM) {
            if (p != start) _hk_fatal("free", "invalid pointer", p);
        } else if (pg->kind == HK_PAGE_FREE ||
                   (pg->kind == HK_PAGE_INNER && ((uintptr_t)p & (HK_PAGE_SIZE - 1)) == 0)) {
            _hk_fatal("free", "double free", p); /* as _hk_heap_free_local says it */
        } else {
            _hk_fatal("free", "invalid pointer", p);
        }
    }
    /* Queued from now until the owner drains it: a second free of the block
     * from any thread finds the bit set. */
    uint64_t m = hk_bit_of(p);
    if (atomic_fetch_or_explicit(&hk_bits_of(c, p)->pending, m, memory_order_relaxed) & m)
        _hk_fatal("free", "double free", p);
}

hk_block_t *_hk_secure_drain_next(hk_heap_t *h, hk_block_t *b) {
    hk_chunk_t *c = hk_chunk_of(b);
    hk_block_t *next = hk_link_decode(c, b, hk_link_read(b));
    if (next != NULL) {
        /* A queued block of this heap: in a heapkit chunk of h, at the
         * start of a huge block if huge, with its pending bit set. The map
         * test comes first, so nothing is read at a wild address. */
        if (!hk_chunk_map_has((uintptr_t)next)) _hk_secure_corrupt(b);
        hk_chunk_t *nc = hk_chunk_of(next);
        if (nc->h.heap != h || (nc->h.kind == HK_CHUNK_HUGE && (uint8_t *)next != hk_chunk_data(nc)) ||
            !hk_is_pending(nc, next))
            _hk_secure_corrupt(b);
    }
    /* b leaves the queue. A block on it always has the bit: one without
     * was put there by a forged link, not by a free. */
    uint64_t m = hk_bit_of(b);
    if ((atomic_fetch_and_explicit(&hk_bits_of(c, b)->pending, ~m, memory_order_relaxed) & m) == 0)
        _hk_secure_corrupt(b);
    return next;
}

/* ---- Reset ------------------------------------------------------------------------ */

void _hk_secure_clear_bits(hk_chunk_t *c, size_t first, size_t npages) {
    const size_t per_page = HK_PAGE_SIZE / HK_BITS_SPAN;
    hk_block_bits_t *w = &c->bits[first * per_page];
    size_t n = npages ? npages * per_page : 1;
    for (size_t i = 0; i < n; i++) {
        hk_store_relaxed(&w[i].live, 0);
        hk_store_relaxed(&w[i].pending, 0);
    }
}

#endif /* HK_SECURE */
