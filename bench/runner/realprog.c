/* realprog.c: the real programs of the benchmark (workload 11 of the spec):
 * Debian's python3, the sqlite3 shell and redis-server, each under every
 * allocator. They cannot print an HKBENCH line, so the runner measures and
 * checks them itself:
 *
 *   - which malloc serves them: libhkbench_probe.so is preloaded after the
 *     allocator and records dlsym("malloc") + dladdr of the process (and
 *     its VmHWM at exit) in a file; a run where the allocator did not take
 *     fails, exactly like a workload reporting the wrong malloc_from;
 *   - that they computed the right thing: before the timed runs, each
 *     program runs once, untimed, under glibc; its output (python, sqlite)
 *     or the server's replies to a fixed set of commands (redis) are the
 *     reference, and a timed run whose hash differs fails;
 *   - glibc really is glibc: Debian's redis-server is linked with
 *     libjemalloc, so under "glibc" the runner preloads libc.so.6 itself,
 *     which puts glibc's malloc ahead of jemalloc's in the lookup order (the
 *     probe proves it). The linked jemalloc is still loaded and answers
 *     redis's mallctl calls under every allocator.
 *
 * python3 and sqlite3 are measured like the workloads (wait4 on the
 * process). redis-server is started in the background on 127.0.0.1 with a
 * free port and no persistence, loaded with a deterministic data set by
 * the runner's own small RESP client (database 1), driven by
 * redis-benchmark (not preloaded: it is the client) on database 0, checked
 * (every value read back), then stopped with SHUTDOWN NOSAVE and reaped
 * with wait4: its CPU time, peak RSS and faults are the server's alone;
 * the time figure is redis-benchmark's wall time for its requests.
 * Everything is bounded by the run's timeout, and every error path kills
 * the server (which also dies with the runner: PR_SET_PDEATHSIG).
 *
 * The Diagnostics section (diag.c) runs python3 and sqlite3 too, at a
 * scale of its own and under its own variants (heapkit's debug and secure
 * libraries, memcheck): hkb_real_run_launch takes the variant's preload,
 * wrapper and environment. A reference run serves every workload of the
 * same program at the same scale; each size of SQL script is written once.
 */
#define _GNU_SOURCE
#include "hkbench.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <gnu/libc-version.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- Programs ---------------------------------------------------------------- */

typedef struct {
    const char *name;
    char path[PATH_MAX];
    const char *install;      /* what to apt-get install */
} prog_t;

/* Debian's own binaries by absolute path: a shim earlier on PATH (pyenv's
 * python3 is a shell script) would put the allocator under the wrong
 * program. --program NAME=PATH points one elsewhere. */
enum { P_PYTHON, P_SQLITE, P_REDIS_SERVER, P_REDIS_BENCH, NPROGS };
static prog_t progs[NPROGS] = {
    { "python3", "/usr/bin/python3", "python3" },
    { "sqlite3", "/usr/bin/sqlite3", "sqlite3" },
    { "redis-server", "/usr/bin/redis-server", "redis-server redis-tools" },
    { "redis-benchmark", "/usr/bin/redis-benchmark", "redis-server redis-tools" },
};

int hkb_real_set_program(const char *arg) {
    size_t n = strcspn(arg, "=");
    if (!arg[n]) return -1;
    for (int i = 0; i < NPROGS; i++)
        if (strlen(progs[i].name) == n && !strncmp(progs[i].name, arg, n)) {
            snprintf(progs[i].path, sizeof progs[i].path, "%s", arg + n + 1);
            return 0;
        }
    return -1;
}

/* "api": a variant of a Beyond malloc comparison (beyond.c);
 * "diagnostics": a variant of the Diagnostics section (diag.c). */
const char *hkb_kind(const hkb_workload_t *w) {
    return w->diag_program ? "diagnostics" : w->real ? "real" : w->group ? "api" : "synthetic";
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- Scratch directory -------------------------------------------------------- */
/* One private directory for the run: the SQL script, the probe's file, the
 * server's log and working directory. Removed at exit (one level deep:
 * nothing here makes subdirectories). */

static char tmp_dir[PATH_MAX];

static void tmp_cleanup(void) {
    if (!*tmp_dir) return;
    DIR *d = opendir(tmp_dir);
    if (d) {
        struct dirent *e;
        char file[PATH_MAX + 300];
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(file, sizeof file, "%s/%s", tmp_dir, e->d_name);
                unlink(file);
            }
        closedir(d);
    }
    rmdir(tmp_dir);
    tmp_dir[0] = 0;
}

static int tmp_init(void) {
    if (*tmp_dir) return 0;
    const char *t = getenv("TMPDIR");
    snprintf(tmp_dir, sizeof tmp_dir, "%s/hkbench-real-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(tmp_dir)) {
        tmp_dir[0] = 0;
        return -1;
    }
    atexit(tmp_cleanup);
    return 0;
}

static void tmp_path(char *out, size_t cap, const char *name) { snprintf(out, cap, "%.3000s/%s", tmp_dir, name); }

/* ---- Small helpers ------------------------------------------------------------- */

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ULL;
    return h;
}
#define FNV0 0xcbf29ce484222325ULL

static int is_exec(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* The library that provides glibc's malloc: preloaded under "glibc" so that
 * glibc's malloc wins even in a program linked with another allocator. */
static const char *libc_path(void) {
    static char path[PATH_MAX];
    if (!*path) {
        Dl_info di;
        if (dladdr((void *)gnu_get_libc_version, &di) && di.dli_fname) snprintf(path, sizeof path, "%s", di.dli_fname);
    }
    return path;
}

static void probe_so(hkb_t *b, char *out, size_t cap) { snprintf(out, cap, "%.3000s/libhkbench_probe.so", b->bin_dir); }

/* The first line of a text, for an error message (hkb_first_line: blank
 * lines and banners skipped). */
static void first_line(const char *s, char *out, size_t cap) { hkb_first_line(s, out, cap); }

/* The last non-empty line of a file (a server's log), for an error message. */
static void last_log_line(const char *path, char *out, size_t cap) {
    out[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (*line) snprintf(out, cap, "%.*s", (int)(cap - 1), line);
    }
    fclose(f);
}

/* What the probe recorded for process `pid`. */
static void read_probe(const char *path, int pid, char *from, size_t cap, long *hwm_kib) {
    from[0] = 0;
    *hwm_kib = -1;
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[PATH_MAX + 64], v[PATH_MAX];
    while (fgets(line, sizeof line, f)) {
        if (!hkb_kv(line, "pid", v, sizeof v) || atoi(v) != pid) continue;
        if (hkb_kv(line, "malloc_from", v, sizeof v)) snprintf(from, cap, "%s", v);
        if (hkb_kv(line, "hwm_kib", v, sizeof v)) *hwm_kib = atol(v);
    }
    fclose(f);
}

/* Did the allocator really serve malloc in the program? run_path "" is
 * glibc. Returns 1, or 0 with the reason in err. */
static int check_malloc_from(const char *from, const char *run_path, const char *alloc, char *err, size_t cap) {
    if (!*from) {
        snprintf(err, cap, "the probe did not report which malloc served the program");
        return 0;
    }
    if (*run_path ? hkb_same_file(from, run_path) : hkb_same_file(from, libc_path())) return 1;
    snprintf(err, cap, "malloc served by %.200s, not %s", from, alloc);
    return 0;
}

static void take_rusage(hkb_run_t *r, const struct rusage *ru) {
    r->user_s = ru->ru_utime.tv_sec + ru->ru_utime.tv_usec / 1e6;
    r->sys_s = ru->ru_stime.tv_sec + ru->ru_stime.tv_usec / 1e6;
    r->cpu_s = r->user_s + r->sys_s;
    r->maxrss_kib = ru->ru_maxrss;
    r->minflt = ru->ru_minflt;
    r->majflt = ru->ru_majflt;
    r->nvcsw = ru->ru_nvcsw;
    r->nivcsw = ru->ru_nivcsw;
}

/* Where two outputs first differ, for the error of a mismatching run. */
static void describe_diff(const char *ref, const char *got, char *out, size_t cap) {
    if (!ref || !got) {
        snprintf(out, cap, "output differs from the glibc reference run");
        return;
    }
    int line = 1;
    const char *a = ref, *b = got;
    while (*a && *a == *b) {
        if (*a == '\n') line++;
        a++, b++;
    }
    while (a > ref && a[-1] != '\n') a--;
    while (b > got && b[-1] != '\n') b--;
    char la[80], lb[80];
    first_line(a, la, sizeof la);
    first_line(b, lb, sizeof lb);
    snprintf(out, cap, "output differs from the glibc reference at line %d: \"%s\" instead of \"%s\"", line, lb, la);
}

/* ---- The SQL script of real-sqlite ------------------------------------------------ */
/* Deterministic: no random(), no dates. n (70000 at scale 1) single-row
 * INSERTs (each one parsed and prepared by the shell), 2n rows from a
 * recursive CTE, three indexes, aggregates, a join, a window function, LIKE and group_concat,
 * updates, deletes, point queries (each a fresh statement) and an integrity
 * check. Returns the number of statements, or -1. */
static long sql_rows(double scale) {
    long n = (long)(70000 * scale);
    return n < 2000 ? 2000 : n;
}

static long write_sql(const char *path, double scale) {
    long n = sql_rows(scale);
    long points = n / 50 < 200 ? 200 : n / 50;
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    long st = 0;
    fprintf(f, "CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT NOT NULL, grp INTEGER, price REAL, qty INTEGER, note TEXT);\n"
               "CREATE TABLE events(id INTEGER PRIMARY KEY, item INTEGER, kind TEXT, amount INTEGER, tag TEXT);\n"
               "BEGIN;\n");
    st += 3;
    static const char letters[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    for (long i = 1; i <= n; i++) {
        unsigned long k = (unsigned long)i * 2654435761UL % 4294967296UL;
        int nl = 4 + (int)(k % 40);
        char note[64];
        for (int j = 0; j < nl; j++) note[j] = letters[(k >> (j % 24)) % 36];
        note[nl] = 0;
        fprintf(f, "INSERT INTO items VALUES(%ld,'item-%lu',%lu,%lu.%02lu,%lu,'%s');\n", i, k % 1000003, k % 211,
                k % 5000, k % 100, k % 50, note);
    }
    st += n;
    fprintf(f, "COMMIT;\n"
               "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < %ld) "
               "INSERT INTO events(item, kind, amount, tag) SELECT 1 + (x * 7919) %% %ld, "
               "CASE x %% 4 WHEN 0 THEN 'sale' WHEN 1 THEN 'refund' WHEN 2 THEN 'view' ELSE 'cart' END, "
               "(x * 40503) %% 10000, printf('tag-%%06x', (x * 2654435761) %% 16777216) FROM c;\n"
               "CREATE INDEX items_grp ON items(grp, price);\n"
               "CREATE INDEX events_item ON events(item);\n"
               "CREATE INDEX events_tag ON events(tag);\n",
            2 * n, n);
    st += 5;
    fprintf(f, ".print == aggregates\n"
               "SELECT count(*), sum(qty), round(sum(price), 2), min(name), max(name) FROM items;\n"
               "SELECT kind, count(*), sum(amount), min(tag), max(tag) FROM events GROUP BY kind ORDER BY kind;\n"
               ".print == join\n"
               "SELECT i.grp, count(*), sum(e.amount) FROM items i JOIN events e ON e.item = i.id "
               "GROUP BY i.grp ORDER BY 3 DESC, 1 LIMIT 20;\n"
               ".print == window\n"
               "SELECT grp, id, price, r FROM (SELECT grp, id, price, row_number() OVER "
               "(PARTITION BY grp ORDER BY price DESC, id) AS r FROM items) WHERE r <= 2 ORDER BY grp, r LIMIT 40;\n"
               ".print == text\n"
               "SELECT count(*), sum(length(note)) FROM items WHERE note LIKE '%%ab%%';\n"
               "SELECT length(group_concat(tag, ',')), count(DISTINCT tag) FROM "
               "(SELECT tag FROM events ORDER BY tag LIMIT 50000);\n"
               "SELECT grp, group_concat(name, ' ') FROM (SELECT grp, name FROM items WHERE grp < 5 ORDER BY id LIMIT 40) "
               "GROUP BY grp ORDER BY grp;\n"
               ".print == update\n"
               "UPDATE items SET price = round(price * 1.1, 2), note = note || '-' || id WHERE grp %% 3 = 0;\n"
               "SELECT changes();\n"
               "UPDATE events SET amount = amount + 1, tag = tag || '+' WHERE kind = 'sale';\n"
               "SELECT changes();\n"
               ".print == delete\n"
               "DELETE FROM events WHERE amount %% 7 = 0;\n"
               "SELECT changes();\n"
               "DELETE FROM items WHERE id %% 11 = 0;\n"
               "SELECT changes();\n"
               ".print == point queries\n");
    st += 13;
    for (long i = 1; i <= points; i++)
        fprintf(f, "SELECT id, name, price, note FROM items WHERE id = %ld;\n", 1 + (i * 104729) % n);
    for (long i = 1; i <= points / 4; i++)
        fprintf(f, "SELECT count(*), coalesce(sum(amount), 0) FROM events WHERE item = %ld;\n", 1 + (i * 1299709) % n);
    st += points + points / 4;
    fprintf(f, ".print == after\n"
               "SELECT count(*), sum(qty), round(sum(price), 2), sum(length(note)) FROM items;\n"
               "SELECT count(*), sum(amount), sum(length(tag)) FROM events;\n"
               "PRAGMA integrity_check;\n"
               ".print == end\n");
    st += 3;
    if (fclose(f) != 0) return -1;
    return st;
}

/* The script for a scale: written once per number of rows (the main table
 * and the Diagnostics section run different sizes) in the scratch
 * directory. Its path, or NULL when it cannot be written; *statements is
 * its statement count. */
static const char *sql_script(double scale, long *statements) {
    static struct {
        long rows, statements;
        char path[PATH_MAX];
    } script[8];
    static int nscript;
    long rows = sql_rows(scale);
    for (int i = 0; i < nscript; i++)
        if (script[i].rows == rows) {
            *statements = script[i].statements;
            return script[i].path;
        }
    if (nscript == 8 || tmp_init() != 0) return NULL;
    char name[64];
    snprintf(name, sizeof name, "real-sqlite-%ld.sql", rows);
    tmp_path(script[nscript].path, sizeof script[nscript].path, name);
    long st = write_sql(script[nscript].path, scale);
    if (st < 0) return NULL;
    script[nscript].rows = rows;
    script[nscript].statements = *statements = st;
    return script[nscript++].path;
}

/* ---- Running python3 and sqlite3 ---------------------------------------------------- */

/* One run of python3 or sqlite3 under the allocator whose preloaded copy is
 * run_path ("" = glibc); fills r (ok, error, figures, out_hash). `wrapper`
 * (NULL-terminated, or NULL) goes ahead of the program's command line
 * (valgrind), `more_env` (NULL-terminated, or NULL) adds to its
 * environment. With out non-NULL, the output is handed back (the
 * reference run keeps it). */
static void run_program(hkb_t *b, hkb_workload_t *w, const char *run_path, const char *alloc,
                        const char *const *wrapper, char *const *more_env, hkb_run_t *r, char **out) {
    char probe[PATH_MAX], probe_out[PATH_MAX], preload[2 * PATH_MAX + 2], scale[32], threads[16], script[PATH_MAX + 32];
    probe_so(b, probe, sizeof probe);
    tmp_path(probe_out, sizeof probe_out, "probe.txt");
    snprintf(preload, sizeof preload, "%s:%s", *run_path ? run_path : libc_path(), probe);
    snprintf(scale, sizeof scale, "%g", hkb_scale_of(b, w));
    snprintf(threads, sizeof threads, "%d", b->threads);
    snprintf(script, sizeof script, "%s/rp_python.py", b->bin_dir);
    char probe_env[PATH_MAX + 32];
    snprintf(probe_env, sizeof probe_env, "HKBENCH_PROBE_OUT=%s", probe_out);
    /* Same environment under every allocator: C locale; for python, every
     * object from malloc (pymalloc would serve those up to 512 bytes from
     * its own arenas, hiding the allocator), a fixed hash seed, no .pyc
     * writes and no inherited PYTHON* settings. */
    char *env[16] = { probe_env, "LC_ALL=C", "-PYTHON", "PYTHONMALLOC=malloc", "PYTHONHASHSEED=0",
                      "PYTHONDONTWRITEBYTECODE=1", NULL };
    for (int i = 6, k = 0; more_env && more_env[k] && i < 15; i++, k++) env[i] = more_env[k];
    char read_cmd[PATH_MAX + 16];
    long statements = -1;
    const char *sql = w->real == HKB_REAL_SQLITE ? sql_script(hkb_scale_of(b, w), &statements) : "";
    snprintf(read_cmd, sizeof read_cmd, ".read %s", sql ? sql : "");
    char *py[] = { progs[P_PYTHON].path, "-s", script, "--scale", scale, "--threads", threads, NULL };
    char *sq[] = { progs[P_SQLITE].path, "-batch", "-bail", "-init", "/dev/null", ":memory:", read_cmd, NULL };
    char **cmd_argv = w->real == HKB_REAL_PYTHON ? py : sq;
    char *argv[32];
    int argc = 0;
    for (int i = 0; wrapper && wrapper[i] && argc < 16; i++) argv[argc++] = (char *)wrapper[i];
    for (int i = 0; cmd_argv[i]; i++) argv[argc++] = cmd_argv[i];
    argv[argc] = NULL;

    unlink(probe_out);
    r->done = 1;
    r->ok = 0;
    r->exit_code = -1;
    r->ops = r->live_peak = -1;
    r->hwm_kib = -1;
    if (!sql) {
        snprintf(r->error, sizeof r->error, "cannot write the SQL script in %.200s", tmp_dir);
        return;
    }
    hkb_child_t c;
    if (hkb_spawn_env(argv, preload, env, b->timeout_s, &c) != 0) {
        snprintf(r->error, sizeof r->error, "could not start %s: %s", argv[0], strerror(errno));
        return;
    }
    r->exit_code = c.exit_code;
    r->signal = c.signal;
    r->timed_out = c.timed_out;
    r->wall_s = c.wall_s;
    take_rusage(r, &c.ru);
    char first[200];
    first_line(c.err, first, sizeof first);
    read_probe(probe_out, c.pid, r->malloc_from, sizeof r->malloc_from, &r->hwm_kib);
    const char *o = c.out ? c.out : "";
    uint64_t h = fnv(FNV0, o, strlen(o));
    snprintf(r->out_hash, sizeof r->out_hash, "%016llx", (unsigned long long)h);
    if (w->real == HKB_REAL_PYTHON) {
        /* The last line: "n 20000 objects 2222140". */
        const char *last = strstr(o, "\nn ");
        long long nn, obj;
        if (last && sscanf(last + 1, "n %lld objects %lld", &nn, &obj) == 2) r->ops = obj;
    } else {
        r->ops = statements;
    }
    if (c.timed_out)
        snprintf(r->error, sizeof r->error, "timed out after %.0f s", b->timeout_s);
    else if (c.signal)
        snprintf(r->error, sizeof r->error, "killed by signal %d (%s)%s%s", c.signal, strsignal(c.signal),
                 *first ? ": " : "", first);
    else if (c.exit_code != 0)
        snprintf(r->error, sizeof r->error, "exit %d%s%s", c.exit_code, *first ? ": " : "", first);
    else if (!*o)
        snprintf(r->error, sizeof r->error, "no output");
    else if (!check_malloc_from(r->malloc_from, run_path, alloc, r->error, sizeof r->error))
        ;
    else if (*w->ref_hash && strcmp(w->ref_hash, r->out_hash))
        describe_diff(w->ref_out, o, r->error, sizeof r->error);
    else
        r->ok = 1;
    if (out) {
        *out = c.out;
        c.out = NULL;
    }
    hkb_child_free(&c);
}

/* ---- A small RESP client ------------------------------------------------------------- */
/* Blocking in spirit, but every wait is a poll() against the run's
 * deadline, so a server that stops answering costs at most the timeout. */

typedef struct {
    int fd;
    double deadline;
    char *buf;
    size_t len, pos, cap;
    uint64_t hash;            /* every reply byte, in order */
    char err[200];
} rconn_t;

typedef struct {
    char *p;
    size_t n, cap;
} sbuf_t;

static int sb_put(sbuf_t *s, const void *d, size_t n) {
    if (s->n + n > s->cap) {
        size_t nc = s->cap ? s->cap : 1 << 16;
        while (nc < s->n + n) nc *= 2;
        char *np = realloc(s->p, nc);
        if (!np) return -1;
        s->p = np;
        s->cap = nc;
    }
    memcpy(s->p + s->n, d, n);
    s->n += n;
    return 0;
}

/* Appends one command: argc NUL-terminated arguments. */
static void cmd(sbuf_t *s, int argc, ...) {
    char hdr[32];
    va_list ap;
    va_start(ap, argc);
    sb_put(s, hdr, (size_t)snprintf(hdr, sizeof hdr, "*%d\r\n", argc));
    for (int i = 0; i < argc; i++) {
        const char *a = va_arg(ap, const char *);
        size_t n = strlen(a);
        sb_put(s, hdr, (size_t)snprintf(hdr, sizeof hdr, "$%zu\r\n", n));
        sb_put(s, a, n);
        sb_put(s, "\r\n", 2);
    }
    va_end(ap);
}

static int wait_fd(rconn_t *c, short ev) {
    for (;;) {
        double left = c->deadline - now_s();
        if (left <= 0) {
            snprintf(c->err, sizeof c->err, "the server did not answer in time");
            return -1;
        }
        struct pollfd p = { c->fd, ev, 0 };
        int r = poll(&p, 1, (int)(left * 1000) + 1);
        if (r > 0) return 0;
        if (r < 0 && errno != EINTR) {
            snprintf(c->err, sizeof c->err, "poll: %s", strerror(errno));
            return -1;
        }
    }
}

static int rc_connect(rconn_t *c, int port, double deadline) {
    memset(c, 0, sizeof *c);
    c->deadline = deadline;
    c->hash = FNV0;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (c->fd < 0) {
        snprintf(c->err, sizeof c->err, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = { 0 };
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (errno != EINPROGRESS) {
            snprintf(c->err, sizeof c->err, "connect: %s", strerror(errno));
            return -1;
        }
        if (wait_fd(c, POLLOUT) != 0) return -1;
        int e = 0;
        socklen_t el = sizeof e;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &el);
        if (e) {
            snprintf(c->err, sizeof c->err, "connect: %s", strerror(e));
            return -1;
        }
    }
    return 0;
}

static void rc_close(rconn_t *c) {
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
}

static int rc_send(rconn_t *c, const char *d, size_t n) {
    while (n > 0) {
        ssize_t k = send(c->fd, d, n, MSG_NOSIGNAL);
        if (k > 0) {
            d += k;
            n -= (size_t)k;
        } else if (k < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (wait_fd(c, POLLOUT) != 0) return -1;
        } else {
            snprintf(c->err, sizeof c->err, "send: %s", k < 0 ? strerror(errno) : "closed");
            return -1;
        }
    }
    return 0;
}

/* At least `need` unread bytes in the buffer (from c->pos). */
static int rc_need(rconn_t *c, size_t need) {
    while (c->len - c->pos < need) {
        if (c->len + 65536 > c->cap) {
            size_t nc = c->cap ? c->cap * 2 : 1 << 17;
            while (nc < c->len + 65536) nc *= 2;
            char *nb = realloc(c->buf, nc);
            if (!nb) {
                snprintf(c->err, sizeof c->err, "out of memory");
                return -1;
            }
            c->buf = nb;
            c->cap = nc;
        }
        ssize_t k = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (k > 0) {
            c->len += (size_t)k;
        } else if (k < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (wait_fd(c, POLLIN) != 0) return -1;
        } else {
            snprintf(c->err, sizeof c->err, "the server closed the connection%s%s", k < 0 ? ": " : "",
                     k < 0 ? strerror(errno) : "");
            return -1;
        }
    }
    return 0;
}

/* One line at c->pos (without its CRLF): its offset and length. */
static int rc_line(rconn_t *c, size_t *off, size_t *len) {
    size_t scan = c->pos;
    for (;;) {
        for (; scan + 1 < c->len; scan++)
            if (c->buf[scan] == '\r' && c->buf[scan + 1] == '\n') {
                *off = c->pos;
                *len = scan - c->pos;
                c->pos = scan + 2;
                return 0;
            }
        if (rc_need(c, c->len - c->pos + 1) != 0) return -1;
    }
}

/* Parses one reply (recursively for arrays). Top level: the type byte and,
 * for a bulk string, its value copied to val (NUL-terminated, truncated to
 * cap; *vlen -1 for nil). Error replies are returned, not failed on. */
static int rc_parse(rconn_t *c, char *type, char *val, size_t cap, long long *vlen, int depth) {
    size_t off, len;
    if (depth > 8) {
        snprintf(c->err, sizeof c->err, "reply nested too deeply");
        return -1;
    }
    if (rc_line(c, &off, &len) != 0) return -1;
    if (len == 0) {
        snprintf(c->err, sizeof c->err, "malformed reply");
        return -1;
    }
    char t = c->buf[off];
    char num[32];
    snprintf(num, sizeof num, "%.*s", (int)(len - 1 < 31 ? len - 1 : 31), c->buf + off + 1);
    long long n = atoll(num);
    if (type) *type = t;
    if (vlen) *vlen = n;
    if (val && cap) {
        size_t k = len - 1 < cap - 1 ? len - 1 : cap - 1;
        memcpy(val, c->buf + off + 1, k);
        val[k] = 0;
    }
    if (t == '$' && n >= 0) {
        if (n > (1LL << 30) || rc_need(c, (size_t)n + 2) != 0) return -1;
        if (val && cap) {
            size_t k = (size_t)n < cap - 1 ? (size_t)n : cap - 1;
            memcpy(val, c->buf + c->pos, k);
            val[k] = 0;
        }
        c->pos += (size_t)n + 2;
    } else if (t == '*' && n > 0) {
        for (long long i = 0; i < n; i++)
            if (rc_parse(c, NULL, NULL, 0, NULL, depth + 1) != 0) return -1;
    } else if (t != '+' && t != '-' && t != ':' && t != '$' && t != '*') {
        snprintf(c->err, sizeof c->err, "malformed reply (type '%c')", t);
        return -1;
    }
    return 0;
}

/* One reply, hashed; fails on an error reply. */
static int rc_reply(rconn_t *c, char *type, char *val, size_t cap, long long *vlen) {
    if (c->pos > 0 && c->pos == c->len) c->pos = c->len = 0;
    else if (c->pos > (1 << 20)) {
        memmove(c->buf, c->buf + c->pos, c->len - c->pos);
        c->len -= c->pos;
        c->pos = 0;
    }
    size_t start = c->pos;
    char t;
    char v[200];
    if (!val) val = v, cap = sizeof v;
    if (rc_parse(c, &t, val, cap, vlen, 0) != 0) return -1;
    c->hash = fnv(c->hash, c->buf + start, c->pos - start);
    if (type) *type = t;
    if (t == '-') {
        snprintf(c->err, sizeof c->err, "the server replied: %.150s", val);
        return -1;
    }
    return 0;
}

/* Sends the batch and reads as many replies as it has commands. */
static int rc_batch(rconn_t *c, sbuf_t *s, int ncmd) {
    if (rc_send(c, s->p, s->n) != 0) return -1;
    s->n = 0;
    for (int i = 0; i < ncmd; i++)
        if (rc_reply(c, NULL, NULL, 0, NULL) != 0) return -1;
    return 0;
}

/* ---- The redis run -------------------------------------------------------------------- */

/* The value stored under hk:s:<i>: 10..499 bytes, derived from i. */
static size_t value_of(long i, char *out) {
    size_t len = 10 + (size_t)((i * 7919) % 490);
    int k = snprintf(out, 32, "v%ld:", i);
    for (size_t j = (size_t)k; j < len; j++) out[j] = (char)('a' + (i * 31 + (long)j) % 26);
    out[len] = 0;
    return len;
}

/* The data set the runner itself writes (database 1, away from the
 * benchmark's keys in database 0): strings of many sizes, some deleted;
 * lists pushed and popped; hashes; sets; a counter. */
static int redis_load(rconn_t *c, long keys) {
    sbuf_t s = { 0 };
    char k[64], k2[64], f[32], v[512], m[32];
    int n = 0, rc = 0;
    cmd(&s, 2, "SELECT", "1");
    cmd(&s, 1, "FLUSHDB");
    n += 2;
    for (long i = 0; i < keys && rc == 0; i++) {
        value_of(i, v);
        snprintf(k, sizeof k, "hk:s:%ld", i);
        cmd(&s, 3, "SET", k, v);
        snprintf(k, sizeof k, "hk:l:%ld", i % 64);
        snprintf(m, sizeof m, "%ld", i);
        cmd(&s, 3, "RPUSH", k, m);
        snprintf(k, sizeof k, "hk:h:%ld", i % 32);
        snprintf(f, sizeof f, "f%ld", i);
        v[20] = 0;
        cmd(&s, 4, "HSET", k, f, v);
        snprintf(k, sizeof k, "hk:z:%ld", i % 16);
        snprintf(m, sizeof m, "m%ld", i % 5000);
        cmd(&s, 3, "SADD", k, m);
        n += 4;
        if (i % 5 == 4) {
            snprintf(k2, sizeof k2, "hk:s:%ld", i - 2);
            cmd(&s, 2, "DEL", k2);
            n++;
        }
        if (i % 7 == 6) {
            snprintf(k, sizeof k, "hk:l:%ld", i % 64);
            cmd(&s, 2, "LPOP", k);
            n++;
        }
        if (i % 100 == 99) {
            cmd(&s, 2, "INCR", "hk:counter");
            n++;
        }
        if (n >= 400) {
            rc = rc_batch(c, &s, n);
            n = 0;
        }
    }
    if (rc == 0 && n) rc = rc_batch(c, &s, n);
    free(s.p);
    return rc;
}

/* Reads everything back and checks every string value. */
static int redis_verify(rconn_t *c, long keys) {
    sbuf_t s = { 0 };
    char k[64], v[512], got[512];
    int rc = 0;
    cmd(&s, 2, "SELECT", "1");
    if (rc_batch(c, &s, 1) != 0) {
        free(s.p);
        return -1;
    }
    for (long i0 = 0; i0 < keys && rc == 0; i0 += 256) {
        long i1 = i0 + 256 < keys ? i0 + 256 : keys;
        for (long i = i0; i < i1; i++) {
            snprintf(k, sizeof k, "hk:s:%ld", i);
            cmd(&s, 2, "GET", k);
        }
        if (rc_send(c, s.p, s.n) != 0) {
            rc = -1;
            break;
        }
        s.n = 0;
        for (long i = i0; i < i1 && rc == 0; i++) {
            char t;
            long long len;
            if (rc_reply(c, &t, got, sizeof got, &len) != 0) {
                rc = -1;
                break;
            }
            int deleted = i % 5 == 2 && i + 2 < keys;
            size_t vl = value_of(i, v);
            if (deleted ? len != -1 : (t != '$' || len != (long long)vl || strcmp(got, v))) {
                snprintf(c->err, sizeof c->err, "GET hk:s:%ld returned %s", i,
                         len == -1 ? "nil" : deleted ? "a value for a deleted key" : "a wrong value");
                rc = -1;
            }
        }
    }
    int n = 0;
    for (int j = 0; j < 64 && rc == 0; j++) {
        snprintf(k, sizeof k, "hk:l:%d", j);
        cmd(&s, 2, "LLEN", k);
        cmd(&s, 4, "LRANGE", k, "0", "4");
        n += 2;
    }
    for (int j = 0; j < 32 && rc == 0; j++) {
        char f[32];
        snprintf(k, sizeof k, "hk:h:%d", j);
        snprintf(f, sizeof f, "f%d", j);
        cmd(&s, 2, "HLEN", k);
        cmd(&s, 3, "HGET", k, f);
        n += 2;
    }
    for (int j = 0; j < 16 && rc == 0; j++) {
        snprintf(k, sizeof k, "hk:z:%d", j);
        cmd(&s, 2, "SCARD", k);
        n++;
    }
    cmd(&s, 2, "GET", "hk:counter");
    cmd(&s, 1, "DBSIZE");
    n += 2;
    if (rc == 0) rc = rc_batch(c, &s, n);
    free(s.p);
    return rc;
}

static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = { 0 };
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t l = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &l) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* Kills the server (its whole process group) and reaps it. */
static void kill_server(pid_t pid, struct rusage *ru) {
    int st;
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    while (wait4(pid, &st, 0, ru) < 0 && errno == EINTR) {
    }
    hkb_spawn_guard(0);
}

/* Waits up to `secs` for the server to exit. 1 if it did (status, ru set). */
static int wait_server(pid_t pid, double secs, int *status, struct rusage *ru) {
    double end = now_s() + secs;
    for (;;) {
        pid_t w = wait4(pid, status, WNOHANG, ru);
        if (w == pid) return 1;
        if (w < 0 && errno != EINTR) return 1; /* not ours any more */
        if (now_s() >= end) return 0;
        struct timespec ts = { 0, 5000000 };
        nanosleep(&ts, NULL);
    }
}

static pid_t start_server(hkb_t *b, const char *preload, int port, const char *log) {
    char probe_out[PATH_MAX], probe_env[PATH_MAX + 32], ports[16];
    tmp_path(probe_out, sizeof probe_out, "probe.txt");
    snprintf(probe_env, sizeof probe_env, "HKBENCH_PROBE_OUT=%s", probe_out);
    snprintf(ports, sizeof ports, "%d", port);
    char *extra[] = { probe_env, "LC_ALL=C", NULL };
    char pbuf[2 * PATH_MAX + 16];
    char **env = hkb_spawn_environ(preload, extra, pbuf, sizeof pbuf);
    if (!env) return -1;
    /* 127.0.0.1 only, no persistence, no config file (Debian's
     * /etc/redis/redis.conf is not read), quiet log. */
    char *argv[] = { progs[P_REDIS_SERVER].path, "--port", ports, "--bind", "127.0.0.1", "--protected-mode", "yes",
                     "--save", "", "--appendonly", "no", "--daemonize", "no", "--supervised", "no",
                     "--dir", tmp_dir, "--dbfilename", "hkbench-never-saved.rdb", "--logfile", "",
                     "--loglevel", "warning", "--databases", "16", NULL };
    pid_t parent = getpid();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        free(env);
        return -1;
    }
    if (pid == 0) {
        setpgid(0, 0);
        /* The server must not outlive the runner, whatever kills it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(126);
        int in = open("/dev/null", O_RDONLY), out = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (in >= 0) dup2(in, 0);
        if (out >= 0) {
            dup2(out, 1);
            dup2(out, 2);
        }
        execve(argv[0], argv, env);
        dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid);
    hkb_spawn_guard(pid);
    free(env);
    (void)b;
    return pid;
}

/* Requests per test of redis-benchmark at this scale. */
static long bench_requests(double scale) {
    long n = (long)(100000 * scale);
    return n < 2000 ? 2000 : n;
}
static long load_keys(double scale) {
    long n = (long)(20000 * scale);
    return n < 500 ? 500 : n;
}

static const char *bench_tests = "set,get,lpush,lpop";
enum { NTESTS = 4 };

/* Parses redis-benchmark --csv: "SET","265000.00",... per test. */
static int parse_bench(const char *out, char *detail, size_t cap, char *err, size_t ecap) {
    int found = 0;
    size_t dl = 0;
    detail[0] = 0;
    for (const char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        char name[32];
        double rps;
        if (sscanf(l, "\"%31[^\"]\",\"%lf\"", name, &rps) != 2 || !strcmp(name, "test")) continue;
        if (!(rps > 0)) {
            snprintf(err, ecap, "redis-benchmark: %s at %g requests/s", name, rps);
            return -1;
        }
        found++;
        if (dl < cap) dl += (size_t)snprintf(detail + dl, cap - dl, "%s%s %.0fK/s", dl ? " " : "", name, rps / 1000);
    }
    if (found != NTESTS) {
        char first[120];
        first_line(out, first, sizeof first);
        snprintf(err, ecap, "redis-benchmark printed %d results, not %d%s%s", found, NTESTS, *first ? ": " : "", first);
        return -1;
    }
    return 0;
}

static void run_redis(hkb_t *b, hkb_workload_t *w, const char *run_path, const char *alloc, hkb_run_t *r) {
    char probe[PATH_MAX], probe_out[PATH_MAX], preload[2 * PATH_MAX + 2], log[PATH_MAX];
    probe_so(b, probe, sizeof probe);
    tmp_path(probe_out, sizeof probe_out, "probe.txt");
    tmp_path(log, sizeof log, "redis.log");
    snprintf(preload, sizeof preload, "%s:%s", *run_path ? run_path : libc_path(), probe);
    r->done = 1;
    r->ok = 0;
    r->exit_code = -1;
    r->ops = r->live_peak = -1;
    r->hwm_kib = -1;
    r->rps = NAN;
    double deadline = now_s() + b->timeout_s;
    long keys = load_keys(b->scale), nreq = bench_requests(b->scale);

    pid_t pid = -1;
    int port = -1;
    rconn_t c = { .fd = -1 };
    /* Start it and wait for PONG; a port taken between our probe and the
     * server's bind is retried with another. */
    for (int attempt = 0; attempt < 3; attempt++) {
        unlink(probe_out);
        port = free_port();
        if (port <= 0) {
            snprintf(r->error, sizeof r->error, "no free port on 127.0.0.1");
            return;
        }
        pid = start_server(b, preload, port, log);
        if (pid < 0) {
            snprintf(r->error, sizeof r->error, "could not start redis-server: %s", strerror(errno));
            return;
        }
        double up = now_s() + (b->timeout_s < 15 ? b->timeout_s : 15);
        int ready = 0, exited = 0, st = 0;
        struct rusage ru;
        while (!ready && now_s() < up) {
            if (wait4(pid, &st, WNOHANG, &ru) == pid) {
                exited = 1;
                break;
            }
            rconn_t p;
            if (rc_connect(&p, port, now_s() + 1) == 0 && rc_send(&p, "PING\r\n", 6) == 0) {
                char t, v[64];
                if (rc_parse(&p, &t, v, sizeof v, NULL, 0) == 0 && t == '+' && !strcmp(v, "PONG")) ready = 1;
            }
            rc_close(&p);
            if (!ready) {
                struct timespec ts = { 0, 10000000 };
                nanosleep(&ts, NULL);
            }
        }
        if (ready) break;
        char last[200];
        last_log_line(log, last, sizeof last);
        if (exited) {
            hkb_spawn_guard(0);
            if (strstr(last, "in use") && attempt < 2) continue;
            if (WIFSIGNALED(st))
                snprintf(r->error, sizeof r->error, "redis-server died at start-up with signal %d (%s)%s%s",
                         WTERMSIG(st), strsignal(WTERMSIG(st)), *last ? ": " : "", last);
            else
                snprintf(r->error, sizeof r->error, "redis-server exited %d at start-up%s%s", WEXITSTATUS(st),
                         *last ? ": " : "", last);
        } else {
            kill_server(pid, &ru);
            snprintf(r->error, sizeof r->error, "redis-server did not answer PING in time%s%s", *last ? ": " : "",
                     last);
        }
        return;
    }

    /* The runner's data set, the benchmark, the check. */
    const char *fail = NULL;
    char detail[200] = "";
    if (rc_connect(&c, port, deadline) != 0 || redis_load(&c, keys) != 0) {
        fail = "loading the data set";
    } else {
        char host_port[16], n[24], threads[16];
        snprintf(host_port, sizeof host_port, "%d", port);
        snprintf(n, sizeof n, "%ld", nreq);
        snprintf(threads, sizeof threads, "%d", 20);
        char *argv[] = { progs[P_REDIS_BENCH].path, "-h", "127.0.0.1", "-p", host_port, "-n", n, "-c", threads, "-P",
                         "16", "-r", "100000", "-d", "100", "-t", (char *)bench_tests, "-q", "--csv", NULL };
        hkb_child_t bc;
        double left = deadline - now_s();
        if (left <= 1) {
            snprintf(c.err, sizeof c.err, "no time left for redis-benchmark (--timeout %.0f s)", b->timeout_s);
            fail = "running redis-benchmark";
        } else if (hkb_spawn(argv, "", left, &bc) != 0) {
            snprintf(c.err, sizeof c.err, "could not start redis-benchmark: %s", strerror(errno));
            fail = "running redis-benchmark";
        } else {
            r->wall_s = bc.wall_s;
            char first[160];
            first_line(bc.err, first, sizeof first);
            if (bc.timed_out)
                snprintf(c.err, sizeof c.err, "redis-benchmark timed out");
            else if (bc.signal || bc.exit_code != 0)
                snprintf(c.err, sizeof c.err, "redis-benchmark failed (exit %d, signal %d)%s%.120s", bc.exit_code,
                         bc.signal, *first ? ": " : "", first);
            else if (parse_bench(bc.out ? bc.out : "", detail, sizeof detail, c.err, sizeof c.err) == 0) {
                r->ops = nreq * NTESTS;
                r->rps = r->wall_s > 0 ? (double)r->ops / r->wall_s : NAN;
            }
            if (isnan(r->rps) || r->ops < 0) fail = "running redis-benchmark";
            hkb_child_free(&bc);
        }
        if (!fail && redis_verify(&c, keys) != 0) fail = "checking the data set";
    }
    snprintf(r->out_hash, sizeof r->out_hash, "%016llx", (unsigned long long)c.hash);
    snprintf(r->detail, sizeof r->detail, "%s", detail);

    /* VmHWM while it is still there, then SHUTDOWN NOSAVE and wait4. */
    char status_path[64], buf[4096];
    snprintf(status_path, sizeof status_path, "/proc/%d/status", (int)pid);
    int sfd = open(status_path, O_RDONLY | O_CLOEXEC);
    if (sfd >= 0) {
        ssize_t k = read(sfd, buf, sizeof buf - 1);
        close(sfd);
        buf[k > 0 ? k : 0] = 0;
        const char *h = strstr(buf, "VmHWM:");
        if (h) r->hwm_kib = strtol(h + 6, NULL, 10);
    }
    int st = 0, exited = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    if (c.fd >= 0 && !fail) {
        static const char shut[] = "*2\r\n$8\r\nSHUTDOWN\r\n$6\r\nNOSAVE\r\n";
        c.deadline = now_s() + 10;
        rc_send(&c, shut, sizeof shut - 1);
        exited = wait_server(pid, 10, &st, &ru);
    } else {
        /* After a failure: did the server die under us? Then that is the
         * news, not the socket error it caused. */
        exited = wait_server(pid, 0.2, &st, &ru);
    }
    rc_close(&c);
    char last[200];
    last_log_line(log, last, sizeof last);
    if (!exited) {
        kill_server(pid, &ru);
        if (!fail) snprintf(r->error, sizeof r->error, "redis-server did not stop after SHUTDOWN NOSAVE");
    } else {
        hkb_spawn_guard(0);
    }
    take_rusage(r, &ru);
    if (fail) {
        if (exited && WIFSIGNALED(st))
            snprintf(r->error, sizeof r->error, "redis-server killed by signal %d (%s) while %s", WTERMSIG(st),
                     strsignal(WTERMSIG(st)), fail);
        else
            snprintf(r->error, sizeof r->error, "%s: %.200s", fail, c.err);
        return;
    }
    if (!exited) return;
    r->exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    r->signal = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
    long probe_hwm;
    read_probe(probe_out, (int)pid, r->malloc_from, sizeof r->malloc_from, &probe_hwm);
    if (r->signal)
        snprintf(r->error, sizeof r->error, "redis-server killed by signal %d (%s) at shutdown%s%s", r->signal,
                 strsignal(r->signal), *last ? ": " : "", last);
    else if (r->exit_code != 0)
        snprintf(r->error, sizeof r->error, "redis-server exited %d at shutdown%s%s", r->exit_code, *last ? ": " : "",
                 last);
    else if (!check_malloc_from(r->malloc_from, run_path, alloc, r->error, sizeof r->error))
        ;
    else if (*w->ref_hash && strcmp(w->ref_hash, r->out_hash))
        snprintf(r->error, sizeof r->error, "the server's replies differ from the glibc reference run (hash %s, not %s)",
                 r->out_hash, w->ref_hash);
    else
        r->ok = 1;
}

/* ---- Preparing a workload, and one run ------------------------------------------------- */

static void version_of(const char *prog, char *out, size_t cap) {
    char *argv[] = { (char *)prog, "--version", NULL };
    hkb_child_t c;
    out[0] = 0;
    if (hkb_spawn(argv, "", 10, &c) != 0) return;
    first_line(c.out && *c.out ? c.out : c.err, out, cap);
    hkb_child_free(&c);
}

void hkb_real_prepare(hkb_t *b, hkb_workload_t *w, int reference) {
    int need[2] = { -1, -1 };
    switch (w->real) {
    case HKB_REAL_PYTHON: need[0] = P_PYTHON; break;
    case HKB_REAL_SQLITE: need[0] = P_SQLITE; break;
    default: need[0] = P_REDIS_SERVER, need[1] = P_REDIS_BENCH; break;
    }
    w->ok = 0;
    for (int i = 0; i < 2; i++)
        if (need[i] >= 0 && !is_exec(progs[need[i]].path)) {
            snprintf(w->reason, sizeof w->reason, "%s not found (apt-get install %s)", progs[need[i]].path,
                     progs[need[i]].install);
            return;
        }
    char probe[PATH_MAX];
    probe_so(b, probe, sizeof probe);
    if (!is_exec(probe) && access(probe, R_OK) != 0) {
        snprintf(w->reason, sizeof w->reason, "%.200s not built (the bench's CMake target hkbench_probe)", probe);
        return;
    }
    if (w->real == HKB_REAL_PYTHON) {
        char script[PATH_MAX + 32];
        snprintf(script, sizeof script, "%s/rp_python.py", b->bin_dir);
        if (access(script, R_OK) != 0) {
            snprintf(w->reason, sizeof w->reason, "%.200s missing (copied there by the bench's CMake)", script);
            return;
        }
    }
    if (!*libc_path()) {
        snprintf(w->reason, sizeof w->reason, "cannot find the path of libc.so (dladdr)");
        return;
    }
    w->ok = 1;
    if (!reference) return;
    /* The same program at the same scale was prepared already (the
     * Diagnostics section's variants of one program): its reference
     * serves this workload too. */
    double wscale = hkb_scale_of(b, w);
    for (int o = 0; o < b->nwork; o++) {
        hkb_workload_t *x = &b->work[o];
        if (x == w || x->real != w->real || hkb_scale_of(b, x) != wscale || (!*x->ref_hash && !*x->ref_error))
            continue;
        snprintf(w->command, sizeof w->command, "%s", x->command);
        snprintf(w->version, sizeof w->version, "%s", x->version);
        snprintf(w->ref_hash, sizeof w->ref_hash, "%s", x->ref_hash);
        snprintf(w->ref_error, sizeof w->ref_error, "%s", x->ref_error);
        w->ref_out = x->ref_out;
        return;
    }
    if (tmp_init() != 0) {
        w->ok = 0;
        snprintf(w->reason, sizeof w->reason, "cannot create a temporary directory: %s", strerror(errno));
        return;
    }
    char scale[32];
    snprintf(scale, sizeof scale, "%g", wscale);
    if (w->real == HKB_REAL_PYTHON) {
        version_of(progs[P_PYTHON].path, w->version, sizeof w->version);
        snprintf(w->command, sizeof w->command,
                 "PYTHONMALLOC=malloc PYTHONHASHSEED=0 %.300s -s rp_python.py --scale %s --threads %d", progs[P_PYTHON].path,
                 scale, b->threads);
    } else if (w->real == HKB_REAL_SQLITE) {
        long sql_statements = -1;
        if (!sql_script(wscale, &sql_statements)) {
            w->ok = 0;
            snprintf(w->reason, sizeof w->reason, "cannot write the SQL script in %.200s", tmp_dir);
            return;
        }
        char v[160];
        version_of(progs[P_SQLITE].path, v, sizeof v);
        v[strcspn(v, " ")] = 0;  /* "3.40.1 2022-12-28 ... hash": the number */
        snprintf(w->version, sizeof w->version, "SQLite %.100s", v);
        snprintf(w->command, sizeof w->command,
                 "%.300s -batch -bail -init /dev/null :memory: \".read SCRIPT\" (%ld statements: %ld + %ld rows)",
                 progs[P_SQLITE].path, sql_statements, sql_rows(wscale), 2 * sql_rows(wscale));
    } else {
        /* "Redis server v=7.0.15 sha=.. malloc=jemalloc-5.3.0 bits=64 build=..":
         * the version and the allocator it was built with. */
        char v[160], *save = NULL;
        version_of(progs[P_REDIS_SERVER].path, v, sizeof v);
        size_t k = 0;
        for (char *t = strtok_r(v, " ", &save); t; t = strtok_r(NULL, " ", &save))
            if (strncmp(t, "sha=", 4) && strncmp(t, "bits=", 5) && strncmp(t, "build=", 6) && k < sizeof w->version)
                k += (size_t)snprintf(w->version + k, sizeof w->version - k, "%s%s", k ? " " : "", t);
        snprintf(w->command, sizeof w->command,
                 "%.150s --port P --bind 127.0.0.1 --save '' --appendonly no; runner loads %ld keys (db 1); "
                 "%.150s -h 127.0.0.1 -p P -n %ld -c 20 -P 16 -r 100000 -d 100 -t %s -q --csv; check; SHUTDOWN NOSAVE",
                 progs[P_REDIS_SERVER].path, load_keys(b->scale), progs[P_REDIS_BENCH].path, bench_requests(b->scale),
                 bench_tests);
    }

    /* The reference: once, untimed, under glibc. It also warms the page
     * cache, so the first timed run does not pay for reading the program. */
    hkb_run_t ref;
    memset(&ref, 0, sizeof ref);
    ref.rps = NAN;
    w->ref_hash[0] = 0;
    if (w->real == HKB_REAL_REDIS) run_redis(b, w, "", "glibc", &ref);
    else run_program(b, w, "", "glibc", NULL, NULL, &ref, &w->ref_out);
    if (ref.ok) {
        snprintf(w->ref_hash, sizeof w->ref_hash, "%s", ref.out_hash);
        printf("reference %-12s under glibc (untimed): %.2f s, output hash %s; %s\n", w->name, ref.wall_s, w->ref_hash,
               w->version);
    } else {
        snprintf(w->ref_error, sizeof w->ref_error, "the untimed reference run under glibc failed: %.250s", ref.error);
        printf("reference %-12s FAILED: %s\n", w->name, ref.error);
    }
    fflush(stdout);
}

void hkb_real_run(hkb_t *b, hkb_run_t *r) {
    hkb_workload_t *w = &b->work[r->w];
    const hkb_alloc_t *al = &b->alloc[r->a];
    r->rps = NAN;
    if (!*w->ref_hash) {
        /* Without a reference nothing could be checked: the run fails
         * without costing anything. */
        r->done = 1;
        r->ok = 0;
        r->exit_code = -1;
        r->ops = r->live_peak = -1;
        r->hwm_kib = -1;
        snprintf(r->error, sizeof r->error, "%s", w->ref_error);
        return;
    }
    if (w->real == HKB_REAL_REDIS) run_redis(b, w, al->run_path, al->name, r);
    else run_program(b, w, al->run_path, al->name, NULL, NULL, r, NULL);
}

void hkb_real_run_launch(hkb_t *b, hkb_run_t *r, const hkb_launch_t *l) {
    hkb_workload_t *w = &b->work[r->w];
    r->rps = NAN;
    r->done = 1;
    r->ok = 0;
    r->exit_code = -1;
    r->ops = r->live_peak = -1;
    r->hwm_kib = -1;
    if (w->real == HKB_REAL_REDIS) {
        snprintf(r->error, sizeof r->error, "redis-server is not run this way");
        return;
    }
    if (!*w->ref_hash) {
        snprintf(r->error, sizeof r->error, "%s", w->ref_error);
        return;
    }
    /* The preloaded library is the one that must serve malloc; without
     * one (memcheck) glibc's libc.so is preloaded, as for glibc. */
    run_program(b, w, *l->preload ? l->preload : "", l->label, l->wrapper, l->env, r, NULL);
}
