// test_remote: double and invalid frees that involve a thread other than
// the block's owner are reported at the second free, with the block's
// address, whatever the order: freed by another thread then by the owner
// (still queued), twice by other threads (the second finds it queued),
// by the owner then by another thread, by another thread after the owner
// drained it, an interior pointer freed by another thread; medium blocks
// and an explicit heap's huge block freed twice by other threads. The
// plain library misses all of these or reports them late, at the owner's
// drain. Each case runs in a forked child (its threads are the child's).
#include "secure_util.h"

#include <pthread.h>

static void *free_in_thread(void *p) {
    hk_free(p);
    return NULL;
}
static void free_remote(void *p) {
    pthread_t t;
    if (pthread_create(&t, NULL, free_in_thread, p) != 0) _exit(3);
    pthread_join(t, NULL);
}

static void remote_then_owner(void *arg) {
    void *p = ((hk_free_arg_t *)arg)->ptr;
    free_remote(p);
    hk_free(p); /* still on the remote queue: the owner has not drained */
}
static void remote_twice(void *arg) {
    void *p = ((hk_free_arg_t *)arg)->ptr;
    free_remote(p);
    free_remote(p);
}
static void owner_then_remote(void *arg) {
    void *p = ((hk_free_arg_t *)arg)->ptr;
    hk_free(p);
    free_remote(p);
}
static void remote_drained_remote(void *arg) {
    void *p = ((hk_free_arg_t *)arg)->ptr;
    free_remote(p);
    hk_collect(false); /* the owner drains its queue: p is free now */
    free_remote(p);
}
static void remote_once(void *arg) { free_remote(((hk_free_arg_t *)arg)->ptr); }
static void remote_a_b_a(void *arg) {
    hk_free_arg_t *x = arg;
    free_remote(x->ptr);
    free_remote(x->extra);
    free_remote(x->ptr);
}

static void expect(void (*fn)(void *), void *p, void *extra, const void *at, const char *kind,
                   const char *what) {
    hk_free_arg_t arg = { p, extra };
    CHECK(hk_expect_report(fn, &arg, at, kind, true, what));
}

/* An explicit heap's huge block freed twice by other threads: the owner
 * keeps its huge blocks linked, so other threads queue them. */
static void huge_remote_twice(void *arg) {
    (void)arg;
    hk_heap_t *h = hk_heap_new();
    void *g = hk_heap_malloc(h, 6 * MiB);
    if (!h || !g) _exit(4);
    fprintf(stderr, "target %p\n", g);
    free_remote(g);
    free_remote(g);
}

int main(void) {
    static const size_t sizes[] = { 8, 64, 500, 4096, 30000 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t s = sizes[i];
        char what[96];
        void *a = hk_malloc(s), *b = hk_malloc(s);
        REQUIRE(a && b);
        snprintf(what, sizeof what, "%zu bytes: remote free, then the owner's", s);
        expect(remote_then_owner, a, NULL, a, "double free", what);
        snprintf(what, sizeof what, "%zu bytes: two remote frees", s);
        expect(remote_twice, a, NULL, a, "double free", what);
        snprintf(what, sizeof what, "%zu bytes: the owner's free, then a remote one", s);
        expect(owner_then_remote, a, NULL, a, "double free", what);
        snprintf(what, sizeof what, "%zu bytes: remote, drained, remote", s);
        expect(remote_drained_remote, a, NULL, a, "double free", what);
        snprintf(what, sizeof what, "%zu bytes: remote a, b, a", s);
        expect(remote_a_b_a, a, b, a, "double free", what);
        if (s >= 16) {
            snprintf(what, sizeof what, "%zu bytes: remote free of block + 8", s);
            expect(remote_once, (char *)a + 8, NULL, (char *)a + 8, "invalid pointer", what);
        }
        hk_free(a);
        hk_free(b);
    }

    /* A carved block never handed out, freed by another thread. */
    {
        hk_heap_t *h = hk_heap_new();
        REQUIRE(h);
        uint8_t *a = hk_heap_malloc(h, 64);
        REQUIRE(a);
        sec_slab_t s = sec_slab_of(a);
        uint8_t *never = s.start + (a == s.start ? s.block_size : 0);
        expect(remote_once, never, NULL, never, "double free", "remote free of a block never handed out");
        hk_heap_destroy(h);
    }

    /* Medium blocks. */
    {
        uint8_t *m = hk_malloc(200 * KiB), *n = hk_malloc(200 * KiB);
        REQUIRE(m && n);
        expect(remote_twice, m, NULL, m, "double free", "medium: two remote frees");
        expect(remote_then_owner, m, NULL, m, "double free", "medium: remote, then the owner's");
        expect(remote_a_b_a, m, n, m, "double free", "medium: remote a, b, a");
        expect(remote_once, m + 4096, NULL, m + 4096, "invalid pointer", "medium: remote, + 4096");
        hk_free(m);
        hk_free(n);
    }

    /* A huge block of an explicit heap. */
    {
        char out[8192], kind[64];
        uintptr_t addr = 0;
        void *target = NULL;
        int st = hk_run_child(huge_remote_twice, NULL, out, sizeof out);
        const char *t = strstr(out, "target ");
        if (t) sscanf(t + 7, "%p", &target);
        CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
        CHECK(target != NULL && hk_parse_report(out, kind, sizeof kind, &addr) &&
              strcmp(kind, "double free") == 0 && addr == (uintptr_t)target);
        if (!(target && addr == (uintptr_t)target)) fprintf(stderr, "huge remote twice: %s\n", out);
    }
    return hk_test_done();
}
