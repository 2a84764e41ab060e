/* error.c: reports of misuse and fatal errors, and warnings.
 *
 * Owns: the text of every report. Calls: write(2) and abort() only.
 * Printing must not allocate (the heap may be the thing that is broken), so
 * messages are built in a fixed buffer with a hand-written hex formatter.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal/internal.h"

typedef struct { char buf[512]; size_t len; } line_t;

static void put(line_t *l, const char *s) {
    while (*s && l->len < sizeof l->buf - 2) l->buf[l->len++] = *s++;
}

static void put_hex(line_t *l, uintptr_t v) {
    char tmp[2 + 16 + 1];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    put(l, "0x");
    while (n--) {
        char c[2] = {tmp[n], 0};
        put(l, c);
    }
}

static void emit(line_t *l) {
    l->buf[l->len++] = '\n';
    size_t off = 0;
    while (off < l->len) {
        ssize_t w = write(2, l->buf + off, l->len - off);
        if (w <= 0) break;
        off += (size_t)w;
    }
}

void _hk_fatal(const char *func, const char *what, const void *addr) {
    line_t l = {.len = 0};
    put(&l, "heapkit: ");
    put(&l, func);
    put(&l, "(): ");
    put(&l, what);
    put(&l, " ");
    put_hex(&l, (uintptr_t)addr);
    emit(&l);
    if (_hk_options.verbose) {
        line_t e = {.len = 0};
        put(&e, "heapkit: the pointer was not a live block of any heapkit heap "
                "(freed already, never allocated, or moved past its start); aborting");
        emit(&e);
    }
    abort();
}

#if HK_SECURE
void _hk_secure_corrupt(const void *link) {
    line_t l = {.len = 0};
    put(&l, "heapkit: free list corrupted ");
    put_hex(&l, (uintptr_t)link);
    emit(&l);
    if (_hk_options.verbose) {
        line_t e = {.len = 0};
        put(&e, "heapkit: the first word of that free block does not decode to a free block "
                "of the same slab or heap (written after free, or by an overflow); aborting");
        emit(&e);
    }
    abort();
}
#endif

void _hk_assert_fail(const char *cond, const char *file, int line) {
    char buf[256];
    /* snprintf of integers and strings does not allocate in glibc. */
    int n = snprintf(buf, sizeof buf, "heapkit: internal assertion failed: %s (%s:%d)\n", cond,
                     file, line);
    if (n > 0) {
        ssize_t w = write(2, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf);
        (void)w;
    }
    abort();
}

void _hk_warn(bool always, const char *fmt, ...) {
    if (!always && !_hk_options.verbose) return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n > sizeof buf - 2) n = (int)sizeof buf - 2;
    buf[n++] = '\n';
    ssize_t w = write(2, "heapkit: ", 9);
    w = write(2, buf, (size_t)n);
    (void)w;
}
