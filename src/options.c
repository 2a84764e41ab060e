/* options.c: run-time options, read once from the environment.
 *
 * Owns: the one table of options. Each row gives the field, the variable
 * (HEAPKIT_<NAME>), the default and the help text, so they cannot drift
 * apart. Calls getenv only (no allocation), at start-up from _hk_init().
 * An unknown HEAPKIT_* variable gets a warning rather than silence.
 */
#include <stdlib.h>
#include <string.h>

#include "internal/internal.h"

hk_options_t _hk_options = {
    .decommit_delay_ms = 100, .chunk_cache = 16, .huge_cache_mb = 32, .thp = 1, .quarantine_mb = 16,
};

#define OPTIONS(X)                                                                          \
    X(decommit_delay_ms, "DECOMMIT_DELAY_MS", 100,                                          \
      "free memory stays committed this many ms before it is given back to the OS")         \
    X(chunk_cache, "CHUNK_CACHE", 16, "free 4 MiB chunks kept reserved for reuse")         \
    X(huge_cache_mb, "HUGE_CACHE_MB", 32, "MiB of freed huge blocks kept for reuse")      \
    X(thp, "THP", 1, "ask for transparent huge pages in huge blocks (0: never)")              \
    X(show_stats, "SHOW_STATS", 0, "print statistics to stderr at exit (1)")               \
    X(verbose, "VERBOSE", 0, "explain errors and warn about odd settings (1)")                 \
    X(report_json, "REPORT_JSON", 0, "print reports (statistics, leaks) as JSON (1)")          \
    X(stats_signal, "STATS_SIGNAL", 0,                                                     \
      "on this signal, write statistics to /tmp/heapkit-stats.<pid>.json")                    \
    X(leaks, "LEAKS", 0, "debug library: report blocks not freed at exit (1)")             \
    X(secure, "SECURE", 0, "secure mode: needs libheapkit-secure.so")                       \
    X(quarantine_mb, "QUARANTINE_MB", 16,                                                    \
      "debug library: MiB of freed blocks each thread holds back to catch use after free")       \
    X(guard_min, "GUARD_MIN", 0,                                                             \
      "debug library: blocks of this many bytes and up get a guard page (0: none)")

/* Options whose value is text: field, variable, help. */
#define TEXT_OPTIONS(X)                                                                     \
    X(debug, "DEBUG", "debug library: checks to run (all, or a list of: redzone,"          \
                      " quarantine, leaks, guard)")                                           \
    X(report_file, "REPORT_FILE", "write reports to this file instead of stderr (%p: pid)") \
    X(stack, "STACK", "call stacks: fp (frame pointers, fast) or unwind (DWARF, exact)")

typedef struct {
    long *field;
    const char *name;
    long def;
    const char *help;
} option_row_t;

#define ROW(f, n, d, h) {&_hk_options.f, "HEAPKIT_" n, d, h},
static const option_row_t rows[] = {OPTIONS(ROW)};
#undef ROW

typedef struct {
    const char **field;
    const char *name;
    const char *help;
} text_row_t;

#define ROW(f, n, h) {&_hk_options.f, "HEAPKIT_" n, h},
static const text_row_t text_rows[] = {TEXT_OPTIONS(ROW)};
#undef ROW

static bool known_option(const char *var, size_t len) {
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (strlen(rows[i].name) == len && strncmp(var, rows[i].name, len) == 0) return true;
    for (size_t i = 0; i < sizeof text_rows / sizeof text_rows[0]; i++)
        if (strlen(text_rows[i].name) == len && strncmp(var, text_rows[i].name, len) == 0)
            return true;
    return false;
}

extern char **environ;

void _hk_options_init(void) {
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        *rows[i].field = rows[i].def;
        const char *v = getenv(rows[i].name);
        if (v == NULL || *v == 0) continue;
        char *end;
        long x = strtol(v, &end, 10);
        if (*end != 0 || x < 0) {
            _hk_warn(true, "%s=%s is not a non-negative number; using %ld", rows[i].name, v,
                     rows[i].def);
            continue;
        }
        *rows[i].field = x;
    }
    /* Text options point into the environment, which outlives us. */
    for (size_t i = 0; i < sizeof text_rows / sizeof text_rows[0]; i++) {
        const char *v = getenv(text_rows[i].name);
        *text_rows[i].field = v && *v ? v : NULL;
    }
    /* Unknown HEAPKIT_ variables: probably a typo, say so. */
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, "HEAPKIT_", 8) != 0) continue;
        size_t len = strcspn(*e, "=");
        if (!known_option(*e, len)) _hk_warn(true, "unknown option %.*s (ignored)", (int)len, *e);
    }
    /* Options that only a variant of the library acts on. */
#if !HK_DEBUG_MODE
    if (_hk_options.debug || _hk_options.leaks)
        _hk_warn(true, "HEAPKIT_DEBUG and HEAPKIT_LEAKS need libheapkit-debug.so "
                       "(`heapkit run --debug` preloads it); ignored");
#endif
#if !HK_SECURE
    if (_hk_options.secure)
        _hk_warn(true, "HEAPKIT_SECURE needs libheapkit-secure.so "
                       "(`heapkit run --secure` preloads it); ignored");
#endif
}
