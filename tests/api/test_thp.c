// test_thp: huge blocks ask for transparent huge pages, and only they.
//   - an 8 MiB block's mapping carries the kernel's "hg" flag (MADV_HUGEPAGE,
//     VmFlags in /proc/self/smaps), and its contents survive;
//   - a medium block (1 MiB, from a 4 MiB chunk) and a small one do not:
//     huge pages in chunks would cost small programs megabytes of RSS;
//   - with HEAPKIT_THP=0 (this program run again with it) the huge block's
//     mapping does not carry the flag either.
// A kernel without transparent huge pages rejects the advice (asked of a
// mapping of the test's own): then no mapping may carry it.
#include "hk_test.h"
#include "api/hk_util.h"

#include <sys/mman.h>

/* Whether the mapping that holds p carries the "hg" VmFlag; -1 when p is in
 * no mapping of /proc/self/smaps. */
static int has_hugepage_advice(const void *p) {
    FILE *f = fopen("/proc/self/smaps", "r");
    if (f == NULL) return -1;
    char line[512];
    int in = 0, found = -1;
    uintptr_t a = (uintptr_t)p;
    while (fgets(line, sizeof line, f)) {
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
    fclose(f);
    return found;
}

/* Whether this kernel accepts MADV_HUGEPAGE (built with transparent huge
 * pages), asked of a mapping of our own: /sys may be hidden in a container
 * while the kernel still takes the advice. */
static bool kernel_takes_hugepage_advice(void) {
    size_t n = 4 * MiB;
    void *m = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(m != MAP_FAILED);
    bool ok = madvise(m, n, MADV_HUGEPAGE) == 0;
    munmap(m, n);
    return ok;
}

/* Allocates and fills a block of n bytes, reports its advice, checks the
 * contents and frees it. */
static int advice_of_new_block(size_t n, uint64_t id) {
    uint8_t *p = hk_malloc(n);
    REQUIRE(p != NULL);
    hk_pat_fill(p, id, n);
    int advice = has_hugepage_advice(p);
    CHECK(hk_pat_find_bad_range(p, id, 0, n) == (size_t)-1);
    hk_free(p);
    return advice;
}

int main(int argc, char **argv) {
    bool kernel_thp = kernel_takes_hugepage_advice();
    const char *env = getenv("HEAPKIT_THP");
    bool off = env != NULL && strcmp(env, "0") == 0;

    void *small = hk_malloc(100);
    REQUIRE(small != NULL);
    CHECK(has_hugepage_advice(small) == 0);
    CHECK(advice_of_new_block(1 * MiB, 1) == 0);
    int huge = advice_of_new_block(8 * MiB, 2);
    CHECK(huge >= 0);
    CHECK(huge == (kernel_thp && !off));
    printf("%s: 8 MiB block %s MADV_HUGEPAGE (kernel THP %s)\n",
           off ? "HEAPKIT_THP=0" : "default", huge == 1 ? "has" : "lacks",
           kernel_thp ? "present" : "absent");
    hk_free(small);

    if (!off && argc > 0) {
        /* The same checks with the option off, in a fresh process (options
         * are read once at start). */
        fflush(stdout);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            setenv("HEAPKIT_THP", "0", 1);
            execv("/proc/self/exe", argv);
            _exit(127);
        }
        int status = 0;
        REQUIRE(waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    return hk_test_done();
}
