/* test_bench.c: tests of the benchmark harness itself (ctest label
 * "bench"). One program, one subcommand per ctest test:
 *
 *   units                      the JSON parser and checker, the statistics,
 *                              the HKBENCH line parser and hkb_spawn
 *   workloads --bindir D [--preload SO] [--expect-override] [--arena-hk]
 *                              every workload at a tiny size completes,
 *                              prints a well-formed result, and runs under
 *                              the allocator it was meant to run under
 *   runner --runner R --out D [--heapkit SO]
 *                              the runner produces JSON with every field,
 *                              the HTML report and the text summary
 *   missing --runner R --out D a missing allocator, and a .so that does
 *                              not provide malloc, are reported and skipped,
 *                              not fatal; a bad option is fatal
 *   instr --runner R --out D   the callgrind instruction counts
 *   real --runner R --out D --workload W [--heapkit SO]
 *                              one real program (real-python, real-sqlite,
 *                              real-redis) at a tiny size under glibc (and
 *                              heapkit): every run ok, the same output
 *                              hash as the glibc reference, malloc served
 *                              by the right library, its JSON fields. Exits
 *                              77 (ctest: skipped) when the program is not
 *                              installed
 *   api --bindir D --programs LIST [--preload SO]
 *                              the Beyond malloc programs that were built
 *                              (LIST, from CMake) at a tiny size: each
 *                              completes with a checksum, all the variants
 *                              of a comparison agree on it (also malloc
 *                              under SO), the tree times its four parts,
 *                              bad options are refused
 *   beyondcheck --runner R --out D --bindir D
 *                              the runner's side: a comparator that is not
 *                              installed is skipped with its apt-get line;
 *                              a variant whose checksum differs fails; a
 *                              comparison without heapkit's variant has no
 *                              targets
 *   realcheck --runner R --out D [--heapkit SO]
 *                              needs no real program: a missing one is
 *                              skipped with its apt-get line and counted
 *                              nowhere; a program whose output changes
 *                              under an allocator fails those runs; a
 *                              failing reference run fails every run
 *
 * Every check can fail: each one compares against something the harness
 * could get wrong. No check looks at speed.
 */
#define _GNU_SOURCE
#include "hk_test.h"
#include "hkbench.h"
#include "json.h"

#include <dirent.h>
#include <dlfcn.h>
#include <math.h>
#include <sys/stat.h>

static const char *opt(int argc, char **argv, const char *name) {
    for (int i = 2; i + 1 < argc; i++)
        if (!strcmp(argv[i], name)) return argv[i + 1];
    return NULL;
}
static int flag(int argc, char **argv, const char *name) {
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], name)) return 1;
    return 0;
}

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) buf[n] = 0;
    if (len) *len = (size_t)n;
    return buf;
}

/* ---- units ------------------------------------------------------------------ */

static int parses(const char *text) {
    char err[200];
    jval_t *v = json_parse(text, strlen(text), err, sizeof err);
    json_free(v);
    return v != NULL;
}

static int requires(const char *text, const char *spec) {
    char err[200];
    jval_t *v = json_parse(text, strlen(text), err, sizeof err);
    if (!v) return -1;
    int r = json_require(v, spec, err, sizeof err);
    json_free(v);
    return r;
}

static void test_units(void) {
    /* Well-formed documents are accepted... */
    CHECK(parses("{}"));
    CHECK(parses(" [ ] "));
    CHECK(parses("{\"a\":[1,2.5,-3e-2,0,-0.0,1E+3,true,false,null,\"x\\u00e9\\ud83d\\ude00\\n\\\"\"]}"));
    CHECK(parses("\"just a string\""));
    CHECK(parses("123"));
    /* ...and everything lenient parsers forgive is rejected. */
    const char *bad[] = { "", "{", "[1,2,]", "{\"a\":1,}", "{a:1}", "[NaN]", "[Infinity]", "[-Infinity]", "[01]",
                          "[1.]", "[.5]", "[1e]", "[-]", "[+1]", "[\"\x01\"]", "[\"\\x\"]", "[\"\\ud800\"]",
                          "[\"\\udc00\"]", "[\"\\u12\"]", "{\"a\":1} x", "{\"a\" 1}", "[1 2]", "\"open", "[tru]",
                          "['a']", "{\"a\":1}}", "[1,,2]", "nul" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int ok = !parses(bad[i]);
        if (!ok) fprintf(stderr, "accepted malformed JSON: %s\n", bad[i]);
        CHECK(ok);
    }
    /* Nesting is bounded (no stack overflow on hostile input). */
    char deep[4001];
    memset(deep, '[', 4000);
    deep[4000] = 0;
    CHECK(!parses(deep));

    /* Decoded values. */
    char err[200];
    const char *doc = "{\"s\":\"\\u00e9\\ud83d\\ude00\",\"n\":-12.5e1,\"t\":true,\"f\":false,\"d\":1,\"d\":2}";
    jval_t *v = json_parse(doc, strlen(doc), err, sizeof err);
    REQUIRE(v != NULL);
    const jval_t *s = json_get(v, "s");
    REQUIRE(s && s->type == J_STRING);
    CHECK(!strcmp(s->str, "\xc3\xa9\xf0\x9f\x98\x80"));
    CHECK(json_get(v, "n")->num == -125.0);
    CHECK(json_get(v, "t")->type == J_BOOL && json_get(v, "t")->num == 1);
    CHECK(json_get(v, "f")->type == J_BOOL && json_get(v, "f")->num == 0);
    CHECK(json_get(v, "d")->num == 2); /* the last of repeated names */
    CHECK(json_get(v, "missing") == NULL);
    json_free(v);
    /* Error positions are reported. */
    CHECK(json_parse("{\n  \"a\": 1,\n}", 13, err, sizeof err) == NULL);
    CHECK(strstr(err, "line 3") != NULL);

    /* Required fields. */
    const char *d = "{\"a\":{\"b\":[{\"c\":1},{\"c\":2}]},\"e\":[],\"n\":null}";
    CHECK(requires(d, "a.b[].c:number") == 1);
    CHECK(requires(d, "a.b[].c") == 1);
    CHECK(requires(d, "a.b[].d") == 0);
    CHECK(requires(d, "a.b[].c:string") == 0);
    CHECK(requires(d, "a.b:array") == 1);
    CHECK(requires(d, "a:object") == 1);
    CHECK(requires(d, "e[]") == 0);          /* empty where elements are required */
    CHECK(requires(d, "e[]?.x:number") == 1); /* empty allowed */
    CHECK(requires(d, "n:number") == 0);
    CHECK(requires(d, "n:number|null") == 1);
    CHECK(requires(d, "x") == 0);
    CHECK(requires("{\"a\":{\"b\":[{\"c\":1},{\"x\":2}]}}", "a.b[].c:number") == 0); /* every element */

    /* Statistics. */
    double odd[] = { 3, 1, 2 }, even[] = { 4, 1, 3, 2 }, g[] = { 1, 4, NAN, -1 };
    CHECK(hkb_median(odd, 3) == 2);
    CHECK(hkb_median(even, 4) == 2.5);
    CHECK(isnan(hkb_median(odd, 0)));
    CHECK(odd[0] == 3); /* the input is not reordered */
    hkb_stat_t st = hkb_stat(even, 4);
    CHECK(st.n == 4 && st.min == 1 && st.max == 4);
    CHECK(fabs(st.spread_pct - 120.0) < 1e-9); /* (4 - 1) / 2.5 */
    CHECK(fabs(hkb_geomean_of(g, 4) - 2.0) < 1e-12); /* NAN and negatives ignored */
    CHECK(isnan(hkb_geomean_of(g + 2, 2)));

    /* HKBENCH lines. */
    char val[64];
    const char *line = "HKBENCH ops=12 live_peak=34 error=\"two words\" malloc_from=/x/libc.so.6\nnext=1";
    CHECK(hkb_kv(line, "ops", val, sizeof val) && !strcmp(val, "12"));
    CHECK(hkb_kv(line, "error", val, sizeof val) && !strcmp(val, "two words"));
    CHECK(hkb_kv(line, "malloc_from", val, sizeof val) && !strcmp(val, "/x/libc.so.6"));
    CHECK(!hkb_kv(line, "peak", val, sizeof val)); /* not a suffix of live_peak */
    CHECK(!hkb_kv(line, "next", val, sizeof val)); /* not past the line */

    /* hkb_spawn: exit code, both streams, the environment, the timeout. */
    hkb_child_t c;
    char *sh1[] = { "/bin/sh", "-c", "echo out; echo err >&2; exit 3", NULL };
    REQUIRE(hkb_spawn(sh1, "", 10, &c) == 0);
    CHECK(c.exit_code == 3 && !c.signal && !c.timed_out);
    CHECK(c.out && !strcmp(c.out, "out\n"));
    CHECK(!strcmp(c.err, "err\n"));
    hkb_child_free(&c);
    setenv("LD_PRELOAD", "/inherited/should-not-pass.so", 1);
    char *sh2[] = { "/bin/sh", "-c", "echo \"[$LD_PRELOAD]\"", NULL };
    REQUIRE(hkb_spawn(sh2, "", 10, &c) == 0);
    CHECK(c.out && !strcmp(c.out, "[]\n"));
    hkb_child_free(&c);
    unsetenv("LD_PRELOAD");
    /* A nonexistent preload: the loader complains, and the child sees it set. */
    REQUIRE(hkb_spawn(sh2, "/nonexistent/lib.so", 10, &c) == 0);
    CHECK(c.out && !strcmp(c.out, "[/nonexistent/lib.so]\n"));
    hkb_child_free(&c);
    char *sh3[] = { "/bin/sh", "-c", "sleep 20", NULL };
    REQUIRE(hkb_spawn(sh3, "", 0.3, &c) == 0);
    CHECK(c.timed_out && c.signal == SIGKILL);
    CHECK(c.wall_s < 10);
    hkb_child_free(&c);
    char *sh4[] = { "/bin/sh", "-c", "kill -SEGV $$", NULL };
    REQUIRE(hkb_spawn(sh4, "", 10, &c) == 0);
    CHECK(c.signal == SIGSEGV && c.exit_code == -1);
    hkb_child_free(&c);
}

/* ---- workloads -------------------------------------------------------------- */

typedef struct { const char *prog, *mode; } wl_t;

static void test_workloads(const char *bindir, const char *preload, int expect_override, int arena_hk) {
    wl_t w[] = { { "wl_small", "lifo" }, { "wl_small", "fifo" }, { "wl_small", "random" }, { "wl_mixed", NULL },
                 { "wl_larson", NULL }, { "wl_prodcons", NULL }, { "wl_threads", NULL }, { "wl_realloc", NULL },
                 { "wl_large", "random" }, { "wl_large", "cycle" }, { "wl_falseshare", NULL }, { "wl_frag", NULL },
                 { "wl_arena", "free" }, { "wl_arena_hk", "destroy" }, { "wl_arena_hk", "free" } };
    int interposed = 1;
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
        if (!strcmp(w[i].prog, "wl_arena_hk") && !arena_hk) continue;
        char prog[PATH_MAX];
        snprintf(prog, sizeof prog, "%s/%s", bindir, w[i].prog);
        char *argv[] = { prog, "--scale", "0.01", "--threads", "2", w[i].mode ? "--mode" : NULL, (char *)w[i].mode,
                         NULL };
        hkb_child_t c;
        REQUIRE(hkb_spawn(argv, preload ? preload : "", 120, &c) == 0);
        int ok = c.exit_code == 0 && !c.signal && !c.timed_out;
        if (!ok)
            fprintf(stderr, "%s %s: exit %d signal %d timed out %d\nstderr: %s\n", w[i].prog, w[i].mode ? w[i].mode : "",
                    c.exit_code, c.signal, c.timed_out, c.err);
        CHECK(ok);
        const char *res = c.out ? strstr(c.out, "HKBENCH ops=") : NULL;
        CHECK(res != NULL);
        char v[PATH_MAX];
        if (res) {
            CHECK(hkb_kv(res, "ops", v, sizeof v) && atoll(v) > 0);
            CHECK(hkb_kv(res, "live_peak", v, sizeof v) && atoll(v) > 0);
            CHECK(hkb_kv(res, "hwm_kib", v, sizeof v) && atol(v) > 0);
            CHECK(hkb_kv(res, "malloc_from", v, sizeof v));
            if (preload) {
                int same = hkb_same_file(v, preload);
                if (expect_override) {
                    if (!same) fprintf(stderr, "%s: malloc served by %s, not %s\n", w[i].prog, v, preload);
                    CHECK(same);
                } else if (!same) {
                    interposed = 0;
                }
            } else {
                CHECK(strstr(v, "/libc") != NULL);
            }
        }
        if (!strcmp(w[i].prog, "wl_frag")) {
            /* The memory-over-time chart needs samples and the phases. */
            int samples = 0, phases = 0;
            for (const char *p = c.out; p && (p = strstr(p, "HKBENCH ")); p++) {
                samples += !strncmp(p, "HKBENCH sample ", 15);
                phases += !strncmp(p, "HKBENCH phase ", 14);
            }
            CHECK(samples >= 20);
            CHECK(phases == 7);
        }
        if (!strcmp(w[i].prog, "wl_mixed")) CHECK(c.out && strstr(c.out, "HKBENCH sample step=") != NULL);
        hkb_child_free(&c);
    }
    if (preload && !expect_override && !interposed)
        printf("note: %s does not provide malloc (no override sources when configured); "
               "the workloads ran on glibc's malloc\n", preload);

    /* Bad arguments are refused (exit 2), not silently run as something else. */
    char prog[PATH_MAX];
    snprintf(prog, sizeof prog, "%s/wl_small", bindir);
    char *bad1[] = { prog, "--mode", "lifoo", NULL };
    char *bad2[] = { prog, "--scal", "1", NULL };
    char *bad3[] = { prog, "--threads", "0", NULL };
    char **bads[] = { bad1, bad2, bad3 };
    for (int i = 0; i < 3; i++) {
        hkb_child_t c;
        REQUIRE(hkb_spawn(bads[i], "", 30, &c) == 0);
        CHECK(c.exit_code == 2);
        CHECK(!c.out || !strstr(c.out, "HKBENCH ops="));
        hkb_child_free(&c);
    }
    /* Same seed, same work: the result line's ops and checksum repeat. */
    char *det[] = { prog, "--mode", "random", "--scale", "0.01", "--threads", "1", NULL };
    hkb_child_t c1, c2;
    REQUIRE(hkb_spawn(det, "", 60, &c1) == 0 && hkb_spawn(det, "", 60, &c2) == 0);
    char a1[64] = "", a2[64] = "", k1[64] = "", k2[64] = "";
    if (c1.out && c2.out) {
        hkb_kv(strstr(c1.out, "HKBENCH ops=") ? strstr(c1.out, "HKBENCH ops=") : c1.out, "live_peak", a1, sizeof a1);
        hkb_kv(strstr(c2.out, "HKBENCH ops=") ? strstr(c2.out, "HKBENCH ops=") : c2.out, "live_peak", a2, sizeof a2);
        hkb_kv(strstr(c1.out, "HKBENCH ops=") ? strstr(c1.out, "HKBENCH ops=") : c1.out, "ops", k1, sizeof k1);
        hkb_kv(strstr(c2.out, "HKBENCH ops=") ? strstr(c2.out, "HKBENCH ops=") : c2.out, "ops", k2, sizeof k2);
    }
    CHECK(*a1 && !strcmp(a1, a2));
    CHECK(*k1 && !strcmp(k1, k2));
    hkb_child_free(&c1);
    hkb_child_free(&c2);
}

/* ---- api: the Beyond malloc programs ------------------------------------------ */

typedef struct {
    const char *group, *prog, *mode;
    const char *preload;     /* run under this library ("" for none) */
    char check[32];          /* (results) */
    long long ops;
    int ran;
} api_run_t;
#define API_RUN(g, p, m) { g, p, m, "", "", 0, 0 }

static int listed(const char *list, const char *prog) {
    size_t n = strlen(prog);
    for (const char *p = list; p && *p;) {
        size_t l = strcspn(p, ",");
        if (l == n && !strncmp(p, prog, n)) return 1;
        p += l + (p[l] == ',');
    }
    return 0;
}

/* Runs one program at a tiny size and checks its result line; fills
 * check and ops. Returns the child's output (to free) or NULL. */
static char *api_run(const char *bindir, api_run_t *x, const char *threads) {
    char prog[PATH_MAX];
    snprintf(prog, sizeof prog, "%s/%s", bindir, x->prog);
    char *argv[] = { prog, "--scale", "0.01", "--threads", (char *)threads, x->mode ? "--mode" : NULL,
                     (char *)x->mode, NULL };
    hkb_child_t c;
    REQUIRE(hkb_spawn(argv, x->preload, 120, &c) == 0);
    int ok = c.exit_code == 0 && !c.signal && !c.timed_out;
    if (!ok)
        fprintf(stderr, "%s %s: exit %d signal %d\nstdout: %s\nstderr: %s\n", x->prog, x->mode ? x->mode : "",
                c.exit_code, c.signal, c.out ? c.out : "", c.err);
    CHECK(ok);
    const char *res = c.out ? strstr(c.out, "HKBENCH ops=") : NULL;
    CHECK(res != NULL);
    char v[PATH_MAX];
    if (res) {
        CHECK(hkb_kv(res, "ops", v, sizeof v) && (x->ops = atoll(v)) > 0);
        CHECK(hkb_kv(res, "check", x->check, sizeof x->check) && strlen(x->check) > 0);
        CHECK(hkb_kv(res, "live_peak", v, sizeof v) && atoll(v) > 0);
        CHECK(hkb_kv(res, "t_ms", v, sizeof v) && atof(v) > 0);
        CHECK(hkb_kv(res, "malloc_from", v, sizeof v));
        const char *base = strrchr(v, '/') ? strrchr(v, '/') + 1 : v;
        /* heapkit's variants link libheapkit: its malloc serves them. */
        if (!strncmp(x->prog + strlen(x->prog) - 3, "_hk", 3) || *x->preload) CHECK(strstr(base, "libheapkit") != NULL);
        else CHECK(!strncmp(base, "libc", 4));
    }
    x->ran = 1;
    char *out = c.out;
    c.out = NULL;
    hkb_child_free(&c);
    return out;
}

static void test_api(const char *bindir, const char *programs, const char *preload) {
    static api_run_t runs[32];
    const api_run_t table[] = {
        API_RUN("pool", "wl_pool", NULL), API_RUN("pool", "wl_pool_hk", NULL), API_RUN("pool", "wl_pool_apr", NULL),
        API_RUN("pool", "wl_pool_talloc", "context"), API_RUN("pool", "wl_pool_talloc", "pool"),
        API_RUN("cache", "wl_cache", "local"), API_RUN("cache", "wl_cache_hk", "local"),
        API_RUN("cache", "wl_cache_gslice", "local"),
        API_RUN("cache-xt", "wl_cache", "remote"), API_RUN("cache-xt", "wl_cache_hk", "remote"),
        API_RUN("cache-xt", "wl_cache_gslice", "remote"),
        API_RUN("tree", "wl_tree", NULL), API_RUN("tree", "wl_tree_hk", NULL),
    };
    int n = 0;
    /* The malloc programs are always built. */
    CHECK(listed(programs, "wl_pool") && listed(programs, "wl_cache") && listed(programs, "wl_tree"));
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (!listed(programs, table[i].prog)) {
            printf("note: %s not built (its library is missing): not checked\n", table[i].prog);
            continue;
        }
        runs[n++] = table[i];
        /* malloc/free under the preloaded allocator too. */
        if (preload && !strchr(table[i].prog + 3, '_')) {
            runs[n] = table[i];
            runs[n++].preload = preload;
        }
    }
    for (int i = 0; i < n; i++) {
        char *out = api_run(bindir, &runs[i], "2");
        if (!strcmp(runs[i].prog, "wl_cache_gslice")) CHECK(out && strstr(out, "HKBENCH info text=\"GLib "));
        if (!strcmp(runs[i].group, "tree")) {
            /* Four parts, in order, each a piece of the timed work. */
            const char *names[] = { "build", "move", "walk", "teardown" };
            const char *p = out;
            double sum = 0;
            for (int k = 0; k < 4; k++) {
                char want[48], v[32];
                snprintf(want, sizeof want, "HKBENCH part name=%s ", names[k]);
                p = p ? strstr(p, want) : NULL;
                CHECK(p != NULL);
                if (p && hkb_kv(p, "ms", v, sizeof v)) sum += atof(v);
            }
            const char *res = out ? strstr(out, "HKBENCH ops=") : NULL;
            char t[32] = "0", th[8] = "";
            if (res) hkb_kv(res, "t_ms", t, sizeof t), hkb_kv(res, "threads", th, sizeof th);
            CHECK(sum > 0 && sum <= atof(t) + 0.051); /* t_ms has one decimal */
            CHECK(!strcmp(th, "2")); /* a producer and a consumer */
        }
        free(out);
    }
    /* Same work, same result: every variant of a comparison agrees. */
    for (int i = 1; i < n; i++)
        for (int j = 0; j < i; j++) {
            if (strcmp(runs[i].group, runs[j].group) || !runs[i].ran || !runs[j].ran) continue;
            int same = !strcmp(runs[i].check, runs[j].check) && runs[i].ops == runs[j].ops;
            if (!same)
                fprintf(stderr, "%s: %s %s (%s %lld) and %s %s (%s %lld) differ\n", runs[i].group, runs[i].prog,
                        runs[i].mode ? runs[i].mode : "", runs[i].check, runs[i].ops, runs[j].prog,
                        runs[j].mode ? runs[j].mode : "", runs[j].check, runs[j].ops);
            CHECK(same);
            break;
        }
    /* A request's work does not depend on which thread serves it. */
    api_run_t one = API_RUN("pool", "wl_pool", NULL), three = one;
    free(api_run(bindir, &one, "1"));
    free(api_run(bindir, &three, "3"));
    CHECK(!strcmp(one.check, three.check) && one.ops == three.ops && !strcmp(one.check, runs[0].check));
    /* The remote churn runs in pairs: one thread asked, two run. */
    api_run_t remote = API_RUN("cache-xt", "wl_cache", "remote");
    char *out = api_run(bindir, &remote, "1");
    char th[8] = "";
    if (out && strstr(out, "HKBENCH ops=")) hkb_kv(strstr(out, "HKBENCH ops="), "threads", th, sizeof th);
    CHECK(!strcmp(th, "2"));
    free(out);
    /* Bad options are refused, not run as something else. */
    struct { const char *prog, *a, *b; } bad[] = { { "wl_pool", "--mode", "context" }, { "wl_cache", "--mode", "far" },
                                                   { "wl_tree", "--mode", "x" }, { "wl_pool_talloc", "--mode", "bogus" },
                                                   { "wl_cache", "--scale", "0" } };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (!listed(programs, bad[i].prog)) continue;
        char prog[PATH_MAX];
        snprintf(prog, sizeof prog, "%s/%s", bindir, bad[i].prog);
        char *argv[] = { prog, (char *)bad[i].a, (char *)bad[i].b, NULL };
        hkb_child_t c;
        REQUIRE(hkb_spawn(argv, "", 30, &c) == 0);
        CHECK(c.exit_code == 2);
        CHECK(!c.out || !strstr(c.out, "HKBENCH ops="));
        hkb_child_free(&c);
    }
}

/* ---- runner ------------------------------------------------------------------ */

static const char *required[] = {
    "schema:string", "mode:string", "quick:bool", "started:string", "total_wall_s:number",
    "host.description:string", "host.nproc:number",
    "config.scale:number", "config.runs:number", "config.threads:number", "config.timeout_s:number",
    "config.max_fail:number", "config.instr:bool", "config.bin_dir:string",
    "allocators[].name:string", "allocators[].status:string", "allocators[].path:string",
    "allocators[].malloc_from:string", "allocators[].reason:string",
    "workloads[].name:string", "workloads[].program:string", "workloads[].args:string",
    "workloads[].only:string|null", "workloads[].twin:string|null", "workloads[].description:string", "workloads[].status:string",
    "workloads[].reason:string", "workloads[].kind:string", "workloads[].command:string",
    "workloads[].version:string", "workloads[].live_known:bool", "workloads[].reference_hash:string",
    "workloads[].reference_error:string", "workloads[].group:string|null", "workloads[].variant:string|null",
    "workloads[].library:string|null", "workloads[].scale:number", "workloads[].diag_program:string|null",
    "workloads[].diag_variant:string|null",
    "runs[].workload:string", "runs[].allocator:string", "runs[].rep:number", "runs[].done:bool", "runs[].ok:bool",
    "runs[].exit_code:number", "runs[].signal:number", "runs[].timed_out:bool", "runs[].error:string",
    "runs[].wall_s:number", "runs[].cpu_s:number", "runs[].user_s:number", "runs[].sys_s:number",
    "runs[].maxrss_kib:number", "runs[].hwm_kib:number", "runs[].minflt:number", "runs[].majflt:number",
    "runs[].nvcsw:number", "runs[].nivcsw:number", "runs[].ops:number", "runs[].live_peak:number",
    "runs[].malloc_from:string", "runs[].output_hash:string", "runs[].rps:number|null", "runs[].detail:string",
    "runs[].work_s:number|null", "runs[].check:string", "runs[].parts:object", "runs[].phases:array", "runs[].phases[]?.step:number",
    "runs[].phases[]?.name:string", "runs[].samples:array", "runs[].samples[]?:array",
    "runs[].samples[]?.[]:number",
    "summary[].workload:string", "summary[].allocator:string", "summary[].n_ok:number", "summary[].n_fail:number",
    "summary[].wall_s.n:number", "summary[].wall_s.median:number", "summary[].wall_s.min:number",
    "summary[].wall_s.max:number", "summary[].wall_s.spread_pct:number", "summary[].cpu_s.median:number",
    "summary[].maxrss_kib.median:number", "summary[].minflt.median:number", "summary[].rps.n:number",
    "summary[].rps.median:number|null", "summary[].work_s.n:number", "summary[].work_s.median:number|null",
    "summary[].parts_ms:object", "summary[].live_peak:number|null",
    "summary[].efficiency:number|null", "summary[].time_vs_glibc:number|null", "summary[].rss_vs_glibc:number|null", "summary[].cpu_vs_glibc:number|null",
    "summary[].time_vs_best_other:number|null", "summary[].rss_vs_best_other:number|null",
    "summary[].best_other_time:string|null", "summary[].best_other_rss:string|null",
    "summary[].time_vs_twin:number|null", "summary[].rss_vs_twin:number|null", "summary[].median_run:number",
    "geomean[].allocator:string", "geomean[].time_vs_glibc:number", "geomean[].rss_vs_glibc:number", "geomean[].cpu_vs_glibc:number",
    "geomean[].workloads_vs_glibc:number", "geomean[].time_vs_best_other:number|null",
    "geomean[].rss_vs_best_other:number|null", "geomean[].workloads_vs_best_other:number",
    "beyond_malloc:array", "beyond_malloc[]?.name:string", "beyond_malloc[]?.title:string",
    "beyond_malloc[]?.description:string", "beyond_malloc[]?.figure:string",
    "beyond_malloc[]?.target_speedup_vs_glibc_malloc:number", "beyond_malloc[]?.target_no_slower_than_best:bool",
    "beyond_malloc[]?.ours:string|null", "beyond_malloc[]?.ours_s:number|null",
    "beyond_malloc[]?.glibc_malloc_s:number|null", "beyond_malloc[]?.speedup_vs_glibc_malloc:number|null",
    "beyond_malloc[]?.best_other:string|null", "beyond_malloc[]?.best_other_s:number|null",
    "beyond_malloc[]?.speedup_vs_best_other:number|null", "beyond_malloc[]?.best_other_library:string|null",
    "beyond_malloc[]?.best_other_library_s:number|null", "beyond_malloc[]?.speedup_vs_best_other_library:number|null",
    "beyond_malloc[]?.target_met_vs_glibc_malloc:bool|null", "beyond_malloc[]?.target_met_vs_best:bool|null",
    "beyond_malloc[]?.checksum:string", "beyond_malloc[]?.checksum_ops:number",
    "beyond_malloc[]?.checksum_runs_agree:number", "beyond_malloc[]?.checksum_runs:number",
    "beyond_malloc[]?.detail:string", "beyond_malloc[]?.rows[].workload:string",
    "beyond_malloc[]?.rows[].variant:string", "beyond_malloc[]?.rows[].label:string",
    "beyond_malloc[]?.rows[].allocator:string|null", "beyond_malloc[]?.rows[].status:string",
    "beyond_malloc[]?.rows[].reason:string", "beyond_malloc[]?.rows[].n_ok:number",
    "beyond_malloc[]?.rows[].figure_s:number|null", "beyond_malloc[]?.rows[].speedup_of_ours:number|null",
    "diagnostics:object", "diagnostics.present:bool", "diagnostics.runs:number", "diagnostics.left_out:string",
    "diagnostics.figure:string", "diagnostics.target.description:string", "diagnostics.target.debug_max:number",
    "diagnostics.target.memcheck_min:number", "diagnostics.target.programs:number",
    "diagnostics.target.worst_debug_slowdown:number|null", "diagnostics.target.worst_program:string|null",
    "diagnostics.target.met:bool|null", "diagnostics.variants:array", "diagnostics.variants[]?.name:string",
    "diagnostics.variants[]?.label:string", "diagnostics.variants[]?.slot:string",
    "diagnostics.variants[]?.status:string", "diagnostics.variants[]?.path:string",
    "diagnostics.variants[]?.version:string", "diagnostics.variants[]?.reason:string", "diagnostics.programs:array",
    "diagnostics.programs[]?.name:string", "diagnostics.programs[]?.description:string",
    "diagnostics.programs[]?.kind:string", "diagnostics.programs[]?.scale:number",
    "diagnostics.programs[]?.memcheck_slowdown:number|null", "diagnostics.programs[]?.debug_slowdown:number|null",
    "diagnostics.programs[]?.target_applies:bool|null", "diagnostics.programs[]?.target_met:bool|null",
    "diagnostics.programs[]?.variants[].variant:string", "diagnostics.programs[]?.variants[].workload:string|null",
    "diagnostics.programs[]?.variants[].status:string", "diagnostics.programs[]?.variants[].reason:string",
    "diagnostics.programs[]?.variants[].n_ok:number", "diagnostics.programs[]?.variants[].n_fail:number",
    "diagnostics.programs[]?.variants[].time_s:number|null",
    "diagnostics.programs[]?.variants[].time_min_s:number|null",
    "diagnostics.programs[]?.variants[].time_max_s:number|null",
    "diagnostics.programs[]?.variants[].cpu_s:number|null",
    "diagnostics.programs[]?.variants[].maxrss_kib:number|null",
    "diagnostics.programs[]?.variants[].slowdown:number|null", "diagnostics.geomean:array",
    "diagnostics.geomean[]?.variant:string", "diagnostics.geomean[]?.slowdown:number|null",
    "diagnostics.geomean[]?.programs:number",
    "instructions.measured:bool", "instructions.method:string", "instructions.results:array",
    "instructions.api_results:array",
};

static int run_cmd(char **argv, hkb_child_t *c, double timeout) {
    int r = hkb_spawn(argv, "", timeout, c);
    if (r == 0 && (c->exit_code != 0 || c->signal))
        fprintf(stderr, "%s exited %d (signal %d)\nstdout:\n%s\nstderr:\n%s\n", argv[0], c->exit_code, c->signal,
                c->out ? c->out : "", c->err);
    return r;
}

static const jval_t *find_row(const jval_t *arr, const char *k1, const char *v1, const char *k2, const char *v2) {
    for (int i = 0; arr && i < arr->n; i++) {
        const jval_t *a = json_get(arr->item[i], k1), *b = k2 ? json_get(arr->item[i], k2) : NULL;
        if (a && a->type == J_STRING && !strcmp(a->str, v1) &&
            (!k2 || (b && b->type == J_STRING && !strcmp(b->str, v2))))
            return arr->item[i];
    }
    return NULL;
}

/* The Beyond malloc section of a runner's JSON: every comparison whose
 * workloads ran agrees on its checksum; heapkit's variant, where it ran,
 * has its speedups and targets; the tree's parts are summarised. */
static void check_beyond(const jval_t *v, int heapkit) {
    const jval_t *groups = json_get(v, "beyond_malloc"), *works = json_get(v, "workloads");
    REQUIRE(groups && groups->type == J_ARRAY);
    CHECK(groups->n == 4);
    const char *names[] = { "pool", "cache", "cache-xt", "tree" };
    for (int k = 0; k < 4; k++) {
        const jval_t *g = find_row(groups, "name", names[k], NULL, NULL);
        CHECK(g != NULL);
        if (!g) continue;
        const jval_t *rows = json_get(g, "rows");
        int ran = 0;
        for (int i = 0; rows && i < rows->n; i++) {
            const jval_t *st = json_get(rows->item[i], "status");
            if (!strcmp(st->str, "skipped")) {
                CHECK(*json_get(rows->item[i], "reason")->str);
                continue;
            }
            /* Tiny sizes on a shared machine: every run must still work. */
            CHECK(!strcmp(st->str, "ok"));
            CHECK(json_get(rows->item[i], "figure_s")->num > 0);
            ran++;
        }
        CHECK(ran >= 1);
        double runs = json_get(g, "checksum_runs")->num;
        CHECK(runs >= 2 * ran && json_get(g, "checksum_runs_agree")->num == runs);
        CHECK(strlen(json_get(g, "checksum")->str) > 0);
        /* heapkit's variant: present when its program was built and heapkit ran. */
        const jval_t *ours = json_get(g, "ours");
        char wname[64];
        snprintf(wname, sizeof wname, "%s-%s", names[k], k == 3 ? "hk_heap" : k == 0 ? "hk_pool" : "hk_cache");
        const jval_t *ow = find_row(works, "name", wname, NULL, NULL);
        int ours_ran = heapkit && ow && !strcmp(json_get(ow, "status")->str, "ok");
        CHECK(ours_ran == (ours->type == J_STRING));
        if (ours_ran) {
            CHECK(!strcmp(ours->str, wname));
            CHECK(json_get(g, "speedup_vs_glibc_malloc")->num > 0);
            CHECK(json_get(g, "target_met_vs_glibc_malloc")->type == J_BOOL);
            /* Met exactly when the speedup reaches the target. */
            CHECK((json_get(g, "target_met_vs_glibc_malloc")->num == 1) ==
                  (json_get(g, "speedup_vs_glibc_malloc")->num >= json_get(g, "target_speedup_vs_glibc_malloc")->num));
            CHECK(json_get(g, "target_met_vs_best")->type == (k == 3 ? J_NULL : J_BOOL));
        } else {
            CHECK(json_get(g, "target_met_vs_glibc_malloc")->type == J_NULL);
        }
    }
    /* The tree's figure is its teardown, one of the four timed parts. */
    const jval_t *tree = find_row(groups, "name", "tree", NULL, NULL);
    CHECK(tree && !strcmp(json_get(tree, "figure")->str, "teardown"));
    const jval_t *tm = find_row(json_get(v, "summary"), "workload", "tree-malloc", "allocator", "glibc");
    REQUIRE(tm != NULL);
    const jval_t *parts = json_get(tm, "parts_ms");
    const char *pn[] = { "build", "move", "walk", "teardown" };
    double sum = 0;
    for (int i = 0; i < 4; i++) {
        const jval_t *p = json_get(parts, pn[i]);
        CHECK(p && json_get(p, "n")->num == 2);
        if (p) sum += json_get(p, "median")->num;
    }
    CHECK(parts && parts->n == 4 && sum > 0);
    /* In every run the parts are pieces of the workload's own time. */
    const jval_t *runs = json_get(v, "runs");
    int tree_runs = 0;
    for (int i = 0; runs && i < runs->n; i++) {
        const jval_t *r = runs->item[i];
        if (strncmp(json_get(r, "workload")->str, "tree-", 5)) continue;
        const jval_t *rp = json_get(r, "parts");
        double total = 0;
        for (int k = 0; k < 4; k++) total += json_get(rp, pn[k]) ? json_get(rp, pn[k])->num : NAN;
        CHECK(rp->n == 4 && total > 0 && total <= json_get(r, "work_s")->num * 1000 + 0.051);
        tree_runs++;
    }
    CHECK(tree_runs >= 2);
}

/* ---- The Diagnostics section's JSON ------------------------------------------------ */

static int count_runs(const jval_t *runs, const char *workload, const char *alloc, int *ok);

static const char *const diag_variants[] = { "heapkit", "debug", "secure", "memcheck", "asan" };

static int close_to(double a, double b) { return fabs(a - b) <= 1e-7 * fabs(b); }

/* A number field, or NAN when it is null (or missing: the required
 * fields check that separately). */
static double num_or_nan(const jval_t *o, const char *k) {
    const jval_t *x = json_get(o, k);
    return x && x->type == J_NUMBER ? x->num : NAN;
}

/* The object that must have served malloc in a run of a variant: the
 * copy of its own library, glibc's libc under memcheck (whose
 * replacement dlsym cannot see), libasan in the ASan builds. */
static int malloc_from_fits(const char *variant, const char *from) {
    const char *base = strrchr(from, '/') ? strrchr(from, '/') + 1 : from;
    if (!strcmp(variant, "heapkit")) return !strncmp(base, "libheapkit.so", 13);
    if (!strcmp(variant, "debug")) return !strncmp(base, "libheapkit-debug.so", 19);
    if (!strcmp(variant, "secure")) return !strncmp(base, "libheapkit-secure.so", 20);
    if (!strcmp(variant, "memcheck")) return !strncmp(base, "libc.so", 7) || !strncmp(base, "libc-", 5);
    return !strncmp(base, "libasan", 7);
}

/* The Diagnostics section of a runner's JSON: its figures agree with one
 * another and, with `with_runs`, with the runs (their number, who served
 * malloc, the slot they took). Every cell is ok, skipped with a reason,
 * n/a (ASan on a real program) or, unless `all_ok`, failed with a reason.
 * Returns the number of cells that ran. */
static int check_diag(const jval_t *v, int all_ok, int with_runs) {
    const jval_t *d = json_get(v, "diagnostics");
    REQUIRE(d && json_get(d, "present")->num == 1);
    const jval_t *tg = json_get(d, "target"), *vars = json_get(d, "variants"), *progs = json_get(d, "programs");
    const jval_t *geo = json_get(d, "geomean"), *runs = json_get(v, "runs");
    int nruns = (int)json_get(d, "runs")->num;
    CHECK(nruns >= 1 && nruns <= 3);
    double dmax = json_get(tg, "debug_max")->num, mmin = json_get(tg, "memcheck_min")->num;
    CHECK(dmax == 3 && mmin == 20);
    REQUIRE(vars->n == 5 && geo->n == 5 && progs->n >= 1);
    for (int k = 0; k < 5; k++) {
        const jval_t *x = vars->item[k];
        CHECK(!strcmp(json_get(x, "name")->str, diag_variants[k]));
        const char *st = json_get(x, "status")->str;
        CHECK(!strcmp(st, "ok") || !strcmp(st, "skipped"));
        CHECK(!strcmp(st, "ok") == !*json_get(x, "reason")->str);
        CHECK(!strcmp(json_get(x, "slot")->str, k < 3 ? "heapkit" : "glibc"));
    }
    double logsum[5] = { 0 }, worst = NAN;
    int nlog[5] = { 0 }, judged = 0, ran = 0;
    const char *worst_prog = NULL;
    for (int i = 0; i < progs->n; i++) {
        const jval_t *p = progs->item[i], *pv = json_get(p, "variants");
        const char *pname = json_get(p, "name")->str;
        int real = !strcmp(json_get(p, "kind")->str, "real");
        REQUIRE(pv && pv->n == 5);
        double plain = num_or_nan(pv->item[0], "time_s");
        for (int k = 0; k < 5; k++) {
            const jval_t *c = pv->item[k];
            const char *st = json_get(c, "status")->str, *why = json_get(c, "reason")->str;
            const jval_t *wk = json_get(c, "workload");
            double t = num_or_nan(c, "time_s"), x = num_or_nan(c, "slowdown");
            CHECK(!strcmp(json_get(c, "variant")->str, diag_variants[k]));
            if (!strcmp(st, "n/a")) {
                /* Only ASan, only on Debian's binaries. */
                CHECK(k == 4 && real && wk->type == J_NULL && strstr(why, "cannot be rebuilt"));
            } else if (!strcmp(st, "skipped")) {
                CHECK(*why && isnan(t) && isnan(x));
                if (wk->type == J_STRING && with_runs) CHECK(count_runs(runs, wk->str, NULL, NULL) == 0);
                /* A skipped variant's cells say its reason. */
                const char *vr = json_get(vars->item[k], "reason")->str;
                if (!strcmp(json_get(vars->item[k], "status")->str, "skipped"))
                    CHECK(!strncmp(vr, why, strlen(why)) && strlen(why) > 10);
            } else if (!strcmp(st, "failed")) {
                if (all_ok) fprintf(stderr, "diagnostics: %s under %s failed: %s\n", pname, diag_variants[k], why);
                CHECK(!all_ok && *why && isnan(t) && isnan(x) && json_get(c, "n_ok")->num == 0);
            } else {
                REQUIRE(!strcmp(st, "ok"));
                ran++;
                CHECK(t > 0 && json_get(c, "time_min_s")->num <= t && t <= json_get(c, "time_max_s")->num);
                CHECK(json_get(c, "n_ok")->num >= 1 && json_get(c, "n_ok")->num + json_get(c, "n_fail")->num == nruns);
                if (all_ok) CHECK(json_get(c, "n_fail")->num == 0);
                /* The slowdown is the time over plain heapkit's. */
                if (isfinite(plain)) CHECK(close_to(x, t / plain));
                else CHECK(isnan(x));
                if (k == 0) CHECK(x == 1);
                if (with_runs) {
                    CHECK(wk->type == J_STRING);
                    int ok = 0;
                    CHECK(count_runs(runs, wk->str, NULL, &ok) == nruns && ok == json_get(c, "n_ok")->num);
                    for (int r = 0; runs && r < runs->n; r++) {
                        const jval_t *run = runs->item[r];
                        if (strcmp(json_get(run, "workload")->str, wk->str) || json_get(run, "ok")->num != 1) continue;
                        const char *from = json_get(run, "malloc_from")->str;
                        if (!malloc_from_fits(diag_variants[k], from))
                            fprintf(stderr, "%s: malloc from %s\n", wk->str, from);
                        CHECK(malloc_from_fits(diag_variants[k], from));
                        CHECK(!strcmp(json_get(run, "allocator")->str, k < 3 ? "heapkit" : "glibc"));
                    }
                }
            }
            if (isfinite(x)) logsum[k] += log(x), nlog[k]++;
        }
        /* The target, per program. */
        double mc = num_or_nan(pv->item[3], "slowdown"), dbg = num_or_nan(pv->item[1], "slowdown");
        CHECK(num_or_nan(p, "memcheck_slowdown") == mc || (isnan(mc) && isnan(num_or_nan(p, "memcheck_slowdown"))));
        CHECK(num_or_nan(p, "debug_slowdown") == dbg || (isnan(dbg) && isnan(num_or_nan(p, "debug_slowdown"))));
        const jval_t *applies = json_get(p, "target_applies"), *met = json_get(p, "target_met");
        if (isfinite(mc)) CHECK(applies->type == J_BOOL && (applies->num == 1) == (mc >= mmin));
        else CHECK(applies->type == J_NULL);
        if (isfinite(mc) && mc >= mmin && isfinite(dbg)) {
            CHECK(met->type == J_BOOL && (met->num == 1) == (dbg <= dmax));
            judged++;
            if (!(dbg <= worst)) worst = dbg, worst_prog = pname;
        } else {
            CHECK(met->type == J_NULL);
        }
    }
    /* Overall: the largest debug slowdown where the target applies. */
    CHECK(json_get(tg, "programs")->num == judged);
    const jval_t *wp = json_get(tg, "worst_program"), *tmet = json_get(tg, "met");
    if (judged) {
        CHECK(num_or_nan(tg, "worst_debug_slowdown") == worst);
        CHECK(wp->type == J_STRING && !strcmp(wp->str, worst_prog));
        CHECK(tmet->type == J_BOOL && (tmet->num == 1) == (worst <= dmax));
    } else {
        CHECK(isnan(num_or_nan(tg, "worst_debug_slowdown")) && wp->type == J_NULL && tmet->type == J_NULL);
    }
    /* Geometric means over the programs where each variant ran. */
    for (int k = 0; k < 5; k++) {
        const jval_t *g = geo->item[k];
        CHECK(!strcmp(json_get(g, "variant")->str, diag_variants[k]));
        CHECK(json_get(g, "programs")->num == nlog[k]);
        if (nlog[k]) CHECK(close_to(num_or_nan(g, "slowdown"), exp(logsum[k] / nlog[k])));
        else CHECK(isnan(num_or_nan(g, "slowdown")));
    }
    return ran;
}

static void test_runner(const char *runner, const char *out, const char *heapkit) {
    char allocs[64];
    snprintf(allocs, sizeof allocs, "glibc%s", heapkit ? ",heapkit" : "");
    char *argv[] = { (char *)runner, "--quick", "--scale", "0.01", "--runs", "2", "--allocators", allocs,
                     "--out", (char *)out, "--strict", heapkit ? "--heapkit" : NULL, (char *)heapkit, NULL };
    hkb_child_t c;
    REQUIRE(run_cmd(argv, &c, 600) == 0);
    CHECK(c.exit_code == 0);
    CHECK(c.out && strstr(c.out, "geometric mean over workloads"));
    CHECK(c.out && strstr(c.out, "[  1/"));  /* a progress line per run */
    hkb_child_free(&c);

    char path[PATH_MAX], err[300];
    snprintf(path, sizeof path, "%s/bench.json", out);
    jval_t *v = json_parse_file(path, err, sizeof err);
    if (!v) fprintf(stderr, "%s: %s\n", path, err);
    REQUIRE(v != NULL);
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        int ok = json_require(v, required[i], err, sizeof err);
        if (!ok) fprintf(stderr, "bench.json: %s\n", err);
        CHECK(ok);
    }
    const jval_t *mode = json_get(v, "mode"), *quick = json_get(v, "quick");
    CHECK(mode && mode->type == J_STRING && !strcmp(mode->str, "quick"));
    CHECK(quick && quick->type == J_BOOL && quick->num == 1);
    /* Every workload ran twice under glibc, every run succeeded under
     * glibc, and glibc's ratio to itself is exactly 1. */
    const jval_t *runs = json_get(v, "runs"), *sum = json_get(v, "summary"), *works = json_get(v, "workloads");
    REQUIRE(runs && sum && works);
    int glibc_runs = 0, glibc_ok = 0, hk_runs = 0, hk_ok = 0;
    for (int i = 0; i < runs->n; i++) {
        const jval_t *a = json_get(runs->item[i], "allocator"), *ok = json_get(runs->item[i], "ok");
        if (!a || a->type != J_STRING || !ok) continue;
        if (!strncmp(json_get(runs->item[i], "workload")->str, "diag-", 5)) continue; /* check_diag's */
        if (!strcmp(a->str, "glibc")) glibc_runs++, glibc_ok += ok->num == 1;
        if (!strcmp(a->str, "heapkit")) hk_runs++, hk_ok += ok->num == 1;
    }
    /* 14 synthetic workloads, the 3 real programs, which run where
     * installed (and are then checked like the others), and the 13 variants
     * of the Beyond malloc comparisons: those whose program is built run,
     * under glibc, heapkit or both. */
    int nsyn = 0, nreal = 0, napi = 0, api_glibc = 0, api_hk = 0, ndiag = 0;
    for (int i = 0; i < works->n; i++) {
        const jval_t *k = json_get(works->item[i], "kind"), *st = json_get(works->item[i], "status");
        const jval_t *only = json_get(works->item[i], "only");
        int ok = st && !strcmp(st->str, "ok");
        if (k && !strcmp(k->str, "synthetic")) nsyn++;
        if (k && !strcmp(k->str, "real") && ok) nreal++;
        if (k && !strcmp(k->str, "diagnostics")) {
            ndiag++;
            CHECK(!strncmp(json_get(works->item[i], "name")->str, "diag-", 5));
            CHECK(json_get(works->item[i], "diag_program")->type == J_STRING);
        }
        if (k && !strcmp(k->str, "api")) {
            napi++;
            if (!ok) {
                printf("note: %s skipped: %s\n", json_get(works->item[i], "name")->str,
                       json_get(works->item[i], "reason")->str);
                continue;
            }
            api_glibc += only->type == J_NULL || !strcmp(only->str, "glibc");
            api_hk += only->type == J_NULL || !strcmp(only->str, "heapkit");
        }
    }
    /* The Diagnostics section, quick: its 7 programs but real-python (6
     * with 5 variants, real-sqlite without ASan: 29 workloads). */
    CHECK(nsyn == 14 && napi == 13 && ndiag == 29 && works->n == 59);
    CHECK(!strcmp(json_get(json_get(v, "diagnostics"), "left_out")->str, "real-python"));
    printf("note: %d of the 3 real programs installed and run\n", nreal);
    CHECK(glibc_runs == 2 * (13 + nreal + api_glibc)); /* arena-destroy runs under heapkit only */
    CHECK(glibc_ok == glibc_runs);
    if (heapkit) {
        const jval_t *hk = find_row(json_get(v, "allocators"), "name", "heapkit", NULL, NULL);
        const jval_t *st = hk ? json_get(hk, "status") : NULL;
        if (st && strcmp(st->str, "ok")) fprintf(stderr, "heapkit skipped: %s\n", json_get(hk, "reason")->str);
        CHECK(st && !strcmp(st->str, "ok"));
        CHECK(hk_runs == 2 * (14 + nreal + api_hk));
        CHECK(hk_ok == hk_runs);
    }
    /* The comparisons are not allocator workloads: no geometric mean counts them. */
    const jval_t *gg = find_row(json_get(v, "geomean"), "allocator", "glibc", NULL, NULL);
    CHECK(gg && json_get(gg, "workloads_vs_glibc")->num == 13 + nreal);
    check_beyond(v, heapkit != NULL);
    /* Quick: one run of each; tiny sizes, but every variant that is there works. */
    CHECK(json_get(json_get(v, "diagnostics"), "runs")->num == 1);
    int diag_ran = check_diag(v, 1, 1);
    printf("note: %d cells of the Diagnostics section ran\n", diag_ran);
    const jval_t *dprogs = json_get(json_get(v, "diagnostics"), "programs");
    CHECK(dprogs->n == 6);
    for (int i = 0; heapkit && i < dprogs->n; i++) /* the baseline, where heapkit is */
        if (!strcmp(json_get(dprogs->item[i], "kind")->str, "synthetic"))
            CHECK(!strcmp(json_get(json_get(dprogs->item[i], "variants")->item[0], "status")->str, "ok"));
    const jval_t *g = find_row(sum, "workload", "small-lifo", "allocator", "glibc");
    REQUIRE(g != NULL);
    CHECK(json_get(g, "time_vs_glibc")->num == 1.0 && json_get(g, "rss_vs_glibc")->num == 1.0);
    CHECK(json_get(g, "n_ok")->num == 2);
    /* The median of two runs lies between them. */
    const jval_t *ws = json_get(g, "wall_s");
    CHECK(json_get(ws, "min")->num <= json_get(ws, "median")->num &&
          json_get(ws, "median")->num <= json_get(ws, "max")->num);
    /* Efficiency is live bytes over peak RSS: in (0, 1]; none for a real
     * program, whose live bytes are unknown. */
    for (int i = 0; i < sum->n; i++) {
        const jval_t *e = json_get(sum->item[i], "efficiency"), *wn = json_get(sum->item[i], "workload");
        const jval_t *wk = wn ? find_row(works, "name", wn->str, NULL, NULL) : NULL;
        if (wk && !strcmp(json_get(wk, "kind")->str, "diagnostics")) continue; /* slowdowns are its figures */
        int real = wk && !strcmp(json_get(wk, "kind")->str, "real");
        if (real) CHECK(e && e->type == J_NULL);
        else CHECK(e && e->type == J_NUMBER && e->num > 0 && e->num <= 1.0);
    }
    /* The frag runs carry the samples for the memory-over-time chart. */
    const jval_t *fr = find_row(runs, "workload", "frag", "allocator", "glibc");
    CHECK(fr && json_get(fr, "samples")->n >= 20 && json_get(fr, "phases")->n == 7);
    json_free(v);

    size_t len = 0;
    snprintf(path, sizeof path, "%s/report.html", out);
    char *html = slurp(path, &len);
    REQUIRE(html != NULL);
    CHECK(!strncmp(html, "<!DOCTYPE html>", 15));
    CHECK(len > 8 && !strcmp(html + len - 8, "</html>\n"));
    CHECK(strstr(html, "QUICK RUN") != NULL);
    CHECK(strstr(html, "<svg") != NULL);
    CHECK(strstr(html, "<polyline") != NULL); /* the line chart */
    CHECK(strstr(html, "frag: resident memory") != NULL);
    const char *groups[] = { "id=\"beyond\"", "id=\"beyond-pool\"", "id=\"beyond-cache\"", "id=\"beyond-cache-xt\"",
                             "id=\"beyond-tree\"" };
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) CHECK(strstr(html, groups[i]) != NULL);
    CHECK(strstr(html, "id=\"diagnostics\"") && strstr(html, "slowdown against plain heapkit"));
    CHECK(!strstr(html, "id=\"w-diag-")); /* not among the allocator workloads */
    const char *names[] = { "small-lifo", "small-fifo", "small-random", "mixed", "larson", "prodcons", "threads",
                            "realloc", "large", "large-cycle", "falseshare", "frag", "arena-free", "arena-destroy",
                            "real-python", "real-sqlite", "real-redis" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char id[64];
        snprintf(id, sizeof id, "id=\"w-%s\"", names[i]);
        CHECK(strstr(html, id) != NULL);
    }
    /* Balanced SVG: every chart that opens is closed. */
    int open = 0, close = 0;
    for (const char *p = html; (p = strstr(p, "<svg")); p++) open++;
    for (const char *p = html; (p = strstr(p, "</svg>")); p++) close++;
    CHECK(open > 0 && open == close);
    free(html);
    snprintf(path, sizeof path, "%s/summary.txt", out);
    char *txt = slurp(path, NULL);
    CHECK(txt && strstr(txt, "geometric mean over workloads"));
    CHECK(txt && strstr(txt, "== Beyond malloc") && strstr(txt, "\ntree: ") && strstr(txt, "teardown"));
    CHECK(txt && strstr(txt, "== Diagnostics") && strstr(txt, "\ntarget: debug <= 3x plain heapkit where memcheck >= 20x: "));
    const char *dsec = txt ? strstr(txt, "== Diagnostics") : NULL;
    CHECK(dsec && strstr(dsec, "\nreal-sqlite ") && !strstr(dsec, "\nreal-python ")); /* (quick) */
    free(txt);
}

/* ---- missing ----------------------------------------------------------------- */

static void test_missing(const char *runner, const char *out) {
    /* A real shared object that does not define malloc: libm. */
    char libm[PATH_MAX] = "";
    void *h = dlopen("libm.so.6", RTLD_NOW);
    Dl_info di;
    void *sym = h ? dlsym(h, "cos") : NULL;
    if (sym && dladdr(sym, &di) && di.dli_fname) snprintf(libm, sizeof libm, "%s", di.dli_fname);
    REQUIRE(*libm);
    char fake[PATH_MAX + 8];
    snprintf(fake, sizeof fake, "fake=%s", libm);
    char *argv[] = { (char *)runner, "--scale", "0.01", "--runs", "1", "--workloads", "small-lifo", "--alloc",
                     "ghost=/nonexistent/libghost.so", "--alloc", fake, "--allocators", "glibc,ghost,fake",
                     "--out", (char *)out, NULL };
    hkb_child_t c;
    REQUIRE(run_cmd(argv, &c, 300) == 0);
    CHECK(c.exit_code == 0);
    CHECK(c.out && strstr(c.out, "skipping ghost: /nonexistent/libghost.so not found"));
    CHECK(c.out && strstr(c.out, "skipping fake: ") && strstr(c.out, "does not provide malloc"));
    CHECK(c.out && strstr(c.out, "small-lifo    glibc"));
    hkb_child_free(&c);
    char path[PATH_MAX], err[300];
    snprintf(path, sizeof path, "%s/bench.json", out);
    jval_t *v = json_parse_file(path, err, sizeof err);
    REQUIRE(v != NULL);
    const jval_t *al = json_get(v, "allocators");
    const jval_t *ghost = find_row(al, "name", "ghost", NULL, NULL), *fk = find_row(al, "name", "fake", NULL, NULL);
    REQUIRE(ghost && fk);
    CHECK(!strcmp(json_get(ghost, "status")->str, "skipped") && *json_get(ghost, "reason")->str);
    CHECK(!strcmp(json_get(fk, "status")->str, "skipped") && *json_get(fk, "reason")->str);
    const jval_t *runs = json_get(v, "runs");
    CHECK(runs && runs->n == 1);
    if (runs && runs->n == 1) CHECK(!strcmp(json_get(runs->item[0], "allocator")->str, "glibc"));
    json_free(v);

    /* What is fatal: an allocator name nobody knows, a bad option. */
    char *bad1[] = { (char *)runner, "--allocators", "glibc,nosuch", "--out", (char *)out, NULL };
    char *bad2[] = { (char *)runner, "--bogus", NULL };
    char *bad3[] = { (char *)runner, "--workloads", "nosuch", "--out", (char *)out, NULL };
    char **bads[] = { bad1, bad2, bad3 };
    for (int i = 0; i < 3; i++) {
        REQUIRE(hkb_spawn(bads[i], "", 60, &c) == 0);
        CHECK(c.exit_code == 2);
        hkb_child_free(&c);
    }
}

/* ---- instr --------------------------------------------------------------------- */

static void test_instr(const char *runner, const char *out) {
    char *argv[] = { (char *)runner, "--instr-only", "--allocators", "glibc,heapkit", "--out", (char *)out, NULL };
    hkb_child_t c;
    REQUIRE(run_cmd(argv, &c, 600) == 0);
    CHECK(c.exit_code == 0);
    int have_valgrind = c.out && !strstr(c.out, "valgrind not found");
    hkb_child_free(&c);
    char path[PATH_MAX], err[300];
    snprintf(path, sizeof path, "%s/bench.json", out);
    jval_t *v = json_parse_file(path, err, sizeof err);
    REQUIRE(v != NULL);
    CHECK(json_require(v, "instructions.measured:bool", err, sizeof err));
    const jval_t *ins = json_get(v, "instructions");
    REQUIRE(ins != NULL);
    if (!have_valgrind) {
        printf("note: valgrind is not installed; only the skip was checked\n");
        CHECK(json_get(ins, "measured")->num == 0);
    } else {
        CHECK(json_get(ins, "measured")->num == 1);
        /* malloc+free under both allocators (3 sizes each), and heapkit's
         * own pairs: hk_malloc+hk_free and hk_cache_alloc+hk_cache_free. */
        const jval_t *res = json_get(ins, "results"), *api = json_get(ins, "api_results");
        CHECK(res && res->n == 6);
        CHECK(api && api->n == 6);
        int hk_malloc_rows = 0, hk_cache_rows = 0;
        for (int k = 0; k < 2; k++) {
            const jval_t *set = k ? api : res;
            for (int i = 0; set && i < set->n; i++) {
                const jval_t *pp = json_get(set->item[i], "per_pair");
                const jval_t *i1 = json_get(set->item[i], "ir1"), *i2 = json_get(set->item[i], "ir2");
                /* A sanity check of the method, not of speed: the longer run
                 * executes more instructions, and a pair costs a positive,
                 * finite number of them (a sign or scale error in the
                 * subtraction would break this). */
                CHECK(i1 && i2 && i2->num > i1->num);
                CHECK(pp && pp->type == J_NUMBER && pp->num > 1 && pp->num < 100000);
                const jval_t *name = k ? json_get(set->item[i], "api") : NULL;
                hk_malloc_rows += name && name->type == J_STRING && !strcmp(name->str, "hk_malloc");
                hk_cache_rows += name && name->type == J_STRING && !strcmp(name->str, "hk_cache");
            }
        }
        CHECK(hk_malloc_rows == 3 && hk_cache_rows == 3);
    }
    json_free(v);
}


/* ---- real programs ---------------------------------------------------------------- */

static int count_runs(const jval_t *runs, const char *workload, const char *alloc, int *ok) {
    int n = 0;
    if (ok) *ok = 0;
    for (int i = 0; runs && i < runs->n; i++) {
        const jval_t *w = json_get(runs->item[i], "workload"), *a = json_get(runs->item[i], "allocator");
        if (!w || strcmp(w->str, workload) || (alloc && (!a || strcmp(a->str, alloc)))) continue;
        n++;
        if (ok && json_get(runs->item[i], "ok")->num == 1) (*ok)++;
    }
    return n;
}

static jval_t *load_json(const char *out) {
    char path[PATH_MAX], err[300];
    snprintf(path, sizeof path, "%s/bench.json", out);
    jval_t *v = json_parse_file(path, err, sizeof err);
    if (!v) fprintf(stderr, "%s: %s\n", path, err);
    return v;
}

static int test_real(const char *runner, const char *out, const char *workload, const char *heapkit) {
    char allocs[64];
    snprintf(allocs, sizeof allocs, "glibc%s", heapkit ? ",heapkit" : "");
    char *argv[] = { (char *)runner, "--scale", "0.01", "--runs", "2", "--workloads", (char *)workload,
                     "--allocators", allocs, "--out", (char *)out, "--strict", "--timeout", "120",
                     heapkit ? "--heapkit" : NULL, (char *)heapkit, NULL };
    hkb_child_t c;
    REQUIRE(hkb_spawn(argv, "", 600, &c) == 0);
    /* Not installed: a skip with the apt-get line, never a pass. */
    char skip[128];
    snprintf(skip, sizeof skip, "skipping workload %s: ", workload);
    const char *sk = c.out ? strstr(c.out, skip) : NULL;
    if (sk) {
        int nl = (int)strcspn(sk, "\n");
        int missing = strstr(sk, "not found (apt-get install ") != NULL && (int)(strstr(sk, "not found") - sk) < nl;
        if (missing) {
            printf("SKIP: %.*s; this test did not run\n", nl, sk);
            fflush(stdout);
            hkb_child_free(&c);
            exit(77);
        }
        fprintf(stderr, "%.*s\n", nl, sk); /* skipped for another reason: a failure */
    }
    if (c.exit_code != 0) fprintf(stderr, "hkbench exited %d\nstdout:\n%s\nstderr:\n%s\n", c.exit_code, c.out, c.err);
    CHECK(c.exit_code == 0);
    CHECK(c.out && strstr(c.out, "reference ") && strstr(c.out, "under glibc (untimed)"));
    hkb_child_free(&c);

    jval_t *v = load_json(out);
    REQUIRE(v != NULL);
    char err[300];
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        int ok = json_require(v, required[i], err, sizeof err);
        if (!ok) fprintf(stderr, "bench.json: %s\n", err);
        CHECK(ok);
    }
    const jval_t *wk = find_row(json_get(v, "workloads"), "name", workload, NULL, NULL);
    REQUIRE(wk != NULL);
    CHECK(!strcmp(json_get(wk, "kind")->str, "real"));
    CHECK(!strcmp(json_get(wk, "status")->str, "ok"));
    CHECK(json_get(wk, "live_known")->num == 0);
    CHECK(*json_get(wk, "command")->str && *json_get(wk, "version")->str);
    const char *ref = json_get(wk, "reference_hash")->str;
    CHECK(strlen(ref) == 16 && strspn(ref, "0123456789abcdef") == 16);
    CHECK(!*json_get(wk, "reference_error")->str);

    /* Every run ok, and printed what glibc's reference printed. */
    const jval_t *runs = json_get(v, "runs");
    int gok = 0, hok = 0;
    CHECK(count_runs(runs, workload, "glibc", &gok) == 2 && gok == 2);
    if (heapkit) CHECK(count_runs(runs, workload, "heapkit", &hok) == 2 && hok == 2);
    CHECK(count_runs(runs, workload, NULL, NULL) == (heapkit ? 4 : 2));
    for (int i = 0; runs && i < runs->n; i++) {
        const jval_t *r = runs->item[i];
        const char *a = json_get(r, "allocator")->str, *from = json_get(r, "malloc_from")->str;
        const char *err_s = json_get(r, "error")->str;
        if (*err_s) fprintf(stderr, "%s under %s: %s\n", workload, a, err_s);
        CHECK(!strcmp(json_get(r, "output_hash")->str, ref));
        const char *base = strrchr(from, '/') ? strrchr(from, '/') + 1 : from;
        if (!strcmp(a, "glibc")) CHECK(!strncmp(base, "libc.so", 7) || !strncmp(base, "libc-", 5));
        else CHECK(strstr(base, "libheapkit") != NULL);
        CHECK(json_get(r, "wall_s")->num > 0 && json_get(r, "cpu_s")->num > 0);
        CHECK(json_get(r, "maxrss_kib")->num > 1000 && json_get(r, "minflt")->num > 0);
        CHECK(json_get(r, "hwm_kib")->num > 1000);
        CHECK(json_get(r, "ops")->num > 0);
        CHECK(json_get(r, "live_peak")->num == -1);
        const jval_t *rps = json_get(r, "rps");
        if (!strcmp(workload, "real-redis")) {
            CHECK(rps->type == J_NUMBER && rps->num > 0);
            CHECK(strstr(json_get(r, "detail")->str, "SET ") && strstr(json_get(r, "detail")->str, "LPOP "));
            /* The time is the benchmark's: requests / time is the rate. */
            CHECK(fabs(json_get(r, "ops")->num / json_get(r, "wall_s")->num - rps->num) < 1e-6 * rps->num + 1);
        } else {
            CHECK(rps->type == J_NULL);
        }
    }
    /* Summaries: ratios like any workload, no efficiency. */
    const jval_t *sum = json_get(v, "summary");
    const jval_t *g = find_row(sum, "workload", workload, "allocator", "glibc");
    REQUIRE(g != NULL);
    CHECK(json_get(g, "n_ok")->num == 2);
    CHECK(json_get(g, "time_vs_glibc")->num == 1.0 && json_get(g, "rss_vs_glibc")->num == 1.0);
    CHECK(json_get(g, "efficiency")->type == J_NULL && json_get(g, "live_peak")->type == J_NULL);
    CHECK((json_get(json_get(g, "rps"), "n")->num == 2) == !strcmp(workload, "real-redis"));
    if (heapkit) {
        const jval_t *h = find_row(sum, "workload", workload, "allocator", "heapkit");
        REQUIRE(h != NULL);
        CHECK(json_get(h, "time_vs_glibc")->type == J_NUMBER && json_get(h, "time_vs_glibc")->num > 0);
        CHECK(json_get(h, "rss_vs_glibc")->type == J_NUMBER && json_get(h, "rss_vs_glibc")->num > 0);
        const jval_t *gm = find_row(json_get(v, "geomean"), "allocator", "heapkit", NULL, NULL);
        CHECK(gm && json_get(gm, "workloads_vs_glibc")->num == 1);
    }
    json_free(v);

    char path[PATH_MAX], id[64];
    snprintf(path, sizeof path, "%s/report.html", out);
    char *html = slurp(path, NULL);
    REQUIRE(html != NULL);
    snprintf(id, sizeof id, "id=\"w-%s\"", workload);
    CHECK(strstr(html, id) != NULL);
    CHECK(strstr(html, "Real program") != NULL);
    CHECK(strstr(html, "No efficiency") != NULL);
    free(html);
    snprintf(path, sizeof path, "%s/summary.txt", out);
    char *txt = slurp(path, NULL);
    CHECK(txt && strstr(txt, workload) && strstr(txt, "real-*: real programs"));
    free(txt);
    return 0;
}

static void write_script(const char *path, const char *body) {
    FILE *f = fopen(path, "w");
    REQUIRE(f != NULL);
    fputs(body, f);
    fclose(f);
    chmod(path, 0755);
}

static void test_realcheck(const char *runner, const char *out, const char *heapkit) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", out);
    mkdir(dir, 0777);

    /* 1. Missing programs: skipped with the package to install; no runs,
     *    no summary rows, not in the geometric means, and --strict is not
     *    fooled into a failure either. */
    struct { const char *prog, *workload, *apt, *other; } miss[] = {
        { "python3", "real-python", "apt-get install python3", NULL },
        { "sqlite3", "real-sqlite", "apt-get install sqlite3", NULL },
        { "redis-server", "real-redis", "apt-get install redis-server redis-tools", NULL },
        /* (a server that exists, so that the client is the one missing) */
        { "redis-benchmark", "real-redis", "apt-get install redis-server redis-tools", "redis-server=/bin/sh" },
    };
    for (size_t i = 0; i < sizeof miss / sizeof miss[0]; i++) {
        char prog[128], wl[64], o[PATH_MAX + 16], expect[256];
        snprintf(prog, sizeof prog, "%s=/nonexistent/%s", miss[i].prog, miss[i].prog);
        snprintf(wl, sizeof wl, "%s,small-lifo", miss[i].workload);
        snprintf(o, sizeof o, "%s/missing-%zu", out, i);
        char *argv[] = { (char *)runner, "--scale", "0.01", "--runs", "1", "--workloads", wl, "--allocators", "glibc",
                         "--program", prog, "--out", o, "--strict", miss[i].other ? "--program" : NULL,
                         (char *)miss[i].other, NULL };
        hkb_child_t c;
        REQUIRE(hkb_spawn(argv, "", 300, &c) == 0);
        snprintf(expect, sizeof expect, "skipping workload %s: /nonexistent/%s not found (%s)", miss[i].workload,
                 miss[i].prog, miss[i].apt);
        if (!c.out || !strstr(c.out, expect)) fprintf(stderr, "expected '%s' in:\n%s\n", expect, c.out);
        CHECK(c.out && strstr(c.out, expect));
        CHECK(c.out && strstr(c.out, "1 workload skipped, not run"));
        CHECK(c.exit_code == 0);
        hkb_child_free(&c);
        jval_t *v = load_json(o);
        REQUIRE(v != NULL);
        const jval_t *wk = find_row(json_get(v, "workloads"), "name", miss[i].workload, NULL, NULL);
        CHECK(wk && !strcmp(json_get(wk, "status")->str, "skipped"));
        CHECK(wk && strstr(json_get(wk, "reason")->str, miss[i].apt));
        CHECK(count_runs(json_get(v, "runs"), miss[i].workload, NULL, NULL) == 0);
        CHECK(find_row(json_get(v, "summary"), "workload", miss[i].workload, NULL, NULL) == NULL);
        const jval_t *gm = find_row(json_get(v, "geomean"), "allocator", "glibc", NULL, NULL);
        CHECK(gm && json_get(gm, "workloads_vs_glibc")->num == 1); /* small-lifo only */
        json_free(v);
        char path[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/summary.txt", o);
        char *txt = slurp(path, NULL);
        CHECK(txt && strstr(txt, "SKIPPED: /nonexistent/"));
        free(txt);
        snprintf(path, sizeof path, "%s/report.html", o);
        char *html = slurp(path, NULL);
        CHECK(html && strstr(html, "skipped: /nonexistent/"));
        free(html);
    }
    /* An unknown program name is refused. */
    {
        char *argv[] = { (char *)runner, "--program", "perl=/usr/bin/perl", "--out", dir, NULL };
        hkb_child_t c;
        REQUIRE(hkb_spawn(argv, "", 60, &c) == 0);
        CHECK(c.exit_code == 2);
        hkb_child_free(&c);
    }

    /* 2. A failing reference run: every run fails, at no cost, and says why. */
    char fake[PATH_MAX + 32];
    snprintf(fake, sizeof fake, "%s/fake-python-fails", out);
    write_script(fake, "#!/bin/sh\necho 'broken on purpose' >&2\nexit 3\n");
    {
        char prog[PATH_MAX + 48], o[PATH_MAX + 16];
        snprintf(prog, sizeof prog, "python3=%s", fake);
        snprintf(o, sizeof o, "%s/reffail", out);
        char *argv[] = { (char *)runner, "--scale", "0.01", "--runs", "2", "--workloads", "real-python",
                         "--allocators", "glibc", "--program", prog, "--out", o, "--strict", NULL };
        hkb_child_t c;
        REQUIRE(hkb_spawn(argv, "", 300, &c) == 0);
        CHECK(c.exit_code == 1); /* --strict: runs failed */
        CHECK(c.out && strstr(c.out, "reference real-python  FAILED: exit 3: broken on purpose"));
        hkb_child_free(&c);
        jval_t *v = load_json(o);
        REQUIRE(v != NULL);
        const jval_t *runs = json_get(v, "runs");
        int ok = 0;
        CHECK(count_runs(runs, "real-python", "glibc", &ok) == 2 && ok == 0);
        for (int i = 0; runs && i < runs->n; i++)
            CHECK(strstr(json_get(runs->item[i], "error")->str, "the untimed reference run under glibc failed") != NULL);
        const jval_t *wk = find_row(json_get(v, "workloads"), "name", "real-python", NULL, NULL);
        CHECK(wk && strstr(json_get(wk, "reference_error")->str, "broken on purpose"));
        json_free(v);
    }

    /* 3. A program whose output changes under one allocator: those runs
     *    fail with the first differing line; glibc's pass. The fake is a
     *    shell script: the probe in /bin/sh still proves the preload. */
    if (!heapkit) {
        printf("note: no --heapkit: the output-mismatch check needs a second allocator; not run\n");
        return;
    }
    snprintf(fake, sizeof fake, "%s/fake-python-differs", out);
    write_script(fake, "#!/bin/sh\necho 'line one'\ncase \"$LD_PRELOAD\" in\n"
                       "  *libheapkit*) echo 'line two (heapkit)' ;;\n  *) echo 'line two' ;;\nesac\n");
    {
        char prog[PATH_MAX + 48], o[PATH_MAX + 16];
        snprintf(prog, sizeof prog, "python3=%s", fake);
        snprintf(o, sizeof o, "%s/mismatch", out);
        char *argv[] = { (char *)runner, "--scale", "0.01", "--runs", "2", "--workloads", "real-python",
                         "--allocators", "glibc,heapkit", "--heapkit", (char *)heapkit, "--program", prog,
                         "--out", o, "--strict", NULL };
        hkb_child_t c;
        REQUIRE(hkb_spawn(argv, "", 300, &c) == 0);
        CHECK(c.exit_code == 1);
        CHECK(c.out && strstr(c.out, "output differs from the glibc reference at line 2: "
                                     "\"line two (heapkit)\" instead of \"line two\""));
        hkb_child_free(&c);
        jval_t *v = load_json(o);
        REQUIRE(v != NULL);
        const jval_t *runs = json_get(v, "runs");
        int gok = 0, hok = 0;
        CHECK(count_runs(runs, "real-python", "glibc", &gok) == 2 && gok == 2);
        CHECK(count_runs(runs, "real-python", "heapkit", &hok) == 2 && hok == 0);
        const jval_t *h = find_row(json_get(v, "summary"), "workload", "real-python", "allocator", "heapkit");
        CHECK(h && json_get(h, "n_ok")->num == 0 && json_get(h, "time_vs_glibc")->type == J_NULL);
        const jval_t *gm = find_row(json_get(v, "geomean"), "allocator", "heapkit", NULL, NULL);
        CHECK(gm && json_get(gm, "workloads_vs_glibc")->num == 0); /* a failed pair counts nowhere */
        json_free(v);
    }
}

/* ---- beyondcheck: the runner's side of the comparisons ---------------------------- */

static void mkdirs(const char *path) {
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(tmp, 0777);
            *p = '/';
        }
    mkdir(tmp, 0777);
}

/* dir/ gets a symlink to every file of bindir but those in `except`. */
static void mirror_bindir(const char *bindir, const char *dir, const char *const *except) {
    mkdirs(dir);
    DIR *d = opendir(bindir);
    REQUIRE(d != NULL);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        int skip = 0;
        for (int i = 0; except[i]; i++) skip |= !strcmp(except[i], e->d_name);
        char from[PATH_MAX], to[2 * PATH_MAX];
        snprintf(from, sizeof from, "%s/%s", bindir, e->d_name);
        snprintf(to, sizeof to, "%s/%s", dir, e->d_name);
        unlink(to);
        if (!skip) CHECK(symlink(from, to) == 0);
    }
    closedir(d);
}

static int count_in(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; p && (p = strstr(p, needle)); p++) n++;
    return n;
}

static void test_beyondcheck(const char *runner, const char *out, const char *bindir) {
    char bin[PATH_MAX], o[PATH_MAX], path[PATH_MAX + 32];
    char rbindir[PATH_MAX];
    REQUIRE(realpath(bindir, rbindir) != NULL);
    mkdirs(out);

    /* 1. APR and GLib not installed (their programs absent), and heapkit
     *    not among the allocators: the comparators are skipped with their
     *    apt-get line, once per library; the comparisons run without them
     *    and without heapkit's variant, so no target is judged. */
    const char *missing[] = { "wl_pool_apr", "wl_cache_gslice", NULL };
    snprintf(bin, sizeof bin, "%s/missing-bin", out);
    snprintf(o, sizeof o, "%s/missing", out);
    mirror_bindir(rbindir, bin, missing);
    {
        char *argv[] = { (char *)runner, "--scale", "0.01", "--runs", "1", "--workloads", "pool,cache,tree",
                         "--allocators", "glibc", "--bindir", bin, "--out", o, "--strict", NULL };
        hkb_child_t c;
        REQUIRE(run_cmd(argv, &c, 300) == 0);
        CHECK(c.exit_code == 0);
        CHECK(count_in(c.out, "skipping apr: not installed (apt-get install libapr1-dev)\n") == 1);
        CHECK(count_in(c.out, "skipping glib: not installed (apt-get install libglib2.0-dev)\n") == 1);
        /* (runs only under heapkit; or, in a bench built alone, not built) */
        CHECK(count_in(c.out, "skipping workload tree-hk_heap: ") == 1);
        hkb_child_free(&c);
        jval_t *v = load_json(o);
        REQUIRE(v != NULL);
        const jval_t *wk = find_row(json_get(v, "workloads"), "name", "pool-apr", NULL, NULL);
        CHECK(wk && !strcmp(json_get(wk, "status")->str, "skipped") &&
              !strcmp(json_get(wk, "reason")->str, "not installed (apt-get install libapr1-dev)"));
        CHECK(wk && !strcmp(json_get(wk, "kind")->str, "api") && !strcmp(json_get(wk, "library")->str, "apr"));
        CHECK(count_runs(json_get(v, "runs"), "pool-apr", NULL, NULL) == 0);
        CHECK(count_runs(json_get(v, "runs"), "cache-g_slice", NULL, NULL) == 0);
        CHECK(count_runs(json_get(v, "runs"), "pool-malloc", "glibc", NULL) == 1);
        const jval_t *groups = json_get(v, "beyond_malloc");
        CHECK(groups && groups->n == 4); /* "cache" is cache-* too: cache-xt */
        for (int k = 0; groups && k < groups->n; k++) {
            const jval_t *g = groups->item[k];
            CHECK(json_get(g, "ours")->type == J_NULL);
            CHECK(json_get(g, "speedup_vs_glibc_malloc")->type == J_NULL);
            CHECK(json_get(g, "target_met_vs_glibc_malloc")->type == J_NULL);
        }
        const jval_t *pool = find_row(groups, "name", "pool", NULL, NULL);
        const jval_t *row = pool ? find_row(json_get(pool, "rows"), "workload", "pool-apr", NULL, NULL) : NULL;
        CHECK(row && !strcmp(json_get(row, "status")->str, "skipped") && strstr(json_get(row, "reason")->str, "libapr1-dev"));
        json_free(v);
        snprintf(path, sizeof path, "%s/summary.txt", o);
        char *txt = slurp(path, NULL);
        CHECK(txt && strstr(txt, "apr                  SKIPPED: not installed (apt-get install libapr1-dev)"));
        CHECK(txt && count_in(txt, "heapkit's variant has no result") == 4);
        free(txt);
        snprintf(path, sizeof path, "%s/report.html", o);
        char *html = slurp(path, NULL);
        CHECK(html && strstr(html, "skipped: not installed (apt-get install libglib2.0-dev)"));
        free(html);
    }

    /* 2. A variant that computes something else: a stand-in for
     *    wl_pool_talloc does wl_pool's work, right in --mode context and
     *    with a wrong checksum in --mode pool. Those runs fail; the others,
     *    the majority, pass. */
    const char *talloc[] = { "wl_pool_talloc", NULL };
    snprintf(bin, sizeof bin, "%s/mismatch-bin", out);
    snprintf(o, sizeof o, "%s/mismatch", out);
    mirror_bindir(rbindir, bin, talloc);
    char script[2 * PATH_MAX + 700];
    snprintf(script, sizeof script,
             "#!/bin/sh\n# a stand-in for wl_pool_talloc (test_bench beyondcheck)\nmode=context\nargs=\n"
             "while [ $# -gt 0 ]; do\n"
             "  if [ \"$1\" = --mode ]; then mode=$2; shift 2; else args=\"$args $1\"; shift; fi\n"
             "done\n"
             "if [ \"$mode\" = pool ]; then\n"
             "  %s/wl_pool $args | sed 's/check=[0-9a-f]*/check=0bad/'\n"
             "else\n"
             "  exec %s/wl_pool $args\n"
             "fi\n", rbindir, rbindir);
    snprintf(path, sizeof path, "%s/wl_pool_talloc", bin);
    write_script(path, script);
    {
        char *argv[] = { (char *)runner, "--scale", "0.01", "--runs", "2", "--workloads",
                         "pool-malloc,pool-talloc,pool-talloc_pool", "--allocators", "glibc", "--bindir", bin, "--out", o,
                         "--strict", NULL };
        hkb_child_t c;
        REQUIRE(hkb_spawn(argv, "", 300, &c) == 0);
        CHECK(c.exit_code == 1); /* --strict: runs failed */
        CHECK(c.out && strstr(c.out, "pool-talloc_pool under glibc, run 1: checksum 0bad"));
        CHECK(c.out && strstr(c.out, "differs from the pool comparison's"));
        hkb_child_free(&c);
        jval_t *v = load_json(o);
        REQUIRE(v != NULL);
        const jval_t *runs = json_get(v, "runs");
        int ok = 0;
        CHECK(count_runs(runs, "pool-malloc", "glibc", &ok) == 2 && ok == 2);
        CHECK(count_runs(runs, "pool-talloc", "glibc", &ok) == 2 && ok == 2);
        CHECK(count_runs(runs, "pool-talloc_pool", "glibc", &ok) == 2 && ok == 0);
        for (int i = 0; runs && i < runs->n; i++)
            if (!strcmp(json_get(runs->item[i], "workload")->str, "pool-talloc_pool"))
                CHECK(strstr(json_get(runs->item[i], "error")->str, "printed by 4 of 6 runs") != NULL);
        const jval_t *pool = find_row(json_get(v, "beyond_malloc"), "name", "pool", NULL, NULL);
        REQUIRE(pool != NULL);
        CHECK(json_get(pool, "checksum_runs")->num == 6 && json_get(pool, "checksum_runs_agree")->num == 4);
        CHECK(strcmp(json_get(pool, "checksum")->str, "0bad") != 0);
        const jval_t *row = find_row(json_get(pool, "rows"), "workload", "pool-talloc_pool", NULL, NULL);
        CHECK(row && !strcmp(json_get(row, "status")->str, "failed") && json_get(row, "figure_s")->type == J_NULL);
        json_free(v);
    }
}

/* ---- diagunits: the Diagnostics section's figures from runs made up here ------------- */

/* The programs of the made-up section and the median time of each variant
 * (3 runs: 0.9, 1 and 1.2 times it); 0: the variant has no run; -1: its
 * runs fail. */
typedef struct {
    const char *program;
    double t[HKB_DIAG_NVARIANTS];
} made_up_t;

static void made_up_runs(hkb_t *b, const made_up_t *m, int nm) {
    free(b->run);
    b->run = calloc((size_t)(nm * HKB_DIAG_NVARIANTS * 3), sizeof *b->run);
    REQUIRE(b->run != NULL);
    b->nrun = 0;
    for (int w = 0; w < b->nwork; w++) {
        const hkb_workload_t *wk = &b->work[w];
        const made_up_t *x = NULL;
        for (int i = 0; i < nm; i++)
            if (!strcmp(m[i].program, wk->diag_program)) x = &m[i];
        REQUIRE(x != NULL);
        double t = x->t[wk->diag_variant];
        if (t == 0 || !wk->ok) continue;
        for (int rep = 0; rep < 3; rep++) {
            hkb_run_t *r = &b->run[b->nrun++];
            memset(r, 0, sizeof *r);
            r->w = w;
            r->a = !strcmp(wk->only, "glibc") ? 0 : 1;
            r->rep = rep;
            r->done = 1;
            r->ok = t > 0;
            r->exit_code = t > 0 ? 0 : 1;
            if (t < 0) snprintf(r->error, sizeof r->error, "exit 1: made up to fail");
            r->wall_s = r->cpu_s = t > 0 ? t * (rep == 0 ? 0.9 : rep == 1 ? 1 : 1.2) : 0;
            r->maxrss_kib = 1000;
            r->ops = r->live_peak = 1;
            r->rps = r->work_s = NAN;
        }
    }
    free(b->sum);
    hkb_summarise(b);
    hkb_diag_summarise(b);
}

static void test_diagunits(const char *out) {
    static hkb_t b;
    mkdirs(out);
    b.mode = "full";
    b.scale = 1;
    b.runs = 3;
    b.threads = 2;
    b.max_fail = 2;
    snprintf(b.out_dir, sizeof b.out_dir, "%s", out);
    snprintf(b.bin_dir, sizeof b.bin_dir, "/nonexistent/bin");
    snprintf(b.started, sizeof b.started, "2026-01-01T00:00:00Z");
    snprintf(b.host, sizeof b.host, "made up");
    b.nalloc = 2;
    snprintf(b.alloc[0].name, sizeof b.alloc[0].name, "glibc");
    snprintf(b.alloc[1].name, sizeof b.alloc[1].name, "heapkit");
    snprintf(b.alloc[1].path, sizeof b.alloc[1].path, "/made/up/libheapkit.so");
    b.alloc[0].ok = b.alloc[1].ok = 1;
    int n;
    const hkb_workload_t *all = hkb_diag_workloads(&n);
    const char *chosen[] = { "small-random", "mixed", "larson", "realloc", "arena-free", "real-sqlite" };
    for (int i = 0; i < n; i++)
        for (size_t k = 0; k < sizeof chosen / sizeof chosen[0]; k++)
            if (!strcmp(all[i].diag_program, chosen[k])) b.work[b.nwork++] = all[i];
    CHECK(b.nwork == 5 * 5 + 4); /* no ASan variant of real-sqlite */
    REQUIRE(b.nwork == 29);
    hkb_diag_init(&b, "/made/up/libheapkit.so", 0);
    hkb_diag_t *dg = &b.diag;
    CHECK(dg->present && dg->nprog == 6 && dg->runs == 3);
    /* The libraries are looked for beside heapkit's: not there. */
    CHECK(!dg->tool[HKB_DIAG_DEBUG].lib.ok && !dg->tool[HKB_DIAG_SECURE].lib.ok);
    CHECK(!strcmp(dg->tool[HKB_DIAG_SECURE].lib.path, "/made/up/libheapkit-secure.so"));
    CHECK(strstr(dg->tool[HKB_DIAG_SECURE].lib.reason, "/made/up/libheapkit-secure.so not built yet (make build"));
    /* As if debug, memcheck and ASan were found; secure stays missing. */
    dg->tool[HKB_DIAG_PLAIN].lib.ok = dg->tool[HKB_DIAG_DEBUG].lib.ok = 1;
    dg->tool[HKB_DIAG_MEMCHECK].lib.ok = dg->tool[HKB_DIAG_ASAN].lib.ok = 1;
    for (int w = 0; w < b.nwork; w++) {
        hkb_workload_t *wk = &b.work[w];
        wk->ok = dg->tool[wk->diag_variant].lib.ok;
        if (!wk->ok) snprintf(wk->reason, sizeof wk->reason, "%s", dg->tool[wk->diag_variant].lib.reason);
    }
    /*                        heapkit debug secure memcheck asan */
    made_up_t m[] = { { "small-random", { 1.0, 2.5, 1.1, 30, 8 } },   /* applies, met */
                      { "mixed", { 1.0, 3.5, 1.1, 25, 4 } },          /* applies, not met */
                      { "larson", { 1.0, 5, 1.1, 10, 3 } },           /* memcheck under 20x: not judged */
                      { "realloc", { -1, 2, 1.1, 40, 5 } },           /* no baseline: no slowdowns */
                      { "arena-free", { 0.5, 1.5, 0.6, 10, 2 } },     /* on both bounds: 3x, 20x: met */
                      { "real-sqlite", { 0.5, 1.0, 0.6, 15, 0 } } };  /* 2x, 30x: met */
    made_up_runs(&b, m, 6);
    hkb_diag_prog_t *p = dg->prog;
    CHECK(!strcmp(p[0].name, "small-random") && !strcmp(p[5].name, "real-sqlite") && p[5].real);
    CHECK(p[0].slowdown[HKB_DIAG_PLAIN] == 1 && p[0].slowdown[HKB_DIAG_DEBUG] == 2.5);
    CHECK(p[0].target_applies == 1 && p[0].target == 1);
    CHECK(p[1].target_applies == 1 && p[1].target == 0);
    CHECK(p[2].target_applies == 0 && p[2].target == -1 && p[2].slowdown[HKB_DIAG_DEBUG] == 5);
    CHECK(isnan(p[3].time_s[HKB_DIAG_PLAIN]) && isnan(p[3].slowdown[HKB_DIAG_DEBUG]) && p[3].time_s[HKB_DIAG_DEBUG] == 2);
    CHECK(p[3].target_applies == -1 && p[3].target == -1);
    CHECK(p[4].slowdown[HKB_DIAG_DEBUG] == 3 && p[4].slowdown[HKB_DIAG_MEMCHECK] == 20 && p[4].target == 1);
    CHECK(p[5].target == 1 && isnan(p[5].slowdown[HKB_DIAG_SECURE]) && isnan(p[5].slowdown[HKB_DIAG_ASAN]));
    CHECK(dg->target_programs == 4 && dg->worst_debug == 3.5 && dg->worst_prog == 1 && dg->target == 0);
    CHECK(dg->geomean_n[HKB_DIAG_PLAIN] == 5 && dg->geomean[HKB_DIAG_PLAIN] == 1);
    CHECK(dg->geomean_n[HKB_DIAG_DEBUG] == 5 &&
          fabs(dg->geomean[HKB_DIAG_DEBUG] - pow(2.5 * 3.5 * 5 * 3 * 2, 1 / 5.0)) < 1e-12);
    CHECK(dg->geomean_n[HKB_DIAG_ASAN] == 4 && fabs(dg->geomean[HKB_DIAG_ASAN] - pow(8 * 4 * 3 * 4, 0.25)) < 1e-12);
    CHECK(dg->geomean_n[HKB_DIAG_SECURE] == 0 && isnan(dg->geomean[HKB_DIAG_SECURE]));
    const char *why;
    CHECK(!strcmp(hkb_diag_status(&b, &p[5], HKB_DIAG_ASAN, &why), "n/a") && strstr(why, "-fsanitize=address"));
    CHECK(!strcmp(hkb_diag_status(&b, &p[0], HKB_DIAG_SECURE, &why), "skipped") && strstr(why, "not built yet"));
    CHECK(!strcmp(hkb_diag_status(&b, &p[3], HKB_DIAG_PLAIN, &why), "failed") && !strcmp(why, "exit 1: made up to fail"));
    CHECK(!strcmp(hkb_diag_status(&b, &p[3], HKB_DIAG_DEBUG, &why), "ok"));
    /* Not an allocator workload: in no geometric mean of the table. */
    CHECK(b.geo[0].n_glibc == 0 && b.geo[1].n_glibc == 0);

    /* The JSON says the same, and holds together (check_diag). */
    char path[PATH_MAX + 32], err[300];
    snprintf(path, sizeof path, "%s/bench.json", out);
    REQUIRE(hkb_write_json(&b, path) == 0);
    jval_t *v = load_json(out);
    REQUIRE(v != NULL);
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        if (strncmp(required[i], "diagnostics", 11) && strncmp(required[i], "workloads", 9)) continue;
        int ok = json_require(v, required[i], err, sizeof err);
        if (!ok) fprintf(stderr, "bench.json: %s\n", err);
        CHECK(ok);
    }
    CHECK(check_diag(v, 0, 0) == 6 * 5 - 6 - 1 - 1); /* all but secure, ASan on sqlite, realloc's baseline */
    const jval_t *tg = json_get(json_get(v, "diagnostics"), "target");
    CHECK(json_get(tg, "met")->type == J_BOOL && json_get(tg, "met")->num == 0);
    CHECK(!strcmp(json_get(tg, "worst_program")->str, "mixed") && json_get(tg, "programs")->num == 4);
    const jval_t *sv = json_get(json_get(v, "diagnostics"), "variants")->item[HKB_DIAG_SECURE];
    CHECK(!strcmp(json_get(sv, "status")->str, "skipped") && strstr(json_get(sv, "reason")->str, "not built yet"));
    json_free(v);

    /* The terminal section. */
    snprintf(path, sizeof path, "%s/summary.txt", out);
    FILE *f = fopen(path, "w");
    REQUIRE(f != NULL);
    hkb_print_table(&b, f);
    fclose(f);
    char *txt = slurp(path, NULL);
    REQUIRE(txt != NULL);
    CHECK(strstr(txt, "== Diagnostics") != NULL);
    CHECK(strstr(txt, "\ntarget: debug <= 3x plain heapkit where memcheck >= 20x: NOT met: on the 4 programs where "
                      "memcheck is 20x or more, debug is at most 3.50x (mixed)\n") != NULL);
    CHECK(strstr(txt, "\nsecure skipped on small-random, mixed, larson, realloc, arena-free, real-sqlite: "
                      "/made/up/libheapkit-secure.so not built yet") != NULL);
    CHECK(strstr(txt, "\nasan n/a on real-sqlite: a Debian binary") != NULL);
    CHECK(strstr(txt, "\nheapkit FAILED on realloc: exit 1: made up to fail\n") != NULL);
    CHECK(strstr(txt, "  - (memcheck 10.0x)\n") != NULL);   /* larson: not judged */
    CHECK(strstr(txt, "  not measured\n") != NULL);         /* realloc */
    CHECK(count_in(txt, "  met\n") == 3 && count_in(txt, "  NOT met\n") == 1);
    free(txt);
    snprintf(path, sizeof path, "%s/report.html", out);
    REQUIRE(hkb_write_html(&b, path) == 0);
    char *html = slurp(path, NULL);
    REQUIRE(html != NULL);
    CHECK(strstr(html, "id=\"diagnostics\"") && strstr(html, "<span class=\"fail\">not met</span>"));
    CHECK(strstr(html, "/made/up/libheapkit-secure.so not built yet") != NULL);
    int open = 0, close = 0;
    for (const char *q = html; (q = strstr(q, "<svg")); q++) open++;
    for (const char *q = html; (q = strstr(q, "</svg>")); q++) close++;
    CHECK(open >= 1 && open == close);
    free(html);

    /* Debug within its bar everywhere it is judged: met. */
    m[1].t[HKB_DIAG_DEBUG] = 3.0;
    made_up_runs(&b, m, 6);
    CHECK(dg->target_programs == 4 && dg->worst_debug == 3 && dg->target == 1);
    /* No memcheck figure anywhere: nothing judged. */
    for (int i = 0; i < 6; i++) m[i].t[HKB_DIAG_MEMCHECK] = 0;
    made_up_runs(&b, m, 6);
    CHECK(dg->target_programs == 0 && dg->target == -1 && dg->worst_prog == -1);
    for (int i = 0; i < 6; i++) CHECK(p[i].target_applies == -1 && p[i].target == -1);

    /* memcheck's error exit is said in words; other variants' exits are not touched. */
    hkb_run_t r;
    memset(&r, 0, sizeof r);
    for (int w = 0; w < b.nwork; w++) {
        r.w = w;
        snprintf(r.error, sizeof r.error, "exit 99: ==7== Invalid read of size 4");
        hkb_diag_after_run(&b, &r);
        if (b.work[w].diag_variant == HKB_DIAG_MEMCHECK)
            CHECK(!strcmp(r.error, "memcheck reported errors (exit 99): ==7== Invalid read of size 4"));
        else
            CHECK(!strcmp(r.error, "exit 99: ==7== Invalid read of size 4"));
    }
    /* Error lines: ASan's banner and blank lines are skipped. */
    char line[80];
    hkb_first_line("\n=================\n==12==ERROR: AddressSanitizer: heap-use-after-free\nmore", line, sizeof line);
    CHECK(!strcmp(line, "==12==ERROR: AddressSanitizer: heap-use-after-free"));
    hkb_first_line("=====\n\n", line, sizeof line);
    CHECK(!strcmp(line, ""));
    hkb_first_line("plain first line\r\nsecond", line, sizeof line);
    CHECK(!strcmp(line, "plain first line"));
}

/* ---- diagcheck: the runner's side of the Diagnostics section, with stand-ins ---------- */

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static void test_diagcheck(const char *runner, const char *out, const char *bindir, const char *heapkit) {
    char bin[PATH_MAX], o[PATH_MAX], path[PATH_MAX + 32], rbindir[PATH_MAX];
    REQUIRE(realpath(bindir, rbindir) != NULL);
    mkdirs(out);
    const char *allocs = heapkit ? "glibc,heapkit" : "glibc";

    /* 1. The secure library and valgrind not there, the ASan build of the
     *    program missing: each variant is skipped, once, with why (the
     *    apt-get line for valgrind); they have no runs, no slowdowns, and
     *    without memcheck's figure no target is judged. --strict passes:
     *    a skip is not a failure. */
    const char *no_asan[] = { "wl_small_asan", NULL };
    snprintf(bin, sizeof bin, "%s/no-asan-bin", out);
    snprintf(o, sizeof o, "%s/missing", out);
    mirror_bindir(rbindir, bin, no_asan);
    {
        char *argv[] = { (char *)runner, "--scale", "0.01", "--runs", "2", "--workloads", "diag-small-random",
                         "--allocators", (char *)allocs, "--bindir", bin, "--out", o, "--strict",
                         "--heapkit-secure", "/nonexistent/libheapkit-secure.so", "--valgrind", "/nonexistent/valgrind",
                         heapkit ? "--heapkit" : NULL, (char *)heapkit, NULL };
        hkb_child_t c;
        REQUIRE(run_cmd(argv, &c, 300) == 0);
        CHECK(c.exit_code == 0);
        CHECK(count_in(c.out, "skipping heapkit secure: /nonexistent/libheapkit-secure.so not found\n") == 1);
        CHECK(count_in(c.out, "skipping valgrind memcheck: /nonexistent/valgrind not found: not installed "
                              "(apt-get install valgrind)\n") == 1);
        CHECK(count_in(c.out, "skipping AddressSanitizer: the wl_*_asan programs are not built") == 1);
        if (!heapkit) /* a bench built alone: plain heapkit is skipped for want of heapkit */
            CHECK(count_in(c.out, "skipping heapkit: its runs take heapkit's place, and heapkit is not among the "
                                  "allocators (--allocators)\n") == 1);
        hkb_child_free(&c);
        jval_t *v = load_json(o);
        REQUIRE(v != NULL);
        check_diag(v, 1, 1);
        const jval_t *d = json_get(v, "diagnostics"), *runs = json_get(v, "runs");
        CHECK(json_get(d, "runs")->num == 2);
        const jval_t *vars = json_get(d, "variants");
        CHECK(!strcmp(json_get(vars->item[HKB_DIAG_SECURE], "status")->str, "skipped"));
        CHECK(!strcmp(json_get(vars->item[HKB_DIAG_MEMCHECK], "status")->str, "skipped") &&
              strstr(json_get(vars->item[HKB_DIAG_MEMCHECK], "reason")->str, "apt-get install valgrind"));
        CHECK(!strcmp(json_get(vars->item[HKB_DIAG_ASAN], "status")->str, "skipped"));
        CHECK(count_runs(runs, "diag-small-random-secure", NULL, NULL) == 0);
        CHECK(count_runs(runs, "diag-small-random-memcheck", NULL, NULL) == 0);
        CHECK(count_runs(runs, "diag-small-random-asan", NULL, NULL) == 0);
        const jval_t *p = json_get(d, "programs")->item[0];
        CHECK(json_get(d, "programs")->n == 1 && !strcmp(json_get(p, "name")->str, "small-random"));
        CHECK(json_get(p, "target_applies")->type == J_NULL && json_get(p, "target_met")->type == J_NULL);
        CHECK(json_get(json_get(d, "target"), "met")->type == J_NULL);
        const char *pst = json_get(json_get(p, "variants")->item[HKB_DIAG_PLAIN], "status")->str;
        const char *dst = json_get(json_get(p, "variants")->item[HKB_DIAG_DEBUG], "status")->str;
        if (heapkit) {
            /* The debug library is looked for beside heapkit's: run where it is. */
            char dbg[PATH_MAX + 32];
            snprintf(dbg, sizeof dbg, "%s", heapkit);
            char *slash = strrchr(dbg, '/');
            snprintf(slash ? slash + 1 : dbg, sizeof dbg - (size_t)(slash ? slash + 1 - dbg : 0), "libheapkit-debug.so");
            CHECK(!strcmp(pst, "ok"));
            CHECK(!strcmp(dst, file_exists(dbg) ? "ok" : "skipped"));
            if (!file_exists(dbg)) printf("note: no %s: the debug variant was skipped\n", dbg);
        } else {
            CHECK(!strcmp(pst, "skipped") && !strcmp(dst, "skipped"));
        }
        /* Diagnostics workloads are in no geometric mean of the allocators. */
        const jval_t *gm = find_row(json_get(v, "geomean"), "allocator", "glibc", NULL, NULL);
        CHECK(gm && json_get(gm, "workloads_vs_glibc")->num == 0);
        json_free(v);
        snprintf(path, sizeof path, "%s/summary.txt", o);
        char *txt = slurp(path, NULL);
        CHECK(txt && strstr(txt, "\ntarget: debug <= 3x plain heapkit where memcheck >= 20x: not judged"));
        CHECK(txt && strstr(txt, "\nmemcheck skipped on small-random: /nonexistent/valgrind not found"));
        free(txt);
        snprintf(path, sizeof path, "%s/report.html", o);
        char *html = slurp(path, NULL);
        CHECK(html && strstr(html, "skipped: /nonexistent/valgrind not found: not installed (apt-get install valgrind)"));
        free(html);
    }

    /* 2. memcheck finding errors: a stand-in valgrind runs the program and
     *    then reports an error and exits with the --error-exitcode. Those
     *    runs fail and say so; no slowdown, no target. */
    char fake[PATH_MAX + 32];
    snprintf(fake, sizeof fake, "%s/fake-valgrind", out);
    write_script(fake, "#!/bin/sh\n# a stand-in for valgrind (test_bench diagcheck)\n"
                       "if [ \"$1\" = --version ]; then echo valgrind-0.0-stand-in; exit 0; fi\n"
                       "code=1\n"
                       "while [ $# -gt 0 ]; do case \"$1\" in\n"
                       "  --error-exitcode=*) code=${1#--error-exitcode=}; shift ;;\n"
                       "  -*) shift ;;\n  *) break ;;\nesac; done\n"
                       "\"$@\" || exit $?\necho '==1== Invalid read of size 4 (stand-in)' >&2\nexit $code\n");
    snprintf(o, sizeof o, "%s/errors", out);
    {
        char *argv[] = { (char *)runner, "--scale", "0.01", "--runs", "2", "--workloads", "diag-small-random",
                         "--allocators", (char *)allocs, "--out", o, "--strict", "--valgrind", fake,
                         heapkit ? "--heapkit" : NULL, (char *)heapkit, NULL };
        hkb_child_t c;
        REQUIRE(hkb_spawn(argv, "", 300, &c) == 0);
        CHECK(c.exit_code == 1); /* --strict: runs failed */
        CHECK(c.out && strstr(c.out, "(valgrind-0.0-stand-in)"));
        CHECK(c.out && strstr(c.out, "FAILED: memcheck reported errors (exit 99): ==1== Invalid read of size 4 (stand-in)"));
        hkb_child_free(&c);
        jval_t *v = load_json(o);
        REQUIRE(v != NULL);
        check_diag(v, 0, 1);
        int ok = 0;
        CHECK(count_runs(json_get(v, "runs"), "diag-small-random-memcheck", "glibc", &ok) == 2 && ok == 0);
        const jval_t *p = json_get(json_get(v, "diagnostics"), "programs")->item[0];
        const jval_t *mc = json_get(p, "variants")->item[HKB_DIAG_MEMCHECK];
        CHECK(!strcmp(json_get(mc, "status")->str, "failed"));
        CHECK(!strcmp(json_get(mc, "reason")->str,
                      "memcheck reported errors (exit 99): ==1== Invalid read of size 4 (stand-in)"));
        CHECK(json_get(p, "memcheck_slowdown")->type == J_NULL && json_get(p, "target_met")->type == J_NULL);
        json_free(v);
    }

    /* 3. An unknown variant option is refused like any unknown option. */
    {
        char *argv[] = { (char *)runner, "--heapkit-fast", "/x.so", "--out", o, NULL };
        hkb_child_t c;
        REQUIRE(hkb_spawn(argv, "", 60, &c) == 0);
        CHECK(c.exit_code == 2);
        hkb_child_free(&c);
    }
}

/* ---- diagreal: every variant for real, on a workload and sqlite3 -------------------------- */

static int test_diagreal(const char *runner, const char *out, const char *heapkit, const char *expect_libs,
                         const char *asan_programs) {
    if (!heapkit) {
        printf("SKIP: the bench was built alone, without heapkit's libraries; this test did not run\n");
        fflush(stdout);
        exit(77);
    }
    char *argv[] = { (char *)runner, "--scale", "0.01", "--runs", "1", "--workloads", "diag-small-random,diag-real-sqlite",
                     "--allocators", "glibc,heapkit", "--heapkit", (char *)heapkit, "--out", (char *)out, "--strict",
                     "--timeout", "120", NULL };
    hkb_child_t c;
    REQUIRE(hkb_spawn(argv, "", 600, &c) == 0);
    const char *sk = c.out ? strstr(c.out, "skipping diagnostics of real-sqlite: ") : NULL;
    if (sk && strstr(sk, "not found (apt-get install sqlite3)")) {
        printf("SKIP: %.*s; this test did not run\n", (int)strcspn(sk, "\n"), sk);
        fflush(stdout);
        hkb_child_free(&c);
        exit(77);
    }
    if (c.exit_code != 0) fprintf(stderr, "hkbench exited %d\nstdout:\n%s\nstderr:\n%s\n", c.exit_code, c.out, c.err);
    CHECK(c.exit_code == 0);
    CHECK(c.out && strstr(c.out, "reference diag-real-sqlite-") && strstr(c.out, "under glibc (untimed)"));
    hkb_child_free(&c);
    jval_t *v = load_json(out);
    REQUIRE(v != NULL);
    char err[300];
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        /* (no allocator workload: the allocators' geometric means are null) */
        if (!strncmp(required[i], "geomean", 7)) continue;
        int ok = json_require(v, required[i], err, sizeof err);
        if (!ok) fprintf(stderr, "bench.json: %s\n", err);
        CHECK(ok);
    }
    check_diag(v, 1, 1);
    const jval_t *d = json_get(v, "diagnostics"), *vars = json_get(d, "variants");
    /* The libraries CMake built, and the ASan programs, must have run;
     * valgrind may be missing (skipped with its apt-get line). */
    for (int k = 0; k < 5; k++) {
        const char *name = diag_variants[k], *st = json_get(vars->item[k], "status")->str;
        int expected = k == 0 || (k == 4 && *asan_programs) || (k < 3 && listed(expect_libs, name));
        if (expected && strcmp(st, "ok"))
            fprintf(stderr, "%s skipped: %s\n", name, json_get(vars->item[k], "reason")->str);
        if (expected) CHECK(!strcmp(st, "ok"));
        if (k == 3 && strcmp(st, "ok")) {
            CHECK(strstr(json_get(vars->item[k], "reason")->str, "apt-get install valgrind") != NULL);
            printf("note: memcheck skipped: %s\n", json_get(vars->item[k], "reason")->str);
        }
        if (!expected && strcmp(st, "ok")) printf("note: %s skipped: %s\n", name, json_get(vars->item[k], "reason")->str);
    }
    /* sqlite3 printed glibc's reference output under every variant: the
     * debug library's leak report is on stderr, not in the checked output. */
    const jval_t *works = json_get(v, "workloads"), *runs = json_get(v, "runs");
    const jval_t *ref = find_row(works, "name", "diag-real-sqlite-heapkit", NULL, NULL);
    REQUIRE(ref != NULL);
    const char *hash = json_get(ref, "reference_hash")->str;
    CHECK(strlen(hash) == 16);
    int sqlite_runs = 0;
    for (int i = 0; runs && i < runs->n; i++) {
        const jval_t *r = runs->item[i];
        if (strncmp(json_get(r, "workload")->str, "diag-real-sqlite-", 17)) continue;
        sqlite_runs++;
        CHECK(json_get(r, "ok")->num == 1 && !strcmp(json_get(r, "output_hash")->str, hash));
    }
    CHECK(sqlite_runs >= 2); /* heapkit, debug at least */
    /* All of them shared that one reference: the same program, the same scale. */
    for (int i = 0; i < works->n; i++)
        if (!strncmp(json_get(works->item[i], "name")->str, "diag-real-sqlite-", 17) &&
            !strcmp(json_get(works->item[i], "status")->str, "ok"))
            CHECK(!strcmp(json_get(works->item[i], "reference_hash")->str, hash));
    json_free(v);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_bench units|workloads|api|runner|missing|instr|beyondcheck|real|realcheck|"
                        "diagunits|diagcheck|diagreal [options]\n");
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "units")) {
        test_units();
    } else if (!strcmp(cmd, "workloads")) {
        const char *bindir = opt(argc, argv, "--bindir");
        REQUIRE(bindir != NULL);
        test_workloads(bindir, opt(argc, argv, "--preload"), flag(argc, argv, "--expect-override"),
                       flag(argc, argv, "--arena-hk"));
    } else if (!strcmp(cmd, "api")) {
        const char *bindir = opt(argc, argv, "--bindir"), *programs = opt(argc, argv, "--programs");
        REQUIRE(bindir && programs);
        test_api(bindir, programs, opt(argc, argv, "--preload"));
    } else if (!strcmp(cmd, "beyondcheck")) {
        const char *runner = opt(argc, argv, "--runner"), *out = opt(argc, argv, "--out");
        const char *bindir = opt(argc, argv, "--bindir");
        REQUIRE(runner && out && bindir);
        test_beyondcheck(runner, out, bindir);
    } else if (!strcmp(cmd, "diagunits")) {
        const char *out = opt(argc, argv, "--out");
        REQUIRE(out != NULL);
        test_diagunits(out);
    } else if (!strcmp(cmd, "diagcheck")) {
        const char *runner = opt(argc, argv, "--runner"), *out = opt(argc, argv, "--out");
        const char *bindir = opt(argc, argv, "--bindir");
        REQUIRE(runner && out && bindir);
        test_diagcheck(runner, out, bindir, opt(argc, argv, "--heapkit"));
    } else if (!strcmp(cmd, "diagreal")) {
        const char *runner = opt(argc, argv, "--runner"), *out = opt(argc, argv, "--out");
        const char *libs = opt(argc, argv, "--expect-libs"), *asan = opt(argc, argv, "--asan-programs");
        REQUIRE(runner && out);
        test_diagreal(runner, out, opt(argc, argv, "--heapkit"), libs ? libs : "", asan ? asan : "");
    } else if (!strcmp(cmd, "real") || !strcmp(cmd, "realcheck")) {
        const char *runner = opt(argc, argv, "--runner"), *out = opt(argc, argv, "--out");
        REQUIRE(runner && out);
        if (!strcmp(cmd, "real")) {
            const char *wl = opt(argc, argv, "--workload");
            REQUIRE(wl != NULL);
            test_real(runner, out, wl, opt(argc, argv, "--heapkit"));
        } else {
            test_realcheck(runner, out, opt(argc, argv, "--heapkit"));
        }
    } else if (!strcmp(cmd, "runner") || !strcmp(cmd, "missing") || !strcmp(cmd, "instr")) {
        const char *runner = opt(argc, argv, "--runner"), *out = opt(argc, argv, "--out");
        REQUIRE(runner && out);
        if (!strcmp(cmd, "runner")) test_runner(runner, out, opt(argc, argv, "--heapkit"));
        else if (!strcmp(cmd, "missing")) test_missing(runner, out);
        else test_instr(runner, out);
    } else {
        fprintf(stderr, "test_bench: unknown subcommand %s\n", cmd);
        return 2;
    }
    return hk_test_done();
}
