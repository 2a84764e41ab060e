// test_collect: giving memory back. After a 200 MiB peak of mixed blocks
// (small, medium, huge) is freed, hk_collect(true) makes RSS (from
// /proc/self/statm) and hk_stats committed_bytes fall substantially. Live
// blocks survive collect untouched, and the memory is usable again (zero
// where calloc'd) after it was given back. Also: the memory of a thread that
// exited is returned by hk_collect(true) called from another thread.
#include "hk_test.h"
#include "api/hk_util.h"

#include <pthread.h>

typedef struct { void **p; size_t *sz; int n; } pop_t;

/* Allocates about `total` bytes: 50% small, 35% medium, 15% huge by bytes;
 * every byte written (so it is resident). */
static void populate(pop_t *pop, size_t total, uint64_t seed) {
    hk_rng_t rng = hk_rng_seeded(seed);
    size_t small = 0, medium = 0, huge = 0;
    int cap = 1 << 20;
    pop->p = malloc((size_t)cap * sizeof *pop->p);
    pop->sz = malloc((size_t)cap * sizeof *pop->sz);
    REQUIRE(pop->p && pop->sz);
    pop->n = 0;
    while (small + medium + huge < total && pop->n < cap) {
        size_t s;
        if (small < total / 2) { s = 16 + hk_rng_below(&rng, hk_rng_below(&rng, 8) ? 512 : 32 * KiB); small += s; }
        else if (medium < total * 35 / 100) { s = 32 * KiB + hk_rng_below(&rng, 2 * MiB - 4 * KiB - 32 * KiB); medium += s; }
        else { s = 2 * MiB + 1 + hk_rng_below(&rng, 6 * MiB); huge += s; }
        void *p = hk_malloc(s);
        REQUIRE(p != NULL);
        size_t u = hk_usable_size(p);
        hk_pat_fill(p, (uint64_t)pop->n, u);
        pop->p[pop->n] = p;
        pop->sz[pop->n] = u;
        pop->n++;
    }
}

static void free_all(pop_t *pop) {
    for (int i = 0; i < pop->n; i++) hk_free(pop->p[i]);
    free(pop->p);
    free(pop->sz);
    pop->n = 0;
}

static void test_peak_falls(void) {
    hk_collect(true);
    hk_stats_t s0 = hk_all_stats();
    size_t rss0 = hk_rss_bytes();
    REQUIRE(rss0 > 0);

    pop_t pop;
    populate(&pop, 200 * MiB, 31);
    hk_stats_t s1 = hk_all_stats();
    size_t rss1 = hk_rss_bytes();
    CHECK(rss1 >= rss0 + 180 * MiB);
    CHECK(s1.committed_bytes >= s0.committed_bytes + 180 * MiB);
    CHECK(s1.live_bytes >= s0.live_bytes + 200 * MiB);

    /* collect with everything live: nothing may be damaged */
    hk_collect(true);
    hk_collect(false);
    int bad = 0;
    for (int i = 0; i < pop.n; i += 1)
        if (!hk_pat_ok(pop.p[i], (uint64_t)i, pop.sz[i])) bad++;
    CHECK(bad == 0);
    hk_stats_t s1b = hk_all_stats();
    CHECK(s1b.live_bytes == s1.live_bytes);
    CHECK(s1b.committed_bytes >= s1.live_bytes);

    free_all(&pop);
    hk_collect(true);
    hk_stats_t s2 = hk_all_stats();
    size_t rss2 = hk_rss_bytes();
    fprintf(stderr, "RSS KiB %zu -> %zu -> %zu; committed KiB %zu -> %zu -> %zu; mapped KiB %zu -> %zu -> %zu\n",
            rss0 >> 10, rss1 >> 10, rss2 >> 10, s0.committed_bytes >> 10, s1.committed_bytes >> 10,
            s2.committed_bytes >> 10, s0.mapped_bytes >> 10, s1.mapped_bytes >> 10, s2.mapped_bytes >> 10);
    CHECK(s2.live_bytes == s0.live_bytes);
    /* at least 80% of the growth is given back */
    CHECK(rss2 <= rss0 + (rss1 - rss0) / 5);
    CHECK(s2.committed_bytes <= s0.committed_bytes + (s1.committed_bytes - s0.committed_bytes) / 5);
    CHECK(s2.committed_peak >= s1.committed_bytes);

    /* the memory given back is usable again, and calloc'd memory is zero */
    populate(&pop, 64 * MiB, 32);
    bad = 0;
    for (int i = 0; i < pop.n; i++)
        if (!hk_pat_ok(pop.p[i], (uint64_t)i, pop.sz[i])) bad++;
    CHECK(bad == 0);
    free_all(&pop);
    for (int i = 0; i < 2000; i++) {
        size_t s = 1 + (size_t)(i * 7919) % (i % 10 ? 32 * KiB : 2 * MiB);
        void *p = hk_calloc(1, s);
        REQUIRE(p != NULL);
        if (!hk_is_zero(p, s)) bad++;
        memset(p, 0xDD, s);
        hk_free(p);
        if (i % 500 == 0) hk_collect(true);
    }
    CHECK(bad == 0);
}

/* Only some blocks freed (every other one): memory of the freed medium and
 * huge blocks comes back, the live half stays intact. */
static void test_partial(void) {
    hk_collect(true);
    hk_stats_t s0 = hk_all_stats();
    enum { N = 120 };
    void *p[N];
    /* 120 medium/huge blocks of 1 - 2 MiB and 3 MiB: ~200 MiB */
    for (int i = 0; i < N; i++) {
        size_t s = i % 3 == 0 ? 3 * MiB : 1 * MiB + (size_t)i * 8 * KiB;
        p[i] = hk_malloc(s);
        REQUIRE(p[i] != NULL);
        hk_pat_fill(p[i], 500 + (uint64_t)i, hk_usable_size(p[i]));
    }
    hk_stats_t s1 = hk_all_stats();
    size_t rss1 = hk_rss_bytes();
    size_t freed = 0;
    for (int i = 0; i < N; i += 2) {
        freed += hk_usable_size(p[i]);
        hk_free(p[i]);
        p[i] = NULL;
    }
    hk_collect(true);
    hk_stats_t s2 = hk_all_stats();
    size_t rss2 = hk_rss_bytes();
    fprintf(stderr, "partial: freed %zu KiB; committed KiB %zu -> %zu; rss KiB %zu -> %zu\n",
            freed >> 10, s1.committed_bytes >> 10, s2.committed_bytes >> 10, rss1 >> 10, rss2 >> 10);
    CHECK(s2.committed_bytes + freed * 3 / 4 <= s1.committed_bytes);
    CHECK(rss2 + freed * 3 / 4 <= rss1);
    int bad = 0;
    for (int i = 1; i < N; i += 2)
        if (!hk_pat_ok(p[i], 500 + (uint64_t)i, hk_usable_size(p[i]))) bad++;
    CHECK(bad == 0);
    for (int i = 1; i < N; i += 2) hk_free(p[i]);
    (void)s0;
}

/* A thread allocates and frees 100 MiB, then exits; the main thread's
 * hk_collect(true) gives that memory back too ("including memory of exited
 * threads"). */
static void *thread_peak(void *arg) {
    (void)arg;
    pop_t pop;
    populate(&pop, 100 * MiB, 33);
    free_all(&pop);
    return NULL;
}
static void test_exited_thread(void) {
    hk_collect(true);
    size_t rss0 = hk_rss_bytes();
    hk_stats_t s0 = hk_all_stats();
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, thread_peak, NULL) == 0);
    pthread_join(t, NULL);
    hk_collect(true);
    size_t rss1 = hk_rss_bytes();
    hk_stats_t s1 = hk_all_stats();
    fprintf(stderr, "exited thread: rss KiB %zu -> %zu; committed KiB %zu -> %zu\n",
            rss0 >> 10, rss1 >> 10, s0.committed_bytes >> 10, s1.committed_bytes >> 10);
    CHECK(rss1 <= rss0 + 24 * MiB);
    CHECK(s1.committed_bytes <= s0.committed_bytes + 24 * MiB);
}

int main(void) {
    test_peak_falls();
    test_partial();
    test_exited_thread();
    return hk_test_done();
}
