// ctest-labels: no-asan
// test_oom: when the OS refuses memory, every call returns NULL with ENOMEM
// (posix_memalign returns ENOMEM), earlier blocks stay intact, and after
// freeing some memory allocation works again. Provoked with
// setrlimit(RLIMIT_AS) in a forked child.
//
// no-asan: AddressSanitizer reserves terabytes of shadow address space at
// start-up and needs more as the program runs, so RLIMIT_AS cannot be used
// under it (the sanitizer itself dies instead of heapkit failing cleanly).
#include "hk_test.h"
#include "api/hk_util.h"

#include <sys/resource.h>

typedef struct { void *p; size_t n; uint64_t id; } blk_t;
enum { MAXB = 100000 };
static blk_t blocks[MAXB]; /* static: no allocation needed in the child */
static int nblocks;
static void *grow_blocks[2];   /* the blocks REALLOC_GROW grows: medium, huge */
static size_t grow_sizes[2];
static int realloc_failures;

static void keep(void *p, size_t n) {
    REQUIRE(nblocks < MAXB);
    uint64_t id = 7000 + (uint64_t)nblocks;
    hk_pat_fill(p, id, n);
    blocks[nblocks++] = (blk_t){ p, n, id };
}
static int check_all(void) {
    int bad = 0;
    for (int i = 0; i < nblocks; i++)
        if (blocks[i].p && !hk_pat_ok(blocks[i].p, blocks[i].id, blocks[i].n)) bad++;
    return bad;
}
/* Frees every other kept block of at least min_size; returns bytes freed. */
static size_t release_some(size_t min_size) {
    size_t freed = 0;
    for (int i = 0; i < nblocks; i += 2) {
        if (blocks[i].p && blocks[i].n >= min_size) {
            freed += blocks[i].n;
            hk_free(blocks[i].p);
            blocks[i].p = NULL;
        }
    }
    return freed;
}

/* Allocates blocks of `size` with `how` until the OS says no; checks the
 * failure is NULL + ENOMEM and returns how many succeeded. */
enum how { MALLOC, CALLOC, ALIGNED, POSIX, REALLOC_GROW };
static int exhaust(enum how how, size_t size, int limit) {
    int got = 0;
    for (int i = 0; i < limit; i++) {
        void *p = NULL;
        errno = 0;
        int rc = 0;
        switch (how) {
        case MALLOC: p = hk_malloc(size); break;
        case CALLOC: p = hk_calloc(size / 8, 8); break;
        case ALIGNED: p = hk_aligned_alloc(64 * KiB, size); break;
        case POSIX: {
            void *out = (void *)0x99;
            rc = hk_posix_memalign(&out, 4096, size);
            if (rc == 0) p = out;
            else {
                CHECK(rc == ENOMEM);
                CHECK(out == (void *)0x99);
            }
            break;
        }
        case REALLOC_GROW: {
            /* grow the medium or the huge block until it cannot grow */
            int g = size > 2 * MiB;
            void *grow_block = grow_blocks[g];
            size_t grow_size = grow_sizes[g];
            if (!grow_block) { p = NULL; break; }
            void *q = hk_realloc(grow_block, grow_size * 2);
            if (q) {
                if (!hk_pat_ok(q, 1, grow_size)) CHECK(0);
                grow_blocks[g] = q;
                hk_pat_fill(q, 1, grow_size * 2);
                grow_sizes[g] *= 2;
                got++;
                continue;
            }
            /* failed: the old block must be intact and still usable */
            int e = errno;
            CHECK(hk_pat_ok(grow_block, 1, grow_size));
            CHECK(hk_usable_size(grow_block) >= grow_size);
            realloc_failures++;
            keep(grow_block, grow_size);
            grow_blocks[g] = NULL;
            errno = e;
            p = NULL;
            break;
        }
        }
        if (!p) {
            if (how != POSIX) {
                CHECK(errno == ENOMEM);
                if (errno != ENOMEM) fprintf(stderr, "  how %d size %zu: errno %d\n", how, size, errno);
            }
            return got;
        }
        CHECK(hk_usable_size(p) >= size);
        if (how == CALLOC) CHECK(hk_is_zero(p, size / 8 * 8));
        keep(p, size);
        got++;
    }
    return got;
}

static void child(void *arg) {
    (void)arg;
    /* a few blocks before the limit, of every kind */
    static const size_t pre[] = { 16, 100, 4000, 30000, 100000, 1000000, 3000000 };
    for (size_t i = 0; i < sizeof pre / sizeof pre[0]; i++) {
        void *p = hk_malloc(pre[i]);
        REQUIRE(p != NULL);
        keep(p, pre[i]);
    }
    /* limit the address space to what we use now + 96 MiB */
    struct rlimit rl;
    size_t vm = hk_vm_bytes();
    REQUIRE(vm > 0);
    rl.rlim_cur = rl.rlim_max = vm + 96 * MiB;
    REQUIRE(setrlimit(RLIMIT_AS, &rl) == 0);
    /* the blocks the realloc steps grow, taken while there is room */
    grow_sizes[0] = 256 * KiB;
    grow_sizes[1] = 3 * MiB;
    for (int g = 0; g < 2; g++) {
        grow_blocks[g] = hk_malloc(grow_sizes[g]);
        REQUIRE(grow_blocks[g] != NULL);
        hk_pat_fill(grow_blocks[g], 1, grow_sizes[g]);
    }

    static const struct { enum how how; size_t size; } plan[] = {
        { MALLOC, 8 * MiB },        /* huge */
        { MALLOC, 1 * MiB },        /* medium */
        { CALLOC, 256 * KiB },
        { ALIGNED, 40 * KiB },
        { POSIX, 3 * MiB },
        { REALLOC_GROW, 256 * KiB },
        { REALLOC_GROW, 3 * MiB },
        { MALLOC, 20 * KiB },       /* small: slabs */
        { MALLOC, 200 },
    };
    for (size_t k = 0; k < sizeof plan / sizeof plan[0]; k++) {
        int got = exhaust(plan[k].how, plan[k].size, 1000000);
        fprintf(stderr, "step %zu (how %d, size %zu): %d blocks before ENOMEM\n", k, plan[k].how, plan[k].size, got);
        CHECK(got < 1000000); /* it did fail */
        CHECK(check_all() == 0);
        /* release half of the big blocks, which must make room again */
        size_t freed = release_some(plan[k].size);
        hk_collect(true);
        if (freed >= 2 * plan[k].size + 8 * MiB) {
            void *p = hk_malloc(plan[k].size);
            CHECK(p != NULL);
            if (p) keep(p, plan[k].size);
        }
        /* use the room up again before the next kind */
        exhaust(MALLOC, 4 * MiB, 1000000);
    }
    CHECK(check_all() == 0);
    CHECK(realloc_failures == 2); /* the failed-realloc paths were taken */
    /* free everything: allocation of every kind works again */
    for (int i = 0; i < nblocks; i++) { hk_free(blocks[i].p); blocks[i].p = NULL; }
    hk_collect(true);
    void *a = hk_malloc(100), *b = hk_malloc(1 * MiB), *c = hk_malloc(16 * MiB);
    CHECK(a && b && c);
    hk_free(a); hk_free(b); hk_free(c);
    fprintf(stderr, "oom child: %u passed, %u failed\n", hk_test_passed, hk_test_failed);
    _exit(hk_test_failed ? 1 : 0);
}

int main(void) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) child(NULL);
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (!WIFEXITED(status)) fprintf(stderr, "child killed by signal %d\n", WTERMSIG(status));
    return hk_test_done();
}
