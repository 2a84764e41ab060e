/* test_stats.c: `heapkit stats`.
 *     test_stats HEAPKIT HKT_CHILD protocol   the command's side, against
 *         processes that cannot answer and one that answers as the library
 *         is to (hkt_child fake-stats): errors, stale files, JSON and text
 *     test_stats HEAPKIT HKT_CHILD live       a program under `heapkit run`
 *         answers with its real statistics; exits 77 (skipped) while the
 *         library does not catch HEAPKIT_STATS_SIGNAL
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>

#include "../json.h"
#include "tt.h"

static const char *heapkit, *child;

static int stats_signal(void) { return SIGRTMIN + 7; }

static void stats_of(const char *pid, const char *opt1, const char *opt2, tt_result_t *r) {
    char *argv[] = {(char *)heapkit, "stats", (char *)pid, (char *)opt1, (char *)opt2, NULL};
    tt_run(argv, NULL, r);
}

static void answer_path(const char *pid, char *buf, size_t size) {
    snprintf(buf, size, "/tmp/heapkit-stats.%s.json", pid);
}

static void test_usage(void) {
    static const char *cases[][4] = {
        {"stats", NULL},
        {"stats", "abc", NULL},
        {"stats", "0", NULL},
        {"stats", "2147483647", NULL},
        {"stats", "--bogus", "1", NULL},
        {"stats", "--timeout", "0", "1"},
        {"stats", "--signal", "9", "1"},
        {"stats", "1", "2", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *argv[6] = {(char *)heapkit};
        for (int k = 0; k < 4 && cases[i][k]; k++) argv[k + 1] = (char *)cases[i][k];
        tt_result_t r;
        tt_run(argv, NULL, &r);
        CHECK(r.status == 2);
        CHECK(tt_contains(r.err, "heapkit stats: "));
        CHECK(r.outlen == 0);
        if (r.status != 2) tt_show("stats usage", &r);
        tt_free(&r);
    }
    tt_result_t r;
    stats_of("2147483647", NULL, NULL, &r);
    CHECK(tt_contains(r.err, "no process 2147483647"));
    tt_free(&r);
}

/* Processes that cannot answer: a clear error, and they live on. */
static void test_cannot_answer(void) {
    char sig[48];
    snprintf(sig, sizeof sig, "HEAPKIT_STATS_SIGNAL=%d", stats_signal());
    struct {
        const char *what, *message;
        char *argv[8];
        char *env[3];
    } cases[] = {
        {"not on heapkit", "not running heapkit", {(char *)child, "wait", NULL},
         {"HEAPKIT_STATS_SIGNAL", "LD_PRELOAD", NULL}},
        {"on heapkit, no signal", "not started with HEAPKIT_STATS_SIGNAL",
         {(char *)heapkit, "run", "--no-stats-signal", "--", (char *)child, "wait", NULL},
         {"HEAPKIT_STATS_SIGNAL", NULL}},
        {"signal nobody catches", "does not catch signal", {(char *)child, "wait", NULL},
         {sig, "LD_PRELOAD", NULL}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tt_bg_t bg;
        REQUIRE(tt_start(cases[i].argv, cases[i].env, &bg));
        REQUIRE(tt_line(&bg));
        char pid[32];
        tt_copy(pid, sizeof pid, tt_field(bg.line, "pid"));
        tt_result_t r;
        stats_of(pid, NULL, NULL, &r);
        CHECK(r.status == 1);
        CHECK(tt_contains(r.err, cases[i].message));
        CHECK(r.outlen == 0);
        if (r.status != 1 || !tt_contains(r.err, cases[i].message)) tt_show(cases[i].what, &r);
        tt_free(&r);
        CHECK(tt_stop(&bg) == 0); /* not killed by a signal it does not catch */
    }
}

static void test_fake_answer(void) {
    char sig[48];
    snprintf(sig, sizeof sig, "HEAPKIT_STATS_SIGNAL=%d", stats_signal());
    char *argv[] = {(char *)child, "fake-stats", NULL};
    char *env[] = {sig, NULL};
    tt_bg_t bg;
    REQUIRE(tt_start(argv, env, &bg));
    REQUIRE(tt_line(&bg));
    char pid[32], path[96];
    tt_copy(pid, sizeof pid, tt_field(bg.line, "pid"));
    answer_path(pid, path, sizeof path);

    /* A stale answer is removed first, never shown. */
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    fputs("{\"stale\":true}\n", f);
    fclose(f);

    tt_result_t r;
    stats_of(pid, "--json", NULL, &r);
    CHECK(r.status == 0);
    char err[200];
    hkj_t *doc = hkj_parse(r.out, r.outlen, err, sizeof err);
    CHECK(doc != NULL);
    unsigned long long v = 0;
    CHECK(hkj_get_uint(doc, "mallocs", &v) && v == 1001);
    CHECK(hkj_get_uint(doc, "live_bytes", &v) && v == 12345);
    CHECK(hkj_get(doc, "stale") == NULL);
    CHECK(hkj_get(doc, "classes") && hkj_get(doc, "classes")->count == 2);
    hkj_free(doc);
    if (hk_test_failed) tt_show("stats --json (fake)", &r);
    tt_free(&r);
    CHECK(access(path, F_OK) != 0); /* read, then removed */

    /* Text: the figures, the classes in use, the next answer. */
    stats_of(pid, NULL, NULL, &r);
    CHECK(r.status == 0);
    CHECK(tt_contains(r.out, "heapkit statistics of process"));
    CHECK(tt_contains(r.out, "2 heaps"));
    CHECK(tt_contains(r.out, "12345"));
    CHECK(tt_contains(r.out, "1002"));
    int found = 0;
    for (char *line = r.out; line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        unsigned long long bs, lb, sl, sb;
        if (sscanf(line, "%llu %llu %llu %llu", &bs, &lb, &sl, &sb) == 4 && bs == 112 && lb == 77 &&
            sl == 3 && sb == 49152)
            found++;
        if (sscanf(line, "%llu %llu", &bs, &lb) == 2 && bs == 16) found += 100; /* empty class */
    }
    CHECK(found == 1);
    if (hk_test_failed) tt_show("stats (fake)", &r);
    tt_free(&r);
    CHECK(access(path, F_OK) != 0);

    /* --signal names the signal when it is given. */
    char num[16];
    snprintf(num, sizeof num, "%d", stats_signal());
    stats_of(pid, "--signal", num, &r);
    CHECK(r.status == 0 && tt_contains(r.out, "1003"));
    tt_free(&r);
    CHECK(tt_stop(&bg) == 0);

    /* One that catches the signal and never answers: a timeout. */
    char *mute[] = {(char *)child, "fake-stats", "mute", NULL};
    REQUIRE(tt_start(mute, env, &bg));
    REQUIRE(tt_line(&bg));
    tt_copy(pid, sizeof pid, tt_field(bg.line, "pid"));
    char *argv2[] = {(char *)heapkit, "stats", "--timeout", "0.3", pid, NULL};
    tt_run(argv2, NULL, &r);
    CHECK(r.status == 1);
    CHECK(tt_contains(r.err, "did not answer"));
    CHECK(r.outlen == 0);
    tt_free(&r);
    CHECK(tt_stop(&bg) == 0);
}

static void test_live(void) {
    char *argv[] = {(char *)heapkit, "run", "--", (char *)child, "stats", NULL};
    char *env[] = {"HEAPKIT_STATS_SIGNAL", NULL};
    tt_bg_t bg;
    REQUIRE(tt_start(argv, env, &bg));
    REQUIRE(tt_line(&bg));
    char pid[32], path[96];
    tt_copy(pid, sizeof pid, tt_field(bg.line, "pid"));
    CHECK(!strcmp(tt_field(bg.line, "heapkit"), "yes"));
    unsigned long long blocks = strtoull(tt_field(bg.line, "blocks"), NULL, 10);
    answer_path(pid, path, sizeof path);

    /* Does the library catch the signal? (SigCgt in /proc/PID/status) */
    char status_path[64], line[256];
    snprintf(status_path, sizeof status_path, "/proc/%s/status", pid);
    FILE *st = fopen(status_path, "r");
    REQUIRE(st);
    unsigned long long caught = 0;
    while (fgets(line, sizeof line, st))
        if (!strncmp(line, "SigCgt:", 7)) caught = strtoull(line + 7, NULL, 16);
    fclose(st);
    if (!((caught >> (stats_signal() - 1)) & 1)) {
        tt_result_t r;
        stats_of(pid, NULL, NULL, &r);
        CHECK(r.status == 1 && tt_contains(r.err, "does not catch signal"));
        tt_free(&r);
        CHECK(tt_stop(&bg) == 0);
        tt_skip("the library does not answer HEAPKIT_STATS_SIGNAL yet");
    }

    tt_result_t r;
    stats_of(pid, "--json", NULL, &r);
    CHECK(r.status == 0);
    char err[200];
    hkj_t *doc = hkj_parse(r.out, r.outlen, err, sizeof err);
    if (doc == NULL) fprintf(stderr, "stats --json: %s\n", err);
    CHECK(doc != NULL);
    unsigned long long v = 0;
    CHECK(hkj_get_uint(doc, "mallocs", &v) && v >= blocks);
    CHECK(hkj_get_uint(doc, "live_blocks", &v) && v >= blocks);
    CHECK(hkj_get_uint(doc, "live_bytes", &v) && v >= blocks * 100);
    CHECK(hkj_get_uint(doc, "committed_bytes", &v) && v > 0);
    const hkj_t *classes = hkj_get(doc, "classes");
    CHECK(classes && classes->type == HKJ_ARRAY && classes->count > 0);
    hkj_free(doc);
    if (hk_test_failed) tt_show("stats --json (live)", &r);
    tt_free(&r);
    CHECK(access(path, F_OK) != 0);

    stats_of(pid, NULL, NULL, &r);
    CHECK(r.status == 0);
    CHECK(tt_contains(r.out, "live bytes") && tt_contains(r.out, "mallocs"));
    tt_free(&r);
    CHECK(access(path, F_OK) != 0);

    /* A thread's id reaches the process. */
    char task[64], tid[32] = "";
    snprintf(task, sizeof task, "/proc/%s/task", pid);
    DIR *d = opendir(task);
    REQUIRE(d);
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (e->d_name[0] != '.' && strcmp(e->d_name, pid)) tt_copy(tid, sizeof tid, e->d_name);
    closedir(d);
    REQUIRE(tid[0]);
    stats_of(tid, "--json", NULL, &r);
    CHECK(r.status == 0 && tt_contains(r.err, "is a thread of process"));
    CHECK(tt_contains(r.out, "\"mallocs\""));
    tt_free(&r);
    CHECK(tt_stop(&bg) == 0);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: test_stats HEAPKIT HKT_CHILD protocol|live\n");
        return 2;
    }
    heapkit = argv[1];
    child = argv[2];
    if (!strcmp(argv[3], "live")) {
        test_live();
    } else {
        test_usage();
        test_cannot_answer();
        test_fake_answer();
    }
    return hk_test_done();
}
