// Regression tests for bugs found in review (each failed before its fix).
#define _GNU_SOURCE
#include <pthread.h>
#include <sys/mman.h>

#include "hk_test.h"
#include "heapkit.h"

/* calloc must not trust a decommit the OS refused: under mlockall,
 * MADV_DONTNEED fails, and a reused chunk still holds the old bytes. */
static void calloc_under_mlockall(void *arg) {
    (void)arg;
    if (mlockall(MCL_CURRENT | MCL_FUTURE) != 0) _exit(77); /* not allowed here */
    hk_heap_t *h = hk_heap_new();
    unsigned char *old = hk_heap_malloc(h, 200 * 1024);
    memset(old, 0xAA, 200 * 1024);
    hk_heap_destroy(h);
    hk_collect(true);
    unsigned char *z = hk_calloc(1, 200 * 1024);
    size_t bad = 0;
    for (size_t i = 0; i < 200 * 1024; i++) bad += z[i] != 0;
    _exit(bad == 0 ? 0 : 1);
}

static int run_child(void (*fn)(void *)) {
    pid_t pid = fork();
    if (pid == 0) fn(NULL);
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The largest medium block (2 MiB less a page; 2 MiB is huge): two fill a
 * chunk, so a few of them make whole chunks free. */
#define MEDIUM_LARGEST ((2 << 20) - 4096)

/* A double free of a block whose chunk went back to the global cache is
 * reported, not a crash. */
static void double_free_cached_chunk(void *arg) {
    (void)arg;
    void *a = hk_malloc(MEDIUM_LARGEST), *b = hk_malloc(MEDIUM_LARGEST), *c = hk_malloc(MEDIUM_LARGEST);
    hk_free(a);
    hk_free(b);
    hk_free(c);
    hk_free(a);
}

/* Destroying a heap with a live medium block keeps the process totals
 * balanced: mallocs - frees == live blocks. */
static void test_destroy_balances_stats(void) {
    hk_stats_t s0, s1;
    hk_stats(&s0);
    hk_heap_t *h = hk_heap_new();
    for (int i = 0; i < 1000; i++) REQUIRE(hk_heap_malloc(h, 64) != NULL);
    REQUIRE(hk_heap_malloc(h, 100 * 1024) != NULL);
    hk_heap_destroy(h);
    hk_stats(&s1);
    CHECK(s1.mallocs - s1.frees == s1.live_blocks);
    CHECK(s1.mallocs - s0.mallocs == s1.frees - s0.frees);
}

/* An explicit heap whose owner thread exits is released: no later thread
 * (which may reuse the thread pointer) passes for its owner, and any
 * thread may adopt it. */
static hk_heap_t *orphaned;
static void *make_and_leave(void *arg) {
    (void)arg;
    orphaned = hk_heap_new();
    void *p = hk_heap_malloc(orphaned, 100);
    return p;
}
static void *try_alloc(void *arg) {
    (void)arg;
    return hk_heap_malloc(orphaned, 100);
}
static void alloc_from_orphaned(void *arg) {
    (void)arg;
    pthread_t t;
    pthread_create(&t, NULL, make_and_leave, NULL);
    pthread_join(t, NULL);
    pthread_create(&t, NULL, try_alloc, NULL); /* likely the same thread pointer */
    pthread_join(t, NULL);
}
static void test_orphaned_heap_adoptable(void) {
    pthread_t t;
    void *p;
    REQUIRE(pthread_create(&t, NULL, make_and_leave, NULL) == 0);
    pthread_join(t, &p);
    hk_heap_adopt(orphaned); /* released at its owner's exit */
    CHECK(hk_heap_owns(orphaned, p));
    CHECK(hk_heap_malloc(orphaned, 100) != NULL);
    hk_heap_destroy(orphaned);
}

/* After fork, the heaps of the parent's other threads are not lost: the
 * child frees their blocks and gets the memory back for new allocations. */
typedef struct { void *blocks[50]; } batch_t;
static void *alloc_batch(void *arg) {
    batch_t *b = arg;
    for (int i = 0; i < 50; i++) b->blocks[i] = hk_malloc(MEDIUM_LARGEST);
    return NULL;
}
static void fork_reuse_child(void *arg) {
    batch_t *b = arg;
    for (int i = 0; i < 50; i++) hk_free(b->blocks[i]);
    hk_collect(true);
    hk_stats_t s0, s1;
    hk_stats(&s0);
    void *again[50];
    for (int i = 0; i < 50; i++) again[i] = hk_malloc(MEDIUM_LARGEST);
    hk_stats(&s1);
    /* 100 MiB were freed; allocating them again must not map 100 MiB more */
    _exit(s1.mapped_bytes < s0.mapped_bytes + (40u << 20) && again[49] ? 0 : 1);
}
static batch_t live_batch;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int stage;
static void *holder(void *arg) {
    (void)arg;
    alloc_batch(&live_batch);
    pthread_mutex_lock(&mu);
    stage = 1;
    pthread_cond_broadcast(&cv);
    while (stage != 2) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    return NULL;
}

int main(void) {
    int rc = run_child(calloc_under_mlockall);
    if (rc == 77) printf("skip: mlockall not permitted\n");
    else CHECK(rc == 0);
    CHECK(hk_expect_death(double_free_cached_chunk, NULL, "double free"));
    test_destroy_balances_stats();
    CHECK(hk_expect_death(alloc_from_orphaned, NULL, "heap is released"));
    test_orphaned_heap_adoptable();
    /* A thread alive at fork time holds 100 MiB in its heap. */
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, holder, NULL) == 0);
    pthread_mutex_lock(&mu);
    while (stage != 1) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    pid_t pid = fork();
    if (pid == 0) fork_reuse_child(&live_batch);
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    pthread_mutex_lock(&mu);
    stage = 2;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    pthread_join(t, NULL);
    for (int i = 0; i < 50; i++) hk_free(live_batch.blocks[i]);
    return hk_test_done();
}
