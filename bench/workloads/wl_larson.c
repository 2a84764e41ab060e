/* wl_larson.c: the Larson & Krishnan server simulation (1998). A table of
 * shared slots holds live blocks (16..1024 B); every thread repeatedly
 * picks a random slot, swaps a fresh block into it and frees the block it
 * took out, which another thread usually allocated: remote frees in the
 * steady state of a server. The threads are replaced by new ones for each
 * of 4 generations, as in the original, so blocks of exited threads are
 * freed by their successors.
 *
 * Each block carries its own header (size and id) and a tail tag, so the
 * thread that frees it can check it without shared bookkeeping.
 */
#include "wl_common.h"

typedef struct {
    const wl_opts_t *o;
    _Atomic(void *) *slot;
    size_t nslots;
    uint64_t ops_per_thread;
    int gen;
    uint64_t ops[WL_MAX_SLOTS];
    uint64_t check[WL_MAX_SLOTS];
} larson_t;

enum { GENERATIONS = 4, MIN_SIZE = 16, MAX_SIZE = 1024 };

static void *make_block(wl_rng_t *r, uint64_t id, size_t *out) {
    size_t n = wl_range(r, MIN_SIZE, MAX_SIZE);
    unsigned char *p = wl_malloc(n);
    uint64_t hdr = ((uint64_t)n << 32) | (uint32_t)id, tail = wl_tagval(hdr);
    /* The byte the freeing thread adds to its checksum (check_block's
     * caller): written here, so the checksum never reads memory the
     * workload did not write (memcheck flagged it), and it is the same
     * under every allocator. Written first: at 16 bytes it is in the tail. */
    p[n / 2] = (unsigned char)(id * 131);
    memcpy(p, &hdr, 8);
    memcpy(p + n - 8, &tail, 8);
    *out = n;
    return p;
}

/* Checks the block and returns its size. */
static size_t check_block(const unsigned char *p) {
    uint64_t hdr, tail;
    memcpy(&hdr, p, 8);
    size_t n = (size_t)(hdr >> 32);
    if (n < MIN_SIZE || n > MAX_SIZE) wl_fail("corrupted block %p: bad header", (const void *)p);
    memcpy(&tail, p + n - 8, 8);
    if (tail != wl_tagval(hdr)) wl_fail("corrupted block %p (size %zu): tag mismatch", (const void *)p, n);
    return n;
}

static void *worker(wl_thread_arg_t *a) {
    larson_t *s = (larson_t *)a->shared;
    int me = a->index;
    wl_rng_t r = wl_rng(s->o->seed, (uint64_t)(s->gen * WL_MAX_SLOTS + me));
    uint64_t id = ((uint64_t)(s->gen * WL_MAX_SLOTS + me)) << 40, check = 0;
    for (uint64_t k = 0; k < s->ops_per_thread; k++) {
        size_t n;
        void *p = make_block(&r, id++, &n);
        size_t i = (size_t)wl_below(&r, s->nslots);
        unsigned char *old = atomic_exchange_explicit(&s->slot[i], p, memory_order_acq_rel);
        int64_t delta = (int64_t)n;
        if (old) {
            size_t on = check_block(old);
            check += old[on / 2];
            delta -= (int64_t)on;
            free(old);
        }
        wl_live(me, delta);
    }
    s->ops[me] += s->ops_per_thread;
    s->check[me] += check;
    return NULL;
}

int main(int argc, char **argv) {
    wl_opts_t o = wl_parse(argc, argv, "wl_larson", NULL);
    static larson_t s;
    s.o = &o;
    uint64_t total = wl_scaled(&o, 5e6, 2000);
    /* 20000 slots (about 10 MiB live) at scale >= 0.1; fewer below, so the
     * tiny test runs still replace each slot many times. */
    s.nslots = (size_t)(total / 50 < 20000 ? total / 50 : 20000);
    s.ops_per_thread = total / GENERATIONS / (uint64_t)o.threads + 1;
    s.slot = wl_malloc(s.nslots * sizeof *s.slot);
    for (size_t i = 0; i < s.nslots; i++) atomic_init(&s.slot[i], NULL);
    wl_start();
    /* Fill every slot first (by the main thread, slot 0 of the counters),
     * so the generations start from the steady state. */
    wl_rng_t r = wl_rng(o.seed, 999);
    for (size_t i = 0; i < s.nslots; i++) {
        size_t n;
        atomic_store(&s.slot[i], make_block(&r, (uint64_t)i, &n));
        wl_live(0, (int64_t)n);
    }
    for (s.gen = 0; s.gen < GENERATIONS; s.gen++)
        wl_run_threads_at(o.threads, 1, worker, &s, 1);
    uint64_t ops = 0, check = 0;
    for (int i = 0; i < WL_MAX_SLOTS; i++) ops += s.ops[i], check += s.check[i];
    for (size_t i = 0; i < s.nslots; i++) {
        unsigned char *p = atomic_load(&s.slot[i]);
        wl_live(0, -(int64_t)check_block(p));
        free(p);
    }
    free((void *)s.slot);
    wl_finish(&o, ops, check);
    return 0;
}
