// ctest-timeout: 120
// test_api: every exported function of the malloc family, called by the
// names a C program uses, keeps the promises of the C standard and of
// glibc's manual pages, and is served by heapkit:
//   binding    malloc ... mallopt (and cfree) resolve to libheapkit.so, for
//              the program and for libraries (dlsym RTLD_DEFAULT);
//   malloc     16-byte alignment from 16 bytes up (and alignment fit for any
//              type that fits below), malloc(0) unique, free(NULL), ENOMEM;
//   calloc     zero memory even when a dirty block is reused, overflow
//              refused with ENOMEM;
//   realloc    contents kept across small/medium/huge, realloc(NULL, n),
//              realloc(p, 0), failure leaves the block intact (ENOMEM);
//   reallocarray overflow refused, block intact;
//   posix_memalign/aligned_alloc/memalign/valloc/pvalloc: alignments,
//              EINVAL for bad alignments (out untouched), ENOMEM;
//   malloc_usable_size honest (the whole usable size can be written);
//   mallinfo2/mallinfo/malloc_stats/malloc_trim/mallopt from heapkit's
//              statistics;
//   libc's own allocations (strdup, getline, asprintf, ...) are heapkit's;
//   out of memory under RLIMIT_AS: NULL + ENOMEM everywhere, blocks intact.
#include "ovr.h"

#include <errno.h>
#include <malloc.h>
#include <sys/mman.h>

static size_t page;

/* ---- binding ---------------------------------------------------------------- */
static void test_binding(void) {
    static const char *names[] = {
        "malloc", "free", "calloc", "realloc", "reallocarray", "posix_memalign",
        "aligned_alloc", "memalign", "valloc", "pvalloc", "malloc_usable_size",
        "malloc_trim", "malloc_stats", "mallinfo", "mallinfo2", "mallopt", "cfree",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        void *f = dlsym(RTLD_DEFAULT, names[i]);
        CHECK(f != NULL);
        CHECK(ovr_from_heapkit(f, names[i]));
    }
    /* The addresses the program itself calls. */
    CHECK(ovr_from_heapkit((void *)malloc, "&malloc"));
    CHECK(ovr_from_heapkit((void *)free, "&free"));
    CHECK(ovr_from_heapkit((void *)calloc, "&calloc"));
    CHECK(ovr_from_heapkit((void *)realloc, "&realloc"));
    CHECK(ovr_from_heapkit((void *)posix_memalign, "&posix_memalign"));
    CHECK(ovr_from_heapkit((void *)mallinfo2, "&mallinfo2"));
    /* cfree (gone from glibc's headers, still exported): frees. */
    void (*cfree_fn)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "cfree");
    void *p = malloc(48);
    CHECK(ovr_owned(p));
    if (cfree_fn) {
        cfree_fn(p);
        CHECK(!ovr_owned(p));
    } else {
        free(p);
    }
}

/* Largest power of two <= n, capped at 16: the alignment any object that
 * fits in n bytes may need on x86-64. */
static size_t need_align(size_t n) {
    if (n >= 16) return 16;
    size_t a = 1;
    while (a * 2 <= n) a *= 2;
    return a;
}

/* ---- malloc / free ------------------------------------------------------------ */
static void test_malloc(void) {
    size_t sizes[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 48, 64, 100, 127, 128, 129,
                      200, 255, 256, 500, 1000, 1024, 1025, 2000, 4095, 4096, 4097, 10000,
                      32 * KiB - 1, 32 * KiB, 32 * KiB + 1, 100 * KiB, 1 * MiB, 2 * MiB - 1,
                      2 * MiB, 2 * MiB + 1, 5 * MiB, 17 * MiB + 3};
    int bad_align = 0, not_owned = 0, bad_usable = 0, bad_content = 0;
    void *blocks[sizeof sizes / sizeof sizes[0]];
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        char *p = malloc(n);
        blocks[i] = p;
        if (!p) { CHECK(p != NULL); continue; }
        if ((uintptr_t)p % need_align(n)) {
            bad_align++;
            fprintf(stderr, "malloc(%zu) = %p: not aligned to %zu\n", n, (void *)p, need_align(n));
        }
        if (!ovr_owned(p)) {
            not_owned++;
            fprintf(stderr, "malloc(%zu) = %p: not a live heapkit block\n", n, (void *)p);
        }
        if (malloc_usable_size(p) < n) bad_usable++;
        ovr_fill_sparse(p, i, n);
    }
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        if (blocks[i] && !ovr_check_sparse(blocks[i], i, sizes[i])) bad_content++;
        free(blocks[i]);
    }
    CHECK(bad_align == 0);
    CHECK(not_owned == 0);
    CHECK(bad_usable == 0);
    CHECK(bad_content == 0);

    /* Every size up to 4 KiB: alignment and ownership. */
    bad_align = 0;
    for (size_t n = 16; n <= 4096; n++) {
        void *p = malloc(n);
        if (!p || (uintptr_t)p % 16 || malloc_usable_size(p) < n) bad_align++;
        free(p);
    }
    CHECK(bad_align == 0);

    /* malloc(0): a unique pointer that free accepts (as glibc). */
    void *z1 = malloc(0), *z2 = malloc(0);
    CHECK(z1 != NULL && z2 != NULL && z1 != z2);
    CHECK(ovr_owned(z1) && ovr_owned(z2));
    free(z1);
    free(z2);
    free(NULL); /* no-op */

    /* A freed small block is no longer live. */
    void *p = malloc(40);
    CHECK(ovr_owned(p));
    free(p);
    CHECK(!ovr_owned(p));

    /* Impossible sizes: NULL with ENOMEM. */
    size_t huge_sizes[] = {SIZE_MAX, SIZE_MAX - 4096, (size_t)PTRDIFF_MAX + 1, (size_t)PTRDIFF_MAX,
                           (size_t)1 << 50};
    for (size_t i = 0; i < sizeof huge_sizes / sizeof huge_sizes[0]; i++) {
        errno = 0;
        void *q = malloc(huge_sizes[i]);
        CHECK(q == NULL);
        CHECK(errno == ENOMEM);
        if (q || errno != ENOMEM) fprintf(stderr, "malloc(%#zx) = %p errno %d\n", huge_sizes[i], q, errno);
        free(q);
    }
    /* Still works afterwards. */
    p = malloc(100);
    CHECK(ovr_owned(p));
    free(p);
}

/* ---- calloc ------------------------------------------------------------------ */
static bool all_zero(const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i]) return false;
    return true;
}

static void test_calloc(void) {
    size_t sizes[] = {1, 16, 100, 1000, 4000, 30000, 100 * KiB, 1 * MiB, 3 * MiB, 9 * MiB};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        /* Dirty the memory calloc is likely to reuse, several times over. */
        for (int round = 0; round < 3; round++) {
            unsigned char *d = malloc(n);
            REQUIRE(d != NULL);
            memset(d, 0xA5, malloc_usable_size(d));
            free(d);
            unsigned char *c = calloc(1, n);
            CHECK(c != NULL);
            if (!c) continue;
            CHECK(ovr_owned(c));
            bool z = all_zero(c, n);
            CHECK(z);
            if (!z) fprintf(stderr, "calloc(1, %zu) round %d: memory not zero\n", n, round);
            memset(c, 0x5A, n);
            free(c);
        }
    }
    /* count * size */
    int *a = calloc(1000, sizeof(int));
    CHECK(a != NULL && all_zero(a, 1000 * sizeof(int)));
    free(a);
    /* Overflow of count * size is refused. */
    struct { size_t n, s; } ov[] = {
        {SIZE_MAX / 2 + 2, 2}, {(size_t)1 << 32, (size_t)1 << 32}, {SIZE_MAX, SIZE_MAX},
        {3, SIZE_MAX / 3 + 1}, {SIZE_MAX, 2},
    };
    for (size_t i = 0; i < sizeof ov / sizeof ov[0]; i++) {
        errno = 0;
        void *q = calloc(ov[i].n, ov[i].s);
        CHECK(q == NULL && errno == ENOMEM);
        if (q) fprintf(stderr, "calloc(%#zx, %#zx) overflowed into %p\n", ov[i].n, ov[i].s, q);
        free(q);
    }
    /* No overflow, but impossible. */
    errno = 0;
    void *q = calloc(1, SIZE_MAX);
    CHECK(q == NULL && errno == ENOMEM);
    /* calloc(0, n) and calloc(n, 0): unique pointers, freeable. */
    void *z1 = calloc(0, 10), *z2 = calloc(10, 0);
    CHECK(z1 && z2 && z1 != z2);
    free(z1);
    free(z2);
}

/* ---- realloc / reallocarray ---------------------------------------------------- */
static void test_realloc(void) {
    /* realloc(NULL, n) is malloc. */
    char *p = realloc(NULL, 100);
    CHECK(ovr_owned(p));
    /* Grow and shrink through every kind of block; contents kept. */
    size_t steps[] = {100, 1000, 10000, 40 * KiB, 500 * KiB, 2 * MiB, 3 * MiB, 10 * MiB,
                      40 * MiB, 5 * MiB, 1 * MiB, 20000, 50, 8, 3000, 6 * MiB, 64};
    size_t have = 100;
    ovr_fill(p, 7, have);
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        size_t n = steps[i];
        char *q = realloc(p, n);
        CHECK(q != NULL);
        if (!q) break;
        bool ok = n >= have ? ovr_check_sparse(q, 7, have) : ovr_check_prefix(q, 7, n);
        CHECK(ok);
        if (!ok) fprintf(stderr, "realloc to %zu lost the contents\n", n);
        CHECK((uintptr_t)q % need_align(n) == 0);
        CHECK(malloc_usable_size(q) >= n);
        CHECK(ovr_hk.heap_owns(ovr_hk.heap_default(), q));
        p = q;
        ovr_fill_sparse(p, 7, n);
        have = n;
    }
    free(p);

    /* realloc(p, 0) frees p and returns NULL (glibc's behaviour). */
    p = malloc(64);
    REQUIRE(p != NULL);
    void *r = realloc(p, 0);
    CHECK(r == NULL);
    CHECK(!ovr_owned(p));

    /* Failure leaves the block intact, for every kind of block. */
    size_t kinds[] = {100, 3000, 100 * KiB, 3 * MiB};
    size_t impossible[] = {SIZE_MAX, (size_t)PTRDIFF_MAX + 1, (size_t)1 << 50};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        size_t n = kinds[k];
        p = malloc(n);
        REQUIRE(p != NULL);
        ovr_fill(p, 100 + k, n);
        for (size_t i = 0; i < sizeof impossible / sizeof impossible[0]; i++) {
            errno = 0;
            void *q = realloc(p, impossible[i]);
            CHECK(q == NULL);
            CHECK(errno == ENOMEM);
            if (q) { p = q; break; }
        }
        CHECK(ovr_check(p, 100 + k, n));
        CHECK(malloc_usable_size(p) >= n);
        /* ... and still usable: grow it for real. */
        char *q = realloc(p, n * 2);
        CHECK(q != NULL && ovr_check(q, 100 + k, n));
        free(q ? q : p);
    }

    /* reallocarray */
    int *a = reallocarray(NULL, 10, sizeof(int));
    CHECK(ovr_owned(a));
    for (int i = 0; i < 10; i++) a[i] = i * 3;
    int *b = reallocarray(a, 100000, sizeof(int));
    CHECK(b != NULL);
    if (b) {
        bool ok = true;
        for (int i = 0; i < 10; i++) ok &= b[i] == i * 3;
        CHECK(ok);
        a = b;
    }
    errno = 0;
    b = reallocarray(a, SIZE_MAX / 2, 3);
    CHECK(b == NULL && errno == ENOMEM);
    errno = 0;
    b = reallocarray(a, (size_t)1 << 33, (size_t)1 << 33);
    CHECK(b == NULL && errno == ENOMEM);
    bool ok = true;
    for (int i = 0; i < 10; i++) ok &= a[i] == i * 3;
    CHECK(ok); /* intact after the refused growth */
    free(a);
}

/* ---- aligned allocation ------------------------------------------------------------ */
static void test_aligned(void) {
    size_t sizes[] = {1, 24, 100, 4096, 5000, 100 * KiB, 3 * MiB};
    int bad = 0;
    for (size_t align = sizeof(void *); align <= 8 * MiB; align *= 2) {
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            size_t n = sizes[i];
            if (align >= 1 * MiB && n < 100 * KiB) continue; /* keep it quick */
            void *p = (void *)0x1;
            int rc = posix_memalign(&p, align, n);
            if (rc != 0 || p == NULL || (uintptr_t)p % align || malloc_usable_size(p) < n ||
                !ovr_owned(p)) {
                bad++;
                fprintf(stderr, "posix_memalign(align %zu, size %zu) = %d, %p\n", align, n, rc, p);
                continue;
            }
            memset(p, 0x11, n);
            free(p);
            void *q = aligned_alloc(align, n);
            if (!q || (uintptr_t)q % align || malloc_usable_size(q) < n || !ovr_owned(q)) {
                bad++;
                fprintf(stderr, "aligned_alloc(%zu, %zu) = %p\n", align, n, q);
            }
            free(q);
            q = memalign(align, n);
            if (!q || (uintptr_t)q % align || malloc_usable_size(q) < n || !ovr_owned(q)) {
                bad++;
                fprintf(stderr, "memalign(%zu, %zu) = %p\n", align, n, q);
            }
            free(q);
        }
    }
    CHECK(bad == 0);

    /* posix_memalign: a bad alignment is EINVAL, *out untouched, errno kept. */
    size_t bad_aligns[] = {0, 1, 2, 4, 12, 24, 48, 100, 4097, SIZE_MAX};
    for (size_t i = 0; i < sizeof bad_aligns / sizeof bad_aligns[0]; i++) {
        void *p = (void *)0x1234;
        errno = EDOM;
        int rc = posix_memalign(&p, bad_aligns[i], 100);
        CHECK(rc == EINVAL);
        CHECK(p == (void *)0x1234);
        CHECK(errno == EDOM);
        if (rc != EINVAL) fprintf(stderr, "posix_memalign(align %zu) = %d\n", bad_aligns[i], rc);
    }
    /* posix_memalign out of memory: ENOMEM, *out untouched. */
    {
        void *p = (void *)0x1234;
        int rc = posix_memalign(&p, 64, SIZE_MAX);
        CHECK(rc == ENOMEM && p == (void *)0x1234);
        rc = posix_memalign(&p, 4096, (size_t)1 << 50);
        CHECK(rc == ENOMEM && p == (void *)0x1234);
    }
    /* aligned_alloc: alignment not a power of two is EINVAL (C11, glibc 2.38). */
    size_t bad_aa[] = {0, 3, 24, 48, 100};
    for (size_t i = 0; i < sizeof bad_aa / sizeof bad_aa[0]; i++) {
        errno = 0;
        void *q = aligned_alloc(bad_aa[i], 64);
        CHECK(q == NULL && errno == EINVAL);
        free(q);
    }
    errno = 0;
    CHECK(aligned_alloc(64, SIZE_MAX) == NULL && errno == ENOMEM);
    /* aligned_alloc with a size that is not a multiple (allowed since C17). */
    void *q = aligned_alloc(64, 100);
    CHECK(q && (uintptr_t)q % 64 == 0 && malloc_usable_size(q) >= 100);
    free(q);

    /* memalign rounds a non-power-of-two alignment up, as glibc does. */
    q = memalign(24, 100);
    CHECK(q && (uintptr_t)q % 32 == 0 && malloc_usable_size(q) >= 100);
    free(q);
    q = memalign(1000, 100);
    CHECK(q && (uintptr_t)q % 1024 == 0);
    free(q);
    q = memalign(1, 100);
    CHECK(q && (uintptr_t)q % 16 == 0);
    free(q);
    errno = 0;
    CHECK(memalign(SIZE_MAX, 16) == NULL && errno == EINVAL);
    errno = 0;
    CHECK(memalign(64, SIZE_MAX) == NULL && errno == ENOMEM);

    /* valloc: page-aligned; pvalloc: page-aligned and rounded up to pages. */
    size_t vsizes[] = {0, 1, 100, 4095, 4096, 4097, 5000, 100 * KiB, 3 * MiB};
    for (size_t i = 0; i < sizeof vsizes / sizeof vsizes[0]; i++) {
        size_t n = vsizes[i];
        char *v = valloc(n);
        CHECK(v != NULL && (uintptr_t)v % page == 0 && malloc_usable_size(v) >= n && ovr_owned(v));
        if (v) memset(v, 1, n);
        free(v);
        size_t rounded = n ? (n + page - 1) / page * page : page;
        char *pv = pvalloc(n);
        CHECK(pv != NULL && (uintptr_t)pv % page == 0 && ovr_owned(pv));
        CHECK(pv == NULL || malloc_usable_size(pv) >= rounded);
        if (pv) memset(pv, 2, rounded); /* the whole rounded size is ours */
        free(pv);
    }
    errno = 0;
    CHECK(valloc(SIZE_MAX) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(pvalloc(SIZE_MAX) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(pvalloc(SIZE_MAX - page) == NULL && errno == ENOMEM);
}

/* ---- malloc_usable_size ------------------------------------------------------------- */
static void test_usable_size(void) {
    CHECK(malloc_usable_size(NULL) == 0);
    /* Many neighbouring blocks, each written over its whole usable size:
     * if any usable size lied, a neighbour would be overwritten. */
    enum { N = 3000 };
    static void *b[N];
    static size_t us[N];
    hk_rng_t rng = hk_rng_seeded(42);
    int bad = 0, loose = 0;
    for (int i = 0; i < N; i++) {
        size_t n = 1 + hk_rng_below(&rng, i % 50 == 0 ? 300 * KiB : 3000);
        b[i] = malloc(n);
        REQUIRE(b[i] != NULL);
        us[i] = malloc_usable_size(b[i]);
        if (us[i] < n) bad++;
        if (us[i] != ovr_hk.usable_size(b[i])) bad++;
        /* Not wildly more than asked for either (class or page rounding). */
        size_t limit = n <= 32 * KiB ? n + n / 4 + 16 : (n + page - 1) / page * page;
        if (us[i] > limit) {
            loose++;
            fprintf(stderr, "malloc_usable_size(malloc(%zu)) = %zu\n", n, us[i]);
        }
        ovr_fill(b[i], (uint64_t)i, us[i]);
    }
    for (int i = 0; i < N; i++) {
        if (!ovr_check(b[i], (uint64_t)i, us[i])) bad++;
        free(b[i]);
    }
    CHECK(bad == 0);
    CHECK(loose == 0);
}

/* ---- statistics: mallinfo2, mallinfo, malloc_stats, malloc_trim, mallopt ----------- */
static void alloc_and_measure(const char *what, size_t count, size_t size) {
    void **v = malloc(count * sizeof *v);
    REQUIRE(v != NULL);
    struct mallinfo2 m0 = mallinfo2();
    for (size_t i = 0; i < count; i++) {
        v[i] = malloc(size);
        REQUIRE(v[i] != NULL);
        memset(v[i], 1, size);
    }
    struct mallinfo2 m1 = mallinfo2();
    size_t want = count * size;
    size_t grew = m1.uordblks - m0.uordblks;
    bool ok = m1.uordblks >= m0.uordblks && grew >= want && grew <= want + want / 4 + 64 * KiB;
    CHECK(ok);
    CHECK(m1.arena >= m1.uordblks);
    CHECK(m1.ordblks >= m0.ordblks + count);
    if (size > 2 * MiB) CHECK(m1.hblkhd >= m0.hblkhd + want);
    printf("  mallinfo2 %-7s %5zu x %8zu: uordblks %zu -> %zu (+%zu for %zu), arena %zu\n",
           what, count, size, m0.uordblks, m1.uordblks, grew, want, m1.arena);
    /* The old struct agrees while the figures fit in an int. */
    struct mallinfo old = mallinfo();
    if (m1.uordblks < 0x7fffffff) CHECK((size_t)old.uordblks == mallinfo2().uordblks);
    for (size_t i = 0; i < count; i++) free(v[i]);
    struct mallinfo2 m2 = mallinfo2();
    bool fell = m2.uordblks <= m0.uordblks + 64 * KiB && m2.uordblks + want / 2 < m1.uordblks;
    CHECK(fell);
    if (!ok || !fell)
        fprintf(stderr, "mallinfo2 %s: uordblks %zu, after %zu x %zu: %zu, after free: %zu\n",
                what, m0.uordblks, count, size, m1.uordblks, m2.uordblks);
    free(v);
}

/* Captures what fn prints on stderr (fd 2). */
static void capture_stderr(void (*fn)(void), char *buf, size_t size) {
    char path[] = "/tmp/hk-ovr-XXXXXX";
    int fd = mkstemp(path);
    buf[0] = 0;
    if (fd < 0) return;
    unlink(path);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    fn();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ssize_t n = pread(fd, buf, size - 1, 0);
    buf[n > 0 ? n : 0] = 0;
    close(fd);
}

static void call_malloc_stats(void) { malloc_stats(); }

static void test_stats(void) {
    alloc_and_measure("small", 1000, 1000);
    alloc_and_measure("small", 20000, 48);
    alloc_and_measure("medium", 20, 100 * KiB);
    alloc_and_measure("huge", 3, 6 * MiB);

    /* mallinfo2 is heapkit's statistics: the same figures as hk_stats. */
    void *huge_block = malloc(3 * MiB);
    hk_stats_t hs;
    ovr_hk.stats(&hs);
    struct mallinfo2 mi = mallinfo2();
    CHECK(mi.uordblks == hs.live_bytes);
    CHECK(mi.arena == hs.mapped_bytes);
    CHECK(mi.hblkhd == hs.huge_live_bytes && mi.hblkhd >= 3 * MiB);
    CHECK(mi.ordblks == hs.live_blocks);
    CHECK(mi.usmblks == hs.live_bytes_peak);
    if (mi.uordblks != hs.live_bytes || mi.arena != hs.mapped_bytes)
        fprintf(stderr, "mallinfo2: uordblks %zu arena %zu; hk_stats: live %zu mapped %zu\n",
                mi.uordblks, mi.arena, hs.live_bytes, hs.mapped_bytes);
    free(huge_block);

    /* malloc_stats prints heapkit's statistics (to stderr, as glibc). */
    void *marker = malloc(20 * MiB);
    REQUIRE(marker != NULL);
    size_t live = mallinfo2().uordblks;
    static char text[65536];
    capture_stderr(call_malloc_stats, text, sizeof text);
    CHECK(strstr(text, "heapkit statistics") != NULL);
    const char *l = strstr(text, "live bytes");
    size_t printed = 0;
    CHECK(l != NULL && sscanf(l, "live bytes %zu", &printed) == 1);
    CHECK(printed >= 20 * MiB && printed <= live + 1 * MiB && printed + 1 * MiB >= live);
    if (!l || printed < 20 * MiB) fprintf(stderr, "malloc_stats printed:\n%s\n", text);
    free(marker);

    /* malloc_trim: 1 after a big free (memory returned, RSS falls), then 0
     * when there is nothing left to give back. */
    enum { NB = 64 };
    void *v[NB];
    for (int i = 0; i < NB; i++) {
        v[i] = malloc(1 * MiB);
        REQUIRE(v[i] != NULL);
        memset(v[i], 3, 1 * MiB);
    }
    size_t rss0 = ovr_rss();
    for (int i = 0; i < NB; i++) free(v[i]);
    int t1 = malloc_trim(0);
    size_t rss1 = ovr_rss();
    printf("  malloc_trim after freeing 64 MiB: %d (RSS %zu -> %zu KiB)\n", t1, rss0 / 1024,
           rss1 / 1024);
    CHECK(t1 == 1);
    CHECK(rss1 + 32 * MiB < rss0);
    malloc_trim(0);
    int t2 = malloc_trim(0); /* nothing happened since the last one */
    CHECK(t2 == 0);
    if (t2 != 0) fprintf(stderr, "malloc_trim returned %d with nothing to give back\n", t2);
    /* The same with a huge block, which the huge block cache keeps. */
    char *h = malloc(16 * MiB);
    REQUIRE(h != NULL);
    memset(h, 4, 16 * MiB);
    rss0 = ovr_rss();
    free(h);
    t1 = malloc_trim(0);
    rss1 = ovr_rss();
    printf("  malloc_trim after freeing a 16 MiB block: %d (RSS %zu -> %zu KiB)\n", t1,
           rss0 / 1024, rss1 / 1024);
    CHECK(t1 == 1);
    CHECK(rss1 + 12 * MiB < rss0);

    /* mallopt: the knobs glibc documents are accepted; nonsense is refused. */
    CHECK(mallopt(M_MMAP_THRESHOLD, 256 * 1024) == 1);
    CHECK(mallopt(M_TRIM_THRESHOLD, 1024 * 1024) == 1);
    CHECK(mallopt(M_TOP_PAD, 0) == 1);
    CHECK(mallopt(M_MMAP_MAX, 65536) == 1);
    CHECK(mallopt(M_ARENA_MAX, 2) == 1);
    CHECK(mallopt(M_ARENA_TEST, 8) == 1);
    CHECK(mallopt(12345, 1) == 0);
    CHECK(mallopt(-12345, 1) == 0);
    void *p = malloc(100); /* still works */
    CHECK(ovr_owned(p));
    free(p);
}

/* ---- libc's own allocations ---------------------------------------------------------- */
static void test_libc_callers(void) {
    char *s = strdup("heapkit");
    CHECK(ovr_owned(s));
    free(s);
    s = strndup("heapkit heapkit", 7);
    CHECK(ovr_owned(s) && strcmp(s, "heapkit") == 0);
    free(s);
    char *a = NULL;
    CHECK(asprintf(&a, "%d-%s", 42, "x") == 4 && ovr_owned(a));
    free(a);
    char *cwd = getcwd(NULL, 0);
    CHECK(ovr_owned(cwd));
    free(cwd);
    char *rp = realpath("/", NULL);
    CHECK(ovr_owned(rp));
    free(rp);
    /* getline grows its buffer with realloc. */
    char text[] = "a line\nanother, rather longer line that makes getline grow its buffer\n";
    FILE *f = fmemopen(text, sizeof text - 1, "r");
    REQUIRE(f != NULL);
    char *line = NULL;
    size_t cap = 0;
    int lines = 0;
    while (getline(&line, &cap, f) > 0) lines++;
    CHECK(lines == 2 && ovr_owned(line));
    free(line);
    fclose(f);
    /* open_memstream: libc reallocs the buffer, the program frees it. */
    char *buf = NULL;
    size_t len = 0;
    f = open_memstream(&buf, &len);
    REQUIRE(f != NULL);
    for (int i = 0; i < 10000; i++) fprintf(f, "%d,", i);
    fclose(f);
    CHECK(len > 40000 && ovr_owned(buf));
    free(buf);
}

/* ---- out of memory (RLIMIT_AS), in a child ---------------------------------------- */
static size_t vm_size(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long sz = 0;
    if (f) {
        if (fscanf(f, "%lu", &sz) != 1) sz = 0;
        fclose(f);
    }
    return (size_t)sz * page;
}

static void oom_child(void) {
    unsigned failed0 = hk_test_failed;
    /* Room for about 128 MiB more. */
    struct rlimit rl = {vm_size() + 128 * MiB, RLIM_INFINITY};
    rl.rlim_max = rl.rlim_cur;
    if (setrlimit(RLIMIT_AS, &rl) != 0) _exit(99);
    enum { MAX = 1024 };
    static char *v[MAX];
    int n = 0;
    errno = 0;
    while (n < MAX) {
        v[n] = malloc(1 * MiB);
        if (!v[n]) break;
        ovr_fill_sparse(v[n], (uint64_t)n, 1 * MiB);
        n++;
    }
    CHECK(n < MAX);          /* the limit was reached */
    CHECK(n >= 32);          /* ... not before there was no room */
    CHECK(errno == ENOMEM);  /* malloc said why */
    /* Every block still intact; the failures touched nothing. */
    int bad = 0;
    for (int i = 0; i < n; i++) bad += !ovr_check_sparse(v[i], (uint64_t)i, 1 * MiB);
    CHECK(bad == 0);
    /* Give back a third: allocation works again. */
    for (int i = 0; i < n; i += 3) { free(v[i]); v[i] = NULL; }
    malloc_trim(0);
    void *again = malloc(1 * MiB);
    CHECK(again != NULL);
    free(again);
    /* Each entry point fails cleanly with ENOMEM when memory is short. */
    errno = 0;
    CHECK(malloc(400 * MiB) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(calloc(400, MiB) == NULL && errno == ENOMEM);
    void *out = (void *)0x1234;
    CHECK(posix_memalign(&out, 4096, 400 * MiB) == ENOMEM && out == (void *)0x1234);
    errno = 0;
    CHECK(aligned_alloc(4096, 400 * MiB) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(memalign(64, 400 * MiB) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(valloc(400 * MiB) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(pvalloc(400 * MiB) == NULL && errno == ENOMEM);
    /* realloc that cannot grow: NULL, ENOMEM, the block intact. */
    int k = 1; /* v[1] survives (only every third was freed) */
    errno = 0;
    char *r = realloc(v[k], 400 * MiB);
    CHECK(r == NULL && errno == ENOMEM);
    CHECK(ovr_check_sparse(v[k], (uint64_t)k, 1 * MiB));
    errno = 0;
    r = reallocarray(v[k], 400, MiB);
    CHECK(r == NULL && errno == ENOMEM);
    CHECK(ovr_check_sparse(v[k], (uint64_t)k, 1 * MiB));
    /* A small block from a huge-failing realloc of a small block. */
    char *small = malloc(50);
    REQUIRE(small != NULL);
    strcpy(small, "still here");
    errno = 0;
    r = realloc(small, 400 * MiB);
    CHECK(r == NULL && errno == ENOMEM && strcmp(small, "still here") == 0);
    free(small);
    for (int i = 0; i < n; i++) free(v[i]);
    /* After all that, ordinary allocation works. */
    char *ok = malloc(1000);
    CHECK(ovr_owned(ok));
    free(ok);
    printf("  out of memory after %d MiB under RLIMIT_AS\n", n);
    fflush(stdout);
    _exit(hk_test_failed != failed0 ? 1 : 0);
}

static void test_oom(void) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) oom_child();
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fprintf(stderr, "out-of-memory child: status %#x\n", status);
}

int main(void) {
    ovr_init();
    page = (size_t)sysconf(_SC_PAGESIZE);
    struct { const char *name; void (*fn)(void); } tests[] = {
        {"binding", test_binding},         {"malloc", test_malloc},
        {"calloc", test_calloc},           {"realloc", test_realloc},
        {"aligned", test_aligned},         {"usable_size", test_usable_size},
        {"stats", test_stats},             {"libc_callers", test_libc_callers},
        {"oom", test_oom},
    };
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        unsigned f0 = hk_test_failed;
        double t0 = ovr_now();
        tests[i].fn();
        printf("%-13s %s (%.2f s)\n", tests[i].name, hk_test_failed == f0 ? "ok" : "FAILED",
               ovr_now() - t0);
        fflush(stdout);
    }
    printf("mode: %s\n", OVR_MODE);
    return hk_test_done();
}
