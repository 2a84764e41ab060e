// test_invalid_free: hk_free of a pointer no heapkit heap owns prints
// "heapkit: free(): invalid pointer 0x<addr>" (0x%lx) to stderr and aborts.
// Each case runs in a forked child: a stack address, a static, a glibc
// malloc() pointer, pointers into the middle of small / medium / huge /
// explicit-heap / aligned blocks, and random and out-of-range addresses.
#include "hk_test.h"
#include "api/hk_util.h"
#include "report.h"

#include <stdio.h>

static int a_static[64];

static void expect_invalid(void *ptr, const char *what) {
    hk_free_arg_t arg = { ptr, NULL };
    CHECK(hk_expect_report(hk_do_free, &arg, ptr, "invalid pointer", true, what));
}

/* true when [a, a+16) touches any mapping of the process */
static bool is_mapped(uintptr_t a) {
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return true;
    char line[512];
    bool hit = false;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && a + 16 > lo && a < hi) { hit = true; break; }
    }
    fclose(f);
    return hit;
}

int main(void) {
    /* the parse helper itself must reject what it should */
    {
        char k[64];
        uintptr_t a;
        CHECK(hk_parse_report("heapkit: free(): invalid pointer 0x7f00ab\n", k, sizeof k, &a) &&
              a == 0x7f00ab && strcmp(k, "invalid pointer") == 0);
        CHECK(!hk_parse_report("heapkit: free(): invalid pointer 0x7F00AB\n", k, sizeof k, &a));
        CHECK(!hk_parse_report("heapkit: free(): invalid pointer 7f00ab\n", k, sizeof k, &a));
        CHECK(!hk_parse_report("heapkit: malloc(): invalid pointer 0x7f\n", k, sizeof k, &a));
        CHECK(hk_parse_report("xx heapkit: free(): double free 0x10", k, sizeof k, &a) && a == 0x10);
    }

    /* the stack */
    int local[16];
    expect_invalid(&local[4], "stack address");
    /* static data and code */
    expect_invalid(&a_static[8], "static data");
    /* glibc's malloc */
    void *g = malloc(100);
    REQUIRE(g != NULL);
    expect_invalid(g, "glibc malloc pointer");
    void *gbig = malloc(8 * MiB); /* mmapped by glibc */
    REQUIRE(gbig != NULL);
    expect_invalid(gbig, "glibc mmapped pointer");

    /* inside heapkit blocks, but not at their start */
    char *s = hk_malloc(100);
    char *s2 = hk_malloc(1000);
    char *m = hk_malloc(300 * KiB);
    char *h = hk_malloc(5 * MiB);
    REQUIRE(s && s2 && m && h);
    expect_invalid(s + 8, "middle of a 100-byte block (+8)");
    expect_invalid(s + 1, "unaligned pointer into a small block (+1)");
    expect_invalid(s + 48, "middle of a 100-byte block (+48)");
    expect_invalid(s2 + 16, "middle of a 1000-byte block (+16)");
    expect_invalid(s2 + 512, "middle of a 1000-byte block (+512)");
    expect_invalid(m + 16, "medium block +16");
    expect_invalid(m + 4096, "medium block +4096 (page boundary)");
    expect_invalid(m + 64 * KiB, "medium block +64 KiB");
    expect_invalid(h + 16, "huge block +16");
    expect_invalid(h + 4096, "huge block +4096");
    expect_invalid(h + 2 * MiB, "huge block +2 MiB");

    /* explicit heap and aligned blocks */
    hk_heap_t *eh = hk_heap_new();
    REQUIRE(eh != NULL);
    char *e = hk_heap_malloc(eh, 256);
    char *al = hk_aligned_alloc(64 * KiB, 100);
    REQUIRE(e && al);
    expect_invalid(e + 64, "explicit-heap block +64");
    expect_invalid(al + 32, "64 KiB-aligned block +32");

    /* random and out-of-range addresses */
    expect_invalid((void *)(uintptr_t)0x10, "address 0x10");
    expect_invalid((void *)(uintptr_t)0x1000, "address 0x1000");
    expect_invalid((void *)(uintptr_t)0xdeadbeef0ull, "address 0xdeadbeef0");
    expect_invalid((void *)(((uintptr_t)1 << 47) - 16), "top of user space");
    expect_invalid((void *)(uintptr_t)0xffff800000001000ull, "kernel address");
    expect_invalid((void *)(uintptr_t)0x0000900000000000ull, "above 47 bits");
    expect_invalid((void *)(uintptr_t)-16, "address -16");
    hk_rng_t rng = hk_rng_seeded(9);
    int done = 0;
    while (done < 6) {
        uintptr_t a = (uintptr_t)(hk_rng_next(&rng) & (((uint64_t)1 << 47) - 1)) & ~(uintptr_t)15;
        if (a < 0x10000 || is_mapped(a)) continue;
        char what[64];
        snprintf(what, sizeof what, "random address 0x%lx", (unsigned long)a);
        expect_invalid((void *)a, what);
        done++;
    }
    /* a random address in a heapkit chunk's neighbourhood: 4 MiB-aligned
     * addresses near the huge block, which are not blocks we own */
    uintptr_t near = ((uintptr_t)h & ~(uintptr_t)(4 * MiB - 1)) + 64 * MiB;
    for (int k = 0; k < 4; k++, near += 4 * MiB)
        if (!is_mapped(near)) expect_invalid((void *)near, "4 MiB-aligned address near heapkit memory");

    /* the parent's blocks are all still fine (the children were copies) */
    hk_free(s); hk_free(s2); hk_free(m); hk_free(h); hk_free(al);
    hk_heap_destroy(eh);
    free(g);
    free(gbig);
    return hk_test_done();
}
