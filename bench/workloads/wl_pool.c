/* wl_pool.c: request-style memory, the "pool" comparison of the benchmark's
 * Beyond malloc section. It owns the request pattern and its checks; the
 * runner (runner/beyond.c) compares the builds. One source, built once per
 * API (WL_POOL_API):
 *   wl_pool         malloc/free: every block freed with free() at the end
 *                   of its request (any allocator, through LD_PRELOAD)
 *   wl_pool_hk      hk_pool_alloc, one hk_pool_reset per request (libheapkit)
 *   wl_pool_apr     apr_palloc, one apr_pool_clear per request (APR pools)
 *   wl_pool_talloc  --mode context: a talloc context per request, talloc_size
 *                   for each block, one talloc_free of the context;
 *                   --mode pool: the same inside a talloc_pool of 512 KiB
 *                   (talloc's own region; what does not fit goes to malloc)
 *
 * The work: 8000 requests at scale 1. Request r draws its own random
 * numbers from (seed, r), so the work and the checksum are the same for
 * every API, allocator and thread count. A request makes 64..2048 blocks
 * of 24..256 B (uniform), one in 32 of them 1..6 KiB instead; each block
 * gets a header (next, size, id) that links it into the request's list and
 * a tag in its last 8 bytes. At the end of the request the list is walked,
 * every tag checked and summed into the checksum, and the request's memory
 * is released the API's way. Threads take requests t, t + N, t + 2N, ...
 * each with a pool (or allocator, or context) of its own.
 */
#include "wl_common.h"

#define WL_API_MALLOC 0
#define WL_API_HK     1
#define WL_API_APR    2
#define WL_API_TALLOC 3
#ifndef WL_POOL_API
#define WL_POOL_API WL_API_MALLOC
#endif

#if WL_POOL_API == WL_API_HK
#include "heapkit.h"
#define POOL_PROGRAM "wl_pool_hk"
#define POOL_MODES NULL
#elif WL_POOL_API == WL_API_APR
#include <apr_allocator.h>
#include <apr_general.h>
#include <apr_pools.h>
#define POOL_PROGRAM "wl_pool_apr"
#define POOL_MODES NULL
#elif WL_POOL_API == WL_API_TALLOC
#include <talloc.h>
#define POOL_PROGRAM "wl_pool_talloc"
#define POOL_MODES "context|pool"
#define TALLOC_POOL_BYTES ((size_t)512 * 1024)
#else
#define POOL_PROGRAM "wl_pool"
#define POOL_MODES NULL
#endif

enum {
    BLOCKS_MIN = 64, BLOCKS_MAX = 2048,   /* blocks per request */
    SMALL_MIN = 24, SMALL_MAX = 256,      /* most blocks */
    LARGE_ONE_IN = 32,                    /* one block in 32 is larger: */
    LARGE_MIN = 1024, LARGE_MAX = 6144,
};

/* The head of every block: the request's structures are a linked list. */
typedef struct block {
    struct block *next;
    uint32_t size;
    uint32_t id;
} block_t;

typedef struct {
    const wl_opts_t *o;
    uint64_t requests;
    int talloc_pool;                      /* wl_pool_talloc --mode pool */
    uint64_t ops[WL_MAX_SLOTS];
    uint64_t check[WL_MAX_SLOTS];
} pool_work_t;

/* ---- The API under test: per thread, per request, per block ------------- */

typedef struct {
#if WL_POOL_API == WL_API_HK
    hk_pool_t *pool;
#elif WL_POOL_API == WL_API_APR
    apr_pool_t *pool;
#elif WL_POOL_API == WL_API_TALLOC
    TALLOC_CTX *ctx;
    int use_pool;
#endif
    int unused;
} api_t;

static void api_thread_start(api_t *a, const pool_work_t *s) {
    (void)s;
    memset(a, 0, sizeof *a);
#if WL_POOL_API == WL_API_HK
    if (!(a->pool = hk_pool_new(NULL))) wl_fail("hk_pool_new failed");
#elif WL_POOL_API == WL_API_APR
    /* An allocator of its own per thread (no mutex), owned by the pool. */
    apr_allocator_t *al;
    if (apr_allocator_create(&al) != APR_SUCCESS) wl_fail("apr_allocator_create failed");
    if (apr_pool_create_ex(&a->pool, NULL, NULL, al) != APR_SUCCESS) wl_fail("apr_pool_create_ex failed");
    apr_allocator_owner_set(al, a->pool);
#elif WL_POOL_API == WL_API_TALLOC
    a->use_pool = s->talloc_pool;
#endif
}

static void api_request_start(api_t *a) {
    (void)a;
#if WL_POOL_API == WL_API_TALLOC
    a->ctx = a->use_pool ? talloc_pool(NULL, TALLOC_POOL_BYTES) : talloc_new(NULL);
    if (!a->ctx) wl_fail("talloc context failed");
#endif
}

static inline void *api_alloc(api_t *a, size_t n) {
    (void)a;
#if WL_POOL_API == WL_API_HK
    return hk_pool_alloc(a->pool, n);
#elif WL_POOL_API == WL_API_APR
    return apr_palloc(a->pool, n);
#elif WL_POOL_API == WL_API_TALLOC
    return talloc_size(a->ctx, n);
#else
    return malloc(n);
#endif
}

/* Everything the request allocated goes at once (or one by one). */
static void api_request_end(api_t *a, block_t *head) {
    (void)a;
    (void)head;
#if WL_POOL_API == WL_API_HK
    hk_pool_reset(a->pool);
#elif WL_POOL_API == WL_API_APR
    apr_pool_clear(a->pool);
#elif WL_POOL_API == WL_API_TALLOC
    talloc_free(a->ctx);
    a->ctx = NULL;
#else
    while (head) {
        block_t *next = head->next;
        free(head);
        head = next;
    }
#endif
}

static void api_thread_end(api_t *a) {
    (void)a;
#if WL_POOL_API == WL_API_HK
    hk_pool_destroy(a->pool);
#elif WL_POOL_API == WL_API_APR
    apr_pool_destroy(a->pool);
#endif
}

/* ---- The requests --------------------------------------------------------- */

static inline uint64_t block_tag(uint64_t request, uint32_t id) { return wl_tagval(request << 12 ^ id); }

static void *worker(wl_thread_arg_t *ta) {
    pool_work_t *s = (pool_work_t *)ta->shared;
    int me = ta->index;
    api_t api;
    api_thread_start(&api, s);
    uint64_t ops = 0, check = 0;
    for (uint64_t r = (uint64_t)me; r < s->requests; r += (uint64_t)s->o->threads) {
        wl_rng_t rng = wl_rng(s->o->seed, r);
        uint32_t n = (uint32_t)wl_range(&rng, BLOCKS_MIN, BLOCKS_MAX);
        api_request_start(&api);
        block_t *head = NULL;
        int64_t bytes = 0;
        for (uint32_t i = 0; i < n; i++) {
            size_t size = wl_below(&rng, LARGE_ONE_IN) == 0 ? wl_range(&rng, LARGE_MIN, LARGE_MAX)
                                                            : wl_range(&rng, SMALL_MIN, SMALL_MAX);
            block_t *b = api_alloc(&api, size);
            if (!b) wl_fail("request %llu: allocation of %zu bytes failed", (unsigned long long)r, size);
            b->next = head;
            b->size = (uint32_t)size;
            b->id = i;
            uint64_t tag = block_tag(r, i);
            memcpy((char *)b + size - 8, &tag, 8);
            head = b;
            bytes += (int64_t)size;
        }
        wl_live(me, bytes);
        /* The request reads back what it built: a block that overlaps
         * another, or was handed out twice, has lost its tag. */
        for (const block_t *b = head; b; b = b->next) {
            uint64_t tag;
            memcpy(&tag, (const char *)b + b->size - 8, 8);
            if (tag != block_tag(r, b->id))
                wl_fail("request %llu: block %u (%u bytes) corrupted", (unsigned long long)r, b->id, b->size);
            check += tag ^ b->size;
        }
        api_request_end(&api, head);
        wl_live(me, -bytes);
        ops += n;
    }
    api_thread_end(&api);
    s->ops[me] = ops;
    s->check[me] = check;
    return NULL;
}

int main(int argc, char **argv) {
    wl_opts_t o = wl_parse(argc, argv, POOL_PROGRAM, POOL_MODES);
    static pool_work_t s;
    s.o = &o;
    s.requests = wl_scaled(&o, 8000, 8);
    wl_own_frees = 1; /* every thread frees only its own blocks */
#if WL_POOL_API == WL_API_APR
    if (apr_initialize() != APR_SUCCESS) wl_fail("apr_initialize failed");
#elif WL_POOL_API == WL_API_TALLOC
    s.talloc_pool = !strcmp(o.mode, "pool");
#endif
    wl_start();
    wl_run_threads(o.threads, worker, &s);
    wl_finish_threads(&o, s.ops, s.check);
#if WL_POOL_API == WL_API_APR
    apr_terminate();
#endif
    return 0;
}
