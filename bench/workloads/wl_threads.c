/* wl_threads.c: thousands of short-lived threads. Threads run in waves of
 * N at a time; each one frees the blocks a previous thread left in a shared
 * hand-off pool, allocates its own (16..4096 B), frees half of them and
 * leaves the other half in the pool for a later thread to free. This is
 * the thread-pool-less server: per-thread heaps are created and torn down
 * constantly, and half the frees hit blocks of threads that have exited.
 */
#include "wl_common.h"

enum { PER_THREAD = 256, POOL_MAX = 16384, MIN_SIZE = 16, MAX_SIZE = 4096 };

typedef struct { void *p; uint32_t n; uint64_t id; } blk_t;

typedef struct {
    const wl_opts_t *o;
    pthread_mutex_t lock;
    blk_t pool[POOL_MAX]; /* blocks left behind by exited threads */
    size_t npool;
    uint64_t wave;
    uint64_t ops, check; /* under lock */
} thr_t;

static void *worker(wl_thread_arg_t *a) {
    thr_t *s = (thr_t *)a->shared;
    int me = a->index;
    uint64_t tid = s->wave * WL_MAX_SLOTS + (uint64_t)me;
    wl_rng_t r = wl_rng(s->o->seed, tid);
    blk_t mine[PER_THREAD], theirs[PER_THREAD / 2];
    uint64_t ops = 0, check = 0;
    /* Take over what earlier threads left behind... */
    pthread_mutex_lock(&s->lock);
    size_t take = s->npool < PER_THREAD / 2 ? s->npool : PER_THREAD / 2;
    s->npool -= take;
    memcpy(theirs, &s->pool[s->npool], take * sizeof *theirs);
    pthread_mutex_unlock(&s->lock);
    /* ...allocate our own... */
    for (int i = 0; i < PER_THREAD; i++) {
        size_t n = wl_logrange(&r, MIN_SIZE, MAX_SIZE);
        mine[i] = (blk_t){ wl_malloc(n), (uint32_t)n, (tid << 20) + (uint64_t)i };
        wl_tag(mine[i].p, n, mine[i].id);
        wl_live(me, (int64_t)n);
        ops++;
    }
    /* ...free theirs (blocks of an exited thread) and half of ours... */
    for (size_t i = 0; i < take; i++) {
        wl_check(theirs[i].p, theirs[i].n, theirs[i].id);
        check += ((unsigned char *)theirs[i].p)[theirs[i].n - 1];
        wl_live(me, -(int64_t)theirs[i].n);
        free(theirs[i].p);
    }
    int keep = 0;
    for (int i = 0; i < PER_THREAD; i++) {
        if (wl_below(&r, 2)) {
            mine[keep++] = mine[i];
        } else {
            wl_check(mine[i].p, mine[i].n, mine[i].id);
            wl_live(me, -(int64_t)mine[i].n);
            free(mine[i].p);
        }
    }
    /* ...and leave the rest behind (freed here only if the pool is full). */
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < keep; i++) {
        if (s->npool < POOL_MAX) {
            s->pool[s->npool++] = mine[i];
        } else {
            wl_live(me, -(int64_t)mine[i].n);
            free(mine[i].p);
        }
    }
    s->ops += ops;
    s->check += check;
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

int main(int argc, char **argv) {
    wl_opts_t o = wl_parse(argc, argv, "wl_threads", NULL);
    static thr_t s;
    s.o = &o;
    pthread_mutex_init(&s.lock, NULL);
    uint64_t threads = wl_scaled(&o, 10000, 20);
    uint64_t waves = threads / (uint64_t)o.threads + 1;
    wl_start();
    /* Waves of N threads; each wave is joined before the next starts. The
     * live peak is taken after each wave (no watcher: waves are short). */
    for (s.wave = 0; s.wave < waves; s.wave++) wl_run_threads_at(o.threads, 0, worker, &s, 0);
    for (size_t i = 0; i < s.npool; i++) {
        wl_check(s.pool[i].p, s.pool[i].n, s.pool[i].id);
        wl_live(0, -(int64_t)s.pool[i].n);
        free(s.pool[i].p);
    }
    printf("HKBENCH note threads_created=%llu\n", (unsigned long long)(waves * (uint64_t)o.threads));
    wl_finish(&o, s.ops, s.check);
    return 0;
}
