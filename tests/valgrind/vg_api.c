/* vg_api.c: bugs in programs that use heapkit's own API, for memcheck to
 * find through heapkit's client requests (tests/valgrind/run.sh).
 *   vg_api MODE
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heapkit.h"

#define NOINLINE __attribute__((noinline))
static volatile char sink;

NOINLINE static void hk_use_after_free(void) {
    char *p = hk_malloc(40);
    memset(p, 1, 40);
    hk_free(p);
    sink = p[3];
}
NOINLINE static void hk_overflow(void) {
    char *p = hk_malloc(40); /* usable size 48: memcheck knows 40 */
    memset(p, 1, 40);
    sink = p[40];
    hk_free(p);
}
NOINLINE static void hk_uninit(void) {
    char *p = hk_realloc(hk_malloc(8), 64);
    if (p[20] == 7) puts("seven"); /* never written */
    hk_free(p);
}
static void *volatile lost;
NOINLINE static void hk_leak(void) {
    lost = hk_malloc(1234);
    lost = NULL;
}

NOINLINE static void pool_after_reset(void) {
    hk_pool_t *pool = hk_pool_new(NULL);
    char *s = hk_pool_strdup(pool, "request");
    hk_pool_reset(pool);
    sink = s[2];
    hk_pool_destroy(pool);
}
NOINLINE static void pool_overflow(void) {
    hk_pool_t *pool = hk_pool_new(NULL);
    char *s = hk_pool_alloc(pool, 20);
    memset(s, 0, 20);
    sink = s[24]; /* past the block, in the piece's unused part */
    hk_pool_destroy(pool);
}

NOINLINE static void heap_after_destroy(void) {
    hk_heap_t *h = hk_heap_new();
    int **v = hk_heap_malloc(h, 100 * sizeof *v);
    for (int i = 0; i < 100; i++) v[i] = hk_heap_calloc(h, 4, sizeof(int));
    int *keep = v[7];
    hk_heap_destroy(h);
    sink = (char)keep[1];
}

static int ctor(void *o) {
    memset(o, 0x2a, 64);
    return 0;
}
NOINLINE static void cache_after_free(void) {
    hk_cache_t *c = hk_cache_new("things", 64, 0, ctor, NULL);
    char *o = hk_cache_alloc(c);
    hk_cache_free(c, o);
    sink = o[5];
    hk_cache_destroy(c);
}

/* No error: constructed state is defined; every block freed. */
NOINLINE static void clean(void) {
    hk_cache_t *c = hk_cache_new("things", 64, 0, ctor, NULL);
    for (int i = 0; i < 1000; i++) {
        char *o = hk_cache_alloc(c);
        if (o[10] != 0x2a) puts("lost constructed state");
        hk_cache_free(c, o);
    }
    hk_cache_destroy(c);
    hk_pool_t *pool = hk_pool_new(NULL);
    for (int r = 0; r < 3; r++) {
        for (int i = 0; i < 5000; i++) {
            char *s = hk_pool_alloc(pool, 1 + (size_t)i % 100);
            s[0] = 1;
            if (i % 1000 == 0) ((char *)hk_pool_alloc(pool, 40000))[0] = 2;
        }
        hk_pool_reset(pool);
    }
    hk_pool_destroy(pool);
    char *p = hk_calloc(10, 10);
    if (p[50] != 0) puts("not zero");
    p = hk_realloc(p, 10000);
    if (p[99] != 0) puts("lost contents");
    hk_free(p);
    hk_heap_t *h = hk_heap_new();
    char *b = hk_heap_malloc(h, 100);
    memset(b, 3, 100);
    b = hk_heap_realloc(h, b, 5000);
    if (b[99] != 3) puts("lost contents");
    hk_heap_destroy(h);
}

static const struct {
    const char *name;
    void (*fn)(void);
} modes[] = {
    {"hk-use-after-free", hk_use_after_free}, {"hk-overflow", hk_overflow},
    {"hk-uninit", hk_uninit},                 {"hk-leak", hk_leak},
    {"pool-after-reset", pool_after_reset},   {"pool-overflow", pool_overflow},
    {"cache-after-free", cache_after_free},   {"clean", clean},
    {"heap-after-destroy", heap_after_destroy},
};

int main(int argc, char **argv) {
    for (size_t i = 0; argc > 1 && i < sizeof modes / sizeof modes[0]; i++)
        if (strcmp(argv[1], modes[i].name) == 0) {
            modes[i].fn();
            return 0;
        }
    fprintf(stderr, "usage: vg_api MODE\n");
    return 2;
}
