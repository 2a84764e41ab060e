/* wl_arena.c: request-scoped memory. Each round builds a linked structure
 * of 64K nodes (24..256 B, log-uniform) as a request handler would, then
 * releases all of it:
 *   --mode free     walk the nodes and free() each one (any allocator);
 *   --mode destroy  the nodes come from an explicit heapkit heap
 *                   (hk_heap_new + hk_heap_malloc) and one hk_heap_destroy
 *                   releases them without visiting them. Only in the
 *                   wl_arena_hk build, linked with libheapkit.
 * Comparing the two under heapkit shows what the explicit-heap API saves;
 * the free twin under every allocator shows where heapkit's one-by-one
 * free stands.
 *
 * Threads: each thread runs its own rounds (and owns its own heaps).
 */
#include "wl_common.h"
#ifdef WL_ARENA_HEAPKIT
#include "heapkit.h"
#define ARENA_MODES "destroy|free"
#else
#define ARENA_MODES "free"
#endif

enum { NODES = 1 << 16 };

typedef struct node { struct node *next; uint32_t n; uint32_t id; } node_t;

typedef struct {
    const wl_opts_t *o;
    int destroy;
    uint64_t rounds_per_thread;
    uint64_t ops[WL_MAX_SLOTS];
    uint64_t check[WL_MAX_SLOTS];
} arena_t;

static void *worker(wl_thread_arg_t *a) {
    arena_t *s = (arena_t *)a->shared;
    int me = a->index;
    wl_rng_t r = wl_rng(s->o->seed, (uint64_t)me);
    uint64_t ops = 0, check = 0;
    for (uint64_t k = 0; k < s->rounds_per_thread; k++) {
#ifdef WL_ARENA_HEAPKIT
        hk_heap_t *heap = NULL;
        if (s->destroy && !(heap = hk_heap_new())) wl_fail("hk_heap_new failed");
#endif
        node_t *head = NULL;
        int64_t bytes = 0;
        for (uint32_t i = 0; i < NODES; i++) {
            size_t n = wl_logrange(&r, sizeof(node_t) + 8, 256); /* room for the tail byte */
            node_t *x;
#ifdef WL_ARENA_HEAPKIT
            if (s->destroy) {
                x = hk_heap_malloc(heap, n);
                if (!x) wl_fail("hk_heap_malloc(%zu) returned NULL", n);
            } else
#endif
                x = wl_malloc(n);
            x->next = head;
            x->n = (uint32_t)n;
            x->id = i;
            ((unsigned char *)x)[n - 1] = (unsigned char)i;
            head = x;
            bytes += (int64_t)n;
        }
        wl_live(me, bytes);
        ops += NODES;
        /* The same O(1) check in both modes: the newest node is intact. */
        if (head->id != NODES - 1 || ((unsigned char *)head)[head->n - 1] != (unsigned char)(NODES - 1))
            wl_fail("corrupted node %p", (void *)head);
        check += head->n;
#ifdef WL_ARENA_HEAPKIT
        if (s->destroy) {
            hk_heap_destroy(heap);
        } else
#endif
        {
            while (head) {
                node_t *next = head->next;
                free(head);
                head = next;
            }
        }
        wl_live(me, -bytes);
    }
    s->ops[me] = ops;
    s->check[me] = check;
    return NULL;
}

int main(int argc, char **argv) {
#ifdef WL_ARENA_HEAPKIT
    wl_opts_t o = wl_parse(argc, argv, "wl_arena_hk", ARENA_MODES);
#else
    wl_opts_t o = wl_parse(argc, argv, "wl_arena", ARENA_MODES);
#endif
    static arena_t s;
    s.o = &o;
    s.destroy = !strcmp(o.mode, "destroy");
    /* 6M nodes at scale 1; at least one round per thread. */
    s.rounds_per_thread = wl_scaled(&o, 6e6 / NODES, 1) / (uint64_t)o.threads + 1;
    wl_own_frees = 1; /* each thread frees only the blocks it allocated */
    wl_start();
    wl_run_threads(o.threads, worker, &s);
    wl_finish_threads(&o, s.ops, s.check);
    return 0;
}
