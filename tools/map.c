/* map.c: `heapkit map`, a process's memory laid out as a systems course
 * draws it.
 *
 * Owns: reading /proc/PID/smaps (or maps when smaps is not readable),
 * smaps_rollup, stat and the threads' stack pointers, or a saved smaps
 * file (--smaps: a bug report's, another machine's, the tests'); sorting every
 * mapping into one kind (below); the per-map table, the totals per kind,
 * the grand total; the text and JSON output.
 *
 * Kinds, in the order of the report:
 *   text rodata data bss    the program's own segments: file maps of the
 *                           executable by permission (x, r only, w), and
 *                           the anonymous map right after its data (bss)
 *   heap                    [heap], the brk area
 *   lib-text ... lib-bss    the same for shared libraries (any other file
 *                           with an executable map, ld.so included)
 *   heapkit                 heapkit's chunks and huge blocks, see below
 *   anon                    other private anonymous maps (mmap)
 *   shm                     shared memory: /dev/shm, memfd, SysV, shared
 *                           anonymous
 *   file                    other mapped files
 *   thread-stack            an anonymous map with a guard (---p, at most
 *                           64 KiB) just below it, as glibc makes thread
 *                           stacks, or one
 *                           holding a thread's stack pointer
 *                           (/proc/PID/task/TID/syscall)
 *   stack                   [stack], the main thread's
 *   guard                   maps with no access: guard pages, reservations
 *   vdso vvar vsyscall      the kernel's pages ([vvar_vclock] is vvar)
 *   other                   any other [name]
 *
 * heapkit's maps: a map named [anon:heapkit...] is heapkit's (the library
 * can name its maps where the kernel has CONFIG_ANON_VMA_NAME). Without
 * names, and only in a process that has libheapkit mapped, a hint by
 * shape: heapkit reserves each chunk as metadata followed by 4 MiB-aligned
 * data (docs/design.md): 68 KiB of metadata, so an anonymous rw map whose
 * start + 68 KiB is 4 MiB aligned, or which ends on a 4 MiB boundary and
 * holds a whole chunk (the kernel merges neighbouring anonymous maps, so
 * such a map may hold other memory too); in the secure variant the
 * metadata, a guard page, the data and a guard page are separate maps, so
 * also an anonymous map starting on a 4 MiB boundary just above a one-page
 * guard, and one ending a page below such a boundary just under a guard.
 * The report says which way it went.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tool.h"

/* heapkit's chunk geometry (docs/design.md, "Memory layout"). */
#define HK_CHUNK_BYTES (4ull << 20)
#define HK_META_BYTES  (68ull << 10)
#define HK_HUGE_MIN    (2ull << 20)  /* the smallest huge block's data */
#define HK_PAGE_BYTES  4096ull
/* A thread stack's guard is a page or a few (glibc: one page by default);
 * larger no-access maps are reservations (sanitizers, arenas, JITs). */
#define HK_STACK_GUARD_MAX (64ull << 10)

const char hkt_help_map[] =
    "Usage: heapkit map PID|self [--json] [--summary]\n"
    "       heapkit map --smaps FILE [--json] [--summary]\n"
    "\n"
    "The memory map of process PID (self: heapkit itself) as a systems course\n"
    "lays it out: the program's text, rodata, data and bss, the brk heap, the\n"
    "shared libraries' segments, heapkit's chunks, anonymous maps, shared\n"
    "memory, mapped files, thread stacks, the stack, guard pages, vdso, vvar,\n"
    "vsyscall; each with its virtual size, resident size (RSS), proportional\n"
    "share (PSS) and swap, then totals by kind, the grand total and the\n"
    "process's page faults (minor and major).\n"
    "\n"
    "Options:\n"
    "  --json        one JSON object instead of tables (sizes in bytes)\n"
    "  --summary     the totals by kind only, without the table of maps\n"
    "  --smaps FILE  read a saved smaps (or maps) file instead of a process's\n"
    "  -h, --help    this text\n"
    "\n"
    "heapkit's chunks are recognised by their names ([anon:heapkit]) when the\n"
    "kernel lets heapkit name its maps, otherwise by their alignment (a hint);\n"
    "the report says which. Reading another user's process needs root.\n"
    "Exit status: 0, 1 when the map cannot be read, 2 on a usage error or\n"
    "when there is no such process.\n";

typedef enum {
    K_TEXT, K_RODATA, K_DATA, K_BSS, K_HEAP,
    K_LIB_TEXT, K_LIB_RODATA, K_LIB_DATA, K_LIB_BSS,
    K_HEAPKIT, K_ANON, K_SHM, K_FILE, K_THREAD_STACK, K_STACK, K_GUARD,
    K_VDSO, K_VVAR, K_VSYSCALL, K_OTHER, K_COUNT
} kind_t;

static const struct {
    const char *name, *what;
} kinds[K_COUNT] = {
    [K_TEXT] = {"text", "program code"},
    [K_RODATA] = {"rodata", "program read-only data, ELF headers, relro"},
    [K_DATA] = {"data", "program initialised data"},
    [K_BSS] = {"bss", "program zero-initialised data"},
    [K_HEAP] = {"heap", "brk heap"},
    [K_LIB_TEXT] = {"lib-text", "shared libraries' code"},
    [K_LIB_RODATA] = {"lib-rodata", "shared libraries' read-only data"},
    [K_LIB_DATA] = {"lib-data", "shared libraries' initialised data"},
    [K_LIB_BSS] = {"lib-bss", "shared libraries' zero-initialised data"},
    [K_HEAPKIT] = {"heapkit", "heapkit chunks and huge blocks"},
    [K_ANON] = {"anon", "anonymous maps"},
    [K_SHM] = {"shm", "shared memory"},
    [K_FILE] = {"file", "mapped files"},
    [K_THREAD_STACK] = {"thread-stack", "thread stacks"},
    [K_STACK] = {"stack", "main thread stack"},
    [K_GUARD] = {"guard", "no access: guard pages, reserved space"},
    [K_VDSO] = {"vdso", "kernel code for fast system calls"},
    [K_VVAR] = {"vvar", "kernel data for the vdso"},
    [K_VSYSCALL] = {"vsyscall", "legacy system call page"},
    [K_OTHER] = {"other", "other kernel maps"},
};

typedef struct {
    unsigned long long start, end, offset, inode;
    char perms[5];
    char *path;                 /* as maps shows it; "" when anonymous */
    long long rss, pss, swap;   /* KiB; -1 when unknown */
    kind_t kind;
    int tid;                    /* thread-stack / stack: the thread, when known */
    bool hint;                  /* heapkit by the alignment hint */
} row_t;

typedef struct {
    row_t *rows;
    size_t n, cap;
    bool smaps;                 /* rss/pss/swap known */
} maps_t;

typedef struct {
    unsigned long long maps, size;
    long long rss, pss, swap;   /* KiB; -1 when unknown */
} total_t;

typedef enum { HK_NONE, HK_NAMES, HK_ALIGNMENT } hk_method_t;

/* ---- Reading ------------------------------------------------------------ */

static bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

/* Parses "start-end perms offset dev inode   path" into r. */
static bool parse_header(char *line, row_t *r) {
    char *p = line, *end;
    memset(r, 0, sizeof *r);
    r->rss = r->pss = r->swap = -1;
    r->start = strtoull(p, &end, 16);
    if (end == p || *end != '-') return false;
    p = end + 1;
    r->end = strtoull(p, &end, 16);
    if (end == p || *end != ' ' || r->end < r->start) return false;
    p = end + 1;
    if (strlen(p) < 5 || p[4] != ' ') return false;
    memcpy(r->perms, p, 4);
    p += 5;
    r->offset = strtoull(p, &end, 16);
    if (end == p || *end != ' ') return false;
    p = end + 1;
    p += strcspn(p, " "); /* the device */
    if (*p != ' ') return false;
    p++;
    r->inode = strtoull(p, &end, 10);
    if (end == p) return false;
    p = end;
    while (*p == ' ' || *p == '\t') p++;
    r->path = hkt_xstrdup(p);
    return true;
}

/* "Rss:   12 kB" -> 12 when the line is field `name`. */
static bool field_kib(const char *line, const char *name, long long *out) {
    size_t n = strlen(name);
    if (strncmp(line, name, n) != 0 || line[n] != ':') return false;
    *out = strtoll(line + n + 1, NULL, 10);
    return true;
}

static void add_row(maps_t *m, const row_t *r) {
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 256;
        m->rows = hkt_xrealloc(m->rows, m->cap * sizeof *m->rows);
    }
    m->rows[m->n++] = *r;
}

/* Parses the text of smaps (or of maps: then nothing but sizes is known). */
static void parse_maps(char *text, maps_t *m) {
    row_t *cur = NULL;
    m->smaps = false;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        if (is_hex(line[0])) {
            row_t r;
            if (!parse_header(line, &r)) continue;
            add_row(m, &r);
            cur = &m->rows[m->n - 1];
        } else if (cur) {
            long long v;
            if (field_kib(line, "Rss", &v)) cur->rss = v, m->smaps = true;
            else if (field_kib(line, "Pss", &v)) cur->pss = v;
            else if (field_kib(line, "Swap", &v)) cur->swap = v;
        }
    }
    /* A field smaps leaves out of a map counts as 0. */
    for (size_t i = 0; m->smaps && i < m->n; i++) {
        row_t *r = &m->rows[i];
        if (r->rss < 0) r->rss = 0;
        if (r->pss < 0) r->pss = 0;
        if (r->swap < 0) r->swap = 0;
    }
}

/* Reads /proc/PID/smaps (or maps), or `file`; 0 or an errno. */
static int read_maps(pid_t pid, const char *file, maps_t *m) {
    char path[64];
    char *text;
    if (file) {
        text = hkt_read_file(file, NULL);
    } else {
        snprintf(path, sizeof path, "/proc/%d/smaps", (int)pid);
        text = hkt_read_file(path, NULL);
        if (text == NULL) {
            snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
            text = hkt_read_file(path, NULL);
        }
    }
    if (text == NULL) return errno;
    parse_maps(text, m);
    free(text);
    return 0;
}

typedef struct {
    char comm[64];
    char exe[PATH_MAX];
    unsigned long long minflt, majflt;
    long threads;
    bool have_stat;
    long long rollup_rss, rollup_pss, rollup_swap;   /* -1 when unknown */
} procinfo_t;

static void read_procinfo(pid_t pid, procinfo_t *pi) {
    char path[64];
    memset(pi, 0, sizeof *pi);
    pi->rollup_rss = pi->rollup_pss = pi->rollup_swap = -1;
    hkt_proc_comm(pid, pi->comm, sizeof pi->comm);
    snprintf(path, sizeof path, "/proc/%d/exe", (int)pid);
    ssize_t n = readlink(path, pi->exe, sizeof pi->exe - 1);
    pi->exe[n > 0 ? n : 0] = 0;

    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    char *stat = hkt_read_file(path, NULL);
    char *close = stat ? strrchr(stat, ')') : NULL;
    if (close) {
        /* Field 3 (state) is the first after the name: minflt is field 10,
         * majflt 12, num_threads 20. */
        char *save = NULL, *tok = strtok_r(close + 1, " ", &save);
        for (int field = 3; tok; field++, tok = strtok_r(NULL, " ", &save)) {
            if (field == 10) pi->minflt = strtoull(tok, NULL, 10);
            else if (field == 12) pi->majflt = strtoull(tok, NULL, 10);
            else if (field == 20) {
                pi->threads = strtol(tok, NULL, 10);
                pi->have_stat = true;
                break;
            }
        }
    }
    free(stat);

    snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)pid);
    char *roll = hkt_read_file(path, NULL);
    for (char *line = roll, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        long long v;
        if (field_kib(line, "Rss", &v)) pi->rollup_rss = v;
        else if (field_kib(line, "Pss", &v)) pi->rollup_pss = v;
        else if (field_kib(line, "Swap", &v)) pi->rollup_swap = v;
    }
    free(roll);
}

/* ---- Classifying ---------------------------------------------------------- */

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool has_prefix(const char *s, const char *prefix) {
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static kind_t by_perms(const char *perms, bool lib) {
    if (perms[2] == 'x') return lib ? K_LIB_TEXT : K_TEXT;
    if (perms[1] == 'w') return lib ? K_LIB_DATA : K_DATA;
    if (perms[0] == 'r') return lib ? K_LIB_RODATA : K_RODATA;
    return K_GUARD;
}

static kind_t bracket_kind(const char *path) {
    if (!strcmp(path, "[heap]")) return K_HEAP;
    if (!strcmp(path, "[stack]")) return K_STACK;
    if (has_prefix(path, "[stack:")) return K_THREAD_STACK; /* kernels before 4.5 */
    if (!strcmp(path, "[vdso]")) return K_VDSO;
    if (has_prefix(path, "[vvar")) return K_VVAR;
    if (!strcmp(path, "[vsyscall]")) return K_VSYSCALL;
    if (has_prefix(path, "[anon:heapkit")) return K_HEAPKIT;
    if (has_prefix(path, "[anon:")) return K_ANON;
    if (has_prefix(path, "[anon_shmem:")) return K_SHM;
    return K_OTHER;
}

static bool is_shm_path(const char *path) {
    return has_prefix(path, "/dev/shm/") || has_prefix(path, "/memfd:") ||
           has_prefix(path, "/SYSV") || has_prefix(path, "/dev/zero");
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* The stack pointers of the threads blocked in the kernel (the last but
 * one field of /proc/PID/task/TID/syscall; "running" gives none). */
typedef struct {
    int tid;
    unsigned long long sp;
} thread_sp_t;

static size_t read_thread_sps(pid_t pid, thread_sp_t **out) {
    char path[64];
    size_t n = 0, cap = 0;
    *out = NULL;
    if (pid <= 0) return 0; /* a map read from a file */
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (d == NULL) return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        pid_t tid;
        if (!hkt_parse_pid(e->d_name, &tid)) continue;
        char file[96];
        snprintf(file, sizeof file, "/proc/%d/task/%d/syscall", (int)pid, (int)tid);
        char *text = hkt_read_file(file, NULL);
        if (text == NULL) continue;
        char *tok[16];
        int nt = 0;
        char *save = NULL;
        for (char *t = strtok_r(text, " \n", &save); t && nt < 16; t = strtok_r(NULL, " \n", &save))
            tok[nt++] = t;
        if (nt >= 3 && strcmp(tok[0], "running") != 0) {
            if (n == cap) *out = hkt_xrealloc(*out, (cap = cap ? cap * 2 : 16) * sizeof **out);
            (*out)[n].tid = (int)tid;
            (*out)[n].sp = strtoull(tok[nt - 2], NULL, 16);
            n++;
        }
        free(text);
    }
    closedir(d);
    return n;
}

/* An anonymous no-access map of at most `max` bytes ending where r starts. */
static bool guard_below(const maps_t *m, size_t i, unsigned long long max) {
    if (i == 0) return false;
    const row_t *g = &m->rows[i - 1];
    return g->end == m->rows[i].start && g->kind == K_GUARD && g->path[0] == 0 &&
           g->end - g->start <= max;
}

/* The same above: a guard starting where r ends, then (when `then`) an
 * anonymous map starting on a chunk boundary right after the guard. */
static bool guard_above(const maps_t *m, size_t i, bool then) {
    if (i + 1 >= m->n) return false;
    const row_t *g = &m->rows[i + 1];
    if (g->start != m->rows[i].end || g->kind != K_GUARD || g->path[0] != 0 ||
        g->end - g->start > HK_STACK_GUARD_MAX)
        return false;
    if (!then) return true;
    return i + 2 < m->n && m->rows[i + 2].start == g->end && g->end % HK_CHUNK_BYTES == 0;
}

static bool plain_anon(const row_t *r) {
    return r->kind == K_ANON && r->path[0] == 0 && !strcmp(r->perms, "rw-p");
}

/* heapkit's reservations, by their shape (see the note at the top):
 *   plain   [metadata 68 KiB][data, 4 MiB aligned]    one map, which the
 *           kernel may merge with anonymous neighbours
 *   secure  [metadata][guard][data, 4 MiB aligned][guard]   three maps */
static bool heapkit_shaped(const maps_t *m, size_t i) {
    const row_t *r = &m->rows[i];
    unsigned long long size = r->end - r->start;
    if ((r->start + HK_META_BYTES) % HK_CHUNK_BYTES == 0 && size >= HK_META_BYTES + HK_HUGE_MIN)
        return true; /* plain: a reservation starts here */
    if (r->end % HK_CHUNK_BYTES == 0 && size >= HK_META_BYTES + HK_CHUNK_BYTES)
        return true; /* plain: a chunk ends here */
    if (r->start % HK_CHUNK_BYTES == 0 && size >= HK_HUGE_MIN && guard_below(m, i, HK_PAGE_BYTES))
        return true; /* secure: the data between its guards */
    if (guard_above(m, i, true) && (r->end + HK_PAGE_BYTES) % HK_CHUNK_BYTES == 0)
        return true; /* secure: the metadata below the first guard */
    return false;
}

static hk_method_t classify(pid_t pid, maps_t *m, const procinfo_t *pi, bool *lib_mapped) {
    /* The executable: /proc/PID/exe, or else the first file map. */
    const char *exe = pi->exe[0] ? pi->exe : NULL;
    for (size_t i = 0; !exe && i < m->n; i++)
        if (m->rows[i].path[0] == '/' && m->rows[i].inode) exe = m->rows[i].path;
    /* ELF objects: files with an executable map. */
    char **elf = hkt_xmalloc((m->n + 1) * sizeof *elf);
    size_t nelf = 0;
    for (size_t i = 0; i < m->n; i++)
        if (m->rows[i].path[0] == '/' && m->rows[i].perms[2] == 'x') elf[nelf++] = m->rows[i].path;
    qsort(elf, nelf, sizeof *elf, cmp_str);

    /* What the map line alone tells (and the map before it, for bss). */
    bool named = false;
    *lib_mapped = false;
    for (size_t i = 0; i < m->n; i++) {
        row_t *r = &m->rows[i];
        row_t *prev = i ? &m->rows[i - 1] : NULL;
        bool adjacent = prev && prev->end == r->start;
        if (r->path[0] == '[') {
            r->kind = bracket_kind(r->path);
            if (r->kind == K_HEAPKIT) named = true;
        } else if (r->path[0] != 0) {
            const char *p = r->path;
            if (has_prefix(base_name(p), "libheapkit")) *lib_mapped = true;
            if (r->perms[3] == 's' && is_shm_path(p)) r->kind = K_SHM;
            else if (exe && !strcmp(p, exe)) r->kind = by_perms(r->perms, false);
            else if (bsearch(&p, elf, nelf, sizeof *elf, cmp_str))
                r->kind = by_perms(r->perms, true);
            else r->kind = K_FILE;
        } else if (!strcmp(r->perms, "---p") || !strcmp(r->perms, "---s")) {
            r->kind = K_GUARD;
        } else if (r->perms[3] == 's') {
            r->kind = K_SHM; /* shared anonymous */
        } else if (adjacent && (prev->kind == K_DATA || prev->kind == K_LIB_DATA) &&
                   !strcmp(r->perms, "rw-p")) {
            r->kind = prev->kind == K_DATA ? K_BSS : K_LIB_BSS;
        } else {
            r->kind = K_ANON;
        }
    }
    free(elf);

    /* A thread's stack pointer marks its stack. */
    thread_sp_t *sps;
    size_t nsp = read_thread_sps(pid, &sps);
    for (size_t k = 0; k < nsp; k++) {
        for (size_t i = 0; i < m->n; i++) {
            row_t *r = &m->rows[i];
            if (sps[k].sp < r->start || sps[k].sp >= r->end) continue;
            if (r->kind == K_ANON && r->path[0] == 0) r->kind = K_THREAD_STACK;
            if (r->kind == K_THREAD_STACK) r->tid = sps[k].tid;
            break;
        }
    }
    free(sps);

    /* heapkit's maps by their shape, where they are not named and heapkit
     * is there; before the guard rule, since the secure variant puts
     * guards below its chunks too. */
    hk_method_t method = named ? HK_NAMES : *lib_mapped ? HK_ALIGNMENT : HK_NONE;
    for (size_t i = 0; method == HK_ALIGNMENT && i < m->n; i++) {
        if (plain_anon(&m->rows[i]) && heapkit_shaped(m, i)) {
            m->rows[i].kind = K_HEAPKIT;
            m->rows[i].hint = true;
        }
    }
    /* Thread stacks by the guard glibc puts below them. */
    for (size_t i = 0; i < m->n; i++)
        if (plain_anon(&m->rows[i]) && guard_below(m, i, HK_STACK_GUARD_MAX))
            m->rows[i].kind = K_THREAD_STACK;
    return method;
}

/* ---- Totals ----------------------------------------------------------------- */

static void total_add(total_t *t, const row_t *r) {
    t->maps++;
    t->size += r->end - r->start;
    if (r->rss < 0 || t->rss < 0) t->rss = t->pss = t->swap = -1;
    else {
        t->rss += r->rss;
        t->pss += r->pss;
        t->swap += r->swap;
    }
}

/* ---- Output ------------------------------------------------------------------- */

static const char *method_text(hk_method_t method, bool lib_mapped) {
    switch (method) {
    case HK_NAMES: return "by name: heapkit names its maps [anon:heapkit]";
    case HK_ALIGNMENT:
        return "by alignment, a hint (libheapkit is mapped, its maps are not named): "
               "anonymous maps shaped as its chunks around 4 MiB boundaries";
    default:
        return lib_mapped ? "none found"
                          : "none looked for: libheapkit is not mapped in this process";
    }
}

static const char *method_json(hk_method_t method) {
    return method == HK_NAMES ? "names" : method == HK_ALIGNMENT ? "alignment" : "none";
}

static void print_kib(FILE *f, long long kib, int width) {
    if (kib < 0) fprintf(f, " %*s", width, "-");
    else fprintf(f, " %*lld", width, kib);
}

static void print_total_row(FILE *f, const char *name, const total_t *t, const char *what) {
    fprintf(f, "%-13s %5llu %11llu", name, t->maps, t->size / 1024);
    print_kib(f, t->rss, 10);
    print_kib(f, t->pss, 10);
    print_kib(f, t->swap, 9);
    fprintf(f, "%s%s\n", *what ? "  " : "", what);
}

static void print_text(FILE *f, pid_t pid, const maps_t *m, const procinfo_t *pi,
                       hk_method_t method, bool lib_mapped, bool summary, const total_t *bykind,
                       const total_t *all) {
    if (pid > 0)
        fprintf(f, "process %d (%s)%s%s\n", (int)pid, pi->comm, pi->exe[0] ? ": " : "", pi->exe);
    else fprintf(f, "map read from %s\n", pi->comm);
    if (pi->have_stat)
        fprintf(f, "threads: %ld; page faults: %llu minor, %llu major\n", pi->threads,
                pi->minflt, pi->majflt);
    fprintf(f, "heapkit chunks: %s\n", method_text(method, lib_mapped));
    if (!m->smaps) fprintf(f, "(no smaps figures: sizes only)\n");
    fputc('\n', f);
    if (!summary) {
        int w = 12;
        for (size_t i = 0; i < m->n; i++)
            if (m->rows[i].end - 1 > 0xffffffffffffull) w = 16;
        fprintf(f, "%-*s %-4s %-12s %10s %10s %10s %9s  %s\n", 2 * w + 1, "address", "perm",
                "kind", "size KiB", "rss KiB", "pss KiB", "swap KiB", "name");
        for (size_t i = 0; i < m->n; i++) {
            const row_t *r = &m->rows[i];
            fprintf(f, "%0*llx-%0*llx %-4s %-12s %10llu", w, r->start, w, r->end, r->perms,
                    kinds[r->kind].name, (r->end - r->start) / 1024);
            print_kib(f, r->rss, 10);
            print_kib(f, r->pss, 10);
            print_kib(f, r->swap, 9);
            if (r->path[0]) fprintf(f, "  %s", r->path);
            if (r->tid) fprintf(f, "  thread %d", r->tid);
            if (r->hint) fprintf(f, "  (hint)");
            fputc('\n', f);
        }
        fputc('\n', f);
    }
    fprintf(f, "%-13s %5s %11s %10s %10s %9s  %s\n", "kind", "maps", "size KiB", "rss KiB",
            "pss KiB", "swap KiB", "what");
    for (int k = 0; k < K_COUNT; k++)
        if (bykind[k].maps) print_total_row(f, kinds[k].name, &bykind[k], kinds[k].what);
    print_total_row(f, "total", all, "");
    if (pi->rollup_rss >= 0)
        fprintf(f,
                "\nthe kernel's totals (smaps_rollup): rss %lld KiB, pss %lld KiB, swap %lld KiB\n",
                pi->rollup_rss, pi->rollup_pss, pi->rollup_swap);
}

static void json_bytes(FILE *f, const char *key, long long kib) {
    if (kib < 0) fprintf(f, ",\"%s\":null", key);
    else fprintf(f, ",\"%s\":%lld", key, kib * 1024);
}

static void json_total(FILE *f, const total_t *t) {
    fprintf(f, "\"maps\":%llu,\"size\":%llu", t->maps, t->size);
    json_bytes(f, "rss", t->rss);
    json_bytes(f, "pss", t->pss);
    json_bytes(f, "swap", t->swap);
}

static void print_json(FILE *f, pid_t pid, const maps_t *m, const procinfo_t *pi,
                       hk_method_t method, bool lib_mapped, bool summary, const total_t *bykind,
                       const total_t *all) {
    if (pid > 0) fprintf(f, "{\"pid\":%d,\"command\":", (int)pid);
    else fputs("{\"pid\":null,\"file\":", f);
    hkt_json_string(f, pi->comm);
    fputs(",\"exe\":", f);
    hkt_json_string(f, pi->exe);
    if (pi->have_stat)
        fprintf(f, ",\"threads\":%ld,\"page_faults\":{\"minor\":%llu,\"major\":%llu}", pi->threads,
                pi->minflt, pi->majflt);
    else
        fputs(",\"threads\":null,\"page_faults\":null", f);
    fprintf(f, ",\"smaps\":%s,\"heapkit_chunks\":{\"method\":\"%s\",\"library_mapped\":%s}",
            m->smaps ? "true" : "false", method_json(method), lib_mapped ? "true" : "false");
    if (!summary) {
        fputs(",\"mappings\":[", f);
        for (size_t i = 0; i < m->n; i++) {
            const row_t *r = &m->rows[i];
            fprintf(f,
                    "%s\n{\"start\":\"0x%llx\",\"end\":\"0x%llx\",\"perms\":\"%s\","
                    "\"offset\":%llu,\"kind\":\"%s\",\"name\":",
                    i ? "," : "", r->start, r->end, r->perms, r->offset, kinds[r->kind].name);
            hkt_json_string(f, r->path);
            fprintf(f, ",\"size\":%llu", r->end - r->start);
            json_bytes(f, "rss", r->rss);
            json_bytes(f, "pss", r->pss);
            json_bytes(f, "swap", r->swap);
            if (r->tid) fprintf(f, ",\"tid\":%d", r->tid);
            if (r->hint) fputs(",\"hint\":true", f);
            fputc('}', f);
        }
        fputs("]", f);
    }
    fputs(",\"kinds\":[", f);
    bool first = true;
    for (int k = 0; k < K_COUNT; k++) {
        if (!bykind[k].maps) continue;
        fprintf(f, "%s\n{\"kind\":\"%s\",\"what\":\"%s\",", first ? "" : ",", kinds[k].name,
                kinds[k].what);
        json_total(f, &bykind[k]);
        fputc('}', f);
        first = false;
    }
    fputs("],\n\"total\":{", f);
    json_total(f, all);
    fputs("},\"rollup\":", f);
    if (pi->rollup_rss >= 0)
        fprintf(f, "{\"rss\":%lld,\"pss\":%lld,\"swap\":%lld}", pi->rollup_rss * 1024,
                pi->rollup_pss * 1024, pi->rollup_swap * 1024);
    else
        fputs("null", f);
    fputs("}\n", f);
}

/* ---- The command -------------------------------------------------------------- */

int hkt_cmd_map(int argc, char **argv) {
    enum { O_JSON = 256, O_SUMMARY, O_SMAPS };
    static const struct option longopts[] = {
        {"json", no_argument, NULL, O_JSON},
        {"summary", no_argument, NULL, O_SUMMARY},
        {"smaps", required_argument, NULL, O_SMAPS},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool json = false, summary = false;
    const char *file = NULL;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case O_JSON: json = true; break;
        case O_SUMMARY: summary = true; break;
        case O_SMAPS: file = optarg; break;
        case 'h': fputs(hkt_help_map, stdout); return HKT_EXIT_OK;
        default: return hkt_opt_error("map", c, argv);
        }
    }
    pid_t pid = 0;
    procinfo_t pi;
    if (file) {
        if (optind < argc) return hkt_usage("map", "a process or --smaps FILE, not both");
        memset(&pi, 0, sizeof pi);
        snprintf(pi.comm, sizeof pi.comm, "%s", file);
        pi.rollup_rss = pi.rollup_pss = pi.rollup_swap = -1;
    } else {
        if (optind >= argc) return hkt_usage("map", "which process? Give a PID or 'self'");
        if (argc - optind > 1) return hkt_usage("map", "one process at a time");
        const char *arg = argv[optind];
        if (!strcmp(arg, "self")) pid = getpid();
        else if (!hkt_parse_pid(arg, &pid)) return hkt_usage("map", "'%s' is not a PID", arg);
        if (hkt_proc_exists(pid) == ESRCH) return hkt_usage("map", "no process %d", (int)pid);
        read_procinfo(pid, &pi);
    }

    maps_t m = {0};
    int e = read_maps(pid, file, &m);
    if (e) {
        if (file) hkt_err("cannot read %s: %s", file, strerror(e));
        else if (e == ENOENT || e == ESRCH) hkt_err("process %d has gone", (int)pid);
        else hkt_err("cannot read the map of process %d: %s%s", (int)pid, strerror(e),
                     (e == EACCES || e == EPERM) && geteuid() != 0
                         ? " (another user's process needs root)" : "");
        return HKT_EXIT_FAIL;
    }
    if (m.n == 0) {
        if (file) hkt_err("%s holds no map lines", file);
        else hkt_err("process %d has no memory map (a kernel thread, or it has exited)", (int)pid);
        free(m.rows);
        return HKT_EXIT_FAIL;
    }
    bool lib_mapped;
    hk_method_t method = classify(pid, &m, &pi, &lib_mapped);
    total_t bykind[K_COUNT], all = {0};
    memset(bykind, 0, sizeof bykind);
    for (size_t i = 0; i < m.n; i++) {
        total_add(&bykind[m.rows[i].kind], &m.rows[i]);
        total_add(&all, &m.rows[i]);
    }
    if (json) print_json(stdout, pid, &m, &pi, method, lib_mapped, summary, bykind, &all);
    else print_text(stdout, pid, &m, &pi, method, lib_mapped, summary, bykind, &all);
    for (size_t i = 0; i < m.n; i++) free(m.rows[i].path);
    free(m.rows);
    if (fflush(stdout) != 0) {
        hkt_err("writing the output: %s", strerror(errno));
        return HKT_EXIT_FAIL;
    }
    return HKT_EXIT_OK;
}
