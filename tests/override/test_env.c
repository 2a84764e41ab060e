// test_env: heapkit's HEAPKIT_* environment variables, seen from outside.
// The program runs itself (--work) and an unmodified system program
// (/usr/bin/sort, under LD_PRELOAD) with chosen environments and checks
// what they print:
//   HEAPKIT_SHOW_STATS=1   statistics on stderr at exit (after main
//                          returned), once, counting the child's mallocs;
//   HEAPKIT_FOO=1          a warning on stderr that names HEAPKIT_FOO, and
//                          the program runs normally;
//   HEAPKIT_SHOW_STATS=yes a warning naming the variable; no statistics;
//   no HEAPKIT_ variable   heapkit prints nothing at all;
//   every known option set a warning for none of them.
// Arguments: libheapkit.so, libovr_dl.so (unused).
#include "ovr.h"

enum { WORK = 12345 };

static int work_main(void) {
    ovr_init();
    void **v = malloc(WORK * sizeof *v);
    if (!v) return 3;
    for (int i = 0; i < WORK; i++) v[i] = malloc((size_t)(i % 500) + 1);
    for (int i = 0; i < WORK; i++) free(v[i]);
    free(v);
    printf("work done\n");
    fflush(stdout);
    ssize_t w = write(2, "main returning\n", 15);
    (void)w;
    return 0;
}

static const char *lib;
static char preload[4096];
static char *self_argv[] = {(char *)"/proc/self/exe", NULL, NULL, (char *)"--work", NULL};

/* Runs the --work child with the given HEAPKIT_ settings. */
static void run_self(ovr_run_t *r, const char *e1, const char *e2, const char *e3,
                     const char *e4) {
    const char *extra[6] = {e1, e2, e3, e4, NULL, NULL};
    int n = 0;
    while (n < 4 && extra[n]) n++;
#ifdef OVR_PRELOAD
    /* The child is as unmodified as we are: it needs LD_PRELOAD too. */
    extra[n] = preload;
#endif
    char **env = ovr_env_list(extra);
    ovr_run(self_argv, env, NULL, 30, r);
}

static int count(const char *text, const char *what) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, what)) != NULL; p += strlen(what)) n++;
    return n;
}

/* The "mallocs N" figure of the statistics, or -1. */
static long stats_mallocs(const char *err) {
    const char *m = strstr(err, "mallocs ");
    long n = -1;
    if (m && sscanf(m, "mallocs %ld", &n) != 1) n = -1;
    return n;
}

static void show(const char *what, const ovr_run_t *r) {
    fprintf(stderr, "---- %s: status %#x\nstdout:\n%s\nstderr:\n%s\n----\n", what, r->status,
            r->out, r->err);
}

static void test_self(void) {
    static ovr_run_t r;

    /* Nothing set: heapkit is silent. */
    run_self(&r, NULL, NULL, NULL, NULL);
    bool ok = ovr_exited_ok(&r) && strcmp(r.out, "work done\n") == 0 &&
              strcmp(r.err, "main returning\n") == 0;
    CHECK(ok);
    if (!ok) show("no HEAPKIT_ variable", &r);

    /* Statistics at exit. */
    run_self(&r, "HEAPKIT_SHOW_STATS=1", NULL, NULL, NULL);
    const char *ret = strstr(r.err, "main returning\n");
    const char *st = strstr(r.err, "heapkit statistics");
    long mallocs = stats_mallocs(r.err);
    ok = ovr_exited_ok(&r) && strcmp(r.out, "work done\n") == 0 && ret && st && st > ret &&
         count(r.err, "heapkit statistics") == 1 && mallocs >= WORK &&
         strstr(r.err, "live bytes") && strstr(r.err, "committed") && strstr(r.err, "mapped");
    CHECK(ok);
    if (!ok) show("HEAPKIT_SHOW_STATS=1", &r);
    printf("HEAPKIT_SHOW_STATS=1: statistics after main, counting %ld mallocs\n", mallocs);

    /* HEAPKIT_SHOW_STATS=0: none. */
    run_self(&r, "HEAPKIT_SHOW_STATS=0", NULL, NULL, NULL);
    ok = ovr_exited_ok(&r) && strcmp(r.err, "main returning\n") == 0;
    CHECK(ok);
    if (!ok) show("HEAPKIT_SHOW_STATS=0", &r);

    /* An unknown variable: a warning that names it; the program runs. */
    run_self(&r, "HEAPKIT_FOO=1", NULL, NULL, NULL);
    ok = ovr_exited_ok(&r) && strcmp(r.out, "work done\n") == 0 &&
         count(r.err, "HEAPKIT_FOO") == 1 && strstr(r.err, "heapkit") &&
         strstr(r.err, "main returning\n") && !strstr(r.err, "heapkit statistics");
    CHECK(ok);
    if (!ok) show("HEAPKIT_FOO=1", &r);
    printf("HEAPKIT_FOO=1: %.*s\n", (int)strcspn(r.err, "\n"), r.err);

    /* A typo of a real option is unknown too. */
    run_self(&r, "HEAPKIT_SHOWSTATS=1", NULL, NULL, NULL);
    ok = ovr_exited_ok(&r) && count(r.err, "HEAPKIT_SHOWSTATS") == 1 &&
         !strstr(r.err, "heapkit statistics");
    CHECK(ok);
    if (!ok) show("HEAPKIT_SHOWSTATS=1", &r);

    /* A value that is not a number: a warning naming the variable. */
    run_self(&r, "HEAPKIT_SHOW_STATS=yes", NULL, NULL, NULL);
    ok = ovr_exited_ok(&r) && strstr(r.err, "HEAPKIT_SHOW_STATS") &&
         !strstr(r.err, "heapkit statistics");
    CHECK(ok);
    if (!ok) show("HEAPKIT_SHOW_STATS=yes", &r);

    /* Every known option: no warning, and they work. */
    run_self(&r, "HEAPKIT_SHOW_STATS=1", "HEAPKIT_DECOMMIT_DELAY_MS=0", "HEAPKIT_CHUNK_CACHE=0",
             "HEAPKIT_HUGE_CACHE_MB=0");
    ok = ovr_exited_ok(&r) && !strstr(r.err, "unknown") && !strstr(r.err, "not a") &&
         count(r.err, "heapkit statistics") == 1;
    CHECK(ok);
    if (!ok) show("known options", &r);
    run_self(&r, "HEAPKIT_VERBOSE=1", NULL, NULL, NULL);
    ok = ovr_exited_ok(&r) && strcmp(r.out, "work done\n") == 0 && !strstr(r.err, "unknown");
    CHECK(ok);
    if (!ok) show("HEAPKIT_VERBOSE=1", &r);
}

/* An unmodified program of the system, preloaded. */
static void test_system_program(void) {
    static const char *sort = "/usr/bin/sort";
    if (access(sort, X_OK) != 0) {
        printf("SKIP part: %s missing\n", sort);
        return;
    }
    char path[] = "/tmp/hk-env-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    FILE *f = fdopen(fd, "w");
    REQUIRE(f != NULL);
    hk_rng_t rng = hk_rng_seeded(9);
    for (int i = 0; i < 50000; i++)
        fprintf(f, "%016llx line %d\n", (unsigned long long)hk_rng_next(&rng), i);
    fclose(f);
    char *argv[] = {(char *)sort, NULL};
    static ovr_run_t plain, pre;
    ovr_run(argv, ovr_env("LC_ALL=C", NULL, NULL, NULL), path, 30, &plain);
    ovr_run(argv, ovr_env("LC_ALL=C", "HEAPKIT_SHOW_STATS=1", preload, NULL), path, 30, &pre);
    bool ok = ovr_exited_ok(&plain) && ovr_exited_ok(&pre) && strlen(plain.out) > 1000 &&
              strcmp(plain.out, pre.out) == 0;
    CHECK(ok);
    if (!ok) show("sort under LD_PRELOAD", &pre);
    printf("LD_PRELOAD=%s %s: %s output as with glibc\n", lib, sort, ok ? "same" : "NOT the same");
    /* sort, like every gnulib program, closes stdout and stderr in an atexit
     * handler (close_stdout), which runs before heapkit's: the statistics
     * must get out all the same. */
    long mallocs = stats_mallocs(pre.err);
    ok = strstr(pre.err, "heapkit statistics") && mallocs > 0;
    CHECK(ok);
    if (!ok)
        fprintf(stderr, "HEAPKIT_SHOW_STATS=1 %s (closes stderr at exit): no statistics; "
                        "stderr was \"%s\"\n", sort, pre.err);
    else
        printf("HEAPKIT_SHOW_STATS=1 %s: %ld mallocs by heapkit\n", sort, mallocs);

    /* The warning for an unknown variable, from a preloaded program. (Not
     * /bin/true: heapkit starts at the first allocation, and true makes
     * none.) */
    ovr_run(argv, ovr_env("LC_ALL=C", "HEAPKIT_FOO=1", preload, NULL), path, 30, &pre);
    ok = ovr_exited_ok(&pre) && count(pre.err, "HEAPKIT_FOO") == 1 &&
         strcmp(plain.out, pre.out) == 0;
    CHECK(ok);
    if (!ok) fprintf(stderr, "HEAPKIT_FOO=1 %s: stderr was \"%s\"\n", sort, pre.err);
    unlink(path);
}

int main(int argc, char **argv) {
    if (argc >= 4 && strcmp(argv[3], "--work") == 0) return work_main();
    if (argc < 2) {
        fprintf(stderr, "usage: %s LIBHEAPKIT\n", argv[0]);
        return 2;
    }
    ovr_init();
    lib = argv[1];
    self_argv[1] = argv[1];
    self_argv[2] = argc > 2 ? argv[2] : (char *)"-";
    snprintf(preload, sizeof preload, "LD_PRELOAD=%s", lib);
    test_self();
    test_system_program();
    printf("mode: %s\n", OVR_MODE);
    return hk_test_done();
}
