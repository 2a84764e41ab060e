/* secure_util.h: helpers of the secure variant's tests (tests/secure).
 *
 * The tests link libheapkit-secure-api.a, whose interface defines
 * HK_SECURE=1, so the internal headers included here describe the secure
 * layout (chunk bitmaps, guard pages). They are used only to find where a
 * block sits (its slab, the slab's carved part, its chunk's data), never
 * to change allocator state.
 */
#ifndef HK_SECURE_UTIL_H
#define HK_SECURE_UTIL_H

#include "hk_test.h"
#include "api/hk_util.h"
#include "wrong/report.h"

#include "internal/internal.h"

#if !HK_SECURE
#error "tests/secure must be built against the secure variant (HK_SECURE=1)"
#endif

/* Where a small block lives: its slab's first byte, block size, blocks
 * carved and capacity. Owner thread only (the carved count is its). */
typedef struct {
    uint8_t *start;
    size_t block_size, initialized, capacity;
} sec_slab_t;

static inline sec_slab_t sec_slab_of(const void *p) {
    hk_chunk_t *c = hk_chunk_of(p);
    hk_page_t *pg = hk_block_head(c, p);
    sec_slab_t s = { hk_page_start(c, pg), hk_slab_block_size(pg), pg->initialized, pg->capacity };
    return s;
}

/* The first byte of the 4 MiB data of the chunk holding p (normal chunks). */
static inline uint8_t *sec_chunk_data(const void *p) {
    return (uint8_t *)((uintptr_t)p & ~(HK_CHUNK_SIZE - 1));
}

/* The first word of a freed block, read and overwritten on purpose (the
 * corruption a test simulates). In an ASan build heapkit keeps free blocks
 * poisoned (src/internal/asan.h), so the word is unpoisoned for the access
 * and poisoned again, as heapkit's own link accesses do; elsewhere these
 * are a plain load and store. */
static inline uintptr_t sec_freed_word(const void *p) {
    uintptr_t w;
    hk_asan_unpoison(p, sizeof w);
    memcpy(&w, p, sizeof w);
    hk_asan_poison(p, sizeof w);
    return w;
}
static inline void sec_forge_word(void *p, uintptr_t w) {
    hk_asan_unpoison(p, sizeof w);
    memcpy(p, &w, sizeof w);
    hk_asan_poison(p, sizeof w);
}

/* Finds "heapkit: free list corrupted 0x<hex>" in text; *addr gets the hex. */
static inline bool sec_parse_corrupt(const char *text, uintptr_t *addr) {
    static const char prefix[] = "heapkit: free list corrupted 0x";
    const char *s = strstr(text, prefix);
    if (!s) return false;
    char *end;
    *addr = (uintptr_t)strtoull(s + sizeof prefix - 1, &end, 16);
    return end != s + sizeof prefix - 1;
}

/* Runs fn(arg) in a child; passes when it aborts with the corruption report
 * naming `link` (or any address when link is NULL). */
static inline bool sec_expect_corrupt(void (*fn)(void *), void *arg, const void *link,
                                      const char *what) {
    char out[8192];
    uintptr_t addr = 0;
    bool died = hk_expect_death_ex(fn, arg, "heapkit: free list corrupted 0x", NULL, out, sizeof out);
    bool parsed = sec_parse_corrupt(out, &addr);
    bool ok = died && parsed && (link == NULL || addr == (uintptr_t)link);
    if (!ok)
        fprintf(stderr, "%s: want corruption report at %p: died=%d parsed=%d addr=0x%lx\n  child: %s\n",
                what, link, died, parsed, (unsigned long)addr, out);
    return ok;
}

/* Runs fn(arg) in a child; passes when a signal `sig` kills it. */
static inline bool sec_expect_signal(void (*fn)(void *), void *arg, int sig, const char *what) {
    char out[4096];
    int st = hk_run_child(fn, arg, out, sizeof out);
    bool ok = st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == sig;
    if (!ok)
        fprintf(stderr, "%s: want signal %d, got status 0x%x (signaled %d, sig %d, exit %d)\n  child: %s\n",
                what, sig, st, WIFSIGNALED(st), WIFSIGNALED(st) ? WTERMSIG(st) : 0,
                WIFEXITED(st) ? WEXITSTATUS(st) : -1, out);
    return ok;
}

/* Runs fn(arg) in a child; passes when it exits with status 0. */
static inline bool sec_expect_clean(void (*fn)(void *), void *arg, const char *what) {
    char out[4096];
    int st = hk_run_child(fn, arg, out, sizeof out);
    bool ok = st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    if (!ok) fprintf(stderr, "%s: want a clean exit, got status 0x%x\n  child: %s\n", what, st, out);
    return ok;
}

#endif /* HK_SECURE_UTIL_H */
