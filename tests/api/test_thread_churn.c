// ctest-labels: threads
// ctest-args: 2400 8
// test_thread_churn: thousands of short-lived threads. Each thread
// allocates, frees some of its blocks, and leaves the rest behind; those
// outlive it and are checked and freed later by other threads (the next
// wave) or the main thread. Mapped bytes and RSS must stay bounded: they may
// not grow with the number of thread lifetimes (a heap, or its memory, that
// is never reused would grow them by at least one chunk per thread).
// Arguments: total threads, threads alive at once (per wave).
#include "hk_test.h"
#include "api/hk_util.h"

#include <pthread.h>
#include <stdatomic.h>

enum { KEEP = 48, LOCAL = 64 };

typedef struct {
    int index;
    void **inherit;   /* blocks left by a thread of the previous wave: free them */
    void **leave;     /* blocks this thread leaves behind (KEEP of them) */
    int bad;
} job_t;


static void *run(void *arg) {
    job_t *j = arg;
    hk_rng_t rng = hk_rng_seeded(1000 + (uint64_t)j->index);
    /* free what a dead thread left us */
    if (j->inherit) {
        for (int i = 0; i < KEEP; i++) {
            if (!j->inherit[i]) continue;
            if (!hk_block_ok(j->inherit[i])) j->bad++;
            hk_free(j->inherit[i]);
            j->inherit[i] = NULL;
        }
    }
    /* local work: alloc and free */
    void *local[LOCAL];
    for (int i = 0; i < LOCAL; i++) {
        size_t s = 16 + hk_rng_below(&rng, i % 16 == 0 ? 64 * KiB : 512);
        local[i] = hk_make_block(((uint64_t)j->index << 20) | (uint64_t)(1000 + i), s);
        if (!local[i]) j->bad++;
    }
    for (int i = 0; i < LOCAL; i++) {
        if (local[i] && !hk_block_ok(local[i])) j->bad++;
        hk_free(local[i]);
    }
    /* leave blocks behind, small mostly, one medium */
    for (int i = 0; i < KEEP; i++) {
        size_t s = i == 0 ? 40 * KiB + hk_rng_below(&rng, 100 * KiB) : 16 + hk_rng_below(&rng, 1000);
        j->leave[i] = hk_make_block(((uint64_t)j->index << 20) | (uint64_t)i, s);
        if (!j->leave[i]) j->bad++;
    }
    return NULL;
}

int main(int argc, char **argv) {
    int total = (int)hk_arg(argc, argv, 1, 2400);
    int width = (int)hk_arg(argc, argv, 2, 8);
    if (width < 1) width = 1;
    int waves = (total + width - 1) / width;
    if (waves < 20) waves = 20;

    /* leave[w % 2][k]: blocks left by thread k of the last two waves */
    void **leave[2];
    leave[0] = calloc((size_t)width * KEEP, sizeof(void *));
    leave[1] = calloc((size_t)width * KEEP, sizeof(void *));
    job_t *jobs = calloc((size_t)width, sizeof *jobs);
    pthread_t *t = calloc((size_t)width, sizeof *t);
    REQUIRE(leave[0] && leave[1] && jobs && t);

    hk_collect(true);
    hk_stats_t s0 = hk_all_stats();
    size_t rss0 = hk_rss_bytes();
    size_t warm_mapped = 0, warm_rss = 0, max_mapped = 0, max_rss = 0;
    int bad = 0, lifetimes = 0;
    const int warm = waves / 10;

    for (int w = 0; w < waves; w++) {
        void **mine = leave[w % 2], **prev = leave[(w + 1) % 2];
        for (int k = 0; k < width; k++) {
            jobs[k].index = w * width + k;
            jobs[k].inherit = w > 0 ? prev + (size_t)((k + 1) % width) * KEEP : NULL;
            jobs[k].leave = mine + (size_t)k * KEEP;
            jobs[k].bad = 0;
            REQUIRE(pthread_create(&t[k], NULL, run, &jobs[k]) == 0);
        }
        for (int k = 0; k < width; k++) {
            pthread_join(t[k], NULL);
            bad += jobs[k].bad;
            lifetimes++;
        }
        /* every few waves the main thread frees some leftovers itself */
        if (w % 5 == 4) {
            for (int k = 0; k < width * KEEP; k += 3) {
                if (!mine[k]) continue;
                if (!hk_block_ok(mine[k])) bad++;
                hk_free(mine[k]);
                mine[k] = NULL;
            }
        }
        if (w % 10 == 9) hk_collect(false);
        hk_stats_t s = hk_all_stats();
        size_t rss = hk_rss_bytes();
        if (w == warm) { warm_mapped = s.mapped_bytes; warm_rss = rss; }
        if (w >= warm) {
            if (s.mapped_bytes > max_mapped) max_mapped = s.mapped_bytes;
            if (rss > max_rss) max_rss = rss;
        }
    }
    CHECK(bad == 0);
    CHECK(lifetimes >= total);

    /* free what the last wave left */
    for (int b = 0; b < 2; b++)
        for (int k = 0; k < width * KEEP; k++) {
            if (!leave[b][k]) continue;
            if (!hk_block_ok(leave[b][k])) bad++;
            hk_free(leave[b][k]);
            leave[b][k] = NULL;
        }
    CHECK(bad == 0);
    hk_collect(true);
    hk_stats_t s1 = hk_all_stats();
    size_t rss1 = hk_rss_bytes();

    fprintf(stderr, "%d thread lifetimes; mapped KiB: start %zu warm %zu max %zu end %zu; "
            "rss KiB: start %zu warm %zu max %zu end %zu; heaps %zu -> %zu\n",
            lifetimes, s0.mapped_bytes >> 10, warm_mapped >> 10, max_mapped >> 10,
            s1.mapped_bytes >> 10, rss0 >> 10, warm_rss >> 10, max_rss >> 10, rss1 >> 10,
            s0.heaps, s1.heaps);

    /* Bounded: after the warm-up the peak may not run away from the
     * warm-up level (each lifetime that kept a 4 MiB chunk would add
     * GiBs here), and the absolute level stays modest. */
    CHECK(max_mapped <= warm_mapped + 64 * MiB);
    CHECK(max_mapped <= s0.mapped_bytes + 256 * MiB);
#if !defined(__SANITIZE_THREAD__)
    /* The process's RSS too; not under ThreadSanitizer, whose shadow memory
     * and per-thread records (2400 threads come and go) grow the RSS by
     * themselves: there heapkit's own figures above are the measure. */
    CHECK(max_rss <= warm_rss + 64 * MiB);
    CHECK(max_rss <= rss0 + 256 * MiB);
#endif
    /* everything was freed */
    CHECK(s1.live_blocks == s0.live_blocks);
    CHECK(s1.live_bytes == s0.live_bytes);
    /* dead threads' heaps are not counted forever, one each */
    CHECK(s1.heaps <= s0.heaps + (size_t)width * 4);
    CHECK(s1.mapped_bytes <= s0.mapped_bytes + 64 * MiB);

    free(leave[0]); free(leave[1]); free(jobs); free(t);
    return hk_test_done();
}
