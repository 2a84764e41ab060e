/* hkbench.h: the runner's shared types and the functions each runner file
 * provides. One process, one thread: no locking anywhere in the runner.
 *
 *   main.c     options, allocator discovery, the run schedule, progress
 *   spawn.c    running one child and measuring it (fork, exec, wait4)
 *   stats.c    medians, spreads, ratios, geometric means
 *   realprog.c the real programs: python3, sqlite3, redis-server
 *   beyond.c   the Beyond malloc comparisons (heapkit's pools, caches and
 *              moved heaps against malloc/free and other libraries)
 *   diag.c     the Diagnostics section: heapkit's debug and secure libraries
 *              against memcheck and AddressSanitizer on the same programs
 *   instr.c    instruction counts under callgrind
 *   report.c   the terminal table and the JSON file
 *   html.c     the HTML report with its SVG charts
 *   json.c     a strict JSON parser, to check what report.c wrote
 */
#ifndef HKBENCH_H
#define HKBENCH_H

#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/resource.h>

#define HKB_MAX_ALLOCS    16
#define HKB_MAX_WORKLOADS 96
#define HKB_MAX_PHASES    16
#define HKB_MAX_PARTS     6
#define HKB_MAX_GROUPS    8
#define HKB_MAX_DIAG      8

/* ---- Allocators --------------------------------------------------------- */

typedef struct hkb_alloc {
    char name[32];
    char path[PATH_MAX];      /* the .so to compare; "" for glibc */
    char run_path[PATH_MAX];  /* the private copy of it actually preloaded */
    int ok;                   /* found and proven to serve malloc */
    char reason[512];         /* why it is skipped, when !ok */
    char malloc_from[PATH_MAX]; /* what the probe saw serving malloc */
} hkb_alloc_t;

/* ---- Workloads ---------------------------------------------------------- */

/* What kind of program a workload is: one of ours (workloads/, prints an
 * HKBENCH line) or a real program run by realprog.c. */
enum { HKB_SYNTHETIC = 0, HKB_REAL_PYTHON, HKB_REAL_SQLITE, HKB_REAL_REDIS };

typedef struct hkb_workload {
    const char *name;         /* as shown and as matched by --workloads */
    const char *program;      /* executable next to the runner (real: the
                                 program's name, for display) */
    const char *args;         /* extra arguments (space-separated) */
    const char *only;         /* run only under this allocator, or NULL */
    const char *twin;         /* the workload this one is compared with under
                                 the same allocator (arena-destroy: arena-free) */
    const char *description;  /* one line for the report */
    /* Beyond malloc comparisons only (beyond.c; NULL elsewhere): */
    const char *group;        /* the comparison it belongs to ("pool") */
    const char *variant;      /* the API it uses ("hk_pool", "malloc", "apr") */
    const char *library;      /* the comparator library, for the skip line ("apr") */
    const char *package;      /* the Debian package that provides it */
    /* Diagnostics only (diag.c; NULL and 0 elsewhere): */
    const char *diag_program; /* the program measured ("small-random", "real-sqlite") */
    int diag_variant;         /* how: HKB_DIAG_* (plain heapkit, debug, secure, memcheck, ASan) */
    double scale_factor;      /* its scale is this times the run's (0: the run's scale) */
    int ok;                   /* program present */
    char reason[256];
    int real;                 /* HKB_SYNTHETIC or HKB_REAL_* */
    /* Real programs only (set by hkb_real_prepare): */
    char command[640];        /* the command line, for the report */
    char version[160];        /* the program's own --version */
    char ref_hash[20];        /* hash of the glibc reference run's output */
    char *ref_out;            /* that output (python, sqlite), to show a difference */
    char ref_error[320];      /* why the reference run failed ("" if it did not) */
} hkb_workload_t;

/* ---- One run ------------------------------------------------------------ */

typedef struct hkb_sample {
    long step;
    double t_ms;
    long long rss, live;
} hkb_sample_t;

typedef struct hkb_phase {
    long step;
    char name[24];
} hkb_phase_t;

/* A part of a workload's work timed by the workload (HKBENCH part). */
typedef struct hkb_part {
    char name[16];
    double ms;
} hkb_part_t;

typedef struct hkb_run {
    int w, a, rep;            /* indexes into the workload and allocator tables */
    int done;                 /* ran (or was skipped after earlier failures) */
    int ok;                   /* exit 0, result line seen, right allocator */
    int exit_code;            /* -1 when killed */
    int signal;
    int timed_out;
    char error[320];
    double wall_s, user_s, sys_s, cpu_s;
    long maxrss_kib, minflt, majflt, nvcsw, nivcsw;
    long long ops, live_peak;
    long hwm_kib;
    char malloc_from[PATH_MAX];
    char out_hash[20];        /* real programs: hash of the checked output */
    double rps;               /* real-redis: requests per second; NAN otherwise */
    char detail[200];         /* real programs: a line of specifics (per-command rates);
                                 workloads: their HKBENCH info line */
    double work_s;            /* the workload's own timer (t_ms); NAN if none */
    char check[24];           /* the workload's checksum ("" if none) */
    hkb_part_t part[HKB_MAX_PARTS];
    int nparts;
    hkb_sample_t *samples;
    int nsamples;
    hkb_phase_t phases[HKB_MAX_PHASES];
    int nphases;
} hkb_run_t;

/* ---- Summaries ---------------------------------------------------------- */

typedef struct hkb_stat {
    int n;
    double median, min, max;
    double spread_pct;        /* (max - min) / median, in percent */
} hkb_stat_t;

typedef struct hkb_summary {
    int w, a;
    int present;              /* the pair was scheduled */
    int n_ok, n_fail;
    hkb_stat_t wall, cpu, rss_kib, minflt;
    hkb_stat_t rps;           /* real-redis: requests per second (n = 0 elsewhere) */
    hkb_stat_t work;          /* the workload's own time (n = 0 if it prints none) */
    hkb_stat_t part[HKB_MAX_PARTS];   /* its timed parts, in ms, named as in */
    char part_name[HKB_MAX_PARTS][16];   /* its first successful run */
    int nparts;
    double live_peak;         /* median of what the workload reported; NAN if unknown */
    double efficiency;        /* live_peak / peak RSS (median runs); NAN if unknown */
    double time_vs_glibc, rss_vs_glibc;   /* NAN when glibc has no result */
    double cpu_vs_glibc;                  /* CPU time: steadier than wall time on a busy machine */
    double time_vs_best, rss_vs_best;     /* vs the best *other* allocator */
    double time_vs_twin, rss_vs_twin;     /* vs the twin workload, same allocator */
    int best_time_a, best_rss_a;          /* which one that was; -1 if none */
    int median_run;           /* index in runs[] of the run with median time */
} hkb_summary_t;

typedef struct hkb_geomean {
    int a;
    int n_glibc, n_best;      /* workloads that entered each mean */
    double time_vs_glibc, rss_vs_glibc, cpu_vs_glibc;
    double time_vs_best, rss_vs_best;
} hkb_geomean_t;

typedef struct hkb_instr {
    int a;                    /* the allocator (malloc+free), or -1 */
    const char *api;          /* a = -1: heapkit's pair ("hk_malloc", "hk_cache") */
    int size;
    int ok;
    char error[256];
    long n1, n2;              /* the two pair counts */
    long long ir1, ir2;       /* instructions (callgrind Ir) at n1 and n2 */
    double per_pair;          /* (ir2 - ir1 - loop cost) / (n2 - n1) */
} hkb_instr_t;

/* ---- Beyond malloc (beyond.c) -------------------------------------------- */
/* A comparison of heapkit's own API with malloc/free and other libraries
 * on one workload. Its rows are the summaries of its variant workloads
 * (one per allocator for malloc/free). The figure compared is the
 * workload's own time, or one timed part of it (`headline`). */
typedef struct hkb_group {
    const char *name;         /* "pool": its workloads are named "pool-VARIANT" */
    const char *title;
    const char *description;
    const char *headline;     /* the part the target is about, NULL: the whole work */
    double target_speedup;    /* ours at least this many times faster than glibc's malloc/free */
    int target_vs_best;       /* and no slower than the fastest other row */
    /* Results (hkb_beyond_summarise): workload and allocator of each row
     * named; -1 when there is none. Speedups are other / ours (above 1:
     * ours is faster). */
    int present;              /* at least one of its workloads selected */
    int ours_w, ours_a;       /* heapkit's API */
    int base_w, base_a;       /* malloc/free under glibc */
    int best_w, best_a;       /* the fastest row other than ours */
    int best_api_w, best_api_a;   /* the fastest other library (apr, talloc, g_slice) */
    double ours_s, base_s, best_s, best_api_s;   /* their headline medians, seconds */
    double speedup_vs_glibc, speedup_vs_best, speedup_vs_best_api;
    int met_glibc, met_best;  /* 1 met, 0 not, -1 not measured */
    char check[24];           /* the checksum every run printed (majority) */
    long long check_ops;
    int check_agree, check_runs;  /* runs that printed it, of the successful ones */
    char detail[200];         /* a variant's info line (which GLib serves g_slice) */
} hkb_group_t;

/* ---- Diagnostics (diag.c) ------------------------------------------------ */
/* What finding memory bugs costs: the same program, with the same
 * arguments, on plain heapkit (the baseline), heapkit's debug library,
 * its secure library, valgrind's memcheck (on glibc's malloc) and
 * rebuilt with AddressSanitizer. Each (program, variant) is a workload
 * named diag-PROGRAM-VARIANT, run in heapkit's slot (the three libraries)
 * or glibc's (memcheck, ASan). */
enum { HKB_DIAG_PLAIN = 0, HKB_DIAG_DEBUG, HKB_DIAG_SECURE, HKB_DIAG_MEMCHECK, HKB_DIAG_ASAN, HKB_DIAG_NVARIANTS };

/* One variant: a library to preload (its private copy and its probe, like
 * an allocator's), valgrind, or the ASan builds of the workloads. */
typedef struct hkb_diag_tool {
    const char *name;         /* "debug": the workloads' suffix, the JSON's name */
    const char *label;        /* "heapkit debug" */
    const char *slot;         /* the allocator whose slot its runs take */
    const char *how;          /* how a program runs under it, for the reports */
    hkb_alloc_t lib;          /* path (the library, valgrind), run_path, ok, reason */
    int given;                /* path given on the command line */
    char version[128];        /* valgrind's or the compiler's, for the report */
} hkb_diag_tool_t;

/* One program and its figures (hkb_diag_summarise). */
typedef struct hkb_diag_prog {
    const char *name;         /* "small-random" */
    const char *description;
    int real;                 /* a real program: no ASan build of it */
    double scale;             /* the scale it runs at */
    int w[HKB_DIAG_NVARIANTS];    /* its workload per variant, -1 when there is none */
    double time_s[HKB_DIAG_NVARIANTS];   /* median wall time; NAN when not measured */
    double cpu_s[HKB_DIAG_NVARIANTS];
    double slowdown[HKB_DIAG_NVARIANTS]; /* time / plain heapkit's */
    int target;               /* 1 met, 0 not met, -1 not judged */
    int target_applies;       /* 1 memcheck >= its bar, 0 below, -1 not measured */
} hkb_diag_prog_t;

typedef struct hkb_diag {
    int present;              /* some diagnostics workload selected */
    int runs;                 /* runs per pair in this section */
    char left_out[128];       /* programs not run in quick mode ("": none) */
    hkb_diag_tool_t tool[HKB_DIAG_NVARIANTS];
    hkb_diag_prog_t prog[HKB_MAX_DIAG];
    int nprog;
    /* The target of issue 6: debug at most debug_max times plain heapkit
     * on the programs where memcheck is at least memcheck_min times. */
    double debug_max, memcheck_min;
    int target_programs;      /* programs where it applies (and debug ran) */
    double worst_debug;       /* the largest debug slowdown among them */
    int worst_prog;           /* which program; -1 */
    int target;               /* 1 met, 0 not met, -1 not judged */
    double geomean[HKB_DIAG_NVARIANTS];  /* slowdown, over the programs it ran */
    int geomean_n[HKB_DIAG_NVARIANTS];
} hkb_diag_t;

/* How one run is started: the defaults for the allocator, changed by
 * diag.c for its variants. */
typedef struct hkb_launch {
    const char *program;      /* the executable in bin_dir */
    const char *wrapper[8];   /* argv ahead of the program (valgrind, its options), NULL-terminated */
    const char *preload;      /* LD_PRELOAD ("": none) */
    const char *malloc_file;  /* malloc must come from this file... */
    const char *malloc_name;  /* ...or ("" file) from a path containing this ("/libc", "/libasan") */
    const char *label;        /* who ran, for messages ("heapkit debug") */
    char *env[8];             /* extra environment (hkb_spawn_env), NULL-terminated */
} hkb_launch_t;

/* ---- The whole benchmark ------------------------------------------------ */

typedef struct hkb {
    /* configuration */
    const char *mode;         /* "full", "quick" or "instr" */
    double scale;
    int runs;
    int threads;
    double timeout_s;
    int max_fail;
    int do_instr, instr_only;
    char out_dir[PATH_MAX];
    char bin_dir[PATH_MAX];
    char started[64];         /* UTC, ISO 8601 */
    char host[256];
    int nproc;
    double total_wall_s;

    hkb_alloc_t alloc[HKB_MAX_ALLOCS];
    int nalloc;
    hkb_workload_t work[HKB_MAX_WORKLOADS];
    int nwork;

    hkb_run_t *run;
    int nrun;

    hkb_summary_t *sum;       /* nwork * nalloc, index w * nalloc + a */
    hkb_geomean_t geo[HKB_MAX_ALLOCS];

    hkb_group_t group[HKB_MAX_GROUPS];
    int ngroup;

    hkb_diag_t diag;

    hkb_instr_t *instr;
    int ninstr;
    /* heapkit's own pairs (a = -1), counted when heapkit is:
     * hk_malloc + hk_free, hk_cache_alloc + hk_cache_free */
#define HKB_INSTR_API_MAX 8
    hkb_instr_t instr_api[HKB_INSTR_API_MAX];
    int ninstr_api;
    long long instr_loop1, instr_loop2; /* the bare loop at n1 and n2 */
    char instr_note[256];
} hkb_t;

/* spawn.c */
typedef struct hkb_child {
    int pid;
    int exit_code, signal, timed_out, exec_failed;
    double wall_s;
    struct rusage ru;
    char *out;                /* everything the child printed on stdout */
    size_t out_len;
    char err[1024];           /* the start of its stderr */
    size_t err_len;
} hkb_child_t;
void hkb_spawn_init(void);
int hkb_spawn(char *const argv[], const char *preload, double timeout_s, hkb_child_t *c);
/* The same with extra environment: "NAME=VALUE" sets, "-PREFIX" removes
 * every inherited variable whose name starts with PREFIX. */
int hkb_spawn_env(char *const argv[], const char *preload, char *const extra_env[], double timeout_s,
                  hkb_child_t *c);
/* The environment hkb_spawn_env would give a child (calloc'd array; the
 * strings are ours, environ's or preload_buf). */
char **hkb_spawn_environ(const char *preload, char *const extra[], char *preload_buf, size_t cap);
/* A background process (a server) killed with the runner on SIGINT/TERM/HUP;
 * 0 when there is none. */
void hkb_spawn_guard(int pgid);
void hkb_child_free(hkb_child_t *c);
/* The first line of a child's stderr worth quoting in an error: blank
 * lines and banners (ASan's row of '=') skipped. */
void hkb_first_line(const char *text, char *out, size_t cap);
/* Finds `key=` in an HKBENCH line and copies its value (quotes removed). */
int hkb_kv(const char *line, const char *key, char *val, size_t cap);
int hkb_same_file(const char *a, const char *b);

/* stats.c */
double hkb_median(const double *v, int n);
hkb_stat_t hkb_stat(const double *v, int n);
double hkb_geomean_of(const double *v, int n);
void hkb_summarise(hkb_t *b);

/* realprog.c */
/* --program NAME=PATH (python3, sqlite3, redis-server, redis-benchmark);
 * -1 for an unknown name. */
int hkb_real_set_program(const char *name_eq_path);
/* Finds the programs (sets w->ok, or w->reason with the apt-get line);
 * with `reference`, also writes the inputs and runs the untimed glibc
 * reference run whose output every timed run must match. */
void hkb_real_prepare(hkb_t *b, hkb_workload_t *w, int reference);
/* One timed run under r->a; fills r as run_one does for a workload. */
void hkb_real_run(hkb_t *b, hkb_run_t *r);
/* The same as `l` says: its preload (the file that must serve malloc;
 * "": glibc's), the wrapper ahead of the command, extra environment. */
void hkb_real_run_launch(hkb_t *b, hkb_run_t *r, const hkb_launch_t *l);
/* The kind as shown in the JSON ("synthetic" or "real"). */
const char *hkb_kind(const hkb_workload_t *w);

/* beyond.c */
/* The comparisons' workloads, appended to the runner's table. */
extern const hkb_workload_t hkb_api_workloads[];
extern const int hkb_napi_workloads;
/* Sets up b->group for the selected workloads. */
void hkb_beyond_init(hkb_t *b);
/* After the runs: every successful run of a comparison must print the same
 * checksum and ops; the runs that do not (the minority) fail. */
void hkb_beyond_check(hkb_t *b);
/* After hkb_summarise: the rows, the speedups and the targets. */
void hkb_beyond_summarise(hkb_t *b);
/* The section of the terminal table. */
void hkb_beyond_print(hkb_t *b, FILE *f);
/* The headline median (seconds) of workload w under allocator a; NAN if none. */
double hkb_beyond_figure(const hkb_t *b, const hkb_group_t *g, int w, int a);
/* The row's label: "hk_pool", "malloc (glibc)", "apr". */
const char *hkb_beyond_label(const hkb_t *b, int w, int a, char *buf, size_t cap);

/* diag.c */
/* Its workloads (programs x variants), appended to the runner's table. */
const hkb_workload_t *hkb_diag_workloads(int *n);
/* Whether a diagnostics workload is selected in quick mode (real-python is
 * not: its start-up alone takes seconds under memcheck); the programs left
 * out are noted in b->diag. */
int hkb_diag_in_quick(hkb_t *b, const hkb_workload_t *w);
/* --heapkit-debug, --heapkit-secure, --valgrind: a variant's path. 0, or
 * -1 for another option. */
int hkb_diag_option(hkb_t *b, const char *option, const char *path);
/* Sets up b->diag for the selected workloads: its programs, its runs, the
 * default paths of its libraries (beside `heapkit`) and of valgrind. */
void hkb_diag_init(hkb_t *b, const char *heapkit, int quick);
/* After the allocators and the libraries were probed: which variants can
 * run; prints a line for each one (skipped: why). */
void hkb_diag_tools(hkb_t *b);
/* Sets the workload's ok and reason (a missing program is said once). */
void hkb_diag_prepare(hkb_t *b, int w);
/* How a run of a diagnostics workload is started. */
void hkb_diag_launch(const hkb_t *b, const hkb_workload_t *w, hkb_launch_t *l);
/* After such a run: memcheck's error exit said in words. */
void hkb_diag_after_run(const hkb_t *b, hkb_run_t *r);
/* After hkb_summarise: times, slowdowns, the target, geometric means. */
void hkb_diag_summarise(hkb_t *b);
/* The section of the terminal table. */
void hkb_diag_print(hkb_t *b, FILE *f);
/* A cell of the section: "ok", "failed", "skipped" or "n/a", and why. */
const char *hkb_diag_status(const hkb_t *b, const hkb_diag_prog_t *p, int v, const char **reason);

/* instr.c */
int hkb_instr_run(hkb_t *b);
/* Finds an executable on PATH. */
int hkb_find_in_path(const char *prog, char *out, size_t cap);

/* report.c */
void hkb_print_table(hkb_t *b, FILE *f);
int hkb_write_json(hkb_t *b, const char *path);

/* The error of the first failed run of workload w under allocator a, or
 * "" (for the reports' "failed" cells). */
static inline const char *hkb_pair_error(const hkb_t *b, int w, int a) {
    for (int i = 0; i < b->nrun; i++)
        if (b->run[i].w == w && b->run[i].a == a && b->run[i].done && !b->run[i].ok)
            return b->run[i].error;
    return "";
}

/* A workload of the allocator comparison: not a Beyond malloc variant,
 * not a Diagnostics one (those have sections of their own, and stay out
 * of the allocator table and its geometric means). */
static inline int hkb_in_allocator_table(const hkb_workload_t *w) { return !w->group && !w->diag_program; }

/* Workloads of the allocator comparison selected. */
static inline int hkb_allocator_workloads(const hkb_t *b) {
    int n = 0;
    for (int w = 0; w < b->nwork; w++) n += hkb_in_allocator_table(&b->work[w]);
    return n;
}

/* The scale workload w runs at. */
static inline double hkb_scale_of(const hkb_t *b, const hkb_workload_t *w) {
    return w->scale_factor > 0 ? w->scale_factor * b->scale : b->scale;
}

/* html.c */
int hkb_write_html(hkb_t *b, const char *path);
/* summary-time.svg and summary-rss.svg in dir (for the README). */
int hkb_write_summary_svgs(hkb_t *b, const char *dir);

/* Formatting shared by the reports. */
const char *hkb_fmt_bytes(double bytes, char *buf, size_t cap);

#endif /* HKBENCH_H */
