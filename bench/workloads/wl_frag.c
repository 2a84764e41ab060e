/* wl_frag.c: fragmentation over time, single-threaded (--threads is
 * accepted and ignored: the point is the shape of memory, not speed).
 * Phases, each a share of the steps:
 *   1 fill       blocks of 64..256 B, about 96 MiB at scale >= 1
 *   2 holes      free every other block: half the bytes are free, but in
 *                holes too small for what comes next
 *   3 larger     allocate 512..2048 B blocks for as many bytes as were
 *                freed: a perfect allocator would keep RSS flat
 *   4 release    free the remaining small blocks: now every slab of small
 *                blocks is empty and could go back to the OS
 *   5 refill     allocate small blocks again for half those bytes
 *   6 idle       300 ms of near idleness (one malloc+free every 5 ms), for
 *                allocators that return memory after a delay
 *   7 end        free everything
 * A sample (step, time, RSS, live bytes) is printed every 1/300 of the
 * steps and at each phase change: the report draws RSS over the steps
 * with the live bytes as the floor.
 */
#include "wl_common.h"

typedef struct { void *p; uint32_t n; } blk_t;

static long step, every;
static void tick(void) {
    if (++step % every == 0) wl_sample(step);
}
/* Marks where a phase starts, for the chart. */
static void phase(const char *name) {
    wl_sample(step);
    printf("HKBENCH phase step=%ld name=%s\n", step, name);
}

int main(int argc, char **argv) {
    wl_opts_t o = wl_parse(argc, argv, "wl_frag", NULL);
    wl_rng_t r = wl_rng(o.seed, 0);
    double ts = o.scale >= 1 ? 1 : o.scale < 0.02 ? 0.02 : o.scale;
    size_t fill_bytes = (size_t)(96.0 * 1048576 * ts);
    /* Expected steps: fill (~600K blocks at scale 1), half freed, the large
     * blocks (an eighth as many), the rest freed, the refill. */
    size_t est_small = fill_bytes / 160;
    every = (long)((est_small * 2 + est_small / 8 * 2) / 300) + 1;
    uint64_t ops = 0, check = 0;
    int64_t live = 0;
    size_t cap = est_small + 1024, n = 0;
    blk_t *small = wl_malloc(cap * sizeof *small);
    wl_start();
    /* 1 fill */
    phase("fill");
    while ((size_t)live < fill_bytes) {
        size_t sz = wl_range(&r, 4, 16) * 16;
        if (n == cap) {
            cap *= 2;
            blk_t *nb = realloc(small, cap * sizeof *small);
            if (!nb) wl_fail("realloc of the block table failed");
            small = nb;
        }
        small[n] = (blk_t){ wl_malloc(sz), (uint32_t)sz };
        wl_tag(small[n].p, sz, n);
        n++;
        live += (int64_t)sz;
        wl_live(0, (int64_t)sz);
        ops++;
        tick();
    }
    /* 2 holes: every other block, in allocation order (neighbours in memory
     * for every allocator here). */
    phase("holes");
    int64_t freed = 0;
    for (size_t i = 0; i < n; i += 2) {
        wl_check(small[i].p, small[i].n, i);
        freed += small[i].n;
        wl_live(0, -(int64_t)small[i].n);
        free(small[i].p);
        small[i].p = NULL;
        ops++;
        tick();
    }
    /* 3 larger blocks, as many bytes as the holes hold */
    phase("larger");
    size_t nlarge = 0, lcap = (size_t)freed / 512 + 16;
    blk_t *large = wl_malloc(lcap * sizeof *large);
    for (int64_t got = 0; got < freed && nlarge < lcap;) {
        size_t sz = wl_range(&r, 32, 128) * 16;
        large[nlarge] = (blk_t){ wl_malloc(sz), (uint32_t)sz };
        wl_tag(large[nlarge].p, sz, (1ULL << 40) + nlarge);
        nlarge++;
        got += (int64_t)sz;
        wl_live(0, (int64_t)sz);
        ops++;
        tick();
    }
    /* 4 release the remaining small blocks */
    phase("release");
    for (size_t i = 1; i < n; i += 2) {
        wl_check(small[i].p, small[i].n, i);
        check += ((unsigned char *)small[i].p)[0];
        wl_live(0, -(int64_t)small[i].n);
        free(small[i].p);
        small[i].p = NULL;
        ops++;
        tick();
    }
    /* 5 refill half the released bytes with small blocks */
    phase("refill");
    size_t nre = 0;
    for (int64_t got = 0; got < freed / 2 && nre < n; nre++) {
        size_t sz = wl_range(&r, 4, 16) * 16;
        small[nre] = (blk_t){ wl_malloc(sz), (uint32_t)sz };
        wl_tag(small[nre].p, sz, (2ULL << 40) + nre);
        got += (int64_t)sz;
        wl_live(0, (int64_t)sz);
        ops++;
        tick();
    }
    /* 6 idle: a trickle of activity, so allocators that purge on their own
     * clock (on the next call after a delay) get the chance. */
    phase("idle");
    double idle_ms = 300 * ts, t_end = wl_now_ms() + idle_ms, next = 0;
    while (wl_now_ms() < t_end) {
        free(wl_malloc(64));
        struct timespec d = { 0, 5000000 };
        nanosleep(&d, NULL);
        if (wl_now_ms() >= next) {
            /* The idle time is drawn as a stretch of steps (10 samples
             * apart), so that it shows on a chart whose x axis is steps. */
            step += 10 * every;
            wl_sample(step);
            next = wl_now_ms() + idle_ms / 10;
        }
    }
    /* 7 end */
    phase("end");
    for (size_t i = 0; i < nlarge; i++) {
        wl_check(large[i].p, large[i].n, (1ULL << 40) + i);
        wl_live(0, -(int64_t)large[i].n);
        free(large[i].p);
        ops++;
    }
    for (size_t i = 0; i < nre; i++) {
        wl_check(small[i].p, small[i].n, (2ULL << 40) + i);
        wl_live(0, -(int64_t)small[i].n);
        free(small[i].p);
        ops++;
    }
    step++;
    wl_sample(step);
    free(large);
    free(small);
    wl_finish(&o, ops, check);
    return 0;
}
