/* html.c: the self-contained HTML report. Every chart is inline SVG drawn
 * here (no scripts, no external files, so the report opens anywhere and
 * can be archived as one file): horizontal bars for time and peak RSS per
 * workload with min..max whiskers, the geometric means, the instruction
 * counts, a line chart of RSS over the workload's progress for the
 * workloads that print memory samples (frag, mixed), the Beyond malloc
 * section (heapkit's own APIs against malloc/free and other libraries,
 * figures from beyond.c) and the Diagnostics section (heapkit's debug and
 * secure libraries against memcheck and ASan: slowdowns on a log scale,
 * figures from diag.c).
 */
#include "hkbench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- Small helpers ---------------------------------------------------------- */

static void esc(FILE *f, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

static const char *color_of(const char *name, int a) {
    static const char *named[][2] = { { "glibc", "#6b7280" }, { "jemalloc", "#2563eb" }, { "tcmalloc", "#16a34a" },
                                      { "mimalloc", "#9333ea" }, { "heapkit", "#dc2626" } };
    static const char *other[] = { "#ea580c", "#0891b2", "#a16207", "#db2777", "#4d7c0f", "#1e3a8a" };
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
        if (!strcmp(name, named[i][0])) return named[i][1];
    return other[a % 6];
}

/* A "nice" axis step (1, 2 or 5 times a power of ten) for about `ticks`. */
static double nice_step(double range, int ticks) {
    if (!(range > 0)) return 1;
    double raw = range / ticks, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

static void fmt_num(double v, char *buf, size_t cap) {
    if (!isfinite(v)) snprintf(buf, cap, "-");
    else if (fabs(v) >= 100) snprintf(buf, cap, "%.0f", v);
    else if (fabs(v) >= 10) snprintf(buf, cap, "%.1f", v);
    else snprintf(buf, cap, "%.2f", v);
}

/* ---- Horizontal bar chart --------------------------------------------------- */

typedef struct {
    const char *label;
    const char *color;
    double value, lo, hi;     /* hi/lo: NAN for no whisker */
    int failed;               /* draw "failed" instead of a bar */
    const char *note;         /* text after the bar */
} bar_t;

static void hbar_at(FILE *f, const char *title, const bar_t *bars, int n, double ref, const char *ref_label, int left);

static void hbar(FILE *f, const char *title, const bar_t *bars, int n, double ref, const char *ref_label) {
    hbar_at(f, title, bars, n, ref, ref_label, 78);
}

/* `left`: room for the labels, in pixels. */
static void hbar_at(FILE *f, const char *title, const bar_t *bars, int n, double ref, const char *ref_label, int left) {
    const int W = 362 + left, right = 92, top = 22, bh = 16, gap = 6;
    int H = top + n * (bh + gap) + (isfinite(ref) && ref_label ? 30 : 18);
    double max = isfinite(ref) ? ref : 0;
    for (int i = 0; i < n; i++) {
        if (bars[i].failed) continue;
        if (bars[i].value > max) max = bars[i].value;
        if (isfinite(bars[i].hi) && bars[i].hi > max) max = bars[i].hi;
    }
    if (!(max > 0)) max = 1;
    max *= 1.04;
    double pw = W - left - right;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n",
            W, H, W, H);
    fprintf(f, "<text x=\"%d\" y=\"14\" font-weight=\"bold\">", left);
    esc(f, title);
    fprintf(f, "</text>\n");
    double step = nice_step(max, 4);
    for (double t = 0; t <= max; t += step) {
        double x = left + t / max * pw;
        char lab[32];
        /* As many decimals as the step needs: 0, 0.5, 1 or 0, 20, 40. */
        int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
        snprintf(lab, sizeof lab, "%.*f", dec, t);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#e5e7eb\"/>", x, top - 4, x,
                top + n * (bh + gap));
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" fill=\"#6b7280\">%s</text>\n", x,
                top + n * (bh + gap) + 12, lab);
    }
    /* The reference line first, so the bars and their labels sit on top;
     * its label goes under the axis, clear of the title. */
    if (isfinite(ref)) {
        double x = left + ref / max * pw;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#111\" stroke-dasharray=\"3 3\"/>", x,
                top - 4, x, top + n * (bh + gap) + 2);
        if (ref_label) {
            fprintf(f, "<text x=\"%.1f\" y=\"%d\" fill=\"#111\" text-anchor=\"middle\">", x, top + n * (bh + gap) + 24);
            esc(f, ref_label);
            fprintf(f, "</text>");
        }
    }
    for (int i = 0; i < n; i++) {
        const bar_t *b = &bars[i];
        int y = top + i * (bh + gap);
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", left - 6, y + bh - 4);
        esc(f, b->label);
        fprintf(f, "</text>");
        if (b->failed) {
            fprintf(f, "<text x=\"%d\" y=\"%d\" fill=\"#b91c1c\">failed</text>\n", left + 4, y + bh - 4);
            continue;
        }
        double w = b->value / max * pw;
        fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"><title>", left, y,
                w > 0.5 ? w : 0.5, bh, b->color);
        esc(f, b->label);
        fprintf(f, ": %.4g</title></rect>", b->value);
        if (isfinite(b->lo) && isfinite(b->hi) && b->hi > b->lo) {
            double x1 = left + b->lo / max * pw, x2 = left + b->hi / max * pw, ym = y + bh / 2.0;
            fprintf(f, "<path d=\"M%.1f %.1fH%.1fM%.1f %.1fV%.1fM%.1f %.1fV%.1f\" stroke=\"#111\" stroke-width=\"1\"/>",
                    x1, ym, x2, x1, ym - 4, ym + 4, x2, ym - 4, ym + 4);
        }
        double xt = left + (isfinite(b->hi) && b->hi > b->value ? b->hi / max * pw : w) + 4;
        fprintf(f, "<text class=\"v\" x=\"%.1f\" y=\"%d\">", xt, y + bh - 4);
        esc(f, b->note);
        fprintf(f, "</text>\n");
    }
    fprintf(f, "</svg>\n");
}

/* ---- Line chart of memory over the workload's progress ---------------------- */

typedef struct {
    const char *name, *color;
    const hkb_sample_t *s;
    int n;
    int live;                 /* draw the live bytes instead of RSS */
    int bold;
} series_t;

static void linechart(FILE *f, const char *title, const series_t *ser, int ns, const hkb_phase_t *ph, int nph) {
    const int W = 900, H = 360, left = 70, right = 140, top = 28, bottom = 42;
    double xmax = 1, ymax = 1;
    for (int i = 0; i < ns; i++)
        for (int k = 0; k < ser[i].n; k++) {
            double y = (double)(ser[i].live ? ser[i].s[k].live : ser[i].s[k].rss);
            if (ser[i].s[k].step > xmax) xmax = (double)ser[i].s[k].step;
            if (y > ymax) ymax = y;
        }
    ymax *= 1.05;
    double pw = W - left - right, ph_ = H - top - bottom;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n",
            W, H, W, H);
    fprintf(f, "<text x=\"%d\" y=\"16\" font-weight=\"bold\">", left);
    esc(f, title);
    fprintf(f, "</text>\n");
    /* y axis in MiB */
    double ymib = ymax / 1048576.0, st = nice_step(ymib, 5);
    for (double t = 0; t <= ymib; t += st) {
        double y = top + ph_ - t / ymib * ph_;
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#e5e7eb\"/>", left, y, left + pw, y);
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" fill=\"#6b7280\">%.0f MiB</text>\n", left - 4, y + 4, t);
    }
    double sx = nice_step(xmax, 6);
    for (double t = 0; t <= xmax; t += sx) {
        double x = left + t / xmax * pw;
        char lab[32];
        if (t >= 1e6) snprintf(lab, sizeof lab, "%gM", t / 1e6);
        else if (t >= 1e3) snprintf(lab, sizeof lab, "%gK", t / 1e3);
        else snprintf(lab, sizeof lab, "%g", t);
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" fill=\"#6b7280\">%s</text>", x, H - bottom + 14, lab);
    }
    fprintf(f, "<text x=\"%.0f\" y=\"%d\" text-anchor=\"middle\" fill=\"#6b7280\">progress (workload steps: "
               "allocations and frees)</text>\n", left + pw / 2, H - 8);
    for (int i = 0; i < nph; i++) {
        double x = left + ph[i].step / xmax * pw;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"#9ca3af\" stroke-dasharray=\"2 3\"/>", x,
                top, x, top + ph_);
        /* Near the right edge the label goes left of its line, clear of the legend. */
        int near_end = x > left + pw - 40;
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" fill=\"#374151\" font-size=\"10\"%s>", near_end ? x - 2 : x + 2,
                top + 10 + (i % 3) * 11, near_end ? " text-anchor=\"end\"" : "");
        esc(f, ph[i].name);
        fprintf(f, "</text>\n");
    }
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"#9ca3af\"/>\n", left, top, pw, ph_);
    for (int i = 0; i < ns; i++) {
        if (!ser[i].n) continue;
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%s\"%s points=\"", ser[i].color,
                ser[i].bold ? "2.5" : "1.5", ser[i].live ? " stroke-dasharray=\"6 3\"" : "");
        for (int k = 0; k < ser[i].n; k++) {
            double y = (double)(ser[i].live ? ser[i].s[k].live : ser[i].s[k].rss);
            fprintf(f, "%.1f,%.1f ", left + ser[i].s[k].step / xmax * pw, top + ph_ - y / ymax * ph_);
        }
        fprintf(f, "\"/>\n");
        int ly = top + 8 + i * 18;
        fprintf(f, "<line x1=\"%.0f\" y1=\"%d\" x2=\"%.0f\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2.5\"%s/>",
                left + pw + 10, ly, left + pw + 34, ly, ser[i].color, ser[i].live ? " stroke-dasharray=\"6 3\"" : "");
        fprintf(f, "<text x=\"%.0f\" y=\"%d\">", left + pw + 40, ly + 4);
        esc(f, ser[i].name);
        fprintf(f, "</text>\n");
    }
    fprintf(f, "</svg>\n");
}

/* ---- The page --------------------------------------------------------------- */

/* The bars of a summary chart: each allocator's geometric mean of time
 * (k == 0) or peak RSS (k == 1) as a ratio to glibc. Returns the count. */
static int summary_bars(hkb_t *b, int k, bar_t *bars, char (*notes)[32]) {
    int n = 0;
    for (int a = 0; a < b->nalloc; a++) {
        if (!b->alloc[a].ok) continue;
        double v = k ? b->geo[a].rss_vs_glibc : b->geo[a].time_vs_glibc;
        fmt_num(v, notes[n], sizeof notes[n]);
        bars[n] = (bar_t){ b->alloc[a].name, color_of(b->alloc[a].name, a), v, NAN, NAN, !isfinite(v), notes[n] };
        n++;
    }
    return n;
}

static void cell_ratio(FILE *f, double r);

/* ---- Beyond malloc ------------------------------------------------------------ */

static const char *verdict(int m) { return m < 0 ? "not measured" : m ? "met" : "<b class=\"fail\">not met</b>"; }

static void speedup_text(FILE *f, double x) {
    if (!isfinite(x)) fprintf(f, "-");
    else if (x >= 1) fprintf(f, "%.2f&times; faster", x);
    else fprintf(f, "%.2f&times; slower", 1 / x);
}

/* Colour of a row: heapkit's for heapkit's API, the allocator's for
 * malloc/free, one of the others for the other libraries. */
static const char *row_color(const hkb_t *b, int w, int a) {
    static const char *other[] = { "#ea580c", "#0891b2", "#a16207", "#db2777" };
    const hkb_workload_t *wk = &b->work[w];
    if (!strncmp(wk->variant, "hk_", 3)) return color_of("heapkit", a);
    if (!strcmp(wk->variant, "malloc")) return color_of(b->alloc[a].name, a);
    return other[w % 4];
}

static void beyond_html(FILE *f, hkb_t *b) {
    int na = b->nalloc;
    fprintf(f, "<h2 id=\"beyond\">Beyond malloc</h2>\n<p>heapkit's own APIs for memory with a clear structure "
               "(region pools, object caches, heaps moved between threads) against the same work done with "
               "malloc/free under every allocator, and against the libraries C programs use for it (APR pools, "
               "talloc, GLib's g_slice, on the system's glibc malloc). These compare APIs, not allocators: they are "
               "not in the summary or its geometric means. The time is the workload's own timer around its work "
               "(without process start-up), median of the runs, whiskers min..max; \"hk / row\" is heapkit's "
               "time divided by the row's (below 1, green: heapkit's API is faster). Every run of a comparison must print the "
               "same checksum and operation count, or it fails.</p>\n");
    for (int k = 0; k < b->ngroup; k++) {
        hkb_group_t *g = &b->group[k];
        char label[64];
        fprintf(f, "<h3 id=\"beyond-%s\">%s: ", g->name, g->name);
        esc(f, g->title);
        fprintf(f, "</h3>\n<p class=\"desc\">");
        esc(f, g->description);
        fprintf(f, "</p>\n<p>");
        if (g->ours_w >= 0 && isfinite(g->ours_s)) {
            fprintf(f, "<b>%s%s%s: ", b->work[g->ours_w].variant, g->headline ? " " : "", g->headline ? g->headline : "");
            speedup_text(f, g->speedup_vs_glibc);
            fprintf(f, " than malloc/free under glibc</b> (target: %g&times; faster: %s)", g->target_speedup,
                    verdict(g->met_glibc));
            if (g->best_w >= 0) {
                fprintf(f, "; ");
                speedup_text(f, g->speedup_vs_best);
                fprintf(f, " than the fastest other, ");
                esc(f, hkb_beyond_label(b, g->best_w, g->best_a, label, sizeof label));
                if (g->target_vs_best) fprintf(f, " (target: no slower: %s)", verdict(g->met_best));
            }
            if (g->best_api_w >= 0 && g->best_api_w != g->best_w) {
                fprintf(f, "; ");
                speedup_text(f, g->speedup_vs_best_api);
                fprintf(f, " than the fastest other library, ");
                esc(f, hkb_beyond_label(b, g->best_api_w, g->best_api_a, label, sizeof label));
            }
            fprintf(f, ".");
        } else {
            fprintf(f, "<span class=\"fail\">heapkit's variant has no result: targets not measured.</span>");
        }
        fprintf(f, "</p>\n");

        /* The chart of the compared figure. */
        bar_t bars[HKB_MAX_WORKLOADS];
        char notes[HKB_MAX_WORKLOADS][40], labels[HKB_MAX_WORKLOADS][64];
        int n = 0, np = 0;
        char (*pn)[16] = NULL;
        for (int w = 0; w < b->nwork; w++) {
            if (!b->work[w].group || strcmp(b->work[w].group, g->name)) continue;
            for (int a = 0; a < na && n < HKB_MAX_WORKLOADS; a++) {
                hkb_summary_t *s = &b->sum[w * na + a];
                if (!s->present) continue;
                if (!np && s->n_ok && s->nparts) np = s->nparts, pn = s->part_name;
                double v = NAN, lo = NAN, hi = NAN;
                if (s->n_ok && !g->headline) v = s->work.median, lo = s->work.min, hi = s->work.max;
                for (int p = 0; s->n_ok && g->headline && p < s->nparts; p++)
                    if (!strcmp(s->part_name[p], g->headline))
                        v = s->part[p].median / 1000, lo = s->part[p].min / 1000, hi = s->part[p].max / 1000;
                hkb_beyond_label(b, w, a, labels[n], sizeof labels[n]);
                snprintf(notes[n], sizeof notes[n], "%.1f ms", v * 1000);
                bars[n] = (bar_t){ labels[n], row_color(b, w, a), v * 1000, lo * 1000, hi * 1000, !isfinite(v), notes[n] };
                n++;
            }
        }
        char title[96];
        snprintf(title, sizeof title, "%s, milliseconds (lower is better)", g->headline ? g->headline : "time of the work");
        fprintf(f, "<div class=\"charts\">\n");
        hbar_at(f, title, bars, n, NAN, NULL, 120);
        fprintf(f, "</div>\n");

        /* The table. */
        fprintf(f, "<table><tr><th>variant</th>");
        for (int p = 0; p < np; p++) fprintf(f, "<th>%s ms</th>", pn[p]);
        fprintf(f, "<th>time s</th><th>&plusmn;%%</th><th>CPU s</th><th>peak RSS</th><th>hk / row</th>"
                   "<th>runs ok</th></tr>\n");
        for (int w = 0; w < b->nwork; w++) {
            if (!b->work[w].group || strcmp(b->work[w].group, g->name)) continue;
            if (!b->work[w].ok) {
                fprintf(f, "<tr><td>");
                esc(f, b->work[w].variant);
                fprintf(f, "</td><td colspan=\"%d\" class=\"fail\" style=\"text-align:left\">skipped: ", np + 6);
                esc(f, b->work[w].reason);
                fprintf(f, "</td></tr>\n");
                continue;
            }
            for (int a = 0; a < na; a++) {
                hkb_summary_t *s = &b->sum[w * na + a];
                if (!s->present) continue;
                fprintf(f, "<tr><td><span style=\"color:%s\">&#9632;</span> ", row_color(b, w, a));
                esc(f, hkb_beyond_label(b, w, a, label, sizeof label));
                fprintf(f, "</td>");
                if (!s->n_ok) {
                    fprintf(f, "<td colspan=\"%d\" class=\"fail\" style=\"text-align:left\">failed: ", np + 6);
                    esc(f, hkb_pair_error(b, w, a));
                    fprintf(f, "</td></tr>\n");
                    continue;
                }
                for (int p = 0; p < np; p++) {
                    double v = NAN;
                    for (int q = 0; q < s->nparts; q++)
                        if (!strcmp(s->part_name[q], pn[p])) v = s->part[q].median;
                    if (isfinite(v)) fprintf(f, "<td>%.1f</td>", v);
                    else fprintf(f, "<td>-</td>");
                }
                char m[32];
                fprintf(f, "<td>%.3f</td><td>%.0f</td><td>%.3f</td><td>%s</td>", s->work.median, s->work.spread_pct,
                        s->cpu.median, hkb_fmt_bytes(s->rss_kib.median * 1024, m, sizeof m));
                double fig = hkb_beyond_figure(b, g, w, a);
                double hr = isfinite(fig) && g->ours_s > 0 ? g->ours_s / fig : NAN;
                if (w == g->ours_w && a == g->ours_a) fprintf(f, "<td>-</td>");
                else if (hr < 0.1) fprintf(f, "<td style=\"background:#dcfce7\">%.3f</td>", hr); /* (a teardown) */
                else cell_ratio(f, hr);
                fprintf(f, "<td%s>%d/%d</td></tr>\n", s->n_fail ? " class=\"fail\"" : "", s->n_ok, s->n_ok + s->n_fail);
            }
        }
        fprintf(f, "</table>\n<ul class=\"meta\">\n");
        for (int w = 0; w < b->nwork; w++) {
            if (!b->work[w].group || strcmp(b->work[w].group, g->name)) continue;
            fprintf(f, "<li><code>");
            esc(f, b->work[w].variant);
            fprintf(f, "</code>: ");
            esc(f, b->work[w].description);
            fprintf(f, " &middot; <code>%s %s</code></li>\n", b->work[w].program, b->work[w].args);
        }
        fprintf(f, "</ul>\n<p class=\"meta\">");
        if (g->check_runs && g->check_agree == g->check_runs)
            fprintf(f, "Checksum %s (%lld operations) printed by all %d successful runs.", g->check, g->check_ops,
                    g->check_runs);
        else if (g->check_runs)
            fprintf(f, "<span class=\"fail\">Checksum %s (%lld operations) printed by %d of %d runs; the others "
                       "failed.</span>", g->check, g->check_ops, g->check_agree, g->check_runs);
        if (*g->detail) {
            fprintf(f, " ");
            esc(f, g->detail);
            fprintf(f, ".");
        }
        fprintf(f, "</p>\n");
    }
}

/* ---- Diagnostics --------------------------------------------------------------- */

static const char *diag_color[HKB_DIAG_NVARIANTS] = { "#dc2626", "#ea580c", "#7c3aed", "#0f766e", "#2563eb" };

/* "6.31&times;" and the like; "-" when unknown. */
static void slowdown_text(FILE *f, double x) {
    if (!isfinite(x)) fprintf(f, "-");
    else fprintf(f, x < 10 ? "%.2f&times;" : x < 100 ? "%.1f&times;" : "%.0f&times;", x);
}

/* The next value of 1, 2, 5, 10, 20, ... up (dir > 0) or down from v. */
static double step125(double v, int dir) {
    double p = pow(10, floor(log10(v))), m = v / p;
    if (dir > 0) return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
    return (m >= 5 ? 5 : m >= 2 ? 2 : 1) * p;
}

/* Slowdowns against plain heapkit on a log scale: for each program a bar
 * per variant, from 1 (plain heapkit) to its slowdown; the target's bars
 * (debug's 3x, memcheck's 20x) as dashed lines. */
static void slowdown_chart(FILE *f, hkb_t *b) {
    hkb_diag_t *dg = &b->diag;
    const int left = 160, right = 70, top = 40, bh = 12, gap = 3, ggap = 12, W = 860;
    double lo = 0.5, hi = 100;
    int rows = 0;
    for (int k = 0; k < dg->nprog; k++)
        for (int v = 1; v < HKB_DIAG_NVARIANTS; v++) {
            double x = dg->prog[k].slowdown[v];
            if (isfinite(x) && x > 0) {
                if (x * 0.8 < lo) lo = x * 0.8;
                if (x * 1.25 > hi) hi = x * 1.25;
            }
            rows++;
        }
    lo = step125(lo, -1);
    hi = step125(hi, 1);
    int H = top + rows * (bh + gap) + dg->nprog * ggap + 30;
    double pw = W - left - right, l0 = log10(lo), span = log10(hi) - l0;
#define XOF(v) (left + (log10(v) - l0) / span * pw)
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n",
            W, H, W, H);
    fprintf(f, "<text x=\"%d\" y=\"14\" font-weight=\"bold\">slowdown against plain heapkit (time / heapkit's time, "
               "log scale; lower is better)</text>\n", left);
    for (int v = 1, x = left; v < HKB_DIAG_NVARIANTS; v++) {
        fprintf(f, "<rect x=\"%d\" y=\"22\" width=\"10\" height=\"10\" fill=\"%s\"/><text x=\"%d\" y=\"31\">", x,
                diag_color[v], x + 14);
        esc(f, dg->tool[v].label);
        fprintf(f, "</text>");
        x += 30 + 7 * (int)strlen(dg->tool[v].label);
    }
    int bottom = H - 30;
    for (double t = lo; t <= hi * 1.0001; t = step125(t * 1.0001, 1)) {
        double x = XOF(t);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#e5e7eb\"/>", x, top - 4, x, bottom);
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" fill=\"#6b7280\">%g&times;</text>\n", x,
                bottom + 13, t);
    }
    /* plain heapkit, and the target's two bars */
    struct { double at; const char *dash, *color, *label; } ref[] = {
        { 1, "", "#111", "heapkit" }, { dg->debug_max, " stroke-dasharray=\"4 3\"", diag_color[HKB_DIAG_DEBUG], "debug's target" },
        { dg->memcheck_min, " stroke-dasharray=\"4 3\"", diag_color[HKB_DIAG_MEMCHECK], "memcheck's bar" } };
    for (int i = 0; i < 3; i++) {
        double x = XOF(ref[i].at);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"%s\"%s/>", x, top - 4, x, bottom,
                ref[i].color, ref[i].dash);
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" fill=\"%s\" font-size=\"10\">%s</text>\n", x,
                bottom + 25, ref[i].color, ref[i].label);
    }
    int y = top;
    for (int k = 0; k < dg->nprog; k++) {
        hkb_diag_prog_t *p = &dg->prog[k];
        fprintf(f, "<text x=\"4\" y=\"%d\" font-weight=\"bold\">", y + bh - 2);
        esc(f, p->name);
        fprintf(f, "</text>\n");
        for (int v = 1; v < HKB_DIAG_NVARIANTS; v++, y += bh + gap) {
            fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" fill=\"#4b5563\" font-size=\"10\">%s</text>",
                    left - 6, y + bh - 2, dg->tool[v].name);
            double x = p->slowdown[v];
            if (!(isfinite(x) && x > 0)) {
                const char *why, *st = hkb_diag_status(b, p, v, &why);
                fprintf(f, "<text x=\"%.1f\" y=\"%d\" fill=\"#b91c1c\" font-size=\"10\">%s</text>\n", XOF(1) + 4,
                        y + bh - 2, !strcmp(st, "ok") ? "no baseline" : st);
                continue;
            }
            double x1 = XOF(1), x2 = XOF(x);
            fprintf(f, "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"><title>", x1 < x2 ? x1 : x2,
                    y, fabs(x2 - x1) > 0.5 ? fabs(x2 - x1) : 0.5, bh, diag_color[v]);
            esc(f, p->name);
            fprintf(f, " under %s: %.4g&times;</title></rect>", dg->tool[v].label, x);
            fprintf(f, "<text class=\"v\" x=\"%.1f\" y=\"%d\" font-size=\"10\">", (x1 > x2 ? x1 : x2) + 4, y + bh - 2);
            slowdown_text(f, x);
            fprintf(f, "</text>\n");
        }
        y += ggap;
    }
#undef XOF
    fprintf(f, "</svg>\n");
}

static void diag_html(FILE *f, hkb_t *b) {
    hkb_diag_t *dg = &b->diag;
    fprintf(f, "<h2 id=\"diagnostics\">Diagnostics</h2>\n<p>What finding memory bugs costs: the same program, "
               "with the same arguments, on plain heapkit (the baseline), on heapkit's debug library (every check, "
               "its default; the leak report at exit included), on its secure library, under valgrind's memcheck "
               "(on glibc's malloc, which memcheck replaces) and rebuilt with AddressSanitizer. The figure is the "
               "process's wall time, start-up and exit included (what a user waits for), median of %d run%s; the "
               "slowdown is that time divided by plain heapkit's. These are not allocator comparisons: they are "
               "not in the summary or its geometric means.</p>\n",
            dg->runs, dg->runs == 1 ? "" : "s");
    if (*dg->left_out) {
        fprintf(f, "<p class=\"meta\">Quick run: ");
        esc(f, dg->left_out);
        fprintf(f, " left out (seconds of start-up alone under memcheck).</p>\n");
    }
    fprintf(f, "<p><b>Target: debug at most %g&times; plain heapkit where memcheck is %g&times; or more: ",
            dg->debug_max, dg->memcheck_min);
    if (dg->target < 0)
        fprintf(f, "not judged</b> (no program with memcheck at %g&times; or more and a debug figure).</p>\n",
                dg->memcheck_min);
    else {
        fprintf(f, "%s</b>: on the %d program%s where memcheck is %g&times; or more, debug is at most ",
                dg->target ? "met" : "<span class=\"fail\">not met</span>", dg->target_programs,
                dg->target_programs == 1 ? "" : "s", dg->memcheck_min);
        slowdown_text(f, dg->worst_debug);
        fprintf(f, " (");
        esc(f, dg->prog[dg->worst_prog].name);
        fprintf(f, ").</p>\n");
    }
    fprintf(f, "<div class=\"charts\">\n");
    slowdown_chart(f, b);
    fprintf(f, "</div>\n<table><tr><th>program</th>");
    for (int v = 0; v < HKB_DIAG_NVARIANTS; v++) {
        fprintf(f, "<th colspan=\"%d\" style=\"text-align:center\"><span style=\"color:%s\">&#9632;</span> ",
                v ? 2 : 1, diag_color[v]);
        esc(f, dg->tool[v].name);
        fprintf(f, "</th>");
    }
    fprintf(f, "<th>target</th></tr>\n<tr><th></th><th>time s</th>");
    for (int v = 1; v < HKB_DIAG_NVARIANTS; v++) fprintf(f, "<th>time s</th><th>&times;</th>");
    fprintf(f, "<th></th></tr>\n");
    for (int k = 0; k < dg->nprog; k++) {
        hkb_diag_prog_t *p = &dg->prog[k];
        fprintf(f, "<tr><td>");
        esc(f, p->name);
        fprintf(f, "</td>");
        for (int v = 0; v < HKB_DIAG_NVARIANTS; v++) {
            const char *why, *st = hkb_diag_status(b, p, v, &why);
            if (strcmp(st, "ok")) {
                fprintf(f, "<td colspan=\"%d\" class=\"%s\" style=\"text-align:center\" title=\"", v ? 2 : 1,
                        strcmp(st, "failed") ? "meta" : "fail");
                esc(f, why);
                fprintf(f, "\">%s</td>", st);
                continue;
            }
            fprintf(f, "<td>%.3f</td>", p->time_s[v]);
            if (!v) continue;
            fprintf(f, "<td>");
            slowdown_text(f, p->slowdown[v]);
            fprintf(f, "</td>");
        }
        if (p->target >= 0)
            fprintf(f, "<td style=\"background:%s\">%s</td></tr>\n", p->target ? "#dcfce7" : "#fee2e2",
                    p->target ? "met" : "not met");
        else if (p->target_applies == 0)
            fprintf(f, "<td class=\"meta\" title=\"not judged: memcheck under %g&times;\">-</td></tr>\n",
                    dg->memcheck_min);
        else
            fprintf(f, "<td class=\"meta\">not measured</td></tr>\n");
    }
    fprintf(f, "<tr><td><b>geometric mean</b></td><td></td>");
    for (int v = 1; v < HKB_DIAG_NVARIANTS; v++) {
        fprintf(f, "<td></td><td><b>");
        slowdown_text(f, dg->geomean[v]);
        fprintf(f, "</b> (%d)</td>", dg->geomean_n[v]);
    }
    fprintf(f, "<td></td></tr>\n</table>\n<p class=\"meta\">Geometric means: of each variant's slowdowns over "
               "the programs where it ran (their number in brackets). Per program, the target is met where "
               "debug is %g&times; or less and judged only where memcheck is %g&times; or more.</p>\n<ul class=\"meta\">\n",
            dg->debug_max, dg->memcheck_min);
    for (int v = 0; v < HKB_DIAG_NVARIANTS; v++) {
        hkb_diag_tool_t *t = &dg->tool[v];
        fprintf(f, "<li><b>");
        esc(f, t->label);
        fprintf(f, "</b>: ");
        esc(f, t->how);
        if (!t->lib.ok) {
            fprintf(f, " &middot; <span class=\"fail\">skipped: ");
            esc(f, t->lib.reason);
            fprintf(f, "</span>");
        } else if (*t->lib.path) {
            fprintf(f, " &middot; <code>");
            esc(f, t->lib.path);
            fprintf(f, "</code>");
        }
        if (*t->version) {
            fprintf(f, " (");
            esc(f, t->version);
            fprintf(f, ")");
        }
        fprintf(f, "</li>\n");
    }
    for (int k = 0; k < dg->nprog; k++) {
        hkb_diag_prog_t *p = &dg->prog[k];
        const hkb_workload_t *wk = NULL;
        for (int v = 0; v < HKB_DIAG_NVARIANTS && !wk; v++)
            if (p->w[v] >= 0) wk = &b->work[p->w[v]];
        fprintf(f, "<li><code>");
        esc(f, p->name);
        fprintf(f, "</code>: ");
        esc(f, p->description);
        fprintf(f, " (a full run's size)");
        if (wk && wk->real && *wk->command) {
            fprintf(f, " &middot; <code>");
            esc(f, wk->command);
            fprintf(f, "</code>");
        } else if (wk) {
            fprintf(f, " &middot; <code>%s %s --scale %g --threads %d</code>", wk->program, wk->args, p->scale,
                    b->threads);
        }
        for (int v = 0; v < HKB_DIAG_NVARIANTS; v++) {
            const char *why, *st = hkb_diag_status(b, p, v, &why);
            if (!strcmp(st, "ok")) continue;
            fprintf(f, "<br>%s %s: ", dg->tool[v].name, st);
            esc(f, !strncmp(why, "n/a: ", 5) ? why + 5 : why);
        }
        fprintf(f, "</li>\n");
    }
    fprintf(f, "</ul>\n");
}

static void cell_ratio(FILE *f, double r) {
    char b[32];
    fmt_num(r, b, sizeof b);
    /* Shade: green below 1 (better than the reference), red above. */
    const char *bg = !isfinite(r) ? "" : r < 0.95 ? " style=\"background:#dcfce7\"" : r > 1.05 ? " style=\"background:#fee2e2\"" : "";
    fprintf(f, "<td%s>%s</td>", bg, b);
}

int hkb_write_html(hkb_t *b, const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    int na = b->nalloc, quick = !strcmp(b->mode, "quick");
    char buf[64];
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
               "<title>heapkit benchmark%s</title>\n<style>\n"
               "body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#1f2937}\n"
               "h1{margin-bottom:.2em} h2{margin-top:2em;border-bottom:1px solid #e5e7eb} h3{margin-bottom:.2em}\n"
               "table{border-collapse:collapse;font-variant-numeric:tabular-nums;margin:.5em 0}\n"
               "td,th{padding:2px 9px;text-align:right;border-bottom:1px solid #e5e7eb;white-space:nowrap} td:first-child,th:first-child{text-align:left}\n"
               "th{background:#f9fafb}\n"
               ".quick{background:#fef3c7;border:1px solid #d97706;padding:.6em 1em;font-weight:bold}\n"
               ".charts{display:flex;flex-wrap:wrap;gap:.5em 1.5em}\n"
               ".meta{color:#4b5563} .fail{color:#b91c1c} .desc{color:#4b5563;margin:0 0 .5em}\n"
               "svg text{font:11px system-ui,sans-serif}\n"
               "svg text.v{stroke:#fff;stroke-width:3px;paint-order:stroke}\n"
               "code{background:#f3f4f6;padding:0 3px}\n"
               "</style>\n</head>\n<body>\n",
            quick ? " (quick)" : "");
    fprintf(f, "<h1>heapkit benchmark</h1>\n");
    if (quick)
        fprintf(f, "<p class=\"quick\">QUICK RUN: every workload at a tiny size (scale %g). A smoke check of the "
                   "harness and a rough picture; run <code>make bench</code> for figures to draw conclusions from.</p>\n",
                b->scale);
    fprintf(f, "<p class=\"meta\">%s &middot; ", b->started);
    esc(f, b->host);
    if (b->instr_only)
        fprintf(f, "<br>instruction counts only &middot; total %.0f s</p>\n", b->total_wall_s);
    else
        fprintf(f, "<br>mode %s &middot; scale %g &middot; %d runs per workload and allocator (medians shown, whiskers "
                   "min..max) &middot; %d threads &middot; total %.0f s</p>\n",
                b->mode, b->scale, b->runs, b->threads, b->total_wall_s);
    if (!b->instr_only && b->ngroup)
        fprintf(f, "<p>Also in this report: <a href=\"#beyond\">Beyond malloc</a>, heapkit's region pools, object "
                   "caches and moved heaps against malloc/free and other libraries.</p>\n");
    if (!b->instr_only && b->diag.present)
        fprintf(f, "<p>Also in this report: <a href=\"#diagnostics\">Diagnostics</a>, the cost of heapkit's debug and "
                   "secure libraries against valgrind's memcheck and AddressSanitizer.</p>\n");

    fprintf(f, "<h2>Allocators</h2>\n<table><tr><th>allocator</th><th style=\"text-align:left\">library</th></tr>\n");
    for (int a = 0; a < na; a++) {
        hkb_alloc_t *al = &b->alloc[a];
        fprintf(f, "<tr><td><span style=\"color:%s\">&#9632;</span> ", color_of(al->name, a));
        esc(f, al->name);
        fprintf(f, "</td><td style=\"text-align:left\">");
        if (al->ok) esc(f, *al->path ? al->path : "system malloc (no preload)");
        else {
            fprintf(f, "<span class=\"fail\">skipped: ");
            esc(f, al->reason);
            fprintf(f, "</span>");
        }
        fprintf(f, "</td></tr>\n");
    }
    fprintf(f, "</table>\n");

    /* Summary: geometric means. */
    if (b->sum && !b->instr_only && hkb_allocator_workloads(b)) {
        fprintf(f, "<h2>Summary</h2>\n<p>Geometric mean over the workloads of each allocator's median, as a ratio to "
                   "glibc (lower is better; the dashed line is glibc).</p>\n<div class=\"charts\">\n");
        bar_t bars[HKB_MAX_ALLOCS];
        char notes[HKB_MAX_ALLOCS][32];
        for (int k = 0; k < 2; k++) {
            int n = summary_bars(b, k, bars, notes);
            hbar(f, k ? "peak RSS vs glibc (geometric mean)" : "time vs glibc (geometric mean)", bars, n, 1.0, "glibc");
        }
        fprintf(f, "</div>\n<table><tr><th></th><th colspan=\"4\" style=\"text-align:center\">ratio to glibc</th>"
                   "<th colspan=\"3\" style=\"text-align:center\">ratio to the best other</th></tr>\n"
                   "<tr><th>allocator</th><th>time</th><th>peak RSS</th><th>CPU time</th><th>workloads</th>"
                   "<th>time</th><th>peak RSS</th><th>workloads</th></tr>\n");
        for (int a = 0; a < na; a++) {
            if (!b->alloc[a].ok) continue;
            hkb_geomean_t *g = &b->geo[a];
            fprintf(f, "<tr><td>");
            esc(f, b->alloc[a].name);
            fprintf(f, "</td>");
            cell_ratio(f, g->time_vs_glibc);
            cell_ratio(f, g->rss_vs_glibc);
            cell_ratio(f, g->cpu_vs_glibc);
            fprintf(f, "<td>%d</td>", g->n_glibc);
            cell_ratio(f, g->time_vs_best);
            cell_ratio(f, g->rss_vs_best);
            fprintf(f, "<td>%d</td></tr>\n", g->n_best);
        }
        fprintf(f, "</table>\n<p class=\"meta\">\"Best other\": for each workload, the fastest (or smallest) of the "
                   "<em>other</em> allocators; below 1 means better than all of them. CPU time (user + "
                   "system, all threads) is steadier than wall time when the machine is busy.</p>\n");
    }

    /* Instruction counts. */
    if (b->do_instr) {
        fprintf(f, "<h2>Instructions per malloc+free pair</h2>\n");
        if (!b->ninstr) {
            fprintf(f, "<p class=\"fail\">Not measured: ");
            esc(f, b->instr_note);
            fprintf(f, "</p>\n");
        } else {
            fprintf(f, "<p>The fast path, counted by callgrind: a loop of <code>p = malloc(size); free(p)</code> run "
                       "at two lengths; the difference cancels start-up and first refills. Exact and repeatable, unlike "
                       "time on a shared machine. Lower is better. <code>hk_cache</code> is the object caches' pair, <code>p = "
                       "hk_cache_alloc(c); hk_cache_free(c, p)</code>, counted the same way.</p>\n<div class=\"charts\">\n");
            int sizes[8], ns = 0;
            for (int i = 0; i < b->ninstr && ns < 8; i++) {
                int seen = 0;
                for (int k = 0; k < ns; k++) seen |= sizes[k] == b->instr[i].size;
                if (!seen) sizes[ns++] = b->instr[i].size;
            }
            for (int k = 0; k < ns; k++) {
                bar_t bars[HKB_MAX_ALLOCS];
                char notes[HKB_MAX_ALLOCS][32], title[64];
                int n = 0;
                for (int i = 0; i < b->ninstr && n < HKB_MAX_ALLOCS; i++) {
                    hkb_instr_t *in = &b->instr[i];
                    if (in->size != sizes[k]) continue;
                    snprintf(notes[n], sizeof notes[n], "%.1f", in->per_pair);
                    bars[n] = (bar_t){ b->alloc[in->a].name, color_of(b->alloc[in->a].name, in->a), in->per_pair,
                                       NAN, NAN, !in->ok, notes[n] };
                    n++;
                }
                /* heapkit's own pairs (hk_malloc, hk_cache), in its colour. */
                for (int i = 0; i < b->ninstr_api && n < HKB_MAX_ALLOCS; i++) {
                    hkb_instr_t *in = &b->instr_api[i];
                    if (in->size != sizes[k]) continue;
                    snprintf(notes[n], sizeof notes[n], "%.1f", in->per_pair);
                    bars[n] = (bar_t){ in->api, color_of("heapkit", 0), in->per_pair, NAN, NAN, !in->ok, notes[n] };
                    n++;
                }
                snprintf(title, sizeof title, "%d-byte blocks: instructions per pair", sizes[k]);
                hbar(f, title, bars, n, NAN, NULL);
            }
            fprintf(f, "</div>\n<p class=\"meta\">");
            esc(f, b->instr_note);
            fprintf(f, "</p>\n");
        }
    }

    if (b->sum && !b->instr_only && hkb_allocator_workloads(b)) {
        /* Memory over time. */
        int any = 0;
        for (int w = 0; w < b->nwork; w++) {
            series_t ser[HKB_MAX_ALLOCS + 1];
            int ns = 0;
            const hkb_run_t *first = NULL;
            /* (diag-mixed-* print samples too: not an allocator comparison) */
            if (!hkb_in_allocator_table(&b->work[w])) continue;
            for (int a = 0; a < na; a++) {
                hkb_summary_t *s = &b->sum[w * na + a];
                if (!s->n_ok || s->median_run < 0) continue;
                const hkb_run_t *r = &b->run[s->median_run];
                if (r->nsamples < 2) continue;
                if (!first) first = r;
                ser[ns++] = (series_t){ b->alloc[a].name, color_of(b->alloc[a].name, a), r->samples, r->nsamples, 0,
                                        !strcmp(b->alloc[a].name, "heapkit") };
            }
            if (!ns) continue;
            if (!any++)
                fprintf(f, "<h2>Memory over time</h2>\n<p>Resident memory (from <code>/proc/self/statm</code>) "
                           "against the workload's progress, for the run with the median time of each allocator. "
                           "The dashed black line is what the workload itself holds live: the floor. Everything "
                           "above it is the allocator's overhead, fragmentation and memory not given back.</p>\n");
            ser[ns++] = (series_t){ "live bytes", "#111827", first->samples, first->nsamples, 1, 0 };
            char title[128];
            snprintf(title, sizeof title, "%s: resident memory over the run", b->work[w].name);
            fprintf(f, "<h3>");
            esc(f, b->work[w].name);
            fprintf(f, "</h3>\n<p class=\"desc\">");
            esc(f, b->work[w].description);
            fprintf(f, "</p>\n");
            linechart(f, title, ser, ns, first->phases, first->nphases);
        }

        /* Per workload. */
        fprintf(f, "<h2>Workloads</h2>\n<p>Wall time and peak RSS (from <code>wait4()</code>) of each workload "
                   "process: the median bar, the whisker from the fastest to the slowest run.</p>\n");
        for (int w = 0; w < b->nwork; w++) {
            if (!hkb_in_allocator_table(&b->work[w])) continue; /* Beyond malloc, Diagnostics */
            fprintf(f, "<h3 id=\"w-");
            esc(f, b->work[w].name);
            fprintf(f, "\">");
            esc(f, b->work[w].name);
            fprintf(f, "</h3>\n<p class=\"desc\">");
            esc(f, b->work[w].description);
            if (b->work[w].real) {
                fprintf(f, "</p>\n<p class=\"desc\">Real program");
                if (*b->work[w].version) {
                    fprintf(f, " (");
                    esc(f, b->work[w].version);
                    fprintf(f, ")");
                }
                if (*b->work[w].command) {
                    fprintf(f, ": <code>");
                    esc(f, b->work[w].command);
                    fprintf(f, "</code>");
                }
                fprintf(f, "</p>\n");
            } else {
                fprintf(f, " &middot; <code>%s %s</code></p>\n", b->work[w].program, b->work[w].args);
            }
            if (!b->work[w].ok) {
                fprintf(f, "<p class=\"fail\">skipped: ");
                esc(f, b->work[w].reason);
                fprintf(f, "</p>\n");
                continue;
            }
            bar_t tb[HKB_MAX_ALLOCS], mb[HKB_MAX_ALLOCS];
            char tn[HKB_MAX_ALLOCS][40], mn[HKB_MAX_ALLOCS][40];
            int n = 0;
            for (int a = 0; a < na; a++) {
                hkb_summary_t *s = &b->sum[w * na + a];
                if (!s->present) continue;
                int failed = !s->n_ok;
                snprintf(tn[n], sizeof tn[n], "%.3f s", s->wall.median);
                hkb_fmt_bytes(s->rss_kib.median * 1024, mn[n], sizeof mn[n]);
                tb[n] = (bar_t){ b->alloc[a].name, color_of(b->alloc[a].name, a), s->wall.median, s->wall.min,
                                 s->wall.max, failed, tn[n] };
                mb[n] = (bar_t){ b->alloc[a].name, color_of(b->alloc[a].name, a), s->rss_kib.median / 1024,
                                 s->rss_kib.min / 1024, s->rss_kib.max / 1024, failed, mn[n] };
                n++;
            }
            fprintf(f, "<div class=\"charts\">\n");
            hbar(f, "wall time, seconds", tb, n, NAN, NULL);
            hbar(f, "peak RSS, MiB", mb, n, NAN, NULL);
            fprintf(f, "</div>\n<table><tr><th colspan=\"8\"></th><th colspan=\"2\" style=\"text-align:center\">"
                       "/ glibc</th><th colspan=\"2\" style=\"text-align:center\">/ best other</th><th></th></tr>\n"
                       "<tr><th>allocator</th><th>time s</th><th>&plusmn;%%</th><th>CPU s</th>"
                       "<th>peak RSS</th><th>faults</th><th>live peak</th><th>eff.</th><th>time</th>"
                       "<th>RSS</th><th>time</th><th>RSS</th><th>runs ok</th></tr>\n");
            for (int a = 0; a < na; a++) {
                hkb_summary_t *s = &b->sum[w * na + a];
                if (!s->present) continue;
                fprintf(f, "<tr><td>");
                esc(f, b->alloc[a].name);
                fprintf(f, "</td>");
                if (!s->n_ok) {
                    const char *why = hkb_pair_error(b, w, a);
                    fprintf(f, "<td colspan=\"12\" class=\"fail\" style=\"text-align:left\">failed: ");
                    esc(f, why);
                    fprintf(f, "</td></tr>\n");
                    continue;
                }
                char m[32], lp[32];
                fprintf(f, "<td>%.3f</td><td>%.0f</td><td>%.3f</td><td>%s</td><td>%.0f</td><td>%s</td>", s->wall.median,
                        s->wall.spread_pct, s->cpu.median, hkb_fmt_bytes(s->rss_kib.median * 1024, m, sizeof m),
                        s->minflt.median, hkb_fmt_bytes(s->live_peak, lp, sizeof lp));
                fmt_num(s->efficiency, buf, sizeof buf);
                fprintf(f, "<td>%s</td>", buf);
                cell_ratio(f, s->time_vs_glibc);
                cell_ratio(f, s->rss_vs_glibc);
                cell_ratio(f, s->time_vs_best);
                cell_ratio(f, s->rss_vs_best);
                fprintf(f, "<td%s>%d/%d</td></tr>\n", s->n_fail ? " class=\"fail\"" : "", s->n_ok, s->n_ok + s->n_fail);
            }
            fprintf(f, "</table>\n");
            if (b->work[w].real) {
                fprintf(f, "<p class=\"meta\">Every run's output was checked against an untimed run under glibc "
                           "(a difference fails the run). No efficiency: the program's live bytes are unknown.");
                if (b->work[w].real == HKB_REAL_REDIS) {
                    fprintf(f, " Time is redis-benchmark's wall time for all its requests (the client is not "
                               "preloaded); CPU time, peak RSS and faults are the server's alone, from "
                               "<code>wait4()</code> after <code>SHUTDOWN NOSAVE</code>, and include loading and "
                               "checking the runner's data set. Requests per second (median):");
                    const char *sep = " ";
                    for (int a = 0; a < na; a++) {
                        hkb_summary_t *s = &b->sum[w * na + a];
                        if (!s->present || !s->rps.n) continue;
                        fprintf(f, "%s", sep);
                        esc(f, b->alloc[a].name);
                        fprintf(f, " %.0fK", s->rps.median / 1000);
                        sep = ", ";
                    }
                    fprintf(f, ".");
                }
                fprintf(f, "</p>\n");
            }
            for (int a = 0; a < na; a++) {
                hkb_summary_t *s = &b->sum[w * na + a];
                if (!s->present || !isfinite(s->time_vs_twin)) continue;
                char r1[32], r2[32];
                fmt_num(s->time_vs_twin, r1, sizeof r1);
                fmt_num(s->rss_vs_twin, r2, sizeof r2);
                fprintf(f, "<p><b>Against <a href=\"#w-%s\">%s</a> under ", b->work[w].twin, b->work[w].twin);
                esc(f, b->alloc[a].name);
                fprintf(f, "</b>: time &times;%s, peak RSS &times;%s.</p>\n", r1, r2);
            }
        }
    }

    if (b->sum && !b->instr_only && b->ngroup) beyond_html(f, b);
    if (b->sum && !b->instr_only && b->diag.present) diag_html(f, b);

    fprintf(f, "<h2>How to read this</h2>\n<ul>\n"
               "<li>Every workload is a separate process; each allocator other than glibc is put under it with "
               "<code>LD_PRELOAD</code>, and each run checks which library really served <code>malloc</code>.</li>\n"
               "<li>Time is wall-clock time of the whole process; CPU time (user + system, all threads), peak RSS and "
               "minor page faults come from <code>wait4()</code>. Medians over the runs; runs of different allocators "
               "alternate, so drift on the machine spreads over all of them.</li>\n"
               "<li>Faults are minor page faults. Efficiency (eff.) is the workload's own live bytes at their peak divided by peak RSS: 1 would be no "
               "overhead at all. Small workloads have low efficiency for every allocator (the process itself takes "
               "a few MiB).</li>\n"
               "<li>Ratios below 1 (green) are better than the reference, above 1 (red) worse. Differences within "
               "the &plusmn;%% spread are noise.</li>\n"
               "<li>The <code>real-*</code> workloads are real programs from Debian's packages (python3, the "
               "sqlite3 shell, redis-server with redis-benchmark), each under every allocator. Under glibc the "
               "runner preloads <code>libc.so.6</code> itself, so that glibc's malloc serves even a program linked "
               "with another allocator (Debian's redis-server links jemalloc). Their output is checked against "
               "an untimed glibc run; their live bytes are unknown, so they have no efficiency. They count in the "
               "geometric means like the other workloads.</li>\n"
               "<li>The Beyond malloc section compares heapkit's own APIs with malloc/free and with other "
               "libraries on the same work; its figures are the workloads' own timers, and it stays out of the "
               "geometric means.</li>\n"
               "<li>The Diagnostics section runs a few of the workloads (at a smaller scale) and python3 and "
               "sqlite3 under heapkit's debug and secure libraries, memcheck and AddressSanitizer; its figures are "
               "slowdowns against plain heapkit, and it stays out of the geometric means too.</li>\n"
               "<li>The raw figures, every run included, are in <code>bench.json</code> beside this file.</li>\n"
               "</ul>\n</body>\n</html>\n");
    return fclose(f) == 0 ? 0 : -1;
}

/* The two summary charts (geometric means of time and of peak RSS, as
 * ratios to glibc) as standalone SVG files in `dir`, for the README:
 * summary-time.svg and summary-rss.svg. The report's own styles are
 * repeated inside each file, since no page surrounds it. */
int hkb_write_summary_svgs(hkb_t *b, const char *dir) {
    if (!b->sum || b->instr_only || !hkb_allocator_workloads(b)) return 0;
    for (int k = 0; k < 2; k++) {
        bar_t bars[HKB_MAX_ALLOCS];
        char notes[HKB_MAX_ALLOCS][32];
        int n = summary_bars(b, k, bars, notes);
        char *svg = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&svg, &len);
        if (!m) return -1;
        hbar(m, k ? "peak RSS vs glibc (geometric mean, lower is better)"
                  : "time vs glibc (geometric mean, lower is better)", bars, n, 1.0, "glibc");
        fclose(m);
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, k ? "summary-rss.svg" : "summary-time.svg");
        FILE *f = fopen(path, "w");
        if (!f) { free(svg); return -1; }
        char *open_end = strchr(svg, '>');
        if (open_end) {
            fwrite(svg, 1, (size_t)(open_end - svg + 1), f);
            fputs("\n<style>text{font:11px system-ui,sans-serif}"
                  "text.v{stroke:#fff;stroke-width:3px;paint-order:stroke}</style>"
                  "<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>", f);
            fputs(open_end + 1, f);
        } else {
            fputs(svg, f);
        }
        free(svg);
        if (fclose(f) != 0) return -1;
    }
    return 0;
}
