/* micro.c: the instruction-count micro benchmark and the allocator probe.
 *   micro --pairs N --size S          N times: p = malloc(S); free(p)
 *   micro --pairs N --size S --loop   the same loop without the calls, so
 *                                     the runner can subtract its cost
 *   micro --probe                     prints which library serves malloc
 * Built again as hkbench_micro_hk (MICRO_HK): the pair is p = hk_malloc(S);
 * hk_free(p), through the PLT of libheapkit like malloc's; and as
 * hkbench_micro_cache (MICRO_CACHE): p = hk_cache_alloc(c);
 * hk_cache_free(c, p) on a cache of S-byte objects (the program links a
 * copy of the caches built without valgrind's client requests: see
 * bench/CMakeLists.txt).
 * The runner runs it under callgrind at two N and divides the difference
 * in instructions by the difference in pairs: process start-up, the
 * allocator's initialisation and the first slow-path refills cancel out,
 * leaving the fast path. Built with -fno-builtin so the compiler cannot
 * drop the malloc/free pair.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if MICRO_CACHE || MICRO_HK
#include "heapkit.h"
#endif

/* The pointer escapes through here, so the pair cannot be optimised away. */
void *volatile micro_sink;

int main(int argc, char **argv) {
    long pairs = 0, size = 64;
    int loop_only = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--pairs") && i + 1 < argc) {
            pairs = atol(argv[++i]);
        } else if (!strcmp(argv[i], "--size") && i + 1 < argc) {
            size = atol(argv[++i]);
        } else if (!strcmp(argv[i], "--loop")) {
            loop_only = 1;
        } else if (!strcmp(argv[i], "--probe")) {
            Dl_info di;
            void *f = dlsym(RTLD_DEFAULT, "malloc");
            void *p = malloc(100); /* and malloc really works */
            printf("HKBENCH probe malloc_from=%s ok=%d\n",
                   f && dladdr(f, &di) && di.dli_fname ? di.dli_fname : "unknown", p != NULL);
            free(p);
            return p ? 0 : 1;
        } else {
            fprintf(stderr, "usage: micro --pairs N --size S [--loop] | --probe\n");
            return 2;
        }
    }
    if (pairs < 0 || size <= 0) return 2;
    if (loop_only) {
        for (long i = 0; i < pairs; i++) micro_sink = (void *)i;
    } else {
#if MICRO_CACHE
        hk_cache_t *c = hk_cache_new("micro", (size_t)size, 0, NULL, NULL);
        if (!c) return 1;
        hk_cache_free(c, hk_cache_alloc(c)); /* the thread's first refill, outside the loop too */
        for (long i = 0; i < pairs; i++) {
            void *p = hk_cache_alloc(c);
            micro_sink = p;
            hk_cache_free(c, p);
        }
#elif MICRO_HK
        for (long i = 0; i < pairs; i++) {
            void *p = hk_malloc((size_t)size);
            micro_sink = p;
            hk_free(p);
        }
#else
        for (long i = 0; i < pairs; i++) {
            void *p = malloc((size_t)size);
            micro_sink = p;
            free(p);
        }
#endif
    }
    printf("HKBENCH ops=%ld\n", pairs);
    return 0;
}
