/* os.c: the only file that talks to the kernel about memory.
 *
 * Owns: mmap, munmap, madvise, mremap, the page size, the monotonic clock,
 * and the process-wide count of reserved bytes; in the secure variant also
 * mprotect (guard pages, the debug variant's too) and getrandom (the keys
 * of the free-list codec).
 * Calls: nothing of heapkit but error.c for warnings.
 * Threads: every function is thread-safe (the counters are atomics).
 *
 * Contract (internal.h): page-aligned inputs; an int error code out (0 or
 * an errno value) and errno left as the caller had it, because the public
 * API promises errno only on failure and madvise/munmap may clobber it.
 */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#if HK_SECURE
#include <sys/random.h>
#endif

#include "internal/internal.h"

size_t _hk_os_page_size = 4096;
static _Atomic(size_t) os_mapped, os_mapped_peak;

void _hk_os_init(void) {
    long ps = sysconf(_SC_PAGESIZE);
    if (ps > 0) _hk_os_page_size = (size_t)ps;
}

static void note_mapped(ptrdiff_t delta) {
    size_t now = hk_add_relaxed(&os_mapped, (size_t)delta) + (size_t)delta;
    size_t peak = hk_load_relaxed(&os_mapped_peak);
    while (now > peak &&
           !atomic_compare_exchange_weak_explicit(&os_mapped_peak, &peak, now,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
}

size_t _hk_os_mapped(void) { return hk_load_relaxed(&os_mapped); }
size_t _hk_os_mapped_peak(void) { return hk_load_relaxed(&os_mapped_peak); }

static void *map_anon(void *hint, size_t size) {
    /* No MAP_NORESERVE: the kernel's overcommit check then refuses absurd
     * sizes (as it does for glibc) instead of handing out address space
     * that faults later. */
    void *p = mmap(hint, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void *_hk_os_reserve(size_t size, size_t align, size_t offset) {
    int saved = errno;
    if (align <= _hk_os_page_size) align = 0;
    /* Over-reserve by the alignment, then cut both ends away. */
    size_t total = size + align;
    if (total < size) { errno = saved; return NULL; }
    uint8_t *p = map_anon(NULL, total);
    if (p == NULL) { errno = saved; return NULL; }
    uint8_t *start = p;
    if (align) {
        uintptr_t want = ((uintptr_t)p + offset + align - 1) & ~(uintptr_t)(align - 1);
        start = (uint8_t *)(want - offset);
        if (start > p) munmap(p, (size_t)(start - p));
        uint8_t *end = start + size, *total_end = p + total;
        if (total_end > end) munmap(end, (size_t)(total_end - end));
    }
    note_mapped((ptrdiff_t)size);
    errno = saved;
    return start;
}

int _hk_os_release(void *p, size_t size) {
    int saved = errno;
    int rc = munmap(p, size) == 0 ? 0 : errno;
    if (rc == 0) note_mapped(-(ptrdiff_t)size);
    errno = saved;
    return rc;
}

int _hk_os_decommit(void *p, size_t size) {
    /* The caller passes whole OS pages (see _hk_os_page_size): decommitting
     * part of an OS page would zero memory still in use next to it. */
    uintptr_t ps = _hk_os_page_size;
    uintptr_t start = (uintptr_t)p, end = start + size;
    if ((start | end) & (ps - 1)) return EINVAL;
    if (end <= start) return 0;
    int saved = errno;
    /* MADV_DONTNEED, not MADV_FREE: RSS falls at once and the pages read
     * zero afterwards, which lets calloc skip clearing them. */
    int rc = madvise((void *)start, end - start, MADV_DONTNEED) == 0 ? 0 : errno;
    errno = saved;
    return rc;
}

void _hk_os_prefer_huge_pages(void *p, size_t size) {
#ifdef MADV_HUGEPAGE
    /* The whole reservation, not only its aligned interior: the kernel puts
     * huge pages only in aligned 2 MiB (PMD) ranges that lie wholly inside
     * the mapping, and one madvise over the whole mapping keeps it one VMA
     * where a part would split it in two. Faulting in 512 pages at once
     * makes a fresh multi-MiB block about 3.5x cheaper to touch (41 ms
     * against 12 ms for 64 MiB here); the cost is RSS for a block touched
     * sparsely, which HEAPKIT_THP=0 avoids. */
    int saved = errno;
    (void)madvise(p, size, MADV_HUGEPAGE);
    errno = saved;
#else
    (void)p;
    (void)size;
#endif
}

int _hk_os_resize(void *p, size_t old_size, size_t new_size) {
    int saved = errno;
    int rc = mremap(p, old_size, new_size, 0) != MAP_FAILED ? 0 : errno;
    if (rc == 0) note_mapped((ptrdiff_t)new_size - (ptrdiff_t)old_size);
    errno = saved;
    return rc;
}

int _hk_os_move(void *p, size_t old_size, void *dst, size_t new_size) {
    int saved = errno;
    /* The kernel moves the page tables: no copy. dst was reserved by the
     * caller (_hk_os_reserve counted it); mremap replaces that mapping. */
    int rc = mremap(p, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, dst) != MAP_FAILED
                 ? 0 : errno;
    if (rc == 0) note_mapped(-(ptrdiff_t)old_size);
    errno = saved;
    return rc;
}

uint64_t _hk_os_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#if HK_SECURE || HK_DEBUG_MODE
int _hk_os_protect(void *p, size_t size) {
    /* Whole OS pages only, rounded inward: with 16/64 KiB kernel pages a
     * 4 KiB guard protects nothing rather than a neighbour in use. */
    uintptr_t ps = _hk_os_page_size;
    uintptr_t start = ((uintptr_t)p + ps - 1) & ~(ps - 1);
    uintptr_t end = ((uintptr_t)p + size) & ~(ps - 1);
    if (end <= start) return 0;
    int saved = errno;
    int rc = mprotect((void *)start, end - start, PROT_NONE) == 0 ? 0 : errno;
    errno = saved;
    return rc;
}
#endif

#if HK_SECURE
/* splitmix64's finaliser: spreads a weak seed over all 64 bits. */
static uint64_t mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

void _hk_os_random(uint64_t *out, size_t n) {
    int saved = errno;
    size_t bytes = n * sizeof *out, got = 0;
    /* GRND_NONBLOCK: a process that starts before the kernel's pool is
     * ready (early boot) must not hang in malloc; it falls back below. */
    while (got < bytes) {
        ssize_t r = getrandom((uint8_t *)out + got, bytes - got, GRND_NONBLOCK);
        if (r > 0) got += (size_t)r;
        else if (r < 0 && errno == EINTR) continue;
        else break;
    }
    if (got < bytes) {
        /* No getrandom (seccomp, old kernel, pool not ready): a per-call
         * mix of the clock, an address of this call's stack (randomised by
         * ASLR) and a counter. Weak against a local observer, but never
         * the same twice and never zero-filled. */
        static _Atomic(uint64_t) calls;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^
                        (uint64_t)(uintptr_t)&ts ^ (uint64_t)getpid() << 16;
        seed += hk_add_relaxed(&calls, 1) * 0x9e3779b97f4a7c15ull;
        for (size_t i = 0; i < n; i++) out[i] = mix64(seed + i * 0x9e3779b97f4a7c15ull);
    }
    errno = saved;
}
#endif
