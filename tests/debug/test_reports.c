// test_reports: runs buggy.c's programs under libheapkit-debug.so and checks
// each report: the kind, the block's address (as the program printed it)
// and size, and the functions named in the call stacks; clean programs
// report nothing but "no leaks". Also the report options of every library
// (HEAPKIT_REPORT_FILE, HEAPKIT_REPORT_JSON, HEAPKIT_STATS_SIGNAL) and the
// warning of the plain library when asked for debug checks.
// With the heapkit command, the buggy programs also run under `heapkit run`.
//   test_reports DEBUG_LIB PLAIN_LIB BUGGY [HEAPKIT_COMMAND]
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdbool.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "hk_test.h"

static const char *debug_lib, *plain_lib, *buggy, *heapkit_cmd;

typedef struct {
    int status;          /* as waitpid gives it */
    char out[8192];      /* the program's stdout */
    char err[65536];     /* its stderr */
} run_t;

static void read_all(int fd, char *buf, size_t size) {
    size_t len = 0;
    ssize_t n;
    while (len < size - 1 && (n = read(fd, buf + len, size - 1 - len)) > 0) len += (size_t)n;
    buf[len] = 0;
}

/* Runs argv with LD_PRELOAD=lib (unset when lib is NULL) and the extra
 * environment (NULL-terminated "NAME=value" strings), capturing both
 * outputs and the status. */
static void run_argv(run_t *r, const char *const *argv, const char *lib, const char *const *env) {
    int out[2], err[2];
    REQUIRE(pipe(out) == 0 && pipe(err) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        dup2(out[1], 1);
        dup2(err[1], 2);
        close(out[0]);
        close(err[0]);
        if (lib) setenv("LD_PRELOAD", lib, 1);
        else unsetenv("LD_PRELOAD");
        for (const char *const *e = env; e && *e; e++) putenv((char *)*e);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    /* stdout is small; read stderr to the end, then stdout. */
    read_all(err[0], r->err, sizeof r->err);
    read_all(out[0], r->out, sizeof r->out);
    close(out[0]);
    close(err[0]);
    waitpid(pid, &r->status, 0);
}

/* Runs `buggy mode` on library lib. */
static void run(run_t *r, const char *lib, const char *mode, const char *const *env) {
    const char *argv[] = {buggy, mode, NULL};
    run_argv(r, argv, lib, env);
}

/* Runs `heapkit run OPTIONS -- buggy mode` (no LD_PRELOAD of our own:
 * the command picks the library). */
static void run_cmd(run_t *r, const char *const *opts, const char *mode) {
    const char *argv[16];
    int n = 0;
    argv[n++] = heapkit_cmd;
    argv[n++] = "run";
    for (const char *const *o = opts; *o && n < 12; o++) argv[n++] = *o;
    argv[n++] = "--";
    argv[n++] = buggy;
    argv[n++] = mode;
    argv[n] = NULL;
    run_argv(r, argv, NULL, NULL);
}

static bool aborted(const run_t *r) { return WIFSIGNALED(r->status) && WTERMSIG(r->status) == SIGABRT; }
static bool exited_ok(const run_t *r) { return WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0; }

/* The "block 0x..." line the program printed. */
static const char *printed_block(const run_t *r) {
    static char addr[64];
    const char *s = strstr(r->out, "block ");
    if (!s || sscanf(s, "block %63s", addr) != 1) return "(none)";
    return addr;
}

static bool has(const char *text, const char *needle) {
    if (strstr(text, needle)) return true;
    fprintf(stderr, "missing: \"%s\"\n", needle);
    return false;
}

/* The text after `after`, up to the next "heapkit:" line. */
static const char *section(const char *text, const char *after, char *buf, size_t n) {
    const char *s = strstr(text, after);
    if (!s) return "";
    s += strlen(after);
    const char *e = strstr(s, "heapkit:");
    size_t len = e ? (size_t)(e - s) : strlen(s);
    if (len >= n) len = n - 1;
    memcpy(buf, s, len);
    buf[len] = 0;
    return buf;
}

static void expect_error(const char *mode, const char *kind_line, const char *detail,
                         const char *alloc_fn, const char *freed_fn, const char *detected_fn) {
    static run_t r;
    run(&r, debug_lib, mode, NULL);
    fprintf(stderr, "-- %s\n", mode);
    CHECK(aborted(&r));
    char want[256], sec[4096];
    snprintf(want, sizeof want, "%s %s", kind_line, printed_block(&r));
    CHECK(has(r.err, want));
    if (detail) CHECK(has(r.err, detail));
    if (alloc_fn) CHECK(has(section(r.err, "allocated by thread", sec, sizeof sec), alloc_fn));
    if (freed_fn) CHECK(has(section(r.err, "heapkit: freed by thread", sec, sizeof sec), freed_fn));
    if (detected_fn) CHECK(has(section(r.err, "heapkit: detected by thread", sec, sizeof sec), detected_fn));
    if (!aborted(&r) || !strstr(r.err, want)) fprintf(stderr, "stderr was:\n%s\n", r.err);
}

static void test_errors(void) {
    expect_error("overflow", "heapkit: free(): overflow", "block of 10 bytes, 1 bytes past its end written",
                 "overflow_by_one", NULL, "overflow_by_one");
    expect_error("underflow", "heapkit: free(): underflow", "1 bytes before its start written",
                 "underflow (", NULL, "underflow (");
    expect_error("double-free", "heapkit: free(): double free", "block of 40 bytes", "double_free",
                 "first_free", "second_free");
    expect_error("stack-free", "heapkit: free(): invalid pointer", "not memory heapkit allocated",
                 NULL, NULL, "free_stack_address");
    expect_error("interior-free", "heapkit: free(): invalid pointer", "not the start of a block",
                 NULL, NULL, "free_interior");
    expect_error("use-after-free", "write after free", "block of 48 bytes, byte 5 written after it was freed",
                 "write_after_free", "write_after_free", NULL);
    expect_error("use-after-free-evicted", "heapkit: free(): write after free",
                 "block of 48 bytes, byte 7 written after it was freed", "write_after_free_evicted",
                 "write_after_free_evicted", "write_after_free_evicted");
    expect_error("use-after-free-small", "write after free", "block of 13 bytes, byte 12 written after it was freed",
                 "write_after_free_small", "write_after_free_small", NULL);
    expect_error("use-after-free-order", "heapkit: free(): write after free",
                 "block of 24 bytes, byte 3 written after it was freed", "write_after_free_order",
                 "write_after_free_order", "write_after_free_order");
    expect_error("realloc-after-free", "heapkit: realloc(): double free", "block of 16 bytes",
                 "realloc_after_free", "realloc_after_free", "realloc_after_free");
    expect_error("realloc-overflow", "heapkit: free(): overflow", "block of 12 bytes, 1 bytes past its end written",
                 "realloc_overflow", NULL, "realloc_overflow");
    /* A big block's quarantine pattern: its first 4096 and last 1024 bytes. */
    expect_error("use-after-free-big-head", "write after free",
                 "block of 1048576 bytes, byte 100 written after it was freed", "big_write_after_free",
                 "big_write_after_free", NULL);
    expect_error("use-after-free-big-tail", "write after free",
                 "block of 1048576 bytes, byte 1048566 written after it was freed", "big_write_after_free",
                 "big_write_after_free", NULL);
}

/* Blocks that left the quarantine come back as new blocks in full: their
 * bytes 0xbe, their red zone armed (an overflow by one byte is reported). */
static void test_reuse_after_quarantine(void) {
    static run_t r;
    run(&r, debug_lib, "reuse-after-quarantine", NULL);
    CHECK(aborted(&r));
    CHECK(has(r.out, "fresh 1"));
    char want[128];
    snprintf(want, sizeof want, "heapkit: free(): overflow %s", printed_block(&r));
    CHECK(has(r.err, want));
    CHECK(has(r.err, "block of 40 bytes, 1 bytes past its end written"));
}

/* Fills and pattern checks at every size boundary of their code. */
static void test_patterns(void) {
    static run_t r;
    const char *env[] = {"HEAPKIT_QUARANTINE_MB=1", "HEAPKIT_STACK=nosymbols", NULL};
    run(&r, debug_lib, "patterns", env);
    CHECK(exited_ok(&r));
    CHECK(has(r.out, "patterns ok"));
    if (!strstr(r.out, "patterns ok")) fprintf(stderr, "stdout was:\n%s\n", r.out);
}

/* The bound, stated in README and debug.c: a write after free in the
 * middle of a big block goes unseen by the quarantine. */
static void test_big_block_bound(void) {
    static run_t r;
    run(&r, debug_lib, "use-after-free-big-middle", NULL);
    CHECK(exited_ok(&r));
    CHECK(strstr(r.err, "write after free") == NULL);
    if (!exited_ok(&r)) fprintf(stderr, "stderr was:\n%s\n", r.err);
}

/* Three call sites and a thread lose 1307 bytes in 7 blocks; a block kept
 * in a global is reachable and not listed. Biggest first. */
static void test_leaks(void) {
    static run_t r;
    run(&r, debug_lib, "leaks", NULL);
    CHECK(exited_ok(&r));
    CHECK(has(r.err, "heapkit: leaks: 1307 bytes in 7 blocks lost, from 4 call stacks"));
    const char *order[] = {"heapkit: 1000 bytes in 1 block allocated at:\n    #0 leak_b (",
                           "heapkit: 200 bytes in 2 blocks allocated at:\n    #0 leak_a (",
                           "heapkit: 77 bytes in 1 block allocated at:\n    #0 leak_in_thread (",
                           "heapkit: 30 bytes in 3 blocks allocated at:\n    #0 leak_c ("};
    /* The stacks go on to the caller. */
    CHECK(has(r.err, "    #1 leak_three_sites ("));
    const char *at = r.err;
    for (int i = 0; i < 4; i++) {
        const char *s = strstr(at, order[i]);
        CHECK(s != NULL);
        if (s) at = s;
        else fprintf(stderr, "not found in order: %s\nstderr was:\n%s\n", order[i], r.err);
    }
    /* file:line from the debug information. */
    CHECK(has(r.err, "buggy.c:"));
    CHECK(strstr(r.err, "555 bytes") == NULL);

    /* The same as JSON. */
    const char *json[] = {"HEAPKIT_REPORT_JSON=1", NULL};
    run(&r, debug_lib, "leaks", json);
    CHECK(exited_ok(&r));
    CHECK(has(r.err, "{\"leaks\": {\"blocks\": 7, \"bytes\": 1307,"));
    CHECK(has(r.err, "\"func\": \"leak_b\""));

    /* Only the checks asked for: no leak report without "leaks". */
    const char *redzone[] = {"HEAPKIT_DEBUG=redzone,quarantine", NULL};
    run(&r, debug_lib, "leaks", redzone);
    CHECK(exited_ok(&r) && strstr(r.err, "leaks") == NULL);
}

/* Stacks that share their first frames (an allocation wrapper) are told
 * apart by the frames above. */
static void test_leaks_through_wrapper(void) {
    static run_t r;
    run(&r, debug_lib, "leaks-wrapper", NULL);
    CHECK(exited_ok(&r));
    CHECK(has(r.err, "heapkit: leaks: 165 bytes in 9 blocks lost, from 2 call stacks"));
    CHECK(has(r.err, "heapkit: 132 bytes in 6 blocks allocated at:\n    #0 wrapped_malloc ("));
    CHECK(has(r.err, "heapkit: 33 bytes in 3 blocks allocated at:\n    #0 wrapped_malloc ("));
    char sec[4096];
    CHECK(has(section(r.err, "heapkit: 132 bytes in 6 blocks allocated at:", sec, sizeof sec),
              "#1 leak_via_second ("));
    CHECK(has(section(r.err, "heapkit: 33 bytes in 3 blocks allocated at:", sec, sizeof sec),
              "#1 leak_via_first ("));
}

static void test_clean(void) {
    static run_t r;
    run(&r, debug_lib, "clean", NULL);
    CHECK(exited_ok(&r));
    CHECK(has(r.err, "heapkit: no leaks"));
    /* Nothing else: one line. */
    const char *nl = strchr(r.err, '\n');
    CHECK(nl != NULL && nl[1] == 0);
    if (!nl || nl[1]) fprintf(stderr, "stderr was:\n%s\n", r.err);
}

/* Exact DWARF stacks name the same functions. */
static void test_unwind(void) {
    static run_t r;
    const char *env[] = {"HEAPKIT_STACK=unwind", NULL};
    run(&r, debug_lib, "double-free", env);
    char sec[4096];
    CHECK(aborted(&r));
    CHECK(has(section(r.err, "heapkit: freed by thread", sec, sizeof sec), "first_free"));
    CHECK(has(section(r.err, "heapkit: detected by thread", sec, sizeof sec), "second_free"));
}

static void test_report_file(void) {
    char path[128], want[160];
    snprintf(path, sizeof path, "/tmp/heapkit-test-report.%d.%%p", (int)getpid());
    char var[200];
    snprintf(var, sizeof var, "HEAPKIT_REPORT_FILE=%s", path);
    const char *env[] = {var, NULL};
    static run_t r;
    run(&r, debug_lib, "leaks", env);
    CHECK(exited_ok(&r));
    CHECK(strstr(r.err, "leaks") == NULL); /* it went to the file */
    /* %p became the child's pid: find the file by its prefix. */
    snprintf(want, sizeof want, "/tmp/heapkit-test-report.%d.", (int)getpid());
    char cmd[256], found[256] = "";
    snprintf(cmd, sizeof cmd, "ls %s* 2>/dev/null", want);
    FILE *ls = popen(cmd, "r");
    if (ls && fgets(found, sizeof found, ls)) found[strcspn(found, "\n")] = 0;
    if (ls) pclose(ls);
    CHECK(found[0] != 0 && strspn(found + strlen(want), "0123456789") == strlen(found + strlen(want)));
    static char text[65536];
    int fd = open(found, O_RDONLY);
    CHECK(fd >= 0);
    if (fd >= 0) {
        read_all(fd, text, sizeof text);
        close(fd);
        CHECK(has(text, "heapkit: leaks: 1307 bytes in 7 blocks lost"));
        unlink(found);
    }

    /* Statistics at exit, from the plain library, as JSON in a file. */
    const char *stats[] = {var, "HEAPKIT_SHOW_STATS=1", "HEAPKIT_REPORT_JSON=1", NULL};
    run(&r, plain_lib, "clean", stats);
    CHECK(exited_ok(&r));
    ls = popen(cmd, "r");
    found[0] = 0;
    if (ls && fgets(found, sizeof found, ls)) found[strcspn(found, "\n")] = 0;
    if (ls) pclose(ls);
    fd = found[0] ? open(found, O_RDONLY) : -1;
    CHECK(fd >= 0);
    if (fd >= 0) {
        read_all(fd, text, sizeof text);
        close(fd);
        CHECK(has(text, "\"live_bytes\""));
        CHECK(text[0] == '{');
        unlink(found);
    }
}

/* ---- The statistics signal ----------------------------------------------- */

enum { STATS_SIGNAL_OFFSET = 7 }; /* SIGRTMIN + 7, as heapkit run uses */

/* Starts `buggy mode` on the plain library with HEAPKIT_STATS_SIGNAL set;
 * its stdout comes back on *out. */
static pid_t start_answering(const char *mode, int *out_fd) {
    int out[2];
    REQUIRE(pipe(out) == 0);
    char var[64];
    snprintf(var, sizeof var, "HEAPKIT_STATS_SIGNAL=%d", SIGRTMIN + STATS_SIGNAL_OFFSET);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        setenv("LD_PRELOAD", plain_lib, 1);
        putenv(var);
        execl(buggy, buggy, mode, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    *out_fd = out[0];
    return pid;
}

/* Signals `target` and waits (up to 5 s) for its statistics file; returns
 * the number of live blocks it reports, or -1 when no file came. */
static long ask_statistics(pid_t target) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/heapkit-stats.%d.json", (int)target);
    unlink(path);
    if (kill(target, SIGRTMIN + STATS_SIGNAL_OFFSET) != 0) return -1;
    struct stat st;
    bool appeared = false;
    for (int i = 0; i < 100 && !appeared; i++) {
        appeared = stat(path, &st) == 0;
        if (!appeared) usleep(50 * 1000);
    }
    if (!appeared) return -1;
    static char text[65536];
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    read_all(fd, text, sizeof text);
    close(fd);
    unlink(path);
    unsigned long live = 0;
    const char *s = strstr(text, "\"live_blocks\"");
    if (s == NULL || sscanf(s, "\"live_blocks\": %lu", &live) != 1) return -1;
    return (long)live;
}

static void stop_answering(pid_t pid, int out_fd) {
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    close(out_fd);
}

/* A running program answers the signal with a statistics file. */
static void test_stats_signal(void) {
    int out;
    pid_t pid = start_answering("wait", &out);
    char line[64] = "";
    ssize_t n = read(out, line, sizeof line - 1);
    CHECK(n > 0 && strncmp(line, "ready", 5) == 0);
    /* The program holds 100 blocks of 1000 bytes. */
    CHECK(ask_statistics(pid) >= 100);
    stop_answering(pid, out);
}

/* A child forked without exec answers under its own pid, not its parent. */
static void test_stats_signal_after_fork(void) {
    int out;
    pid_t pid = start_answering("fork-wait", &out);
    char line[64] = "";
    ssize_t n = read(out, line, sizeof line - 1);
    int child = 0;
    CHECK(n > 0 && sscanf(line, "child %d", &child) == 1 && child > 0);
    char parent_path[64];
    snprintf(parent_path, sizeof parent_path, "/tmp/heapkit-stats.%d.json", (int)pid);
    unlink(parent_path);
    if (child > 0) {
        CHECK(ask_statistics(child) >= 50); /* the child's 50 blocks of 3000 bytes */
        struct stat st;
        CHECK(stat(parent_path, &st) != 0);
        kill(child, SIGKILL);
    }
    stop_answering(pid, out);
}

/* Guard pages: the faulting instruction kills the program, after a report
 * naming the block and the stack that allocated it. */
static void test_guard_pages(void) {
    static run_t r;
    const char *all[] = {"HEAPKIT_DEBUG=guard,leaks", NULL};
    run(&r, debug_lib, "guard-overflow", all);
    char want[128], sec[4096];
    CHECK(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGSEGV);
    CHECK(strstr(r.out, "not caught") == NULL);
    snprintf(want, sizeof want, "heapkit: overflow %s (block of 100 bytes", printed_block(&r));
    CHECK(has(r.err, want));
    CHECK(has(r.err, "past its end: guard page"));
    CHECK(has(section(r.err, "allocated by thread", sec, sizeof sec), "guard_overflow"));

    /* Only blocks of 4096 bytes and up: a 5000-byte block read after free. */
    const char *min[] = {"HEAPKIT_GUARD_MIN=4096", NULL};
    run(&r, debug_lib, "guard-read-after-free", min);
    CHECK(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGSEGV);
    CHECK(strstr(r.out, "not caught") == NULL);
    CHECK(has(r.err, "heapkit: use after free"));
    snprintf(want, sizeof want, "(block %s of 5000 bytes, at byte 100", printed_block(&r));
    CHECK(has(r.err, want));
    CHECK(has(section(r.err, "heapkit: freed at:", sec, sizeof sec), "guard_read_after_free"));

    /* Everything else still works with every block guarded. */
    const char *clean[] = {"HEAPKIT_DEBUG=guard,leaks,redzone", NULL};
    run(&r, debug_lib, "clean", clean);
    CHECK(exited_ok(&r));
    CHECK(has(r.err, "heapkit: no leaks"));
    run(&r, debug_lib, "double-free", clean);
    CHECK(aborted(&r) && has(r.err, "heapkit: free(): double free"));
}

/* The same programs under the heapkit command: it preloads the debug
 * library, passes the report through and exits as the program did. */
static void test_heapkit_run(void) {
    if (heapkit_cmd == NULL) return;
    static run_t r;
    const char *debug[] = {"--debug", NULL};
    run_cmd(&r, debug, "overflow");
    char want[128];
    CHECK(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 128 + SIGABRT);
    snprintf(want, sizeof want, "heapkit: free(): overflow %s", printed_block(&r));
    CHECK(has(r.err, want));
    CHECK(has(r.err, "block of 10 bytes, 1 bytes past its end written"));
    CHECK(has(r.err, "overflow_by_one"));

    run_cmd(&r, debug, "double-free");
    CHECK(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 128 + SIGABRT);
    snprintf(want, sizeof want, "heapkit: free(): double free %s", printed_block(&r));
    CHECK(has(r.err, want));

    const char *leaks[] = {"--leaks", NULL};
    run_cmd(&r, leaks, "leaks");
    CHECK(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0);
    CHECK(has(r.err, "heapkit: leaks: 1307 bytes in 7 blocks lost, from 4 call stacks"));
    CHECK(has(r.err, "#0 leak_b ("));

    const char *clean[] = {"--leaks", NULL};
    run_cmd(&r, clean, "clean");
    CHECK(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0);
    CHECK(has(r.err, "heapkit: no leaks"));
}

/* Whether this kernel accepts MADV_HUGEPAGE, asked of a mapping of our own
 * (a container may hide /sys while the kernel takes the advice). */
static bool kernel_takes_hugepage_advice(void) {
    size_t n = (size_t)4 << 20;
    void *m = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(m != MAP_FAILED);
    bool ok = madvise(m, n, MADV_HUGEPAGE) == 0;
    munmap(m, n);
    return ok;
}

/* The debug library's chunks ask for transparent huge pages (its
 * quarantine makes its heaps tens of MiB, all written), unless
 * HEAPKIT_THP=0; the plain library's chunks never do. */
static void test_chunk_huge_pages(void) {
    static run_t r;
    bool thp = kernel_takes_hugepage_advice();
    run(&r, debug_lib, "chunk-advice", NULL);
    CHECK(exited_ok(&r));
    CHECK(has(r.out, thp ? "advice 1" : "advice 0"));
    const char *off[] = {"HEAPKIT_THP=0", NULL};
    run(&r, debug_lib, "chunk-advice", off);
    CHECK(exited_ok(&r));
    CHECK(has(r.out, "advice 0"));
    run(&r, plain_lib, "chunk-advice", NULL);
    CHECK(exited_ok(&r));
    CHECK(has(r.out, "advice 0"));
}

/* The plain library says debug checks need the debug library. */
static void test_plain_warns(void) {
    static run_t r;
    const char *env[] = {"HEAPKIT_DEBUG=all", NULL};
    run(&r, plain_lib, "clean", env);
    CHECK(exited_ok(&r));
    CHECK(has(r.err, "need libheapkit-debug.so"));
}

int main(int argc, char **argv) {
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: test_reports DEBUG_LIB PLAIN_LIB BUGGY [HEAPKIT_COMMAND]\n");
        return 2;
    }
    debug_lib = argv[1];
    plain_lib = argv[2];
    buggy = argv[3];
    heapkit_cmd = argc == 5 ? argv[4] : NULL;
    test_errors();
    test_reuse_after_quarantine();
    test_patterns();
    test_big_block_bound();
    test_leaks();
    test_leaks_through_wrapper();
    test_clean();
    test_unwind();
    test_report_file();
    test_stats_signal();
    test_stats_signal_after_fork();
    test_guard_pages();
    test_heapkit_run();
    test_chunk_huge_pages();
    test_plain_warns();
    return hk_test_done();
}
