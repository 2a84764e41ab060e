/* asan.h: AddressSanitizer's manual poisoning, or nothing.
 *
 * When heapkit itself is compiled with -fsanitize=address (the build-asan/
 * tree), memory inside heapkit's chunks that is not part of a live block is
 * poisoned, so a program that reads or writes a freed block, a slab slot
 * never handed out, the slack past the bytes it asked for, a free buddy
 * block or a cached huge block gets an AddressSanitizer report
 * (use-after-poison) at the faulting instruction. Every other build
 * compiles none of it: the macros below are empty and do not evaluate
 * their arguments, so the release libraries are the same code as before.
 *
 * The states, by layer (docs/design.md, "Under AddressSanitizer"):
 *   live block         the bytes asked for are addressable, the rest of the
 *                      block (to its usable size) is poisoned; asking
 *                      hk_usable_size() makes all usable bytes addressable,
 *                      since the API promises them to the caller
 *   free slab block    poisoned whole, its link included (slab.c, heap.c)
 *   uncarved slab part poisoned (it is free buddy memory that became a slab)
 *   free buddy block   poisoned (buddy.c), and so is a chunk's data when it
 *                      is first mapped, reset by hk_heap_destroy or cached
 *   huge block         [0, asked) addressable, the tail to the reservation
 *                      poisoned; poisoned whole while in the huge cache
 *   pool, cache        the pool's bump space beyond the bump pointer, and a
 *                      cache's free objects (pool.c, cache.c)
 * Memory heapkit gives back to the OS leaves with its poison cleared
 * (chunk.c): ASan clears the shadow neither at munmap nor at mmap (gcc
 * 12's libasan, checked), so whatever is mapped there later, a chunk of
 * ours or a library's data, would inherit it. Shadow of new mappings is
 * taken as clear: heapkit's own poison never outlives its mapping, and
 * clearing every byte of a new huge block would write shadow for all of
 * it (a new chunk is poisoned whole anyway).
 *
 * Links: heapkit keeps its free lists in the first word of free blocks
 * (slab lists and remote queues; encoded in the secure variant). Every
 * read and write of such a word goes through hk_link_read()/hk_link_write()
 * (internal.h), which unpoison that word alone for the access and poison it
 * again. A block that another thread pushes onto a remote queue is poisoned
 * by that thread before the compare-and-swap that publishes it (release),
 * so the owner, which takes the queue with an acquire exchange, never sees
 * a shadow write of the pusher after it has the block.
 *
 * Races: (un)poisoning writes shadow bytes, one per 8-byte granule, with
 * plain stores. Two threads never write the shadow of the same granule at
 * once: every heapkit block starts and ends on a multiple of 8 (slab block
 * sizes are multiples of 8, medium and huge blocks whole pages, and blocks
 * start at their slab's or chunk's page-aligned start plus a multiple of
 * their size), so no granule holds bytes of two blocks, and a block's
 * shadow is written only by the thread that holds the block (its owner, or
 * the one freeing it before it is published).
 */
#ifndef HK_ASAN_H
#define HK_ASAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__SANITIZE_ADDRESS__)
#define HK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HK_ASAN 1
#endif
#endif
#ifndef HK_ASAN
#define HK_ASAN 0
#endif

#if HK_ASAN
#include <sanitizer/asan_interface.h>

/* [p, p + n) becomes unaddressable. A partial granule at the start keeps
 * its bytes before p addressable; one at the end is poisoned only when it
 * holds nothing addressable past p + n (ASan's rule: a granule can only be
 * "the first k bytes addressable"). */
#define hk_asan_poison(p, n)   __asan_poison_memory_region((const void *)(p), (size_t)(n))
/* [p, p + n) becomes addressable (a partial last granule: its first bytes). */
#define hk_asan_unpoison(p, n) __asan_unpoison_memory_region((const void *)(p), (size_t)(n))
/* True when any byte of [p, p + n) is poisoned. */
#define hk_asan_is_poisoned(p, n) \
    (__asan_region_is_poisoned((void *)(uintptr_t)(p), (size_t)(n)) != NULL)

/* A block of `usable` bytes at p handed out for `size` of them (size <=
 * usable): the bytes asked for addressable, the slack poisoned, whatever
 * the block's state before. usable and p are multiples of 8, so the last
 * granule of [p, p + size) may be partial, and ASan then records it as
 * "the first size % 8 bytes addressable". */
static inline void hk_asan_live(const void *p, size_t size, size_t usable) {
    hk_asan_unpoison(p, size);
    if (usable > size) hk_asan_poison((const char *)p + size, usable - size);
}
/* A function that reads memory it does not own on purpose (the debug
 * library's conservative leak scan): not instrumented. */
#define HK_NO_ASAN __attribute__((no_sanitize_address))
#else
/* Nothing, and the arguments are not evaluated (sizeof only names them). */
#define HK_NO_ASAN
#define hk_asan_poison(p, n)      ((void)sizeof(p), (void)sizeof(n))
#define hk_asan_unpoison(p, n)    ((void)sizeof(p), (void)sizeof(n))
#define hk_asan_is_poisoned(p, n) ((void)sizeof(p), (void)sizeof(n), false)
#define hk_asan_live(p, size, usable) ((void)sizeof(p), (void)sizeof(size), (void)sizeof(usable))
#endif

#endif /* HK_ASAN_H */
