// test_corrupt: a free block whose first word is overwritten (a write
// after free, an overflow from the block before it) never makes malloc
// return a wild or live pointer: the next malloc that reaches the block
// aborts with "heapkit: free list corrupted 0x<block>". Overwritten with:
// a plain pointer to a stack variable, to a live block of the same slab
// (the classic poisoning that makes malloc hand out a block twice), to a
// free block of another slab, zero, and the encoded link with many bits
// flipped; the victim at the head of its list and one further down. A
// block on a remote-free queue overwritten the same way aborts when its
// owner drains the queue. The plain library follows such links (and hands
// out whatever they point to).
#include "secure_util.h"

#include <pthread.h>

typedef struct {
    size_t size;
    int how;   /* what to write over the link, see forge() */
    int depth; /* 0: the freed block is the head of its list; 1: one below */
} case_t;

static uintptr_t forge(int how, uintptr_t old, void *live_same_slab, void *other) {
    static int on_stack;
    switch (how) {
    case 0: return (uintptr_t)&on_stack;
    case 1: return (uintptr_t)live_same_slab;
    case 2: return (uintptr_t)other;
    case 3: return 0;
    /* Many bits of the encoded link: a flip of one bit decodes to a
     * pointer a power of two away (the codec rotates by a key), which for
     * some keys is another free block of the slab: harmless, but then
     * there is nothing to report, and the test must not depend on keys. */
    default: return old ^ 0x5a5a5a5a5a5a5a5aull;
    }
}

static void corrupt_then_malloc(void *arg) {
    case_t *k = arg;
    hk_heap_t *h = hk_heap_new();
    if (!h) _exit(5);
    void *other_slab = hk_heap_malloc(h, k->size * 2 + 16);
    void *v[8];
    for (int i = 0; i < 8; i++) v[i] = hk_heap_malloc(h, k->size);
    hk_free(other_slab);
    /* Free v[1] (the victim) then, for depth 1, v[2] on top of it. */
    void *victim = v[1];
    hk_free(victim);
    if (k->depth) hk_free(v[2]);
    uintptr_t old = sec_freed_word(victim);
    sec_forge_word(victim, forge(k->how, old, v[5], other_slab));
    fprintf(stderr, "victim %p\n", victim);
    /* The victim's link is decoded when the victim itself is popped. */
    for (int i = 0; i <= k->depth; i++) {
        void *q = hk_heap_malloc(h, k->size);
        fprintf(stderr, "malloc %d returned %p\n", i, q);
    }
    _exit(0); /* nothing reported: the test fails */
}

static void *free_in_thread(void *p) {
    hk_free(p);
    return NULL;
}

/* Two blocks freed by another thread; the one queued first (the lower on
 * the stack) has its link overwritten; the owner drains. */
static void corrupt_remote_queue(void *arg) {
    int how = *(int *)arg;
    void *a = hk_malloc(96), *b = hk_malloc(96), *live = hk_malloc(96);
    pthread_t t;
    if (pthread_create(&t, NULL, free_in_thread, a) != 0) _exit(3);
    pthread_join(t, NULL);
    if (pthread_create(&t, NULL, free_in_thread, b) != 0) _exit(3);
    pthread_join(t, NULL);
    uintptr_t old = sec_freed_word(b);
    sec_forge_word(b, how == 0 ? (uintptr_t)live : how == 1 ? (uintptr_t)a : old ^ 0x5a5a5a5a5a5a5a5aull);
    fprintf(stderr, "victim %p\n", b);
    hk_collect(false); /* the owner drains: b's link is decoded */
    _exit(0);
}

static bool run_and_find_victim(void (*fn)(void *), void *arg, const char *what) {
    char out[8192];
    int st = hk_run_child(fn, arg, out, sizeof out);
    void *victim = NULL;
    const char *v = strstr(out, "victim ");
    if (v) sscanf(v + 7, "%p", &victim);
    uintptr_t addr = 0;
    bool ok = WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT && victim && sec_parse_corrupt(out, &addr) &&
              addr == (uintptr_t)victim;
    if (!ok) fprintf(stderr, "%s: status 0x%x victim %p report 0x%lx\n  child: %s\n", what, st, victim,
                     (unsigned long)addr, out);
    return ok;
}

int main(void) {
    static const size_t sizes[] = { 16, 64, 200, 1024, 3000, 16384 };
    static const char *hows[] = { "stack pointer", "live block of the slab", "block of another slab",
                                  "zero", "the encoded link with bits flipped" };
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int how = 0; how < 5; how++)
            for (int depth = 0; depth < 2; depth++) {
                case_t k = { sizes[s], how, depth };
                char what[128];
                snprintf(what, sizeof what, "%zu bytes, link := %s, %s", sizes[s], hows[how],
                         depth ? "one below the head" : "head");
                CHECK(run_and_find_victim(corrupt_then_malloc, &k, what));
            }
    static const char *rhows[] = { "a live block", "a queued block", "bits flipped" };
    for (int how = 0; how < 3; how++) {
        char what[96];
        snprintf(what, sizeof what, "remote queue: link := %s", rhows[how]);
        CHECK(run_and_find_victim(corrupt_remote_queue, &how, what));
    }
    return hk_test_done();
}
