/* wl_tree.c: a tree built on one thread and taken apart on another, the
 * "tree" comparison of the benchmark's Beyond malloc section. It owns the
 * tree, the hand-over between the two threads and the timing of each phase;
 * the runner (runner/beyond.c) compares the builds. One source, two builds:
 *   wl_tree      the producer builds the tree with malloc; the consumer
 *                walks it and frees it node by node (any allocator, through
 *                LD_PRELOAD)
 *   wl_tree_hk   the producer builds it in an explicit heap (hk_heap_new,
 *                hk_heap_malloc) and releases the heap (hk_heap_release); the
 *                consumer adopts it (hk_heap_adopt), walks the tree and
 *                destroys the heap in one call (hk_heap_destroy)
 *
 * Each round builds a balanced binary search tree of 1,000,000 nodes (at
 * scale 1; fewer below, more rounds above: 3 rounds at scale 1), nodes of
 * 40..128 B (uniform), allocated in pre-order, keys increasing in-order.
 * The consumer's walk is in-order: it checks that the keys increase, that
 * every node kept its tag and that the count is right, and sums the
 * checksum. The two threads alternate strictly: the producer builds the
 * next tree only when the consumer is done with the last one, so every
 * phase is timed alone. Printed as HKBENCH part lines, summed over the
 * rounds: build (producer), move (hk_heap_release + hk_heap_adopt; nothing
 * to do with malloc), walk and teardown (consumer).
 */
#include "wl_common.h"

#ifdef WL_TREE_HEAPKIT
#include "heapkit.h"
#define TREE_PROGRAM "wl_tree_hk"
#else
#define TREE_PROGRAM "wl_tree"
#endif

enum { NODE_MIN = 40, NODE_MAX = 128, MAX_DEPTH = 64 };

typedef struct node {
    struct node *left, *right;
    uint64_t key;
    uint32_t size;
    uint32_t unused;
} node_t; /* then the payload; its last 8 bytes are the tag */

typedef struct {
    const wl_opts_t *o;
    uint64_t nodes, rounds;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int ready;                 /* a tree is waiting for the consumer */
    int done;                  /* the consumer has finished with it */
    node_t *root;
#ifdef WL_TREE_HEAPKIT
    hk_heap_t *heap;
#endif
    double build_ms, move_ms, walk_ms, teardown_ms;
    uint64_t ops, check;
} tree_work_t;

/* ---- Building (producer) ------------------------------------------------------- */

typedef struct {
    wl_rng_t rng;
    int64_t bytes;
#ifdef WL_TREE_HEAPKIT
    hk_heap_t *heap;
#endif
} builder_t;

/* The in-order rank i gets key 4i + (0..3): increasing, not evenly spaced. */
static inline uint64_t key_of(uint64_t i) { return 4 * i + (wl_tagval(i) >> 62); }

static node_t *build(builder_t *bd, uint64_t lo, uint64_t hi) {
    if (lo >= hi) return NULL;
    uint64_t mid = lo + (hi - lo) / 2;
    size_t n = wl_range(&bd->rng, NODE_MIN, NODE_MAX);
#ifdef WL_TREE_HEAPKIT
    node_t *x = hk_heap_malloc(bd->heap, n);
#else
    node_t *x = malloc(n);
#endif
    if (!x) wl_fail("allocation of a %zu-byte node failed", n);
    x->key = key_of(mid);
    x->size = (uint32_t)n;
    uint64_t tag = wl_tagval(x->key);
    memcpy((char *)x + n - 8, &tag, 8);
    bd->bytes += (int64_t)n;
    x->left = build(bd, lo, mid);
    x->right = build(bd, mid + 1, hi);
    return x;
}

/* ---- Walking and tearing down (consumer) --------------------------------------- */

static uint64_t walk(const node_t *root, uint64_t expected) {
    const node_t *stack[MAX_DEPTH];
    int sp = 0;
    uint64_t count = 0, check = 0, prev = 0;
    const node_t *x = root;
    while (x || sp) {
        while (x) {
            if (sp == MAX_DEPTH) wl_fail("tree deeper than %d: corrupted", MAX_DEPTH);
            stack[sp++] = x;
            x = x->left;
        }
        x = stack[--sp];
        uint64_t tag;
        memcpy(&tag, (const char *)x + x->size - 8, 8);
        if ((count && x->key <= prev) || tag != wl_tagval(x->key))
            wl_fail("node %llu (key %llu, %u bytes) corrupted", (unsigned long long)count,
                    (unsigned long long)x->key, x->size);
        check += tag ^ x->size;
        prev = x->key;
        count++;
        x = x->right;
    }
    if (count != expected)
        wl_fail("the walk found %llu nodes, not %llu", (unsigned long long)count, (unsigned long long)expected);
    return check;
}

#ifndef WL_TREE_HEAPKIT
/* Node by node: a node is freed once its children are on the stack. */
static void free_tree(node_t *root) {
    node_t *stack[2 * MAX_DEPTH];
    int sp = 0;
    if (root) stack[sp++] = root;
    while (sp) {
        node_t *x = stack[--sp];
        if (x->left) stack[sp++] = x->left;
        if (x->right) stack[sp++] = x->right;
        if (sp > 2 * MAX_DEPTH - 2) wl_fail("tree deeper than %d: corrupted", MAX_DEPTH);
        free(x);
    }
}
#endif

/* ---- The two threads -------------------------------------------------------------- */

static void *producer(tree_work_t *s) {
    for (uint64_t round = 0; round < s->rounds; round++) {
        builder_t bd = { .rng = wl_rng(s->o->seed, round) };
        double t0 = wl_now_ms();
#ifdef WL_TREE_HEAPKIT
        if (!(bd.heap = hk_heap_new())) wl_fail("hk_heap_new failed");
#endif
        node_t *root = build(&bd, 0, s->nodes);
        double t1 = wl_now_ms();
#ifdef WL_TREE_HEAPKIT
        hk_heap_release(bd.heap);
#endif
        double t2 = wl_now_ms();
        wl_live(0, bd.bytes);
        pthread_mutex_lock(&s->mu);
        s->build_ms += t1 - t0;
        s->move_ms += t2 - t1;
        s->root = root;
#ifdef WL_TREE_HEAPKIT
        s->heap = bd.heap;
#endif
        s->ready = 1;
        s->done = 0;
        pthread_cond_broadcast(&s->cv);
        while (!s->done) pthread_cond_wait(&s->cv, &s->mu);
        pthread_mutex_unlock(&s->mu);
        wl_live(0, -bd.bytes);
    }
    return NULL;
}

static void *consumer(tree_work_t *s) {
    for (uint64_t round = 0; round < s->rounds; round++) {
        pthread_mutex_lock(&s->mu);
        while (!s->ready) pthread_cond_wait(&s->cv, &s->mu);
        s->ready = 0;
        node_t *root = s->root;
#ifdef WL_TREE_HEAPKIT
        hk_heap_t *heap = s->heap;
#endif
        pthread_mutex_unlock(&s->mu);
        double t0 = wl_now_ms();
#ifdef WL_TREE_HEAPKIT
        hk_heap_adopt(heap);
#endif
        double t1 = wl_now_ms();
        uint64_t check = walk(root, s->nodes);
        double t2 = wl_now_ms();
#ifdef WL_TREE_HEAPKIT
        hk_heap_destroy(heap);
#else
        free_tree(root);
#endif
        double t3 = wl_now_ms();
        pthread_mutex_lock(&s->mu);
        s->move_ms += t1 - t0;
        s->walk_ms += t2 - t1;
        s->teardown_ms += t3 - t2;
        s->check += check;
        s->ops += s->nodes;
        s->done = 1;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
}

static void *tree_thread(wl_thread_arg_t *a) {
    tree_work_t *s = (tree_work_t *)a->shared;
    return a->index == 0 ? producer(s) : consumer(s);
}

int main(int argc, char **argv) {
    wl_opts_t o = wl_parse(argc, argv, TREE_PROGRAM, NULL);
    static tree_work_t s;
    s.o = &o;
    /* Scale below 1 shrinks the tree, above 1 adds rounds: the tree of the
     * full benchmark is always a million nodes. */
    s.nodes = o.scale < 1 ? wl_scaled(&o, 1e6, 1000) : 1000000;
    s.rounds = o.scale > 1 ? (uint64_t)(3 * o.scale + 0.5) : 3;
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cv, NULL);
    o.threads = 2; /* a producer and a consumer, whatever --threads says */
    wl_own_frees = 1; /* the live bytes are counted by the producer alone */
    wl_start();
    wl_run_threads(2, tree_thread, &s);
    wl_part("build", s.build_ms);
    wl_part("move", s.move_ms);
    wl_part("walk", s.walk_ms);
    wl_part("teardown", s.teardown_ms);
    wl_finish(&o, s.ops, s.check);
    return 0;
}
