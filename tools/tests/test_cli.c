/* test_cli.c: the heapkit command's help, version, usage errors and manual.
 *     test_cli HEAPKIT MANPAGE VERSION cli    help and errors; every option
 *         of the --help texts is in the manual page, whose title carries
 *         the version
 *     test_cli HEAPKIT MANPAGE VERSION man    the page formats without a
 *         warning (groff -ww); exits 77 (skipped) when groff is missing
 */
#define _GNU_SOURCE
#include "tt.h"

static const char *heapkit, *manpage, *version;
static const char *commands[] = {"run", "map", "stats"};

static char *read_all(const char *path) {
    FILE *f = fopen(path, "r");
    if (f == NULL) return NULL;
    static char buf[1 << 18];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

/* Every "--word" of text appears in the manual page as "\-\-word". */
static void check_documented(const char *text, const char *man) {
    for (const char *p = text; (p = strstr(p, "--")) != NULL;) {
        p += 2;
        size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyz-");
        if (n == 0) continue;
        char troff[128] = "\\-\\-";
        size_t k = strlen(troff);
        for (size_t i = 0; i < n && k + 3 < sizeof troff; i++) {
            if (p[i] == '-') troff[k++] = '\\';
            troff[k++] = p[i];
        }
        troff[k] = 0;
        if (!strstr(man, troff)) fprintf(stderr, "manual page lacks --%.*s\n", (int)n, p);
        CHECK(strstr(man, troff) != NULL);
        p += n;
    }
}

static void test_help(const char *man) {
    tt_result_t r, s;
    const char *forms[][3] = {{"--help", NULL}, {"-h", NULL}, {"help", NULL}};
    for (size_t i = 0; i < 3; i++) {
        char *argv[] = {(char *)heapkit, (char *)forms[i][0], NULL};
        tt_run(argv, NULL, &r);
        CHECK(r.status == 0);
        CHECK(!strncmp(r.out, "Usage: heapkit COMMAND", 22));
        for (size_t c = 0; c < 3; c++) CHECK(tt_contains(r.out, commands[c]));
        check_documented(r.out, man);
        tt_free(&r);
    }
    for (size_t c = 0; c < 3; c++) {
        char usage[64];
        snprintf(usage, sizeof usage, "Usage: heapkit %s ", commands[c]);
        char *a1[] = {(char *)heapkit, (char *)commands[c], "--help", NULL};
        char *a2[] = {(char *)heapkit, "help", (char *)commands[c], NULL};
        char *a3[] = {(char *)heapkit, (char *)commands[c], "-h", NULL};
        tt_run(a1, NULL, &r);
        CHECK(r.status == 0 && !strncmp(r.out, usage, strlen(usage)));
        CHECK(r.errlen == 0);
        check_documented(r.out, man);
        tt_run(a2, NULL, &s);
        CHECK(s.status == 0 && !strcmp(r.out, s.out));
        tt_free(&s);
        tt_run(a3, NULL, &s);
        CHECK(s.status == 0 && !strcmp(r.out, s.out));
        tt_free(&s);
        tt_free(&r);
        /* Each command has its section in the manual. */
        char section[64];
        snprintf(section, sizeof section, ".SS \"heapkit %s ", commands[c]);
        CHECK(strstr(man, section) != NULL);
    }
    char want[64];
    snprintf(want, sizeof want, "heapkit %s\n", version);
    for (int i = 0; i < 2; i++) {
        char *argv[] = {(char *)heapkit, i ? "-V" : "--version", NULL};
        tt_run(argv, NULL, &r);
        CHECK(r.status == 0 && !strcmp(r.out, want));
        tt_free(&r);
    }
    char title[64];
    snprintf(title, sizeof title, "\"heapkit %s\"", version);
    CHECK(!strncmp(man, ".\\\"", 3) && strstr(man, ".TH HEAPKIT 1 ") && strstr(man, title));
}

static void test_errors(void) {
    static const struct {
        const char *args[4];
        const char *message;
    } cases[] = {
        {{NULL}, "Usage: heapkit COMMAND"},
        {{"frobnicate"}, "unknown command 'frobnicate'"},
        {{"--frobnicate"}, "unknown option '--frobnicate'"},
        {{"help", "frobnicate"}, "no command 'frobnicate'"},
        {{"map"}, "heapkit map: which process?"},
        {{"map", "abc"}, "heapkit map: 'abc' is not a PID"},
        {{"map", "-5"}, "heapkit map: "},
        {{"map", "0"}, "'0' is not a PID"},
        {{"map", "2147483647"}, "heapkit map: no process 2147483647"},
        {{"map", "99999999999"}, "is not a PID"},
        {{"map", "self", "--bogus"}, "heapkit map: unknown or ambiguous option '--bogus'"},
        {{"map", "self", "--json=1"}, "option '--json' takes no argument"},
        {{"map", "self", "1"}, "one process at a time"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *argv[6] = {(char *)heapkit};
        for (int k = 0; k < 4 && cases[i].args[k]; k++) argv[k + 1] = (char *)cases[i].args[k];
        tt_result_t r;
        tt_run(argv, NULL, &r);
        CHECK(r.status == 2);
        CHECK(r.outlen == 0);
        CHECK(tt_contains(r.err, cases[i].message));
        if (r.status != 2 || !tt_contains(r.err, cases[i].message)) {
            fprintf(stderr, "case %zu: want '%s'\n", i, cases[i].message);
            tt_show("usage error", &r);
        }
        tt_free(&r);
    }
}

static void test_man_format(void) {
    if (system("command -v groff >/dev/null 2>&1") != 0)
        tt_skip("groff is not installed (apt-get install groff)");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "groff -man -ww -z -Tutf8 '%s' 2>&1", manpage);
    char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    tt_result_t r;
    tt_run(argv, NULL, &r);
    CHECK(r.status == 0);
    CHECK(r.outlen == 0);
    if (r.outlen) tt_show("groff warnings", &r);
    tt_free(&r);
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: test_cli HEAPKIT MANPAGE VERSION cli|man\n");
        return 2;
    }
    heapkit = argv[1];
    manpage = argv[2];
    version = argv[3];
    if (!strcmp(argv[4], "man")) {
        test_man_format();
    } else {
        const char *man = read_all(manpage);
        REQUIRE(man != NULL);
        test_help(man);
        test_errors();
    }
    return hk_test_done();
}
