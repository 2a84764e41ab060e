/* buggy.c: small programs with one memory bug each, for the debug
 * library's tests (test_debug_reports.c runs them under
 * libheapkit-debug.so and checks the reports).
 *   buggy MODE   with MODE one of the names in the table at the end.
 * Built with -O0 -g -fno-omit-frame-pointer, so that every function named
 * here is a frame of its own and the reports can name it.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <signal.h>
#include <sys/wait.h>

#define NOINLINE __attribute__((noinline))

/* The compiler must not see through the bugs. */
static void *volatile sink;
static void keep(void *p) { sink = p; }
/* Drops a pointer: the block is lost (built at -O0, the call stays). */
__attribute__((noinline)) static void drop(void *p) { (void)p; }

NOINLINE static void overflow_by_one(void) {
    char *p = malloc(10);
    printf("block %p\n", (void *)p);
    fflush(stdout);
    memset(p, 'a', 11); /* one byte past the end */
    free(p);
}

NOINLINE static void underflow(void) {
    char *p = malloc(24);
    printf("block %p\n", (void *)p);
    fflush(stdout);
    p[-1] = 'x';
    free(p);
}

NOINLINE static void first_free(char *p) { free(p); }
NOINLINE static void second_free(char *p) { free(p); }
NOINLINE static void double_free(void) {
    char *p = malloc(40);
    printf("block %p\n", (void *)p);
    fflush(stdout);
    first_free(p);
    second_free(p);
}

NOINLINE static void free_stack_address(void) {
    char buf[32];
    keep(buf);
    printf("block %p\n", (void *)buf);
    fflush(stdout);
    free(sink);
}

NOINLINE static void free_interior(void) {
    char *p = malloc(64);
    printf("block %p\n", (void *)(p + 16));
    fflush(stdout);
    free(p + 16);
}

NOINLINE static void write_after_free(void) {
    char *p = malloc(48);
    printf("block %p\n", (void *)p);
    fflush(stdout);
    free(p);
    p[5] = 1; /* found when the block leaves the quarantine, here at exit */
}

/* A block under 16 bytes: its last byte (the pattern is read as words). */
NOINLINE static void write_after_free_small(void) {
    char *p = malloc(13);
    printf("block %p\n", (void *)p);
    fflush(stdout);
    free(p);
    p[12] = 1;
}

/* The same found when the block leaves the quarantine: 40 MiB of frees
 * later (the quarantine holds 16 MiB per thread). */
NOINLINE static void write_after_free_evicted(void) {
    char *p = malloc(48);
    printf("block %p\n", (void *)p);
    fflush(stdout);
    free(p);
    p[7] = 1;
    for (int i = 0; i < 40; i++) free(malloc(1 << 20));
    printf("not caught\n");
}

/* Many blocks written after free: they leave the quarantine oldest first,
 * so the first one is reported. The quarantine holds big blocks first
 * (some have left it), then takes so many small ones that its ring of
 * addresses grows several times with its oldest entry away from the ring's
 * start. */
NOINLINE static void write_after_free_order(void) {
    for (int i = 0; i < 20; i++) free(malloc(1 << 20));
    char *first = NULL;
    for (int i = 0; i < 5000; i++) {
        char *p = malloc(24);
        if (i == 0) first = p;
        free(p);
        p[3] = 1;
    }
    printf("block %p\n", (void *)first);
    fflush(stdout);
    for (int i = 0; i < 400000; i++) free(malloc(64));
    printf("not caught\n");
}

/* Blocks that left the quarantine are reused (the stash, then the heap):
 * a block made from one is a new block in full, its bytes 0xbe, its red
 * zone armed. Prints "fresh 1" when every new block's bytes were 0xbe,
 * then overflows the last one by a byte. */
NOINLINE static void reuse_after_quarantine(void) {
    int fresh = 1;
    for (int i = 0; i < 400000; i++) free(malloc(40));
    char *p = NULL;
    for (int i = 0; i < 1000; i++) {
        p = malloc(40);
        for (int k = 0; k < 40; k++) fresh &= (unsigned char)p[k] == 0xbe;
        if (i < 999) free(p);
    }
    printf("fresh %d\nblock %p\n", fresh, (void *)p);
    fflush(stdout);
    p[40] = 'x';
    free(p);
}

/* A big block's pattern is at its ends only (debug.c: FREED_HEAD, 4096
 * bytes, and FREED_TAIL, 1024): a write after free there is found, one in
 * the middle is not (the documented bound). */
#define BIG ((size_t)1 << 20)
NOINLINE static void big_write_after_free(size_t at) {
    char *p = malloc(BIG);
    memset(p, 'a', BIG);
    printf("block %p\n", (void *)p);
    fflush(stdout);
    free(p);
    p[at] = 1;
}
NOINLINE static void write_after_free_big_head(void) { big_write_after_free(100); }
NOINLINE static void write_after_free_big_tail(void) { big_write_after_free(BIG - 10); }
NOINLINE static void write_after_free_big_middle(void) { big_write_after_free(BIG / 2); }

/* Grown in place, the red zone moved past the new end. */
NOINLINE static void realloc_overflow(void) {
    char *p = malloc(10);
    p = realloc(p, 12);
    printf("block %p\n", (void *)p);
    fflush(stdout);
    memset(p, 'a', 13); /* one byte past the new end */
    free(p);
}

NOINLINE static void realloc_after_free(void) {
    char *p = malloc(16);
    printf("block %p\n", (void *)p);
    fflush(stdout);
    free(p);
    keep(realloc(p, 32));
}

NOINLINE static void leak_a(void) {
    for (int i = 0; i < 2; i++) drop(malloc(100));
}
NOINLINE static void leak_b(void) { drop(malloc(1000)); }
NOINLINE static void leak_c(void) {
    for (int i = 0; i < 3; i++) drop(calloc(1, 10));
}
NOINLINE static void *leak_in_thread(void *arg) {
    (void)arg;
    drop(malloc(77));
    return NULL;
}
NOINLINE static void *leak_three_sites(void *arg) {
    (void)arg;
    leak_a();
    leak_b();
    leak_c();
    return NULL;
}

/* Leaks through one allocation wrapper (as python's PyMem_RawMalloc): the
 * stacks share their first frame and differ further up. */
NOINLINE static void *wrapped_malloc(size_t n) { return malloc(n); }
NOINLINE static void leak_via_first(void) { drop(wrapped_malloc(11)); }
NOINLINE static void leak_via_second(void) {
    for (int i = 0; i < 2; i++) drop(wrapped_malloc(22));
}
NOINLINE static void *leaks_through_wrapper_thread(void *arg) {
    (void)arg;
    for (int i = 0; i < 3; i++) {
        leak_via_first();
        leak_via_second();
    }
    return NULL;
}
NOINLINE static void leaks_through_wrapper(void) {
    pthread_t t;
    pthread_create(&t, NULL, leaks_through_wrapper_thread, NULL);
    pthread_join(t, NULL);
}

/* Three call sites and a thread lose blocks; one block stays reachable
 * from a global and is not a leak. The leaks happen on threads that have
 * ended by exit, so no stale copy of a lost pointer lingers in the main
 * thread's registers or stack, which the leak scan treats as roots. */
NOINLINE static void leaks(void) {
    keep(malloc(555));
    pthread_t t;
    pthread_create(&t, NULL, leak_three_sites, NULL);
    pthread_join(t, NULL);
    pthread_create(&t, NULL, leak_in_thread, NULL);
    pthread_join(t, NULL);
}

/* Everything freed: the report must say so, and nothing else. */
NOINLINE static void clean(void) {
    void *v[1000];
    for (int i = 0; i < 1000; i++) v[i] = malloc((size_t)(i % 300) + 1);
    for (int i = 0; i < 1000; i++) v[i] = realloc(v[i], (size_t)(i % 500) + 1);
    for (int i = 0; i < 1000; i++) free(v[i]);
    char *s = strdup("hello");
    free(s);
    void *a;
    if (posix_memalign(&a, 4096, 100) == 0) free(a);
}

/* For the statistics signal: allocate, say ready, wait to be killed. */
NOINLINE static void wait_for_signal(void) {
    void *v[100];
    for (int i = 0; i < 100; i++) v[i] = malloc(1000);
    keep(v);
    /* Other threads see a heap's figures as its owner last published them
     * (on its slow paths, at most every 50 ms): trimming publishes now. */
    malloc_trim(0);
    printf("ready\n");
    fflush(stdout);
    for (int i = 0; i < 300; i++) usleep(100 * 1000);
}

/* The same in a child forked without exec: prints the child's pid. */
NOINLINE static void fork_wait_for_signal(void) {
    pid_t pid = fork();
    if (pid == 0) {
        void *v[50];
        for (int i = 0; i < 50; i++) v[i] = malloc(3000);
        keep(v);
        malloc_trim(0);
        printf("child %d\n", (int)getpid());
        fflush(stdout);
        for (int i = 0; i < 300; i++) usleep(100 * 1000);
        _exit(0);
    }
    for (int i = 0; i < 300; i++) usleep(100 * 1000);
}

/* Under HEAPKIT_DEBUG=guard: an overflow faults at once, a read after free
 * too. */
NOINLINE static void guard_overflow(void) {
    char *p = malloc(100);
    printf("block %p\n", (void *)p);
    fflush(stdout);
    for (int i = 0; i < 200; i++) p[i] = 'x'; /* the guard page stops it */
    printf("not caught\n");
}
NOINLINE static void guard_read_after_free(void) {
    char *p = malloc(5000);
    printf("block %p\n", (void *)p);
    fflush(stdout);
    free(p);
    sink = (void *)(uintptr_t)p[100];
    printf("not caught\n");
}

/* Whether the mapping holding a small block carries the kernel's "hg"
 * VmFlag (MADV_HUGEPAGE, /proc/self/smaps): prints "advice 1", "advice 0",
 * or "advice -1" when no mapping holds it. */
NOINLINE static void chunk_advice(void) {
    char *p = malloc(100);
    uintptr_t a = (uintptr_t)p;
    int found = -1, in = 0;
    char line[512];
    FILE *f = fopen("/proc/self/smaps", "r");
    while (f && fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            in = a >= lo && a < hi;
            continue;
        }
        if (in && strncmp(line, "VmFlags:", 8) == 0) {
            found = strstr(line, " hg") != NULL;
            break;
        }
    }
    if (f) fclose(f);
    printf("advice %d\n", found);
    free(p);
}

/* The patterns at every size boundary of their code (debug.c's fill and
 * checks take 8, 16, 32 and 64 bytes at a time, overlapping at the ends):
 * a new block of every size up to 2200 bytes is 0xbe; for sizes around
 * each boundary, in a child each, an overflow at the first, a middle and
 * the last of the 16 red zone bytes is reported, and so is a write after
 * free at the first, some middle and the last byte; a clean block is not.
 * Run with HEAPKIT_QUARANTINE_MB=1 (4 MiB of frees evict a block) and
 * HEAPKIT_STACK=nosymbols (no addr2line in 200 reports). Prints "patterns
 * ok" or what was missed. */
static void *volatile pattern_sink;
NOINLINE static void churn(void) {
    for (int i = 0; i < 40; i++) {
        pattern_sink = malloc(100000);
        free(pattern_sink);
    }
}
enum { PAT_OVERFLOW, PAT_UAF, PAT_CLEAN };
static int pattern_child(int what, size_t n, size_t k) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        freopen("/dev/null", "w", stderr);
        volatile char *p = malloc(n);
        pattern_sink = (void *)p;
        if (what == PAT_OVERFLOW) p[n + k] = 1;
        if (what == PAT_CLEAN) memset((char *)p, 1, n);
        free((void *)p);
        if (what == PAT_UAF) p[k] = 1;
        churn();
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}
NOINLINE static void patterns(void) {
    int bad = 0;
    for (size_t n = 0; n <= 2200; n++) {
        unsigned char *p = malloc(n);
        for (size_t i = 0; i < n; i++)
            if (p[i] != 0xbe) {
                printf("new block of %zu bytes: byte %zu is 0x%02x\n", n, i, p[i]);
                bad++;
                break;
            }
        free(p);
    }
    static const size_t sizes[] = {1,   7,   8,   9,   15,  16,  17,  31,  32,   33,   47,   48,  63,
                                   64,  65,  79,  80,  96,  127, 128, 129, 191,  192,  193,  255, 256,
                                   257, 511, 512, 513, 1023, 1024, 1025, 2000, 4000, 5120};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        size_t n = sizes[s], at[] = {0, n / 2, n - 1};
        for (size_t k = 0; k < 16; k += 7)
            if (!pattern_child(PAT_OVERFLOW, n, k)) {
                printf("overflow of %zu bytes at +%zu missed\n", n, k);
                bad++;
            }
        for (int i = 0; i < 3; i++)
            if (!pattern_child(PAT_UAF, n, at[i])) {
                printf("write after free of %zu bytes at %zu missed\n", n, at[i]);
                bad++;
            }
        if (pattern_child(PAT_CLEAN, n, 0)) {
            printf("clean block of %zu bytes reported\n", n);
            bad++;
        }
    }
    if (bad == 0) printf("patterns ok\n");
}

static const struct {
    const char *name;
    void (*fn)(void);
} modes[] = {
    {"overflow", overflow_by_one},   {"underflow", underflow},
    {"double-free", double_free},    {"stack-free", free_stack_address},
    {"interior-free", free_interior}, {"use-after-free", write_after_free},
    {"realloc-after-free", realloc_after_free},
    {"use-after-free-evicted", write_after_free_evicted}, {"leaks", leaks},
    {"use-after-free-big-head", write_after_free_big_head},
    {"use-after-free-big-tail", write_after_free_big_tail},
    {"use-after-free-big-middle", write_after_free_big_middle},
    {"realloc-overflow", realloc_overflow},
    {"clean", clean},                {"wait", wait_for_signal},
    {"fork-wait", fork_wait_for_signal},
    {"guard-overflow", guard_overflow},
    {"guard-read-after-free", guard_read_after_free},
    {"chunk-advice", chunk_advice},
    {"leaks-wrapper", leaks_through_wrapper},
    {"use-after-free-order", write_after_free_order},
    {"reuse-after-quarantine", reuse_after_quarantine},
    {"use-after-free-small", write_after_free_small},
    {"patterns", patterns},
};

int main(int argc, char **argv) {
    for (size_t i = 0; argc > 1 && i < sizeof modes / sizeof modes[0]; i++)
        if (strcmp(argv[1], modes[i].name) == 0) {
            modes[i].fn();
            return 0;
        }
    fprintf(stderr, "usage: buggy MODE\n");
    return 2;
}
