/* hk_util.h: helpers shared by the black-box tests (api, stress, wrong).
 *
 * Included as "api/hk_util.h" (tests/ is on the include path). Only the
 * public API is used here.
 */
#ifndef HK_UTIL_H
#define HK_UTIL_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heapkit.h"

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)

/* ---- Content patterns ------------------------------------------------------
 * A block is filled with a byte sequence derived from an id, so that a block
 * overwritten by another block (overlap) or by the allocator (metadata,
 * decommit) is detected when it is checked. Byte i of the pattern for id is
 * byte (i % 8) of the word hk_pat_word(id, i / 8). */
static inline uint64_t hk_mix64(uint64_t x) {
    x ^= x >> 30; x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27; x *= 0x94D049BB133111EBull;
    x ^= x >> 31;
    return x;
}
static inline uint64_t hk_pat_word(uint64_t id, size_t w) {
    /* Never zero-looking as a whole, differs per word and per id. */
    return hk_mix64(id + 1) ^ ((uint64_t)w * 0x9E3779B97F4A7C15ull) ^ 0x0101010101010101ull;
}
static inline uint8_t hk_pat_byte(uint64_t id, size_t i) {
    return (uint8_t)(hk_pat_word(id, i / 8) >> (8 * (i % 8)));
}
/* Writes the pattern of id at bytes [from, to) of block p. */
static inline void hk_pat_fill_range(void *p, uint64_t id, size_t from, size_t to) {
    uint8_t *b = (uint8_t *)p;
    size_t i = from;
    while (i < to && (i % 8) != 0) { b[i] = hk_pat_byte(id, i); i++; }
    for (; i + 8 <= to; i += 8) {
        uint64_t w = hk_pat_word(id, i / 8);
        memcpy(b + i, &w, 8);
    }
    for (; i < to; i++) b[i] = hk_pat_byte(id, i);
}
static inline void hk_pat_fill(void *p, uint64_t id, size_t n) {
    hk_pat_fill_range(p, id, 0, n);
}
/* Index of the first byte in [from, to) that differs from the pattern, or
 * (size_t)-1 when all match. */
static inline size_t hk_pat_find_bad_range(const void *p, uint64_t id, size_t from, size_t to) {
    const uint8_t *b = (const uint8_t *)p;
    size_t i = from;
    while (i < to && (i % 8) != 0) { if (b[i] != hk_pat_byte(id, i)) return i; i++; }
    for (; i + 8 <= to; i += 8) {
        uint64_t w = hk_pat_word(id, i / 8), v;
        memcpy(&v, b + i, 8);
        if (v != w) {
            for (size_t j = i; j < i + 8; j++)
                if (b[j] != hk_pat_byte(id, j)) return j;
        }
    }
    for (; i < to; i++) if (b[i] != hk_pat_byte(id, i)) return i;
    return (size_t)-1;
}
static inline bool hk_pat_ok(const void *p, uint64_t id, size_t n) {
    return hk_pat_find_bad_range(p, id, 0, n) == (size_t)-1;
}
/* Same check with a report of the first bad byte on stderr. */
static inline bool hk_pat_check(const void *p, uint64_t id, size_t n, const char *what) {
    size_t bad = hk_pat_find_bad_range(p, id, 0, n);
    if (bad == (size_t)-1) return true;
    fprintf(stderr, "pattern broken (%s): block %p id %llu size %zu: byte %zu is 0x%02x, want 0x%02x\n",
            what, p, (unsigned long long)id, n, bad, ((const uint8_t *)p)[bad], hk_pat_byte(id, bad));
    return false;
}

/* Index of the first non-zero byte of [p, p+n), or (size_t)-1. */
/* A self-describing block: its id and size in the first 16 bytes, the id's
 * pattern after them (size >= 16). Any thread can check it with no shared
 * bookkeeping, which is what the threaded tests need. */
static inline void *hk_make_block(uint64_t id, size_t size) {
    void *p = hk_malloc(size);
    if (!p) return NULL;
    hk_pat_fill(p, id, size);
    memcpy(p, &id, 8);
    memcpy((char *)p + 8, &size, 8);
    return p;
}
static inline bool hk_block_ok(const void *p) {
    uint64_t id;
    size_t size;
    memcpy(&id, p, 8);
    memcpy(&size, (const char *)p + 8, 8);
    if (size < 16 || hk_usable_size(p) < size) return false;
    return hk_pat_find_bad_range(p, id, 16, size) == (size_t)-1;
}

static inline size_t hk_find_nonzero(const void *p, size_t n) {
    const uint8_t *b = (const uint8_t *)p;
    size_t i = 0;
    while (i < n && ((uintptr_t)(b + i) % 8) != 0) { if (b[i]) return i; i++; }
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, b + i, 8);
        if (v) { for (size_t j = i; j < i + 8; j++) if (b[j]) return j; }
    }
    for (; i < n; i++) if (b[i]) return i;
    return (size_t)-1;
}
static inline bool hk_is_zero(const void *p, size_t n) {
    return hk_find_nonzero(p, n) == (size_t)-1;
}

/* ---- Alignment contract ------------------------------------------------- */
/* Alignment every block of `size` bytes must have: 16, or 8 under 16 bytes. */
static inline size_t hk_min_align(size_t size) { return size < 16 ? 8 : 16; }
static inline bool hk_aligned_to(const void *p, size_t a) {
    return ((uintptr_t)p & (a - 1)) == 0;
}

/* ---- Process memory ----------------------------------------------------- */
/* Resident set size in bytes, from /proc/self/statm. */
static inline size_t hk_rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long vm = 0, rss = 0;
    int n = fscanf(f, "%lu %lu", &vm, &rss);
    fclose(f);
    if (n != 2) return 0;
    return (size_t)rss * (size_t)sysconf(_SC_PAGESIZE);
}
/* Virtual size in bytes, from /proc/self/statm. */
static inline size_t hk_vm_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long vm = 0;
    int n = fscanf(f, "%lu", &vm);
    fclose(f);
    if (n != 1) return 0;
    return (size_t)vm * (size_t)sysconf(_SC_PAGESIZE);
}

/* ---- Statistics helpers ------------------------------------------------- */
/* Index of the class serving `size` bytes: the first class whose block_size
 * is >= size; -1 when none (size is not small). */
static inline int hk_class_for(const hk_stats_t *s, size_t size) {
    int best = -1;
    for (int c = 0; c < HK_STATS_CLASSES; c++) {
        size_t bs = s->classes[c].block_size;
        if (bs == 0) continue;
        if (bs >= size && (best < 0 || bs < s->classes[best].block_size)) best = c;
    }
    return best;
}
static inline hk_stats_t hk_my_stats(void) {
    hk_stats_t s;
    memset(&s, 0, sizeof s);
    hk_heap_stats(hk_heap_default(), &s);
    return s;
}
static inline hk_stats_t hk_all_stats(void) {
    hk_stats_t s;
    memset(&s, 0, sizeof s);
    hk_stats(&s);
    return s;
}

/* ---- Misc --------------------------------------------------------------- */
/* Reads an unsigned integer argument, with a default. */
static inline unsigned long hk_arg(int argc, char **argv, int i, unsigned long dflt) {
    if (i < argc) {
        char *end;
        unsigned long v = strtoul(argv[i], &end, 0);
        if (*end == 0) return v;
    }
    return dflt;
}

#endif /* HK_UTIL_H */
