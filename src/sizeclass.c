/* sizeclass.c: the table of small size classes.
 *
 * Owns: block sizes, slab sizes and the direct lookup table for sizes up to
 * 1 KiB. Calls nothing. Built once by _hk_init() before any heap exists;
 * read-only afterwards.
 *
 * Classes: 8, then multiples of 16 up to 128, then four per doubling
 * (160, 192, 224, 256, 320, ...) up to 32 KiB, except eight from 1 KiB to
 * 2 KiB (1152, 1280, 1408, ...) and from 4 KiB to 8 KiB (4608, 5120, 5632,
 * ...): 49 classes. Rounding a size up to its class wastes under 20% at
 * worst and under 8% on average (the test in tests/unit/test_sizeclass.c
 * measures it). Every class past 8 is a multiple of 16, so blocks are
 * 16-byte aligned.
 *
 * Why eight between 4 and 8 KiB: a page plus a header is a common request
 * (SQLite's page cache asks for 4096 + 272 bytes per page, buffers of a
 * page with their bookkeeping), and with four classes it takes a 5120-byte
 * block, 15-20% of it wasted on what is often most of a program's memory
 * (real-sqlite: 18 MiB of such pages). With 4608 the waste is 5%. Each
 * new class's slab holds exactly 8 blocks (9, 11, 13 or 15 pages).
 *
 * Why eight between 1 and 2 KiB: the same shape a size down (a KiB plus a
 * header). real-sqlite holds 9400 blocks of 1032 bytes at its peak (9.7 MB),
 * which took the 1280 class (19% wasted, and its 4-page slabs leave 1 KiB
 * at their end); 1152 wastes 10%. Its peak RSS fell from 33.9 to 32.3 MiB
 * (glibc 29.0).
 *
 * Slabs: for each class, the fewest pages (at least 4, at most 64) that hold
 * enough blocks and waste at most 1/16 of the slab at its end. The buddy's
 * exact allocation lets a slab be any number of pages, e.g. 5 pages hold
 * exactly 4 blocks of 5 KiB.
 */
#include "internal/internal.h"

hk_class_t _hk_classes[HK_CLASSES];
unsigned _hk_class_count;
uint8_t _hk_class_direct[HK_DIRECT_SLOTS];

static void choose_slab(hk_class_t *k) {
    size_t bs = k->block_size;
    size_t min_blocks = bs <= 1024 ? 16 : bs <= 8192 ? 8 : 4;
    size_t best_pages = 0, best_waste = SIZE_MAX;
    for (size_t pages = 4; pages <= 64; pages++) {
        size_t bytes = pages * HK_PAGE_SIZE;
        size_t cap = bytes / bs;
        if (cap < min_blocks || cap > UINT16_MAX) continue;
        size_t waste = bytes - cap * bs;
        if (waste * 16 <= bytes) { best_pages = pages; break; }
        if (waste * best_pages < best_waste * pages || best_pages == 0) {
            best_pages = pages;
            best_waste = waste;
        }
    }
    k->slab_pages = (uint16_t)best_pages;
    k->capacity = (uint16_t)(best_pages * HK_PAGE_SIZE / bs);
    /* Carve about a page worth of blocks at a time: new slabs touch (and
     * commit) their memory only as it is used. */
    size_t ext = HK_PAGE_SIZE / bs;
    if (ext < 1) ext = 1;
    if (ext > k->capacity) ext = k->capacity;
    k->extend = (uint16_t)ext;
}

void _hk_sizeclass_init(void) {
    unsigned n = 0;
    _hk_classes[n++].block_size = 8;
    for (uint32_t s = 16; s <= 128; s += 16) _hk_classes[n++].block_size = s;
    for (uint32_t base = 128; base < HK_SMALL_MAX; base *= 2) {
        uint32_t per = base == 1024 || base == 4096 ? 8 : 4; /* hk_class_of() agrees */
        for (uint32_t q = 1; q <= per; q++) _hk_classes[n++].block_size = base + q * (base / per);
    }
    _hk_class_count = n;
    for (unsigned i = 0; i < n; i++) choose_slab(&_hk_classes[i]);
    /* The direct table agrees with hk_class_of()'s formula past 128 bytes
     * and picks the smallest class that fits below it. */
    for (unsigned i = 0; i < n; i++) {
        _hk_classes[i].direct_first = 1;
        _hk_classes[i].direct_last = 0;
    }
    for (size_t g = 0; g < HK_DIRECT_SLOTS; g++) {
        size_t size = g * 8;
        unsigned c = 0;
        while (_hk_classes[c].block_size < size) c++;
        _hk_class_direct[g] = (uint8_t)c;
        /* Slots rise with the class, so each class's slots are a range. */
        if (_hk_classes[c].direct_first > _hk_classes[c].direct_last) _hk_classes[c].direct_first = (uint8_t)g;
        _hk_classes[c].direct_last = (uint8_t)g;
    }
}
