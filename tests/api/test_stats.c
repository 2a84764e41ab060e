// test_stats: hk_stats / hk_heap_stats counters and the per-class table
// behave as documented in heapkit.h, and hk_stats_print writes text and one
// well-formed JSON object (checked by a small JSON parser here).
#include "hk_test.h"
#include "api/hk_util.h"

#include <ctype.h>

/* ---- Class table shape ---------------------------------------------------- */
static void test_class_table(void) {
    hk_stats_t s = hk_my_stats();
    int nonzero = 0, after_zero_nonzero = 0, not_increasing = 0, bad_mult = 0;
    bool seen_zero = false;
    size_t prev = 0;
    for (int c = 0; c < HK_STATS_CLASSES; c++) {
        size_t bs = s.classes[c].block_size;
        if (bs == 0) { seen_zero = true; continue; }
        if (seen_zero) after_zero_nonzero++; /* 0 only "past the last class" */
        nonzero++;
        if (bs <= prev) not_increasing++;
        if (bs % 8 != 0 || (bs > 8 && bs % 16 != 0)) bad_mult++;
        prev = bs;
    }
    CHECK(nonzero >= 8);
    CHECK(after_zero_nonzero == 0);
    CHECK(not_increasing == 0);
    CHECK(bad_mult == 0);
    /* the class table is the same in process stats */
    hk_stats_t a = hk_all_stats();
    int differ = 0;
    for (int c = 0; c < HK_STATS_CLASSES; c++)
        if (a.classes[c].block_size != s.classes[c].block_size) differ++;
    CHECK(differ == 0);
    /* 16 bytes is small, and something of at least 1 KiB is too */
    CHECK(hk_class_for(&s, 16) >= 0);
    CHECK(hk_class_for(&s, 1024) >= 0);
}

/* ---- 1000 blocks of 100 bytes ------------------------------------------- */
static void test_thousand(void) {
    enum { N = 1000 };
    void *p[N];
    hk_stats_t h0 = hk_my_stats(), a0 = hk_all_stats();
    int c = hk_class_for(&h0, 100);
    REQUIRE(c >= 0);
    size_t usable_sum = 0;
    for (int i = 0; i < N; i++) {
        p[i] = hk_malloc(100);
        REQUIRE(p[i] != NULL);
        usable_sum += hk_usable_size(p[i]);
    }
    hk_stats_t h1 = hk_my_stats(), a1 = hk_all_stats();
    /* the calling thread's heap: exact */
    CHECK(h1.live_blocks == h0.live_blocks + N);
    CHECK(h1.mallocs == h0.mallocs + N);
    CHECK(h1.frees == h0.frees);
    CHECK(h1.live_bytes == h0.live_bytes + usable_sum);
    CHECK(usable_sum >= 100 * N);
    CHECK(h1.classes[c].live_blocks == h0.classes[c].live_blocks + N);
    CHECK(h1.classes[c].live_blocks >= N);
    CHECK(h1.classes[c].slabs >= 1);
    CHECK(h1.classes[c].slab_bytes >= h1.classes[c].live_blocks * h1.classes[c].block_size);
    CHECK(h1.live_bytes_peak >= h1.live_bytes);
    CHECK(h1.heaps == 1);
    /* the whole process (single-threaded here): the same deltas */
    CHECK(a1.live_blocks == a0.live_blocks + N);
    CHECK(a1.mallocs == a0.mallocs + N);
    CHECK(a1.live_bytes == a0.live_bytes + usable_sum);
    CHECK(a1.classes[c].live_blocks >= N);
    CHECK(a1.classes[c].live_blocks == a0.classes[c].live_blocks + N);
    CHECK(a1.live_bytes_peak >= a1.live_bytes);

    for (int i = 0; i < N; i++) hk_free(p[i]);
    hk_stats_t h2 = hk_my_stats(), a2 = hk_all_stats();
    CHECK(h2.live_blocks == h0.live_blocks);
    CHECK(h2.frees == h0.frees + N);
    CHECK(h2.mallocs == h1.mallocs);
    CHECK(h2.live_bytes == h0.live_bytes);
    CHECK(h2.classes[c].live_blocks == h0.classes[c].live_blocks);
    CHECK(h2.live_bytes_peak >= h1.live_bytes);
    CHECK(a2.live_blocks == a0.live_blocks);
    CHECK(a2.frees == a0.frees + N);
    CHECK(a2.live_bytes == a0.live_bytes);
    CHECK(a2.live_bytes_peak >= a1.live_bytes);
}

/* Every class: a block of exactly block_size bytes is counted there. */
static void test_each_class(void) {
    hk_stats_t s0 = hk_my_stats();
    void *p[HK_STATS_CLASSES] = { 0 };
    for (int c = 0; c < HK_STATS_CLASSES; c++) {
        size_t bs = s0.classes[c].block_size;
        if (!bs) continue;
        p[c] = hk_malloc(bs);
        REQUIRE(p[c] != NULL);
        CHECK(hk_usable_size(p[c]) >= bs);
    }
    hk_stats_t s1 = hk_my_stats();
    int wrong = 0;
    for (int c = 0; c < HK_STATS_CLASSES; c++) {
        if (!s0.classes[c].block_size) continue;
        if (s1.classes[c].live_blocks != s0.classes[c].live_blocks + 1) {
            wrong++;
            fprintf(stderr, "  class %d (%zu bytes): live %zu -> %zu\n", c, s0.classes[c].block_size,
                    s0.classes[c].live_blocks, s1.classes[c].live_blocks);
        }
    }
    CHECK(wrong == 0);
    for (int c = 0; c < HK_STATS_CLASSES; c++) hk_free(p[c]);
    hk_stats_t s2 = hk_my_stats();
    wrong = 0;
    for (int c = 0; c < HK_STATS_CLASSES; c++)
        if (s2.classes[c].live_blocks != s0.classes[c].live_blocks) wrong++;
    CHECK(wrong == 0);
}

/* Medium and huge blocks: counted in live_blocks/bytes, huge ones also in
 * huge_live_bytes, none in the small classes. */
static void test_medium_huge(void) {
    hk_stats_t s0 = hk_my_stats(), a0 = hk_all_stats();
    void *m = hk_malloc(100 * KiB);
    void *h = hk_malloc(6 * MiB);
    REQUIRE(m && h);
    memset(h, 1, 6 * MiB);
    size_t um = hk_usable_size(m), uh = hk_usable_size(h);
    hk_stats_t s1 = hk_my_stats(), a1 = hk_all_stats();
    CHECK(s1.live_blocks == s0.live_blocks + 2);
    CHECK(s1.mallocs == s0.mallocs + 2);
    CHECK(s1.live_bytes == s0.live_bytes + um + uh);
    CHECK(s1.huge_live_bytes == s0.huge_live_bytes + uh);
    CHECK(a1.huge_live_bytes == a0.huge_live_bytes + uh);
    CHECK(a1.live_bytes == a0.live_bytes + um + uh);
    size_t class_sum0 = 0, class_sum1 = 0;
    for (int c = 0; c < HK_STATS_CLASSES; c++) {
        class_sum0 += s0.classes[c].live_blocks;
        class_sum1 += s1.classes[c].live_blocks;
    }
    CHECK(class_sum1 == class_sum0);
    /* the huge block's memory is mapped and committed */
    CHECK(a1.mapped_bytes >= a0.mapped_bytes + 6 * MiB);
    CHECK(a1.committed_bytes >= a0.committed_bytes + 6 * MiB);
    CHECK(a1.mapped_peak >= a1.mapped_bytes);
    CHECK(a1.committed_peak >= a1.committed_bytes);
    hk_free(m);
    hk_free(h);
    hk_stats_t s2 = hk_my_stats(), a2 = hk_all_stats();
    CHECK(s2.live_blocks == s0.live_blocks);
    CHECK(s2.frees == s0.frees + 2);
    CHECK(s2.live_bytes == s0.live_bytes);
    CHECK(s2.huge_live_bytes == s0.huge_live_bytes);
    CHECK(a2.huge_live_bytes == a0.huge_live_bytes);
    CHECK(a2.mapped_peak >= a1.mapped_bytes);
    CHECK(a2.committed_peak >= a1.committed_bytes);
    CHECK(a2.live_bytes_peak >= a1.live_bytes);
}

/* Consistency: live_blocks = mallocs - frees; live <= committed <= mapped;
 * class slabs consistent; explicit heap records. */
static void test_invariants(void) {
    void *keep[300];
    for (int i = 0; i < 300; i++) {
        keep[i] = hk_malloc(1 + (size_t)i * 97);
        REQUIRE(keep[i] != NULL);
    }
    hk_heap_t *eh = hk_heap_new();
    REQUIRE(eh != NULL);
    void *e[50];
    for (int i = 0; i < 50; i++) {
        e[i] = hk_heap_malloc(eh, 200);
        REQUIRE(e[i] != NULL);
    }
    hk_stats_t a = hk_all_stats(), h = hk_my_stats(), x;
    hk_heap_stats(eh, &x);
    hk_stats_t *all[3] = { &a, &h, &x };
    for (int k = 0; k < 3; k++) {
        hk_stats_t *s = all[k];
        CHECK(s->live_blocks == s->mallocs - s->frees);
        CHECK(s->live_bytes <= s->committed_bytes);
        CHECK(s->committed_bytes <= s->mapped_bytes);
        CHECK(s->live_bytes_peak >= s->live_bytes);
        CHECK(s->committed_peak >= s->committed_bytes);
        CHECK(s->mapped_peak >= s->mapped_bytes);
        CHECK(s->huge_live_bytes <= s->live_bytes);
        size_t class_live = 0, bad = 0;
        for (int c = 0; c < HK_STATS_CLASSES; c++) {
            hk_class_stats_t *cs = &s->classes[c];
            class_live += cs->live_blocks;
            if (cs->slab_bytes < cs->live_blocks * cs->block_size) bad++;
            if (cs->live_blocks && !cs->slabs) bad++;
            if (!cs->block_size && (cs->live_blocks || cs->slabs)) bad++;
        }
        CHECK(bad == 0);
        CHECK(class_live <= s->live_blocks);
    }
    CHECK(x.heaps == 1);
    CHECK(x.live_blocks == 50);
    CHECK(a.heaps >= 2);
    CHECK(a.live_blocks >= h.live_blocks + x.live_blocks);
    hk_heap_destroy(eh);
    for (int i = 0; i < 300; i++) hk_free(keep[i]);
    (void)e;
}

/* ---- hk_stats_print ------------------------------------------------------- */
/* A strict little JSON parser (RFC 8259 syntax, no semantic limits). */
typedef struct { const char *s; size_t i, n; int depth; bool found_live_bytes; } json_t;
static void js_ws(json_t *j) { while (j->i < j->n && strchr(" \t\r\n", j->s[j->i])) j->i++; }
static bool js_value(json_t *j);
static bool js_string(json_t *j, char *copy, size_t copysz) {
    if (j->i >= j->n || j->s[j->i] != '"') return false;
    j->i++;
    size_t k = 0;
    while (j->i < j->n) {
        unsigned char ch = (unsigned char)j->s[j->i++];
        if (ch == '"') { if (copy && copysz) copy[k < copysz ? k : copysz - 1] = 0; return true; }
        if (ch < 0x20) return false;
        if (ch == '\\') {
            if (j->i >= j->n) return false;
            char e = j->s[j->i++];
            if (e == 'u') {
                for (int q = 0; q < 4; q++) {
                    if (j->i >= j->n || !isxdigit((unsigned char)j->s[j->i])) return false;
                    j->i++;
                }
            } else if (!strchr("\"\\/bfnrt", e)) {
                return false;
            }
            ch = '?';
        }
        if (copy && k + 1 < copysz) copy[k++] = (char)ch;
    }
    return false;
}
static bool js_number(json_t *j) {
    size_t i = j->i;
    const char *s = j->s;
    if (i < j->n && s[i] == '-') i++;
    if (i >= j->n) return false;
    if (s[i] == '0') i++;
    else if (s[i] >= '1' && s[i] <= '9') { while (i < j->n && isdigit((unsigned char)s[i])) i++; }
    else return false;
    if (i < j->n && s[i] == '.') {
        i++;
        if (i >= j->n || !isdigit((unsigned char)s[i])) return false;
        while (i < j->n && isdigit((unsigned char)s[i])) i++;
    }
    if (i < j->n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < j->n && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= j->n || !isdigit((unsigned char)s[i])) return false;
        while (i < j->n && isdigit((unsigned char)s[i])) i++;
    }
    j->i = i;
    return true;
}
static bool js_lit(json_t *j, const char *w) {
    size_t l = strlen(w);
    if (j->n - j->i < l || memcmp(j->s + j->i, w, l) != 0) return false;
    j->i += l;
    return true;
}
static bool js_object(json_t *j) {
    j->i++; /* { */
    js_ws(j);
    if (j->i < j->n && j->s[j->i] == '}') { j->i++; return true; }
    for (;;) {
        js_ws(j);
        char key[64];
        if (!js_string(j, key, sizeof key)) return false;
        js_ws(j);
        if (j->i >= j->n || j->s[j->i] != ':') return false;
        j->i++;
        js_ws(j);
        bool is_lb = j->depth == 1 && strcmp(key, "live_bytes") == 0;
        size_t at = j->i;
        if (!js_value(j)) return false;
        if (is_lb && js_number(&(json_t){ j->s, at, j->n, 0, false })) j->found_live_bytes = true;
        js_ws(j);
        if (j->i < j->n && j->s[j->i] == ',') { j->i++; continue; }
        if (j->i < j->n && j->s[j->i] == '}') { j->i++; return true; }
        return false;
    }
}
static bool js_array(json_t *j) {
    j->i++; /* [ */
    js_ws(j);
    if (j->i < j->n && j->s[j->i] == ']') { j->i++; return true; }
    for (;;) {
        js_ws(j);
        if (!js_value(j)) return false;
        js_ws(j);
        if (j->i < j->n && j->s[j->i] == ',') { j->i++; continue; }
        if (j->i < j->n && j->s[j->i] == ']') { j->i++; return true; }
        return false;
    }
}
static bool js_value(json_t *j) {
    js_ws(j);
    if (j->i >= j->n) return false;
    char ch = j->s[j->i];
    bool ok;
    if (++j->depth > 64) return false;
    if (ch == '{') ok = js_object(j);
    else if (ch == '[') ok = js_array(j);
    else if (ch == '"') ok = js_string(j, NULL, 0);
    else if (ch == 't') ok = js_lit(j, "true");
    else if (ch == 'f') ok = js_lit(j, "false");
    else if (ch == 'n') ok = js_lit(j, "null");
    else ok = js_number(j);
    j->depth--;
    return ok;
}
/* One JSON object and nothing else but whitespace. */
static bool json_one_object(const char *s, size_t n, bool *has_live_bytes) {
    json_t j = { s, 0, n, 0, false };
    js_ws(&j);
    if (j.i >= n || s[j.i] != '{') return false;
    if (!js_value(&j)) return false;
    js_ws(&j);
    *has_live_bytes = j.found_live_bytes;
    return j.i == n;
}

/* The checker itself must reject broken JSON, or the test proves nothing. */
static void test_json_checker(void) {
    static const char *good[] = { "{}", " {\"a\": 1, \"b\": [1, 2.5e-3, -0, true, null, \"x\\n\"]}\n",
                                  "{\"live_bytes\": 0, \"o\": {\"p\": {}}}" };
    static const char *bad[] = { "", "[]", "{", "{\"a\":}", "{\"a\" 1}", "{\"a\":1,}", "{a:1}",
                                 "{\"a\":01}", "{\"a\":1}{}", "{\"a\":1} x", "{\"a\":nan}",
                                 "{\"a\":\"\x01\"}", "{\"a\":[1,]}", "{\"a\":1.}", "{\"a\":'x'}" };
    bool lb;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) CHECK(json_one_object(good[i], strlen(good[i]), &lb));
    CHECK(json_one_object(good[2], strlen(good[2]), &lb) && lb);
    CHECK(json_one_object(good[1], strlen(good[1]), &lb) && !lb);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) CHECK(!json_one_object(bad[i], strlen(bad[i]), &lb));
}

/* Runs hk_stats_print into a temporary file; returns its text (malloc'd). */
static char *print_to_string(bool json, size_t *len) {
    FILE *f = tmpfile();
    if (!f) return NULL;
    hk_stats_print(f, json);
    fflush(f);
    long n = ftell(f);
    if (n < 0) { fclose(f); return NULL; }
    char *buf = malloc((size_t)n + 1);
    rewind(f);
    size_t got = fread(buf, 1, (size_t)n, f);
    buf[got] = 0;
    fclose(f);
    *len = got;
    return buf;
}

static void test_print(void) {
    /* some state worth printing: small, medium, huge, an explicit heap */
    void *p[100];
    for (int i = 0; i < 100; i++) p[i] = hk_malloc(1 + (size_t)i * 300);
    void *m = hk_malloc(300 * KiB), *h = hk_malloc(3 * MiB);
    hk_heap_t *eh = hk_heap_new();
    REQUIRE(eh != NULL);
    void *e = hk_heap_malloc(eh, 123);
    REQUIRE(m && h && e);

    size_t tlen = 0, jlen = 0;
    char *text = print_to_string(false, &tlen);
    char *json = print_to_string(true, &jlen);
    REQUIRE(text && json);
    CHECK(tlen > 0);
    CHECK(jlen > 0);
    /* text is not the JSON form */
    CHECK(tlen != jlen || memcmp(text, json, tlen) != 0);
    CHECK(strlen(text) == tlen); /* no NUL bytes */
    bool has_lb = false;
    bool ok = json_one_object(json, jlen, &has_lb);
    CHECK(ok);
    if (!ok) fprintf(stderr, "JSON output:\n%s\n", json);
    /* The header says it prints hk_stats(): the top-level object is
     * expected to carry the fields by their struct names (live_bytes). */
    CHECK(has_lb);
    free(text);
    free(json);

    /* printing to stdout and stderr works too */
    hk_stats_print(stdout, false);
    hk_stats_print(stdout, true);
    fflush(stdout);

    hk_heap_destroy(eh);
    for (int i = 0; i < 100; i++) hk_free(p[i]);
    hk_free(m);
    hk_free(h);
}

int main(void) {
    test_json_checker();
    test_class_table();
    test_thousand();
    test_each_class();
    test_medium_huge();
    test_invariants();
    test_print();
    return hk_test_done();
}
