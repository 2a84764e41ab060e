// ctest-labels: threads
// ctest-args: 4 40000 3
// test_larson: multithreaded stress with cross-thread frees through shared
// slots (Larson-like). Each thread repeatedly swaps a fresh block into a
// random shared slot and checks and frees the block it took out, which
// was usually allocated by another thread. Rounds of threads come and go:
// blocks left in the slots outlive the threads that made them. Every block
// carries its id and size in its first 16 bytes and the id's pattern over
// the rest of its usable size. Workers call hk_collect now and then (thread 0
// with force) while the others run. At the end all slots are freed and the
// process statistics must balance.
// Arguments: threads (4), operations per thread per round (40000), rounds (3).
#include "hk_test.h"
#include "api/hk_util.h"

#include <pthread.h>
#include <stdatomic.h>

enum { SLOTS_PER_THREAD = 512 };

static _Atomic(void *) *slots;
static size_t nslots;
static unsigned long ops_per_thread;
static _Atomic long bad, allocs, frees_done;

static void *make_block(uint64_t id, size_t size, int how, hk_rng_t *r) {
    void *p;
    switch (how) {
    case 0: p = hk_malloc(size); break;
    case 1: p = hk_calloc(1, size); break;
    case 2: p = hk_aligned_alloc((size_t)1 << (4 + hk_rng_below(r, 9)), size); break;
    default: p = hk_realloc(NULL, size); break;
    }
    if (!p) return NULL;
    if (how == 1 && !hk_is_zero(p, size)) atomic_fetch_add(&bad, 1);
    size_t u = hk_usable_size(p);
    if (u < size || !hk_aligned_to(p, 16)) atomic_fetch_add(&bad, 1);
    hk_pat_fill(p, id, u);
    memcpy(p, &id, 8);
    memcpy((char *)p + 8, &u, 8);
    return p;
}
/* exact: the usable size must be the one recorded (false after a realloc,
 * when it must only be at least that). */
static bool block_ok_ex(const void *p, bool exact) {
    uint64_t id;
    size_t u;
    memcpy(&id, p, 8);
    memcpy(&u, (const char *)p + 8, 8);
    if (u < 16) return false;
    if (exact ? hk_usable_size(p) != u : hk_usable_size(p) < u) return false;
    /* full check up to 64 KiB, ends and a middle window beyond */
    if (u <= 64 * KiB) return hk_pat_find_bad_range(p, id, 16, u) == (size_t)-1;
    return hk_pat_find_bad_range(p, id, 16, 4096) == (size_t)-1 &&
           hk_pat_find_bad_range(p, id, u / 2, u / 2 + 4096) == (size_t)-1 &&
           hk_pat_find_bad_range(p, id, u - 4096, u) == (size_t)-1;
}
static bool block_ok(const void *p) { return block_ok_ex(p, true); }
static size_t pick_size(hk_rng_t *r) {
    uint64_t k = hk_rng_below(r, 10000);
    if (k < 7000) return 16 + hk_rng_below(r, 112);
    if (k < 9500) return 16 + hk_rng_below(r, 2048);
    if (k < 9950) return 16 + hk_rng_below(r, 32 * KiB);
    if (k < 9998) return 32 * KiB + hk_rng_below(r, 512 * KiB);
    return 2 * MiB + 1 + hk_rng_below(r, 2 * MiB);
}

typedef struct { int tid; int round; } targ_t;

static void *worker(void *arg) {
    targ_t *t = arg;
    hk_rng_t rng = hk_rng_seeded(0x1000 + (uint64_t)t->round * 1000 + (uint64_t)t->tid);
    uint64_t id_base = ((uint64_t)t->round << 48) | ((uint64_t)t->tid << 32);
    /* a few private blocks, freed locally: a mix of local and remote frees */
    void *mine[64] = { 0 };
    long a = 0, f = 0;
    for (unsigned long i = 0; i < ops_per_thread; i++) {
        uint64_t id = id_base | i;
        /* collects race with the other threads' work: thread 0 forces */
        if (i % 4096 == 4095) hk_collect(t->tid == 0 && i % 16384 == 16383);
        size_t size = pick_size(&rng);
        int how = (int)hk_rng_below(&rng, 8);
        how = how < 5 ? 0 : how - 4; /* mostly malloc */
        if (hk_rng_below(&rng, 4) == 0) {
            int m = (int)hk_rng_below(&rng, 64);
            if (mine[m]) {
                if (!block_ok(mine[m])) atomic_fetch_add(&bad, 1);
                hk_free(mine[m]);
                f++;
            }
            mine[m] = make_block(id, size, how, &rng);
            if (!mine[m]) atomic_fetch_add(&bad, 1); else a++;
            continue;
        }
        void *p = make_block(id, size, how, &rng);
        if (!p) { atomic_fetch_add(&bad, 1); continue; }
        a++;
        size_t s = hk_rng_below(&rng, nslots);
        void *old = atomic_exchange_explicit(&slots[s], p, memory_order_acq_rel);
        if (old) {
            if (!block_ok(old)) atomic_fetch_add(&bad, 1);
            /* sometimes realloc the foreign block first, then free it */
            if (hk_rng_below(&rng, 16) == 0) {
                size_t u;
                memcpy(&u, (char *)old + 8, 8);
                void *q = hk_realloc(old, u + 1 + hk_rng_below(&rng, 5000));
                if (!q) atomic_fetch_add(&bad, 1);
                else {
                    if (!block_ok_ex(q, false)) atomic_fetch_add(&bad, 1);
                    old = q;
                }
            }
            hk_free(old);
            f++;
        }
    }
    for (int m = 0; m < 64; m++) {
        if (!mine[m]) continue;
        if (!block_ok(mine[m])) atomic_fetch_add(&bad, 1);
        hk_free(mine[m]);
        f++;
    }
    atomic_fetch_add(&allocs, a);
    atomic_fetch_add(&frees_done, f);
    return NULL;
}

int main(int argc, char **argv) {
    int threads = (int)hk_arg(argc, argv, 1, 4);
    ops_per_thread = hk_arg(argc, argv, 2, 40000);
    int rounds = (int)hk_arg(argc, argv, 3, 3);
    if (threads < 1) threads = 1;
    if (rounds < 1) rounds = 1;
    nslots = (size_t)threads * SLOTS_PER_THREAD;
    slots = calloc(nslots, sizeof *slots);
    pthread_t *t = calloc((size_t)threads, sizeof *t);
    targ_t *ta = calloc((size_t)threads, sizeof *ta);
    REQUIRE(slots && t && ta);

    hk_collect(true);
    hk_stats_t s0 = hk_all_stats();

    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < threads; i++) {
            ta[i] = (targ_t){ i, r };
            REQUIRE(pthread_create(&t[i], NULL, worker, &ta[i]) == 0);
        }
        for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
        CHECK(atomic_load(&bad) == 0);
        /* between rounds the main thread frees a quarter of the slots */
        long f = 0;
        for (size_t s = r; s < nslots; s += 4) {
            void *p = atomic_exchange(&slots[s], NULL);
            if (!p) continue;
            if (!block_ok(p)) atomic_fetch_add(&bad, 1);
            hk_free(p);
            f++;
        }
        atomic_fetch_add(&frees_done, f);
        hk_collect(r % 2 == 1);
    }
    long f = 0;
    for (size_t s = 0; s < nslots; s++) {
        void *p = atomic_exchange(&slots[s], NULL);
        if (!p) continue;
        if (!block_ok(p)) atomic_fetch_add(&bad, 1);
        hk_free(p);
        f++;
    }
    atomic_fetch_add(&frees_done, f);
    CHECK(atomic_load(&bad) == 0);
    CHECK(atomic_load(&allocs) == atomic_load(&frees_done));
    CHECK(atomic_load(&allocs) >= (long)threads * (long)rounds * (long)ops_per_thread);

    hk_collect(true);
    hk_stats_t s1 = hk_all_stats();
    fprintf(stderr, "%d threads x %d rounds x %lu ops: %ld blocks; mallocs +%llu frees +%llu; "
            "live_blocks %zu -> %zu; mapped KiB peak %zu end %zu\n",
            threads, rounds, ops_per_thread, atomic_load(&allocs),
            (unsigned long long)(s1.mallocs - s0.mallocs), (unsigned long long)(s1.frees - s0.frees),
            s0.live_blocks, s1.live_blocks, s1.mapped_peak >> 10, s1.mapped_bytes >> 10);
    CHECK(s1.live_blocks == s0.live_blocks);
    CHECK(s1.live_bytes == s0.live_bytes);
    CHECK(s1.mallocs - s0.mallocs >= (uint64_t)atomic_load(&allocs));
    CHECK(s1.mallocs - s0.mallocs == s1.frees - s0.frees);
    free(slots);
    free(t);
    free(ta);
    return hk_test_done();
}
