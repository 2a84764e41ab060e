/* fuzz_api_main.c: the standalone driver of the fuzz target, for builds
 * without libFuzzer (gcc, make check).
 *
 * Owns: generating inputs from a seeded PRNG and feeding them to
 * LLVMFuzzerTestOneInput, replaying input files, writing a seed corpus,
 * and telling how to reproduce a failure.
 *
 *   fuzz_api [--seconds S] [--iters N] [--seed X] [--max-len N] [--quiet]
 *   fuzz_api FILE|DIR...          replay files (corpus entries, crashes)
 *   fuzz_api --write-corpus DIR --iters N [--seed X]
 *
 * Input i of a random run is generated from the seed X + i, so
 * `--seed <X + i> --iters 1` replays it alone; on a mismatch the driver
 * prints the seed and saves the input as fuzz-failure-<seed>.bin in the
 * current directory (a file to replay, or to minimize with libFuzzer). The
 * run stops at whichever of --seconds and --iters comes first; the time
 * only bounds the run, nothing is asserted about it.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fuzz_api.h"

#define MAX_LEN_LIMIT (1 << 20)

static uint8_t *cur_input;
static size_t cur_len;
static bool cur_random;
static uint64_t cur_seed, cur_iter;
static const char *cur_file;

static uint64_t splitmix(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static void on_failure(void) {
    if (!cur_random) {
        fprintf(stderr, "heapkit fuzz: the failing input is the file %s\n", cur_file);
        return;
    }
    char name[64];
    snprintf(name, sizeof name, "fuzz-failure-%016" PRIx64 ".bin", cur_seed);
    FILE *f = fopen(name, "wb");
    bool saved = f && fwrite(cur_input, 1, cur_len, f) == cur_len;
    if (f) fclose(f);
    fprintf(stderr,
            "heapkit fuzz: failing input: iteration %" PRIu64 ", seed 0x%016" PRIx64 ", %zu bytes\n"
            "  replay: fuzz_api --seed 0x%016" PRIx64 " --iters 1\n",
            cur_iter, cur_seed, cur_len, cur_seed);
    if (saved) fprintf(stderr, "  saved as %s (replay: fuzz_api %s)\n", name, name);
}

/* The input of seed `seed`: its length, then its bytes, from xorshift. */
static size_t generate(uint64_t seed, uint8_t *buf, size_t max_len) {
    uint64_t s = splitmix(seed) | 1;
    size_t len = (size_t)(splitmix(s) % (max_len + 1));
    /* Short inputs too: a quarter of them at most max_len / 16. */
    if ((s & 3) == 0) len /= 16;
    for (size_t i = 0; i < len; i += 8) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        size_t n = len - i < 8 ? len - i : 8;
        memcpy(buf + i, &s, n);
    }
    return len;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int replay_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fuzz_api: cannot open %s: %s\n", path, strerror(errno));
        return 1;
    }
    static uint8_t buf[MAX_LEN_LIMIT];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    cur_random = false;
    cur_file = path;
    LLVMFuzzerTestOneInput(buf, n);
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Replays a file, or every regular file of a directory in name order;
 * returns the number replayed, or -1 on an error. */
static long replay_path(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "fuzz_api: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) return replay_file(path) ? -1 : 1;
    DIR *d = opendir(path);
    if (!d) return -1;
    char **names = NULL;
    size_t n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            names = realloc(names, cap * sizeof *names);
            if (!names) return -1;
        }
        if (asprintf(&names[n], "%s/%s", path, e->d_name) < 0) return -1;
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    long done = 0;
    for (size_t i = 0; i < n; i++) {
        if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
            if (replay_file(names[i])) return -1;
            done++;
        }
        free(names[i]);
    }
    free(names);
    return done;
}

static void usage(void) {
    fprintf(stderr,
            "usage: fuzz_api [--seconds S] [--iters N] [--seed X] [--max-len N] [--quiet]\n"
            "       fuzz_api FILE|DIR...                  replay inputs\n"
            "       fuzz_api --write-corpus DIR --iters N [--seed X] [--max-len N]\n");
    exit(2);
}

int main(int argc, char **argv) {
    double seconds = 0;
    uint64_t iters = 0, seed = 1;
    size_t max_len = 4096;
    bool quiet = false;
    const char *corpus_dir = NULL;
    int nfiles = 0;
    char *files[argc > 1 ? argc : 1];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (!strcmp(a, "--seconds") && has) seconds = strtod(argv[++i], NULL);
        else if (!strcmp(a, "--iters") && has) iters = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(a, "--seed") && has) seed = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(a, "--max-len") && has) max_len = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(a, "--write-corpus") && has) corpus_dir = argv[++i];
        else if (!strcmp(a, "--quiet")) quiet = true;
        else if (a[0] == '-') usage();
        else files[nfiles++] = argv[i];
    }
    if (max_len > MAX_LEN_LIMIT) max_len = MAX_LEN_LIMIT;
    fz_set_failure_hook(on_failure);

    if (nfiles) {
        long total = 0;
        for (int i = 0; i < nfiles; i++) {
            long n = replay_path(files[i]);
            if (n < 0) return 1;
            total += n;
        }
        if (total == 0) {
            fprintf(stderr, "fuzz_api: no input file found\n");
            return 1;
        }
        printf("fuzz_api: replayed %ld inputs, %" PRIu64 " operations, no mismatch\n", total, fz_total_ops());
        return 0;
    }

    static uint8_t buf[MAX_LEN_LIMIT];
    if (corpus_dir) {
        if (!iters) usage();
        for (uint64_t i = 0; i < iters; i++) {
            uint64_t s = seed + i;
            size_t n = generate(s, buf, max_len);
            char path[4096];
            snprintf(path, sizeof path, "%s/seed-%016" PRIx64, corpus_dir, s);
            FILE *f = fopen(path, "wb");
            if (!f || fwrite(buf, 1, n, f) != n) {
                fprintf(stderr, "fuzz_api: cannot write %s\n", path);
                return 1;
            }
            fclose(f);
        }
        printf("fuzz_api: wrote %" PRIu64 " inputs to %s\n", iters, corpus_dir);
        return 0;
    }

    if (!seconds && !iters) iters = 1000;
    double start = now_s();
    uint64_t i = 0;
    cur_random = true;
    cur_input = buf;
    for (; !iters || i < iters; i++) {
        if (seconds && (i & 7) == 0 && now_s() - start >= seconds) break;
        cur_iter = i;
        cur_seed = seed + i;
        cur_len = generate(cur_seed, buf, max_len);
        LLVMFuzzerTestOneInput(buf, cur_len);
    }
    printf("fuzz_api: %" PRIu64 " inputs (seeds from --seed 0x%" PRIx64 "), %" PRIu64
           " operations in %.1f s, no mismatch\n",
           i, seed, fz_total_ops(), now_s() - start);
    if (!quiet) fz_print_counts(stdout);
    if (!fz_cache_enabled()) printf("fuzz_api: hk_cache_* not covered (not in this build)\n");
    return i ? 0 : 1;
}
