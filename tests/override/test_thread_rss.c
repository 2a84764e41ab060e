// ctest-timeout: 240
// test_thread_rss: thousands of threads created and ended over the
// program's life. Threads run in waves of 16; each allocates a mix of small
// and medium blocks (malloc, calloc, realloc, posix_memalign), frees most,
// and leaves some behind for a thread of the next wave to check and free
// (so blocks outlive the thread that made them, and are freed by another).
// The memory of ended threads must be reused: RSS, heapkit's mapped bytes
// (mallinfo2().arena) and the number of heaps are measured after 1000 and
// after 10000 thread lifetimes, and the second may not be much more than
// the first (a leak per thread would make it about ten times as much).
// Arguments: libheapkit.so, libovr_dl.so (unused), [lifetimes] (10000).
#include "ovr.h"

#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>

enum { WAVE = 16, KEEP = 32, LOCAL = 96 };

typedef struct {
    int index;
    char **inherit; /* left by a thread of the previous wave: check, free */
    char **leave;   /* what this thread leaves (KEEP blocks) */
    int bad;
} job_t;

static size_t size_for(uint64_t id) {
    uint64_t x = (id * 2654435761u) % 1000;
    if (x < 900) return 16 + x * 3;          /* small */
    if (x < 990) return 4000 + x * 20;       /* up to ~24 KiB */
    return 40 * KiB + (x - 990) * 20 * KiB;  /* medium */
}

static char *make(uint64_t id) {
    size_t n = size_for(id);
    char *p = malloc(n);
    if (!p) return NULL;
    memcpy(p, &id, 8);
    ovr_fill_sparse(p + 8, id, n - 8);
    return p;
}
static bool ok_block(const char *p) {
    uint64_t id;
    memcpy(&id, p, 8);
    return ovr_check_sparse(p + 8, id, size_for(id) - 8);
}

static void *run(void *arg) {
    job_t *j = arg;
    if (j->inherit) {
        for (int i = 0; i < KEEP; i++) {
            if (j->inherit[i] && !ok_block(j->inherit[i])) j->bad++;
            free(j->inherit[i]);
            j->inherit[i] = NULL;
        }
    }
    char *local[LOCAL];
    uint64_t base = (uint64_t)j->index * 1000;
    for (int i = 0; i < LOCAL; i++) {
        local[i] = make(base + (uint64_t)i);
        if (!local[i]) j->bad++;
    }
    /* calloc, realloc, posix_memalign on the way */
    char *z = calloc(100, 100);
    if (!z || z[9999]) j->bad++;
    char *r = realloc(z, 50000);
    if (!r) { j->bad++; free(z); }
    else free(r);
    void *a = NULL;
    if (posix_memalign(&a, 256, 3000) || ((uintptr_t)a & 255)) j->bad++;
    free(a);
    for (int i = 0; i < LOCAL; i++) {
        if (local[i] && !ok_block(local[i])) j->bad++;
        if (i < KEEP) j->leave[i] = local[i];
        else free(local[i]);
    }
    return NULL;
}

typedef struct {
    size_t rss, arena, uord, heaps;
} sample_t;

static sample_t sample(void) {
    sample_t s;
    struct mallinfo2 m = mallinfo2();
    hk_stats_t st;
    ovr_hk.stats(&st);
    s.rss = ovr_rss();
    s.arena = m.arena;
    s.uord = m.uordblks;
    s.heaps = st.heaps;
    return s;
}

int main(int argc, char **argv) {
    ovr_init();
    int total = argc > 3 ? atoi(argv[3]) : 10000;
    int first = total / 10;
    static char *slots[2][WAVE][KEEP];
    job_t jobs[WAVE];
    int bad = 0, waves = 0, first_done = 0;
    sample_t at_first = {0}, at_end;
    double t0 = ovr_now();
    for (int done = 0; done < total; waves++) {
        int cur = waves & 1, prev = cur ^ 1;
        pthread_t t[WAVE];
        int n = 0;
        for (; n < WAVE && done + n < total; n++) {
            jobs[n].index = done + n;
            jobs[n].inherit = waves ? slots[prev][n] : NULL;
            jobs[n].leave = slots[cur][n];
            jobs[n].bad = 0;
            memset(slots[cur][n], 0, sizeof slots[cur][n]);
            REQUIRE(pthread_create(&t[n], NULL, run, &jobs[n]) == 0);
        }
        for (int i = 0; i < n; i++) {
            pthread_join(t[i], NULL);
            bad += jobs[i].bad;
        }
        /* Slots of the previous wave no thread of this wave inherited. */
        for (int i = n; i < WAVE && waves; i++)
            for (int k = 0; k < KEEP; k++) {
                free(slots[prev][i][k]);
                slots[prev][i][k] = NULL;
            }
        done += n;
        if (done >= first && at_first.rss == 0) {
            at_first = sample();
            first_done = done;
        }
    }
    /* What the last wave left. */
    for (int i = 0; i < WAVE; i++)
        for (int k = 0; k < KEEP; k++) {
            char *p = slots[(waves - 1) & 1][i][k];
            if (p && !ok_block(p)) bad++;
            free(p);
        }
    at_end = sample();
    double t1 = ovr_now();
    printf("%d thread lifetimes (%d at once) in %.2f s\n", total, WAVE, t1 - t0);
    printf("  after %5d: RSS %6zu KiB, mapped %6zu KiB, live %6zu KiB, heaps %zu\n", first_done,
           at_first.rss / 1024, at_first.arena / 1024, at_first.uord / 1024, at_first.heaps);
    printf("  after %5d: RSS %6zu KiB, mapped %6zu KiB, live %6zu KiB, heaps %zu\n", total,
           at_end.rss / 1024, at_end.arena / 1024, at_end.uord / 1024, at_end.heaps);
    CHECK(bad == 0);
    /* Bounded: ten times the threads may not cost much more memory. The
     * slack covers heaps that appear late (up to one per thread alive at
     * once, each with a chunk) and one wave's worth of blocks; a leak of
     * 4 KiB of RSS, or of one chunk per 100 threads, per lifetime would
     * exceed it. */
    CHECK(at_end.rss <= at_first.rss * 2 + 16 * MiB);
    CHECK(at_end.arena <= at_first.arena + WAVE * 4 * MiB + 16 * MiB);
    CHECK(at_end.heaps <= 4 * WAVE);
    /* After collecting, the blocks of ended threads are all given back:
     * live bytes fall to what the main thread holds. */
    malloc_trim(0);
    sample_t trimmed = sample();
    printf("  after malloc_trim: RSS %zu KiB, mapped %zu KiB, live %zu KiB, heaps %zu\n",
           trimmed.rss / 1024, trimmed.arena / 1024, trimmed.uord / 1024, trimmed.heaps);
    CHECK(trimmed.uord < 4 * MiB);
    CHECK(trimmed.rss <= at_end.rss);
    printf("mode: %s\n", OVR_MODE);
    return hk_test_done();
}
