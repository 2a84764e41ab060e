/* main.c: hkbench, the comparison benchmark runner. It owns the command
 * line, finding the allocators (glibc is the system malloc; the others are
 * shared objects put under each workload with LD_PRELOAD), proving that
 * each one really serves malloc, the run schedule and the progress lines.
 *
 * Libraries: each preloaded .so is copied to a private directory at the
 * start and the copy is what the workloads load. A rebuild of the original
 * during the run (another `make build` in the same tree: seen to turn one
 * run of seven into a different allocator) then cannot change what is
 * measured halfway through.
 *
 * Real programs (python3, sqlite3, redis-server: realprog.c) are in the
 * same table and schedule; realprog.c runs and checks them. The Beyond
 * malloc comparisons (beyond.c) add their variants to the table; the
 * variants of one comparison are scheduled as one block, rotated together.
 * So do the Diagnostics section's (diag.c): the variants of one program
 * are a block, and diag.c says how each of them is started (a launch:
 * the program, a wrapper such as valgrind, the library to preload, the
 * object that must serve malloc).
 *
 * Schedule: for each repetition, every workload under every allocator, the
 * allocator order rotated from one workload and repetition to the next:
 * drift on a shared machine (another job starting, thermal throttling)
 * then spreads over all allocators instead of landing on one.
 */
#define _GNU_SOURCE
#include "hkbench.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#ifndef HKB_MULTIARCH
#define HKB_MULTIARCH ""
#endif
#ifndef HKB_HEAPKIT_DEFAULT
#define HKB_HEAPKIT_DEFAULT ""
#endif

/* ---- The workloads -------------------------------------------------------- */

/* name, program, extra arguments, only under, twin, description. */
#define WL(n, p, a, o, t, d) { .name = n, .program = p, .args = a, .only = o, .twin = t, .description = d }
#define RP(n, p, a, o, t, d, k) { .name = n, .program = p, .args = a, .only = o, .twin = t, .description = d, .real = k }
static const hkb_workload_t workloads[] = {
    WL("small-lifo", "wl_small", "--mode lifo", NULL, NULL,
      "8..512 B blocks allocated in rounds, freed newest first (LIFO)"),
    WL("small-fifo", "wl_small", "--mode fifo", NULL, NULL,
      "8..512 B blocks allocated in rounds, freed oldest first (FIFO)"),
    WL("small-random", "wl_small", "--mode random", NULL, NULL,
      "8..512 B blocks allocated in rounds, freed in random order"),
    WL("mixed", "wl_mixed", "", NULL, NULL,
      "8 B..1 MiB blocks, live set growing and shrinking in phases (32/96/16/64/8 MiB)"),
    WL("larson", "wl_larson", "", NULL, NULL,
      "Larson server: threads replace random blocks in shared slots, 4 thread generations"),
    WL("prodcons", "wl_prodcons", "", NULL, NULL,
      "producer/consumer pairs: every block is freed by another thread"),
    WL("threads", "wl_threads", "", NULL, NULL,
      "10000 short-lived threads; each frees blocks left by earlier threads"),
    WL("realloc", "wl_realloc", "", NULL, NULL,
      "strings grown by exact-size realloc, arrays by doubling (up to 4 MiB)"),
    WL("large", "wl_large", "--mode random", NULL, NULL,
      "64 KiB..64 MiB blocks, up to 8 live per thread, every page touched"),
    WL("large-cycle", "wl_large", "--mode cycle", NULL, NULL,
      "free and reallocate 2..8 MiB blocks in a loop, every page touched"),
    WL("falseshare", "wl_falseshare", "", NULL, NULL,
      "threads write small blocks hard: passive (handed-out) and active false sharing"),
    WL("frag", "wl_frag", "", NULL, NULL,
      "fill, free every other block, allocate larger ones, release, refill, idle: RSS over time"),
    WL("arena-free", "wl_arena", "--mode free", NULL, NULL,
      "build 64K-node structures and free() every node one by one"),
    WL("arena-destroy", "wl_arena_hk", "--mode destroy", "heapkit", "arena-free",
      "the same structures in an explicit heap, released by one hk_heap_destroy()"),
    /* Real programs (realprog.c): skipped, with the apt-get line, when the
     * program is not installed. */
    RP("real-python", "python3", "rp_python.py", NULL, NULL,
      "Debian's python3 (PYTHONMALLOC=malloc): millions of dicts, lists, strings and records built and "
      "dropped in threads; output checked against glibc's", HKB_REAL_PYTHON),
    RP("real-sqlite", "sqlite3", ":memory:", NULL, NULL,
      "the sqlite3 shell on an in-memory database: 210K rows (at scale 1) inserted, indexed, queried, updated and "
      "deleted; output checked against glibc's", HKB_REAL_SQLITE),
    RP("real-redis", "redis-server", "", NULL, NULL,
      "redis-server on 127.0.0.1 driven by redis-benchmark (SET, GET, LPUSH, LPOP, pipelined); the server "
      "is measured, its data checked", HKB_REAL_REDIS),
};
enum { NWORKLOADS = sizeof workloads / sizeof workloads[0] };

/* Workload i of the runner's table followed by beyond.c's and diag.c's. */
static const hkb_workload_t *workload_at(int i) {
    int ndiag;
    const hkb_workload_t *diag = hkb_diag_workloads(&ndiag);
    if (i < NWORKLOADS) return &workloads[i];
    if (i < NWORKLOADS + hkb_napi_workloads) return &hkb_api_workloads[i - NWORKLOADS];
    return &diag[i - NWORKLOADS - hkb_napi_workloads];
}
static int workload_count(void) {
    int ndiag;
    hkb_diag_workloads(&ndiag);
    return NWORKLOADS + hkb_napi_workloads + ndiag;
}

/* ---- The allocators --------------------------------------------------------- */

typedef struct {
    const char *name;
    const char *files[4];     /* shared objects to look for, best first */
    const char *package;      /* the Debian package that installs them */
} known_alloc_t;

static const known_alloc_t known[] = {
    { "glibc", { NULL }, NULL },
    { "jemalloc", { "libjemalloc.so.2", "libjemalloc.so", NULL }, "libjemalloc-dev" },
    /* The minimal tcmalloc: the same allocator without the profiler hooks. */
    { "tcmalloc", { "libtcmalloc_minimal.so.4", "libtcmalloc.so.4", "libtcmalloc_minimal.so", NULL },
      "libgoogle-perftools-dev" },
    { "mimalloc", { "libmimalloc.so.2", "libmimalloc.so", NULL }, "libmimalloc-dev" },
    { "heapkit", { NULL }, NULL },
};
enum { NKNOWN = sizeof known / sizeof known[0] };

static void usage(FILE *f) {
    fprintf(f,
        "usage: hkbench [options]\n"
        "Runs every workload under every allocator and writes bench.json,\n"
        "report.html and summary.txt to the output directory.\n\n"
        "  --quick             every workload at a tiny size (scale 0.05), report\n"
        "                      marked quick\n"
        "  --scale S           work multiplier (default 1)\n"
        "  --runs N            runs per workload and allocator (default 7; quick 5;\n"
        "                      the Diagnostics section: at most 3, quick 1)\n"
        "  --threads N         threads per workload (default: online CPUs)\n"
        "  --allocators LIST   comma-separated (default: glibc,jemalloc,tcmalloc,\n"
        "                      mimalloc,heapkit and any --alloc)\n"
        "  --alloc NAME=PATH   add an allocator, or point a known one at another .so\n"
        "  --heapkit PATH      the libheapkit.so to preload (default: the build's)\n"
        "  --workloads LIST    comma-separated names or prefixes (default: all);\n"
        "                      \"beyond\" selects the Beyond malloc comparisons\n"
        "                      (pool, cache, cache-xt, tree); \"diagnostics\" the\n"
        "                      Diagnostics section (diag-PROGRAM-VARIANT: debug and\n"
        "                      secure heapkit, memcheck, ASan)\n"
        "  --heapkit-debug PATH   the debug library (default: libheapkit-debug.so\n"
        "                      beside the heapkit library)\n"
        "  --heapkit-secure PATH  the secure library (default: libheapkit-secure.so\n"
        "                      beside it)\n"
        "  --valgrind PATH     valgrind for the Diagnostics section (default: on PATH)\n"
        "  --out DIR           output directory (default: hkbench-results)\n"
        "  --bindir DIR        where the workload programs are (default: beside hkbench)\n"
        "  --timeout SEC       limit per run (default 60 x max(1, scale))\n"
        "  --max-fail N        stop running a pair after N failed runs (default 2)\n"
        "  --program NAME=PATH where a real program is (python3, sqlite3, redis-server,\n"
        "                      redis-benchmark; default /usr/bin/NAME)\n"
        "  --instr             also count instructions per malloc+free (callgrind)\n"
        "  --instr-only        only count instructions\n"
        "  --strict            exit 1 when any run failed\n"
        "  --list              list workloads and allocators, then exit\n");
}

static void die(const char *fmt, const char *arg) {
    fprintf(stderr, "hkbench: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    exit(2);
}

/* Comma-list membership; an item matches a name exactly or as a prefix
 * ending at a '-' ("small" selects small-lifo, small-fifo, small-random). */
static int in_list(const char *list, const char *name, int prefixes) {
    if (!list) return 1;
    const char *p = list;
    while (*p) {
        size_t l = strcspn(p, ",");
        if (l == strlen(name) && !strncmp(p, name, l)) return 1;
        if (prefixes && l > 0 && l < strlen(name) && !strncmp(p, name, l) && name[l] == '-') return 1;
        p += l + (p[l] == ',');
    }
    return 0;
}

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Finds a shared object in the system library directories. */
static int find_lib(const char *file, char *out, size_t cap) {
    struct utsname u;
    char arch_dir[96] = "";
    if (uname(&u) == 0) snprintf(arch_dir, sizeof arch_dir, "%.64s-linux-gnu", u.machine);
    const char *dirs[] = { HKB_MULTIARCH, arch_dir, "", "", "", "" };
    const char *roots[] = { "/usr/lib/", "/lib/" };
    for (int r = 0; r < 2; r++)
        for (int d = 0; d < 2; d++) {
            if (!*dirs[d]) continue;
            snprintf(out, cap, "%s%s/%s", roots[r], dirs[d], file);
            if (is_file(out)) return 1;
        }
    const char *plain[] = { "/usr/local/lib/", "/usr/lib64/", "/usr/lib/", "/lib64/" };
    for (int i = 0; i < 4; i++) {
        snprintf(out, cap, "%s%s", plain[i], file);
        if (is_file(out)) return 1;
    }
    return 0;
}

/* Runs the probe under the allocator: it must start, allocate, and report
 * that malloc comes from the preloaded object (or from libc for glibc). A
 * .so that loads but does not define malloc would otherwise be timed as
 * glibc under another name. */
static void probe(hkb_t *b, hkb_alloc_t *al) {
    char prog[PATH_MAX + 32];
    snprintf(prog, sizeof prog, "%s/hkbench_micro", b->bin_dir);
    char *argv[] = { prog, "--probe", NULL };
    hkb_child_t c;
    if (hkb_spawn(argv, al->run_path, 30, &c) != 0) {
        snprintf(al->reason, sizeof al->reason, "could not run the probe: %s", strerror(errno));
        return;
    }
    char from[PATH_MAX] = "";
    const char *line = c.out ? strstr(c.out, "HKBENCH probe") : NULL;
    if (line) hkb_kv(line, "malloc_from", from, sizeof from);
    snprintf(al->malloc_from, sizeof al->malloc_from, "%s", from);
    if (c.exit_code != 0 || !line) {
        char first[200];
        snprintf(first, sizeof first, "%.*s", (int)strcspn(c.err, "\n"), c.err);
        if (c.signal)
            snprintf(al->reason, sizeof al->reason, "the probe died with signal %d (%s)%s%s", c.signal,
                     strsignal(c.signal), *first ? ": " : "", first);
        else
            snprintf(al->reason, sizeof al->reason, "the probe failed (exit %d)%s%s", c.exit_code,
                     *first ? ": " : "", first);
    } else if (!*al->path) {
        const char *base = strrchr(from, '/');
        base = base ? base + 1 : from;
        if (strncmp(base, "libc.so", 7) && strncmp(base, "libc-", 5))
            snprintf(al->reason, sizeof al->reason, "malloc is served by %s, not libc (LD_PRELOAD in /etc/ld.so.preload?)", from);
        else
            al->ok = 1;
    } else if (!hkb_same_file(from, al->run_path)) {
        snprintf(al->reason, sizeof al->reason, "%.200s does not provide malloc (malloc still served by %.200s)",
                 al->path, *from ? from : "an unknown object");
    } else {
        al->ok = 1;
    }
    hkb_child_free(&c);
}

static int add_alloc(hkb_t *b, const char *name) {
    for (int i = 0; i < b->nalloc; i++)
        if (!strcmp(b->alloc[i].name, name)) return i;
    if (b->nalloc == HKB_MAX_ALLOCS) die("too many allocators (at most %s)", "16");
    hkb_alloc_t *al = &b->alloc[b->nalloc];
    memset(al, 0, sizeof *al);
    snprintf(al->name, sizeof al->name, "%s", name);
    return b->nalloc++;
}

/* ---- Private copies of the libraries -------------------------------------- */

static char snap_dir[PATH_MAX];

static int copy_file(const char *from, const char *to) {
    FILE *in = fopen(from, "rb");
    if (!in) return -1;
    FILE *out = fopen(to, "wb");
    if (!out) {
        fclose(in);
        return -1;
    }
    char buf[1 << 16];
    size_t n;
    int ok = 1;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n) ok = 0;
    if (ferror(in)) ok = 0;
    fclose(in);
    if (fclose(out) != 0) ok = 0;
    return ok ? 0 : -1;
}

/* Removes the copies (registered with atexit). */
static void snapshot_cleanup(void) {
    if (!*snap_dir) return;
    char cmd[PATH_MAX + 300];
    /* Only our own mkdtemp directory, two levels deep: name/file. */
    DIR *d = opendir(snap_dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] != '.') {
                snprintf(cmd, sizeof cmd, "%s/%s", snap_dir, e->d_name);
                DIR *sd = opendir(cmd);
                if (sd) {
                    struct dirent *f;
                    char file[2 * PATH_MAX + 600];
                    while ((f = readdir(sd)))
                        if (f->d_name[0] != '.') {
                            snprintf(file, sizeof file, "%s/%s", cmd, f->d_name);
                            unlink(file);
                        }
                    closedir(sd);
                }
                rmdir(cmd);
            }
        closedir(d);
    }
    rmdir(snap_dir);
    snap_dir[0] = 0;
}

/* The private copy of one library, named `name` in the snapshot directory. */
static void snapshot_one(hkb_alloc_t *al, const char *name) {
    snprintf(al->run_path, sizeof al->run_path, "%s", al->path);
    if (!al->ok || !*al->path || !*snap_dir) return;
    const char *base = strrchr(al->path, '/');
    base = base ? base + 1 : al->path;
    char dir[PATH_MAX], copy[PATH_MAX];
    snprintf(dir, sizeof dir, "%.3000s/%s", snap_dir, name);
    snprintf(copy, sizeof copy, "%.3100s/%.900s", dir, base);
    /* The file name stays the same: the copy keeps the library's soname
     * inside, so a program linked against it (wl_arena_hk) finds the
     * preloaded copy as the library it needs. */
    if (mkdir(dir, 0700) == 0 && copy_file(al->path, copy) == 0)
        snprintf(al->run_path, sizeof al->run_path, "%s", copy);
    else
        printf("warning: could not copy %s; preloading it in place\n", al->path);
}

static void snapshot_libs(hkb_t *b) {
    const char *tmp = getenv("TMPDIR");
    snprintf(snap_dir, sizeof snap_dir, "%s/hkbench-libs-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(snap_dir)) {
        snap_dir[0] = 0;
        printf("warning: no private copies of the libraries (%s): a rebuild during the run would be measured\n",
               strerror(errno));
    } else {
        atexit(snapshot_cleanup);
    }
    for (int a = 0; a < b->nalloc; a++) snapshot_one(&b->alloc[a], b->alloc[a].name);
    /* The Diagnostics section's own libraries (debug, secure). */
    for (int v = 0; b->diag.present && v < HKB_DIAG_NVARIANTS; v++)
        if (v == HKB_DIAG_DEBUG || v == HKB_DIAG_SECURE) snapshot_one(&b->diag.tool[v].lib, b->diag.tool[v].lib.name);
}

/* ---- Running one pair ------------------------------------------------------- */

/* Width of the workload column of the progress lines. */
static int name_width = 13;

static void split_args(const char *s, char **argv, int *argc, char *store, size_t cap) {
    snprintf(store, cap, "%s", s);
    for (char *t = strtok(store, " "); t; t = strtok(NULL, " ")) argv[(*argc)++] = t;
}

static const char *mib(double kib, char *buf, size_t cap) {
    return hkb_fmt_bytes(kib * 1024, buf, cap);
}

static void parse_output(hkb_run_t *r, const char *out) {
    int cap = 0;
    for (const char *line = out; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, "HKBENCH ", 8)) continue;
        const char *rest = line + 8;
        char v[PATH_MAX];
        if (!strncmp(rest, "sample ", 7)) {
            if (r->nsamples == cap) {
                cap = cap ? cap * 2 : 256;
                hkb_sample_t *ns = realloc(r->samples, (size_t)cap * sizeof *ns);
                if (!ns) return;
                r->samples = ns;
            }
            hkb_sample_t *s = &r->samples[r->nsamples];
            memset(s, 0, sizeof *s);
            if (hkb_kv(rest, "step", v, sizeof v)) s->step = atol(v);
            if (hkb_kv(rest, "t_ms", v, sizeof v)) s->t_ms = atof(v);
            if (hkb_kv(rest, "rss", v, sizeof v)) s->rss = atoll(v);
            if (hkb_kv(rest, "live", v, sizeof v)) s->live = atoll(v);
            r->nsamples++;
        } else if (!strncmp(rest, "phase ", 6)) {
            if (r->nphases < HKB_MAX_PHASES) {
                hkb_phase_t *p = &r->phases[r->nphases++];
                p->step = hkb_kv(rest, "step", v, sizeof v) ? atol(v) : 0;
                if (!hkb_kv(rest, "name", p->name, sizeof p->name)) strcpy(p->name, "?");
            }
        } else if (!strncmp(rest, "part ", 5)) {
            if (r->nparts < HKB_MAX_PARTS) {
                hkb_part_t *p = &r->part[r->nparts];
                if (hkb_kv(rest, "name", p->name, sizeof p->name) && hkb_kv(rest, "ms", v, sizeof v)) {
                    p->ms = atof(v);
                    r->nparts++;
                }
            }
        } else if (!strncmp(rest, "info ", 5)) {
            hkb_kv(rest, "text", r->detail, sizeof r->detail);
        } else if (!strncmp(rest, "error=", 6)) {
            hkb_kv(rest, "error", r->error, sizeof r->error);
        } else if (!strncmp(rest, "ops=", 4)) {
            r->ops = hkb_kv(rest, "ops", v, sizeof v) ? atoll(v) : -1;
            r->work_s = hkb_kv(rest, "t_ms", v, sizeof v) ? atof(v) / 1000 : NAN;
            if (!hkb_kv(rest, "check", r->check, sizeof r->check)) r->check[0] = 0;
            r->live_peak = hkb_kv(rest, "live_peak", v, sizeof v) ? atoll(v) : -1;
            r->hwm_kib = hkb_kv(rest, "hwm_kib", v, sizeof v) ? atol(v) : -1;
            hkb_kv(rest, "malloc_from", r->malloc_from, sizeof r->malloc_from);
            r->ok = 1; /* provisionally: the caller checks the rest */
        }
    }
}

static void run_one(hkb_t *b, hkb_run_t *r, int index, int total) {
    const hkb_workload_t *w = &b->work[r->w];
    hkb_alloc_t *al = &b->alloc[r->a];
    /* How it starts: the allocator's preload, unless diag.c says otherwise. */
    hkb_launch_t l;
    memset(&l, 0, sizeof l);
    l.program = w->program;
    l.preload = al->run_path;
    l.malloc_file = al->run_path;
    l.malloc_name = "/libc";
    l.label = al->name;
    if (w->diag_program) hkb_diag_launch(b, w, &l);
    char prog[PATH_MAX + 32], scale[32], threads[16], store[256];
    snprintf(prog, sizeof prog, "%s/%s", b->bin_dir, l.program);
    snprintf(scale, sizeof scale, "%g", hkb_scale_of(b, w));
    snprintf(threads, sizeof threads, "%d", b->threads);
    char *argv[32];
    int argc = 0;
    for (int i = 0; l.wrapper[i] && i < 8; i++) argv[argc++] = (char *)l.wrapper[i];
    argv[argc++] = prog;
    split_args(w->args, argv, &argc, store, sizeof store);
    argv[argc++] = "--scale";
    argv[argc++] = scale;
    argv[argc++] = "--threads";
    argv[argc++] = threads;
    argv[argc] = NULL;

    hkb_child_t c;
    r->done = 1;
    r->exit_code = -1;
    if (w->real && w->diag_program) {
        hkb_real_run_launch(b, r, &l);
    } else if (w->real) {
        hkb_real_run(b, r);
    } else if (hkb_spawn_env(argv, l.preload, l.env, b->timeout_s, &c) != 0) {
        snprintf(r->error, sizeof r->error, "could not start: %s", strerror(errno));
    } else {
        r->exit_code = c.exit_code;
        r->signal = c.signal;
        r->timed_out = c.timed_out;
        r->wall_s = c.wall_s;
        r->user_s = c.ru.ru_utime.tv_sec + c.ru.ru_utime.tv_usec / 1e6;
        r->sys_s = c.ru.ru_stime.tv_sec + c.ru.ru_stime.tv_usec / 1e6;
        r->cpu_s = r->user_s + r->sys_s;
        r->maxrss_kib = c.ru.ru_maxrss;
        r->minflt = c.ru.ru_minflt;
        r->majflt = c.ru.ru_majflt;
        r->nvcsw = c.ru.ru_nvcsw;
        r->nivcsw = c.ru.ru_nivcsw;
        r->ops = r->live_peak = -1;
        r->hwm_kib = -1;
        if (c.out) parse_output(r, c.out);
        char first[200];
        hkb_first_line(c.err, first, sizeof first);
        if (c.timed_out) {
            r->ok = 0;
            snprintf(r->error, sizeof r->error, "timed out after %.0f s", b->timeout_s);
        } else if (c.signal) {
            r->ok = 0;
            snprintf(r->error, sizeof r->error, "killed by signal %d (%s)%s%s", c.signal, strsignal(c.signal),
                     *first ? ": " : "", first);
        } else if (c.exit_code != 0) {
            r->ok = 0;
            if (!*r->error)
                snprintf(r->error, sizeof r->error, "exit %d%s%s", c.exit_code, *first ? ": " : "", first);
        } else if (!r->ok) {
            snprintf(r->error, sizeof r->error, "no HKBENCH result line");
        } else if (*l.malloc_file ? !hkb_same_file(r->malloc_from, l.malloc_file)
                                  : strstr(r->malloc_from, l.malloc_name) == NULL) {
            r->ok = 0;
            snprintf(r->error, sizeof r->error, "malloc served by %.200s, not %s", r->malloc_from, l.label);
        }
        hkb_child_free(&c);
    }
    if (w->diag_program) hkb_diag_after_run(b, r);
    /* The variant, for the Diagnostics section: its runs take the slot of
     * heapkit or glibc, but are not theirs. */
    const char *who = w->diag_program ? b->diag.tool[w->diag_variant].name : al->name;
    int runs = w->diag_program ? b->diag.runs : b->runs;
    char m[32], rps[48] = "";
    if (r->ok && isfinite(r->rps)) snprintf(rps, sizeof rps, "  %.0fK req/s", r->rps / 1000);
    else if (r->ok && w->group && isfinite(r->work_s)) snprintf(rps, sizeof rps, "  work %.3f s", r->work_s);
    if (r->ok)
        printf("[%3d/%d] %-*s %-9s run %d/%d  time %7.3f s  cpu %7.3f s  peak RSS %10s  minflt %8ld%s\n", index,
               total, name_width, w->name, who, r->rep + 1, runs, r->wall_s, r->cpu_s,
               mib((double)r->maxrss_kib, m, sizeof m), r->minflt, rps);
    else
        printf("[%3d/%d] %-*s %-9s run %d/%d  FAILED: %s\n", index, total, name_width, w->name, who, r->rep + 1,
               runs, r->error);
    fflush(stdout);
}

/* ---- Main ------------------------------------------------------------------- */

/* Two workloads scheduled as one block: the variants of one Beyond malloc
 * comparison, or of one program of the Diagnostics section. */
static int same_block(const hkb_workload_t *x, const hkb_workload_t *y) {
    if (x->group && y->group) return !strcmp(x->group, y->group);
    if (x->diag_program && y->diag_program) return !strcmp(x->diag_program, y->diag_program);
    return 0;
}

static void self_dir(char *out, size_t cap) {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        snprintf(out, cap, ".");
        return;
    }
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) *slash = 0;
    snprintf(out, cap, "%s", exe);
}

static int mkdirs(const char *path) {
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0777) != 0 && errno != EEXIST) return -1;
            *p = '/';
        }
    return mkdir(tmp, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

static void host_info(hkb_t *b) {
    struct utsname u;
    char model[160] = "unknown CPU";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "model name", 10) || !strncmp(line, "Model", 5)) {
                char *v = strchr(line, ':');
                if (v) {
                    v++;
                    while (*v == ' ') v++;
                    v[strcspn(v, "\n")] = 0;
                    snprintf(model, sizeof model, "%s", v);
                    break;
                }
            }
        fclose(f);
    }
    if (uname(&u) == 0)
        snprintf(b->host, sizeof b->host, "%s %s %s, %s", u.sysname, u.release, u.machine, model);
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(b->started, sizeof b->started, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int main(int argc, char **argv) {
    static hkb_t b;
    const char *alloc_list = NULL, *work_list = NULL, *heapkit = HKB_HEAPKIT_DEFAULT;
    const char *extra[HKB_MAX_ALLOCS];
    int nextra = 0, quick = 0, strict = 0, list = 0;
    double scale = -1, timeout = -1;
    int runs = -1;
    long nproc = sysconf(_SC_NPROCESSORS_ONLN);
    b.nproc = nproc > 0 ? (int)nproc : 1;
    b.threads = b.nproc;
    b.max_fail = 2;
    snprintf(b.out_dir, sizeof b.out_dir, "hkbench-results");
    self_dir(b.bin_dir, sizeof b.bin_dir);

    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = 1;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(o, "--quick")) {
            quick = 1, takes = 0;
        } else if (!strcmp(o, "--instr")) {
            b.do_instr = 1, takes = 0;
        } else if (!strcmp(o, "--instr-only")) {
            b.do_instr = b.instr_only = 1, takes = 0;
        } else if (!strcmp(o, "--strict")) {
            strict = 1, takes = 0;
        } else if (!strcmp(o, "--list")) {
            list = 1, takes = 0;
        } else if (!v) {
            die("option %s needs a value (see --help)", o);
        } else if (!strcmp(o, "--scale")) {
            scale = atof(v);
        } else if (!strcmp(o, "--runs")) {
            runs = atoi(v);
        } else if (!strcmp(o, "--threads")) {
            b.threads = atoi(v);
        } else if (!strcmp(o, "--allocators")) {
            alloc_list = v;
        } else if (!strcmp(o, "--alloc")) {
            if (!strchr(v, '=') || nextra == HKB_MAX_ALLOCS) die("--alloc wants NAME=PATH, got '%s'", v);
            extra[nextra++] = v;
        } else if (!strcmp(o, "--heapkit")) {
            heapkit = v;
        } else if (!strcmp(o, "--workloads")) {
            work_list = v;
        } else if (!strcmp(o, "--out")) {
            snprintf(b.out_dir, sizeof b.out_dir, "%s", v);
        } else if (!strcmp(o, "--bindir")) {
            snprintf(b.bin_dir, sizeof b.bin_dir, "%s", v);
        } else if (!strcmp(o, "--timeout")) {
            timeout = atof(v);
        } else if (!strcmp(o, "--max-fail")) {
            b.max_fail = atoi(v);
        } else if (!strcmp(o, "--heapkit-debug") || !strcmp(o, "--heapkit-secure") || !strcmp(o, "--valgrind")) {
            hkb_diag_option(&b, o, v);
        } else if (!strcmp(o, "--program")) {
            if (hkb_real_set_program(v) != 0)
                die("--program wants NAME=PATH with NAME one of python3, sqlite3, redis-server, redis-benchmark; got '%s'", v);
        } else {
            die("unknown option '%s' (see --help)", o);
        }
        i += takes;
    }
    b.mode = b.instr_only ? "instr" : quick ? "quick" : "full";
    b.scale = scale > 0 ? scale : quick ? 0.05 : 1.0;
    /* Medians of 7 in a full run: the machine is shared, and an odd count
     * makes the median a real run (the one whose samples are charted). */
    b.runs = runs > 0 ? runs : quick ? 5 : 7;
    b.timeout_s = timeout > 0 ? timeout : 60 * (b.scale > 1 ? b.scale : 1);
    if (b.threads < 1 || b.threads > 256) die("--threads must be 1..256, got %s", "?");
    if (b.runs > 1000 || b.max_fail < 1) die("bad --runs or --max-fail%s", "");
    host_info(&b);
    hkb_spawn_init();

    /* Allocators: the known ones in a fixed order (glibc first: it is the
     * baseline of every ratio), then the extra ones from --alloc. */
    for (int k = 0; k < NKNOWN; k++) {
        int a = add_alloc(&b, known[k].name);
        hkb_alloc_t *al = &b.alloc[a];
        if (!strcmp(al->name, "glibc")) {
            al->ok = 1;
        } else if (!strcmp(al->name, "heapkit")) {
            snprintf(al->path, sizeof al->path, "%s", heapkit);
            if (!*heapkit || !strcmp(heapkit, "none"))
                snprintf(al->reason, sizeof al->reason, "no libheapkit.so given (--heapkit PATH)");
            else if (!is_file(heapkit))
                snprintf(al->reason, sizeof al->reason, "%s not built yet (make build)", heapkit);
            else
                al->ok = 1;
        } else {
            for (int f = 0; known[k].files[f] && !al->ok; f++)
                if (find_lib(known[k].files[f], al->path, sizeof al->path)) al->ok = 1;
            if (!al->ok) {
                al->path[0] = 0;
                snprintf(al->reason, sizeof al->reason, "not installed (apt-get install %s)", known[k].package);
            }
        }
    }
    for (int i = 0; i < nextra; i++) {
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)strcspn(extra[i], "="), extra[i]);
        if (!*name || strlen(name) >= 32) die("bad allocator name in --alloc %s", extra[i]);
        int a = add_alloc(&b, name);
        hkb_alloc_t *al = &b.alloc[a];
        snprintf(al->path, sizeof al->path, "%s", strchr(extra[i], '=') + 1);
        al->reason[0] = 0;
        al->ok = is_file(al->path);
        if (!al->ok) snprintf(al->reason, sizeof al->reason, "%.400s not found", strchr(extra[i], '=') + 1);
    }
    /* Selection. */
    if (alloc_list) {
        char *tok = strdup(alloc_list);
        for (char *t = strtok(tok, ","); t; t = strtok(NULL, ","))
            if (!strcmp(t, "all")) continue;
            else {
                int found = 0;
                for (int a = 0; a < b.nalloc; a++) found |= !strcmp(b.alloc[a].name, t);
                if (!found) die("unknown allocator '%s' (give its library with --alloc NAME=PATH)", t);
            }
        free(tok);
        int k = 0;
        for (int a = 0; a < b.nalloc; a++)
            if (in_list(alloc_list, b.alloc[a].name, 0) || in_list(alloc_list, "all", 0)) b.alloc[k++] = b.alloc[a];
        b.nalloc = k;
    }
    for (int i = 0; i < workload_count(); i++) {
        const hkb_workload_t *wk = workload_at(i);
        if (!(in_list(work_list, wk->name, 1) || (wk->group && work_list && in_list(work_list, "beyond", 0)) ||
              (wk->diag_program && work_list && in_list(work_list, "diagnostics", 0))))
            continue;
        if (wk->diag_program && quick && !hkb_diag_in_quick(&b, wk)) continue;
        if (b.nwork == HKB_MAX_WORKLOADS) die("too many workloads (at most %s)", "96");
        b.work[b.nwork++] = *wk;
    }
    for (int w = 0; w < b.nwork; w++)
        if ((int)strlen(b.work[w].name) > name_width) name_width = (int)strlen(b.work[w].name);
    hkb_beyond_init(&b);
    hkb_diag_init(&b, heapkit, quick);
    if (!b.nwork && !b.instr_only) die("no workload matches '%s' (see --list)", work_list ? work_list : "");

    if (list) {
        printf("workloads:\n");
        for (int i = 0; i < workload_count(); i++) {
            const hkb_workload_t *wk = workload_at(i);
            printf("  %-26s %s%s%s%s%s%s%s\n", wk->name, wk->description, wk->only && !wk->diag_program ? " [only " : "",
                   wk->only && !wk->diag_program ? wk->only : "", wk->only && !wk->diag_program ? "]" : "",
                   wk->real ? " [real program]" : "", wk->group ? " [beyond malloc]" : "",
                   wk->diag_program ? " [diagnostics]" : "");
        }
        printf("allocators:\n");
        for (int a = 0; a < b.nalloc; a++)
            printf("  %-10s %s%s\n", b.alloc[a].name, *b.alloc[a].path ? b.alloc[a].path : "(system malloc)",
                   b.alloc[a].ok ? "" : "  [missing]");
        return 0;
    }

    printf("== hkbench (%s): scale %g, %d run%s per pair, %d thread%s, %s\n", b.mode, b.scale, b.runs,
           b.runs == 1 ? "" : "s", b.threads, b.threads == 1 ? "" : "s", b.host);
    char micro[PATH_MAX + 32];
    snprintf(micro, sizeof micro, "%s/hkbench_micro", b.bin_dir);
    if (!is_file(micro)) die("%s not found (build the bench first, or give --bindir)", micro);
    snapshot_libs(&b);
    for (int a = 0; a < b.nalloc; a++) {
        hkb_alloc_t *al = &b.alloc[a];
        if (al->ok) {
            al->ok = 0;
            probe(&b, al);
        }
        if (al->ok)
            printf("allocator %-9s %s\n", al->name, *al->path ? al->path : "(system malloc, no preload)");
        else
            printf("skipping %s: %s\n", al->name, al->reason);
    }
    /* The Diagnostics section's libraries are proven like allocators. */
    for (int v = 0; b.diag.present && v < HKB_DIAG_NVARIANTS; v++) {
        hkb_alloc_t *lib = &b.diag.tool[v].lib;
        if ((v == HKB_DIAG_DEBUG || v == HKB_DIAG_SECURE) && lib->ok) {
            lib->ok = 0;
            probe(&b, lib);
        }
    }
    if (b.diag.present) hkb_diag_tools(&b);
    for (int w = 0; w < b.nwork; w++) {
        hkb_workload_t *wk = &b.work[w];
        char prog[PATH_MAX + 32];
        snprintf(prog, sizeof prog, "%s/%s", b.bin_dir, wk->program);
        if (wk->diag_program) {
            /* Says itself what it skips, once per variant or program
             * (nothing to say when only instructions are counted). */
            if (b.diag.present) hkb_diag_prepare(&b, w);
            continue;
        } else if (wk->real) {
            /* Present? Then its reference run under glibc (not for
             * instruction counts, which run no workload). */
            hkb_real_prepare(&b, wk, !b.instr_only);
        } else {
            wk->ok = access(prog, X_OK) == 0;
            if (!wk->ok && wk->library) {
                /* A comparator library missing when the bench was
                 * configured: said once per library, as for allocators. */
                snprintf(wk->reason, sizeof wk->reason, "not installed (apt-get install %s)", wk->package);
                int said = 0;
                for (int o = 0; o < w; o++)
                    said |= b.work[o].library && !strcmp(b.work[o].library, wk->library) &&
                            !strcmp(b.work[o].reason, wk->reason);
                if (!said) printf("skipping %s: %s\n", wk->library, wk->reason);
            } else if (!wk->ok) {
                snprintf(wk->reason, sizeof wk->reason, "%s not built%s", wk->program,
                         wk->only && !strcmp(wk->only, "heapkit") ? " (needs the heapkit library target)" : "");
            }
        }
        int any = 0;
        for (int a = 0; a < b.nalloc; a++)
            if (b.alloc[a].ok && (!wk->only || !strcmp(wk->only, b.alloc[a].name))) any = 1;
        if (wk->ok && !any) {
            wk->ok = 0;
            snprintf(wk->reason, sizeof wk->reason, "runs only under %s, which is skipped", wk->only);
        }
        if (!wk->ok && !(wk->library && !strncmp(wk->reason, "not installed", 13)))
            printf("skipping workload %s: %s\n", wk->name, wk->reason);
    }
    if (mkdirs(b.out_dir) != 0) die("cannot create the output directory %s", b.out_dir);

    /* The schedule: repetition, then workload, then allocator (rotated). */
    double t_start;
    {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        t_start = ts.tv_sec + ts.tv_nsec / 1e9;
    }
    if (!b.instr_only) {
        b.run = calloc((size_t)b.runs * (size_t)b.nwork * (size_t)b.nalloc + 1, sizeof *b.run);
        if (!b.run) die("out of memory%s", "");
        int oka[HKB_MAX_ALLOCS], nok = 0;
        for (int a = 0; a < b.nalloc; a++)
            if (b.alloc[a].ok) oka[nok++] = a;
        for (int rep = 0; rep < b.runs; rep++)
            for (int w = 0; w < b.nwork; w++) {
                if (!b.work[w].ok) continue;
                /* The Diagnostics section has fewer runs (memcheck is slow). */
                if (b.work[w].diag_program && rep >= b.diag.runs) continue;
                if (b.work[w].group || b.work[w].diag_program) {
                    /* A comparison, or the variants of one program of the
                     * Diagnostics section: all its (variant, allocator)
                     * pairs as one block, taken up once, at its first
                     * workload. */
                    int first = 1;
                    for (int o = 0; o < w; o++) first &= !(b.work[o].ok && same_block(&b.work[o], &b.work[w]));
                    if (!first) continue;
                    int pw[HKB_MAX_WORKLOADS * HKB_MAX_ALLOCS], pa[HKB_MAX_WORKLOADS * HKB_MAX_ALLOCS], np = 0;
                    for (int v = w; v < b.nwork; v++) {
                        if (!b.work[v].ok || !same_block(&b.work[v], &b.work[w])) continue;
                        for (int k = 0; k < nok; k++)
                            if (!b.work[v].only || !strcmp(b.work[v].only, b.alloc[oka[k]].name)) pw[np] = v, pa[np++] = oka[k];
                    }
                    for (int k = 0; k < np; k++) {
                        hkb_run_t *r = &b.run[b.nrun++];
                        r->w = pw[(k + rep + w) % np], r->a = pa[(k + rep + w) % np], r->rep = rep;
                        r->rps = r->work_s = NAN;
                    }
                    continue;
                }
                for (int k = 0; k < nok; k++) {
                    int a = oka[(k + rep + w) % nok];
                    if (b.work[w].only && strcmp(b.work[w].only, b.alloc[a].name)) continue;
                    hkb_run_t *r = &b.run[b.nrun++];
                    r->w = w, r->a = a, r->rep = rep;
                    r->rps = r->work_s = NAN;
                }
            }
        for (int i = 0; i < b.nrun; i++) {
            hkb_run_t *r = &b.run[i];
            int failed = 0;
            for (int j = 0; j < i; j++)
                if (b.run[j].w == r->w && b.run[j].a == r->a && b.run[j].done && !b.run[j].ok) failed++;
            if (failed >= b.max_fail) {
                r->done = 0;
                snprintf(r->error, sizeof r->error, "not run: %d earlier runs failed", failed);
                continue;
            }
            run_one(&b, r, i + 1, b.nrun);
        }
    }
    if (b.do_instr) hkb_instr_run(&b);
    {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        b.total_wall_s = ts.tv_sec + ts.tv_nsec / 1e9 - t_start;
    }

    hkb_beyond_check(&b);
    hkb_summarise(&b);
    hkb_beyond_summarise(&b);
    hkb_diag_summarise(&b);
    printf("\n");
    hkb_print_table(&b, stdout);

    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/summary.txt", b.out_dir);
    FILE *f = fopen(path, "w");
    if (f) {
        hkb_print_table(&b, f);
        fclose(f);
    }
    snprintf(path, sizeof path, "%s/bench.json", b.out_dir);
    if (hkb_write_json(&b, path) != 0) {
        fprintf(stderr, "hkbench: could not write %s\n", path);
        return 1;
    }
    printf("\nwrote %s\n", path);
    snprintf(path, sizeof path, "%s/report.html", b.out_dir);
    if (hkb_write_html(&b, path) != 0) {
        fprintf(stderr, "hkbench: could not write %s\n", path);
        return 1;
    }
    printf("wrote %s\n", path);
    if (hkb_write_summary_svgs(&b, b.out_dir) != 0)
        fprintf(stderr, "hkbench: could not write the summary charts in %s\n", b.out_dir);
    else if (b.sum && !b.instr_only && hkb_allocator_workloads(&b))
        printf("wrote %s/summary-time.svg, summary-rss.svg\n", b.out_dir);
    snprintf(path, sizeof path, "%s/summary.txt", b.out_dir);
    printf("wrote %s\n", path);
    printf("total time %.0f s\n", b.total_wall_s);

    int failed = 0, skipped = 0;
    for (int i = 0; i < b.nrun; i++) failed += !b.run[i].ok;
    if (failed) printf("%d of %d runs failed or were not run (see the table)\n", failed, b.nrun);
    for (int w = 0; w < b.nwork; w++) skipped += !b.work[w].ok;
    if (skipped && !b.instr_only) printf("%d workload%s skipped, not run (see above)\n", skipped, skipped == 1 ? "" : "s");
    return strict && failed ? 1 : 0;
}
