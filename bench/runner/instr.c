/* instr.c: instructions per malloc+free pair on the fast path, counted by
 * callgrind (exact and repeatable, unlike time on a shared machine).
 *
 * For each allocator and size, hkbench_micro runs N1 and then N2 pairs of
 * malloc(size); free(p) under `valgrind --tool=callgrind`. The difference
 * in instructions divided by N2 - N1 cancels process start-up, dynamic
 * loading, the allocator's initialisation and its first refills; the same
 * difference for the bare loop (--loop, no calls) is subtracted, so what
 * remains is the call sequence itself: PLT stub, malloc, free.
 *
 * When heapkit is among the allocators, its own API's pairs are counted the
 * same way: hk_malloc + hk_free (hkbench_micro_hk, the pair issue 2 asks
 * about), and hk_cache_alloc + hk_cache_free on a cache of objects of each
 * size (hkbench_micro_cache), for comparison with malloc.
 */
#define _GNU_SOURCE
#include "hkbench.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const int sizes[] = { 16, 64, 512 };
enum { NSIZES = sizeof sizes / sizeof sizes[0] };
static const long N1 = 100000, N2 = 300000;

int hkb_find_in_path(const char *prog, char *out, size_t cap) {
    const char *path = getenv("PATH");
    if (!path) path = "/usr/bin:/bin";
    while (*path) {
        size_t l = strcspn(path, ":");
        snprintf(out, cap, "%.*s/%s", (int)l, path, prog);
        if (l && access(out, X_OK) == 0) return 1;
        path += l + (path[l] == ':');
    }
    return 0;
}

/* Instructions of one run, from the callgrind output file; -1 on failure. */
static long long count(hkb_t *b, const char *valgrind, const char *program, const char *preload, long pairs,
                       int size, int loop, char *err, size_t errcap) {
    char out_file[PATH_MAX + 64], out_opt[PATH_MAX + 96], micro[PATH_MAX + 32], np[32], sz[32];
    snprintf(out_file, sizeof out_file, "%s/.callgrind.out", b->out_dir);
    snprintf(out_opt, sizeof out_opt, "--callgrind-out-file=%s", out_file);
    snprintf(micro, sizeof micro, "%s/%s", b->bin_dir, program);
    snprintf(np, sizeof np, "%ld", pairs);
    snprintf(sz, sizeof sz, "%d", size);
    char *argv[] = { (char *)valgrind, "--tool=callgrind", "-q", out_opt, "--cache-sim=no", "--branch-sim=no",
                     micro, "--pairs", np, "--size", sz, loop ? "--loop" : NULL, NULL };
    unlink(out_file);
    hkb_child_t c;
    if (hkb_spawn(argv, preload, 600, &c) != 0) {
        snprintf(err, errcap, "could not run valgrind: %s", strerror(errno));
        return -1;
    }
    int ok = c.exit_code == 0 && !c.signal && !c.timed_out;
    if (!ok)
        snprintf(err, errcap, "valgrind run failed (exit %d, signal %d): %.*s", c.exit_code, c.signal,
                 (int)strcspn(c.err, "\n"), c.err);
    hkb_child_free(&c);
    if (!ok) return -1;
    FILE *f = fopen(out_file, "r");
    if (!f) {
        snprintf(err, errcap, "callgrind wrote no output file");
        return -1;
    }
    long long ir = -1;
    char line[512];
    /* "summary: N" in the file's trailer ("totals: N" in some versions). */
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "summary:", 8) || !strncmp(line, "totals:", 7)) {
            ir = atoll(strchr(line, ':') + 1);
            break;
        }
    fclose(f);
    unlink(out_file);
    if (ir < 0) snprintf(err, errcap, "no instruction total in the callgrind output");
    return ir;
}

/* Counts one program at N1 and N2 pairs of `size` and fills in. */
static void measure(hkb_t *b, const char *valgrind, const char *program, const char *preload, const char *name,
                    const char *what, hkb_instr_t *in) {
    in->ir1 = count(b, valgrind, program, preload, N1, in->size, 0, in->error, sizeof in->error);
    in->ir2 = in->ir1 < 0 ? -1 : count(b, valgrind, program, preload, N2, in->size, 0, in->error, sizeof in->error);
    in->ok = in->ir1 >= 0 && in->ir2 >= 0;
    if (in->ok) {
        in->per_pair = (double)(in->ir2 - in->ir1 - (b->instr_loop2 - b->instr_loop1)) / (double)(N2 - N1);
        printf("instructions %-9s %4d B: %7.1f per %s pair\n", name, in->size, in->per_pair, what);
    } else {
        printf("instructions %-9s %4d B: FAILED: %s\n", name, in->size, in->error);
    }
    fflush(stdout);
}

int hkb_instr_run(hkb_t *b) {
    char valgrind[PATH_MAX];
    if (!hkb_find_in_path("valgrind", valgrind, sizeof valgrind)) {
        snprintf(b->instr_note, sizeof b->instr_note, "valgrind not found (apt-get install valgrind)");
        printf("skipping instruction counts: %s\n", b->instr_note);
        return 0;
    }
    char err[256];
    b->instr_loop1 = count(b, valgrind, "hkbench_micro", "", N1, 64, 1, err, sizeof err);
    b->instr_loop2 = count(b, valgrind, "hkbench_micro", "", N2, 64, 1, err, sizeof err);
    if (b->instr_loop1 < 0 || b->instr_loop2 < 0) {
        snprintf(b->instr_note, sizeof b->instr_note, "the bare loop could not be counted: %.180s", err);
        printf("skipping instruction counts: %s\n", b->instr_note);
        return 0;
    }
    double loop = (double)(b->instr_loop2 - b->instr_loop1) / (double)(N2 - N1);
    snprintf(b->instr_note, sizeof b->instr_note,
             "callgrind Ir, (I(%ld) - I(%ld)) / %ld pairs, minus the bare loop (%.2f per iteration)", N2, N1,
             N2 - N1, loop);
    b->instr = calloc((size_t)b->nalloc * NSIZES, sizeof *b->instr);
    if (!b->instr) return -1;
    for (int a = 0; a < b->nalloc; a++) {
        if (!b->alloc[a].ok) continue;
        for (int s = 0; s < NSIZES; s++) {
            hkb_instr_t *in = &b->instr[b->ninstr++];
            in->a = a;
            in->size = sizes[s];
            in->n1 = N1;
            in->n2 = N2;
            measure(b, valgrind, "hkbench_micro", b->alloc[a].run_path, b->alloc[a].name, "malloc+free", in);
        }
    }
    /* heapkit's own pairs, beside the allocators' malloc+free. Each program
     * loads its own libheapkit (rpath), as the workload programs of the
     * APIs do. */
    static const struct {
        const char *api, *program, *what;
    } apis[] = {
        { "hk_malloc", "hkbench_micro_hk", "hk_malloc+hk_free" },
        { "hk_cache", "hkbench_micro_cache", "hk_cache_alloc+hk_cache_free" },
    };
    int heapkit = 0;
    for (int a = 0; a < b->nalloc; a++) heapkit |= b->alloc[a].ok && !strcmp(b->alloc[a].name, "heapkit");
    for (size_t k = 0; heapkit && k < sizeof apis / sizeof apis[0]; k++) {
        char path[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/%s", b->bin_dir, apis[k].program);
        if (access(path, X_OK) != 0) {
            printf("instructions %s: not counted (%s not built)\n", apis[k].api, path);
            continue;
        }
        for (int s = 0; s < NSIZES && b->ninstr_api < HKB_INSTR_API_MAX; s++) {
            hkb_instr_t *in = &b->instr_api[b->ninstr_api++];
            in->a = -1;
            in->api = apis[k].api;
            in->size = sizes[s];
            in->n1 = N1;
            in->n2 = N2;
            measure(b, valgrind, apis[k].program, "", apis[k].api, apis[k].what, in);
        }
    }
    return 0;
}
