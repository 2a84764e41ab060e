/* wl_large.c: large blocks, two modes.
 *   random: a live set of up to 8 blocks per thread of 64 KiB..64 MiB
 *           (log-uniform; one in four from posix_memalign, page-aligned),
 *           replaced at random;
 *   cycle:  free and reallocate blocks of 2..8 MiB in a loop, the case
 *           where an allocator that returns large blocks to the OS at once
 *           (munmap, or madvise on a purge) faults every page back in on
 *           the next round, and one that keeps them reuses warm memory.
 * Every page of a new block is touched (one write per 4 KiB), as a program
 * that uses its memory would; minor faults in the report tell the story.
 */
#include "wl_common.h"

enum { LIVE = 8 };

typedef struct {
    const wl_opts_t *o;
    int cycle;
    uint64_t ops_per_thread;
    uint64_t ops[WL_MAX_SLOTS];
    uint64_t check[WL_MAX_SLOTS];
} large_t;

/* One write per page: faults every page in without the cost of a memset
 * dominating the time. */
static void touch(unsigned char *p, size_t n, uint64_t id) {
    for (size_t i = 0; i < n; i += 4096) p[i] = (unsigned char)(id + i / 4096);
    wl_tag(p, n, id);
}

static void *worker(wl_thread_arg_t *a) {
    large_t *s = (large_t *)a->shared;
    int me = a->index;
    wl_rng_t r = wl_rng(s->o->seed, (uint64_t)me);
    uint64_t check = 0, id = (uint64_t)me << 40;
    if (s->cycle) {
        static const size_t mib[] = { 2, 4, 8, 3, 6 };
        for (uint64_t k = 0; k < s->ops_per_thread; k++, id++) {
            size_t n = mib[k % 5] << 20;
            unsigned char *p = wl_malloc(n);
            touch(p, n, id);
            wl_live(me, (int64_t)n);
            wl_check(p, n, id);
            check += p[n / 2];
            wl_live(me, -(int64_t)n);
            free(p);
        }
    } else {
        struct { unsigned char *p; size_t n; uint64_t id; } b[LIVE] = { { 0 } };
        for (uint64_t k = 0; k < s->ops_per_thread; k++, id++) {
            int i = (int)wl_below(&r, LIVE);
            if (b[i].p) {
                wl_check(b[i].p, b[i].n, b[i].id);
                check += b[i].p[(b[i].n / 2) & ~(size_t)4095]; /* a touched byte */
                wl_live(me, -(int64_t)b[i].n);
                free(b[i].p);
            }
            size_t n = wl_logrange(&r, 64 << 10, 64 << 20);
            if (k % 4 == 3) {
                /* One in four page-aligned, as buffers for O_DIRECT or
                 * mmap-like uses are. */
                void *q = NULL;
                if (posix_memalign(&q, 4096, n) != 0 || !q) wl_fail("posix_memalign(4096, %zu) failed", n);
                if ((uintptr_t)q % 4096) wl_fail("posix_memalign returned %p, not 4096-aligned", q);
                b[i].p = q;
            } else {
                b[i].p = wl_malloc(n);
            }
            b[i].n = n;
            b[i].id = id;
            touch(b[i].p, n, id);
            wl_live(me, (int64_t)n);
        }
        for (int i = 0; i < LIVE; i++)
            if (b[i].p) {
                wl_check(b[i].p, b[i].n, b[i].id);
                wl_live(me, -(int64_t)b[i].n);
                free(b[i].p);
            }
    }
    s->ops[me] = s->ops_per_thread;
    s->check[me] = check;
    return NULL;
}

int main(int argc, char **argv) {
    wl_opts_t o = wl_parse(argc, argv, "wl_large", "random|cycle");
    static large_t s;
    s.o = &o;
    s.cycle = !strcmp(o.mode, "cycle");
    s.ops_per_thread = wl_scaled(&o, s.cycle ? 4000 : 600, 20) / (uint64_t)o.threads + 1;
    wl_own_frees = 1; /* each thread frees only the blocks it allocated */
    wl_start();
    wl_run_threads(o.threads, worker, &s);
    wl_finish_threads(&o, s.ops, s.check);
    return 0;
}
