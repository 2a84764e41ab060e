/* report.c: the terminal table and the JSON file. The JSON holds every
 * figure: the configuration, each allocator (and why one was skipped),
 * each workload, every run with its samples, the per-pair summaries, the
 * geometric means, the Beyond malloc comparisons (beyond.c: their own
 * section of the table, and "beyond_malloc" in the JSON), the Diagnostics
 * section (diag.c; "diagnostics") and the instruction counts. After writing, the file is
 * parsed back with the strict parser: a malformed report is an error of
 * the runner, not something to find later in a chart.
 */
#include "hkbench.h"
#include "json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *hkb_fmt_bytes(double bytes, char *buf, size_t cap) {
    if (!isfinite(bytes) || bytes < 0) snprintf(buf, cap, "-");
    else if (bytes >= 1024.0 * 1024 * 1024) snprintf(buf, cap, "%.2f GiB", bytes / (1024.0 * 1024 * 1024));
    else if (bytes >= 1024.0 * 1024) snprintf(buf, cap, "%.1f MiB", bytes / (1024.0 * 1024));
    else snprintf(buf, cap, "%.0f KiB", bytes / 1024.0);
    return buf;
}

static const char *ratio(double r, char *buf, size_t cap) {
    if (!isfinite(r)) snprintf(buf, cap, "-");
    else snprintf(buf, cap, "%.2f", r);
    return buf;
}

static const char *count_k(double v, char *buf, size_t cap) {
    if (!isfinite(v)) snprintf(buf, cap, "-");
    else if (v >= 1e6) snprintf(buf, cap, "%.1fM", v / 1e6);
    else if (v >= 1e4) snprintf(buf, cap, "%.0fK", v / 1e3);
    else snprintf(buf, cap, "%.0f", v);
    return buf;
}

void hkb_print_table(hkb_t *b, FILE *f) {
    int na = b->nalloc;
    if (b->instr_only)
        fprintf(f, "== hkbench instr: instruction counts only, %s, %s\n", b->started, b->host);
    else
        fprintf(f, "== hkbench %s%s: scale %g, %d runs per pair (medians), %d threads, %s, %s\n", b->mode,
                !strcmp(b->mode, "quick") ? " (QUICK: tiny sizes, for a smoke check, not for conclusions)" : "",
                b->scale, b->runs, b->threads, b->started, b->host);
    for (int a = 0; a < na; a++)
        if (!b->alloc[a].ok) fprintf(f, "skipped %s: %s\n", b->alloc[a].name, b->alloc[a].reason);
    if (b->sum && !b->instr_only && hkb_allocator_workloads(b)) {
        fprintf(f, "\n%-13s %-9s %8s %5s %8s %10s %7s %5s %7s %7s %7s %7s\n", "workload", "allocator", "time s",
                "+-%", "cpu s", "peak RSS", "minflt", "eff", "t/glibc", "m/glibc", "t/best", "m/best");
        for (int w = 0; w < b->nwork; w++) {
            int shown = 0;
            if (!hkb_in_allocator_table(&b->work[w])) continue; /* Beyond malloc, Diagnostics */
            if (!b->work[w].ok) {
                fprintf(f, "%-13s SKIPPED: %s\n", b->work[w].name, b->work[w].reason);
                continue;
            }
            for (int a = 0; a < na; a++) {
                hkb_summary_t *s = &b->sum[w * na + a];
                if (!s->present) continue;
                const char *wn = shown++ ? "" : b->work[w].name;
                char r1[16], r2[16], r3[16], r4[16], m[32], fl[16], eff[16];
                if (!s->n_ok) {
                    const char *why = hkb_pair_error(b, w, a);
                    fprintf(f, "%-13s %-9s FAILED (%d of %d runs): %s\n", wn, b->alloc[a].name, s->n_fail,
                            s->n_fail, why);
                    continue;
                }
                if (isfinite(s->efficiency)) snprintf(eff, sizeof eff, "%.2f", s->efficiency);
                else snprintf(eff, sizeof eff, "-");
                fprintf(f, "%-13s %-9s %8.3f %4.0f%% %8.3f %10s %7s %5s %7s %7s %7s %7s%s\n", wn, b->alloc[a].name,
                        s->wall.median, s->wall.spread_pct, s->cpu.median,
                        hkb_fmt_bytes(s->rss_kib.median * 1024, m, sizeof m), count_k(s->minflt.median, fl, sizeof fl),
                        eff, ratio(s->time_vs_glibc, r1, sizeof r1), ratio(s->rss_vs_glibc, r2, sizeof r2),
                        ratio(s->time_vs_best, r3, sizeof r3), ratio(s->rss_vs_best, r4, sizeof r4),
                        s->n_fail ? "  (some runs failed)" : "");
            }
        }
        for (int w = 0; w < b->nwork; w++)
            for (int a = 0; a < na; a++) {
                hkb_summary_t *s = &b->sum[w * na + a];
                if (!s->present || !isfinite(s->time_vs_twin)) continue;
                char r1[16], r2[16];
                fprintf(f, "\n%s vs %s under %s: time %s, peak RSS %s", b->work[w].name, b->work[w].twin,
                        b->alloc[a].name, ratio(s->time_vs_twin, r1, sizeof r1), ratio(s->rss_vs_twin, r2, sizeof r2));
            }
        int any_real = 0;
        for (int w = 0; w < b->nwork; w++) {
            if (!b->work[w].ok || !b->work[w].real || !hkb_in_allocator_table(&b->work[w])) continue;
            any_real = 1;
            if (b->work[w].real != HKB_REAL_REDIS) continue;
            fprintf(f, "\n%s: requests per second (median of redis-benchmark's total; higher is better):", b->work[w].name);
            for (int a = 0; a < na; a++) {
                hkb_summary_t *s = &b->sum[w * na + a];
                if (s->present && s->rps.n) fprintf(f, " %s %.0fK", b->alloc[a].name, s->rps.median / 1000);
            }
        }
        fprintf(f, "\ntime: wall seconds; +-%%: (max-min)/median; m: peak RSS; eff: live bytes / peak RSS;\n"
                   "t/glibc, m/glibc: ratio to glibc; t/best, m/best: ratio to the best other allocator\n"
                   "(below 1: better than all the others). Lower is better everywhere but eff.\n");
        if (any_real)
            fprintf(f, "real-*: real programs, output checked against an untimed glibc run; no eff. (their live\n"
                       "bytes are unknown). real-redis: time is redis-benchmark's; CPU, RSS, faults the server's.\n");
        fprintf(f, "\ngeometric mean over workloads (lower is better)\n");
        fprintf(f, "%-9s %9s %9s %9s %10s %9s %9s %10s\n", "allocator", "t/glibc", "m/glibc", "cpu/glibc",
                "workloads", "t/best", "m/best", "workloads");
        for (int a = 0; a < na; a++) {
            if (!b->alloc[a].ok) continue;
            hkb_geomean_t *g = &b->geo[a];
            char r1[16], r2[16], r3[16], r4[16], r5[16];
            fprintf(f, "%-9s %9s %9s %9s %10d %9s %9s %10d\n", b->alloc[a].name, ratio(g->time_vs_glibc, r1, sizeof r1),
                    ratio(g->rss_vs_glibc, r2, sizeof r2), ratio(g->cpu_vs_glibc, r5, sizeof r5), g->n_glibc,
                    ratio(g->time_vs_best, r3, sizeof r3), ratio(g->rss_vs_best, r4, sizeof r4), g->n_best);
        }
    }
    if (b->sum && !b->instr_only) hkb_beyond_print(b, f);
    if (b->sum && !b->instr_only) hkb_diag_print(b, f);
    if (b->do_instr) {
        fprintf(f, "\ninstructions per malloc+free pair (callgrind; lower is better)\n");
        if (!b->ninstr) fprintf(f, "none: %s\n", b->instr_note);
        else {
            fprintf(f, "%-9s", "allocator");
            int sizes[8], ns = 0;
            for (int i = 0; i < b->ninstr && ns < 8; i++) {
                int seen = 0;
                for (int k = 0; k < ns; k++) seen |= sizes[k] == b->instr[i].size;
                if (!seen) sizes[ns++] = b->instr[i].size;
            }
            for (int k = 0; k < ns; k++) fprintf(f, " %7d B", sizes[k]);
            fprintf(f, "\n");
            for (int a = 0; a < na; a++) {
                int any = 0;
                for (int i = 0; i < b->ninstr; i++) any |= b->instr[i].a == a;
                if (!any) continue;
                fprintf(f, "%-9s", b->alloc[a].name);
                for (int k = 0; k < ns; k++)
                    for (int i = 0; i < b->ninstr; i++)
                        if (b->instr[i].a == a && b->instr[i].size == sizes[k]) {
                            if (b->instr[i].ok) fprintf(f, " %9.1f", b->instr[i].per_pair);
                            else fprintf(f, " %9s", "FAILED");
                        }
                fprintf(f, "\n");
            }
            /* heapkit's own pairs, beside the allocators' malloc+free: a row
             * per API, in the order counted. */
            for (int i = 0; i < b->ninstr_api; i++) {
                const char *api = b->instr_api[i].api;
                int first = 1;
                for (int j = 0; j < i; j++) first &= strcmp(b->instr_api[j].api, api) != 0;
                if (!first) continue;
                fprintf(f, "%-9s", api);
                for (int k = 0; k < ns; k++)
                    for (int j = 0; j < b->ninstr_api; j++)
                        if (!strcmp(b->instr_api[j].api, api) && b->instr_api[j].size == sizes[k]) {
                            if (b->instr_api[j].ok) fprintf(f, " %9.1f", b->instr_api[j].per_pair);
                            else fprintf(f, " %9s", "FAILED");
                        }
                fprintf(f, "   (%s)\n", !strcmp(api, "hk_cache") ? "hk_cache_alloc+hk_cache_free" : "hk_malloc+hk_free");
            }
            fprintf(f, "(%s)\n", b->instr_note);
        }
    }
}

/* ---- JSON writer ------------------------------------------------------------ */
/* A tiny emitter that tracks whether a comma is due at each nesting level;
 * numbers that are not finite are written as null (JSON has no NaN). */

typedef struct {
    FILE *f;
    int depth;
    int need_comma[64];
    int after_key;
} jw_t;

static void jw_sep(jw_t *w) {
    if (w->after_key) {
        w->after_key = 0;
        return;
    }
    if (w->need_comma[w->depth]) fputc(',', w->f);
    w->need_comma[w->depth] = 1;
    if (w->depth <= 2) {
        fputc('\n', w->f);
        for (int i = 0; i < w->depth; i++) fputs("  ", w->f);
    }
}
static void jw_open(jw_t *w, char c) {
    jw_sep(w);
    fputc(c, w->f);
    w->need_comma[++w->depth] = 0;
}
static void jw_close(jw_t *w, char c) {
    w->depth--;
    fputc(c, w->f);
}
static void jw_raw_str(jw_t *w, const char *s) {
    fputc('"', w->f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(w->f, "\\%c", *p);
        else if (*p == '\n') fputs("\\n", w->f);
        else if (*p == '\t') fputs("\\t", w->f);
        else if (*p < 0x20) fprintf(w->f, "\\u%04x", *p);
        else fputc(*p, w->f);
    }
    fputc('"', w->f);
}
static void jw_key(jw_t *w, const char *k) {
    jw_sep(w);
    jw_raw_str(w, k);
    fputc(':', w->f);
    w->after_key = 1;
}
static void jw_str(jw_t *w, const char *k, const char *v) {
    if (k) jw_key(w, k);
    else jw_sep(w);
    if (v) jw_raw_str(w, v);
    else fputs("null", w->f);
    w->after_key = 0;
}
static void jw_num(jw_t *w, const char *k, double v) {
    if (k) jw_key(w, k);
    else jw_sep(w);
    if (isfinite(v)) fprintf(w->f, "%.10g", v);
    else fputs("null", w->f);
    w->after_key = 0;
}
static void jw_int(jw_t *w, const char *k, long long v) {
    if (k) jw_key(w, k);
    else jw_sep(w);
    fprintf(w->f, "%lld", v);
    w->after_key = 0;
}
static void jw_bool(jw_t *w, const char *k, int v) {
    if (k) jw_key(w, k);
    else jw_sep(w);
    fputs(v ? "true" : "false", w->f);
    w->after_key = 0;
}
static void jw_obj(jw_t *w, const char *k) {
    if (k) jw_key(w, k);
    jw_open(w, '{');
}
/* The fields of one instruction count (malloc+free or hk_cache pair). */
static void jw_instr_counts(jw_t *w, const hkb_instr_t *in) {
    jw_int(w, "size", in->size);
    jw_bool(w, "ok", in->ok);
    jw_str(w, "error", in->error);
    jw_int(w, "n1", in->n1);
    jw_int(w, "n2", in->n2);
    jw_int(w, "ir1", in->ir1);
    jw_int(w, "ir2", in->ir2);
    jw_num(w, "per_pair", in->ok ? in->per_pair : NAN);
}
static void jw_arr(jw_t *w, const char *k) {
    if (k) jw_key(w, k);
    jw_open(w, '[');
}

static void jw_stat(jw_t *w, const char *k, const hkb_stat_t *s) {
    jw_obj(w, k);
    jw_int(w, "n", s->n);
    jw_num(w, "median", s->median);
    jw_num(w, "min", s->min);
    jw_num(w, "max", s->max);
    jw_num(w, "spread_pct", s->spread_pct);
    jw_close(w, '}');
}

static const char *alloc_name(hkb_t *b, int a) { return a >= 0 && a < b->nalloc ? b->alloc[a].name : NULL; }
static const char *work_name(hkb_t *b, int w) { return w >= 0 && w < b->nwork ? b->work[w].name : NULL; }

/* The Beyond malloc comparisons (beyond.c): per comparison its rows with
 * their headline figures, the speedups of heapkit's API (other / ours) and
 * whether the targets are met. */
static void write_beyond(hkb_t *b, jw_t *w) {
    jw_arr(w, "beyond_malloc");
    for (int k = 0; b->sum && k < b->ngroup; k++) {
        hkb_group_t *g = &b->group[k];
        char label[64];
        jw_obj(w, NULL);
        jw_str(w, "name", g->name);
        jw_str(w, "title", g->title);
        jw_str(w, "description", g->description);
        jw_str(w, "figure", g->headline ? g->headline : "work");
        jw_num(w, "target_speedup_vs_glibc_malloc", g->target_speedup);
        jw_bool(w, "target_no_slower_than_best", g->target_vs_best);
        jw_str(w, "ours", work_name(b, g->ours_w));
        jw_num(w, "ours_s", g->ours_s);
        jw_num(w, "glibc_malloc_s", g->base_s);
        jw_num(w, "speedup_vs_glibc_malloc", g->speedup_vs_glibc);
        jw_str(w, "best_other", g->best_w >= 0 ? hkb_beyond_label(b, g->best_w, g->best_a, label, sizeof label) : NULL);
        jw_num(w, "best_other_s", g->best_s);
        jw_num(w, "speedup_vs_best_other", g->speedup_vs_best);
        jw_str(w, "best_other_library",
               g->best_api_w >= 0 ? hkb_beyond_label(b, g->best_api_w, g->best_api_a, label, sizeof label) : NULL);
        jw_num(w, "best_other_library_s", g->best_api_s);
        jw_num(w, "speedup_vs_best_other_library", g->speedup_vs_best_api);
        if (g->met_glibc < 0) jw_str(w, "target_met_vs_glibc_malloc", NULL);
        else jw_bool(w, "target_met_vs_glibc_malloc", g->met_glibc);
        if (g->met_best < 0) jw_str(w, "target_met_vs_best", NULL);
        else jw_bool(w, "target_met_vs_best", g->met_best);
        jw_str(w, "checksum", g->check);
        jw_int(w, "checksum_ops", g->check_ops);
        jw_int(w, "checksum_runs_agree", g->check_agree);
        jw_int(w, "checksum_runs", g->check_runs);
        jw_str(w, "detail", g->detail);
        jw_arr(w, "rows");
        for (int wk = 0; wk < b->nwork; wk++) {
            if (!b->work[wk].group || strcmp(b->work[wk].group, g->name)) continue;
            for (int a = 0; a < b->nalloc; a++) {
                hkb_summary_t *s = &b->sum[wk * b->nalloc + a];
                int present = s->present;
                /* A skipped variant is a row too, with its reason. */
                if (!present && (b->work[wk].ok || a != 0)) continue;
                jw_obj(w, NULL);
                jw_str(w, "workload", b->work[wk].name);
                jw_str(w, "variant", b->work[wk].variant);
                jw_str(w, "label", hkb_beyond_label(b, wk, present ? a : -1, label, sizeof label));
                jw_str(w, "allocator", present ? b->alloc[a].name : NULL);
                jw_str(w, "status", !present ? "skipped" : s->n_ok ? "ok" : "failed");
                jw_str(w, "reason", !present ? b->work[wk].reason : s->n_ok ? "" : hkb_pair_error(b, wk, a));
                jw_int(w, "n_ok", present ? s->n_ok : 0);
                double fig = present ? hkb_beyond_figure(b, g, wk, a) : NAN;
                jw_num(w, "figure_s", fig);
                /* other / ours: above 1, heapkit's API is faster than this row */
                jw_num(w, "speedup_of_ours", wk == g->ours_w ? NAN : isfinite(fig) && g->ours_s > 0 ? fig / g->ours_s : NAN);
                jw_close(w, '}');
            }
        }
        jw_close(w, ']');
        jw_close(w, '}');
    }
    jw_close(w, ']');
}

/* The Diagnostics section (diag.c): its variants (where each one's library
 * or tool is, or why it is skipped), per program each variant's time and
 * slowdown against plain heapkit and the target's verdict, the target
 * overall and the geometric mean slowdown of each variant. */
static void write_diag(hkb_t *b, jw_t *w) {
    hkb_diag_t *dg = &b->diag;
    jw_obj(w, "diagnostics");
    jw_bool(w, "present", dg->present && b->sum);
    jw_int(w, "runs", dg->runs);
    jw_str(w, "left_out", dg->left_out);
    jw_str(w, "figure", "wall time of the process (start-up and exit included), median of the runs");
    jw_obj(w, "target");
    jw_str(w, "description", "debug <= 3x plain heapkit where memcheck >= 20x plain heapkit");
    jw_num(w, "debug_max", dg->debug_max);
    jw_num(w, "memcheck_min", dg->memcheck_min);
    jw_int(w, "programs", dg->target_programs);
    jw_num(w, "worst_debug_slowdown", dg->worst_debug);
    jw_str(w, "worst_program", dg->worst_prog >= 0 ? dg->prog[dg->worst_prog].name : NULL);
    if (dg->target < 0) jw_str(w, "met", NULL);
    else jw_bool(w, "met", dg->target);
    jw_close(w, '}');
    jw_arr(w, "variants");
    for (int v = 0; dg->present && v < HKB_DIAG_NVARIANTS; v++) {
        hkb_diag_tool_t *t = &dg->tool[v];
        jw_obj(w, NULL);
        jw_str(w, "name", t->name);
        jw_str(w, "label", t->label);
        jw_str(w, "slot", t->slot);
        jw_str(w, "status", t->lib.ok ? "ok" : "skipped");
        jw_str(w, "path", t->lib.path);
        jw_str(w, "version", t->version);
        jw_str(w, "reason", t->lib.ok ? "" : t->lib.reason);
        jw_close(w, '}');
    }
    jw_close(w, ']');
    jw_arr(w, "programs");
    for (int k = 0; dg->present && b->sum && k < dg->nprog; k++) {
        hkb_diag_prog_t *p = &dg->prog[k];
        jw_obj(w, NULL);
        jw_str(w, "name", p->name);
        jw_str(w, "description", p->description);
        jw_str(w, "kind", p->real ? "real" : "synthetic");
        jw_num(w, "scale", p->scale);
        jw_num(w, "memcheck_slowdown", p->slowdown[HKB_DIAG_MEMCHECK]);
        jw_num(w, "debug_slowdown", p->slowdown[HKB_DIAG_DEBUG]);
        if (p->target_applies < 0) jw_str(w, "target_applies", NULL);
        else jw_bool(w, "target_applies", p->target_applies);
        if (p->target < 0) jw_str(w, "target_met", NULL);
        else jw_bool(w, "target_met", p->target);
        jw_arr(w, "variants");
        for (int v = 0; v < HKB_DIAG_NVARIANTS; v++) {
            const char *why, *st = hkb_diag_status(b, p, v, &why);
            int wk = p->w[v];
            const hkb_summary_t *s = NULL;
            if (wk >= 0 && (!strcmp(st, "ok") || !strcmp(st, "failed")))
                for (int a = 0; a < b->nalloc; a++)
                    if (b->sum[wk * b->nalloc + a].present) s = &b->sum[wk * b->nalloc + a];
            jw_obj(w, NULL);
            jw_str(w, "variant", dg->tool[v].name);
            jw_str(w, "workload", wk >= 0 ? b->work[wk].name : NULL);
            jw_str(w, "status", st);
            jw_str(w, "reason", why);
            jw_int(w, "n_ok", s ? s->n_ok : 0);
            jw_int(w, "n_fail", s ? s->n_fail : 0);
            jw_num(w, "time_s", p->time_s[v]);
            jw_num(w, "time_min_s", s && s->n_ok ? s->wall.min : NAN);
            jw_num(w, "time_max_s", s && s->n_ok ? s->wall.max : NAN);
            jw_num(w, "cpu_s", p->cpu_s[v]);
            jw_num(w, "maxrss_kib", s && s->n_ok ? s->rss_kib.median : NAN);
            jw_num(w, "slowdown", p->slowdown[v]);
            jw_close(w, '}');
        }
        jw_close(w, ']');
        jw_close(w, '}');
    }
    jw_close(w, ']');
    jw_arr(w, "geomean");
    for (int v = 0; dg->present && b->sum && v < HKB_DIAG_NVARIANTS; v++) {
        jw_obj(w, NULL);
        jw_str(w, "variant", dg->tool[v].name);
        jw_num(w, "slowdown", dg->geomean[v]);
        jw_int(w, "programs", dg->geomean_n[v]);
        jw_close(w, '}');
    }
    jw_close(w, ']');
    jw_close(w, '}');
}

int hkb_write_json(hkb_t *b, const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    jw_t w = { f, 0, { 0 }, 0 };
    jw_obj(&w, NULL);
    jw_str(&w, "schema", "heapkit-bench/1");
    jw_str(&w, "mode", b->mode);
    jw_bool(&w, "quick", !strcmp(b->mode, "quick"));
    jw_str(&w, "started", b->started);
    jw_num(&w, "total_wall_s", b->total_wall_s);
    jw_obj(&w, "host");
    jw_str(&w, "description", b->host);
    jw_int(&w, "nproc", b->nproc);
    jw_close(&w, '}');
    jw_obj(&w, "config");
    jw_num(&w, "scale", b->scale);
    jw_int(&w, "runs", b->runs);
    jw_int(&w, "threads", b->threads);
    jw_num(&w, "timeout_s", b->timeout_s);
    jw_int(&w, "max_fail", b->max_fail);
    jw_bool(&w, "instr", b->do_instr);
    jw_str(&w, "bin_dir", b->bin_dir);
    jw_close(&w, '}');

    jw_arr(&w, "allocators");
    for (int a = 0; a < b->nalloc; a++) {
        hkb_alloc_t *al = &b->alloc[a];
        jw_obj(&w, NULL);
        jw_str(&w, "name", al->name);
        jw_str(&w, "status", al->ok ? "ok" : "skipped");
        jw_str(&w, "path", al->path);
        jw_str(&w, "malloc_from", al->malloc_from);
        jw_str(&w, "reason", al->reason);
        jw_close(&w, '}');
    }
    jw_close(&w, ']');

    jw_arr(&w, "workloads");
    for (int i = 0; i < b->nwork; i++) {
        hkb_workload_t *wk = &b->work[i];
        jw_obj(&w, NULL);
        jw_str(&w, "name", wk->name);
        jw_str(&w, "program", wk->program);
        jw_str(&w, "args", wk->args);
        jw_str(&w, "only", wk->only);
        jw_str(&w, "twin", wk->twin);
        jw_str(&w, "description", wk->description);
        jw_str(&w, "status", wk->ok ? "ok" : "skipped");
        jw_str(&w, "reason", wk->reason);
        jw_str(&w, "kind", hkb_kind(wk));
        jw_str(&w, "command", wk->real ? wk->command : "");
        jw_str(&w, "version", wk->real ? wk->version : "");
        jw_bool(&w, "live_known", !wk->real);
        jw_str(&w, "reference_hash", wk->real ? wk->ref_hash : "");
        jw_str(&w, "reference_error", wk->real ? wk->ref_error : "");
        jw_str(&w, "group", wk->group);
        jw_str(&w, "variant", wk->variant);
        jw_str(&w, "library", wk->library);
        jw_num(&w, "scale", hkb_scale_of(b, wk));
        jw_str(&w, "diag_program", wk->diag_program);
        jw_str(&w, "diag_variant", wk->diag_program ? b->diag.tool[wk->diag_variant].name : NULL);
        jw_close(&w, '}');
    }
    jw_close(&w, ']');

    jw_arr(&w, "runs");
    for (int i = 0; i < b->nrun; i++) {
        hkb_run_t *r = &b->run[i];
        jw_obj(&w, NULL);
        jw_str(&w, "workload", b->work[r->w].name);
        jw_str(&w, "allocator", b->alloc[r->a].name);
        jw_int(&w, "rep", r->rep);
        jw_bool(&w, "done", r->done);
        jw_bool(&w, "ok", r->ok);
        jw_int(&w, "exit_code", r->exit_code);
        jw_int(&w, "signal", r->signal);
        jw_bool(&w, "timed_out", r->timed_out);
        jw_str(&w, "error", r->error);
        jw_num(&w, "wall_s", r->wall_s);
        jw_num(&w, "cpu_s", r->cpu_s);
        jw_num(&w, "user_s", r->user_s);
        jw_num(&w, "sys_s", r->sys_s);
        jw_int(&w, "maxrss_kib", r->maxrss_kib);
        jw_int(&w, "hwm_kib", r->hwm_kib);
        jw_int(&w, "minflt", r->minflt);
        jw_int(&w, "majflt", r->majflt);
        jw_int(&w, "nvcsw", r->nvcsw);
        jw_int(&w, "nivcsw", r->nivcsw);
        jw_int(&w, "ops", r->ops);
        jw_int(&w, "live_peak", r->live_peak);
        jw_str(&w, "malloc_from", r->malloc_from);
        jw_str(&w, "output_hash", r->out_hash);
        jw_num(&w, "rps", r->rps);
        jw_str(&w, "detail", r->detail);
        jw_num(&w, "work_s", r->work_s);
        jw_str(&w, "check", r->check);
        jw_obj(&w, "parts");
        for (int k = 0; k < r->nparts; k++) jw_num(&w, r->part[k].name, r->part[k].ms);
        jw_close(&w, '}');
        jw_arr(&w, "phases");
        for (int k = 0; k < r->nphases; k++) {
            jw_obj(&w, NULL);
            jw_int(&w, "step", r->phases[k].step);
            jw_str(&w, "name", r->phases[k].name);
            jw_close(&w, '}');
        }
        jw_close(&w, ']');
        /* Samples as compact [step, t_ms, rss, live] rows. */
        jw_arr(&w, "samples");
        for (int k = 0; k < r->nsamples; k++) {
            hkb_sample_t *s = &r->samples[k];
            jw_arr(&w, NULL);
            jw_int(&w, NULL, s->step);
            jw_num(&w, NULL, s->t_ms);
            jw_int(&w, NULL, s->rss);
            jw_int(&w, NULL, s->live);
            jw_close(&w, ']');
        }
        jw_close(&w, ']');
        jw_close(&w, '}');
    }
    jw_close(&w, ']');

    jw_arr(&w, "summary");
    for (int i = 0; b->sum && i < b->nwork * b->nalloc; i++) {
        hkb_summary_t *s = &b->sum[i];
        if (!s->present) continue;
        jw_obj(&w, NULL);
        jw_str(&w, "workload", b->work[s->w].name);
        jw_str(&w, "allocator", b->alloc[s->a].name);
        jw_int(&w, "n_ok", s->n_ok);
        jw_int(&w, "n_fail", s->n_fail);
        jw_stat(&w, "wall_s", &s->wall);
        jw_stat(&w, "cpu_s", &s->cpu);
        jw_stat(&w, "maxrss_kib", &s->rss_kib);
        jw_stat(&w, "minflt", &s->minflt);
        jw_stat(&w, "rps", &s->rps);
        jw_stat(&w, "work_s", &s->work);
        jw_obj(&w, "parts_ms");
        for (int k = 0; k < s->nparts; k++) jw_stat(&w, s->part_name[k], &s->part[k]);
        jw_close(&w, '}');
        jw_num(&w, "live_peak", s->live_peak);
        jw_num(&w, "efficiency", s->efficiency);
        jw_num(&w, "time_vs_glibc", s->time_vs_glibc);
        jw_num(&w, "rss_vs_glibc", s->rss_vs_glibc);
        jw_num(&w, "cpu_vs_glibc", s->cpu_vs_glibc);
        jw_num(&w, "time_vs_best_other", s->time_vs_best);
        jw_str(&w, "best_other_time", alloc_name(b, s->best_time_a));
        jw_num(&w, "rss_vs_best_other", s->rss_vs_best);
        jw_str(&w, "best_other_rss", alloc_name(b, s->best_rss_a));
        jw_num(&w, "time_vs_twin", s->time_vs_twin);
        jw_num(&w, "rss_vs_twin", s->rss_vs_twin);
        jw_int(&w, "median_run", s->median_run);
        jw_close(&w, '}');
    }
    jw_close(&w, ']');

    jw_arr(&w, "geomean");
    for (int a = 0; a < b->nalloc; a++) {
        if (!b->alloc[a].ok || b->instr_only) continue;
        hkb_geomean_t *g = &b->geo[a];
        jw_obj(&w, NULL);
        jw_str(&w, "allocator", b->alloc[a].name);
        jw_num(&w, "time_vs_glibc", g->time_vs_glibc);
        jw_num(&w, "rss_vs_glibc", g->rss_vs_glibc);
        jw_num(&w, "cpu_vs_glibc", g->cpu_vs_glibc);
        jw_int(&w, "workloads_vs_glibc", g->n_glibc);
        jw_num(&w, "time_vs_best_other", g->time_vs_best);
        jw_num(&w, "rss_vs_best_other", g->rss_vs_best);
        jw_int(&w, "workloads_vs_best_other", g->n_best);
        jw_close(&w, '}');
    }
    jw_close(&w, ']');

    write_beyond(b, &w);
    write_diag(b, &w);

    jw_obj(&w, "instructions");
    jw_bool(&w, "measured", b->do_instr && b->ninstr > 0);
    jw_str(&w, "method", b->instr_note);
    jw_int(&w, "loop_ir1", b->instr_loop1);
    jw_int(&w, "loop_ir2", b->instr_loop2);
    jw_arr(&w, "results");
    for (int i = 0; i < b->ninstr; i++) {
        hkb_instr_t *in = &b->instr[i];
        jw_obj(&w, NULL);
        jw_str(&w, "allocator", b->alloc[in->a].name);
        jw_instr_counts(&w, in);
        jw_close(&w, '}');
    }
    jw_close(&w, ']');
    /* heapkit's own pairs (hk_malloc + hk_free, hk_cache_alloc +
     * hk_cache_free), counted the same way when heapkit is. */
    jw_arr(&w, "api_results");
    for (int i = 0; i < b->ninstr_api; i++) {
        hkb_instr_t *in = &b->instr_api[i];
        jw_obj(&w, NULL);
        jw_str(&w, "api", in->api);
        jw_instr_counts(&w, in);
        jw_close(&w, '}');
    }
    jw_close(&w, ']');
    jw_close(&w, '}');
    jw_close(&w, '}');
    fputc('\n', f);
    if (fclose(f) != 0) return -1;

    /* Read it back: the runner must never hand on malformed JSON. */
    char err[256];
    jval_t *v = json_parse_file(path, err, sizeof err);
    if (!v) {
        fprintf(stderr, "hkbench: internal error: %s is not valid JSON: %s\n", path, err);
        return -1;
    }
    json_free(v);
    return 0;
}
