// ctest-labels: threads
// ctest-args: 3 200000
// test_remote_stress: no false report and no lost block when other threads
// free an owner's blocks while the owner allocates and frees neighbours of
// the same bitmap words. The owner hands 16..64-byte blocks (eight share a
// 512-byte bits word) to the freeing threads through a ring, keeps and
// frees some itself, and drains; every block carries a pattern that is
// checked before it is freed. At the end every block came back: the
// owner's live count (statistics) returns to where it started.
// Args: freeing threads, blocks handed over.
#include "secure_util.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

enum { RING = 1024 };
static _Atomic(uintptr_t) ring[RING];
static _Atomic(int) done;
static _Atomic(long) bad, freed;
static unsigned nthreads;

static void *freer(void *arg) {
    size_t me = (size_t)(uintptr_t)arg;
    for (;;) {
        bool any = false;
        for (size_t i = me; i < RING; i += nthreads) {
            uintptr_t v = atomic_exchange(&ring[i], 0);
            if (!v) continue;
            any = true;
            void *p = (void *)v;
            uint64_t id;
            memcpy(&id, p, sizeof id);
            size_t n = hk_usable_size(p);
            if (!hk_pat_ok((uint8_t *)p + 8, id, n - 8)) atomic_fetch_add(&bad, 1);
            hk_free(p);
            atomic_fetch_add(&freed, 1);
        }
        if (!any) sched_yield(); /* 2 cores: let the owner fill the ring */
        if (!any && atomic_load(&done)) {
            /* One last sweep after done: nothing is left behind. */
            bool left = false;
            for (size_t i = me; i < RING; i += nthreads) left |= atomic_load(&ring[i]) != 0;
            if (!left) return NULL;
        }
    }
}

static void *make(uint64_t id, size_t size) {
    uint8_t *p = hk_malloc(size);
    if (!p) return NULL;
    memcpy(p, &id, sizeof id);
    hk_pat_fill(p + 8, id, hk_usable_size(p) - 8);
    return p;
}

int main(int argc, char **argv) {
    nthreads = (unsigned)hk_arg(argc, argv, 1, 3);
    long total = (long)hk_arg(argc, argv, 2, 300000);
    if (nthreads < 1) nthreads = 1;
    if (nthreads > 4) nthreads = 4;
    hk_stats_t before = hk_my_stats();
    pthread_t t[4];
    for (unsigned i = 0; i < nthreads; i++)
        REQUIRE(pthread_create(&t[i], NULL, freer, (void *)(uintptr_t)i) == 0);
    hk_rng_t r = hk_rng_seeded(66);
    enum { KEEP = 256 };
    void *kept[KEEP] = {0};
    uint64_t kept_id[KEEP];
    long handed = 0, own = 0;
    for (uint64_t id = 1; handed < total; id++) {
        size_t size = 16 + 16 * (size_t)hk_rng_below(&r, 4);
        void *p = make(id, size);
        REQUIRE(p);
        if (hk_rng_below(&r, 4) == 0) {
            /* The owner's own: kept a while, then freed locally. */
            size_t k = (size_t)hk_rng_below(&r, KEEP);
            if (kept[k]) {
                if (!hk_pat_ok((uint8_t *)kept[k] + 8, kept_id[k], hk_usable_size(kept[k]) - 8)) bad++;
                hk_free(kept[k]);
                own++;
            }
            kept[k] = p;
            kept_id[k] = id;
            continue;
        }
        /* Handed to a freeing thread: wait for a free ring slot. */
        size_t i = (size_t)hk_rng_below(&r, RING);
        uintptr_t expect = 0;
        while (!atomic_compare_exchange_weak(&ring[i], &expect, (uintptr_t)p)) {
            expect = 0;
            i = (i + 1) % RING;
        }
        handed++;
        if ((handed & 1023) == 0) hk_collect(false); /* drain now and then */
    }
    atomic_store(&done, 1);
    for (unsigned i = 0; i < nthreads; i++) pthread_join(t[i], NULL);
    for (size_t k = 0; k < KEEP; k++) hk_free(kept[k]);
    hk_collect(false);
    hk_stats_t after = hk_my_stats();
    printf("handed %ld, freed remotely %ld, freed by the owner %ld\n", handed, (long)freed, own);
    CHECK(atomic_load(&freed) == handed);
    CHECK(atomic_load(&bad) == 0);
    CHECK(after.live_blocks == before.live_blocks);
    return hk_test_done();
}
