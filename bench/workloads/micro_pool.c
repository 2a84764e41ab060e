/* micro_pool.c: a request-style pattern, region pool against malloc/free.
 *   micro_pool 0   REQ requests of N small allocations (16..256 B), each
 *                  freed with free() at the end of its request
 *   micro_pool 1   the same with hk_pool_alloc and one hk_pool_reset
 * Prints the median of 7 timings. Run mode 0 under any allocator through
 * LD_PRELOAD to compare. Not yet part of hkbench's report: a seed for the
 * pool workload of issue 5 (which adds APR pools and talloc).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "heapkit.h"

enum { REQ = 200, N = 5000, REPS = 7 };
static void *blk[N];

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}
static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    int pool = argc > 1 && atoi(argv[1]) == 1;
    hk_pool_t *p = pool ? hk_pool_new(NULL) : NULL;
    double t[REPS];
    for (int rep = 0; rep < REPS; rep++) {
        unsigned s = 1;
        double t0 = now();
        for (int r = 0; r < REQ; r++) {
            for (int i = 0; i < N; i++) {
                s = s * 1103515245u + 12345u;
                size_t n = 16 + (s >> 16) % 241;
                blk[i] = pool ? hk_pool_alloc(p, n) : malloc(n);
                if (!blk[i]) return 1;
                ((char *)blk[i])[0] = (char)i;
            }
            if (pool) hk_pool_reset(p);
            else
                for (int i = 0; i < N; i++) free(blk[i]);
        }
        t[rep] = now() - t0;
    }
    qsort(t, REPS, sizeof t[0], cmp);
    printf("%s: median of %d: %.2f ms for %d requests of %d allocations\n",
           pool ? "hk_pool" : "malloc/free", REPS, t[REPS / 2] * 1e3, REQ, N);
    if (p) hk_pool_destroy(p);
    return 0;
}
