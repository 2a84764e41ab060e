/* test_run.c: `heapkit run`.
 *     test_run HEAPKIT HKT_CHILD          the command itself
 *     test_run HEAPKIT HKT_CHILD report   --output and --json, once the
 *                                         library reads HEAPKIT_REPORT_FILE
 *                                         and HEAPKIT_REPORT_JSON (exit 77,
 *                                         skipped, until then)
 *     test_run HEAPKIT HKT_CHILD install CMAKE BUILD_DIR
 *                                         `cmake --install` into a temporary
 *                                         prefix: bin/heapkit and its manual
 *                                         page, and the installed heapkit
 *                                         runs the installed library
 * The program's output and exit status pass through; a signal becomes
 * 128+N with a line naming it; a missing program is 127, one that cannot
 * be executed 126; the options become the library's environment; the
 * library is found next to heapkit, through HEAPKIT_LIBRARY, or reported
 * missing.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>

#include "../json.h"
#include "tt.h"

static const char *heapkit, *child;

static void test_passthrough(void) {
    tt_result_t r;
    char *stats[] = {(char *)heapkit, "run", "--stats", "--", (char *)child, "exit", "3", NULL};
    tt_run(stats, NULL, &r);
    CHECK(r.status == 3);
    CHECK(!strcmp(r.out, "child out\n"));
    CHECK(tt_contains(r.err, "child err\n"));
    CHECK(tt_contains(r.err, "heapkit statistics"));
    CHECK(tt_contains(r.err, "mallocs"));
    if (hk_test_failed) tt_show("run --stats", &r);
    tt_free(&r);

    /* Without --stats, no statistics; no "--" needed either. */
    char *plain[] = {(char *)heapkit, "run", (char *)child, "exit", "0", NULL};
    tt_run(plain, NULL, &r);
    CHECK(r.status == 0);
    CHECK(!strcmp(r.out, "child out\n"));
    CHECK(!tt_contains(r.err, "heapkit statistics"));
    tt_free(&r);

    /* The program's own options are its own. */
    char *help[] = {(char *)heapkit, "run", "--", (char *)child, "exit", "--help", NULL};
    tt_run(help, NULL, &r);
    CHECK(r.status == 0 && !strcmp(r.out, "child out\n"));
    tt_free(&r);
}

static void test_signal(void) {
    tt_result_t r;
    char *argv[] = {(char *)heapkit, "run", "--", (char *)child, "signal", "15", NULL};
    tt_run(argv, NULL, &r);
    CHECK(r.status == 128 + SIGTERM);
    CHECK(tt_contains(r.err, "killed by signal 15"));
    CHECK(tt_contains(r.err, "SIGTERM"));
    if (hk_test_failed) tt_show("run: signal", &r);
    tt_free(&r);

    char *usr1[] = {(char *)heapkit, "run", "--", (char *)child, "signal", "10", NULL};
    tt_run(usr1, NULL, &r);
    CHECK(r.status == 128 + SIGUSR1 && tt_contains(r.err, "SIGUSR1"));
    tt_free(&r);

    /* SIGTERM to heapkit goes on to the program, which dies of it (its
     * stdin stays open, so nothing else ends it); SIGINT before it (a
     * terminal sends it to the program too) leaves heapkit waiting: had it
     * killed heapkit, the status would be 130. */
    char *wait[] = {(char *)heapkit, "run", "--", (char *)child, "wait", NULL};
    for (int with_int = 0; with_int < 2; with_int++) {
        tt_bg_t bg;
        REQUIRE(tt_start(wait, NULL, &bg));
        REQUIRE(tt_line(&bg));
        if (with_int) CHECK(kill(bg.pid, SIGINT) == 0);
        CHECK(kill(bg.pid, SIGTERM) == 0);
        CHECK(tt_wait(&bg) == 128 + SIGTERM);
    }
}

static void test_cannot_run(void) {
    tt_result_t r;
    char *missing[] = {(char *)heapkit, "run", "--", "hkt-no-such-command-here", NULL};
    tt_run(missing, NULL, &r);
    CHECK(r.status == 127);
    CHECK(tt_contains(r.err, "hkt-no-such-command-here: command not found"));
    tt_free(&r);

    char *path[] = {(char *)heapkit, "run", "--", "/nonexistent/hkt/prog", NULL};
    tt_run(path, NULL, &r);
    CHECK(r.status == 127);
    CHECK(tt_contains(r.err, "/nonexistent/hkt/prog") && tt_contains(r.err, "No such file"));
    tt_free(&r);

    char file[] = "/tmp/hkt_noexec.XXXXXX";
    int fd = mkstemp(file);
    REQUIRE(fd >= 0);
    close(fd);
    chmod(file, 0644);
    char *noexec[] = {(char *)heapkit, "run", "--", file, NULL};
    tt_run(noexec, NULL, &r);
    CHECK(r.status == 126);
    CHECK(tt_contains(r.err, file) && tt_contains(r.err, "cannot run"));
    tt_free(&r);
    unlink(file);
}

/* The value of NAME in the child's env listing, or NULL. */
static const char *env_value(const char *out, const char *name) {
    static char value[PATH_MAX * 2];
    size_t n = strlen(name);
    for (const char *line = out; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > n && !strncmp(line, name, n) && line[n] == '=') {
            snprintf(value, sizeof value, "%.*s", (int)(len - n - 1), line + n + 1);
            return value;
        }
        line = end ? end + 1 : NULL;
    }
    return NULL;
}

static bool env_is(const char *out, const char *name, const char *want) {
    const char *v = env_value(out, name);
    if (want == NULL) return v == NULL;
    if (v == NULL || strcmp(v, want)) {
        fprintf(stderr, "%s: '%s', want '%s'\n", name, v ? v : "(unset)", want);
        return false;
    }
    return true;
}

/* The real path of the library `heapkit run` preloads by default. */
static void default_library(char *lib, size_t size) {
    char *argv[] = {(char *)heapkit, "run", (char *)child, "env", NULL};
    char *env[] = {"HEAPKIT_LIBRARY", "LD_PRELOAD", NULL};
    tt_result_t r;
    tt_run(argv, env, &r);
    const char *pre = env_value(r.out, "LD_PRELOAD");
    REQUIRE(r.status == 0 && pre != NULL && pre[0] == '/');
    snprintf(lib, size, "%.*s", (int)strcspn(pre, ":"), pre);
    tt_free(&r);
}

static void test_environment(void) {
    tt_result_t r;
    char cwd[PATH_MAX], report[PATH_MAX + 32], sig[16], lib[PATH_MAX], libvar[PATH_MAX + 32];
    /* In a directory of its own: the relative report file lands there. */
    char dir[] = "/tmp/hkt_env.XXXXXX";
    REQUIRE(mkdtemp(dir) && getcwd(cwd, sizeof cwd) && chdir(dir) == 0);
    snprintf(report, sizeof report, "%s/hkt-report.%%p", dir);
    snprintf(sig, sizeof sig, "%d", SIGRTMIN + 7);
    default_library(lib, sizeof lib);
    CHECK(strstr(lib, "/libheapkit.so") != NULL);
    snprintf(libvar, sizeof libvar, "HEAPKIT_LIBRARY=%s", lib);

    /* Every option, a relative --output, an LD_PRELOAD already there; the
     * library named (the debug and secure variants do not combine). */
    char *all[] = {(char *)heapkit, "run", "--stats", "--leaks", "--debug=leaks,guard", "--secure",
                   "--json", "--output", "hkt-report.%p", "--", (char *)child, "env", NULL};
    char *env[] = {"LD_PRELOAD=libm.so.6", "HEAPKIT_STATS_SIGNAL", libvar, NULL};
    tt_run(all, env, &r);
    CHECK(r.status == 0);
    const char *pre = env_value(r.out, "LD_PRELOAD");
    CHECK(pre && !strncmp(pre, lib, strlen(lib)) && !strcmp(pre + strlen(lib), ":libm.so.6"));
    CHECK(env_is(r.out, "HEAPKIT_SHOW_STATS", "1"));
    CHECK(env_is(r.out, "HEAPKIT_LEAKS", "1"));
    CHECK(env_is(r.out, "HEAPKIT_DEBUG", "leaks,guard"));
    CHECK(env_is(r.out, "HEAPKIT_SECURE", "1"));
    CHECK(env_is(r.out, "HEAPKIT_REPORT_JSON", "1"));
    CHECK(env_is(r.out, "HEAPKIT_REPORT_FILE", report));
    CHECK(env_is(r.out, "HEAPKIT_STATS_SIGNAL", sig));
    CHECK(env_is(r.out, "HEAPKIT_LIBRARY", NULL));
    CHECK(tt_contains(r.out, "hk_malloc=yes"));
    if (hk_test_failed) tt_show("run: environment", &r);
    tt_free(&r);
    REQUIRE(chdir(cwd) == 0);
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);

    /* --debug alone means all checks. */
    char *debug[] = {(char *)heapkit, "run", "--debug", "--", (char *)child, "env", NULL};
    char *named[] = {libvar, NULL};
    tt_run(debug, named, &r);
    CHECK(r.status == 0 && env_is(r.out, "HEAPKIT_DEBUG", "all"));
    tt_free(&r);

    /* No option: only the preload and the statistics signal. */
    char *none[] = {(char *)heapkit, "run", "--", (char *)child, "env", NULL};
    char *clean[] = {"LD_PRELOAD", "HEAPKIT_STATS_SIGNAL", "HEAPKIT_SHOW_STATS", NULL};
    tt_run(none, clean, &r);
    CHECK(r.status == 0);
    CHECK(env_is(r.out, "LD_PRELOAD", lib));
    CHECK(env_is(r.out, "HEAPKIT_DEBUG", NULL));
    CHECK(env_is(r.out, "HEAPKIT_SHOW_STATS", NULL));
    CHECK(env_is(r.out, "HEAPKIT_LEAKS", NULL));
    CHECK(env_is(r.out, "HEAPKIT_SECURE", NULL));
    CHECK(env_is(r.out, "HEAPKIT_REPORT_FILE", NULL));
    CHECK(env_is(r.out, "HEAPKIT_REPORT_JSON", NULL));
    CHECK(env_is(r.out, "HEAPKIT_STATS_SIGNAL", sig));
    tt_free(&r);

    /* The statistics signal: chosen, kept from the environment, or off. */
    char *chosen[] = {(char *)heapkit, "run", "--stats-signal", "40", (char *)child, "env", NULL};
    tt_run(chosen, NULL, &r);
    CHECK(env_is(r.out, "HEAPKIT_STATS_SIGNAL", "40"));
    tt_free(&r);
    char *kept[] = {(char *)heapkit, "run", (char *)child, "env", NULL};
    char *given[] = {"HEAPKIT_STATS_SIGNAL=38", NULL};
    tt_run(kept, given, &r);
    CHECK(env_is(r.out, "HEAPKIT_STATS_SIGNAL", "38"));
    tt_free(&r);
    char *off[] = {(char *)heapkit, "run", "--no-stats-signal", (char *)child, "env", NULL};
    tt_run(off, given, &r);
    CHECK(env_is(r.out, "HEAPKIT_STATS_SIGNAL", NULL));
    tt_free(&r);
}

/* --debug and --leaks run libheapkit-debug.so, --secure libheapkit-secure.so:
 * preloaded when built beside libheapkit.so, a clear error otherwise. */
static void test_variants(void) {
    char lib[PATH_MAX];
    default_library(lib, sizeof lib);
    char *slash = strrchr(lib, '/');
    REQUIRE(slash);
    *slash = 0;
    static const char *cases[][2] = {{"--debug", "libheapkit-debug"},
                                     {"--leaks", "libheapkit-debug"},
                                     {"--secure", "libheapkit-secure"}};
    char *unset[] = {"HEAPKIT_LIBRARY", "LD_PRELOAD", NULL};
    for (size_t i = 0; i < 3; i++) {
        char path[PATH_MAX + 64], want[96];
        snprintf(path, sizeof path, "%s/%s.so", lib, cases[i][1]);
        char *argv[] = {(char *)heapkit, "run", (char *)cases[i][0], "--", (char *)child, "env",
                        NULL};
        tt_result_t r;
        tt_run(argv, unset, &r);
        if (access(path, R_OK) == 0) {
            snprintf(want, sizeof want, "/%s.so", cases[i][1]);
            const char *pre = env_value(r.out, "LD_PRELOAD");
            CHECK(r.status == 0 && pre && strstr(pre, want));
        } else {
            snprintf(want, sizeof want, "%s.so (for ", cases[i][1]);
            CHECK(r.status == 1);
            CHECK(tt_contains(r.err, want) && tt_contains(r.err, "not found"));
            CHECK(r.outlen == 0);
        }
        if (hk_test_failed) tt_show(cases[i][0], &r);
        tt_free(&r);
    }
    char *both[] = {(char *)heapkit, "run", "--secure", "--leaks", "--", (char *)child, "env",
                    NULL};
    tt_result_t r;
    tt_run(both, unset, &r);
    CHECK(r.status == 2 && tt_contains(r.err, "two different libraries") && r.outlen == 0);
    tt_free(&r);
}

static void test_library_lookup(void) {
    tt_result_t r;
    /* HEAPKIT_LIBRARY through a symlink: the real path is preloaded, and
     * the variable does not reach the program. */
    char *find[] = {(char *)heapkit, "run", (char *)child, "env", NULL};
    char lib[PATH_MAX];
    default_library(lib, sizeof lib);

    char dir[] = "/tmp/hkt_lib.XXXXXX";
    REQUIRE(mkdtemp(dir));
    char link[PATH_MAX + 64], var[PATH_MAX + 96];
    snprintf(link, sizeof link, "%s/libother.so", dir);
    REQUIRE(symlink(lib, link) == 0);
    snprintf(var, sizeof var, "HEAPKIT_LIBRARY=%s", link);
    char *env[] = {var, NULL};
    tt_run(find, env, &r);
    CHECK(r.status == 0);
    CHECK(env_is(r.out, "LD_PRELOAD", lib));
    CHECK(env_is(r.out, "HEAPKIT_LIBRARY", NULL));
    tt_free(&r);

    char *bad[] = {"HEAPKIT_LIBRARY=/nonexistent/libheapkit.so", NULL};
    tt_run(find, bad, &r);
    CHECK(r.status == 1);
    CHECK(tt_contains(r.err, "HEAPKIT_LIBRARY=/nonexistent/libheapkit.so"));
    CHECK(r.outlen == 0); /* the program did not run */
    tt_free(&r);

    /* A heapkit with no library anywhere near it. */
    char sub[PATH_MAX + 64], copy[PATH_MAX + 96], cmd[3 * PATH_MAX];
    snprintf(sub, sizeof sub, "%s/a/b", dir);
    snprintf(copy, sizeof copy, "%s/heapkit", sub);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s' '%s'", sub, heapkit, copy);
    REQUIRE(system(cmd) == 0);
    char *lonely[] = {copy, "run", "--", (char *)child, "exit", "0", NULL};
    char *unset[] = {"HEAPKIT_LIBRARY", NULL};
    tt_run(lonely, unset, &r);
    CHECK(r.status == 1);
    CHECK(tt_contains(r.err, "libheapkit.so not found"));
    CHECK(tt_contains(r.err, "HEAPKIT_LIBRARY"));
    CHECK(r.outlen == 0);
    tt_free(&r);

    /* An installed layout: bin/heapkit and lib/libheapkit.so. */
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/inst/bin' '%s/inst/lib' && cp '%s' '%s/inst/bin/' && "
             "cp '%s' '%s/inst/lib/libheapkit.so'", dir, dir, heapkit, dir, lib, dir);
    REQUIRE(system(cmd) == 0);
    snprintf(copy, sizeof copy, "%s/inst/bin/heapkit", dir);
    tt_run(lonely, unset, &r);
    CHECK(r.status == 0 && !strcmp(r.out, "child out\n"));
    tt_free(&r);

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

static void test_usage(void) {
    static const char *cases[][5] = {
        {"run", NULL},
        {"run", "--bogus", "--", "true", NULL},
        {"run", "--stats-signal", "9", "true", NULL},
        {"run", "--stats-signal", "x", "true", NULL},
        {"run", "--output", "/nonexistent/dir/report", "true", NULL},
        {"run", "--stats=1", "true", NULL},
        {"run", "--output", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *argv[7] = {(char *)heapkit};
        for (int k = 0; k < 5 && cases[i][k]; k++) argv[k + 1] = (char *)cases[i][k];
        tt_result_t r;
        tt_run(argv, NULL, &r);
        CHECK(r.status == 2);
        CHECK(tt_contains(r.err, "heapkit run: "));
        CHECK(tt_contains(r.err, "Try 'heapkit run --help'"));
        CHECK(r.outlen == 0);
        if (r.status != 2) tt_show(cases[i][1] ? cases[i][1] : "run", &r);
        tt_free(&r);
    }
}

/* True when a JSON value holds the member `key` at any depth. */
static bool has_key(const hkj_t *v, const char *key) {
    if (v == NULL) return false;
    for (size_t i = 0; i < v->count; i++) {
        if (v->type == HKJ_OBJECT && !strcmp(v->keys[i], key)) return true;
        if (has_key(v->items[i], key)) return true;
    }
    return false;
}

static void test_report(void) {
    char dir[] = "/tmp/hkt_report.XXXXXX";
    REQUIRE(mkdtemp(dir));
    char out[PATH_MAX];
    snprintf(out, sizeof out, "%s/report.%%p", dir);
    tt_result_t r;
    char *text[] = {(char *)heapkit, "run", "--stats", "--output", out, "--", (char *)child, "env",
                    NULL};
    tt_run(text, NULL, &r);
    if (tt_contains(r.err, "unknown option HEAPKIT_REPORT_FILE"))
        tt_skip("the library does not read HEAPKIT_REPORT_FILE yet");
    CHECK(r.status == 0);
    CHECK(!tt_contains(r.err, "heapkit statistics"));
    /* %p is the program's pid; the child's pid is heapkit's child's. */
    tt_free(&r);

    /* The file is named with the pid of the process that wrote it. */
    char *wait[] = {(char *)heapkit, "run", "--stats", "--output", out, "--", (char *)child, "wait",
                    NULL};
    tt_bg_t bg;
    REQUIRE(tt_start(wait, NULL, &bg));
    REQUIRE(tt_line(&bg));
    char pid[32];
    tt_copy(pid, sizeof pid, tt_field(bg.line, "pid"));
    CHECK(tt_stop(&bg) == 0);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/report.%s", dir, pid);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    char buf[65536] = {0};
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    CHECK(n > 0 && strstr(buf, "heapkit statistics"));

    /* --json: the report parses and holds the statistics. */
    char json[PATH_MAX];
    snprintf(json, sizeof json, "%s/report.json", dir);
    char *js[] = {(char *)heapkit, "run", "--stats", "--json", "--output", json, "--",
                  (char *)child, "exit", "0", NULL};
    tt_run(js, NULL, &r);
    if (tt_contains(r.err, "unknown option HEAPKIT_REPORT_JSON"))
        tt_skip("the library does not read HEAPKIT_REPORT_JSON yet");
    CHECK(r.status == 0 && !strcmp(r.out, "child out\n"));
    tt_free(&r);
    f = fopen(json, "r");
    CHECK(f != NULL);
    memset(buf, 0, sizeof buf);
    n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    char err[200];
    hkj_t *doc = hkj_parse(buf, n, err, sizeof err);
    if (doc == NULL) fprintf(stderr, "%s: %s\n%s\n", json, err, buf);
    CHECK(doc != NULL);
    CHECK(has_key(doc, "mallocs") && has_key(doc, "live_bytes"));
    hkj_free(doc);

    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

static void test_install(const char *cmake, const char *build) {
    char prefix[] = "/tmp/hkt_install.XXXXXX";
    REQUIRE(mkdtemp(prefix));
    char cmd[3 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "'%s' --install '%s' --prefix '%s' >'%s/install.log' 2>&1", cmake,
             build, prefix, prefix);
    int rc = system(cmd);
    CHECK(rc == 0);
    if (rc != 0) {
        snprintf(cmd, sizeof cmd, "cat '%s/install.log' >&2", prefix);
        CHECK(system(cmd) == 0);
    }
    char bin[PATH_MAX + 32], man[PATH_MAX + 48];
    snprintf(bin, sizeof bin, "%s/bin/heapkit", prefix);
    snprintf(man, sizeof man, "%s/share/man/man1/heapkit.1", prefix);
    CHECK(access(bin, X_OK) == 0);
    CHECK(access(man, R_OK) == 0);

    /* The installed command finds the installed library, not the build's. */
    char *argv[] = {bin, "run", "--stats", "--", (char *)child, "env", NULL};
    char *env[] = {"HEAPKIT_LIBRARY", "LD_PRELOAD", NULL};
    tt_result_t r;
    tt_run(argv, env, &r);
    CHECK(r.status == 0);
    const char *pre = env_value(r.out, "LD_PRELOAD");
    CHECK(pre && !strncmp(pre, prefix, strlen(prefix)) && strstr(pre, "/libheapkit.so"));
    CHECK(tt_contains(r.out, "hk_malloc=yes"));
    CHECK(tt_contains(r.err, "heapkit statistics"));
    if (hk_test_failed) tt_show("installed heapkit run", &r);
    tt_free(&r);

    char *help[] = {bin, "--version", NULL};
    tt_run(help, NULL, &r);
    CHECK(r.status == 0 && !strncmp(r.out, "heapkit ", 8));
    tt_free(&r);

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", prefix);
    CHECK(system(cmd) == 0);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: test_run HEAPKIT HKT_CHILD [report | install CMAKE BUILD_DIR]\n");
        return 2;
    }
    heapkit = argv[1];
    child = argv[2];
    if (argc > 3 && !strcmp(argv[3], "report")) {
        test_report();
        return hk_test_done();
    }
    if (argc == 6 && !strcmp(argv[3], "install")) {
        test_install(argv[4], argv[5]);
        return hk_test_done();
    }
    test_passthrough();
    test_signal();
    test_cannot_run();
    test_environment();
    test_variants();
    test_library_lookup();
    test_usage();
    return hk_test_done();
}
