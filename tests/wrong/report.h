/* report.h: parsing heapkit's wrong-use report for the death tests.
 *
 * heapkit.h: freeing a pointer heapkit does not own, or freeing a block
 * twice where detectable, prints "heapkit: free(): <kind> 0x..." to stderr
 * and aborts. The issue fixes the address format as 0x%lx (lowercase hex,
 * no padding).
 */
#ifndef HK_WRONG_REPORT_H
#define HK_WRONG_REPORT_H

#include "hk_test.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>

/* Finds "heapkit: free(): <kind> 0x<hex>" in text. Fills kind (the words
 * between the prefix and " 0x") and the address. The hex digits must be
 * lowercase and followed by a non-alphanumeric character (or the end). */
static inline bool hk_parse_report(const char *text, char *kind, size_t kindsz, uintptr_t *addr) {
    static const char prefix[] = "heapkit: free(): ";
    const char *s = strstr(text, prefix);
    if (!s) return false;
    s += sizeof prefix - 1;
    const char *x = strstr(s, " 0x");
    const char *eol = strchr(s, '\n');
    if (!x || (eol && x > eol)) return false;
    size_t klen = (size_t)(x - s);
    if (klen == 0 || klen >= kindsz) return false;
    memcpy(kind, s, klen);
    kind[klen] = 0;
    const char *h = x + 3;
    uintptr_t v = 0;
    int digits = 0;
    while (isxdigit((unsigned char)*h)) {
        if (isupper((unsigned char)*h)) return false; /* 0x%lx: lowercase */
        v = v * 16 + (uintptr_t)(isdigit((unsigned char)*h) ? *h - '0' : *h - 'a' + 10);
        h++;
        if (++digits > 16) return false;
    }
    if (digits == 0 || isalnum((unsigned char)*h)) return false;
    *addr = v;
    return true;
}

/* Runs hk_free(ptr) in a child; passes when the child aborts with a report
 * whose kind is `kind` exactly (exact_kind) or contains it, and whose address
 * is `ptr`. */
typedef struct { void *ptr; void *extra; } hk_free_arg_t;

static inline void hk_do_free(void *arg) {
    hk_free(((hk_free_arg_t *)arg)->ptr);
}

static inline bool hk_expect_report(void (*fn)(void *), void *arg, const void *ptr,
                                    const char *kind, bool exact_kind, const char *what) {
    char out[8192], got_kind[128];
    uintptr_t addr = 0;
    bool died = hk_expect_death_ex(fn, arg, "heapkit: free(): ", kind, out, sizeof out);
    bool parsed = hk_parse_report(out, got_kind, sizeof got_kind, &addr);
    bool kind_ok = parsed && (exact_kind ? strcmp(got_kind, kind) == 0 : strstr(got_kind, kind) != NULL);
    bool addr_ok = parsed && addr == (uintptr_t)ptr;
    bool ok = died && kind_ok && addr_ok;
    if (!ok)
        fprintf(stderr, "%s: ptr %p: died=%d parsed=%d kind=\"%s\" (want %s\"%s\") addr=0x%lx\n"
                "  child stderr: %s\n",
                what, ptr, died, parsed, parsed ? got_kind : "", exact_kind ? "" : "~", kind,
                (unsigned long)addr, out);
    return ok;
}

/* Runs fn(arg) in a child with stderr captured into out; returns the wait
 * status (-1 when fork failed). */
static inline int hk_run_child(void (*fn)(void *), void *arg, char *out, size_t outsz) {
    int pipefd[2];
    if (pipe(pipefd) != 0) return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        close(pipefd[0]);
        dup2(pipefd[1], 2);
        fn(arg);
        _exit(0);
    }
    close(pipefd[1]);
    size_t len = 0;
    ssize_t n;
    while (len + 1 < outsz && (n = read(pipefd[0], out + len, outsz - 1 - len)) > 0) len += (size_t)n;
    out[len] = 0;
    close(pipefd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
}

#endif /* HK_WRONG_REPORT_H */
