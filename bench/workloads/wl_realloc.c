/* wl_realloc.c: growth by realloc, two ways real code does it.
 *   strings: appended in pieces of 1..32 bytes with realloc to the exact new
 *            length each time (naive string building), up to 16..16384 B;
 *   arrays:  capacity doubled when full (the vector idiom), from 16 to up
 *            to 512K elements of 8 bytes (4 MiB).
 * A window of the 64 most recent strings and arrays stays live, so growth
 * happens among other blocks, not at the end of an empty heap. In-place
 * growth and cheap moves of large blocks (mremap) are what pays here.
 *
 * Content is checked after growth: realloc must carry it over.
 */
#include "wl_common.h"

enum { WINDOW = 64 };

typedef struct { unsigned char *p; size_t n; uint64_t id; int array; } obj_t;

typedef struct {
    const wl_opts_t *o;
    uint64_t builds_per_thread;
    uint64_t ops[WL_MAX_SLOTS];
    uint64_t check[WL_MAX_SLOTS];
} re_t;

/* The content: a byte pattern for strings, one word per array element. */
static inline unsigned char pat(uint64_t id, size_t i) { return (unsigned char)(i * 7 + id); }
static inline uint64_t elem(uint64_t id, size_t i) { return id * 0x9E3779B97F4A7C15ULL + i; }

/* Checks the first, middle and last byte or element. */
static void verify(const obj_t *b) {
    size_t cnt = b->array ? b->n / 8 : b->n;
    size_t at[3] = { 0, cnt / 2, cnt - 1 };
    for (int k = 0; k < 3; k++) {
        int ok;
        if (b->array) {
            uint64_t v;
            memcpy(&v, b->p + at[k] * 8, 8);
            ok = v == elem(b->id, at[k]);
        } else {
            ok = b->p[at[k]] == pat(b->id, at[k]);
        }
        if (!ok) wl_fail("content lost in realloc: block %p size %zu index %zu", (void *)b->p, b->n, at[k]);
    }
}

static void *worker(wl_thread_arg_t *a) {
    re_t *s = (re_t *)a->shared;
    int me = a->index;
    wl_rng_t r = wl_rng(s->o->seed, (uint64_t)me);
    obj_t win[WINDOW] = { { 0 } };
    uint64_t ops = 0, check = 0, id = (uint64_t)me << 40;
    for (uint64_t k = 0; k < s->builds_per_thread; k++, id++) {
        obj_t *b = &win[k % WINDOW];
        if (b->p) {
            verify(b);
            check += b->p[b->n / 3];
            wl_live(me, -(int64_t)b->n);
            free(b->p);
        }
        b->id = id;
        b->array = k % 4 == 3;
        size_t len = 0;
        unsigned char *p = NULL;
        if (!b->array) {
            /* A string: exact-size realloc for every piece. */
            size_t final = wl_logrange(&r, 16, 16384);
            while (len < final) {
                size_t piece = wl_range(&r, 1, 32);
                if (len + piece > final) piece = final - len;
                unsigned char *q = realloc(p, len + piece);
                if (!q) wl_fail("realloc(%zu) returned NULL", len + piece);
                p = q;
                for (size_t i = len; i < len + piece; i++) p[i] = pat(id, i);
                wl_live(me, (int64_t)piece);
                len += piece;
                ops++;
            }
        } else {
            /* An array of 8-byte elements, capacity doubled when full. */
            size_t final = wl_logrange(&r, 16, 512 * 1024), cap = 0;
            for (size_t i = 0; i < final; i++) {
                if (i == cap) {
                    size_t ncap = cap ? cap * 2 : 16;
                    if (ncap > final) ncap = final;
                    unsigned char *q = realloc(p, ncap * 8);
                    if (!q) wl_fail("realloc(%zu) returned NULL", ncap * 8);
                    p = q;
                    wl_live(me, (int64_t)((ncap - cap) * 8));
                    cap = ncap;
                    ops++;
                }
                uint64_t v = elem(id, i);
                memcpy(p + i * 8, &v, 8);
            }
            len = final * 8;
        }
        b->p = p;
        b->n = len;
        verify(b);
    }
    for (int i = 0; i < WINDOW; i++)
        if (win[i].p) {
            verify(&win[i]);
            wl_live(me, -(int64_t)win[i].n);
            free(win[i].p);
        }
    s->ops[me] = ops;
    s->check[me] = check;
    return NULL;
}

int main(int argc, char **argv) {
    wl_opts_t o = wl_parse(argc, argv, "wl_realloc", NULL);
    static re_t s;
    s.o = &o;
    s.builds_per_thread = wl_scaled(&o, 40000, 200) / (uint64_t)o.threads + 1;
    wl_own_frees = 1; /* each thread frees only the blocks it allocated */
    wl_start();
    wl_run_threads(o.threads, worker, &s);
    wl_finish_threads(&o, s.ops, s.check);
    return 0;
}
