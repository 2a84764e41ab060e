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
    .decommit_delay_ms = 100, .chunk_cache = 16, .huge_cache_mb = 32,
};

#define OPTIONS(X)                                                                          \
    X(decommit_delay_ms, "DECOMMIT_DELAY_MS", 100,                                          \
      "free memory stays committed this many ms before it is given back to the OS")         \
    X(chunk_cache, "CHUNK_CACHE", 16, "free 4 MiB chunks kept reserved for reuse")         \
    X(huge_cache_mb, "HUGE_CACHE_MB", 32, "MiB of freed huge blocks kept for reuse")      \
    X(show_stats, "SHOW_STATS", 0, "print statistics to stderr at exit (1)")               \
    X(verbose, "VERBOSE", 0, "explain errors and warn about odd settings (1)")

typedef struct {
    long *field;
    const char *name;
    long def;
    const char *help;
} option_row_t;

#define ROW(f, n, d, h) {&_hk_options.f, "HEAPKIT_" n, d, h},
static const option_row_t rows[] = {OPTIONS(ROW)};
#undef ROW

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
    /* Unknown HEAPKIT_ variables: probably a typo, say so. */
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, "HEAPKIT_", 8) != 0) continue;
        size_t len = strcspn(*e, "=");
        bool known = false;
        for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
            if (strlen(rows[i].name) == len && strncmp(*e, rows[i].name, len) == 0) known = true;
        if (!known) _hk_warn(true, "unknown option %.*s (ignored)", (int)len, *e);
    }
}
