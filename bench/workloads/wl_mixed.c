/* wl_mixed.c: mixed sizes from 8 B to 1 MiB (log-uniform) around a steady
 * live set that moves through phases: grow to 32 MiB, to 96 MiB, shrink to
 * 16 MiB, grow to 64 MiB, shrink to 8 MiB (at scale >= 1; smaller scales
 * shrink the targets too). Within a phase, blocks are replaced at random.
 * A quarter of the blocks come from calloc (checked to read as zero).
 * Every block is written in full when allocated, as a real program would,
 * so page faults and reuse of already-touched memory count. The shrink
 * phases show which allocators give memory back and which keep it.
 *
 * Threads: each thread owns its blocks and its share of the target.
 * Thread 0 prints a memory sample every 1% of its work.
 */
#include "wl_common.h"

typedef struct {
    const wl_opts_t *o;
    uint64_t ops_per_thread;
    double target_scale;
    uint64_t ops[WL_MAX_SLOTS];
    uint64_t check[WL_MAX_SLOTS];
} mixed_t;

static const double phase_mib[] = { 32, 96, 16, 64, 8 };
enum { PHASES = sizeof phase_mib / sizeof phase_mib[0] };

typedef struct { void *p; size_t n; uint64_t id; } blk_t;

static void *worker(wl_thread_arg_t *a) {
    mixed_t *s = (mixed_t *)a->shared;
    int nt = s->o->threads, me = a->index;
    wl_rng_t r = wl_rng(s->o->seed, (uint64_t)me);
    size_t cap = 1024, n = 0;
    blk_t *b = wl_malloc(cap * sizeof *b);
    int64_t live = 0;
    uint64_t id = (uint64_t)me << 40, check = 0, ops = 0, per_phase = s->ops_per_thread / PHASES + 1;
    uint64_t sample_every = s->ops_per_thread / 100 + 1;
    for (int ph = 0; ph < PHASES; ph++) {
        int64_t target = (int64_t)(phase_mib[ph] * s->target_scale * 1048576.0 / nt);
        for (uint64_t k = 0; k < per_phase; k++, ops++) {
            if (me == 0 && ops % sample_every == 0) wl_sample((long)ops);
            /* Over target (a shrink phase): free one at random per step. */
            if (live >= target && n > 0) {
                size_t i = (size_t)wl_below(&r, n);
                wl_check(b[i].p, b[i].n, b[i].id);
                check += ((unsigned char *)b[i].p)[b[i].n / 2];
                live -= (int64_t)b[i].n;
                wl_live(me, -(int64_t)b[i].n);
                free(b[i].p);
                b[i] = b[--n];
                if (live >= target) continue;
            }
            size_t sz = wl_logrange(&r, 8, 1 << 20);
            if (n == cap) {
                cap *= 2;
                blk_t *nb = realloc(b, cap * sizeof *b);
                if (!nb) wl_fail("realloc of the block table failed");
                b = nb;
            }
            /* One block in four comes from calloc, and must read as zero
             * (a sample of bytes is checked) before it is written. */
            unsigned char *p;
            if ((id & 3) == 3) {
                p = calloc(1, sz);
                if (!p) wl_fail("calloc(1, %zu) returned NULL", sz);
                if (p[0] | p[sz / 2] | p[sz - 1]) wl_fail("calloc(1, %zu) memory is not zero", sz);
            } else {
                p = wl_malloc(sz);
            }
            memset(p, (int)(id & 0xff), sz);
            wl_tag(p, sz, id);
            b[n++] = (blk_t){ p, sz, id++ };
            live += (int64_t)sz;
            wl_live(me, (int64_t)sz);
        }
    }
    if (me == 0) wl_sample((long)ops);
    for (size_t i = 0; i < n; i++) {
        wl_check(b[i].p, b[i].n, b[i].id);
        wl_live(me, -(int64_t)b[i].n);
        free(b[i].p);
    }
    free(b);
    s->ops[me] = ops;
    s->check[me] = check;
    return NULL;
}

int main(int argc, char **argv) {
    wl_opts_t o = wl_parse(argc, argv, "wl_mixed", NULL);
    static mixed_t s;
    s.o = &o;
    s.ops_per_thread = wl_scaled(&o, 300e3, 500) / (uint64_t)o.threads + 1;
    /* Targets shrink with the scale (so a quick run stays small) but never
     * below an eighth, so the phases still cross many size classes. */
    s.target_scale = o.scale >= 1 ? 1 : o.scale < 0.125 ? 0.125 : o.scale;
    wl_own_frees = 1; /* each thread frees only the blocks it allocated */
    wl_start();
    wl_run_threads(o.threads, worker, &s);
    wl_finish_threads(&o, s.ops, s.check);
    return 0;
}
