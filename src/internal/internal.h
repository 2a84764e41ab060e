/* internal.h: what the layers of heapkit offer each other.
 *
 * Layers, bottom up; each calls only the ones below it:
 *   os.c         the kernel: reserve, decommit and release address space
 *   chunk.c      4 MiB chunks and huge blocks: the chunk map, the global
 *                cache of free chunks, delayed decommit of cached memory
 *   buddy.c      blocks of pages inside a heap's chunks: split, merge, trim
 *   sizeclass.c  the size class table
 *   slab.c       slabs of small blocks carved from buddy blocks
 *   heap.c       heaps: thread-local, explicit, retired; remote frees
 *   alloc.c      the public malloc family (fast paths are inline there)
 *   stats.c options.c error.c: statistics, options, fatal reports
 *
 * Names: _hk_<layer>_<verb> for functions used across files; static
 * functions carry no prefix.
 */
#ifndef HK_INTERNAL_H
#define HK_INTERNAL_H

#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "internal/types.h"
#include "internal/asan.h" /* poisoning under AddressSanitizer (nothing otherwise) */

#define hk_likely(x)   __builtin_expect(!!(x), 1)
#define hk_unlikely(x) __builtin_expect(!!(x), 0)
#define HK_INTERNAL    __attribute__((visibility("hidden")))
#define HK_NOINLINE    __attribute__((noinline))
#define HK_COLD        __attribute__((cold, noinline))

#ifdef HK_DEBUG
#define hk_assert(c) ((c) ? (void)0 : _hk_assert_fail(#c, __FILE__, __LINE__))
#else
#define hk_assert(c) ((void)0)
#endif

/* Relaxed atomics, for counters and flags whose ordering does not matter. */
#define hk_load_relaxed(p)     atomic_load_explicit((p), memory_order_relaxed)
#define hk_store_relaxed(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)
#define hk_add_relaxed(p, v)   atomic_fetch_add_explicit((p), (v), memory_order_relaxed)
#define hk_sub_relaxed(p, v)   atomic_fetch_sub_explicit((p), (v), memory_order_relaxed)

/* ---- error.c -------------------------------------------------------------- */
/* Reports a misuse of the allocator ("heapkit: <func>(): <what> 0x<addr>") and
 * aborts. Prints from a fixed buffer: never allocates. */
HK_INTERNAL HK_COLD __attribute__((noreturn))
void _hk_fatal(const char *func, const char *what, const void *addr);
HK_INTERNAL HK_COLD __attribute__((noreturn))
void _hk_assert_fail(const char *cond, const char *file, int line);
/* A warning on stderr (only with HEAPKIT_VERBOSE, unless `always`). */
HK_INTERNAL void _hk_warn(bool always, const char *fmt, ...);

/* ---- report.c ------------------------------------------------------------- */
/* A report being written: buffered, never allocates. */
typedef struct hk_out_s {
    int fd;
    bool owned;        /* fd was opened for this report (HEAPKIT_REPORT_FILE) */
    size_t len;
    char buf[4096];
} hk_out_t;
/* Opens the report destination: HEAPKIT_REPORT_FILE, else stderr for an
 * error and the copy of stderr taken at start for reports at exit. */
HK_INTERNAL void _hk_out_open(hk_out_t *o, bool error);
HK_INTERNAL void _hk_out_printf(hk_out_t *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
HK_INTERNAL void _hk_out_close(hk_out_t *o);
/* At start-up (may allocate): statistics at exit, the statistics signal. */
HK_INTERNAL void _hk_report_init(void);

/* ---- options.c ------------------------------------------------------------ */
typedef struct hk_options_s {
    long decommit_delay_ms;  /* free memory stays committed this long */
    long chunk_cache;        /* free chunks kept reserved in the global cache */
    long huge_cache_mb;      /* bytes of freed huge blocks kept for reuse */
    long thp;                /* huge blocks ask for transparent huge pages */
    long show_stats;         /* print statistics at exit */
    long verbose;            /* explain errors and warnings */
    long report_json;        /* reports (statistics, leaks) as JSON */
    long stats_signal;       /* answer this signal with a statistics file (0: off) */
    long leaks;              /* debug library: report leaks at exit */
    long secure;             /* asks for the secure library (a warning in others) */
    long quarantine_mb;      /* debug library: freed bytes held back */
    long guard_min;          /* debug library: blocks of this size and up get guard pages */
    const char *debug;       /* debug library: HEAPKIT_DEBUG's list, or NULL */
    const char *report_file; /* reports go here instead of stderr; %p: the pid */
    const char *stack;       /* "fp" (frame pointers, default) or "unwind" */
} hk_options_t;
HK_INTERNAL extern hk_options_t _hk_options;
HK_INTERNAL void _hk_options_init(void);

/* ---- os.c ----------------------------------------------------------------- */
/* Contract: sizes and addresses are multiples of HK_PAGE_SIZE; functions
 * return 0 or an errno value and leave errno as it was. Reserved memory is
 * readable and writable and reads zero until written; decommitted memory
 * reads zero again and holds no RSS. */
HK_INTERNAL void _hk_os_init(void);
HK_INTERNAL extern size_t _hk_os_page_size;
/* Reserves `size` bytes at an address p with (p + offset) % align == 0. */
HK_INTERNAL void *_hk_os_reserve(size_t size, size_t align, size_t offset);
HK_INTERNAL int _hk_os_release(void *p, size_t size);
/* Decommits whole OS pages (EINVAL, and nothing done, if the range is not
 * OS-page aligned: with 16/64 KiB kernel pages the caller must round). */
HK_INTERNAL int _hk_os_decommit(void *p, size_t size);
/* Asks for transparent huge pages in [p, p + size) (a hint: nothing
 * happens where the kernel has them off). */
HK_INTERNAL void _hk_os_prefer_huge_pages(void *p, size_t size);
/* Grows or shrinks a reservation in place (an error when it cannot). */
HK_INTERNAL int _hk_os_resize(void *p, size_t old_size, size_t new_size);
/* Moves a reservation's pages into dst, a reservation of new_size made by
 * _hk_os_reserve; on failure both stay as they were. */
HK_INTERNAL int _hk_os_move(void *p, size_t old_size, void *dst, size_t new_size);
HK_INTERNAL uint64_t _hk_os_now_ms(void);
/* Process-wide: bytes reserved now and at the peak. */
HK_INTERNAL size_t _hk_os_mapped(void);
HK_INTERNAL size_t _hk_os_mapped_peak(void);
#if HK_SECURE || HK_DEBUG_MODE
/* Makes the whole OS pages inside [p, p + size) inaccessible (guard pages;
 * the secure and debug variants only). */
HK_INTERNAL int _hk_os_protect(void *p, size_t size);
#endif
#if HK_SECURE
/* n random words from the kernel (getrandom; a clock mix if it fails).
 * Never allocates, never blocks. */
HK_INTERNAL void _hk_os_random(uint64_t *out, size_t n);
#endif

/* ---- chunk.c -------------------------------------------------------------- */
/* One byte per possible chunk start in the 48-bit address space: 1 while
 * the 4 MiB slot starting there holds the data of a heapkit chunk or the
 * start of a huge block. Read without locks on every free. A byte, not a
 * bit: the test is then two instructions instead of six (64 MiB of address
 * space, of which only the pages for slots in use are ever touched). */
#define HK_CHUNK_MAP_SLOTS ((size_t)1 << (HK_VA_BITS - HK_CHUNK_SHIFT))
/* Written with __atomic stores; read plainly (a byte cannot tear, and a
 * byte that changes under a reader belongs to a chunk the reader has no
 * live block in), which lets the test compile to one compare. */
HK_INTERNAL extern uint8_t _hk_chunk_map[HK_CHUNK_MAP_SLOTS];

/* The values of a slot: the start of a chunk's (or huge block's) data, or
 * the rest of a huge block larger than a slot (so that hk_is_heap_memory
 * finds a pointer anywhere in it; free and the metadata lookups accept
 * only a start, whose slot holds the header below it). */
enum { HK_MAP_NONE = 0, HK_MAP_START = 1, HK_MAP_HUGE_TAIL = 2, HK_MAP_START_SLOW = 3 };

/* Switches of the fast paths, set once by _hk_init() before any heap exists
 * (and left alone otherwise, so ThreadSanitizer sees no write): under a
 * valgrind tool that tracks heap blocks, every malloc and every free must
 * take a slow path, which tells the tool about the block (alloc.c). Values
 * rather than a flag, so the fast paths test nothing more than before:
 * malloc compares the size with a limit, free the chunk map byte, and
 * chunks are marked HK_MAP_START_SLOW there instead of HK_MAP_START. */
HK_INTERNAL extern size_t _hk_fast_size_limit; /* HK_DIRECT_MAX + 1, or 0 */
HK_INTERNAL extern uint8_t _hk_map_start;      /* HK_MAP_START, or HK_MAP_START_SLOW */

static inline uint8_t hk_chunk_map_get(uintptr_t slot) {
#if defined(__SANITIZE_THREAD__)
    /* ThreadSanitizer cannot see that munmap and mmap order a slot's reuse
     * between threads; give it the atomic load it understands. */
    return __atomic_load_n(&_hk_chunk_map[slot], __ATOMIC_RELAXED);
#else
    return _hk_chunk_map[slot];
#endif
}
static inline bool hk_map_is_start(uint8_t v) { return v == HK_MAP_START || v == HK_MAP_START_SLOW; }
/* True when addr lies in the first 4 MiB of a chunk's or huge block's
 * data: its metadata is at hk_chunk_of(addr). */
static inline bool hk_chunk_map_has(uintptr_t addr) {
    uintptr_t slot = addr >> HK_CHUNK_SHIFT;
    if (hk_unlikely(slot >= HK_CHUNK_MAP_SLOTS)) return false;
    return hk_map_is_start(hk_chunk_map_get(slot));
}
/* hk_chunk_map_has for the free fast path: false also for chunks marked
 * for the slow path (one compare). */
static inline bool hk_chunk_map_fast(uintptr_t addr) {
    uintptr_t slot = addr >> HK_CHUNK_SHIFT;
    if (hk_unlikely(slot >= HK_CHUNK_MAP_SLOTS)) return false;
    return hk_chunk_map_get(slot) == HK_MAP_START;
}
static inline hk_chunk_t *hk_chunk_of(const void *p) {
    return (hk_chunk_t *)(((uintptr_t)p & ~(HK_CHUNK_SIZE - 1)) - HK_META_SIZE);
}
static inline uint8_t *hk_chunk_data(const hk_chunk_t *c) {
    return (uint8_t *)c + HK_META_SIZE;
}
static inline size_t hk_page_index(const void *p) {
    return ((uintptr_t)p >> HK_PAGE_SHIFT) & (HK_CHUNK_PAGES - 1);
}
static inline hk_chunk_t *hk_chunk_of_page(const hk_page_t *pg) {
    /* Descriptors sit in the metadata just below the aligned data, so step
     * over the metadata before masking. */
    return hk_chunk_of((const uint8_t *)pg + HK_META_SIZE);
}
static inline uint8_t *hk_page_start(const hk_chunk_t *c, const hk_page_t *pg) {
    return hk_chunk_data(c) + ((size_t)(pg - c->pages) << HK_PAGE_SHIFT);
}
/* The descriptor of the head of the block holding p (p in chunk c).
 * Descriptors are 64 bytes and pages 4096, so the byte offset of p's
 * descriptor is (p >> 6) with the in-page and above-chunk bits masked off:
 * one shift and one mask (the compiler does not find this itself). */
_Static_assert(sizeof(hk_page_t) << (HK_PAGE_SHIFT - 6) == HK_PAGE_SIZE, "64-byte descriptors");
#define HK_DESC_OFFSET_MASK (((HK_CHUNK_SIZE - 1) >> 6) & ~(uintptr_t)63)
static inline hk_page_t *hk_block_head(hk_chunk_t *c, const void *p) {
    uintptr_t off = ((uintptr_t)p >> 6) & HK_DESC_OFFSET_MASK;
    hk_page_t *pg = (hk_page_t *)((uint8_t *)c->pages + off);
    return (hk_page_t *)((uint8_t *)pg - pg->head_off);
}

/* A fully free chunk (page 0 is a free order-10 block), from the cache or
 * the OS; NULL with errno ENOMEM. */
HK_INTERNAL hk_chunk_t *_hk_chunk_alloc(void);
/* Gives a fully free chunk back to the global cache. */
HK_INTERNAL void _hk_chunk_free(hk_chunk_t *c);
/* A huge block of at least `size` usable bytes whose data is aligned to
 * max(align, HK_CHUNK_SIZE). *zeroed tells whether it is known to be zero. */
HK_INTERNAL hk_chunk_t *_hk_huge_alloc(size_t size, size_t align, bool *zeroed);
HK_INTERNAL void _hk_huge_free(hk_chunk_t *c);
/* Resizes a huge block in place or by remapping; NULL when it cannot. */
HK_INTERNAL hk_chunk_t *_hk_huge_resize(hk_chunk_t *c, size_t size);
/* Decommits or releases cached memory older than the decommit delay (all of
 * it with force). Cheap when nothing is due. */
HK_INTERNAL void _hk_chunk_cache_purge(bool force);
/* Bytes of free chunks and huge blocks in the cache that are committed. */
HK_INTERNAL size_t _hk_chunk_cache_committed(void);
/* The fork handlers of the chunk layer. */
HK_INTERNAL void _hk_chunk_fork_prepare(void);
HK_INTERNAL void _hk_chunk_fork_parent(void);
HK_INTERNAL void _hk_chunk_fork_child(void);

/* A test-and-test-and-set lock for slow paths: no allocation, fork-safe by
 * re-initialisation. */
typedef struct { _Atomic(int) held; } hk_lock_t;
HK_INTERNAL void _hk_lock(hk_lock_t *l);
static inline void hk_unlock(hk_lock_t *l) {
    atomic_store_explicit(&l->held, 0, memory_order_release);
}

/* ---- buddy.c -------------------------------------------------------------- */
/* A block of at least `npages` pages (exactly npages are marked allocated;
 * the rest of the power-of-two block goes back to the free lists), aligned
 * to 2^min_order pages. Takes a new chunk when the heap has no room.
 * *zeroed is set when none of its pages had been committed. NULL: ENOMEM. */
HK_INTERNAL hk_page_t *_hk_buddy_alloc(hk_heap_t *h, size_t npages,
                                       unsigned min_order, bool *zeroed);
/* Frees an allocated block (its head), merging it with free buddies; a chunk
 * that becomes fully free goes back to the chunk cache unless it is the
 * heap's last one. */
HK_INTERNAL void _hk_buddy_free(hk_heap_t *h, hk_page_t *head);
/* Gives the tail of an allocated block back, keeping `npages` pages. */
HK_INTERNAL void _hk_buddy_shrink(hk_heap_t *h, hk_page_t *head, size_t npages);
/* Grows an allocated block in place when the pages after it are free;
 * returns false (and changes nothing) when they are not. */
HK_INTERNAL bool _hk_buddy_grow(hk_heap_t *h, hk_page_t *head, size_t npages);
/* Decommits free blocks that have been free for the decommit delay (every
 * free block with force). */
HK_INTERNAL void _hk_buddy_purge(hk_heap_t *h, uint64_t now, bool force);
/* Adds a fully free chunk to the heap / takes every chunk away (for destroy). */
HK_INTERNAL void _hk_buddy_add_chunk(hk_heap_t *h, hk_chunk_t *c);
HK_INTERNAL void _hk_buddy_reset_chunk(hk_chunk_t *c);
/* Releases fully free chunks beyond `keep` to the chunk cache. */
HK_INTERNAL void _hk_buddy_release_free_chunks(hk_heap_t *h, size_t keep);

/* ---- sizeclass.c ---------------------------------------------------------- */
typedef struct hk_class_s {
    uint32_t block_size;  /* bytes per block */
    uint16_t slab_pages;  /* pages per slab */
    uint16_t capacity;    /* blocks per slab */
    uint16_t extend;      /* blocks carved at a time from untouched memory */
    /* The direct slots of the class's sizes: first..last (first > last
     * for classes above HK_DIRECT_MAX). */
    uint8_t direct_first, direct_last;
} hk_class_t;
HK_INTERNAL extern hk_class_t _hk_classes[HK_CLASSES];
HK_INTERNAL extern unsigned _hk_class_count;
/* Class of sizes 0..HK_DIRECT_MAX, indexed by (size + 7) >> 3. */
HK_INTERNAL extern uint8_t _hk_class_direct[HK_DIRECT_SLOTS];
_Static_assert(HK_DIRECT_SLOTS <= 256, "direct slots fit a byte (hk_class_t)");
/* The block size of a slab (its head); fixed while the slab lives. */
static inline size_t hk_slab_block_size(const hk_page_t *pg) { return _hk_classes[pg->size_class].block_size; }
HK_INTERNAL void _hk_sizeclass_init(void);

/* The class of a small size (size <= HK_SMALL_MAX). */
static inline unsigned hk_class_of(size_t size) {
    if (hk_likely(size <= HK_DIRECT_MAX)) return _hk_class_direct[(size + 7) >> 3];
    /* Four classes per doubling above 128 bytes: the two bits below the
     * leading one of (size - 1) pick the quarter; eight from 1 to 2 KiB
     * (b == 10) and from 4 to 8 KiB (b == 12), where three bits pick the
     * eighth (sizeclass.c says why). */
    size_t s = size - 1;
    unsigned b = 63u - (unsigned)__builtin_clzl(s);
    if (b == 10) return 21u + (unsigned)((s >> 7) & 7u);
    if (b == 12) return 33u + (unsigned)((s >> 9) & 7u);
    return 9u + (b - 7u) * 4u + (b > 10 ? 4u : 0u) + (b > 12 ? 4u : 0u) + (unsigned)((s >> (b - 2)) & 3u);
}

/* ---- slab.c --------------------------------------------------------------- */
HK_INTERNAL extern hk_page_t _hk_page_empty; /* the sentinel current slab */
HK_INTERNAL hk_page_t *_hk_slab_new(hk_heap_t *h, unsigned cls);
/* Carves more blocks from the untouched part onto the free list. */
HK_INTERNAL void _hk_slab_extend(hk_page_t *pg);
/* Frees a block into a slab of the owner's heap (the slow path of free:
 * validation, full-to-partial and empty-slab transitions). */
HK_INTERNAL void _hk_slab_free(hk_heap_t *h, hk_page_t *pg, hk_block_t *b);
/* The state changes after a fast-path free: called when the slab was full
 * or became empty. */
HK_INTERNAL void _hk_slab_after_free(hk_heap_t *h, hk_page_t *pg);
/* The same from the free fast path, which has only the descriptor. */
HK_INTERNAL void _hk_slab_after_free_fast(hk_page_t *pg);
HK_INTERNAL void _hk_slab_retire(hk_heap_t *h, hk_page_t *pg);
/* Makes pg the current slab of its class (adds the bias of one to `used`),
 * and takes the current slab away (returns it unbiased, or NULL). */
HK_INTERNAL void _hk_slab_make_current(hk_heap_t *h, unsigned cls, hk_page_t *pg);
HK_INTERNAL hk_page_t *_hk_slab_leave_current(hk_heap_t *h, unsigned cls);
HK_INTERNAL void _hk_queue_push(hk_page_queue_t *q, hk_page_t *pg);
HK_INTERNAL void _hk_queue_remove(hk_page_queue_t *q, hk_page_t *pg);
/* True when p is the start of a block inside the slab's carved part. */
HK_INTERNAL bool _hk_slab_valid_block(const hk_chunk_t *c, const hk_page_t *pg,
                                      const void *p);

/* ---- heap.c --------------------------------------------------------------- */
HK_INTERNAL extern hk_heap_t _hk_heap_empty; /* the sentinel of threads without a heap */
extern __thread hk_heap_t *_hk_tls_heap __attribute__((tls_model("initial-exec")));

/* The calling thread's identity: its thread pointer, unique among live
 * threads. Never 0. */
static inline uintptr_t hk_thread_id(void) {
    return (uintptr_t)__builtin_thread_pointer();
}

/* Sets up the library once (options, size classes, OS facts). */
HK_INTERNAL void _hk_init(void);
/* The heap of the calling thread, creating it on first use. */
HK_INTERNAL hk_heap_t *_hk_heap_get_default(void);
/* The allocation slow path: small, medium and huge (the owner calls it). */
HK_INTERNAL void *_hk_heap_alloc(hk_heap_t *h, size_t size, size_t align, bool zero);
/* The new home of a medium block that realloc moves to grow it: a buddy
 * block up to a whole chunk, a huge block past that. */
HK_INTERNAL void *_hk_heap_alloc_grown(hk_heap_t *h, size_t size);
/* The miss of the inline malloc fast path (arguments in the order the fast
 * path has them in registers). */
HK_INTERNAL void *_hk_malloc_miss(size_t size, hk_heap_t *h);
/* Frees p that belongs to heap h whose owner is the caller. */
HK_INTERNAL void _hk_heap_free_local(hk_heap_t *h, hk_chunk_t *c, void *p);
/* Frees p from a thread that does not own its heap. */
HK_INTERNAL void _hk_heap_free_remote(hk_heap_t *h, void *p);
HK_INTERNAL void _hk_heap_drain_remote(hk_heap_t *h);
/* Frees any pointer: validation, huge blocks, local or remote. */
HK_INTERNAL void _hk_free_generic(void *p);
HK_INTERNAL void _hk_heap_collect(hk_heap_t *h, bool force);
/* Walks a heap's blocks: exact statistics (owner only). */
HK_INTERNAL void _hk_heap_stats_exact(hk_heap_t *h, hk_stats_t *out);
/* Publishes the owner's counters for other threads' hk_stats(). */
HK_INTERNAL void _hk_heap_publish(hk_heap_t *h);
/* A heap struct is recycled: its figures leave the process totals. */
HK_INTERNAL void _hk_stats_heap_gone(hk_heap_t *h);
/* Calls fn on every heap under the global heap lock. */
HK_INTERNAL void _hk_heap_foreach(void (*fn)(hk_heap_t *, void *), void *arg);
/* Under valgrind (alloc.c): a block of heap h, told to memcheck. */
HK_INTERNAL void *_hk_vg_alloc_in(hk_heap_t *h, size_t size, size_t align, bool zero);
/* Returns the usable size of a live block p of chunk c (validating it). */
HK_INTERNAL size_t _hk_usable_size_checked(const void *p, const char *func);
/* The same without the report: 0 when p is not the start of a live-looking
 * block (any thread may ask). */
HK_INTERNAL size_t _hk_block_usable(const void *p);

/* ---- Free-list links ------------------------------------------------------ */
/* The first word of a free small block links its slab's free list or its
 * heap's remote queue (types.h: hk_block_t; encoded in the secure variant,
 * secure.h). Under AddressSanitizer a free block is poisoned whole, link
 * included (asan.h), so heapkit reads and writes links only through these,
 * which then unpoison that one word for the access and poison it again.
 * In other builds they are macros for the plain load and store, so the
 * code is the same as it was before they existed. */
#if HK_SECURE
typedef uintptr_t hk_link_t;   /* the encoded link */
#define HK_LINK_FIELD next_enc
#else
typedef hk_block_t *hk_link_t;
#define HK_LINK_FIELD next
#endif
#if HK_ASAN
static inline hk_link_t hk_link_read(const hk_block_t *b) {
    hk_asan_unpoison(b, sizeof *b);
    hk_link_t v = b->HK_LINK_FIELD;
    hk_asan_poison(b, sizeof *b);
    return v;
}
static inline void hk_link_write(hk_block_t *b, hk_link_t v) {
    hk_asan_unpoison(b, sizeof *b);
    b->HK_LINK_FIELD = v;
    hk_asan_poison(b, sizeof *b);
}
#else
#define hk_link_read(b)     ((b)->HK_LINK_FIELD)
#define hk_link_write(b, v) ((void)((b)->HK_LINK_FIELD = (v)))
#endif

#include "internal/secure.h" /* the secure variant's helpers (nothing otherwise) */

#endif /* HK_INTERNAL_H */
