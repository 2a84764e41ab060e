/* pool/pool.c: region pools (hk_pool_*), built on the public heap API.
 *
 * Owns: pools — bump allocation from large pieces taken from a heap, large
 * requests on pieces of their own, cleanup handlers, reset and destroy.
 * Calls: the public API only (hk_heap_malloc, hk_free, ...): a pool is a
 * client of a heap, like any program.
 * Threads: a pool belongs to the thread that owns its heap; it has no lock.
 *
 * Layout: the pool struct lives in its first piece. Pieces are linked; the
 * bump pointer moves through them in order, and reset sends it back to the
 * first, keeping every piece for the next round (as nginx's pools do), so a
 * request loop settles on the same memory. A request above a quarter of a
 * piece gets a block of its own with a header (on a list, so reset and
 * destroy free it and hk_pool_free_large can free it early). Pool memory is
 * never a block start: hk_free of a pool pointer is reported and aborts.
 *
 * Under AddressSanitizer (src/internal/asan.h) the pieces' space past the
 * bump pointer is poisoned, each block unpoisons the bytes asked for (the
 * rounding and alignment padding stay poisoned), and reset poisons the
 * pieces again; the piece headers and the pool struct never are.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heapkit.h"
#include "../src/internal/asan.h"
#include "../src/internal/vg.h"

/* Under valgrind each pool is a memcheck memory pool: its blocks are
 * chunks of the pool (MEMPOOL_ALLOC), the rest of its pieces is no-access,
 * and reset and destroy end them all at once (vg.h). */
HK_VG_FLAG(on_valgrind);
#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define PIECE_SIZE  ((size_t)64 * 1024)  /* a medium block of the heap */
#define LARGE_MIN   (PIECE_SIZE / 4)     /* requests above this get their own block */
#define POOL_ALIGN  16
#define LARGE_MAGIC 0x686b706f6f6c4c47ull /* "hkpoolLG" */

typedef struct piece_s {
    struct piece_s *next;
    char *end;          /* one past the piece's last byte */
} piece_t;

/* Sits just before the bytes handed out, at the end of the block's head
 * room (which is larger for large alignments). */
typedef struct large_s {
    struct large_s *next, *prev;
    hk_pool_t *pool;    /* the pool that owns it, checked by free_large */
    void *base;         /* the heap block */
    uint64_t magic;
    size_t size;        /* bytes asked for */
} large_t;

typedef struct cleanup_s {
    struct cleanup_s *next; /* newer first: reset runs them in reverse order */
    void (*fn)(void *);
    void *arg;
} cleanup_t;

struct hk_pool_s {
    hk_heap_t *heap;
    piece_t *first, *cur;   /* cur: the piece the bump pointer is in */
    char *bump, *limit;     /* next free byte of cur and its end */
    large_t *large;
    cleanup_t *cleanups;
    size_t handed_out;      /* bytes asked for since the last reset */
    size_t waste;           /* piece tails skipped when moving on */
    size_t pieces;
};

static size_t round_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }

static piece_t *piece_new(hk_heap_t *heap) {
    piece_t *pc = hk_heap_malloc(heap, PIECE_SIZE);
    if (pc == NULL) return NULL;
    pc->next = NULL;
    pc->end = (char *)pc + PIECE_SIZE;
    return pc;
}

static char *piece_data(piece_t *pc) { return (char *)pc + round_up(sizeof *pc, POOL_ALIGN); }

hk_pool_t *hk_pool_new(hk_heap_t *heap) {
    if (heap == NULL) heap = hk_heap_default();
    if (heap == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    piece_t *pc = piece_new(heap);
    if (pc == NULL) return NULL;
    hk_pool_t *p = (hk_pool_t *)piece_data(pc);
    memset(p, 0, sizeof *p);
    p->heap = heap;
    p->first = p->cur = pc;
    p->pieces = 1;
    p->bump = (char *)p + round_up(sizeof *p, POOL_ALIGN);
    p->limit = pc->end;
    hk_asan_poison(p->bump, (size_t)(p->limit - p->bump)); /* ASan: nothing handed out yet */
    if (hk_vg_check(&on_valgrind)) {
        VALGRIND_CREATE_MEMPOOL(p, 0, 0);
        VALGRIND_MAKE_MEM_NOACCESS(p->bump, (size_t)(p->limit - p->bump));
    }
    return p;
}

static void *alloc_large(hk_pool_t *p, size_t align, size_t size) {
    size_t head = round_up(sizeof(large_t), align < POOL_ALIGN ? POOL_ALIGN : align);
    if (size > SIZE_MAX - head) {
        errno = ENOMEM;
        return NULL;
    }
    /* A block of 0 bytes still takes one: with a large alignment the header
     * is padded to the whole alignment, and the block's pointer would be
     * the end of its heap block, which may be no heap memory at all. */
    size_t body = size ? size : 1;
    char *blk = align > POOL_ALIGN ? hk_heap_aligned_alloc(p->heap, align, head + body)
                                   : hk_heap_malloc(p->heap, head + body);
    if (blk == NULL) return NULL;
    large_t *l = (large_t *)(blk + head - sizeof(large_t));
    l->pool = p;
    l->base = blk;
    l->magic = LARGE_MAGIC;
    l->size = size;
    l->prev = NULL;
    l->next = p->large;
    if (l->next) l->next->prev = l;
    p->large = l;
    p->handed_out += size;
    if (hk_vg_check(&on_valgrind)) VALGRIND_MEMPOOL_ALLOC(p, blk + head, size);
    return blk + head;
}

/* The slow path of bump allocation: the next piece (kept from an earlier
 * round, or new). `size` is already rounded; the caller counts the bytes. */
static void *alloc_next_piece(hk_pool_t *p, size_t align, size_t size) {
    p->waste += (size_t)(p->limit - p->bump);
    piece_t *pc = p->cur->next;
    if (pc == NULL) {
        pc = piece_new(p->heap);
        if (pc == NULL) return NULL;
        p->cur->next = pc;
        p->pieces++;
        hk_asan_poison(piece_data(pc), (size_t)(pc->end - piece_data(pc)));
        if (hk_vg_check(&on_valgrind))
            VALGRIND_MAKE_MEM_NOACCESS(piece_data(pc), (size_t)(pc->end - piece_data(pc)));
    }
    p->cur = pc;
    p->bump = piece_data(pc);
    p->limit = pc->end;
    char *at = (char *)round_up((uintptr_t)p->bump, align);
    p->bump = at + size;
    return at;
}

void *hk_pool_aligned_alloc(hk_pool_t *p, size_t align, size_t size) {
    if (align == 0 || (align & (align - 1)) != 0) {
        errno = EINVAL;
        return NULL;
    }
    if (align < POOL_ALIGN) align = POOL_ALIGN;
    if (size > LARGE_MIN || align > PIECE_SIZE / 8) return alloc_large(p, align, size);
    size_t n = size ? round_up(size, POOL_ALIGN) : POOL_ALIGN;
    char *at = (char *)round_up((uintptr_t)p->bump, align);
    if (at + n <= p->limit) {
        p->bump = at + n;
        p->handed_out += size;
        hk_asan_unpoison(at, size);
        if (hk_vg_check(&on_valgrind)) VALGRIND_MEMPOOL_ALLOC(p, at, size);
        return at;
    }
    char *q = alloc_next_piece(p, align, n);
    if (q) {
        p->handed_out += size;
        hk_asan_unpoison(q, size);
        if (hk_vg_check(&on_valgrind)) VALGRIND_MEMPOOL_ALLOC(p, q, size);
    }
    return q;
}

void *hk_pool_alloc(hk_pool_t *p, size_t size) {
    /* The fast path: a bump within the current piece. */
    size_t n = size ? round_up(size, POOL_ALIGN) : POOL_ALIGN;
    if (likely(size <= LARGE_MIN && (size_t)(p->limit - p->bump) >= n && hk_vg_known(&on_valgrind) == 0)) {
        char *at = p->bump;
        p->bump += n;
        p->handed_out += size;
        hk_asan_unpoison(at, size); /* ASan: the bytes asked for */
        return at;
    }
    return hk_pool_aligned_alloc(p, POOL_ALIGN, size);
}

void *hk_pool_calloc(hk_pool_t *p, size_t count, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    void *q = hk_pool_alloc(p, total);
    if (q) memset(q, 0, total);
    return q;
}

char *hk_pool_strdup(hk_pool_t *p, const char *s) {
    size_t n = strlen(s) + 1;
    char *q = hk_pool_alloc(p, n);
    if (q) memcpy(q, s, n);
    return q;
}

static void large_unlink_free(hk_pool_t *p, large_t *l) {
    if (l->prev) l->prev->next = l->next;
    else p->large = l->next;
    if (l->next) l->next->prev = l->prev;
    l->magic = 0;
    if (hk_vg_check(&on_valgrind)) VALGRIND_MEMPOOL_FREE(p, (char *)(l + 1));
    hk_free(l->base);
}

void hk_pool_free_large(hk_pool_t *p, void *block) {
    large_t *l = (large_t *)((char *)block - sizeof(large_t));
    /* A pointer that is not a large block of this pool aborts rather than
     * freeing memory the pool does not own. (Reading l is safe for pool
     * memory; for a random pointer the heap check in hk_free still stands.) */
    /* (Under ASan a large block's header is always addressable: poisoned
     * bytes there are pool or heap memory that is no large block.) */
    if (block == NULL || ((uintptr_t)block & (POOL_ALIGN - 1)) != 0 ||
        hk_asan_is_poisoned(l, sizeof *l) || l->magic != LARGE_MAGIC || l->pool != p) {
        static const char msg[] = "heapkit: hk_pool_free_large(): not a large block of this pool\n";
        ssize_t w = write(2, msg, sizeof msg - 1);
        (void)w;
        abort();
    }
    large_unlink_free(p, l);
}

int hk_pool_cleanup_add(hk_pool_t *p, void (*fn)(void *), void *arg) {
    cleanup_t *c = hk_pool_alloc(p, sizeof *c);
    if (c == NULL) return ENOMEM;
    c->fn = fn;
    c->arg = arg;
    c->next = p->cleanups;
    p->cleanups = c;
    return 0;
}

static void run_cleanups_and_free_large(hk_pool_t *p) {
    /* Newest first; a handler may add memory or handlers to the pool, which
     * the loop then also runs and frees. */
    while (p->cleanups) {
        cleanup_t *c = p->cleanups;
        p->cleanups = c->next;
        c->fn(c->arg);
    }
    while (p->large) large_unlink_free(p, p->large);
}

/* Under valgrind: every block of the pool ends; the pieces' free parts
 * become no-access again. */
static void vg_end_blocks(hk_pool_t *p) {
    VALGRIND_MEMPOOL_TRIM(p, p, 0);
    char *start = (char *)p + round_up(sizeof *p, POOL_ALIGN);
    VALGRIND_MAKE_MEM_NOACCESS(start, (size_t)(p->first->end - start));
    for (piece_t *pc = p->first->next; pc; pc = pc->next)
        VALGRIND_MAKE_MEM_NOACCESS(piece_data(pc), (size_t)(pc->end - piece_data(pc)));
}

#if HK_ASAN
/* Under ASan: every block of the pool ends; the pieces are poisoned past
 * their headers (and, in the first, past the pool struct). */
static void asan_end_blocks(hk_pool_t *p) {
    char *start = (char *)p + round_up(sizeof *p, POOL_ALIGN);
    hk_asan_poison(start, (size_t)(p->first->end - start));
    for (piece_t *pc = p->first->next; pc; pc = pc->next)
        hk_asan_poison(piece_data(pc), (size_t)(pc->end - piece_data(pc)));
}
#endif

void hk_pool_reset(hk_pool_t *p) {
    run_cleanups_and_free_large(p);
#if HK_ASAN
    asan_end_blocks(p);
#endif
    if (hk_vg_check(&on_valgrind)) vg_end_blocks(p);
    /* Every piece stays for the next round; the pool struct stays at the
     * start of the first. */
    p->cur = p->first;
    p->bump = (char *)p + round_up(sizeof *p, POOL_ALIGN);
    p->limit = p->first->end;
    p->handed_out = 0;
    p->waste = 0;
}

void hk_pool_destroy(hk_pool_t *p) {
    if (p == NULL) return;
    run_cleanups_and_free_large(p);
    if (hk_vg_check(&on_valgrind)) {
        vg_end_blocks(p);
        VALGRIND_DESTROY_MEMPOOL(p);
        /* The pieces are heap blocks again, as hk_free expects. */
        for (piece_t *pc = p->first; pc; pc = pc->next)
            VALGRIND_MAKE_MEM_DEFINED(piece_data(pc), (size_t)(pc->end - piece_data(pc)));
    }
    piece_t *pc = p->first->next;
    piece_t *first = p->first;
    while (pc) {
        piece_t *next = pc->next;
        hk_free(pc);
        pc = next;
    }
    hk_free(first); /* holds p itself: last */
}

void hk_pool_stats(hk_pool_t *p, hk_pool_stats_t *out) {
    out->handed_out = p->handed_out;
    out->held = p->pieces * PIECE_SIZE;
    for (large_t *l = p->large; l; l = l->next) {
        size_t usable = hk_usable_size(l->base);
        out->held += usable;
#if HK_ASAN
        /* hk_usable_size made the whole heap block addressable: the large
         * block's slack past its bytes is poisoned again. */
        char *end = (char *)(l + 1) + l->size;
        hk_asan_poison(end, (size_t)((char *)l->base + usable - end));
#endif
    }
    out->waste = p->waste;
    out->pieces = p->pieces;
}
