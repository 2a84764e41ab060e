/* stats.c: from runs to figures. Medians (not means: the machine is shared
 * and noisy, and one disturbed run must not move the result), spreads,
 * efficiency, ratios to glibc and to the best other allocator, and the
 * geometric means over workloads. Only successful runs count. The Beyond
 * malloc comparisons (beyond.c) get their summaries here too, with the
 * workload's own time and its timed parts, but compare APIs rather than
 * allocators: they stay out of the geometric means. So do the Diagnostics
 * section's variants (diag.c), whose figures are slowdowns of their own.
 */
#include "hkbench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

double hkb_median(const double *v, int n) {
    if (n <= 0) return NAN;
    double *s = malloc((size_t)n * sizeof *s);
    if (!s) return NAN;
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    double m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    free(s);
    return m;
}

hkb_stat_t hkb_stat(const double *v, int n) {
    hkb_stat_t st = { n, NAN, NAN, NAN, NAN };
    if (n <= 0) return st;
    st.median = hkb_median(v, n);
    st.min = st.max = v[0];
    for (int i = 1; i < n; i++) {
        if (v[i] < st.min) st.min = v[i];
        if (v[i] > st.max) st.max = v[i];
    }
    st.spread_pct = st.median > 0 ? (st.max - st.min) / st.median * 100 : NAN;
    return st;
}

/* Geometric mean of positive finite values; NAN when there are none. */
double hkb_geomean_of(const double *v, int n) {
    double s = 0;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i]) && v[i] > 0) {
            s += log(v[i]);
            k++;
        }
    return k ? exp(s / k) : NAN;
}

static int find_alloc(const hkb_t *b, const char *name) {
    for (int a = 0; a < b->nalloc; a++)
        if (!strcmp(b->alloc[a].name, name)) return a;
    return -1;
}

void hkb_summarise(hkb_t *b) {
    int na = b->nalloc, nw = b->nwork;
    b->sum = calloc((size_t)(na * nw) + 1, sizeof *b->sum);
    if (!b->sum) return;
    double *wall = malloc(sizeof(double) * (size_t)(b->runs + 1) * (7 + HKB_MAX_PARTS));
    if (!wall) return;
    double *cpu = wall + b->runs + 1, *rss = cpu + b->runs + 1, *flt = rss + b->runs + 1,
           *live = flt + b->runs + 1, *rps = live + b->runs + 1, *work = rps + b->runs + 1,
           *part = work + b->runs + 1; /* HKB_MAX_PARTS rows of runs + 1 */

    for (int w = 0; w < nw; w++)
        for (int a = 0; a < na; a++) {
            hkb_summary_t *s = &b->sum[w * na + a];
            s->w = w;
            s->a = a;
            s->median_run = -1;
            s->best_time_a = s->best_rss_a = -1;
            s->time_vs_glibc = s->rss_vs_glibc = s->time_vs_best = s->rss_vs_best = NAN;
            s->time_vs_twin = s->rss_vs_twin = s->cpu_vs_glibc = NAN;
            s->efficiency = s->live_peak = NAN;
            int n = 0, nr = 0, nwork_s = 0;
            for (int i = 0; i < b->nrun; i++) {
                hkb_run_t *r = &b->run[i];
                if (r->w != w || r->a != a) continue;
                s->present = 1;
                if (!r->done) continue;
                if (!r->ok) {
                    s->n_fail++;
                    continue;
                }
                wall[n] = r->wall_s;
                cpu[n] = r->cpu_s;
                rss[n] = (double)r->maxrss_kib;
                flt[n] = (double)r->minflt;
                live[n] = (double)r->live_peak;
                if (isfinite(r->rps)) rps[nr++] = r->rps;
                if (isfinite(r->work_s)) work[nwork_s++] = r->work_s;
                /* Parts are named by the first successful run. */
                if (!n) {
                    s->nparts = r->nparts;
                    for (int p = 0; p < r->nparts; p++)
                        snprintf(s->part_name[p], sizeof s->part_name[p], "%s", r->part[p].name);
                }
                for (int p = 0; p < s->nparts; p++) {
                    double ms = NAN;
                    for (int q = 0; q < r->nparts; q++)
                        if (!strcmp(r->part[q].name, s->part_name[p])) ms = r->part[q].ms;
                    part[p * (b->runs + 1) + n] = ms;
                }
                n++;
            }
            s->work = hkb_stat(work, nwork_s);
            for (int p = 0; p < s->nparts; p++) {
                /* A run without the part (it should not happen) is left out. */
                double *v = &part[p * (b->runs + 1)];
                int k = 0;
                for (int i = 0; i < n; i++)
                    if (isfinite(v[i])) v[k++] = v[i];
                s->part[p] = hkb_stat(v, k);
            }
            s->n_ok = n;
            s->wall = hkb_stat(wall, n);
            s->cpu = hkb_stat(cpu, n);
            s->rss_kib = hkb_stat(rss, n);
            s->minflt = hkb_stat(flt, n);
            s->rps = hkb_stat(rps, nr);
            if (n) {
                /* A real program's live bytes are unknown: no efficiency. */
                if (!b->work[w].real) s->live_peak = hkb_median(live, n);
                if (s->live_peak > 0 && s->rss_kib.median > 0)
                    s->efficiency = s->live_peak / (s->rss_kib.median * 1024.0);
                /* The representative run for charts: the one whose time is
                 * closest to the median. */
                double best = INFINITY;
                for (int i = 0; i < b->nrun; i++) {
                    hkb_run_t *r = &b->run[i];
                    if (r->w != w || r->a != a || !r->ok) continue;
                    double d = fabs(r->wall_s - s->wall.median);
                    if (d < best) {
                        best = d;
                        s->median_run = i;
                    }
                }
            }
        }

    /* Ratios: to glibc, and to the best of the *other* allocators. */
    int g = find_alloc(b, "glibc");
    for (int w = 0; w < nw; w++)
        for (int a = 0; a < na; a++) {
            hkb_summary_t *s = &b->sum[w * na + a];
            if (!s->n_ok) continue;
            if (g >= 0 && b->sum[w * na + g].n_ok) {
                s->time_vs_glibc = s->wall.median / b->sum[w * na + g].wall.median;
                s->rss_vs_glibc = s->rss_kib.median / b->sum[w * na + g].rss_kib.median;
                s->cpu_vs_glibc = s->cpu.median / b->sum[w * na + g].cpu.median;
            }
            double bt = INFINITY, br = INFINITY;
            for (int o = 0; o < na; o++) {
                hkb_summary_t *x = &b->sum[w * na + o];
                if (o == a || !x->n_ok) continue;
                if (x->wall.median < bt) bt = x->wall.median, s->best_time_a = o;
                if (x->rss_kib.median < br) br = x->rss_kib.median, s->best_rss_a = o;
            }
            if (s->best_time_a >= 0) s->time_vs_best = s->wall.median / bt;
            if (s->best_rss_a >= 0) s->rss_vs_best = s->rss_kib.median / br;
            /* A workload with a twin (the same work done another way) is
             * compared with it under the same allocator. */
            for (int t = 0; b->work[w].twin && t < nw; t++)
                if (!strcmp(b->work[t].name, b->work[w].twin) && b->sum[t * na + a].n_ok) {
                    s->time_vs_twin = s->wall.median / b->sum[t * na + a].wall.median;
                    s->rss_vs_twin = s->rss_kib.median / b->sum[t * na + a].rss_kib.median;
                }
        }

    /* Geometric means over the workloads each allocator completed. */
    double *t = malloc(sizeof(double) * (size_t)nw * 5);
    if (!t) {
        free(wall);
        return;
    }
    double *r = t + nw, *tb = r + nw, *rb = tb + nw, *c = rb + nw;
    for (int a = 0; a < na; a++) {
        int k = 0, kb = 0;
        for (int w = 0; w < nw; w++) {
            hkb_summary_t *s = &b->sum[w * na + a];
            if (!hkb_in_allocator_table(&b->work[w])) continue; /* beyond.c's or diag.c's */
            if (isfinite(s->time_vs_glibc) && isfinite(s->rss_vs_glibc)) {
                t[k] = s->time_vs_glibc;
                r[k] = s->rss_vs_glibc;
                c[k] = s->cpu_vs_glibc;
                k++;
            }
            if (isfinite(s->time_vs_best) && isfinite(s->rss_vs_best)) {
                tb[kb] = s->time_vs_best;
                rb[kb] = s->rss_vs_best;
                kb++;
            }
        }
        hkb_geomean_t *gm = &b->geo[a];
        gm->a = a;
        gm->n_glibc = k;
        gm->n_best = kb;
        gm->time_vs_glibc = hkb_geomean_of(t, k);
        gm->rss_vs_glibc = hkb_geomean_of(r, k);
        gm->cpu_vs_glibc = hkb_geomean_of(c, k);
        gm->time_vs_best = hkb_geomean_of(tb, kb);
        gm->rss_vs_best = hkb_geomean_of(rb, kb);
    }
    free(t);
    free(wall);
}
