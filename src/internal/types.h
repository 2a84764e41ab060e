/* types.h: every core struct of heapkit, with the invariant of each field.
 *
 * Memory is organised in three levels:
 *
 *   chunk   4 MiB of address space aligned to 4 MiB, owned by one heap.
 *           Its metadata (hk_chunk_t: header + one hk_page_t per page) sits
 *           in the pages just *before* the aligned data, so the buddy
 *           allocator owns all 4 MiB and a pointer finds its chunk by masking.
 *   block   2^k pages of a chunk handed out by the buddy allocator (the tail
 *           of a non-power-of-two request is given back), used as a slab
 *           of small blocks or as one medium block.
 *   object  a small block carved from a slab of one size class.
 *
 * Huge blocks (larger than HK_MEDIUM_MAX) are mapped directly with the same
 * layout: an hk_chunk_t header before aligned data, kind HK_CHUNK_HUGE.
 */
#ifndef HK_TYPES_H
#define HK_TYPES_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heapkit.h"

/* The secure variant (libheapkit-secure.so, cmake/secure.cmake) is built
 * from the same sources with HK_SECURE=1: encoded free-list links, a
 * live/pending bitmap per chunk, guard pages, shuffled slabs (see
 * internal/secure.h). Every other build compiles none of it. */
#ifndef HK_SECURE
#define HK_SECURE 0
#endif

/* ---- Layout constants ---------------------------------------------------- */

/* The buddy allocator's page. Fixed at 4 KiB on every platform so that the
 * layout is a compile-time constant; with larger OS pages (16/64 KiB on some
 * aarch64 kernels) decommit simply rounds inward to whole OS pages. */
#define HK_PAGE_SHIFT   12
#define HK_PAGE_SIZE    ((size_t)1 << HK_PAGE_SHIFT)

#define HK_CHUNK_SHIFT  22                              /* 4 MiB */
#define HK_CHUNK_SIZE   ((size_t)1 << HK_CHUNK_SHIFT)
#define HK_CHUNK_PAGES  (HK_CHUNK_SIZE / HK_PAGE_SIZE)  /* 1024 */
#define HK_MAX_ORDER    (HK_CHUNK_SHIFT - HK_PAGE_SHIFT) /* 10: a whole chunk */
#define HK_ORDERS       (HK_MAX_ORDER + 1)

#define HK_SMALL_MAX    ((size_t)32 * 1024)      /* largest size served by slabs */
/* Largest malloc served by the buddy: 511 pages. A request of half a chunk
 * or more (2 MiB: one transparent huge page) is huge. As a buddy block it
 * would take a whole order-9 half of a chunk, and a program that frees and
 * reallocates such blocks with larger ones (served from the huge cache)
 * would keep a chunk committed beside its cached huge block; as a huge
 * block it shares the huge cache with them. realloc growth of a medium
 * block stays in the buddy up to a whole chunk (_hk_heap_alloc_grown). */
#define HK_MEDIUM_MAX   (HK_CHUNK_SIZE / 2 - HK_PAGE_SIZE)
#define HK_DIRECT_MAX   1024                     /* sizes with a table lookup */
#define HK_DIRECT_SLOTS (HK_DIRECT_MAX / 8 + 1)  /* one per 8 bytes of size, 0 included */

#define HK_CLASSES      HK_STATS_CLASSES         /* small size classes (some unused) */

/* Address space covered by the chunk map: 48 bits (x86-64 and aarch64 user
 * space). A pointer above it is never ours. */
#define HK_VA_BITS      48

/* ---- Objects ------------------------------------------------------------ */

/* A free small block: its first word links the free list (the slab's, or
 * its heap's remote queue). */
typedef struct hk_block_s {
#if HK_SECURE
    /* secure: the link encoded with the keys of the block's chunk and the
     * block's own address (hk_link_encode, secure.h), so a forged or
     * overwritten link decodes to a pointer the checks reject. Never a
     * plain pointer: the type makes every access go through the codec. */
    uintptr_t next_enc;
#else
    struct hk_block_s *next;
#endif
} hk_block_t;

/* ---- Page descriptors --------------------------------------------------- */

enum hk_page_kind {
    HK_PAGE_INNER = 0, /* not the head of a block (or never used) */
    HK_PAGE_FREE,      /* head of a free buddy block on a free list */
    HK_PAGE_SLAB,      /* head of a slab of small blocks */
    HK_PAGE_MEDIUM,    /* head of one medium block */
};

struct hk_heap_s;

/* One per 4 KiB page of a chunk; 64 bytes so that two slabs never share a
 * cache line (their owner writes them on every malloc and free).
 * Fields marked "head" are meaningful only on the first page of a block. */
typedef struct hk_page_s {
    /* slab head: the list malloc pops from; NULL when every initialised
     * block is handed out. Owner thread only. The head itself is a plain
     * pointer (metadata, never next to user data); the links in the blocks
     * are encoded in the secure variant (hk_block_t). */
    hk_block_t *free;
    /* slab head: the bound of the free path's block check: a pointer at
     * byte offset n of the slab is a carved block start exactly when
     * n * div_magic (mod 2^64) < valid_limit (see slab.c). Below 2^32, but
     * 64 bits wide so that the check compares with it directly. */
    uint64_t valid_limit;
    /* slab head: blocks handed out and not yet freed locally or drained
     * from the remote queue, plus 1 while the slab is current (so the free
     * fast path never sees a current slab become empty).
     * 0 <= used <= capacity + 1. Owner thread only. */
    uint16_t used;
    /* every page of an allocated block: bytes from its head's descriptor to
     * this descriptor (pages back times 64), so the free path subtracts it
     * without scaling; 0 for heads and for pages of free blocks. */
    uint16_t head_off;
    /* slab head: blocks that fit in the slab. */
    uint16_t capacity;
    /* slab head: blocks carved so far (the rest is untouched memory);
     * used <= initialized <= capacity. */
    uint16_t initialized;
    /* head of an allocated block: its length in pages (need not be a power
     * of two: the buddy gives the tail back). */
    uint16_t npages;
    uint8_t kind;        /* enum hk_page_kind, head only */
    uint8_t order;       /* free head: buddy order (block is 2^order pages) */
    uint8_t size_class;  /* slab head: index into the size class table (its
                          * block size: hk_slab_block_size) */
    uint8_t committed;   /* every page: 1 when it may hold RSS, 0 after decommit */
    uint8_t queued;      /* slab head: 1 while on its heap's partial queue */
    uint8_t _pad[1];
    /* slab head: the thread id of the heap's owner while the slab is
     * current or queued, so the free fast path needs one comparison for
     * "my heap, and no list to fix". 0 for a full slab on no list (its
     * next free must queue it), for slabs of an ownerless heap, and for
     * every other descriptor. Written by the owner (or during a handover);
     * read by any thread, hence atomic. */
    _Atomic(uintptr_t) owner;
    /* free head: neighbours on the heap's free list of this order.
     * slab head: neighbours on the heap's partial queue of its class. */
    struct hk_page_s *next, *prev;
    union {
        /* free head: since when its memory has been free (ms, monotonic),
         * for delayed decommit. */
        uint64_t freed_at;
        /* slab head: floor(2^64 / block_size) + 1, for the block check. */
        uint64_t div_magic;
    };
} hk_page_t;

_Static_assert(sizeof(hk_page_t) == 64, "page descriptors are one cache line");
_Static_assert(HK_SMALL_MAX <= UINT16_MAX, "block sizes fit 16 bits");
_Static_assert(HK_CHUNK_PAGES <= UINT16_MAX, "page indices fit 16 bits");

/* ---- Chunks ------------------------------------------------------------- */

enum hk_chunk_kind { HK_CHUNK_NORMAL = 1, HK_CHUNK_HUGE = 2 };

/* The header that starts a chunk's metadata. */
typedef struct hk_chunk_head_s {
    /* thread id (hk_thread_id()) of the thread that may free into this chunk
     * without synchronisation: the heap owner. 0 while the heap is released
     * or retired, and always for huge chunks, so those frees take the slow
     * path. Written only by the owner or under the heap handover. */
    _Atomic(uintptr_t) owner_tid;
    /* the heap the chunk belongs to; NULL for huge chunks. Heaps are never
     * unmapped (they are recycled), so a stale read is memory-safe. */
    struct hk_heap_s *heap;
    uint8_t kind;                /* enum hk_chunk_kind */
    /* huge: 1 when linked on its (explicit) heap's list of huge blocks, so
     * only the owner may unlink it; 0 for default heaps' huge blocks, which
     * any thread frees directly. */
    uint8_t linked;
    /* normal, in the global cache: 1 once chunk_decommit() has given back
     * its data and descriptor pages (reset when the chunk is reused). */
    uint8_t meta_decommitted;
    /* normal: neighbours on the heap's chunk list, or the global cache's. */
    struct hk_chunk_s *next, *prev;
    /* normal: the chunk's free buddy blocks, one list per order (first and
     * last), and a mask with bit k set exactly when list k is not empty.
     * Blocks whose first page is committed are pushed at the front, others
     * at the back, so allocation takes memory that holds RSS already. */
    struct hk_page_s *free_blocks[HK_ORDERS];
    struct hk_page_s *free_last[HK_ORDERS];
    uint16_t free_mask;
    /* normal: pages in allocated blocks; 0 means one free order-10 block. */
    uint32_t used_pages;
    /* normal: pages whose descriptor says committed. */
    uint32_t committed_pages;
    /* huge: bytes reserved for the data (a multiple of the page size),
     * usable bytes asked, and the start of the whole reservation. */
    size_t huge_reserved;
    size_t huge_size;
    void *huge_base;
    /* huge: in a block taken from the cache for a smaller request, the
     * bytes past that request (committed, as the whole block was in use
     * before), counted in the cache's slack budget until the block is freed
     * or resized; 0 otherwise. */
    size_t huge_slack;
    /* when the chunk entered the global cache (ms), for delayed decommit. */
    uint64_t cached_at;
#if HK_SECURE
    /* secure, normal and huge: the keys of the free-list link codec for
     * blocks of this chunk (slab lists and remote queues), random from the
     * OS when the chunk is first reserved and fixed until it is unmapped
     * (a cached chunk holds no free list, so reuse needs no new keys). */
    uint64_t key[2];
    /* secure, normal: the state of the generator that shuffles the blocks
     * a slab carves; written by the owner of the chunk's heap only. */
    uint64_t rng;
#endif
} hk_chunk_head_t;

#if HK_SECURE
/* secure: the state bits of the 64 8-byte positions of 512 bytes of chunk
 * data; bit i stands for the block that starts at byte 8*i (every small
 * block starts on a multiple of 8). Two words, so that remote threads
 * write only `pending` (atomic OR) while the owner writes `live` with plain
 * (relaxed) stores: no lost update, no locked instruction on the owner's
 * fast paths. Both in one cache line with their neighbours. */
typedef struct hk_block_bits_s {
    /* bit set exactly while the slab block starting there is handed out
     * (malloc sets it, free and the drain of a remote free clear it).
     * Written by the owner only; read by any thread. */
    _Atomic(uint64_t) live;
    /* bit set while the block starting there (small, medium, or the data
     * of a huge chunk: bit 0) sits on its heap's remote-free queue: set by
     * the freeing thread's atomic OR, cleared by the owner's drain. */
    _Atomic(uint64_t) pending;
} hk_block_bits_t;
#define HK_BITS_SPAN    512 /* bytes of data per hk_block_bits_t */
#endif

/* The metadata of a chunk: header, then one descriptor per page. */
typedef struct hk_chunk_s {
    hk_chunk_head_t h;
    uint8_t _pad[128 - sizeof(hk_chunk_head_t) % 128];
    hk_page_t pages[HK_CHUNK_PAGES];
#if HK_SECURE
    /* secure: the live/pending bits of every 8-byte position of the data
     * (128 KiB of address space, committed only where touched: 1/32 of the
     * data used by slabs). Invariant: a bit is set only for a live small
     * block (live) or a block on a remote queue (pending), so a fully free
     * chunk's bits are all zero. Huge chunks use bits[0].pending only. */
    hk_block_bits_t bits[HK_CHUNK_SIZE / HK_BITS_SPAN];
#endif
} hk_chunk_t;

/* Bytes of the metadata that hold hk_chunk_t (whole pages). */
#define HK_META_USED \
    ((sizeof(hk_chunk_t) + HK_PAGE_SIZE - 1) & ~(HK_PAGE_SIZE - 1))
#if HK_SECURE
/* secure: an inaccessible page between a chunk's metadata and its data,
 * and another after its data (normal chunks and huge blocks), so neither
 * an underflow from the first block nor an overflow past the last one
 * reaches metadata or another chunk (chunk.c). */
#define HK_GUARD_SIZE   HK_PAGE_SIZE
#else
#define HK_GUARD_SIZE   0
#endif
/* Bytes of metadata placed before each chunk's data (whole pages): the
 * metadata, then the guard page in the secure variant. */
#define HK_META_SIZE    (HK_META_USED + HK_GUARD_SIZE)

/* ---- Heaps -------------------------------------------------------------- */

/* A doubly linked queue of slab heads (through hk_page_t.next/prev). */
typedef struct hk_page_queue_s {
    hk_page_t *first, *last;
} hk_page_queue_t;

/* Counters kept by the heap's owner on its slow paths. */
typedef struct hk_heap_counters_s {
    uint64_t medium_mallocs, medium_frees;
    size_t medium_live_bytes;
    size_t live_peak;          /* sampled on slow paths and stats calls */
    size_t committed_peak;
    size_t mapped_peak;
} hk_heap_counters_t;

/* Figures a heap publishes for hk_stats() of other threads (atomics: they
 * are written by the owner and read by anyone). */
typedef struct hk_heap_published_s {
    _Atomic(size_t) live_bytes, live_peak, committed, mapped;
    _Atomic(uint64_t) mallocs, frees;
    _Atomic(size_t) live_blocks, huge_live_bytes;
    _Atomic(size_t) class_live[HK_CLASSES];
} hk_heap_published_t;

/* A slot of a heap's direct table. */
typedef struct hk_direct_s {
    /* == current[c] of the heap, for the class c of the slot's sizes.
     * Written only with current[] (_hk_slab_make_current,
     * _hk_slab_leave_current). */
    struct hk_page_s *page;
    /* Blocks handed out by the fast path for the slot's sizes (the class is
     * not at hand there); the statistics add each slot to its class. */
    uint64_t mallocs;
} hk_direct_t;

typedef struct hk_heap_s {
    /* The malloc fast path's table, indexed by (size + 7) / 8 for sizes up
     * to HK_DIRECT_MAX: a size leads to its slab in one load. */
    hk_direct_t direct[HK_DIRECT_SLOTS];
    /* The slab malloc uses for each class. Never NULL: points to the shared
     * empty sentinel page (free == NULL) when the class has no slab yet, so
     * the fast path needs no NULL test. A current slab is not queued. */
    hk_page_t *current[HK_CLASSES];
    /* Thread id of the owner, who alone may allocate; 0 when none (released
     * or retired). Equal to owner_tid of each of the heap's chunks. Atomic
     * because other threads read it (statistics, huge frees) while a
     * handover writes it; on x86-64 and aarch64 a load is a plain load. */
    _Atomic(uintptr_t) owner_tid;
    /* Blocks freed by other threads: a lock-free stack (push by CAS,
     * the owner takes it all with an exchange). */
    _Atomic(hk_block_t *) remote;
    /* Slabs with free blocks that are not current, per class. */
    hk_page_queue_t partial[HK_CLASSES];
    /* The heap's chunks (normal chunks only), oldest first: the buddy
     * allocates best-fit across them, so older, fuller chunks fill up and
     * newer ones can empty and go back. */
    hk_chunk_t *chunks, *chunks_last;
    size_t nchunks;
    size_t committed_bytes;     /* sum over chunks of committed pages */
    /* Blocks of each class handed out by the slow paths, ever (the fast
     * path counts in direct_mallocs). Live blocks are the sum of the slabs'
     * `used`. */
    uint64_t mallocs[HK_CLASSES];
    hk_heap_counters_t c;
    /* Huge blocks: counted with atomics because a huge block of a default
     * heap may be freed directly by any thread. */
    _Atomic(uint64_t) huge_mallocs, huge_frees;
    _Atomic(size_t) huge_live_bytes;
    /* Explicit heaps only: their huge blocks, so destroy can free them. */
    struct hk_chunk_s *huge;
    /* Slow paths since the last publish. */
    uint32_t since_publish;
    hk_heap_published_t pub;
    /* 1 for a thread's default heap, 0 for an explicit heap. */
    uint8_t is_default;
    /* 1 while on the global list of all heaps (for hk_stats). */
    uint8_t listed;
    /* 1 while the heap is released (hk_heap_release) and may be adopted;
     * adoption takes it with a compare-and-swap, so only one thread can. */
    _Atomic(uint8_t) released;
    /* times of the last purge of free blocks and last publish (ms). */
    uint64_t last_purge, last_publish;
    /* neighbours on the global list of heaps; next_retired links retired
     * default heaps waiting for a new thread. */
    struct hk_heap_s *gnext, *gprev, *next_retired;
} hk_heap_t;

#endif /* HK_TYPES_H */
