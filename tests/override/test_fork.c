// ctest-timeout: 180
// test_fork: fork() from a multithreaded process while other threads
// allocate hard. Worker threads allocate, free, realloc and calloc blocks
// of every kind (small, medium, huge) and hand blocks to each other (frees
// from other threads), another starts and ends threads and calls
// malloc_trim; meanwhile the main thread and one more thread fork
// again and again. Each child allocates at once (a lock held by a thread
// that does not exist in the child would hang it: an alarm turns a hang
// into a failure), uses every kind of block, frees blocks the parent made
// before the fork (its own and the vanished workers'), asks for
// statistics, trims, starts a thread, sometimes forks again, and exits
// with its verdict. The parent checks every child and goes on: the workers
// check their blocks until the end.
// Arguments: libheapkit.so (unused), libovr_dl.so (unused), [forks] (200).
#include "ovr.h"

#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>

enum { WORKERS = 3, SLOTS = 512, SHARED = 64 };

static atomic_bool stop;
static atomic_long worker_ops, worker_bad;
/* Blocks passed between workers: each slot holds a block or NULL. */
static _Atomic(uintptr_t) shared[SHARED];

typedef struct {
    char *p;
    size_t n;
    uint64_t id;
} blk_t;

static size_t pick_size(hk_rng_t *r) {
    uint64_t x = hk_rng_below(r, 1000);
    if (x < 900) return 8 + hk_rng_below(r, 512); /* room for the id */
    if (x < 985) return 512 + hk_rng_below(r, 32 * KiB);
    if (x < 998) return 32 * KiB + hk_rng_below(r, 512 * KiB);
    return 2 * MiB + hk_rng_below(r, 2 * MiB);
}

/* Marks a block: id at the start, a byte pattern on its first and last
 * 256 bytes (so that a block of megabytes costs no page faults). */
static void mark(blk_t *b) {
    memcpy(b->p, &b->id, sizeof b->id);
    size_t head = b->n < 264 ? b->n - 8 : 256;
    ovr_fill(b->p + 8, b->id, head);
    if (b->n >= 528) ovr_fill(b->p + b->n - 256, b->id ^ 1, 256);
}
static bool marked(const blk_t *b) {
    uint64_t id;
    memcpy(&id, b->p, sizeof id);
    size_t head = b->n < 264 ? b->n - 8 : 256;
    return id == b->id && ovr_check(b->p + 8, b->id, head) &&
           (b->n < 528 || ovr_check(b->p + b->n - 256, b->id ^ 1, 256));
}

/* A shared block carries its own size and id in its first 16 bytes. */
static char *make_shared_block(hk_rng_t *r, uint64_t id) {
    size_t n = 16 + hk_rng_below(r, 4000);
    char *p = malloc(n);
    if (!p) return NULL;
    memcpy(p, &n, 8);
    memcpy(p + 8, &id, 8);
    ovr_fill_sparse(p + 16, id, n - 16);
    return p;
}
static bool shared_block_ok(const char *p) {
    size_t n;
    uint64_t id;
    memcpy(&n, p, 8);
    memcpy(&id, p + 8, 8);
    return n >= 16 && n <= 4016 && ovr_check_sparse(p + 16, id, n - 16);
}

static void *worker(void *arg) {
    int w = (int)(intptr_t)arg;
    hk_rng_t rng = hk_rng_seeded(500 + (uint64_t)w);
    static __thread blk_t b[SLOTS];
    uint64_t next_id = (uint64_t)w << 40;
    long bad = 0, ops = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        for (int round = 0; round < 64; round++, ops++) {
            int k = (int)hk_rng_below(&rng, SLOTS);
            if (b[k].p) {
                if (!marked(&b[k])) bad++;
                if (hk_rng_below(&rng, 4) == 0) {
                    /* realloc keeps the contents (the id, at least) */
                    size_t n = pick_size(&rng);
                    char *q = realloc(b[k].p, n);
                    if (!q) { bad++; continue; }
                    uint64_t id;
                    memcpy(&id, q, 8);
                    if (id != b[k].id) bad++;
                    b[k].p = q;
                    b[k].n = n;
                    b[k].id = next_id++;
                    mark(&b[k]);
                    continue;
                }
                free(b[k].p);
                b[k].p = NULL;
            } else {
                size_t n = pick_size(&rng);
                bool zero = hk_rng_below(&rng, 8) == 0;
                b[k].p = zero ? calloc(1, n) : malloc(n);
                if (!b[k].p) { bad++; continue; }
                if (zero && (b[k].p[0] || b[k].p[n - 1] || b[k].p[n / 2])) bad++;
                b[k].n = n;
                b[k].id = next_id++;
                mark(&b[k]);
            }
            /* Hand a block to whoever comes next; free what was there. */
            if (hk_rng_below(&rng, 4) == 0) {
                char *mine = make_shared_block(&rng, next_id++);
                int s = (int)hk_rng_below(&rng, SHARED);
                char *old = (char *)atomic_exchange(&shared[s], (uintptr_t)mine);
                if (old) {
                    if (!shared_block_ok(old)) bad++;
                    free(old);
                }
            }
        }
        atomic_fetch_add(&worker_ops, 64);
    }
    for (int k = 0; k < SLOTS; k++) {
        if (b[k].p && !marked(&b[k])) bad++;
        free(b[k].p);
        b[k].p = NULL;
    }
    atomic_fetch_add(&worker_bad, bad);
    (void)ops;
    return NULL;
}

/* Threads that start and end all the time (heaps retired and adopted under
 * heapkit's global lock), and malloc_trim (which collects retired heaps and
 * the caches) now and then, while the forks go on. */
static void *short_lived(void *arg) {
    (void)arg;
    void *v[48];
    for (int i = 0; i < 48; i++) v[i] = malloc((size_t)(i * 131) % 40000 + 1);
    for (int i = 0; i < 48; i++) free(v[i]);
    return malloc(100);
}
static void *churner(void *arg) {
    (void)arg;
    long n = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        pthread_t t;
        void *r = NULL;
        if (pthread_create(&t, NULL, short_lived, NULL) != 0 || pthread_join(t, &r) != 0 || !r)
            atomic_fetch_add(&worker_bad, 1);
        free(r);
        if (++n % 8 == 0) malloc_trim(0);
    }
    return NULL;
}

/* ---- the child ------------------------------------------------------------------ */
static char *parent_blocks[16]; /* made by the main thread before the forks */

static void *child_thread(void *arg) {
    (void)arg;
    void *v[200];
    for (int i = 0; i < 200; i++) v[i] = malloc((size_t)i * 97 + 1);
    for (int i = 0; i < 200; i++) free(v[i]);
    char *r = malloc(5000);
    if (r) memset(r, 7, 5000);
    return r;
}

/* Returns the number of problems (the child's exit status). */
static int child_work(int depth, hk_rng_t *rng) {
    int bad = 0;
    /* Allocate at once, every kind. */
    blk_t v[300];
    for (int i = 0; i < 300; i++) {
        size_t n = i < 240 ? 8 + hk_rng_below(rng, 2000)
                 : i < 297 ? 32 * KiB + hk_rng_below(rng, 300 * KiB)
                           : 3 * MiB + hk_rng_below(rng, MiB);
        v[i].p = i % 7 == 0 ? calloc(1, n) : malloc(n);
        v[i].n = n;
        v[i].id = 1000000 + (uint64_t)i;
        if (!v[i].p) { bad++; continue; }
        if (i % 7 == 0 && (v[i].p[0] || v[i].p[n - 1])) bad++;
        mark(&v[i]);
    }
    for (int i = 0; i < 300; i++)
        if (v[i].p && !marked(&v[i])) bad++;
    for (int i = 0; i < 300; i += 2) {
        char *q = realloc(v[i].p, v[i].n * 2);
        if (!q) { bad++; continue; }
        v[i].p = q;
        if (!marked(&v[i])) bad++;
    }
    for (int i = 0; i < 300; i++) free(v[i].p);
    /* Free blocks made before the fork: the main thread's, and those the
     * vanished workers left in the shared slots. */
    if (depth == 0) {
        for (int i = 0; i < 16; i++) {
            if (parent_blocks[i][0] != (char)i) bad++;
            free(parent_blocks[i]);
        }
        for (int s = 0; s < SHARED; s += 4) {
            char *old = (char *)atomic_exchange(&shared[s], 0);
            if (old) {
                if (!shared_block_ok(old)) bad++;
                free(old);
            }
        }
    }
    /* Statistics and trimming take heapkit's global locks. */
    struct mallinfo2 m = mallinfo2();
    if (m.arena == 0 || m.uordblks == 0) bad++;
    malloc_trim(0);
    /* A thread of the child. */
    pthread_t t;
    void *r = NULL;
    if (pthread_create(&t, NULL, child_thread, NULL) != 0 || pthread_join(t, &r) != 0 || !r ||
        ((char *)r)[4999] != 7)
        bad++;
    free(r);
    /* Sometimes a grandchild. */
    if (depth == 0 && hk_rng_below(rng, 8) == 0) {
        pid_t g = fork();
        if (g == 0) {
            alarm(10);
            _exit(child_work(1, rng) ? 1 : 0);
        }
        int st = 0;
        if (g < 0 || waitpid(g, &st, 0) != g || !WIFEXITED(st) || WEXITSTATUS(st) != 0) bad++;
    }
    return bad > 100 ? 100 : bad;
}

/* ---- forking ------------------------------------------------------------------------ */
typedef struct {
    int forks, failed, hung;
    int first_status;
    uint64_t seed;
} forker_t;

static void do_forks(forker_t *f) {
    hk_rng_t rng = hk_rng_seeded(f->seed);
    for (int i = 0; i < f->forks; i++) {
        /* Keep the forking thread's own heap busy too. */
        void *mine[32];
        for (int k = 0; k < 32; k++) mine[k] = malloc(hk_rng_below(&rng, 3000) + 1);
        pid_t pid = fork();
        if (pid == 0) {
            alarm(10); /* a hang (a lock held across fork) becomes SIGALRM */
            _exit(child_work(0, &rng));
        }
        for (int k = 0; k < 32; k++) free(mine[k]);
        if (pid < 0) {
            f->failed++;
            continue;
        }
        int st = 0;
        waitpid(pid, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            if (!f->failed) f->first_status = st;
            f->failed++;
            if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM) f->hung++;
        }
    }
}

static void *forker_thread(void *arg) {
    do_forks(arg);
    return NULL;
}

int main(int argc, char **argv) {
    ovr_init();
    int forks = argc > 3 ? atoi(argv[3]) : 200;
    for (int i = 0; i < 16; i++) {
        parent_blocks[i] = malloc((size_t)(i + 1) * 5000);
        REQUIRE(parent_blocks[i] != NULL);
        memset(parent_blocks[i], i, (size_t)(i + 1) * 5000);
    }
    pthread_t w[WORKERS], ch;
    for (int i = 0; i < WORKERS; i++)
        REQUIRE(pthread_create(&w[i], NULL, worker, (void *)(intptr_t)i) == 0);
    REQUIRE(pthread_create(&ch, NULL, churner, NULL) == 0);
    while (atomic_load(&worker_ops) < 20000) usleep(1000);

    double t0 = ovr_now();
    /* Forks from the main thread and, at the same time, from another one. */
    forker_t a = {forks / 2, 0, 0, 0, 1}, b = {forks - forks / 2, 0, 0, 0, 2};
    pthread_t ft;
    REQUIRE(pthread_create(&ft, NULL, forker_thread, &b) == 0);
    do_forks(&a);
    pthread_join(ft, NULL);
    double t1 = ovr_now();
    long ops_during = atomic_load(&worker_ops);

    /* The parent goes on: the workers keep working a little longer. */
    long before = atomic_load(&worker_ops);
    while (atomic_load(&worker_ops) < before + 20000) usleep(1000);
    atomic_store(&stop, true);
    for (int i = 0; i < WORKERS; i++) pthread_join(w[i], NULL);
    pthread_join(ch, NULL);
    for (int s = 0; s < SHARED; s++) {
        char *old = (char *)atomic_exchange(&shared[s], 0);
        if (old) {
            CHECK(shared_block_ok(old));
            free(old);
        }
    }
    for (int i = 0; i < 16; i++) {
        CHECK(parent_blocks[i][(size_t)(i + 1) * 5000 - 1] == (char)i);
        free(parent_blocks[i]);
    }
    printf("%d forks in %.2f s (%d + %d from two threads) while %d threads made %ld allocation "
           "operations; failed children: %d (hung: %d)\n",
           forks, t1 - t0, a.forks, b.forks, WORKERS, ops_during, a.failed + b.failed,
           a.hung + b.hung);
    if (a.failed + b.failed)
        printf("first failed child: status %#x\n", a.failed ? a.first_status : b.first_status);
    CHECK(a.failed == 0);
    CHECK(b.failed == 0);
    CHECK(atomic_load(&worker_bad) == 0);
    /* Still fine after everything. */
    void *p = malloc(1000);
    CHECK(ovr_owned(p));
    free(p);
    printf("mode: %s\n", OVR_MODE);
    return hk_test_done();
}
