// test_guard: in the secure variant an access just past the end of a
// chunk's data, or just before its start (into the page between data and
// metadata), or just past the usable end of a huge block, dies of SIGSEGV
// instead of reading or writing a neighbour. The bytes just inside are
// still usable. Each access runs in a forked child with SIGSEGV at its
// default action (a sanitizer's handler would turn the signal into a
// report and an exit).
#include "secure_util.h"

static volatile uint8_t sink;

/* Not instrumented under ASan (HK_NO_ASAN, src/internal/asan.h): the test
 * probes page protections, and the bytes it probes next to a guard are
 * free memory, which an ASan build of heapkit poisons. */
HK_NO_ASAN static void touch(void *arg) {
    signal(SIGSEGV, SIG_DFL);
    signal(SIGBUS, SIG_DFL);
    volatile uint8_t *p = arg;
    sink = *p;  /* read ... */
    *p = sink;  /* ... and write back: a fault either way on a guard */
    _exit(0);
}

static void expect_fault(void *at, const char *what) {
    CHECK(sec_expect_signal(touch, at, SIGSEGV, what));
}
static void expect_ok(void *at, const char *what) {
    CHECK(sec_expect_clean(touch, at, what));
}

int main(void) {
    /* A normal chunk: the data of the chunk holding a small block. */
    uint8_t *a = hk_malloc(64);
    REQUIRE(a);
    uint8_t *data = sec_chunk_data(a);
    expect_ok(data + HK_CHUNK_SIZE - 1, "last byte of a chunk");
    expect_ok(data, "first byte of a chunk");
    expect_fault(data + HK_CHUNK_SIZE, "first byte past a chunk");
    expect_fault(data + HK_CHUNK_SIZE + HK_GUARD_SIZE - 1, "last byte of the guard after a chunk");
    expect_fault(data - 1, "byte before a chunk's data (guard below)");
    expect_fault(data - HK_GUARD_SIZE, "first byte of the guard below a chunk");

    /* A chunk of an explicit heap filled by medium blocks up to its end. */
    hk_heap_t *h = hk_heap_new();
    REQUIRE(h);
    const size_t quarter = HK_CHUNK_SIZE / 4; /* 1 MiB: four fill a chunk */
    uint8_t *m[4];
    for (int i = 0; i < 4; i++) {
        m[i] = hk_heap_malloc(h, quarter);
        REQUIRE(m[i]);
    }
    uint8_t *last = m[0];
    for (int i = 1; i < 4; i++)
        if (m[i] > last) last = m[i];
    if (sec_chunk_data(last) == sec_chunk_data(m[0]) && last + quarter == sec_chunk_data(last) + HK_CHUNK_SIZE) {
        expect_ok(last + quarter - 1, "last byte of the chunk's last medium block");
        expect_fault(last + quarter, "one byte past the chunk's last medium block");
    } else {
        CHECK(!"four 1 MiB blocks of a fresh heap fill one chunk");
    }
    hk_heap_destroy(h);

    /* Huge blocks: the page after the usable end. */
    static const size_t huge[] = { 3 * MiB, 5 * MiB + 123, 9 * MiB };
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        uint8_t *g = hk_malloc(huge[i]);
        REQUIRE(g);
        size_t usable = hk_usable_size(g);
        CHECK(usable >= huge[i]);
        char what[96];
        snprintf(what, sizeof what, "last usable byte of a %zu-byte huge block", huge[i]);
        expect_ok(g + usable - 1, what);
        snprintf(what, sizeof what, "first byte past a %zu-byte huge block", huge[i]);
        expect_fault(g + usable, what);
        snprintf(what, sizeof what, "byte before a %zu-byte huge block", huge[i]);
        expect_fault(g - 1, what);
        hk_free(g);
    }
    /* A huge block reused from the cache keeps its guards. */
    uint8_t *g1 = hk_malloc(4 * MiB);
    REQUIRE(g1);
    size_t u1 = hk_usable_size(g1);
    hk_free(g1);
    uint8_t *g2 = hk_malloc(4 * MiB - 100);
    REQUIRE(g2);
    expect_fault(g2 + hk_usable_size(g2), "past a huge block reused from the cache");
    CHECK(hk_usable_size(g2) <= u1 || g2 != g1);
    hk_free(g2);
    hk_free(a);
    return hk_test_done();
}
