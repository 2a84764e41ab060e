// test_wrong: misuse of the overridden functions is reported by heapkit
// and aborts, through the names a C program calls:
//   free(p) of a pointer heapkit does not own ->
//       "heapkit: free(): invalid pointer 0x<p>", SIGABRT
//   realloc(p, n) of such a pointer ->
//       "heapkit: realloc(): invalid pointer 0x<p>", SIGABRT
//   free(p) twice in a row (small, medium and huge blocks) ->
//       "heapkit: free(): double free 0x<p>", SIGABRT
// The pointers: a stack address, a static, a page from mmap, and a block
// from the dynamic linker's own minimal malloc is not reachable, so memory
// heapkit never saw stands for it. Each case runs in a forked child; the
// report must name the exact address, come from heapkit (not glibc), and be
// the only thing printed.
#include "ovr.h"

#include <sys/mman.h>

static int a_static[64];
static void *target;

static void do_free(void *arg) { free(sink(arg)); }
static void do_realloc(void *arg) {
    void *q = realloc(sink(arg), 100);
    sink(q);
}
static void do_double_free(void *arg) {
    size_t n = *(size_t *)arg;
    void *p = malloc(n);
    target = p;
    /* Tell the parent the address: it is only known here. */
    char line[64];
    int len = snprintf(line, sizeof line, "address %p\n", p);
    ssize_t w = write(2, line, (size_t)len);
    (void)w;
    free(p);
    free(sink(p));
}

/* Runs fn(arg) in a child; it must abort with exactly one heapkit report
 * "heapkit: <func>(): <kind> <addr>". addr NULL: the child says it. */
static bool expect_report(void (*fn)(void *), void *arg, const char *func, const char *kind,
                          const void *addr, const char *what) {
    char out[8192];
    char head[64];
    snprintf(head, sizeof head, "heapkit: %s(): %s 0x", func, kind);
    bool died = hk_expect_death_ex(fn, arg, head, NULL, out, sizeof out);
    char want[160];
    const char *text = out;
    if (addr == NULL) {
        /* "address 0x..." first, from the child */
        void *a = NULL;
        if (sscanf(out, "address %p", &a) != 1) {
            fprintf(stderr, "%s: no address line in \"%s\"\n", what, out);
            return false;
        }
        addr = a;
        text = strchr(out, '\n') ? strchr(out, '\n') + 1 : out;
    }
    snprintf(want, sizeof want, "heapkit: %s(): %s %p\n", func, kind, addr);
    bool exact = strcmp(text, want) == 0 || (strncmp(text, want, strlen(want)) == 0 &&
                                             strncmp(text + strlen(want), "heapkit: ", 9) == 0);
    bool ok = died && exact && strstr(out, "free(): invalid pointer\n") == NULL;
    if (!ok)
        fprintf(stderr, "%s: want a SIGABRT and \"%s\", got \"%s\" (died as expected: %d)\n",
                what, want, text, died);
    return ok;
}

int main(void) {
    ovr_init();
    int local[16];
    void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(page != MAP_FAILED);
    struct {
        void *p;
        const char *what;
    } foreign[] = {
        {&local[4], "stack address"},
        {&a_static[8], "static data"},
        {page, "mmap page"},
        {(char *)page + 16, "inside an mmap page"},
        {(void *)(uintptr_t)0x1000, "low address"},
        {(void *)(uintptr_t)0x7ff000000010ull, "high unmapped address"},
    };
    for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++) {
        char what[128];
        snprintf(what, sizeof what, "free(%s)", foreign[i].what);
        CHECK(expect_report(do_free, foreign[i].p, "free", "invalid pointer", foreign[i].p, what));
        snprintf(what, sizeof what, "realloc(%s)", foreign[i].what);
        CHECK(expect_report(do_realloc, foreign[i].p, "realloc", "invalid pointer", foreign[i].p,
                            what));
    }
    size_t sizes[] = {16, 24, 100, 1000, 4000, 100 * KiB, 5 * MiB};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "double free of a %zu-byte block", sizes[i]);
        CHECK(expect_report(do_double_free, &sizes[i], "free", "double free", NULL, what));
    }
    /* The parent is unharmed. */
    void *p = malloc(100);
    CHECK(ovr_owned(p));
    free(p);
    munmap(page, 4096);
    printf("mode: %s\n", OVR_MODE);
    return hk_test_done();
}
