/* wl_small.c: small blocks (8..512 B, log-uniform) allocated in rounds and
 * freed in LIFO, FIFO or random order (--mode lifo|fifo|random): the classic
 * free-order patterns of the allocator literature (Wilson et al., 1995).
 * LIFO is every allocator's best case (the block just freed is reused at
 * once); FIFO and random order scatter the free lists and test locality.
 *
 * Threads: the total work is split evenly; each thread has its own blocks,
 * so this measures the thread-local fast paths, not sharing.
 */
#include "wl_common.h"

typedef struct {
    const wl_opts_t *o;
    uint64_t pairs_per_thread;
    int order; /* 0 lifo, 1 fifo, 2 random */
    uint64_t ops[WL_MAX_SLOTS];
    uint64_t check[WL_MAX_SLOTS];
} small_t;

enum { MAX_ROUND = 4096 };

static void *worker(wl_thread_arg_t *a) {
    small_t *s = (small_t *)a->shared;
    wl_rng_t r = wl_rng(s->o->seed, (uint64_t)a->index);
    /* Bookkeeping arrays are allocated once, before the timed loop matters. */
    void **blk = wl_malloc(MAX_ROUND * sizeof *blk);
    uint32_t *size = wl_malloc(MAX_ROUND * sizeof *size);
    uint32_t *order = wl_malloc(MAX_ROUND * sizeof *order);
    uint64_t done = 0, id = (uint64_t)a->index << 40, check = 0;
    while (done < s->pairs_per_thread) {
        uint32_t k = (uint32_t)wl_range(&r, 256, MAX_ROUND);
        if (k > s->pairs_per_thread - done) k = (uint32_t)(s->pairs_per_thread - done);
        for (uint32_t i = 0; i < k; i++) {
            size_t n = wl_logrange(&r, 8, 512);
            blk[i] = wl_malloc(n);
            size[i] = (uint32_t)n;
            wl_tag(blk[i], n, id + i);
            wl_live(a->index, (int64_t)n);
        }
        for (uint32_t i = 0; i < k; i++) order[i] = s->order == 0 ? k - 1 - i : i;
        if (s->order == 2) /* Fisher-Yates: the same shuffle for every allocator */
            for (uint32_t i = k - 1; i > 0; i--) {
                uint32_t j = (uint32_t)wl_below(&r, i + 1), t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
        for (uint32_t i = 0; i < k; i++) {
            uint32_t j = order[i];
            wl_check(blk[j], size[j], id + j);
            check += ((uintptr_t)blk[j] >> 4) & 0xff;
            wl_live(a->index, -(int64_t)size[j]);
            free(blk[j]);
        }
        id += k;
        done += k;
    }
    free(blk);
    free(size);
    free(order);
    s->ops[a->index] = done;
    s->check[a->index] = check;
    return NULL;
}

int main(int argc, char **argv) {
    wl_opts_t o = wl_parse(argc, argv, "wl_small", "lifo|fifo|random");
    static small_t s;
    s.o = &o;
    s.order = !strcmp(o.mode, "lifo") ? 0 : !strcmp(o.mode, "fifo") ? 1 : 2;
    /* 16M malloc+free pairs at scale 1: about a second with glibc here. */
    s.pairs_per_thread = wl_scaled(&o, 16e6, 1000) / (uint64_t)o.threads + 1;
    wl_own_frees = 1; /* each thread frees only the blocks it allocated */
    wl_start();
    wl_run_threads(o.threads, worker, &s);
    wl_finish_threads(&o, s.ops, s.check);
    return 0;
}
