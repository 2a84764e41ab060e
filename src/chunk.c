/* chunk.c: 4 MiB chunks and huge blocks, and the global cache of both.
 *
 * Owns: the chunk map (one byte per possible chunk start, read by every free
 * to reject pointers heapkit does not own), the cache of fully free chunks
 * shared by all heaps, the cache of freed huge blocks, and the delayed
 * decommit of cached memory.
 * Calls: os.c.
 * Threads: the caches are under one spin lock (slow paths only); the chunk
 * map is written with atomic OR/AND and read with relaxed loads.
 *
 * Secure variant: every reservation gets guard pages (PROT_NONE) between
 * its metadata and its data and after its data (huge blocks too), and
 * random keys for the free-list codec; growing a huge block then moves it
 * by copying, since mremap cannot take the guarded mappings as one.
 *
 * Why caches: a thread that exits and a thread that starts should pass a
 * chunk along without mmap and page faults; a program that frees and
 * reallocates a multi-MiB block in a loop should get the same committed
 * pages back instead of faulting them in again (jemalloc and mimalloc run
 * that loop 4x slower than glibc). Cached memory is decommitted only after
 * it has stayed unused for the decommit delay.
 *
 * Under AddressSanitizer (asan.h): a new chunk's data is poisoned whole (it
 * is one free buddy block); a huge block is handed out with its tail past
 * the bytes asked for poisoned, is poisoned whole while cached, and its
 * tail follows realloc. Whatever is poisoned is cleared before the address
 * space goes back to the OS: ASan does not clear the shadow of an unmapped
 * range, and the next mapping there would inherit it.
 */
#define _GNU_SOURCE
#include <sched.h>

#include "internal/internal.h"

uint8_t _hk_chunk_map[HK_CHUNK_MAP_SLOTS];
uint8_t _hk_map_start = HK_MAP_START;

/* Size of a chunk's reservation: metadata pages, then the aligned data
 * (then, in the secure variant, the guard page after the data). */
#define CHUNK_RESERVE (HK_META_SIZE + HK_CHUNK_SIZE + HK_GUARD_SIZE)

static hk_lock_t cache_lock;
/* Free chunks, most recently freed first. Each is in the fully free state:
 * page 0 heads a free order-10 block, every other descriptor is inner. */
static hk_chunk_t *cached_chunks;
static size_t cached_chunk_count;
/* Freed huge blocks kept for reuse, most recent first, and their bytes. */
static hk_chunk_t *cached_huge;
static size_t cached_huge_bytes;
/* When the caches were last purged (ms); read without the lock to skip
 * the purge cheaply when it is not due. */
static _Atomic(uint64_t) last_purge;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

void _hk_lock(hk_lock_t *l) {
    for (unsigned spins = 0;; spins++) {
        if (!hk_load_relaxed(&l->held) &&
            !atomic_exchange_explicit(&l->held, 1, memory_order_acquire))
            return;
        if (spins > 64) sched_yield();
        else cpu_relax();
    }
}

static void map_set(uintptr_t data, bool on) {
    __atomic_store_n(&_hk_chunk_map[data >> HK_CHUNK_SHIFT], on ? _hk_map_start : HK_MAP_NONE,
                     __ATOMIC_RELEASE);
}

/* The slots after the first that a huge block's data [data, data + bytes)
 * covers: HK_MAP_HUGE_TAIL while mapped. No other chunk can start in them
 * (the reservation owns their first byte). */
static void map_set_tail(uintptr_t data, size_t bytes, bool on) {
    uintptr_t first = (data >> HK_CHUNK_SHIFT) + 1, end = (data + bytes - 1) >> HK_CHUNK_SHIFT;
    for (uintptr_t slot = first; slot <= end && slot < HK_CHUNK_MAP_SLOTS; slot++)
        __atomic_store_n(&_hk_chunk_map[slot], on ? HK_MAP_HUGE_TAIL : HK_MAP_NONE,
                         __ATOMIC_RELEASE);
}

/* ---- Normal chunks ------------------------------------------------------- */

static void chunk_init_fresh(hk_chunk_t *c) {
    /* Fresh memory reads zero: every descriptor is inner and uncommitted,
     * which is already right; only page 0 needs to head the free block. */
    c->h.kind = HK_CHUNK_NORMAL;
    c->pages[0].kind = HK_PAGE_FREE;
    c->pages[0].order = HK_MAX_ORDER;
}

hk_chunk_t *_hk_chunk_alloc(void) {
    _hk_lock(&cache_lock);
    hk_chunk_t *c = cached_chunks;
    if (c) {
        cached_chunks = c->h.next;
        cached_chunk_count--;
    }
    hk_unlock(&cache_lock);
    if (c) {
        c->h.next = c->h.prev = NULL;
        c->h.meta_decommitted = 0;
        return c;
    }
    uint8_t *base = _hk_os_reserve(CHUNK_RESERVE, HK_CHUNK_SIZE, HK_META_SIZE);
    if (base == NULL) return NULL;
    c = (hk_chunk_t *)base;
#if HK_SECURE
    /* Fail closed: a chunk the kernel would not guard is not handed out. */
    if (_hk_secure_guard(hk_chunk_data(c), HK_CHUNK_SIZE) != 0) {
        _hk_os_release(base, CHUNK_RESERVE);
        return NULL;
    }
    _hk_secure_chunk_keys(c);
#endif
#if HK_DEBUG_MODE
    /* The debug library's quarantine keeps 16 MiB per thread out of reuse,
     * so its heaps grow by tens of MiB that are all written (patterns):
     * faulting those in 4 KiB at a time was a tenth of a small program's
     * time (10700 faults for wl_small's 0.2 s). In huge pages a chunk
     * costs two faults; the plain library does not ask (a small program
     * would pay megabytes of RSS for a few slabs). */
    if (_hk_options.thp) _hk_os_prefer_huge_pages(base, CHUNK_RESERVE);
#endif
    chunk_init_fresh(c);
    hk_asan_poison(hk_chunk_data(c), HK_CHUNK_SIZE); /* ASan: all free */
    map_set((uintptr_t)hk_chunk_data(c), true);
    return c;
}

/* Unmaps a chunk of the cache (fully free, so poisoned whole under ASan). */
static void chunk_unmap(hk_chunk_t *c) {
    map_set((uintptr_t)hk_chunk_data(c), false);
    hk_asan_unpoison(hk_chunk_data(c), HK_CHUNK_SIZE);
    _hk_os_release(c, CHUNK_RESERVE);
}

/* Decommits a cached chunk: its data, and the descriptor pages past the
 * first (they read zero afterwards: inner and uncommitted, as wanted).
 * The flags change only for what the OS really decommitted: a flag that
 * says "uncommitted" promises calloc zeroed memory. */
static void chunk_decommit(hk_chunk_t *c) {
    if (c->h.meta_decommitted) return;
    if (c->h.committed_pages != 0) {
        if (_hk_os_decommit(hk_chunk_data(c), HK_CHUNK_SIZE) != 0) return; /* e.g. mlockall */
        c->h.committed_pages = 0;
    }
    /* The data is all decommitted now. The descriptor pages past the first
     * can go too; if the OS refuses, clear their flags by hand. */
    size_t first = HK_PAGE_SIZE;
    size_t in_first = (first - offsetof(hk_chunk_t, pages)) / sizeof(hk_page_t);
    if (_hk_os_decommit((uint8_t *)c + first, HK_META_USED - first) != 0)
        for (size_t i = in_first; i < HK_CHUNK_PAGES; i++) c->pages[i].committed = 0;
    for (size_t i = 0; i < in_first; i++) c->pages[i].committed = 0;
    c->h.meta_decommitted = 1;
}

void _hk_chunk_free(hk_chunk_t *c) {
    hk_assert(c->h.used_pages == 0 && c->pages[0].kind == HK_PAGE_FREE &&
              c->pages[0].order == HK_MAX_ORDER);
    c->h.heap = NULL;
    atomic_store_explicit(&c->h.owner_tid, 0, memory_order_relaxed);
    c->h.cached_at = _hk_os_now_ms();
    hk_chunk_t *evict = NULL;
    _hk_lock(&cache_lock);
    if (cached_chunk_count >= (size_t)_hk_options.chunk_cache) {
        evict = c; /* the cache is full: give this one back to the OS */
    } else {
        c->h.next = cached_chunks;
        cached_chunks = c;
        cached_chunk_count++;
    }
    hk_unlock(&cache_lock);
    if (evict) chunk_unmap(evict);
}

/* ---- Huge blocks --------------------------------------------------------- */

static size_t huge_reserve_size(hk_chunk_t *c) {
    return HK_META_SIZE + c->h.huge_reserved + HK_GUARD_SIZE;
}

#if HK_ASAN
/* ASan: the shadow of a huge block that was live until now and is about to
 * be unmapped or moved: its tail past the bytes asked for, and its link
 * word (a remote free into an explicit heap writes it, heap.c). The bytes
 * in between were never poisoned, and a block can be large: they are left
 * as they are. */
static void asan_huge_clear_live(hk_chunk_t *c) {
    uint8_t *data = hk_chunk_data(c);
    hk_asan_unpoison(data, sizeof(hk_block_t));
    hk_asan_unpoison(data + c->h.huge_size, c->h.huge_reserved - c->h.huge_size);
}
/* ASan: a huge block that held `old` bytes now holds c->h.huge_size: the
 * bytes gained become addressable, the tail to the reservation poisoned. */
static void asan_huge_resized(hk_chunk_t *c, size_t old) {
    uint8_t *data = hk_chunk_data(c);
    size_t size = c->h.huge_size;
    if (size > old) hk_asan_unpoison(data + old, size - old);
    hk_asan_poison(data + size, c->h.huge_reserved - size);
}
#endif

/* Warm bytes of cached-then-reused blocks beyond their requests: bounded
 * by half the cache budget, so a program that keeps small blocks made from
 * large cached ones pins only so much committed memory (under cache_lock). */
static size_t huge_slack_bytes;

/* Takes a cached huge block for a request of `need` bytes: the largest of
 * those that hold it and are at most four times as large (a cached block
 * was in use until its free, so all of it counts as resident). Serving every size
 * of a loop such as 2, 4, 8, 3 and 6 MiB from one warm 8 MiB block, as
 * glibc serves them from the top of its heap, keeps one block per thread
 * resident instead of one per size; the smaller blocks left unused age out
 * of the cache. The warm part past the request stays committed while the
 * slack budget allows; beyond it, the part past twice the request is
 * decommitted so a reused block holds little more RSS than a fresh one. */
static hk_chunk_t *huge_from_cache(size_t need) {
    size_t limit = (size_t)_hk_options.huge_cache_mb << 20;
    hk_chunk_t **best = NULL;
    _hk_lock(&cache_lock);
    for (hk_chunk_t **pp = &cached_huge; *pp; pp = &(*pp)->h.next) {
        size_t r = (*pp)->h.huge_reserved;
        if (r >= need && r / 4 <= need && (best == NULL || r > (*best)->h.huge_reserved))
            best = pp;
    }
    hk_chunk_t *found = NULL;
    size_t cut = 0;
    if (best) {
        found = *best;
        *best = found->h.next;
        cached_huge_bytes -= found->h.huge_reserved;
        size_t slack = found->h.huge_reserved - need;
        if (slack > 0 && huge_slack_bytes + slack <= limit / 2) {
            found->h.huge_slack = slack;
            huge_slack_bytes += slack;
        } else if (found->h.huge_reserved / 2 > need) {
            cut = (need + _hk_os_page_size - 1) & ~(_hk_os_page_size - 1);
        }
    }
    hk_unlock(&cache_lock);
    if (cut && cut < found->h.huge_reserved)
        _hk_os_decommit(hk_chunk_data(found) + cut, found->h.huge_reserved - cut);
    return found;
}

/* Gives a block's slack back to the budget (the block is freed or resized). */
static void huge_drop_slack(hk_chunk_t *c) {
    if (c->h.huge_slack == 0) return;
    _hk_lock(&cache_lock);
    huge_slack_bytes -= c->h.huge_slack;
    hk_unlock(&cache_lock);
    c->h.huge_slack = 0;
}

/* When no cached block holds `need`: grows the largest cached one into it
 * (mremap: in place, or its pages moved without a copy), so only the
 * difference is fresh memory. A program whose blocks grow (2, then 4, then
 * 8 MiB) then keeps one block resident, as glibc extends the top of its
 * heap, instead of one per size. NULL when nothing is cached or the block
 * cannot grow (it goes back to the cache). */
static hk_chunk_t *huge_grow_cached(size_t need) {
#if HK_SECURE
    (void)need;
    return NULL; /* guard pages: huge blocks do not grow in place */
#else
    hk_chunk_t **best = NULL;
    _hk_lock(&cache_lock);
    for (hk_chunk_t **pp = &cached_huge; *pp; pp = &(*pp)->h.next)
        if (best == NULL || (*pp)->h.huge_reserved > (*best)->h.huge_reserved) best = pp;
    hk_chunk_t *c = NULL;
    if (best) {
        c = *best;
        *best = c->h.next;
        cached_huge_bytes -= c->h.huge_reserved;
    }
    hk_unlock(&cache_lock);
    if (c == NULL) return NULL;
#if HK_ASAN
    /* Poisoned whole while cached: made a live block of its full size, as
     * _hk_huge_resize expects (it poisons the new tail). */
    hk_asan_unpoison(hk_chunk_data(c), c->h.huge_reserved);
    c->h.huge_size = c->h.huge_reserved;
#endif
    hk_chunk_t *grown = _hk_huge_resize(c, need);
    if (grown == NULL) _hk_huge_free(c);
    return grown;
#endif
}

hk_chunk_t *_hk_huge_alloc(size_t size, size_t align, bool *zeroed) {
    size_t need = (size + HK_PAGE_SIZE - 1) & ~(HK_PAGE_SIZE - 1);
    if (need < size || need > SIZE_MAX / 2) return NULL;
    hk_chunk_t *c = NULL;
    if (align <= HK_CHUNK_SIZE) {
        c = huge_from_cache(need);
        if (c == NULL) c = huge_grow_cached(need);
    }
    if (c) {
        *zeroed = false;
        /* ASan: poisoned whole while cached (a grown one, past its new
         * reservation's first `need` bytes): the request addressable, the
         * rest poisoned. */
        hk_asan_unpoison(hk_chunk_data(c), size);
        hk_asan_poison(hk_chunk_data(c) + size, c->h.huge_reserved - size);
    } else {
        if (align < HK_CHUNK_SIZE) align = HK_CHUNK_SIZE;
        uint8_t *base = _hk_os_reserve(HK_META_SIZE + need + HK_GUARD_SIZE, align, HK_META_SIZE);
        if (base == NULL) return NULL;
        c = (hk_chunk_t *)base;
#if HK_SECURE
        if (_hk_secure_guard(base + HK_META_SIZE, need) != 0) {
            _hk_os_release(base, HK_META_SIZE + need + HK_GUARD_SIZE);
            return NULL;
        }
        _hk_secure_chunk_keys(c);
#endif
        if (_hk_options.thp) _hk_os_prefer_huge_pages(base, HK_META_SIZE + need + HK_GUARD_SIZE);
        c->h.kind = HK_CHUNK_HUGE;
        c->h.huge_reserved = need;
        c->h.huge_base = base;
        map_set_tail((uintptr_t)hk_chunk_data(c), need, true);
        map_set((uintptr_t)hk_chunk_data(c), true);
        *zeroed = true;
        /* ASan: a new mapping's shadow is taken as clear (asan.h); only
         * the tail past the bytes asked for is poisoned. */
        hk_asan_poison(hk_chunk_data(c) + size, need - size);
    }
    c->h.huge_size = size;
    c->h.next = c->h.prev = NULL;
    return c;
}

/* Unmaps a huge block: one of the cache (poisoned whole under ASan) or, with
 * cached false, one freed while live. */
static void huge_unmap(hk_chunk_t *c, bool cached) {
#if HK_ASAN
    if (cached) hk_asan_unpoison(hk_chunk_data(c), c->h.huge_reserved);
    else asan_huge_clear_live(c);
#else
    (void)cached;
#endif
    map_set((uintptr_t)hk_chunk_data(c), false);
    map_set_tail((uintptr_t)hk_chunk_data(c), c->h.huge_reserved, false);
    _hk_os_release(c, huge_reserve_size(c));
}

/* Caches a freed huge block (newest first) within the budget of committed
 * bytes, evicting the oldest entries to make room: the cache is there to
 * serve a program that frees and allocates similar sizes in a loop, not to
 * hold on to every block ever freed. */
void _hk_huge_free(hk_chunk_t *c) {
    size_t limit = (size_t)_hk_options.huge_cache_mb << 20;
#if HK_SECURE
    /* A block dropped from a destroyed heap's remote queue still has its
     * pending bit: a reused block must start clear. */
    hk_store_relaxed(&c->bits[0].pending, 0);
#endif
    huge_drop_slack(c);
    c->h.heap = NULL;
    c->h.cached_at = _hk_os_now_ms();
    if (c->h.huge_reserved > limit / 2) {
        huge_unmap(c, false);
        return;
    }
    /* ASan: poisoned whole before another thread can take it from the cache. */
    hk_asan_poison(hk_chunk_data(c), c->h.huge_reserved);
    hk_chunk_t *evict = NULL;
    _hk_lock(&cache_lock);
    c->h.next = cached_huge;
    cached_huge = c;
    cached_huge_bytes += c->h.huge_reserved;
    while (cached_huge_bytes > limit) {
        /* Evict the oldest: the last entry of the list. */
        hk_chunk_t **pp = &cached_huge;
        while ((*pp)->h.next) pp = &(*pp)->h.next;
        hk_chunk_t *old = *pp;
        *pp = NULL;
        cached_huge_bytes -= old->h.huge_reserved;
        old->h.next = evict;
        evict = old;
    }
    hk_unlock(&cache_lock);
    while (evict) {
        hk_chunk_t *e = evict;
        evict = e->h.next;
        huge_unmap(e, true);
    }
}

hk_chunk_t *_hk_huge_resize(hk_chunk_t *c, size_t size) {
    size_t need = (size + HK_PAGE_SIZE - 1) & ~(HK_PAGE_SIZE - 1);
    if (need < size) return NULL;
    huge_drop_slack(c); /* a block resized is sized for its use */
    if (need <= c->h.huge_reserved) {
        /* Shrinking by more than half gives the tail back; otherwise the
         * block stays as it is, ready to grow again. */
        size_t keep = (need + _hk_os_page_size - 1) & ~(_hk_os_page_size - 1);
        if (need < c->h.huge_reserved / 2 && keep < c->h.huge_reserved)
            _hk_os_decommit(hk_chunk_data(c) + keep, c->h.huge_reserved - keep);
#if HK_ASAN
        size_t old = c->h.huge_size;
        c->h.huge_size = size;
        asan_huge_resized(c, old);
#else
        c->h.huge_size = size;
#endif
        return c;
    }
#if HK_SECURE
    /* Secure: the guard pages split the reservation into several mappings,
     * which mremap cannot grow or move as one; realloc moves the block by
     * copying instead. */
    return NULL;
#endif
    /* Grow by at least an eighth, so a block grown a little at a time is
     * remapped O(log n) times. */
    size_t grown = c->h.huge_reserved + c->h.huge_reserved / 8;
    if (grown > need) need = (grown + HK_PAGE_SIZE - 1) & ~(HK_PAGE_SIZE - 1);
    size_t old_size = huge_reserve_size(c), new_size = HK_META_SIZE + need;
    if (_hk_os_resize(c, old_size, new_size) == 0) {
        map_set_tail((uintptr_t)hk_chunk_data(c), need, true);
        c->h.huge_reserved = need;
#if HK_ASAN
        size_t old = c->h.huge_size;
        c->h.huge_size = size;
        asan_huge_resized(c, old); /* the grown part's shadow is set whole */
#else
        c->h.huge_size = size;
#endif
        return c; /* grown in place: same address, same map slot */
    }
    /* Move into a fresh aligned reservation. The map byte of the old slot is
     * cleared before the old range is released (another thread may map a
     * chunk there the moment it is), and set for the new one before. */
    uint8_t *dst = _hk_os_reserve(new_size, HK_CHUNK_SIZE, HK_META_SIZE);
    if (dst == NULL) return NULL;
    uintptr_t old_data = (uintptr_t)hk_chunk_data(c);
    uintptr_t new_data = (uintptr_t)dst + HK_META_SIZE;
    size_t old_reserved = c->h.huge_reserved;
    map_set_tail(new_data, need, true);
    map_set(new_data, true);
    map_set(old_data, false);
    map_set_tail(old_data, old_reserved, false);
#if HK_ASAN
    /* The old range leaves clear; the new one is taken as clear. */
    asan_huge_clear_live(c);
    size_t old = c->h.huge_size;
#endif
    if (_hk_os_move(c, old_size, dst, new_size) != 0) {
#if HK_ASAN
        hk_asan_poison(old_data + old, old_reserved - old);
#endif
        map_set_tail(old_data, old_reserved, true);
        map_set(old_data, true);
        map_set(new_data, false);
        map_set_tail(new_data, need, false);
        _hk_os_release(dst, new_size);
        return NULL;
    }
    hk_chunk_t *n = (hk_chunk_t *)dst;
    n->h.huge_reserved = need;
    n->h.huge_size = size;
    n->h.huge_base = dst;
#if HK_ASAN
    asan_huge_resized(n, old);
#endif
    return n;
}

/* ---- Delayed decommit ------------------------------------------------------ */

void _hk_chunk_cache_purge(bool force) {
    uint64_t delay = (uint64_t)_hk_options.decommit_delay_ms;
    if (!force && _hk_os_now_ms() - hk_load_relaxed(&last_purge) < delay / 4 + 1)
        return;
    hk_chunk_t *release = NULL;
    _hk_lock(&cache_lock);
    /* Read under the lock: an entry cached after an earlier reading would
     * look as if it had waited for ever. */
    uint64_t now = _hk_os_now_ms();
    hk_store_relaxed(&last_purge, now);
    /* Chunks: decommit those cached for the delay. They stay reserved (and
     * in the cache) so a new thread takes them without mmap. */
    for (hk_chunk_t *c = cached_chunks; c; c = c->h.next) {
        if (force || now - c->h.cached_at >= delay) chunk_decommit(c);
    }
    /* Huge blocks: unmap those cached for the delay. */
    for (hk_chunk_t **pp = &cached_huge; *pp;) {
        hk_chunk_t *c = *pp;
        if (force || now - c->h.cached_at >= delay) {
            *pp = c->h.next;
            cached_huge_bytes -= c->h.huge_reserved;
            c->h.next = release;
            release = c;
        } else {
            pp = &c->h.next;
        }
    }
    hk_unlock(&cache_lock);
    while (release) {
        hk_chunk_t *c = release;
        release = c->h.next;
        huge_unmap(c, true);
    }
}

size_t _hk_chunk_cache_committed(void) {
    size_t bytes = 0;
    _hk_lock(&cache_lock);
    for (hk_chunk_t *c = cached_chunks; c; c = c->h.next)
        bytes += (size_t)c->h.committed_pages << HK_PAGE_SHIFT;
    bytes += cached_huge_bytes;
    hk_unlock(&cache_lock);
    return bytes;
}

/* ---- fork ------------------------------------------------------------------ */

void _hk_chunk_fork_prepare(void) { _hk_lock(&cache_lock); }
void _hk_chunk_fork_parent(void) { hk_unlock(&cache_lock); }
void _hk_chunk_fork_child(void) { atomic_store(&cache_lock.held, 0); }
