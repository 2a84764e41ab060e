/* beyond.c: the Beyond malloc section of the benchmark. heapkit's own APIs
 * (region pools, object caches, heaps moved between threads) are compared
 * with doing the same work on malloc/free, under every allocator, and with
 * the libraries C programs use for it (APR pools, talloc, GLib's g_slice).
 * These compare APIs, not preloaded allocators, so they stay out of the
 * allocator table and its geometric means and get a section of their own.
 *
 * It owns: the comparisons (groups) and their variant workloads, the check
 * that every variant of a comparison computed the same thing (checksum and
 * operation count), the headline figures, speedups and targets of issue 5,
 * and the section of the terminal table. report.c writes the same figures
 * to the JSON, html.c draws them.
 *
 * A variant is an ordinary workload of the runner's table named
 * GROUP-VARIANT ("pool-apr"): heapkit's variant runs only under heapkit
 * (its program links libheapkit), malloc/free under every allocator, the
 * other libraries under glibc (the system malloc they are used with). The
 * figure compared is the workload's own timer around its work (t_ms of its
 * result line, without process start-up), or one part of it that the
 * workload times itself (the tree's teardown).
 */
#include "hkbench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- The variants --------------------------------------------------------- */

#define API(n, p, a, o, g, v, lib, pkg, d) \
    { .name = n, .program = p, .args = a, .only = o, .group = g, .variant = v, .library = lib, .package = pkg, .description = d }
const hkb_workload_t hkb_api_workloads[] = {
    API("pool-hk_pool", "wl_pool_hk", "", "heapkit", "pool", "hk_pool", NULL, NULL,
        "hk_pool_alloc for every block, one hk_pool_reset per request"),
    API("pool-malloc", "wl_pool", "", NULL, "pool", "malloc", NULL, NULL,
        "malloc for every block, free() of each at the end of the request"),
    API("pool-apr", "wl_pool_apr", "", "glibc", "pool", "apr", "apr", "libapr1-dev",
        "APR pools: apr_palloc for every block, one apr_pool_clear per request"),
    API("pool-talloc", "wl_pool_talloc", "--mode context", "glibc", "pool", "talloc", "talloc", "libtalloc-dev",
        "a talloc context per request, talloc_size for every block, one talloc_free of the context"),
    API("pool-talloc_pool", "wl_pool_talloc", "--mode pool", "glibc", "pool", "talloc_pool", "talloc", "libtalloc-dev",
        "the same inside a talloc_pool of 512 KiB per request (talloc's own region)"),
    API("cache-hk_cache", "wl_cache_hk", "--mode local", "heapkit", "cache", "hk_cache", NULL, NULL,
        "one hk_cache per object size, hk_cache_alloc and hk_cache_free"),
    API("cache-malloc", "wl_cache", "--mode local", NULL, "cache", "malloc", NULL, NULL, "malloc and free"),
    API("cache-g_slice", "wl_cache_gslice", "--mode local", "glibc", "cache", "g_slice", "glib", "libglib2.0-dev",
        "GLib's g_slice_alloc and g_slice_free1"),
    API("cache-xt-hk_cache", "wl_cache_hk", "--mode remote", "heapkit", "cache-xt", "hk_cache", NULL, NULL,
        "one hk_cache per object size, hk_cache_alloc and hk_cache_free on the other thread"),
    API("cache-xt-malloc", "wl_cache", "--mode remote", NULL, "cache-xt", "malloc", NULL, NULL,
        "malloc, and free on the other thread"),
    API("cache-xt-g_slice", "wl_cache_gslice", "--mode remote", "glibc", "cache-xt", "g_slice", "glib",
        "libglib2.0-dev", "GLib's g_slice_alloc, and g_slice_free1 on the other thread"),
    API("tree-hk_heap", "wl_tree_hk", "", "heapkit", "tree", "hk_heap", NULL, NULL,
        "built in an explicit heap (hk_heap_new, hk_heap_malloc), hk_heap_release, hk_heap_adopt on the consumer, "
        "one hk_heap_destroy"),
    API("tree-malloc", "wl_tree", "", NULL, "tree", "malloc", NULL, NULL,
        "built with malloc on the producer, freed node by node on the consumer"),
};
const int hkb_napi_workloads = (int)(sizeof hkb_api_workloads / sizeof hkb_api_workloads[0]);

/* ---- The comparisons ------------------------------------------------------- */

static const hkb_group_t group_defs[] = {
    { .name = "pool", .title = "Region pools (hk_pool)",
      .description = "Request-style work: 8000 requests (at scale 1) of 64..2048 blocks, 24..256 B and one in 32 of "
                     "1..6 KiB, linked into the request's list, read back (every tag checked) and released together "
                     "at the end of the request. Each thread serves its share of the requests with a pool (allocator, "
                     "context) of its own.",
      .target_speedup = 2, .target_vs_best = 1 },
    { .name = "cache", .title = "Object caches (hk_cache)",
      .description = "Fixed-size churn: objects of 64 B and 200 B (two to one), a working set of 16384 per thread in a "
                     "slot table; the object of a random slot is freed and replaced 10 million times (at scale 1), "
                     "then the rest are freed. Every object is checked when it is freed.",
      .target_speedup = 2, .target_vs_best = 1 },
    { .name = "cache-xt", .title = "Object caches across threads (hk_cache)",
      .description = "Pairs of threads: each allocates 64 B and 200 B objects in batches of 32 and hands them to its "
                     "partner through a lock-free ring; the partner checks and frees them (4 million objects at scale "
                     "1). Every free is made by the other thread.",
      .target_speedup = 2, .target_vs_best = 1 },
    { .name = "tree", .title = "A heap moved between threads (hk_heap_release, hk_heap_adopt, hk_heap_destroy)",
      .description = "A producer thread builds a balanced search tree of 1,000,000 nodes of 40..128 B; a consumer "
                     "thread takes it over, walks it in order (checking every node) and tears it down. 3 rounds at "
                     "scale 1; the two threads alternate, so each phase is timed alone: build, move (release and "
                     "adopt), walk, teardown.",
      .headline = "teardown", .target_speedup = 10, .target_vs_best = 0 },
};
enum { NGROUP_DEFS = sizeof group_defs / sizeof group_defs[0] };

static int in_group(const hkb_t *b, int w, const hkb_group_t *g) {
    return b->work[w].group && !strcmp(b->work[w].group, g->name);
}
static int is_ours(const hkb_workload_t *w) { return w->variant && !strncmp(w->variant, "hk_", 3); }

void hkb_beyond_init(hkb_t *b) {
    b->ngroup = 0;
    for (int k = 0; k < NGROUP_DEFS && b->ngroup < HKB_MAX_GROUPS; k++) {
        hkb_group_t g = group_defs[k];
        int any = 0;
        for (int w = 0; w < b->nwork; w++) any |= in_group(b, w, &g);
        if (!any) continue;
        g.present = 1;
        g.ours_w = g.ours_a = g.base_w = g.base_a = g.best_w = g.best_a = g.best_api_w = g.best_api_a = -1;
        g.ours_s = g.base_s = g.best_s = g.best_api_s = NAN;
        g.speedup_vs_glibc = g.speedup_vs_best = g.speedup_vs_best_api = NAN;
        g.met_glibc = g.met_best = -1;
        b->group[b->ngroup++] = g;
    }
}

const char *hkb_beyond_label(const hkb_t *b, int w, int a, char *buf, size_t cap) {
    const hkb_workload_t *wk = &b->work[w];
    if (wk->only || a < 0) snprintf(buf, cap, "%s", wk->variant);
    else snprintf(buf, cap, "%s (%s)", wk->variant, b->alloc[a].name);
    return buf;
}

/* ---- Same work, same result ---------------------------------------------------- */

void hkb_beyond_check(hkb_t *b) {
    for (int k = 0; k < b->ngroup; k++) {
        hkb_group_t *g = &b->group[k];
        /* The most common (checksum, ops) among the successful runs. */
        int best = -1, best_n = 0, runs = 0;
        for (int i = 0; i < b->nrun; i++) {
            const hkb_run_t *r = &b->run[i];
            if (!r->ok || !in_group(b, r->w, g)) continue;
            runs++;
            int n = 0;
            for (int j = 0; j < b->nrun; j++) {
                const hkb_run_t *o = &b->run[j];
                if (o->ok && in_group(b, o->w, g) && !strcmp(o->check, r->check) && o->ops == r->ops) n++;
            }
            if (n > best_n) best_n = n, best = i;
        }
        g->check_runs = runs;
        g->check_agree = best_n;
        if (best < 0) continue;
        const hkb_run_t *ref = &b->run[best];
        snprintf(g->check, sizeof g->check, "%s", ref->check);
        g->check_ops = ref->ops;
        if (!*ref->check) {
            g->check_agree = 0; /* a workload that prints no checksum proves nothing */
            continue;
        }
        for (int i = 0; i < b->nrun; i++) {
            hkb_run_t *r = &b->run[i];
            if (!r->ok || !in_group(b, r->w, g)) continue;
            if (!strcmp(r->check, ref->check) && r->ops == ref->ops) continue;
            r->ok = 0;
            snprintf(r->error, sizeof r->error,
                     "checksum %s (%lld ops) differs from the %s comparison's %s (%lld ops), printed by %d of %d runs",
                     *r->check ? r->check : "missing", r->ops, g->name, ref->check, ref->ops, best_n, runs);
            printf("%s under %s, run %d: %s\n", b->work[r->w].name, b->alloc[r->a].name, r->rep + 1, r->error);
        }
    }
}

/* ---- Figures ---------------------------------------------------------------------- */

double hkb_beyond_figure(const hkb_t *b, const hkb_group_t *g, int w, int a) {
    if (!b->sum || w < 0 || a < 0) return NAN;
    const hkb_summary_t *s = &b->sum[w * b->nalloc + a];
    if (!s->present || !s->n_ok) return NAN;
    if (!g->headline) return s->work.n ? s->work.median : NAN;
    for (int p = 0; p < s->nparts; p++)
        if (!strcmp(s->part_name[p], g->headline)) return s->part[p].median / 1000;
    return NAN;
}

static double ratio(double other, double ours) { return other > 0 && ours > 0 ? other / ours : NAN; }

void hkb_beyond_summarise(hkb_t *b) {
    int na = b->nalloc;
    for (int k = 0; k < b->ngroup; k++) {
        hkb_group_t *g = &b->group[k];
        for (int w = 0; w < b->nwork; w++) {
            if (!in_group(b, w, g)) continue;
            for (int a = 0; a < na; a++) {
                if (!b->sum || !b->sum[w * na + a].present) continue;
                if (!*g->detail)
                    for (int i = 0; i < b->nrun; i++)
                        if (b->run[i].w == w && b->run[i].a == a && b->run[i].ok && *b->run[i].detail) {
                            snprintf(g->detail, sizeof g->detail, "%s", b->run[i].detail);
                            break;
                        }
                double f = hkb_beyond_figure(b, g, w, a);
                if (is_ours(&b->work[w])) {
                    g->ours_w = w, g->ours_a = a, g->ours_s = f;
                    continue;
                }
                if (!strcmp(b->work[w].variant, "malloc") && !strcmp(b->alloc[a].name, "glibc"))
                    g->base_w = w, g->base_a = a, g->base_s = f;
                if (isfinite(f) && !(f >= g->best_s)) g->best_w = w, g->best_a = a, g->best_s = f;
                if (strcmp(b->work[w].variant, "malloc") && isfinite(f) && !(f >= g->best_api_s))
                    g->best_api_w = w, g->best_api_a = a, g->best_api_s = f;
            }
        }
        g->speedup_vs_glibc = ratio(g->base_s, g->ours_s);
        g->speedup_vs_best = ratio(g->best_s, g->ours_s);
        g->speedup_vs_best_api = ratio(g->best_api_s, g->ours_s);
        if (isfinite(g->speedup_vs_glibc)) g->met_glibc = g->speedup_vs_glibc >= g->target_speedup;
        if (g->target_vs_best && isfinite(g->speedup_vs_best)) g->met_best = g->speedup_vs_best >= 1;
    }
}

/* ---- The terminal section ------------------------------------------------------------ */

static const char *met(int m) { return m < 0 ? "not measured" : m ? "met" : "NOT met"; }

/* "3.10x faster" or "1.25x slower". */
static const char *faster(double x, char *buf, size_t cap) {
    if (!isfinite(x)) snprintf(buf, cap, "-");
    else if (x >= 1) snprintf(buf, cap, "%.2fx faster", x);
    else snprintf(buf, cap, "%.2fx slower", 1 / x);
    return buf;
}

void hkb_beyond_print(hkb_t *b, FILE *f) {
    int na = b->nalloc;
    if (!b->ngroup || !b->sum) return;
    fprintf(f, "\n== Beyond malloc: heapkit's own APIs against malloc/free and other libraries\n"
               "time: the workload's own timer around its work (no process start-up), median of the runs;\n"
               "hk/row: heapkit's time / that row's (below 1: heapkit's API is faster). Other libraries run\n"
               "on glibc's malloc; malloc/free under every allocator.\n");
    for (int k = 0; k < b->ngroup; k++) {
        hkb_group_t *g = &b->group[k];
        fprintf(f, "\n%s: %s\n", g->name, g->title);
        if (g->headline) fprintf(f, "  compared (hk/row, targets): the %s\n", g->headline);
        /* Part columns: those of the first row that has any. */
        int np = 0;
        char (*pn)[16] = NULL;
        for (int w = 0; w < b->nwork && !np; w++)
            for (int a = 0; a < na && !np; a++)
                if (in_group(b, w, g) && b->sum[w * na + a].n_ok && b->sum[w * na + a].nparts) {
                    np = b->sum[w * na + a].nparts;
                    pn = b->sum[w * na + a].part_name;
                }
        fprintf(f, "  %-20s", "variant");
        for (int p = 0; p < np; p++) fprintf(f, " %9.9s ms", pn[p]);
        fprintf(f, " %8s %5s %8s %10s %8s\n", "time s", "+-%", "cpu s", "peak RSS", "hk/row");
        for (int w = 0; w < b->nwork; w++) {
            if (!in_group(b, w, g)) continue;
            char label[64];
            if (!b->work[w].ok) {
                fprintf(f, "  %-20s SKIPPED: %s\n", b->work[w].variant, b->work[w].reason);
                continue;
            }
            for (int a = 0; a < na; a++) {
                hkb_summary_t *s = &b->sum[w * na + a];
                if (!s->present) continue;
                hkb_beyond_label(b, w, a, label, sizeof label);
                if (!s->n_ok) {
                    fprintf(f, "  %-20s FAILED (%d of %d runs): %s\n", label, s->n_fail, s->n_fail,
                            hkb_pair_error(b, w, a));
                    continue;
                }
                fprintf(f, "  %-20s", label);
                for (int p = 0; p < np; p++) {
                    double v = NAN;
                    for (int q = 0; q < s->nparts; q++)
                        if (!strcmp(s->part_name[q], pn[p])) v = s->part[q].median;
                    if (isfinite(v)) fprintf(f, " %12.1f", v);
                    else fprintf(f, " %12s", "-");
                }
                char m[32], x[32] = "-";
                double fig = hkb_beyond_figure(b, g, w, a);
                if (!(w == g->ours_w && a == g->ours_a) && isfinite(fig) && isfinite(g->ours_s))
                    snprintf(x, sizeof x, "%.2f", g->ours_s / fig);
                fprintf(f, " %8.3f %4.0f%% %8.3f %10s %8s%s\n", s->work.median, s->work.spread_pct, s->cpu.median,
                        hkb_fmt_bytes(s->rss_kib.median * 1024, m, sizeof m), x,
                        s->n_fail ? "  (some runs failed)" : "");
            }
        }
        char l1[64], l2[64], x1[32], x2[32];
        if (g->ours_w >= 0 && isfinite(g->ours_s)) {
            fprintf(f, "  %s%s%s: %s than malloc/free under glibc (target %gx: %s)", b->work[g->ours_w].variant,
                    g->headline ? " " : "", g->headline ? g->headline : "",
                    faster(g->speedup_vs_glibc, x1, sizeof x1), g->target_speedup, met(g->met_glibc));
            if (g->best_w >= 0)
                fprintf(f, "; %s than the fastest other, %s%s%s", faster(g->speedup_vs_best, x2, sizeof x2),
                        hkb_beyond_label(b, g->best_w, g->best_a, l1, sizeof l1),
                        g->target_vs_best ? " (target: no slower: " : "", g->target_vs_best ? met(g->met_best) : "");
            if (g->best_w >= 0 && g->target_vs_best) fprintf(f, ")");
            if (g->best_api_w >= 0 && g->best_api_w != g->best_w)
                fprintf(f, "; %s than the fastest other library, %s", faster(g->speedup_vs_best_api, x1, sizeof x1),
                        hkb_beyond_label(b, g->best_api_w, g->best_api_a, l2, sizeof l2));
            fprintf(f, "\n");
            if (g->headline && g->base_w >= 0) {
                const hkb_summary_t *o = &b->sum[g->ours_w * na + g->ours_a], *gl = &b->sum[g->base_w * na + g->base_a];
                if (o->n_ok && gl->n_ok)
                    fprintf(f, "  whole work (all phases): %s than malloc/free under glibc\n",
                            faster(ratio(gl->work.median, o->work.median), x1, sizeof x1));
            }
        } else {
            fprintf(f, "  heapkit's variant has no result: no speedup, targets not measured\n");
        }
        if (g->check_runs) {
            if (g->check_agree == g->check_runs)
                fprintf(f, "  checksum %s (%lld ops) printed by all %d successful runs\n", g->check, g->check_ops,
                        g->check_runs);
            else
                fprintf(f, "  checksum %s (%lld ops) printed by %d of %d runs: the others failed\n", g->check,
                        g->check_ops, g->check_agree, g->check_runs);
        }
        if (*g->detail) fprintf(f, "  %s\n", g->detail);
    }
}
