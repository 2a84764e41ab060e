/* heapkit: a memory allocator with private, thread-local heaps.
 *
 * The public API. Every function is safe to call from any thread. Blocks
 * from any heap may be freed by any thread with hk_free(); allocation from
 * an explicit heap is reserved to the thread that owns it.
 *
 * Guarantees:
 *   - every block is aligned to 16 bytes (8 for requests under 16 bytes);
 *   - hk_usable_size(p) >= the size asked for;
 *   - calloc memory is zero, even when a dirty block is reused;
 *   - a request that cannot be served returns NULL with errno ENOMEM
 *     (size overflow, out of memory) or EINVAL (bad alignment), and every
 *     earlier block stays intact;
 *   - freeing a pointer heapkit does not own, or freeing a block twice where
 *     that is detectable, prints "heapkit: free(): <kind> 0x..." to stderr
 *     and aborts.
 */
#ifndef HEAPKIT_H
#define HEAPKIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HK_VERSION_MAJOR 0
#define HK_VERSION_MINOR 1
#define HK_VERSION_PATCH 0

#if defined(__GNUC__)
#define HK_API __attribute__((visibility("default")))
#define HK_MALLOC_ATTR __attribute__((malloc, warn_unused_result))
#else
#define HK_API
#define HK_MALLOC_ATTR
#endif

/* ---- The malloc family, served from the calling thread's heap ---------- */

HK_API HK_MALLOC_ATTR void *hk_malloc(size_t size);
HK_API HK_MALLOC_ATTR void *hk_calloc(size_t count, size_t size);
HK_API void  *hk_realloc(void *p, size_t size);
/* Like hk_realloc, but count * size is checked for overflow. */
HK_API void  *hk_reallocarray(void *p, size_t count, size_t size);
/* Any block, from any heap, on any thread; NULL is a no-op. */
HK_API void   hk_free(void *p);
/* Alignment must be a power of two (any size is accepted, unlike C11's). */
HK_API HK_MALLOC_ATTR void *hk_aligned_alloc(size_t alignment, size_t size);
/* POSIX form: returns 0, EINVAL or ENOMEM; *out is untouched on failure. */
HK_API int    hk_posix_memalign(void **out, size_t alignment, size_t size);
/* Bytes that may be used at p (>= the size asked for); 0 for NULL. */
HK_API size_t hk_usable_size(const void *p);
/* Returns free memory to the OS. Without force, only memory that has been
 * free for a while (the decommit delay) and only in the calling thread's
 * heap and the shared caches; with force, everything that can be returned
 * now, including memory of exited threads. */
HK_API void   hk_collect(bool force);

/* ---- Explicit heaps ---------------------------------------------------- */

typedef struct hk_heap_s hk_heap_t;

/* A new heap owned by the calling thread: only it allocates from the heap;
 * any thread may free into it. NULL with ENOMEM when out of memory. */
HK_API hk_heap_t *hk_heap_new(void);
/* Frees every block of the heap at once, without visiting them. Blocks of
 * the heap must not be used afterwards. Must be called by the owner. */
HK_API void       hk_heap_destroy(hk_heap_t *heap);
/* The calling thread's own heap (the one hk_malloc uses). */
HK_API hk_heap_t *hk_heap_default(void);
HK_API HK_MALLOC_ATTR void *hk_heap_malloc(hk_heap_t *heap, size_t size);
HK_API HK_MALLOC_ATTR void *hk_heap_calloc(hk_heap_t *heap, size_t count, size_t size);
/* Grows or shrinks p; a moved block lands in `heap`. */
HK_API void      *hk_heap_realloc(hk_heap_t *heap, void *p, size_t size);
HK_API HK_MALLOC_ATTR void *hk_heap_aligned_alloc(hk_heap_t *heap, size_t alignment, size_t size);
/* True when p is a live block of `heap` (a slow check, for assertions). */
HK_API bool       hk_heap_owns(hk_heap_t *heap, const void *p);

/* Moving an explicit heap, with all its blocks, to another thread:
 * hk_heap_release() detaches the heap from its owner (afterwards no thread
 * may allocate from it until it is adopted); hk_heap_adopt() attaches it to
 * the calling thread, which then allocates from, frees into and destroys it
 * as its own. Frees of its blocks made by any thread while it is in transit
 * are kept and applied on adoption. A heap may move any number of times.
 * Releasing a heap the caller does not own, allocating from a released
 * heap, or adopting a heap that is not released is reported and aborts. */
HK_API void       hk_heap_release(hk_heap_t *heap);
HK_API void       hk_heap_adopt(hk_heap_t *heap);

/* ---- Region pools ------------------------------------------------------ */

/* For work with a clear end (a request, a parse, a frame): blocks are bumped
 * out of 64 KiB pieces taken from a heap and never freed one by one; reset
 * makes all the memory available again, destroy returns it. A pool belongs
 * to the thread that owns its heap. Pool memory is not a heap block:
 * hk_free of a pool pointer is reported and aborts. */
typedef struct hk_pool_s hk_pool_t;
typedef struct hk_pool_stats_s {
    size_t handed_out;  /* bytes asked for since the last reset */
    size_t held;        /* bytes of heap memory the pool holds */
    size_t waste;       /* bytes left unused at the end of pieces */
    size_t pieces;      /* 64 KiB pieces held */
} hk_pool_stats_t;

/* A pool taking its memory from `heap` (NULL: the calling thread's heap). */
HK_API hk_pool_t *hk_pool_new(hk_heap_t *heap);
/* 16-byte aligned; requests over 16 KiB get a block of their own. */
HK_API HK_MALLOC_ATTR void *hk_pool_alloc(hk_pool_t *pool, size_t size);
HK_API HK_MALLOC_ATTR void *hk_pool_calloc(hk_pool_t *pool, size_t count, size_t size);
HK_API HK_MALLOC_ATTR void *hk_pool_aligned_alloc(hk_pool_t *pool, size_t alignment, size_t size);
HK_API char *hk_pool_strdup(hk_pool_t *pool, const char *s);
/* Frees a block of over 16 KiB early (the others go only with the pool). */
HK_API void  hk_pool_free_large(hk_pool_t *pool, void *block);
/* fn(arg) runs at the next reset or destroy, newest first (close files with
 * the pool). 0, or ENOMEM. */
HK_API int   hk_pool_cleanup_add(hk_pool_t *pool, void (*fn)(void *), void *arg);
/* Runs the cleanups, frees large blocks, keeps the pieces for the next round. */
HK_API void  hk_pool_reset(hk_pool_t *pool);
/* Runs the cleanups and gives every byte back to the heap. */
HK_API void  hk_pool_destroy(hk_pool_t *pool);
HK_API void  hk_pool_stats(hk_pool_t *pool, hk_pool_stats_t *out);

/* ---- Object caches ----------------------------------------------------- */

/* For many objects of one size allocated and freed again and again (as the
 * kernel's slab caches and GLib's slices): objects come from slabs of their
 * own, through per-thread magazines, so alloc and free on one thread take no
 * lock, and any thread may free any object of the cache.
 *
 * The constructor runs on every object when its slab is filled, the
 * destructor when the slab is given back (at shrink and destroy), never on
 * each alloc and free: an object keeps its constructed state across
 * hk_cache_free and the next hk_cache_alloc that returns it (Bonwick's
 * slab caches). A cache is shared by all threads; destroy it only when no
 * thread uses it any more. Freeing an object into a cache it does not come
 * from, or a pointer that is no object of the cache, is reported and
 * aborts. */
typedef struct hk_cache_s hk_cache_t;
typedef struct hk_cache_stats_s {
    size_t object_size;  /* bytes per object, as rounded to the alignment */
    size_t slab_size;    /* bytes per slab */
    size_t slabs;        /* slabs held */
    size_t objects;      /* objects the slabs hold (capacity) */
    size_t live;         /* objects allocated and not yet freed */
    size_t cached;       /* free objects in magazines (threads' and the depot's) */
    size_t free_in_slabs;/* free objects in the slabs */
} hk_cache_stats_t;     /* objects == live + cached + free_in_slabs */

/* Largest object size hk_cache_new accepts. */
#define HK_CACHE_MAX_SIZE ((size_t)256 * 1024)

/* name: for reports (copied, may be NULL). size: 1..HK_CACHE_MAX_SIZE.
 * align: 0 (16, or 8 for objects under 16 bytes) or a power of two up to
 * 4096. ctor/dtor may be NULL; ctor returns 0, or nonzero when it cannot
 * build the object (then the slab is not filled and alloc returns NULL with
 * ENOMEM). NULL with EINVAL for a bad size or alignment, ENOMEM when out of
 * memory. */
HK_API hk_cache_t *hk_cache_new(const char *name, size_t size, size_t align,
                                int (*ctor)(void *obj), void (*dtor)(void *obj));
HK_API HK_MALLOC_ATTR void *hk_cache_alloc(hk_cache_t *cache);
/* obj must come from hk_cache_alloc(cache); NULL is a no-op. */
HK_API void  hk_cache_free(hk_cache_t *cache, void *obj);
/* Gives back the free slabs (running the destructor on their objects),
 * after flushing the calling thread's magazines and the shared depot. */
HK_API void  hk_cache_shrink(hk_cache_t *cache);
/* Frees every slab; the destructor runs on the free objects. Objects still
 * allocated are released without their destructor, like hk_heap_destroy. */
HK_API void  hk_cache_destroy(hk_cache_t *cache);
HK_API void  hk_cache_stats(hk_cache_t *cache, hk_cache_stats_t *out);
HK_API const char *hk_cache_name(const hk_cache_t *cache);

/* True when p points into memory heapkit manages (any heap, any block, live
 * or free); a fast check of one table lookup. */
HK_API bool hk_is_heap_memory(const void *p);

/* ---- Statistics -------------------------------------------------------- */

/* Room for the small size classes (49 now); hk_stats_t.classes has one
 * entry each, block_size 0 past the last. Was 48: code built against that
 * header must be rebuilt (hk_stats_t grew). */
#define HK_STATS_CLASSES 64

typedef struct hk_class_stats_s {
    size_t block_size;   /* bytes per block of the class; 0 past the last class */
    size_t live_blocks;  /* blocks handed out and not yet freed */
    size_t slabs;        /* slabs of the class */
    size_t slab_bytes;   /* bytes of those slabs (capacity incl. free blocks) */
} hk_class_stats_t;

typedef struct hk_stats_s {
    size_t live_bytes;        /* usable bytes of live blocks */
    size_t live_bytes_peak;
    size_t committed_bytes;   /* bytes that may hold RSS (not decommitted) */
    size_t committed_peak;
    size_t mapped_bytes;      /* address space reserved from the OS */
    size_t mapped_peak;
    uint64_t mallocs;         /* blocks handed out, all sizes */
    uint64_t frees;           /* blocks freed, all sizes */
    size_t live_blocks;       /* mallocs - frees */
    size_t huge_live_bytes;   /* part of live_bytes in blocks mapped directly */
    size_t heaps;             /* heaps counted in this record */
    hk_class_stats_t classes[HK_STATS_CLASSES];
} hk_stats_t;

/* Statistics of one heap; call from its owner thread. */
HK_API void hk_heap_stats(hk_heap_t *heap, hk_stats_t *out);
/* The whole process: every thread's heap, exited threads, explicit heaps. */
HK_API void hk_stats(hk_stats_t *out);
/* Prints hk_stats() as text (or as one JSON object) to `out`. */
HK_API void hk_stats_print(FILE *out, bool json);

#ifdef __cplusplus
}
#endif
#endif /* HEAPKIT_H */
