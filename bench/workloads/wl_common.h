/* wl_common.h: what every workload program shares. It owns the command line
 * (--scale, --threads, --seed, --mode), the seeded random numbers, the
 * bookkeeping of the bytes a workload holds live, memory samples, block
 * tagging (to catch an allocator that hands out overlapping or corrupted
 * blocks) and the closing "HKBENCH ..." line that the runner parses.
 *
 * Workloads allocate with the standard malloc family only, so that any
 * allocator can be put underneath them with LD_PRELOAD. Nothing here
 * allocates on the measured paths: /proc files are read with open/read
 * into stack buffers.
 *
 * Threading: each thread has its own slot of counters, written only by that
 * thread with plain (relaxed, non-locked) stores; the main thread sums them.
 */
#ifndef WL_COMMON_H
#define WL_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Not every workload uses every helper below. */
#pragma GCC diagnostic ignored "-Wunused-function"

/* ---- Options ------------------------------------------------------------ */

typedef struct wl_opts {
    double scale;      /* work multiplier: 1.0 is the full benchmark size */
    int threads;       /* worker threads (each workload says how it uses them) */
    uint64_t seed;     /* base seed; every thread derives its own from it */
    const char *mode;  /* workload-specific variant, NULL when not given */
} wl_opts_t;

static const char *wl_name = "workload";

static void wl_usage(const char *modes) {
    fprintf(stderr,
            "usage: %s [--scale S] [--threads N] [--seed X]%s%s%s\n"
            "  --scale S    work multiplier (default 1.0)\n"
            "  --threads N  worker threads (default: online CPUs)\n"
            "  --seed X     random seed (default fixed, so runs repeat)\n",
            wl_name, modes ? " [--mode " : "", modes ? modes : "", modes ? "]" : "");
}

static int wl_nproc(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* modes: "a|b|c" or NULL when the workload has none; the first is the default. */
static wl_opts_t wl_parse(int argc, char **argv, const char *name, const char *modes) {
    wl_opts_t o = { 1.0, wl_nproc(), 0x5EEDB10C5EEDULL, NULL };
    wl_name = name;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            wl_usage(modes);
            exit(0);
        } else if (!strcmp(a, "--scale") && v) {
            o.scale = strtod(v, NULL);
            i++;
        } else if (!strcmp(a, "--threads") && v) {
            o.threads = atoi(v);
            i++;
        } else if (!strcmp(a, "--seed") && v) {
            o.seed = strtoull(v, NULL, 0);
            i++;
        } else if (!strcmp(a, "--mode") && v && modes) {
            o.mode = v;
            i++;
        } else {
            fprintf(stderr, "%s: unknown or incomplete option '%s'\n", name, a);
            wl_usage(modes);
            exit(2);
        }
    }
    if (!(o.scale > 0) || o.scale > 1000) {
        fprintf(stderr, "%s: --scale must be in (0, 1000]\n", name);
        exit(2);
    }
    if (o.threads < 1 || o.threads > 256) {
        fprintf(stderr, "%s: --threads must be in [1, 256]\n", name);
        exit(2);
    }
    if (modes) {
        /* Accept only a listed mode: a typo must not silently run another. */
        size_t first = strcspn(modes, "|");
        static char deflt[32];
        if (!o.mode) {
            snprintf(deflt, sizeof deflt, "%.*s", (int)first, modes);
            o.mode = deflt;
        }
        size_t len = strlen(o.mode);
        const char *m = modes;
        int ok = 0;
        while (*m) {
            size_t l = strcspn(m, "|");
            if (l == len && !strncmp(m, o.mode, l)) ok = 1;
            m += l + (m[l] == '|');
        }
        if (!ok) {
            fprintf(stderr, "%s: unknown mode '%s' (one of %s)\n", name, o.mode, modes);
            exit(2);
        }
    }
    return o;
}

/* base * scale, at least `min` so tiny scales still exercise every phase. */
static inline uint64_t wl_scaled(const wl_opts_t *o, double base, uint64_t min) {
    double v = base * o->scale;
    return v < (double)min ? min : (uint64_t)v;
}

/* ---- Random numbers: splitmix64 to seed, xorshift64* to draw ------------- */

typedef struct { uint64_t s; } wl_rng_t;

static inline wl_rng_t wl_rng(uint64_t seed, uint64_t stream) {
    uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (stream + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    wl_rng_t r = { z ? z : 1 };
    return r;
}
static inline uint64_t wl_next(wl_rng_t *r) {
    uint64_t x = r->s;
    x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1DULL;
}
/* Uniform in [0, n); the modulo bias is irrelevant at these n. */
static inline uint64_t wl_below(wl_rng_t *r, uint64_t n) {
    return n ? (wl_next(r) >> 11) % n : 0;
}
/* Uniform in [lo, hi]. */
static inline size_t wl_range(wl_rng_t *r, size_t lo, size_t hi) {
    return lo + (size_t)wl_below(r, (uint64_t)(hi - lo) + 1);
}
/* Log-uniform in [lo, hi]: as many blocks in 8..16 as in 512K..1M, the shape
 * of real programs (many small blocks, a few big ones). */
static inline size_t wl_logrange(wl_rng_t *r, size_t lo, size_t hi) {
    double u = (double)(wl_next(r) >> 11) / 9007199254740992.0; /* [0,1) */
    double l = __builtin_log((double)lo), h = __builtin_log((double)hi + 1);
    size_t v = (size_t)__builtin_exp(l + u * (h - l));
    return v < lo ? lo : v > hi ? hi : v;
}

/* ---- Failure ------------------------------------------------------------ */

/* A workload that cannot go on says why on the HKBENCH channel (so the
 * runner records the reason) and exits 3. */
__attribute__((noreturn, format(printf, 1, 2)))
static void wl_fail(const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fflush(stdout);
    fprintf(stdout, "HKBENCH error=\"%s: %s\"\n", wl_name, msg);
    fprintf(stderr, "%s: %s\n", wl_name, msg);
    fflush(stdout);
    _exit(3);
}

static inline void *wl_malloc(size_t n) {
    void *p = malloc(n);
    if (!p) wl_fail("malloc(%zu) returned NULL", n);
    return p;
}

/* ---- Block tags --------------------------------------------------------- */
/* Every block carries a tag derived from its id in its first and last
 * bytes; it is checked just before the block is freed. A mismatch means
 * the allocator gave the same memory out twice or something scribbled on
 * it, and the workload stops with an error instead of timing garbage. */

static inline uint64_t wl_tagval(uint64_t id) { return id * 0x9E3779B97F4A7C15ULL ^ 0xA5A5A5A5A5A5A5A5ULL; }

static inline void wl_tag(void *p, size_t n, uint64_t id) {
    uint64_t t = wl_tagval(id);
    unsigned char *b = (unsigned char *)p;
    if (n >= 16) {
        memcpy(b, &t, 8);
        memcpy(b + n - 8, &t, 8);
    } else {
        for (size_t i = 0; i < n; i++) b[i] = (unsigned char)(t >> (8 * (i & 7)));
    }
}

static inline void wl_check(const void *p, size_t n, uint64_t id) {
    uint64_t t = wl_tagval(id), a, z;
    const unsigned char *b = (const unsigned char *)p;
    if (n >= 16) {
        memcpy(&a, b, 8);
        memcpy(&z, b + n - 8, 8);
        if (a != t || z != t)
            wl_fail("corrupted block %p (size %zu): tag mismatch", (void *)p, n);
    } else {
        for (size_t i = 0; i < n; i++)
            if (b[i] != (unsigned char)(t >> (8 * (i & 7))))
                wl_fail("corrupted block %p (size %zu): tag mismatch", (void *)p, n);
    }
}

/* ---- Live bytes --------------------------------------------------------- */
/* live_peak is the most bytes (sizes asked for) the workload itself held at
 * once: the floor no allocator can beat, used for efficiency = live/RSS.
 * With one thread it is exact (updated on every change). With several, the
 * exact peak of the sum would need a shared atomic counter on every malloc,
 * which would cost more than some of the allocators being measured; so it
 * is the larger of (a) the sum of all counters sampled by the main thread
 * every millisecond and, in workloads where every thread frees only its
 * own blocks (wl_own_frees), (b) the largest exact peak of one thread.
 * Both are lower bounds of the true peak, so efficiency is never
 * overstated; the threaded workloads keep steady live sets, so the bound
 * is close. (Where blocks cross threads, one thread's counter is not a
 * live set: a producer's only grows.) */

#define WL_MAX_SLOTS 256

typedef struct wl_slot {
    _Atomic int64_t live;  /* bytes allocated minus bytes freed by this thread */
    int64_t peak;          /* the highest `live` this slot reached */
    char pad[128 - 16];    /* one slot per two cache lines: no false sharing here */
} wl_slot_t;

static wl_slot_t wl_slots[WL_MAX_SLOTS] __attribute__((aligned(128)));
static int64_t wl_sampled_peak;
static int wl_multi;      /* set once two threads may change the counters */
static int wl_own_frees;  /* set by workloads whose threads free only their own blocks */

static inline void wl_live(int slot, int64_t delta) {
    wl_slot_t *s = &wl_slots[slot];
    /* Owner-only writer: load + store, no locked instruction on the hot path. */
    int64_t v = atomic_load_explicit(&s->live, memory_order_relaxed) + delta;
    atomic_store_explicit(&s->live, v, memory_order_relaxed);
    if (v > s->peak) s->peak = v;
}

static int64_t wl_live_total(void) {
    int64_t t = 0;
    for (int i = 0; i < WL_MAX_SLOTS; i++) t += atomic_load_explicit(&wl_slots[i].live, memory_order_relaxed);
    return t;
}

/* See "Live bytes" above for why this is a (close) lower bound. */
static int64_t wl_live_peak(void) {
    if (!wl_multi) return wl_slots[0].peak;
    int64_t best = wl_live_total();
    if (wl_sampled_peak > best) best = wl_sampled_peak;
    if (wl_own_frees)
        for (int i = 0; i < WL_MAX_SLOTS; i++)
            if (wl_slots[i].peak > best) best = wl_slots[i].peak;
    return best;
}

/* ---- Memory readings ---------------------------------------------------- */

static long wl_read_file(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    long len = 0;
    ssize_t n;
    while (len < (long)cap - 1 && (n = read(fd, buf + len, cap - 1 - (size_t)len)) > 0) len += n;
    close(fd);
    buf[len > 0 ? len : 0] = 0;
    return len;
}

/* Resident bytes now: the second field of /proc/self/statm, in pages. */
static long long wl_rss(void) {
    char buf[128];
    if (wl_read_file("/proc/self/statm", buf, sizeof buf) <= 0) return -1;
    const char *p = strchr(buf, ' ');
    return p ? strtoll(p + 1, NULL, 10) * sysconf(_SC_PAGESIZE) : -1;
}

/* VmHWM (peak resident set of this process image) in KiB. The runner takes
 * peak RSS from wait4(); this is printed alongside as a cross-check. */
static long wl_hwm_kib(void) {
    char buf[4096];
    if (wl_read_file("/proc/self/status", buf, sizeof buf) <= 0) return -1;
    const char *p = strstr(buf, "VmHWM:");
    return p ? strtol(p + 6, NULL, 10) : -1;
}

static double wl_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}
static double wl_t0;

/* One point of the memory-over-time chart. `step` is the workload's own
 * progress counter, so allocators can be compared at the same point of the
 * work even when they run at different speeds. */
static void wl_sample(long step) {
    printf("HKBENCH sample step=%ld t_ms=%.1f rss=%lld live=%lld\n", step,
           wl_now_ms() - wl_t0, wl_rss(), (long long)wl_live_total());
}

/* ---- Threads ------------------------------------------------------------ */

typedef struct wl_thread_arg {
    int index;       /* 0..n-1: the thread's slot and random stream */
    void *shared;    /* the workload's own shared state */
} wl_thread_arg_t;

static _Atomic int wl_running;

typedef struct {
    void *(*fn)(wl_thread_arg_t *);
    wl_thread_arg_t arg;
} wl_start_t;

static void *wl_trampoline(void *p) {
    wl_start_t *s = (wl_start_t *)p;
    s->fn(&s->arg);
    atomic_fetch_sub(&wl_running, 1);
    return NULL;
}

/* Samples the live total while threads run: a sleeping main thread costs
 * the workers nothing on a 2-core machine. */
static void wl_watch_until_done(void) {
    while (atomic_load(&wl_running) > 0) {
        int64_t t = wl_live_total();
        if (t > wl_sampled_peak) wl_sampled_peak = t;
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }
}

/* Runs fn on n threads (slots first_slot..first_slot+n-1) and waits. */
static void wl_run_threads_at(int n, int first_slot, void *(*fn)(wl_thread_arg_t *), void *shared, int watch) {
    pthread_t tid[WL_MAX_SLOTS];
    wl_start_t st[WL_MAX_SLOTS];
    if (n > WL_MAX_SLOTS) n = WL_MAX_SLOTS;
    if (n > 1 || first_slot > 0) wl_multi = 1;
    atomic_store(&wl_running, n);
    for (int i = 0; i < n; i++) {
        st[i].fn = fn;
        st[i].arg.index = (first_slot + i) % WL_MAX_SLOTS;
        st[i].arg.shared = shared;
        int e = pthread_create(&tid[i], NULL, wl_trampoline, &st[i]);
        if (e) wl_fail("pthread_create: %s", strerror(e));
    }
    if (watch) wl_watch_until_done();
    for (int i = 0; i < n; i++) pthread_join(tid[i], NULL);
    int64_t t = wl_live_total();
    if (t > wl_sampled_peak) wl_sampled_peak = t;
}
static void wl_run_threads(int n, void *(*fn)(wl_thread_arg_t *), void *shared) {
    wl_run_threads_at(n, 0, fn, shared, 1);
}

/* ---- Start and finish --------------------------------------------------- */

/* Which shared object serves malloc in this process: the runner checks it so
 * that a preload that did not take (a .so without malloc, say) cannot pass
 * off glibc's numbers as another allocator's. */
static const char *wl_malloc_from(void) {
    void *f = dlsym(RTLD_DEFAULT, "malloc");
    Dl_info di;
    if (f && dladdr(f, &di) && di.dli_fname) return di.dli_fname;
    return "unknown";
}

static void wl_start(void) { wl_t0 = wl_now_ms(); }

/* The machine-readable result. ops: the workload's unit of work (mostly
 * malloc+free pairs); check: a checksum that keeps the work observable. */
static void wl_finish(const wl_opts_t *o, uint64_t ops, uint64_t check) {
    printf("HKBENCH ops=%llu live_peak=%lld hwm_kib=%ld threads=%d scale=%g "
           "t_ms=%.1f check=%llx malloc_from=%s\n",
           (unsigned long long)ops, (long long)wl_live_peak(), wl_hwm_kib(), o->threads, o->scale,
           wl_now_ms() - wl_t0, (unsigned long long)check, wl_malloc_from());
    fflush(stdout);
}

/* A named part of the work and its time, for workloads that report their
 * phases apart (the tree's build, move, walk and teardown). Printed before
 * the result line; the runner takes medians of each part. */
static void wl_part(const char *name, double ms) {
    printf("HKBENCH part name=%s ms=%.4f\n", name, ms);
}

/* A line of facts about the run for the report (which GLib, say). */
static void wl_info(const char *text) {
    printf("HKBENCH info text=\"%s\"\n", text);
}

/* Sums the per-thread counters of a run and finishes it (wl_finish). */
static void wl_finish_threads(const wl_opts_t *o, const uint64_t *ops, const uint64_t *check) {
    uint64_t total = 0, sum = 0;
    for (int i = 0; i < o->threads; i++) total += ops[i], sum += check[i];
    wl_finish(o, total, sum);
}

#endif /* WL_COMMON_H */
