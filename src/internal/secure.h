/* secure.h: the hardening of the secure variant (libheapkit-secure.so).
 *
 * Built only with HK_SECURE=1 (cmake/secure.cmake); included at the end of
 * internal.h, so in every other build this file declares nothing.
 *
 * What the variant adds, and where:
 *   - Free-list links encoded (this file): the first word of a free small
 *     block, on its slab's list or its heap's remote queue, holds
 *     rotl(next ^ link ^ k0, k1 & 63) + k1, with k0, k1 the random keys of
 *     the block's chunk (types.h: hk_chunk_head_t.key) and `link` the
 *     block's own address, so equal pointers encode differently in every
 *     block and a leaked link does not give the keys away alone. Decoding
 *     checks the result: on a slab list it must be a carved block of the
 *     same slab that is not live, on a remote queue a block of the same
 *     heap waiting on a queue. Anything else is reported as
 *     "heapkit: free list corrupted 0x<block>" and aborts.
 *   - Live and pending bits (types.h: hk_block_bits_t, one bit per 8 bytes
 *     of chunk data): malloc sets `live`, free tests and clears it, so every
 *     double free and every free of a carved block never handed out is
 *     caught, not only the immediate one. A free from another thread sets
 *     `pending` with an atomic OR (a second remote free of the same block
 *     finds it set) after checking `live`; the owner's own free and its
 *     drain check `pending` (secure.c).
 *   - Guard pages (chunk.c, os.c): PROT_NONE pages between each chunk's
 *     metadata and data and after its data, and after every huge block.
 *   - Shuffled slabs (slab.c): the blocks carved at a time are linked in a
 *     random order from a generator per chunk, so consecutive mallocs are
 *     not neighbours.
 */
#ifndef HK_SECURE_H
#define HK_SECURE_H

#if HK_SECURE

/* ---- The link codec ------------------------------------------------------- */

static inline uintptr_t hk_rotl(uintptr_t x, unsigned r) {
    return (x << (r & 63)) | (x >> ((64 - r) & 63));
}
static inline uintptr_t hk_rotr(uintptr_t x, unsigned r) {
    return (x >> (r & 63)) | (x << ((64 - r) & 63));
}

/* The encoded form of `next` stored in the block at `link`, keys k0, k1. */
static inline uintptr_t hk_link_encode_k(uint64_t k0, uint64_t k1, const void *link,
                                         const void *next) {
    return hk_rotl((uintptr_t)next ^ (uintptr_t)link ^ k0, (unsigned)k1) + k1;
}
/* The same with the keys of chunk c (the chunk of `link`). */
static inline uintptr_t hk_link_encode(const hk_chunk_t *c, const void *link, const void *next) {
    return hk_link_encode_k(c->h.key[0], c->h.key[1], link, next);
}
/* The pointer that hk_link_encode() stored; unchecked. */
static inline void *hk_link_decode(const hk_chunk_t *c, const void *link, uintptr_t enc) {
    uintptr_t x = hk_rotr(enc - c->h.key[1], (unsigned)c->h.key[1]);
    return (void *)(x ^ (uintptr_t)link ^ c->h.key[0]);
}

/* ---- Live and pending bits ------------------------------------------------- */

/* The bits word of the block at p (p in chunk c). Entries are 16 bytes
 * for 512 bytes of data, so the byte offset of p's entry is p >> 5 with
 * the low four bits and the bits above the chunk masked off: one shift and
 * one mask, as hk_block_head() does for descriptors (the compiler does not
 * find this itself). */
_Static_assert(sizeof(hk_block_bits_t) * 32 == HK_BITS_SPAN, "16-byte entries for 512 bytes");
#define HK_BITS_OFFSET_MASK (((HK_CHUNK_SIZE - 1) >> 5) & ~(uintptr_t)15)
static inline hk_block_bits_t *hk_bits_of(hk_chunk_t *c, const void *p) {
    return (hk_block_bits_t *)((uint8_t *)c->bits + (((uintptr_t)p >> 5) & HK_BITS_OFFSET_MASK));
}
static inline uint64_t hk_bit_of(const void *p) {
    return (uint64_t)1 << (((uintptr_t)p >> 3) & 63);
}
/* True while the block at p sits on a remote-free queue. */
static inline bool hk_is_pending(hk_chunk_t *c, const void *p) {
    return (hk_load_relaxed(&hk_bits_of(c, p)->pending) & hk_bit_of(p)) != 0;
}

/* ---- secure.c -------------------------------------------------------------- */
/* Reports "heapkit: free list corrupted 0x<link>" (link: the block whose
 * first word failed to decode) and aborts. */
HK_INTERNAL HK_COLD __attribute__((noreturn)) void _hk_secure_corrupt(const void *link);
/* Draws the keys and the generator seed of a chunk fresh from the OS. */
HK_INTERNAL void _hk_secure_chunk_keys(hk_chunk_t *c);
/* Makes the two guard regions of a reservation inaccessible: the page
 * before `data` and `after` bytes from data on. 0 or an errno value. */
HK_INTERNAL int _hk_secure_guard(uint8_t *data, size_t after);
/* The checks of a free from a thread that does not own p's heap, before p
 * is queued: a slab block must be a block start and live, a medium block a
 * block start; then its pending bit is set, and a bit already set is a
 * double free. c is p's chunk (normal or huge). */
HK_INTERNAL void _hk_secure_remote_free(hk_chunk_t *c, void *p);
/* The next block of a remote queue after b (decoded and checked), and b
 * taken off the queue (its pending bit cleared). h: the draining heap. */
HK_INTERNAL hk_block_t *_hk_secure_drain_next(hk_heap_t *h, hk_block_t *b);
/* Clears the bits of pages [first, first + npages) of chunk c, or with
 * npages 0 only those of the block starting at page `first` (a medium
 * block: only its start can have a bit). For a chunk reset whole by
 * hk_heap_destroy: its live blocks and queued frees go with it. */
HK_INTERNAL void _hk_secure_clear_bits(hk_chunk_t *c, size_t first, size_t npages);
/* The shuffled links of n fresh blocks of bs bytes from `first` on, the
 * last one linked to `tail`; returns the new head. */
HK_INTERNAL hk_block_t *_hk_secure_carve(hk_chunk_t *c, uint8_t *first, size_t n, size_t bs,
                                         hk_block_t *tail);

/* Pops b, the head of slab pg's free list, for malloc: returns the next
 * free block after checking that it decodes to NULL or a carved block of
 * the same slab, and that b was not live; marks b live. The inline part of
 * the malloc fast path in the secure variant (about 20 instructions). */
static inline hk_block_t *hk_secure_take(hk_page_t *pg, hk_block_t *b) {
    hk_chunk_t *c = hk_chunk_of(b);
    hk_block_t *next = hk_link_decode(c, b, hk_link_read(b));
    /* The slab's first byte: descriptors are 64 bytes for 4096-byte pages,
     * so the descriptor's byte offset shifted by 6 is the page's. */
    uintptr_t start = (uintptr_t)hk_chunk_data(c) + (((uintptr_t)pg - (uintptr_t)c->pages) << 6);
    uint64_t off = (uint64_t)((uintptr_t)next - start);
    hk_block_bits_t *w = hk_bits_of(c, b);
    uint64_t m = hk_bit_of(b), live = hk_load_relaxed(&w->live);
    /* The block check of the free path (slab.c) on the decoded pointer:
     * a forged link fails it unless it names a carved block of this slab,
     * and then that block is either free (harmless) or live (caught the
     * moment it is popped, by the live test). NULL (the end of the list)
     * fails it too and is let through off the hot branch. */
    if (hk_unlikely(off * pg->div_magic >= pg->valid_limit) && next != NULL) _hk_secure_corrupt(b);
    if (hk_unlikely((live & m) != 0)) _hk_secure_corrupt(b);
    hk_store_relaxed(&w->live, live | m);
    return next;
}

#endif /* HK_SECURE */
#endif /* HK_SECURE_H */
