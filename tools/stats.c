/* stats.c: `heapkit stats`, live statistics of a process on heapkit.
 *
 * Owns: the asking side of the statistics protocol, and printing the
 * answer as JSON or as a table.
 *
 * Protocol (the library answers; see run.c for how the variable is set):
 * a process started with HEAPKIT_STATS_SIGNAL=N answers signal N by
 * writing the JSON object hk_stats_print(f, true) prints to
 * /tmp/heapkit-stats.<pid>.json, through a temporary name renamed into
 * place. Here: read N from /proc/PID/environ (or --signal), check in
 * /proc/PID/status that the process catches N (a signal nobody catches
 * would kill it: real-time signals terminate by default), remove an old
 * answer, send N, wait for the file to appear (or to change, when the old
 * one could not be removed), check it belongs to the process's user, read
 * it, print it, remove it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "tool.h"

const char hkt_help_stats[] =
    "Usage: heapkit stats PID [--json] [--timeout SECONDS] [--signal N]\n"
    "\n"
    "Live heapkit statistics of a running process: live, committed and mapped\n"
    "bytes with their peaks, mallocs and frees, and the size classes in use.\n"
    "The process must run on heapkit and have been started with\n"
    "HEAPKIT_STATS_SIGNAL set, as 'heapkit run' does: heapkit sends it that\n"
    "signal, and the process writes its statistics to\n"
    "/tmp/heapkit-stats.PID.json, which heapkit reads, prints and removes.\n"
    "\n"
    "Options:\n"
    "  --json              the statistics as one JSON object (as hk_stats_print\n"
    "                      writes it) instead of a table\n"
    "  --timeout SECONDS   how long to wait for the answer (default 5)\n"
    "  --signal N          the signal to send, when the process's environment\n"
    "                      cannot be read\n"
    "  -h, --help          this text\n"
    "\n"
    "Exit status: 0; 1 when the process does not answer (not on heapkit, not\n"
    "started with HEAPKIT_STATS_SIGNAL, timeout); 2 on a usage error or when\n"
    "there is no such process.\n";

/* ---- Asking ------------------------------------------------------------- */

/* HEAPKIT_STATS_SIGNAL from the process's environment: the signal, 0 when
 * absent, -1 when the environment cannot be read (errno set), -2 when the
 * value is not a signal number. */
static int signal_from_environ(pid_t pid) {
    char path[64];
    size_t len;
    snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
    char *env = hkt_read_file(path, &len);
    if (env == NULL) return -1;
    int sig = 0;
    static const char key[] = "HEAPKIT_STATS_SIGNAL=";
    for (size_t i = 0; i < len; i += strlen(env + i) + 1) {
        if (strncmp(env + i, key, sizeof key - 1) == 0) {
            char *end;
            long v = strtol(env + i + sizeof key - 1, &end, 10);
            sig = (*end == 0 && v > 0 && v <= SIGRTMAX) ? (int)v : -2;
        }
    }
    free(env);
    return sig;
}

/* A line of /proc/PID/status ("SigCgt:", "Uid:"), its value; NULL if absent. */
static char *status_field(pid_t pid, const char *name) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    char *status = hkt_read_file(path, NULL);
    if (status == NULL) return NULL;
    char *value = NULL;
    size_t n = strlen(name);
    for (char *line = status, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        if (strncmp(line, name, n) == 0 && line[n] == ':') {
            value = hkt_xstrdup(line + n + 1 + strspn(line + n + 1, " \t"));
            break;
        }
    }
    free(status);
    return value;
}

/* 1 when the process catches sig, 0 when not, -1 when unknown. */
static int catches(pid_t pid, int sig) {
    char *mask = status_field(pid, "SigCgt");
    if (mask == NULL) return -1;
    unsigned long long bits = strtoull(mask, NULL, 16);
    free(mask);
    return (int)((bits >> (sig - 1)) & 1);
}

static bool libheapkit_mapped(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    char *maps = hkt_read_file(path, NULL);
    bool found = maps && strstr(maps, "/libheapkit");
    free(maps);
    return found;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads the answer at path when it is a regular file of the process's
 * user. NULL (after a message) otherwise. */
static char *read_answer(const char *path, pid_t pid, size_t *len, struct stat *st) {
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        hkt_err("cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        hkt_err("%s is not a regular file", path);
        close(fd);
        return NULL;
    }
    /* /tmp is everyone's: take only what the process's user wrote. */
    char *uids = status_field(pid, "Uid");
    bool ours = false;
    if (uids) {
        unsigned long id[4] = {0};
        sscanf(uids, "%lu %lu %lu %lu", &id[0], &id[1], &id[2], &id[3]);
        ours = st->st_uid == id[1] || st->st_uid == id[3];
        free(uids);
    }
    if (!ours) {
        hkt_err("refusing %s: it is owned by uid %lu, not by process %d's user", path,
                (unsigned long)st->st_uid, (int)pid);
        close(fd);
        return NULL;
    }
    size_t cap = (size_t)st->st_size + 4096, n = 0;
    char *buf = hkt_xmalloc(cap);
    for (;;) {
        if (n + 1 >= cap) buf = hkt_xrealloc(buf, cap *= 2);
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            hkt_err("reading %s: %s", path, strerror(errno));
            free(buf);
            close(fd);
            return NULL;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = 0;
    *len = n;
    return buf;
}

/* ---- Printing ------------------------------------------------------------ */

static void print_num(FILE *f, const hkj_t *obj, const char *key, bool human) {
    unsigned long long v;
    char h[32];
    if (!hkj_get_uint(obj, key, &v)) fprintf(f, " %14s%s", "-", human ? "            " : "");
    else if (human) fprintf(f, " %14llu %11s", v, hkt_human(v, h, sizeof h));
    else fprintf(f, " %14llu", v);
}

static bool known_key(const char *k) {
    static const char *known[] = {"live_bytes", "live_bytes_peak", "committed_bytes",
                                  "committed_peak", "mapped_bytes", "mapped_peak", "mallocs",
                                  "frees", "live_blocks", "huge_live_bytes", "heaps", "classes"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (!strcmp(k, known[i])) return true;
    return false;
}

static void print_table(FILE *f, pid_t pid, const hkj_t *s) {
    char comm[64];
    unsigned long long heaps, live, committed;
    hkt_proc_comm(pid, comm, sizeof comm);
    fprintf(f, "heapkit statistics of process %d (%s)", (int)pid, comm);
    if (hkj_get_uint(s, "heaps", &heaps)) fprintf(f, ", %llu heap%s", heaps, heaps == 1 ? "" : "s");
    fprintf(f, "\n\n%-16s %26s %26s\n", "", "now", "peak");
    static const char *rows[][3] = {{"live bytes", "live_bytes", "live_bytes_peak"},
                                    {"committed bytes", "committed_bytes", "committed_peak"},
                                    {"mapped bytes", "mapped_bytes", "mapped_peak"}};
    for (size_t i = 0; i < 3; i++) {
        fprintf(f, "%-16s", rows[i][0]);
        print_num(f, s, rows[i][1], true);
        print_num(f, s, rows[i][2], true);
        fputc('\n', f);
    }
    fputc('\n', f);
    static const char *counts[][2] = {{"mallocs", "mallocs"}, {"frees", "frees"},
                                      {"live blocks", "live_blocks"},
                                      {"huge live bytes", "huge_live_bytes"}};
    for (size_t i = 0; i < 4; i++) {
        fprintf(f, "%-16s", counts[i][0]);
        print_num(f, s, counts[i][1], false);
        fputc('\n', f);
    }
    if (hkj_get_uint(s, "live_bytes", &live) && hkj_get_uint(s, "committed_bytes", &committed) &&
        committed)
        fprintf(f, "%-16s %13.1f%%\n", "live/committed", 100.0 * (double)live / (double)committed);
    /* Members a newer library may add, so that none is hidden. */
    for (size_t i = 0; i < s->count; i++) {
        const hkj_t *v = s->items[i];
        if (known_key(s->keys[i]) || v->type != HKJ_NUMBER) continue;
        fprintf(f, "%-16s %14.15g\n", s->keys[i], v->number);
    }
    const hkj_t *classes = hkj_get(s, "classes");
    if (classes && classes->type == HKJ_ARRAY) {
        fprintf(f, "\n%12s %14s %10s %14s\n", "block size", "live blocks", "slabs", "slab bytes");
        size_t shown = 0;
        for (size_t i = 0; i < classes->count; i++) {
            const hkj_t *c = classes->items[i];
            unsigned long long bs = 0, lb = 0, sl = 0, sb = 0;
            hkj_get_uint(c, "block_size", &bs);
            hkj_get_uint(c, "live_blocks", &lb);
            hkj_get_uint(c, "slabs", &sl);
            hkj_get_uint(c, "slab_bytes", &sb);
            if (!lb && !sl) continue;
            fprintf(f, "%12llu %14llu %10llu %14llu\n", bs, lb, sl, sb);
            shown++;
        }
        if (!shown) fprintf(f, "%12s\n", "(no small blocks)");
    }
}

/* ---- The command ----------------------------------------------------------- */

int hkt_cmd_stats(int argc, char **argv) {
    enum { O_JSON = 256, O_TIMEOUT, O_SIGNAL };
    static const struct option longopts[] = {
        {"json", no_argument, NULL, O_JSON},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"signal", required_argument, NULL, O_SIGNAL},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool json = false;
    double timeout = 5;
    int sig = 0;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case O_JSON: json = true; break;
        case O_TIMEOUT: {
            char *end;
            timeout = strtod(optarg, &end);
            if (*optarg == 0 || *end || !(timeout > 0 && timeout <= 3600))
                return hkt_usage("stats", "--timeout %s: give seconds, more than 0, at most 3600",
                                 optarg);
            break;
        }
        case O_SIGNAL: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*optarg == 0 || *end || v < 1 || v > SIGRTMAX || v == SIGKILL || v == SIGSTOP)
                return hkt_usage("stats", "--signal %s: not a signal number that can be caught "
                                 "(1-%d)", optarg, SIGRTMAX);
            sig = (int)v;
            break;
        }
        case 'h': fputs(hkt_help_stats, stdout); return HKT_EXIT_OK;
        default: return hkt_opt_error("stats", c, argv);
        }
    }
    if (optind >= argc) return hkt_usage("stats", "which process? Give its PID");
    if (argc - optind > 1) return hkt_usage("stats", "one process at a time");
    pid_t pid;
    if (!hkt_parse_pid(argv[optind], &pid))
        return hkt_usage("stats", "'%s' is not a PID", argv[optind]);
    if (hkt_proc_exists(pid) == ESRCH) return hkt_usage("stats", "no process %d", (int)pid);
    /* A thread's id reaches its process, which answers under its own pid. */
    char *tgid = status_field(pid, "Tgid");
    pid_t process;
    if (tgid && hkt_parse_pid(tgid, &process) && process != pid) {
        hkt_err("%d is a thread of process %d; asking the process", (int)pid, (int)process);
        pid = process;
    }
    free(tgid);
    if (pid == getpid()) {
        hkt_err("heapkit itself does not run on heapkit");
        return HKT_EXIT_FAIL;
    }

    if (sig == 0) {
        sig = signal_from_environ(pid);
        if (sig == -1) {
            hkt_err("cannot read the environment of process %d (%s): give --signal N if you "
                    "know it answers signal N", (int)pid, strerror(errno));
            return HKT_EXIT_FAIL;
        }
        if (sig == -2) {
            hkt_err("process %d has a HEAPKIT_STATS_SIGNAL that is not a signal number", (int)pid);
            return HKT_EXIT_FAIL;
        }
        if (sig == 0) {
            if (!libheapkit_mapped(pid))
                hkt_err("process %d is not running heapkit (no libheapkit in its map); "
                        "start it with 'heapkit run'", (int)pid);
            else
                hkt_err("process %d was not started with HEAPKIT_STATS_SIGNAL; "
                        "start it with 'heapkit run'", (int)pid);
            return HKT_EXIT_FAIL;
        }
    }
    int caught = catches(pid, sig);
    if (caught == 0) {
        hkt_err("process %d does not catch signal %d, so its heapkit does not answer "
                "HEAPKIT_STATS_SIGNAL (%s); the signal is not sent (it would kill the process)",
                (int)pid, sig,
                libheapkit_mapped(pid) ? "a library without it, or the process is still starting"
                                       : "no libheapkit in its map");
        return HKT_EXIT_FAIL;
    }

    char path[64];
    snprintf(path, sizeof path, "/tmp/heapkit-stats.%d.json", (int)pid);
    /* An old answer goes first; when it cannot, wait for it to change. */
    struct stat old;
    bool have_old = false;
    if (unlink(path) != 0 && errno != ENOENT) have_old = lstat(path, &old) == 0;

    if (kill(pid, sig) != 0) {
        if (errno == ESRCH) hkt_err("process %d has gone", (int)pid);
        else hkt_err("cannot signal process %d: %s", (int)pid, strerror(errno));
        return HKT_EXIT_FAIL;
    }
    double deadline = now_s() + timeout;
    for (;;) {
        struct stat st;
        if (lstat(path, &st) == 0 &&
            (!have_old || st.st_ino != old.st_ino || st.st_dev != old.st_dev ||
             st.st_mtim.tv_sec != old.st_mtim.tv_sec || st.st_mtim.tv_nsec != old.st_mtim.tv_nsec))
            break;
        if (kill(pid, 0) != 0 && errno == ESRCH) {
            hkt_err("process %d exited before it answered", (int)pid);
            return HKT_EXIT_FAIL;
        }
        if (now_s() >= deadline) {
            char *state = status_field(pid, "State");
            hkt_err("process %d did not answer signal %d within %g s (state: %s)", (int)pid, sig,
                    timeout, state ? state : "?");
            free(state);
            return HKT_EXIT_FAIL;
        }
        struct timespec pause = {0, 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }

    size_t len;
    struct stat st;
    char *text = read_answer(path, pid, &len, &st);
    if (text == NULL) return HKT_EXIT_FAIL;
    char err[160];
    hkj_t *stats = hkj_parse(text, len, err, sizeof err);
    if (stats == NULL || stats->type != HKJ_OBJECT) {
        hkt_err("%s is not a JSON object (%s); left in place", path,
                stats ? "another JSON value" : err);
        hkj_free(stats);
        free(text);
        return HKT_EXIT_FAIL;
    }
    /* Remove the answer read (not a newer one renamed over it since). */
    struct stat now;
    if (lstat(path, &now) == 0 && now.st_ino == st.st_ino && now.st_dev == st.st_dev) unlink(path);

    if (json) {
        while (len && (text[len - 1] == '\n' || text[len - 1] == ' ' || text[len - 1] == '\r'))
            len--;
        fwrite(text, 1, len, stdout);
        fputc('\n', stdout);
    } else {
        print_table(stdout, pid, stats);
    }
    hkj_free(stats);
    free(text);
    if (fflush(stdout) != 0) {
        hkt_err("writing the output: %s", strerror(errno));
        return HKT_EXIT_FAIL;
    }
    return HKT_EXIT_OK;
}
