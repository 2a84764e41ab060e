/* diag.c: the Diagnostics section of the benchmark (issue 6): what finding
 * memory bugs costs. The same program, with the same arguments, runs
 *
 *   heapkit   on plain heapkit (LD_PRELOAD=libheapkit.so): the baseline;
 *   debug     on heapkit's debug library (libheapkit-debug.so, every check,
 *             its default: red zones, quarantine, the leak report at exit);
 *   secure    on heapkit's secure library (libheapkit-secure.so);
 *   memcheck  under `valgrind --tool=memcheck -q --error-exitcode=99`, on
 *             glibc's malloc (which memcheck replaces with its own);
 *   asan      rebuilt with -fsanitize=address (wl_*_asan; the real
 *             programs are Debian's binaries and cannot be: "n/a");
 *
 * and each variant's median wall time is divided by plain heapkit's: its
 * slowdown. The target: debug at most 3 times plain heapkit on the
 * programs where memcheck is 20 times or more.
 *
 * It owns: the programs (a few workloads at a reduced scale, python3 and
 * sqlite3) and their variant workloads (diag-PROGRAM-VARIANT, appended to
 * the runner's table, kept out of the allocator table and its geometric
 * means), where each variant's library or tool is and whether it can run
 * (one skip line each, never a silent pass), how each run is started (a
 * launch: main.c and realprog.c run it), the figures (slowdowns, the
 * target per program and overall, geometric means per variant) and the
 * section of the terminal table. report.c writes the same figures to the
 * JSON, html.c draws them.
 *
 * The three heapkit libraries run in heapkit's slot of the schedule,
 * memcheck and ASan in glibc's: a variant needs that allocator selected.
 * Each run still proves who served malloc: the preloaded library itself,
 * glibc's libc under memcheck (whose replacement is invisible to dlsym),
 * libasan for the ASan builds. The time includes process start-up and
 * exit (valgrind's start, the leak checks of debug, memcheck and ASan):
 * what a user waits for.
 */
#define _GNU_SOURCE
#include "hkbench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef HKB_CC_VERSION
#define HKB_CC_VERSION ""
#endif

/* memcheck's exit status when it reported errors (--error-exitcode): none
 * of the programs uses it. */
#define MEMCHECK_ERROR_EXIT "99"

/* ---- The programs ---------------------------------------------------------- */

typedef struct {
    const char *name, *program, *args;
    int real;                 /* HKB_REAL_* or 0 */
    double scale;             /* times the run's scale */
    int quick;                /* also in quick mode */
    const char *description;  /* the work, at a full run's scale */
} prog_def_t;

/* Scales: plain heapkit takes about 0.05..0.15 s on each (a few seconds
 * under memcheck, which is most of the section's time). real-python's 0.1
 * is its script's smallest size; real-sqlite's 0.03 its script's. */
static const prog_def_t prog_defs[] = {
    { "small-random", "wl_small", "--mode random", 0, 0.05, 1,
      "800K malloc/free pairs of 8..512 B blocks, allocated in rounds and freed in random order" },
    { "mixed", "wl_mixed", "", 0, 0.05, 1,
      "15K blocks of 8 B..1 MiB, every byte written, the live set growing and shrinking (4..12 MiB)" },
    { "larson", "wl_larson", "", 0, 0.05, 1,
      "250K blocks of 16..1024 B swapped into 5000 shared slots by threads, freed by other threads" },
    { "realloc", "wl_realloc", "", 0, 0.05, 1,
      "2000 strings grown by exact-size realloc, arrays grown by doubling" },
    { "arena-free", "wl_arena", "--mode free", 0, 0.1, 1,
      "600K nodes of 24..256 B built into linked structures, then freed one by one" },
    { "real-python", "python3", "rp_python.py", HKB_REAL_PYTHON, 0.1, 0,
      "Debian's python3 (PYTHONMALLOC=malloc): 8 tasks of 2000 rounds of dicts, lists, strings and records; "
      "output checked against glibc's" },
    { "real-sqlite", "sqlite3", ":memory:", HKB_REAL_SQLITE, 0.03, 1,
      "the sqlite3 shell: 2100 + 4200 rows inserted, indexed, queried, updated and deleted; output checked "
      "against glibc's" },
};
enum { NPROG_DEFS = sizeof prog_defs / sizeof prog_defs[0] };

/* ---- The variants ------------------------------------------------------------ */

static const struct {
    const char *name, *label, *slot, *how;
} variant_defs[HKB_DIAG_NVARIANTS] = {
    [HKB_DIAG_PLAIN] = { "heapkit", "heapkit", "heapkit", "LD_PRELOAD=libheapkit.so (the baseline)" },
    [HKB_DIAG_DEBUG] = { "debug", "heapkit debug", "heapkit",
                         "LD_PRELOAD=libheapkit-debug.so, its default checks (red zones, double and invalid "
                         "frees, quarantine, leaks at exit)" },
    [HKB_DIAG_SECURE] = { "secure", "heapkit secure", "heapkit", "LD_PRELOAD=libheapkit-secure.so" },
    [HKB_DIAG_MEMCHECK] = { "memcheck", "valgrind memcheck", "glibc",
                            "valgrind --tool=memcheck -q --error-exitcode=" MEMCHECK_ERROR_EXIT
                            " (on glibc's malloc, which memcheck replaces)" },
    [HKB_DIAG_ASAN] = { "asan", "AddressSanitizer", "glibc",
                        "the program rebuilt with -fsanitize=address (wl_*_asan), nothing preloaded" },
};

/* Why ASan does not apply to a real program. */
static const char asan_na[] =
    "n/a: a Debian binary, which cannot be rebuilt with -fsanitize=address here (preloading libasan "
    "into it would check its malloc and free, not its memory accesses)";

/* ---- Its workloads ------------------------------------------------------------- */

static hkb_workload_t diag_work[NPROG_DEFS * HKB_DIAG_NVARIANTS];
static char diag_name[NPROG_DEFS * HKB_DIAG_NVARIANTS][48];
static char diag_desc[NPROG_DEFS * HKB_DIAG_NVARIANTS][280];
static int ndiag_work = -1;

const hkb_workload_t *hkb_diag_workloads(int *n) {
    if (ndiag_work < 0) {
        ndiag_work = 0;
        for (int p = 0; p < NPROG_DEFS; p++)
            for (int v = 0; v < HKB_DIAG_NVARIANTS; v++) {
                const prog_def_t *d = &prog_defs[p];
                if (d->real && v == HKB_DIAG_ASAN) continue; /* n/a */
                int k = ndiag_work++;
                snprintf(diag_name[k], sizeof diag_name[k], "diag-%s-%s", d->name, variant_defs[v].name);
                snprintf(diag_desc[k], sizeof diag_desc[k], "%s, under %s", d->description, variant_defs[v].label);
                hkb_workload_t *w = &diag_work[k];
                memset(w, 0, sizeof *w);
                w->name = diag_name[k];
                w->program = d->program;
                w->args = d->args;
                w->only = variant_defs[v].slot;
                w->description = diag_desc[k];
                w->diag_program = d->name;
                w->diag_variant = v;
                w->scale_factor = d->scale;
                w->real = d->real;
            }
    }
    *n = ndiag_work;
    return diag_work;
}

static const prog_def_t *def_of(const char *program) {
    for (int p = 0; p < NPROG_DEFS; p++)
        if (!strcmp(prog_defs[p].name, program)) return &prog_defs[p];
    return NULL;
}

int hkb_diag_in_quick(hkb_t *b, const hkb_workload_t *w) {
    const prog_def_t *d = def_of(w->diag_program);
    if (d && d->quick) return 1;
    /* Noted once per program. */
    hkb_diag_t *dg = &b->diag;
    if (!strstr(dg->left_out, w->diag_program)) {
        size_t l = strlen(dg->left_out);
        snprintf(dg->left_out + l, sizeof dg->left_out - l, "%s%s", l ? ", " : "", w->diag_program);
    }
    return 0;
}

int hkb_diag_option(hkb_t *b, const char *option, const char *path) {
    int v = !strcmp(option, "--heapkit-debug")    ? HKB_DIAG_DEBUG
            : !strcmp(option, "--heapkit-secure") ? HKB_DIAG_SECURE
            : !strcmp(option, "--valgrind")       ? HKB_DIAG_MEMCHECK
                                                  : -1;
    if (v < 0) return -1;
    snprintf(b->diag.tool[v].lib.path, sizeof b->diag.tool[v].lib.path, "%s", path);
    b->diag.tool[v].given = 1;
    return 0;
}

/* ---- Set-up -------------------------------------------------------------------- */

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int alloc_index(const hkb_t *b, const char *name) {
    for (int a = 0; a < b->nalloc; a++)
        if (!strcmp(b->alloc[a].name, name)) return a;
    return -1;
}

/* A heapkit library beside the plain one (build/libheapkit-debug.so). */
static void library_beside(hkb_diag_tool_t *t, const char *heapkit, const char *file, const char *built_by) {
    hkb_alloc_t *lib = &t->lib;
    if (!t->given) {
        if (!heapkit || !*heapkit || !strcmp(heapkit, "none")) {
            snprintf(lib->reason, sizeof lib->reason, "no libheapkit.so given (--heapkit PATH), so none beside it");
            return;
        }
        const char *slash = strrchr(heapkit, '/');
        snprintf(lib->path, sizeof lib->path, "%.*s%s", slash ? (int)(slash - heapkit + 1) : 0, heapkit, file);
    }
    if (is_file(lib->path)) lib->ok = 1;
    else if (t->given) snprintf(lib->reason, sizeof lib->reason, "%.400s not found", lib->path);
    else snprintf(lib->reason, sizeof lib->reason, "%.400s not built yet (make build; %s)", lib->path, built_by);
}

void hkb_diag_init(hkb_t *b, const char *heapkit, int quick) {
    hkb_diag_t *dg = &b->diag;
    dg->nprog = 0;
    dg->present = 0;
    for (int w = 0; w < b->nwork; w++) dg->present |= b->work[w].diag_program != NULL;
    if (b->instr_only) dg->present = 0; /* (no workload runs) */
    dg->runs = b->runs < (quick ? 1 : 3) ? b->runs : quick ? 1 : 3;
    dg->debug_max = 3;
    dg->memcheck_min = 20;
    dg->target = -1;
    dg->worst_prog = -1;
    dg->worst_debug = NAN;
    for (int v = 0; v < HKB_DIAG_NVARIANTS; v++) {
        hkb_diag_tool_t *t = &dg->tool[v];
        t->name = variant_defs[v].name;
        t->label = variant_defs[v].label;
        t->slot = variant_defs[v].slot;
        t->how = variant_defs[v].how;
        snprintf(t->lib.name, sizeof t->lib.name, "%s%s", v == HKB_DIAG_PLAIN ? "" : "heapkit-",
                 v == HKB_DIAG_PLAIN ? "heapkit" : t->name);
        dg->geomean[v] = NAN;
    }
    if (!dg->present) return;
    library_beside(&dg->tool[HKB_DIAG_DEBUG], heapkit, "libheapkit-debug.so", "cmake/debug.cmake builds it");
    library_beside(&dg->tool[HKB_DIAG_SECURE], heapkit, "libheapkit-secure.so", "cmake/secure.cmake builds it");
    hkb_diag_tool_t *vg = &dg->tool[HKB_DIAG_MEMCHECK];
    if (vg->given ? access(vg->lib.path, X_OK) == 0 : hkb_find_in_path("valgrind", vg->lib.path, sizeof vg->lib.path))
        vg->lib.ok = 1;
    else
        snprintf(vg->lib.reason, sizeof vg->lib.reason, "%.400s%snot installed (apt-get install valgrind)",
                 vg->given ? vg->lib.path : "", vg->given ? " not found: " : "");
    snprintf(dg->tool[HKB_DIAG_ASAN].version, sizeof dg->tool[HKB_DIAG_ASAN].version, "%s", HKB_CC_VERSION);
    dg->tool[HKB_DIAG_ASAN].lib.ok = 1; /* (decided by hkb_diag_tools, from the programs built) */

    /* The programs, in the table's order. */
    for (int p = 0; p < NPROG_DEFS && dg->nprog < HKB_MAX_DIAG; p++) {
        hkb_diag_prog_t *x = &dg->prog[dg->nprog];
        memset(x, 0, sizeof *x);
        int any = 0;
        for (int v = 0; v < HKB_DIAG_NVARIANTS; v++) {
            x->w[v] = -1;
            x->time_s[v] = x->cpu_s[v] = x->slowdown[v] = NAN;
            for (int w = 0; w < b->nwork; w++)
                if (b->work[w].diag_program && !strcmp(b->work[w].diag_program, prog_defs[p].name) &&
                    b->work[w].diag_variant == v)
                    x->w[v] = w, any = 1;
        }
        if (!any) continue;
        x->name = prog_defs[p].name;
        x->description = prog_defs[p].description;
        x->real = prog_defs[p].real;
        x->scale = prog_defs[p].scale * b->scale;
        x->target = x->target_applies = -1;
        dg->nprog++;
    }
}

/* The allocator a variant's runs take the slot of: ok, or why not. */
static int slot_ok(const hkb_t *b, const hkb_diag_tool_t *t, char *why, size_t cap) {
    int a = alloc_index(b, t->slot);
    if (a < 0) {
        snprintf(why, cap, "its runs take %s's place, and %s is not among the allocators (--allocators)", t->slot,
                 t->slot);
        return 0;
    }
    if (!b->alloc[a].ok) {
        snprintf(why, cap, "its runs take %s's place, and %s is skipped: %.300s", t->slot, t->slot, b->alloc[a].reason);
        return 0;
    }
    return 1;
}

void hkb_diag_tools(hkb_t *b) {
    hkb_diag_t *dg = &b->diag;
    int hk = alloc_index(b, "heapkit");
    hkb_diag_tool_t *plain = &dg->tool[HKB_DIAG_PLAIN];
    if (hk >= 0) {
        snprintf(plain->lib.path, sizeof plain->lib.path, "%s", b->alloc[hk].path);
        snprintf(plain->lib.run_path, sizeof plain->lib.run_path, "%s", b->alloc[hk].run_path);
        snprintf(plain->lib.malloc_from, sizeof plain->lib.malloc_from, "%s", b->alloc[hk].malloc_from);
    }
    plain->lib.ok = 1;
    /* memcheck: its version (which also proves it starts). */
    hkb_diag_tool_t *vg = &dg->tool[HKB_DIAG_MEMCHECK];
    if (vg->lib.ok) {
        char *argv[] = { vg->lib.path, "--version", NULL };
        hkb_child_t c;
        if (hkb_spawn(argv, "", 30, &c) != 0 || c.exit_code != 0 || !c.out || strncmp(c.out, "valgrind", 8)) {
            char first[200];
            hkb_first_line(c.err, first, sizeof first);
            vg->lib.ok = 0;
            snprintf(vg->lib.reason, sizeof vg->lib.reason, "%.300s --version failed%s%.150s", vg->lib.path,
                     *first ? ": " : "", first);
        } else {
            snprintf(vg->version, sizeof vg->version, "%.*s", (int)strcspn(c.out, "\n"), c.out);
        }
        hkb_child_free(&c);
    }
    /* ASan: built when the compiler could (CMake's check); none of the
     * programs built means it could not. */
    hkb_diag_tool_t *as = &dg->tool[HKB_DIAG_ASAN];
    int asan_wanted = 0, asan_built = 0;
    for (int w = 0; w < b->nwork; w++) {
        const hkb_workload_t *wk = &b->work[w];
        if (!wk->diag_program || wk->diag_variant != HKB_DIAG_ASAN) continue;
        char prog[PATH_MAX + 48];
        snprintf(prog, sizeof prog, "%s/%s_asan", b->bin_dir, wk->program);
        asan_wanted = 1;
        asan_built |= access(prog, X_OK) == 0;
    }
    if (asan_wanted && !asan_built) {
        as->lib.ok = 0;
        snprintf(as->lib.reason, sizeof as->lib.reason,
                 "the wl_*_asan programs are not built: the compiler could not build with -fsanitize=address when "
                 "the bench was configured (Debian's gcc has it: apt-get install gcc; then make build)");
    }
    snprintf(as->lib.path, sizeof as->lib.path, "%s", b->bin_dir);

    printf("diagnostics: %d program%s, %d run%s of each variant\n", dg->nprog, dg->nprog == 1 ? "" : "s", dg->runs,
           dg->runs == 1 ? "" : "s");
    if (*dg->left_out) printf("diagnostics: quick run: %s left out (seconds of start-up alone under memcheck)\n", dg->left_out);
    for (int v = 0; v < HKB_DIAG_NVARIANTS; v++) {
        hkb_diag_tool_t *t = &dg->tool[v];
        int used = 0;
        for (int w = 0; w < b->nwork; w++) used |= b->work[w].diag_program && b->work[w].diag_variant == v;
        if (!used) continue;
        char why[400];
        if (t->lib.ok && !slot_ok(b, t, why, sizeof why)) {
            t->lib.ok = 0;
            snprintf(t->lib.reason, sizeof t->lib.reason, "%s", why);
        }
        if (!t->lib.ok) {
            printf("skipping %s: %s\n", t->label, t->lib.reason);
            continue;
        }
        if (v == HKB_DIAG_ASAN) printf("diagnostics: %-17s wl_*_asan in %s%s%s\n", t->label, b->bin_dir,
                                       *t->version ? ", " : "", t->version);
        else printf("diagnostics: %-17s %s%s%s%s\n", t->label, t->lib.path, *t->version ? " (" : "", t->version,
                    *t->version ? ")" : "");
    }
    fflush(stdout);
}

void hkb_diag_prepare(hkb_t *b, int w) {
    hkb_workload_t *wk = &b->work[w];
    const hkb_diag_tool_t *t = &b->diag.tool[wk->diag_variant];
    wk->ok = 0;
    if (!t->lib.ok) {
        /* Said once, by hkb_diag_tools (truncated to the workload's room). */
        size_t n = strlen(t->lib.reason) < sizeof wk->reason ? strlen(t->lib.reason) : sizeof wk->reason - 1;
        memcpy(wk->reason, t->lib.reason, n);
        wk->reason[n] = 0;
        return;
    }
    if (wk->real) {
        hkb_real_prepare(b, wk, 1);
    } else {
        char prog[PATH_MAX + 48];
        snprintf(prog, sizeof prog, "%s/%s%s", b->bin_dir, wk->program, wk->diag_variant == HKB_DIAG_ASAN ? "_asan" : "");
        wk->ok = access(prog, X_OK) == 0;
        if (!wk->ok)
            snprintf(wk->reason, sizeof wk->reason, "%s%s not built", wk->program,
                     wk->diag_variant == HKB_DIAG_ASAN ? "_asan" : "");
    }
    if (wk->ok) return;
    /* A missing program: said once for all its variants. */
    for (int o = 0; o < w; o++)
        if (b->work[o].diag_program && !strcmp(b->work[o].diag_program, wk->diag_program) &&
            !strcmp(b->work[o].reason, wk->reason))
            return;
    printf("skipping diagnostics of %s%s%s: %s\n", wk->diag_program,
           wk->diag_variant == HKB_DIAG_ASAN ? " under " : "",
           wk->diag_variant == HKB_DIAG_ASAN ? t->label : "", wk->reason);
}

/* ---- Runs ------------------------------------------------------------------------ */

static char *const clean_env[] = { "-HEAPKIT_", "-ASAN_OPTIONS", "-LSAN_OPTIONS", "-VALGRIND_OPTS", NULL };

void hkb_diag_launch(const hkb_t *b, const hkb_workload_t *w, hkb_launch_t *l) {
    static char asan_program[96];
    const hkb_diag_tool_t *t = &b->diag.tool[w->diag_variant];
    l->label = t->label;
    /* Every variant on its defaults: nothing inherited picks other checks
     * (HEAPKIT_DEBUG, ASAN_OPTIONS, VALGRIND_OPTS). */
    for (int i = 0; clean_env[i]; i++) l->env[i] = clean_env[i];
    switch (w->diag_variant) {
    case HKB_DIAG_PLAIN:
    case HKB_DIAG_DEBUG:
    case HKB_DIAG_SECURE:
        l->preload = l->malloc_file = t->lib.run_path;
        break;
    case HKB_DIAG_MEMCHECK:
        l->wrapper[0] = t->lib.path;
        l->wrapper[1] = "--tool=memcheck";
        l->wrapper[2] = "-q";
        l->wrapper[3] = "--error-exitcode=" MEMCHECK_ERROR_EXIT;
        l->wrapper[4] = NULL;
        /* memcheck replaces glibc's malloc by redirecting its code:
         * dlsym still names libc. */
        l->preload = l->malloc_file = "";
        l->malloc_name = "/libc";
        break;
    case HKB_DIAG_ASAN:
        snprintf(asan_program, sizeof asan_program, "%s_asan", w->program);
        l->program = asan_program;
        l->preload = l->malloc_file = "";
        l->malloc_name = "/libasan";
        break;
    }
}

void hkb_diag_after_run(const hkb_t *b, hkb_run_t *r) {
    const hkb_workload_t *w = &b->work[r->w];
    const char *exit_msg = "exit " MEMCHECK_ERROR_EXIT;
    if (r->ok || w->diag_variant != HKB_DIAG_MEMCHECK || strncmp(r->error, exit_msg, strlen(exit_msg))) return;
    char what[sizeof r->error];
    const char *rest = r->error + strlen(exit_msg);
    snprintf(what, sizeof what, "memcheck reported errors (exit %s)%s", MEMCHECK_ERROR_EXIT, rest);
    snprintf(r->error, sizeof r->error, "%s", what);
}

/* ---- Figures ------------------------------------------------------------------------ */

static const hkb_summary_t *summary_of(const hkb_t *b, const hkb_diag_prog_t *p, int v) {
    int w = p->w[v];
    if (!b->sum || w < 0 || !b->work[w].ok) return NULL;
    int a = alloc_index(b, b->work[w].only);
    if (a < 0) return NULL;
    const hkb_summary_t *s = &b->sum[w * b->nalloc + a];
    return s->present ? s : NULL;
}

void hkb_diag_summarise(hkb_t *b) {
    hkb_diag_t *dg = &b->diag;
    if (!dg->present) return;
    double v_slow[HKB_DIAG_NVARIANTS][HKB_MAX_DIAG];
    int n[HKB_DIAG_NVARIANTS] = { 0 };
    dg->target_programs = 0;
    dg->worst_debug = NAN;
    dg->worst_prog = -1;
    for (int k = 0; k < dg->nprog; k++) {
        hkb_diag_prog_t *p = &dg->prog[k];
        for (int v = 0; v < HKB_DIAG_NVARIANTS; v++) {
            const hkb_summary_t *s = summary_of(b, p, v);
            p->time_s[v] = s && s->n_ok ? s->wall.median : NAN;
            p->cpu_s[v] = s && s->n_ok ? s->cpu.median : NAN;
        }
        double base = p->time_s[HKB_DIAG_PLAIN];
        for (int v = 0; v < HKB_DIAG_NVARIANTS; v++) {
            p->slowdown[v] = base > 0 && p->time_s[v] > 0 ? p->time_s[v] / base : NAN;
            if (isfinite(p->slowdown[v])) v_slow[v][n[v]++] = p->slowdown[v];
        }
        double mc = p->slowdown[HKB_DIAG_MEMCHECK], dbg = p->slowdown[HKB_DIAG_DEBUG];
        p->target_applies = isfinite(mc) ? mc >= dg->memcheck_min : -1;
        p->target = p->target_applies == 1 && isfinite(dbg) ? dbg <= dg->debug_max : -1;
        if (p->target >= 0) {
            dg->target_programs++;
            if (!(dbg <= dg->worst_debug)) dg->worst_debug = dbg, dg->worst_prog = k;
        }
    }
    dg->target = dg->target_programs ? dg->worst_debug <= dg->debug_max : -1;
    for (int v = 0; v < HKB_DIAG_NVARIANTS; v++) {
        dg->geomean[v] = hkb_geomean_of(v_slow[v], n[v]);
        dg->geomean_n[v] = n[v];
    }
}

const char *hkb_diag_status(const hkb_t *b, const hkb_diag_prog_t *p, int v, const char **reason) {
    int w = p->w[v];
    *reason = "";
    if (w < 0) {
        if (v == HKB_DIAG_ASAN && p->real) {
            *reason = asan_na;
            return "n/a";
        }
        *reason = "not selected (--workloads)";
        return "skipped";
    }
    if (!b->work[w].ok) {
        *reason = b->work[w].reason;
        return "skipped";
    }
    const hkb_summary_t *s = summary_of(b, p, v);
    if (!s || !s->n_ok) {
        int a = alloc_index(b, b->work[w].only);
        *reason = a >= 0 ? hkb_pair_error(b, w, a) : "";
        return "failed";
    }
    return "ok";
}

/* ---- The terminal section ----------------------------------------------------------- */

/* "6.31x", "70.1x", "123x"; "-" when unknown. */
static const char *times(double x, char *buf, size_t cap) {
    if (!isfinite(x)) snprintf(buf, cap, "-");
    else if (x < 10) snprintf(buf, cap, "%.2fx", x);
    else if (x < 100) snprintf(buf, cap, "%.1fx", x);
    else snprintf(buf, cap, "%.0fx", x);
    return buf;
}

static const char *verdict(int t) { return t < 0 ? "not judged" : t ? "met" : "NOT met"; }

void hkb_diag_print(hkb_t *b, FILE *f) {
    hkb_diag_t *dg = &b->diag;
    if (!dg->present || !b->sum) return;
    char x1[32], x2[32];
    fprintf(f, "\n== Diagnostics: what finding memory bugs costs\n"
               "The same program, same arguments: plain heapkit (the baseline), heapkit's debug library (every\n"
               "check; its leak report at exit included), its secure library, valgrind's memcheck (on glibc's\n"
               "malloc), the program rebuilt with AddressSanitizer. time: the process's wall time, start-up\n"
               "and exit included, median of %d run%s; xN: its time / plain heapkit's. Not in the geometric\n"
               "means of the allocator table.\n",
            dg->runs, dg->runs == 1 ? "" : "s");
    if (*dg->left_out) fprintf(f, "quick run: %s left out (seconds of start-up alone under memcheck)\n", dg->left_out);
    /* Each name over its cell: a time and a slowdown (plain heapkit: a time). */
    fprintf(f, "\n%-13s %9s %6s", "program", dg->tool[HKB_DIAG_PLAIN].name, "");
    for (int v = 1; v < HKB_DIAG_NVARIANTS; v++) fprintf(f, " %16s", dg->tool[v].name);
    fprintf(f, "  target\n");
    for (int k = 0; k < dg->nprog; k++) {
        hkb_diag_prog_t *p = &dg->prog[k];
        fprintf(f, "%-13s", p->name);
        for (int v = 0; v < HKB_DIAG_NVARIANTS; v++) {
            const char *why, *st = hkb_diag_status(b, p, v, &why);
            if (strcmp(st, "ok")) {
                fprintf(f, " %16s", !strcmp(st, "failed") ? "FAILED" : st);
                continue;
            }
            fprintf(f, " %7.3f s %6s", p->time_s[v], v == HKB_DIAG_PLAIN ? "" : times(p->slowdown[v], x1, sizeof x1));
        }
        if (p->target >= 0) fprintf(f, "  %s\n", verdict(p->target));
        else if (p->target_applies == 0) fprintf(f, "  - (memcheck %s)\n", times(p->slowdown[HKB_DIAG_MEMCHECK], x1, sizeof x1));
        else fprintf(f, "  not measured\n");
    }
    fprintf(f, "%-13s %16s", "geomean", "");
    for (int v = 1; v < HKB_DIAG_NVARIANTS; v++) {
        char cell[40];
        if (dg->geomean_n[v]) snprintf(cell, sizeof cell, "%s (%d)", times(dg->geomean[v], x1, sizeof x1), dg->geomean_n[v]);
        else snprintf(cell, sizeof cell, "-");
        fprintf(f, " %16s", cell);
    }
    fprintf(f, "\n(geomean: of the slowdowns over the programs where the variant ran, their number in brackets)\n");
    fprintf(f, "target: debug <= %gx plain heapkit where memcheck >= %gx: ", dg->debug_max, dg->memcheck_min);
    if (dg->target < 0)
        fprintf(f, "not judged (no program with memcheck at %gx or more and a debug figure)\n", dg->memcheck_min);
    else
        fprintf(f, "%s: on the %d program%s where memcheck is %gx or more, debug is at most %s (%s)\n",
                verdict(dg->target), dg->target_programs, dg->target_programs == 1 ? "" : "s", dg->memcheck_min,
                times(dg->worst_debug, x2, sizeof x2), dg->prog[dg->worst_prog].name);
    /* Why cells are empty: each reason once per variant. */
    for (int v = 0; v < HKB_DIAG_NVARIANTS; v++)
        for (int k = 0; k < dg->nprog; k++) {
            const char *why, *st = hkb_diag_status(b, &dg->prog[k], v, &why);
            if (!strcmp(st, "ok")) continue;
            int said = 0;
            for (int o = 0; o < k; o++) {
                const char *why2, *st2 = hkb_diag_status(b, &dg->prog[o], v, &why2);
                said |= !strcmp(st, st2) && !strcmp(why, why2);
            }
            if (said) continue;
            fprintf(f, "%s %s", dg->tool[v].name, !strcmp(st, "failed") ? "FAILED" : st);
            const char *sep = " on ";
            for (int o = k; o < dg->nprog; o++) {
                const char *why2, *st2 = hkb_diag_status(b, &dg->prog[o], v, &why2);
                if (!strcmp(st, st2) && !strcmp(why, why2)) fprintf(f, "%s%s", sep, dg->prog[o].name), sep = ", ";
            }
            /* (n/a carries its own "n/a: ") */
            fprintf(f, ": %s\n", !strncmp(why, "n/a: ", 5) ? why + 5 : why);
        }
}
