/* util.c: the helpers of tool.h.
 *
 * Owns: error printing, reading a file whole, the growing string, PID
 * parsing and /proc look-ups shared by map and stats, JSON string output
 * and human-readable sizes. Allocation failure ends the program (a
 * diagnostic tool has nothing better to do).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tool.h"

void hkt_err(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("heapkit: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int hkt_usage(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "heapkit %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'heapkit %s --help'.\n", cmd);
    va_end(ap);
    return HKT_EXIT_USAGE;
}

void *hkt_xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        hkt_err("out of memory");
        exit(HKT_EXIT_FAIL);
    }
    return p;
}

void *hkt_xrealloc(void *p, size_t n) {
    p = realloc(p, n ? n : 1);
    if (p == NULL) {
        hkt_err("out of memory");
        exit(HKT_EXIT_FAIL);
    }
    return p;
}

char *hkt_xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    return memcpy(hkt_xmalloc(n), s, n);
}

char *hkt_read_file(const char *path, size_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    size_t cap = 8192, n = 0;
    char *buf = hkt_xmalloc(cap);
    for (;;) {
        if (cap - n < 4096) buf = hkt_xrealloc(buf, cap *= 2);
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            close(fd);
            errno = e;
            return NULL;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

void hkt_buf_add(hkt_buf_t *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        b->s = hkt_xrealloc(b->s, cap);
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

void hkt_buf_printf(hkt_buf_t *b, const char *fmt, ...) {
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof small) {
        hkt_buf_add(b, small, (size_t)n);
        return;
    }
    char *big = hkt_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    hkt_buf_add(b, big, (size_t)n);
    free(big);
}

void hkt_buf_free(hkt_buf_t *b) {
    free(b->s);
    b->s = NULL;
    b->len = b->cap = 0;
}

bool hkt_parse_pid(const char *s, pid_t *out) {
    if (s == NULL || *s == 0) return false;
    long long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return false;
        v = v * 10 + (*p - '0');
        if (v > INT32_MAX) return false;
    }
    if (v <= 0) return false;
    *out = (pid_t)v;
    return true;
}

int hkt_proc_exists(pid_t pid) {
    char path[64];
    struct stat st;
    snprintf(path, sizeof path, "/proc/%d", (int)pid);
    if (stat(path, &st) == 0) return 0;
    return errno == ENOENT ? ESRCH : errno;
}

void hkt_proc_comm(pid_t pid, char *buf, size_t size) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    snprintf(buf, size, "?");
    char *stat = hkt_read_file(path, NULL);
    if (stat == NULL) return;
    /* The name sits between the first '(' and the last ')': it may hold
     * spaces and parentheses itself. */
    char *open = strchr(stat, '('), *close = strrchr(stat, ')');
    if (open && close && close > open)
        snprintf(buf, size, "%.*s", (int)(close - open - 1), open + 1);
    free(stat);
}

/* Length of the UTF-8 sequence at s (1-4), or 0 when it is not valid. */
static size_t utf8_len(const unsigned char *s) {
    unsigned c = s[0];
    size_t n;
    unsigned min;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) n = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef) n = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4) n = 4, min = 0x10000;
    else return 0;
    unsigned v = c & (0x7f >> n);
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
    return n;
}

void hkt_json_string(FILE *f, const char *str) {
    const unsigned char *s = (const unsigned char *)str;
    fputc('"', f);
    while (*s) {
        unsigned c = *s;
        if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc((int)c, f);
            s++;
        } else if (c < 0x20) {
            if (c == '\n') fputs("\\n", f);
            else if (c == '\t') fputs("\\t", f);
            else fprintf(f, "\\u%04x", c);
            s++;
        } else {
            size_t n = utf8_len(s);
            if (n == 0) {
                fputs("\\ufffd", f);
                s++;
            } else {
                fwrite(s, 1, n, f);
                s += n;
            }
        }
    }
    fputc('"', f);
}

const char *hkt_human(unsigned long long bytes, char *buf, size_t size) {
    static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)bytes;
    unsigned u = 0;
    while (v >= 1024 && u + 1 < sizeof unit / sizeof unit[0]) {
        v /= 1024;
        u++;
    }
    if (u == 0) snprintf(buf, size, "%llu B", bytes);
    else snprintf(buf, size, "%.1f %s", v, unit[u]);
    return buf;
}

int hkt_opt_error(const char *cmd, int c, char **argv) {
    const char *arg = argv[optind - 1];
    if (c == ':') return hkt_usage(cmd, "option '%s' needs an argument", arg);
    const char *eq = strchr(arg, '=');
    if (optopt && strncmp(arg, "--", 2) == 0 && eq)
        return hkt_usage(cmd, "option '%.*s' takes no argument", (int)(eq - arg), arg);
    if (optopt && strncmp(arg, "--", 2) != 0) return hkt_usage(cmd, "unknown option '-%c'", optopt);
    return hkt_usage(cmd, "unknown or ambiguous option '%s'", arg);
}
