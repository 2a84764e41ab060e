/* wl_falseshare.c: allocator-induced false sharing (Berger et al., Hoard,
 * 2000). Two phases, each thread writing its own small block hard:
 *   passive: the main thread allocates one 16-byte block per thread side
 *            by side and hands them out; each thread frees its block and
 *            then repeatedly allocates a block of the same size, writes it
 *            1000 times and frees it. An allocator that gives the freed
 *            block straight back to the new owner keeps the threads'
 *            blocks in one cache line, and every write bounces the line.
 *   active:  the threads allocate batches of 64 such blocks at the same
 *            time, write each of them hard and free them; an allocator
 *            that carves neighbouring blocks of one cache line for
 *            different threads shows it here.
 * Time is what to read; the blocks are tiny, memory does not matter.
 */
#include "wl_common.h"

enum { SIZE = 16, WRITES = 1000, BATCH = 64 };

typedef struct {
    const wl_opts_t *o;
    uint64_t rounds_per_thread;
    void *handed[WL_MAX_SLOTS];
    pthread_barrier_t start;
    uint64_t ops[WL_MAX_SLOTS];
    uint64_t check[WL_MAX_SLOTS];
} fs_t;

/* Writes the block hard: volatile, so each write really reaches the cache. */
static uint64_t hammer(void *p, int writes) {
    volatile unsigned char *b = (volatile unsigned char *)p;
    for (int j = 0; j < writes; j++) b[j & (SIZE - 1)]++;
    return b[0];
}

static void *worker(wl_thread_arg_t *a) {
    fs_t *s = (fs_t *)a->shared;
    int me = a->index;
    uint64_t check = 0;
    free(s->handed[me]);  /* passive: start from the block the main thread gave us */
    wl_live(me, -SIZE);
    pthread_barrier_wait(&s->start);
    /* Passive phase. */
    for (uint64_t k = 0; k < s->rounds_per_thread; k++) {
        unsigned char *p = wl_malloc(SIZE);
        memset(p, 0, SIZE);
        wl_live(me, SIZE);
        check += hammer(p, WRITES);
        wl_live(me, -SIZE);
        free(p);
    }
    /* Both phases start together, so the threads really overlap. */
    pthread_barrier_wait(&s->start);
    /* Active phase: the same number of writes, spread over a batch. */
    unsigned char *batch[BATCH];
    for (uint64_t k = 0; k < s->rounds_per_thread; k++) {
        for (int i = 0; i < BATCH; i++) {
            batch[i] = wl_malloc(SIZE);
            memset(batch[i], 0, SIZE);
        }
        wl_live(me, SIZE * BATCH);
        for (int i = 0; i < BATCH; i++) check += hammer(batch[i], WRITES / BATCH);
        wl_live(me, -SIZE * BATCH);
        for (int i = 0; i < BATCH; i++) free(batch[i]);
    }
    s->ops[me] = 2 * s->rounds_per_thread; /* rounds of 1000 writes */
    s->check[me] = check;
    return NULL;
}

int main(int argc, char **argv) {
    wl_opts_t o = wl_parse(argc, argv, "wl_falseshare", NULL);
    static fs_t s;
    s.o = &o;
    s.rounds_per_thread = wl_scaled(&o, 100000, 100);
    pthread_barrier_init(&s.start, NULL, (unsigned)o.threads);
    wl_own_frees = 1; /* each thread frees only the blocks it allocated */
    wl_start();
    for (int i = 0; i < o.threads; i++) {
        s.handed[i] = wl_malloc(SIZE);
        memset(s.handed[i], 0, SIZE);
        wl_live(i, SIZE);
    }
    wl_run_threads(o.threads, worker, &s);
    wl_finish_threads(&o, s.ops, s.check);
    return 0;
}
