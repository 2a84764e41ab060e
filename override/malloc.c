/* override/malloc.c: the C library's malloc family, served by heapkit.
 *
 * Owns: the exported malloc, free, calloc, realloc, reallocarray,
 * posix_memalign, aligned_alloc, memalign, valloc, pvalloc,
 * malloc_usable_size, and glibc's malloc_trim, malloc_stats, mallinfo,
 * mallinfo2 and mallopt. Built into libheapkit.so only, so
 * LD_PRELOAD=libheapkit.so (or linking -lheapkit) routes every allocation of
 * the program and its libraries to the thread-local heaps.
 * Calls: the public API and the inline fast paths (fastpath.h), so
 * malloc/free cost exactly what hk_malloc/hk_free cost.
 * Threads: as the public API.
 *
 * Promises kept from the C standard and glibc's manual pages: 16-byte
 * alignment; errno ENOMEM on failure; calloc overflow refused; realloc
 * failure leaves the block intact; EINVAL from posix_memalign for a bad
 * alignment; valloc and pvalloc page-aligned; malloc_usable_size honest.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal/fastpath.h"
#include "internal/debug.h" /* the debug library: every entry is checked */

#define EXPORT __attribute__((visibility("default")))

EXPORT void *malloc(size_t size) { return hk_malloc_fast(size); }
EXPORT void free(void *p) { hk_free_fast(p); }
EXPORT void cfree(void *p) { hk_free_fast(p); }
EXPORT void *calloc(size_t n, size_t size) { return hk_calloc(n, size); }
EXPORT void *realloc(void *p, size_t size) { return hk_realloc(p, size); }
EXPORT void *reallocarray(void *p, size_t n, size_t size) { return hk_reallocarray(p, n, size); }
EXPORT int posix_memalign(void **out, size_t align, size_t size) {
    return hk_posix_memalign(out, align, size);
}
EXPORT void *aligned_alloc(size_t align, size_t size) { return hk_aligned_alloc(align, size); }

/* memalign accepts any alignment: like glibc, round it up to a power of two. */
EXPORT void *memalign(size_t align, size_t size) {
    if (align > ((size_t)1 << 62)) {
        errno = EINVAL;
        return NULL;
    }
    size_t a = 1;
    while (a < align) a <<= 1;
    return hk_aligned_alloc(a, size);
}

EXPORT void *valloc(size_t size) { return hk_aligned_alloc((size_t)sysconf(_SC_PAGESIZE), size); }

EXPORT void *pvalloc(size_t size) {
    size_t ps = (size_t)sysconf(_SC_PAGESIZE);
    size_t rounded = (size + ps - 1) & ~(ps - 1);
    if (rounded < size) {
        errno = ENOMEM;
        return NULL;
    }
    return hk_aligned_alloc(ps, rounded ? rounded : ps);
}

EXPORT size_t malloc_usable_size(void *p) { return hk_usable_size(p); }

/* Returns free memory to the OS now; 1 when some was released. */
EXPORT int malloc_trim(size_t pad) {
    (void)pad;
    size_t before = _hk_os_mapped();
    hk_stats_t s0, s1;
    hk_stats(&s0);
    hk_collect(true);
    hk_stats(&s1);
    return s1.committed_bytes < s0.committed_bytes || _hk_os_mapped() < before;
}

EXPORT void malloc_stats(void) { hk_stats_print(stderr, false); }

/* glibc's fields, filled from heapkit's statistics: arena = bytes mapped,
 * uordblks = bytes in live blocks, fordblks = committed bytes not in live
 * blocks, hblks/hblkhd = huge blocks mapped directly, keepcost = committed
 * bytes that collect could release (cached and free). */
EXPORT struct mallinfo2 mallinfo2(void) {
    hk_stats_t s;
    hk_stats(&s);
    struct mallinfo2 m = {0};
    m.arena = s.mapped_bytes;
    m.uordblks = s.live_bytes;
    m.fordblks = s.committed_bytes > s.live_bytes ? s.committed_bytes - s.live_bytes : 0;
    m.hblkhd = s.huge_live_bytes;
    m.ordblks = s.live_blocks;
    m.usmblks = s.live_bytes_peak;
    m.keepcost = m.fordblks;
    return m;
}

EXPORT struct mallinfo mallinfo(void) {
    struct mallinfo2 m2 = mallinfo2();
    struct mallinfo m = {0};
    /* glibc's old struct has int fields: saturate rather than wrap. */
#define CLAMP(x) ((x) > (size_t)0x7fffffff ? 0x7fffffff : (int)(x))
    m.arena = CLAMP(m2.arena);
    m.uordblks = CLAMP(m2.uordblks);
    m.fordblks = CLAMP(m2.fordblks);
    m.hblkhd = CLAMP(m2.hblkhd);
    m.ordblks = CLAMP(m2.ordblks);
    m.usmblks = CLAMP(m2.usmblks);
    m.keepcost = CLAMP(m2.keepcost);
#undef CLAMP
    return m;
}

/* glibc's tuning knobs mostly describe its own arenas. heapkit honours
 * M_TRIM_THRESHOLD and M_DECAY-like intent through its decommit delay is not
 * promised; it accepts the knobs glibc programs commonly set (returning 1,
 * as glibc does, so they do not fail) and refuses the rest (returning 0). */
EXPORT int mallopt(int param, int value) {
    (void)value;
    switch (param) {
    case M_MXFAST:
    case M_TRIM_THRESHOLD:
    case M_TOP_PAD:
    case M_MMAP_THRESHOLD:
    case M_MMAP_MAX:
    case M_ARENA_MAX:
    case M_ARENA_TEST:
    case M_PERTURB:
    case M_CHECK_ACTION:
        return 1;
    default:
        return 0;
    }
}
