/* test_map.c: `heapkit map`.
 *     test_map HEAPKIT HKT_CHILD plain|heapkit
 * plain: the map of heapkit itself and of a child with a known layout
 * (kinds found, the child's own anonymous map with its size and RSS, its
 * file map, thread stack, brk heap and bss, faults, totals equal to the
 * sums of the rows, in JSON and in text), and saved smaps files with
 * every kind, heapkit's names and the alignment hint. heapkit: a child under
 * `heapkit run` (and --debug, --secure where those libraries are built):
 * its blocks lie in maps labelled heapkit.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <stdint.h>

#include "../json.h"
#include "tt.h"

static const char *heapkit, *child;

static hkj_t *map_json(const char *target, const char *extra) {
    char *argv[] = {(char *)heapkit, "map", (char *)target, "--json", (char *)extra, NULL};
    tt_result_t r;
    tt_run(argv, NULL, &r);
    CHECK(r.status == 0);
    char err[200];
    hkj_t *doc = hkj_parse(r.out, r.outlen, err, sizeof err);
    if (doc == NULL || r.status != 0) {
        fprintf(stderr, "map %s --json: %s\n", target, doc ? "failed" : err);
        tt_show("heapkit map --json", &r);
    }
    CHECK(doc != NULL && doc->type == HKJ_OBJECT);
    tt_free(&r);
    return doc;
}

static unsigned long long num(const hkj_t *o, const char *key) {
    unsigned long long v = 0;
    if (!hkj_get_uint(o, key, &v)) {
        fprintf(stderr, "missing number '%s'\n", key);
        CHECK(!"a number is missing");
    }
    return v;
}

static unsigned long long addr(const hkj_t *row, const char *key) {
    const char *s = hkj_get_string(row, key);
    return s ? strtoull(s, NULL, 16) : 0;
}

/* The row containing address a, or NULL. */
static const hkj_t *row_at(const hkj_t *doc, unsigned long long a) {
    const hkj_t *maps = hkj_get(doc, "mappings");
    for (size_t i = 0; maps && i < maps->count; i++)
        if (addr(maps->items[i], "start") <= a && a < addr(maps->items[i], "end"))
            return maps->items[i];
    return NULL;
}

static const hkj_t *kind_entry(const hkj_t *doc, const char *kind) {
    const hkj_t *kinds = hkj_get(doc, "kinds");
    for (size_t i = 0; kinds && i < kinds->count; i++) {
        const char *k = hkj_get_string(kinds->items[i], "kind");
        if (k && !strcmp(k, kind)) return kinds->items[i];
    }
    return NULL;
}

static const hkj_t *row_of_kind(const hkj_t *doc, const char *kind, const char *name) {
    const hkj_t *maps = hkj_get(doc, "mappings");
    for (size_t i = 0; maps && i < maps->count; i++) {
        const char *k = hkj_get_string(maps->items[i], "kind");
        const char *n = hkj_get_string(maps->items[i], "name");
        if (k && !strcmp(k, kind) && (!name || (n && !strcmp(n, name)))) return maps->items[i];
    }
    return NULL;
}

/* Every total is the sum of its rows: per kind, and over all. */
static void check_totals(const hkj_t *doc) {
    static const char *cols[] = {"size", "rss", "pss", "swap"};
    const hkj_t *maps = hkj_get(doc, "mappings"), *kinds = hkj_get(doc, "kinds");
    const hkj_t *total = hkj_get(doc, "total");
    REQUIRE(maps && maps->type == HKJ_ARRAY && maps->count > 0);
    REQUIRE(kinds && kinds->type == HKJ_ARRAY && total);
    unsigned long long all[4] = {0}, from_kinds[4] = {0}, kind_maps = 0;
    for (size_t i = 0; i < maps->count; i++) {
        const hkj_t *row = maps->items[i];
        CHECK(addr(row, "end") - addr(row, "start") == num(row, "size"));
        for (int c = 0; c < 4; c++) all[c] += num(row, cols[c]);
    }
    for (size_t k = 0; k < kinds->count; k++) {
        const hkj_t *kind = kinds->items[k];
        const char *name = hkj_get_string(kind, "kind");
        unsigned long long sum[4] = {0}, n = 0;
        for (size_t i = 0; i < maps->count; i++) {
            const char *rk = hkj_get_string(maps->items[i], "kind");
            if (!rk || !name || strcmp(rk, name)) continue;
            n++;
            for (int c = 0; c < 4; c++) sum[c] += num(maps->items[i], cols[c]);
        }
        CHECK(n == num(kind, "maps") && n > 0);
        for (int c = 0; c < 4; c++) {
            CHECK(sum[c] == num(kind, cols[c]));
            from_kinds[c] += num(kind, cols[c]);
        }
        kind_maps += n;
    }
    CHECK(kind_maps == maps->count);
    CHECK(num(total, "maps") == maps->count);
    for (int c = 0; c < 4; c++) {
        CHECK(all[c] == num(total, cols[c]));
        CHECK(from_kinds[c] == all[c]);
    }
    CHECK(num(total, "rss") > 0);
}

/* The text report: the map rows and the kind rows each add up to the
 * "total" line (sizes, rss, pss, swap in KiB). */
static void check_text(const char *target, const char **must_contain) {
    char *argv[] = {(char *)heapkit, "map", (char *)target, NULL};
    tt_result_t r;
    tt_run(argv, NULL, &r);
    CHECK(r.status == 0);
    char *text = strdup(r.out); /* cut into lines below; r.out stays whole for the log */
    REQUIRE(text);
    CHECK(tt_contains(r.out, "page faults:"));
    CHECK(tt_contains(r.out, "heapkit chunks:"));
    for (size_t i = 0; must_contain && must_contain[i]; i++) {
        if (!tt_contains(r.out, must_contain[i])) fprintf(stderr, "missing: %s\n", must_contain[i]);
        CHECK(tt_contains(r.out, must_contain[i]));
    }
    unsigned long long rows[4] = {0}, kinds[4] = {0}, total[4] = {0};
    int nrows = 0, nkinds = 0, ntotal = 0;
    bool in_kinds = false;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        unsigned long long a, b, v[4];
        char perms[8], kind[32], name[32];
        unsigned long long maps;
        if (sscanf(line, "%llx-%llx %7s %31s %llu %llu %llu %llu", &a, &b, perms, kind, &v[0],
                   &v[1], &v[2], &v[3]) == 8) {
            CHECK(v[0] == (b - a) / 1024);
            for (int c = 0; c < 4; c++) rows[c] += v[c];
            nrows++;
        } else if (!strncmp(line, "kind ", 5)) {
            in_kinds = true;
        } else if (in_kinds && sscanf(line, "%31s %llu %llu %llu %llu %llu", name, &maps, &v[0],
                                      &v[1], &v[2], &v[3]) == 6) {
            unsigned long long *dst = strcmp(name, "total") ? kinds : total;
            for (int c = 0; c < 4; c++) dst[c] += v[c];
            if (dst == total) ntotal++;
            else nkinds++;
        }
    }
    CHECK(nrows > 5 && nkinds > 3 && ntotal == 1);
    for (int c = 0; c < 4; c++) {
        CHECK(rows[c] == total[c]);
        CHECK(kinds[c] == total[c]);
    }
    if (hk_test_failed) tt_show("heapkit map (text)", &r);
    free(text);
    tt_free(&r);
}

static void test_self(void) {
    hkj_t *doc = map_json("self", NULL);
    REQUIRE(doc);
    check_totals(doc);
    const char *exe = hkj_get_string(doc, "exe");
    char real[PATH_MAX];
    REQUIRE(exe && realpath(heapkit, real));
    CHECK(!strcmp(exe, real));
    CHECK(row_of_kind(doc, "text", exe) != NULL);
    CHECK(row_of_kind(doc, "stack", "[stack]") != NULL);
    CHECK(kind_entry(doc, "lib-text") != NULL);
    CHECK(kind_entry(doc, "rodata") != NULL);
    const hkj_t *faults = hkj_get(doc, "page_faults");
    CHECK(faults && num(faults, "minor") > 0);
    CHECK(hkj_get(faults, "major") && hkj_get(faults, "major")->is_uint);
    CHECK(num(doc, "threads") == 1);
    const hkj_t *hk = hkj_get(doc, "heapkit_chunks");
    CHECK(hk && !strcmp(hkj_get_string(hk, "method"), "none"));
    CHECK(kind_entry(doc, "heapkit") == NULL);
    const hkj_t *rollup = hkj_get(doc, "rollup");
    CHECK(rollup && rollup->type == HKJ_OBJECT && num(rollup, "rss") > 0);
    hkj_free(doc);

    /* --summary: the kinds without the rows. */
    doc = map_json("self", "--summary");
    REQUIRE(doc);
    CHECK(hkj_get(doc, "mappings") == NULL);
    CHECK(kind_entry(doc, "text") != NULL && hkj_get(doc, "total") != NULL);
    hkj_free(doc);

    const char *want[] = {"text", "[stack]", "lib-text", NULL};
    check_text("self", want);
}

static void test_child(void) {
    char *argv[] = {(char *)child, "map", NULL};
    tt_bg_t bg;
    REQUIRE(tt_start(argv, NULL, &bg));
    REQUIRE(tt_line(&bg));
    const char *f;
    REQUIRE((f = tt_field(bg.line, "pid")));
    char pid[32];
    tt_copy(pid, sizeof pid, f);
    unsigned long long anon = strtoull(tt_field(bg.line, "anon"), NULL, 16);
    unsigned long long len = strtoull(tt_field(bg.line, "len"), NULL, 10);
    unsigned long long touched = strtoull(tt_field(bg.line, "touched"), NULL, 10);
    unsigned long long tid = strtoull(tt_field(bg.line, "tid"), NULL, 10);
    char file[256];
    snprintf(file, sizeof file, "%s", tt_field(bg.line, "file"));

    hkj_t *doc = map_json(pid, NULL);
    REQUIRE(doc);
    check_totals(doc);
    CHECK(num(doc, "pid") == strtoull(pid, NULL, 10));
    CHECK(num(doc, "threads") == 2);

    /* Its own anonymous map: kind, size, resident pages. */
    const hkj_t *row = row_at(doc, anon);
    REQUIRE(row != NULL);
    CHECK(!strcmp(hkj_get_string(row, "kind"), "anon"));
    CHECK(addr(row, "start") == anon);
    CHECK(num(row, "size") == len);
    CHECK(num(row, "rss") + num(row, "swap") == touched);
    CHECK(!strcmp(hkj_get_string(row, "perms"), "rw-p"));

    char real[PATH_MAX];
    REQUIRE(realpath(child, real));
    CHECK(row_of_kind(doc, "text", real) != NULL);
    CHECK(row_of_kind(doc, "data", real) != NULL);
    const hkj_t *bss = kind_entry(doc, "bss");
    CHECK(bss && num(bss, "size") >= (1u << 20));
    CHECK(row_of_kind(doc, "heap", "[heap]") != NULL);
    CHECK(row_of_kind(doc, "stack", "[stack]") != NULL);
    CHECK(kind_entry(doc, "lib-text") != NULL);
    const hkj_t *frow = row_of_kind(doc, "file", file);
    CHECK(frow && num(frow, "size") == 3 * 4096);
    const hkj_t *ts = NULL, *maps = hkj_get(doc, "mappings");
    for (size_t i = 0; maps && i < maps->count; i++) {
        unsigned long long t;
        if (hkj_get_uint(maps->items[i], "tid", &t) && t == tid) ts = maps->items[i];
    }
    CHECK(ts && !strcmp(hkj_get_string(ts, "kind"), "thread-stack"));
    /* The guard page glibc puts below a thread stack. */
    const hkj_t *guard = ts ? row_at(doc, addr(ts, "start") - 1) : NULL;
    CHECK(guard && !strcmp(hkj_get_string(guard, "kind"), "guard"));
    /* Every touched page faulted at least once. */
    const hkj_t *faults = hkj_get(doc, "page_faults");
    CHECK(faults && num(faults, "minor") >= touched / 4096);
    const hkj_t *hk = hkj_get(doc, "heapkit_chunks");
    CHECK(hk && !strcmp(hkj_get_string(hk, "method"), "none"));
    CHECK(hkj_get(hk, "library_mapped") && !hkj_get(hk, "library_mapped")->boolean);
    hkj_free(doc);

    const char *want[] = {file, "thread-stack", "[heap]", "bss", NULL};
    check_text(pid, want);
    CHECK(tt_stop(&bg) == 0);
}

/* A child under `heapkit run OPTION` (none, --debug, --secure): its blocks
 * lie in maps labelled heapkit. */
static void test_heapkit_child(const char *option) {
    char *argv[] = {(char *)heapkit, "run", (char *)option, "--", (char *)child, "alloc", NULL};
    if (option == NULL) memmove(&argv[2], &argv[3], 4 * sizeof argv[0]);
    tt_bg_t bg;
    REQUIRE(tt_start(argv, NULL, &bg));
    REQUIRE(tt_line(&bg));
    char pid[32];
    tt_copy(pid, sizeof pid, tt_field(bg.line, "pid"));
    unsigned long long small = strtoull(tt_field(bg.line, "small"), NULL, 16);
    unsigned long long huge = strtoull(tt_field(bg.line, "huge"), NULL, 16);

    hkj_t *doc = map_json(pid, NULL);
    REQUIRE(doc);
    check_totals(doc);
    const hkj_t *hk = hkj_get(doc, "heapkit_chunks");
    REQUIRE(hk);
    const char *method = hkj_get_string(hk, "method");
    CHECK(hkj_get(hk, "library_mapped") && hkj_get(hk, "library_mapped")->boolean);
    CHECK(method && (!strcmp(method, "alignment") || !strcmp(method, "names")));
    bool hint = method && !strcmp(method, "alignment");
    unsigned long long blocks[] = {small, huge};
    for (int i = 0; i < 2; i++) {
        const hkj_t *row = row_at(doc, blocks[i]);
        REQUIRE(row != NULL);
        CHECK(!strcmp(hkj_get_string(row, "kind"), "heapkit"));
        const hkj_t *h = hkj_get(row, "hint");
        CHECK(hint ? (h && h->boolean) : (h == NULL));
        if (!hint) CHECK(!strncmp(hkj_get_string(row, "name"), "[anon:heapkit", 13));
    }
    /* The huge block is resident (the child wrote all of it). */
    const hkj_t *kind = kind_entry(doc, "heapkit");
    CHECK(kind && num(kind, "rss") + num(kind, "swap") >= (3u << 20));
    hkj_free(doc);

    const char *want[] = {"heapkit chunks: by", "heapkit ", NULL};
    check_text(pid, want);
    CHECK(tt_stop(&bg) == 0);
}

/* The directory of the library `heapkit run` preloads. */
static bool library_dir(char *dir, size_t size) {
    char *argv[] = {(char *)heapkit, "run", (char *)child, "env", NULL};
    tt_result_t r;
    tt_run(argv, NULL, &r);
    const char *pre = strstr(r.out, "LD_PRELOAD=/");
    bool ok = r.status == 0 && pre;
    if (ok) {
        pre += strlen("LD_PRELOAD=");
        size_t n = strcspn(pre, ":\n");
        while (n > 0 && pre[n - 1] != '/') n--;
        snprintf(dir, size, "%.*s", (int)n, pre);
    }
    tt_free(&r);
    return ok;
}

/* ---- Saved maps (--smaps): every kind, names and hints, on layouts this
 * kernel may not produce ------------------------------------------------ */

/* A saved smaps file: the map lines, each followed by its figures. */
static const char *smaps_lines[] = {
    "555555554000-555555555000 r--p 00000000 fe:00 100 /usr/bin/prog",
    "555555555000-555555557000 r-xp 00001000 fe:00 100 /usr/bin/prog",
    "555555557000-555555558000 r--p 00003000 fe:00 100 /usr/bin/prog",
    "555555558000-555555559000 rw-p 00004000 fe:00 100 /usr/bin/prog",
    "555555559000-55555555b000 rw-p 00000000 00:00 0 ",
    "555555600000-555555621000 rw-p 00000000 00:00 0                          [heap]",
    "7f0000000000-7f0000411000 rw-p 00000000 00:00 0                          [anon:heapkit]",
    "7f0000bef000-7f0001000000 rw-p 00000000 00:00 0 ",
    "7f0002000000-7f0002800000 rw-p 00000000 00:00 0 ",
    "7f0003000000-7f0003100000 rw-p 00000000 00:00 0 ",
    "7f1000000000-7f1000001000 ---p 00000000 00:00 0 ",
    "7f1000001000-7f1000801000 rw-p 00000000 00:00 0 ",
    "7f2000000000-7f2010000000 ---p 00000000 00:00 0 ",
    "7f2010000000-7f2010010000 rw-p 00000000 00:00 0 ",
    "7f3000000000-7f3000001000 r--p 00000000 fe:00 200 /usr/lib/libheapkit.so.0.1.0",
    "7f3000001000-7f3000002000 r-xp 00001000 fe:00 200 /usr/lib/libheapkit.so.0.1.0",
    "7f3000002000-7f3000003000 rw-p 00002000 fe:00 200 /usr/lib/libheapkit.so.0.1.0",
    "7f3000003000-7f3004003000 rw-p 00000000 00:00 0 ",
    "7f4000000000-7f4000100000 rw-s 00000000 00:1a 300 /dev/shm/segment",
    "7f4000100000-7f4000200000 r--p 00000000 fe:00 400 /usr/share/data.bin",
    "7f4000200000-7f4000300000 rw-p 00000000 00:00 0                          [anon:arena]",
    "7f4000300000-7f4000400000 rw-s 00000000 00:01 500 /dev/zero (deleted)",
    "7f5000fde000-7f5000fff000 rw-p 00000000 00:00 0 ",
    "7f5000fff000-7f5001000000 ---p 00000000 00:00 0 ",
    "7f5001000000-7f5001400000 rw-p 00000000 00:00 0 ",
    "7f5001400000-7f5001401000 ---p 00000000 00:00 0 ",
    "7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0                          [stack]",
    "7ffc00100000-7ffc00104000 r--p 00000000 00:00 0                          [vvar]",
    "7ffc00104000-7ffc00106000 r--p 00000000 00:00 0                          [vvar_vclock]",
    "7ffc00106000-7ffc00108000 r-xp 00000000 00:00 0                          [vdso]",
    "7ffc00200000-7ffc00201000 r-xp 00000000 00:00 0                          [uprobes]",
    "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]",
};

/* What each line above is, with the heapkit names kept, with them
 * dropped (the alignment hint), and with libheapkit gone too. */
static const struct {
    unsigned long long start;
    const char *named, *hinted, *none;
} smaps_kinds[] = {
    {0x555555554000, "rodata", "rodata", "rodata"},
    {0x555555555000, "text", "text", "text"},
    {0x555555557000, "rodata", "rodata", "rodata"},
    {0x555555558000, "data", "data", "data"},
    {0x555555559000, "bss", "bss", "bss"},
    {0x555555600000, "heap", "heap", "heap"},
    {0x7f0000000000, "heapkit", NULL, NULL},
    {0x7f0000bef000, "anon", "heapkit", "anon"},   /* start + 68 KiB on 4 MiB */
    {0x7f0002000000, "anon", "heapkit", "anon"},   /* ends on 4 MiB, holds a chunk */
    {0x7f0003000000, "anon", "anon", "anon"},      /* 1 MiB, aligned, too small */
    {0x7f1000000000, "guard", "guard", "guard"},
    {0x7f1000001000, "thread-stack", "thread-stack", "thread-stack"},
    {0x7f2000000000, "guard", "guard", "guard"},
    {0x7f2010000000, "anon", "anon", "anon"},      /* above a reservation, not a guard */
    {0x7f3000000000, "lib-rodata", "lib-rodata", NULL},
    {0x7f3000001000, "lib-text", "lib-text", NULL},
    {0x7f3000002000, "lib-data", "lib-data", NULL},
    {0x7f3000003000, "lib-bss", "lib-bss", "anon"}, /* a library's bss while it is there */
    {0x7f4000000000, "shm", "shm", "shm"},
    {0x7f4000100000, "file", "file", "file"},
    {0x7f4000200000, "anon", "anon", "anon"},
    {0x7f4000300000, "shm", "shm", "shm"},
    /* The secure variant's chunk: metadata, guard, data, guard. Without
     * the hint, the data looks like a thread stack. */
    {0x7f5000fde000, "anon", "heapkit", "anon"},
    {0x7f5000fff000, "guard", "guard", "guard"},
    {0x7f5001000000, "thread-stack", "heapkit", "thread-stack"},
    {0x7f5001400000, "guard", "guard", "guard"},
    {0x7ffc00000000, "stack", "stack", "stack"},
    {0x7ffc00100000, "vvar", "vvar", "vvar"},
    {0x7ffc00104000, "vvar", "vvar", "vvar"},
    {0x7ffc00106000, "vdso", "vdso", "vdso"},
    {0x7ffc00200000, "other", "other", "other"},
    {0xffffffffff600000, "vsyscall", "vsyscall", "vsyscall"},
};

/* Writes the lines (variant 0: all, 1: no [anon:heapkit], 2: no heapkit
 * at all), with smaps figures or (maps) without. */
static void write_smaps(const char *path, int variant, bool figures) {
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    size_t n = sizeof smaps_lines / sizeof smaps_lines[0];
    for (size_t i = 0; i < n; i++) {
        if (variant >= 1 && strstr(smaps_lines[i], "[anon:heapkit]")) continue;
        if (variant >= 2 && strstr(smaps_lines[i], "libheapkit")) continue;
        fprintf(f, "%s\n", smaps_lines[i]);
        if (!figures) continue;
        unsigned long long a, b;
        sscanf(smaps_lines[i], "%llx-%llx", &a, &b);
        /* Figures that differ per line, so that sums are checked. */
        unsigned long long kib = (b - a) / 1024, rss = kib > 8 ? 8 + i : kib;
        unsigned long long swap = i % 3;
        fprintf(f,
                "Size:           %8llu kB\nKernelPageSize:        4 kB\nRss:            %8llu kB\n"
                "Pss:            %8llu kB\nPss_Dirty:      %8llu kB\nSwap:           %8llu kB\n"
                "SwapPss:        %8llu kB\nVmFlags: rd wr mr mw me ac\n",
                kib, rss, rss / 2, rss / 2, swap, swap);
    }
    fclose(f);
}

static void test_saved(void) {
    char dir[] = "/tmp/hkt_smaps.XXXXXX";
    REQUIRE(mkdtemp(dir));
    static const char *methods[] = {"names", "alignment", "none"};
    for (int variant = 0; variant < 3; variant++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/smaps.%d", dir, variant);
        write_smaps(path, variant, true);
        char *argv[] = {(char *)heapkit, "map", "--smaps", path, "--json", NULL};
        tt_result_t r;
        tt_run(argv, NULL, &r);
        CHECK(r.status == 0);
        char err[200];
        hkj_t *doc = hkj_parse(r.out, r.outlen, err, sizeof err);
        CHECK(doc != NULL);
        if (doc == NULL) {
            tt_show("map --smaps", &r);
            tt_free(&r);
            continue;
        }
        tt_free(&r);
        check_totals(doc);
        CHECK(hkj_get(doc, "pid") && hkj_get(doc, "pid")->type == HKJ_NULL);
        CHECK(!strcmp(hkj_get_string(doc, "file"), path));
        const hkj_t *hk = hkj_get(doc, "heapkit_chunks");
        CHECK(hk && !strcmp(hkj_get_string(hk, "method"), methods[variant]));
        size_t rows = 0;
        for (size_t i = 0; i < sizeof smaps_kinds / sizeof smaps_kinds[0]; i++) {
            const char *want = variant == 0   ? smaps_kinds[i].named
                               : variant == 1 ? smaps_kinds[i].hinted
                                              : smaps_kinds[i].none;
            if (want == NULL) continue;
            rows++;
            const hkj_t *row = row_at(doc, smaps_kinds[i].start);
            const char *got = row ? hkj_get_string(row, "kind") : NULL;
            if (!got || strcmp(got, want) || addr(row, "start") != smaps_kinds[i].start)
                fprintf(stderr, "variant %d: %llx is %s, want %s\n", variant,
                        smaps_kinds[i].start, got ? got : "(missing)", want);
            CHECK(got && !strcmp(got, want) && addr(row, "start") == smaps_kinds[i].start);
            const hkj_t *hint = row ? hkj_get(row, "hint") : NULL;
            CHECK((hint != NULL) == (variant == 1 && !strcmp(want, "heapkit")));
        }
        const hkj_t *maps = hkj_get(doc, "mappings");
        CHECK(maps && maps->count == rows);
        hkj_free(doc);
    }

    /* A maps file (no figures): sizes only, null where nothing is known. */
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/maps", dir);
    write_smaps(path, 0, false);
    char *argv[] = {(char *)heapkit, "map", "--smaps", path, "--json", NULL};
    tt_result_t r;
    tt_run(argv, NULL, &r);
    CHECK(r.status == 0);
    hkj_t *doc = hkj_parse(r.out, r.outlen, NULL, 0);
    CHECK(doc && hkj_get(doc, "smaps") && !hkj_get(doc, "smaps")->boolean);
    const hkj_t *total = doc ? hkj_get(doc, "total") : NULL;
    CHECK(total && hkj_get(total, "rss") && hkj_get(total, "rss")->type == HKJ_NULL);
    CHECK(total && num(total, "size") > 0);
    hkj_free(doc);
    tt_free(&r);
    char *text[] = {(char *)heapkit, "map", "--smaps", path, NULL};
    tt_run(text, NULL, &r);
    CHECK(r.status == 0 && tt_contains(r.out, "sizes only") && tt_contains(r.out, "map read from"));
    tt_free(&r);

    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: test_map HEAPKIT HKT_CHILD plain|heapkit\n");
        return 2;
    }
    heapkit = argv[1];
    child = argv[2];
    if (!strcmp(argv[3], "plain")) {
        test_self();
        test_child();
        test_saved();
    } else {
        test_heapkit_child(NULL);
        /* The variants, where they are built. */
        char dir[PATH_MAX];
        REQUIRE(library_dir(dir, sizeof dir));
        static const char *variants[][2] = {{"--debug", "libheapkit-debug.so"},
                                            {"--secure", "libheapkit-secure.so"}};
        for (int i = 0; i < 2; i++) {
            char path[PATH_MAX + 32];
            snprintf(path, sizeof path, "%s%s", dir, variants[i][1]);
            if (access(path, R_OK) == 0) test_heapkit_child(variants[i][0]);
            else printf("note: %s is not built; %s not covered\n", path, variants[i][0]);
        }
    }
    return hk_test_done();
}
