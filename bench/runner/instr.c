/* instr.c: instructions per malloc+free pair on the fast path, counted by
 * callgrind (exact and repeatable, unlike time on a shared machine).
 *
 * For each allocator and size, hkbench_micro runs N1 and then N2 pairs of
 * malloc(size); free(p) under `valgrind --tool=callgrind`. The difference
 * in instructions divided by N2 - N1 cancels process start-up, dynamic
 * loading, the allocator's initialisation and its first refills; the same
 * difference for the bare loop (--loop, no calls) is subtracted, so what
 * remains is the call sequence itself: PLT stub, malloc, free.
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
static long long count(hkb_t *b, const char *valgrind, const char *preload, long pairs, int size, int loop,
                       char *err, size_t errcap) {
    char out_file[PATH_MAX + 64], out_opt[PATH_MAX + 96], micro[PATH_MAX + 32], np[32], sz[32];
    snprintf(out_file, sizeof out_file, "%s/.callgrind.out", b->out_dir);
    snprintf(out_opt, sizeof out_opt, "--callgrind-out-file=%s", out_file);
    snprintf(micro, sizeof micro, "%s/hkbench_micro", b->bin_dir);
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

int hkb_instr_run(hkb_t *b) {
    char valgrind[PATH_MAX];
    if (!hkb_find_in_path("valgrind", valgrind, sizeof valgrind)) {
        snprintf(b->instr_note, sizeof b->instr_note, "valgrind not found (apt-get install valgrind)");
        printf("skipping instruction counts: %s\n", b->instr_note);
        return 0;
    }
    char err[256];
    b->instr_loop1 = count(b, valgrind, "", N1, 64, 1, err, sizeof err);
    b->instr_loop2 = count(b, valgrind, "", N2, 64, 1, err, sizeof err);
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
            const char *lib = b->alloc[a].run_path;
            in->ir1 = count(b, valgrind, lib, N1, sizes[s], 0, in->error, sizeof in->error);
            in->ir2 = in->ir1 < 0 ? -1 : count(b, valgrind, lib, N2, sizes[s], 0, in->error, sizeof in->error);
            in->ok = in->ir1 >= 0 && in->ir2 >= 0;
            if (in->ok) {
                in->per_pair = (double)(in->ir2 - in->ir1 - (b->instr_loop2 - b->instr_loop1)) / (double)(N2 - N1);
                printf("instructions %-9s %4d B: %7.1f per malloc+free pair\n", b->alloc[a].name, sizes[s],
                       in->per_pair);
            } else {
                printf("instructions %-9s %4d B: FAILED: %s\n", b->alloc[a].name, sizes[s], in->error);
            }
            fflush(stdout);
        }
    }
    return 0;
}
