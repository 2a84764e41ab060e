/* wl_prodcons.c: producer/consumer pipelines. Producers allocate blocks
 * (16..2048 B, log-uniform), fill their header and tail, and pass them
 * through a bounded single-producer/single-consumer ring to a consumer,
 * which checks and frees them: every free is remote, the pattern that
 * breaks allocators whose thread caches assume the allocating thread frees.
 *
 * Threads: max(1, N/2) producer/consumer pairs (so 2 threads at N = 1).
 */
#include "wl_common.h"
#include <sched.h>

enum { RING = 1024, MIN_SIZE = 16, MAX_SIZE = 2048 };

/* Waiting on the other side: spin with the CPU's pause hint first (cheap,
 * and the other side is usually running on the other core), then yield so
 * that with more threads than cores the other side gets to run. */
static inline void backoff(int spins) {
    if (spins < 2048) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        __asm__ volatile("yield");
#endif
    } else {
        sched_yield();
    }
}

/* Head and tail on their own cache lines: each is written by one side. */
typedef struct {
    _Atomic uint64_t head __attribute__((aligned(128)));  /* producer writes */
    _Atomic uint64_t tail __attribute__((aligned(128)));  /* consumer writes */
    void *item[RING] __attribute__((aligned(128)));
} ring_t;

typedef struct {
    const wl_opts_t *o;
    int pairs;
    uint64_t items_per_pair;
    ring_t *ring;
    uint64_t ops[WL_MAX_SLOTS];
    uint64_t check[WL_MAX_SLOTS];
} pc_t;

static void *worker(wl_thread_arg_t *a) {
    pc_t *s = (pc_t *)a->shared;
    int me = a->index, pair = me / 2, producer = (me % 2) == 0;
    ring_t *q = &s->ring[pair];
    uint64_t check = 0;
    if (producer) {
        wl_rng_t r = wl_rng(s->o->seed, (uint64_t)me);
        uint64_t head = 0;
        for (uint64_t k = 0; k < s->items_per_pair; k++) {
            size_t n = wl_logrange(&r, MIN_SIZE, MAX_SIZE);
            unsigned char *p = wl_malloc(n);
            uint64_t hdr = ((uint64_t)n << 32) | (uint32_t)k, tail = wl_tagval(hdr);
            memcpy(p, &hdr, 8);
            memcpy(p + n - 8, &tail, 8);
            wl_live(me, (int64_t)n);
            for (int spins = 0; head - atomic_load_explicit(&q->tail, memory_order_acquire) >= RING; spins++)
                backoff(spins);
            q->item[head % RING] = p;
            atomic_store_explicit(&q->head, ++head, memory_order_release);
        }
    } else {
        uint64_t tail = 0;
        while (tail < s->items_per_pair) {
            uint64_t head;
            for (int spins = 0; (head = atomic_load_explicit(&q->head, memory_order_acquire)) == tail; spins++)
                backoff(spins);
            /* Take everything available in one go, then publish the tail. */
            for (; tail < head; tail++) {
                unsigned char *p = q->item[tail % RING];
                uint64_t hdr, t;
                memcpy(&hdr, p, 8);
                size_t n = (size_t)(hdr >> 32);
                if (n < MIN_SIZE || n > MAX_SIZE || (uint32_t)hdr != (uint32_t)tail)
                    wl_fail("corrupted block %p: bad header", (void *)p);
                memcpy(&t, p + n - 8, 8);
                if (t != wl_tagval(hdr)) wl_fail("corrupted block %p: tag mismatch", (void *)p);
                check += p[n / 2 - 1];
                wl_live(me, -(int64_t)n);
                free(p);
            }
            atomic_store_explicit(&q->tail, tail, memory_order_release);
        }
    }
    s->ops[me] = producer ? 0 : s->items_per_pair;
    s->check[me] = check;
    return NULL;
}

int main(int argc, char **argv) {
    wl_opts_t o = wl_parse(argc, argv, "wl_prodcons", NULL);
    static pc_t s;
    s.o = &o;
    s.pairs = o.threads / 2 > 0 ? o.threads / 2 : 1;
    s.items_per_pair = wl_scaled(&o, 3e6, 1000) / (uint64_t)s.pairs + 1;
    void *rings = NULL;
    if (posix_memalign(&rings, 128, sizeof(ring_t) * (size_t)s.pairs) != 0) wl_fail("out of memory for the rings");
    s.ring = rings;
    memset(s.ring, 0, sizeof(ring_t) * (size_t)s.pairs);
    wl_start();
    wl_run_threads(2 * s.pairs, worker, &s);
    uint64_t ops = 0, check = 0;
    for (int i = 0; i < 2 * s.pairs; i++) ops += s.ops[i], check += s.check[i];
    free(s.ring);
    wl_finish(&o, ops, check);
    return 0;
}
