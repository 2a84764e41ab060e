/* stack.c: call stacks for the debug library.
 *
 * Owns: taking a call stack (frame pointers, or the DWARF unwinder with
 * HEAPKIT_STACK=unwind), the depot that stores each distinct stack once
 * and names it by a 32-bit id, and turning a stack into function names
 * and file:line when a report is printed.
 * Calls: os.c (the depot's memory), libgcc's unwinder, dladdr, and the
 * addr2line program of binutils (symbolization, at report time only).
 * Threads: capture is lock-free; the depot takes one lock per insert.
 *
 * Speed: a frame-pointer walk costs a few nanoseconds per frame, where
 * the DWARF unwinder costs about 2 us per stack (measured here, 10
 * frames), which would make a malloc-heavy program tens of times slower.
 * The walk is exact through code built with frame pointers (heapkit
 * itself, and programs built with -fno-omit-frame-pointer); through code
 * without them it stops early, since every frame is checked to lie inside
 * the thread's stack, above the previous one. The first frame, the caller
 * of malloc, is always right: heapkit's own frames are walked.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <unwind.h>

#include "internal/debug.h"

#if HK_DEBUG_MODE /* the whole file: only the debug variant builds it */

extern void *__libc_stack_end; /* the main thread's stack top (glibc, ld.so) */
extern char **environ;

/* ---- Capture ------------------------------------------------------------- */

/* The calling thread's stack, [lo, hi); 0, 0 until known. */
static __thread uintptr_t stack_lo __attribute__((tls_model("initial-exec")));
static __thread uintptr_t stack_hi __attribute__((tls_model("initial-exec")));

static void learn_stack_bounds(void) {
    if (getpid() == gettid()) {
        /* The main thread: glibc's pthread_getattr_np would read
         * /proc/self/maps; the top is known and the limit bounds the rest. */
        struct rlimit rl;
        uintptr_t hi = ((uintptr_t)__libc_stack_end + 4095) & ~(uintptr_t)4095;
        size_t size = getrlimit(RLIMIT_STACK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                          ? (size_t)rl.rlim_cur
                          : (size_t)8 << 20;
        /* The walk only reads above the current frame, which is mapped. */
        stack_lo = hi - size;
        stack_hi = hi;
        return;
    }
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) != 0) return;
    void *addr;
    size_t size;
    if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
        stack_lo = (uintptr_t)addr;
        stack_hi = (uintptr_t)addr + size;
    }
    pthread_attr_destroy(&attr);
}

/* The text of heapkit's own library, whose frames a stack leaves out: the
 * stack starts at the caller of malloc, however many frames of ours (and
 * tail calls) lie above it. */
static uintptr_t own_lo, own_hi;

static int find_own_segments(struct dl_phdr_info *info, size_t size, void *arg) {
    (void)size;
    if (info->dlpi_addr != (uintptr_t)arg) return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
        if (own_lo == 0 || lo < own_lo) own_lo = lo;
        if (hi > own_hi) own_hi = hi;
    }
    return 1;
}

static void learn_own_text(void) {
    Dl_info info;
    if (dladdr((void *)learn_own_text, &info) && info.dli_fbase)
        dl_iterate_phdr(find_own_segments, info.dli_fbase);
    if (own_hi == 0) own_hi = 1; /* unknown: leave nothing out */
}

static bool is_own(uintptr_t pc) { return pc >= own_lo && pc < own_hi; }

uintptr_t _hk_stack_top(void) {
    if (stack_hi == 0) learn_stack_bounds();
    return stack_hi;
}

/* A stack's hash, 64 bits: one multiply-add per frame while the frames are
 * walked, mixed once at the end (the depot's buckets and the thread's
 * cache take different bits of it). */
#define HASH_MUL 0x9e3779b97f4a7c15ull

static inline uint64_t hash_step(uint64_t h, uintptr_t pc) { return (h + pc) * HASH_MUL; }

static inline uint64_t hash_end(uint64_t h, unsigned n) {
    h ^= n;
    h ^= h >> 31;
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 33);
}

static uint64_t hash_frames(void *const *pc, unsigned n) {
    uint64_t h = 0;
    for (unsigned i = 0; i < n; i++) h = hash_step(h, (uintptr_t)pc[i]);
    return hash_end(h, n);
}

/* Walks the frame pointers from the caller of heapkit's first frame (the
 * entry point's caller) up, at most HK_STACK_MAX frames; returns the depth
 * and the stack's hash. Every frame read lies in [stack_lo, stack_hi) and
 * above the one before, so the walk ends, and reads only mapped memory,
 * whatever a frame pointer register held (code without frame pointers
 * uses it for anything). */
static inline __attribute__((always_inline)) unsigned walk_frame_pointers(void **pc, uint64_t *hash) {
    if (hk_unlikely(stack_hi == 0)) learn_stack_bounds(); /* may allocate: the caller is marked busy */
    uintptr_t lo = stack_lo, top = stack_hi - 2 * sizeof(void *);
    uintptr_t fp = (uintptr_t)__builtin_frame_address(0), ret;
    /* heapkit's own frames (this library's functions, the entry point).
     * The first, _hk_stack_capture's own (this is inlined into it), returns
     * into heapkit always: no need to ask. */
    if (fp < lo || fp > top) return 0;
    uintptr_t caller = ((const uintptr_t *)fp)[0];
    if (caller <= fp) return 0;
    fp = caller;
    for (;;) {
        if (fp < lo || fp > top) return 0;
        ret = ((const uintptr_t *)fp)[1];
        if (!is_own(ret)) break;
        uintptr_t next = ((const uintptr_t *)fp)[0];
        if (next <= fp) return 0;
        fp = next;
    }
    /* The program's: from here on every frame counts, heapkit's too (a
     * callback called from inside heapkit). */
    unsigned n = 0;
    uint64_t h = 0;
    while (ret >= 4096) {
        pc[n++] = (void *)ret;
        h = hash_step(h, ret);
        uintptr_t next = ((const uintptr_t *)fp)[0];
        if (n == HK_STACK_MAX || next <= fp || next > top) break;
        fp = next;
        ret = ((const uintptr_t *)fp)[1];
    }
    *hash = hash_end(h, n);
    return n;
}

typedef struct {
    void **pc;
    unsigned n, max;
} unwind_state_t;

static _Unwind_Reason_Code unwind_step(struct _Unwind_Context *ctx, void *arg) {
    unwind_state_t *s = arg;
    uintptr_t ip = _Unwind_GetIP(ctx);
    if (ip == 0) return _URC_END_OF_STACK;
    if (s->n < s->max && (s->n > 0 || !is_own(ip))) s->pc[s->n++] = (void *)ip;
    return s->n < s->max ? _URC_NO_REASON : _URC_END_OF_STACK;
}

/* ---- The depot ----------------------------------------------------------- */

/* One cache line or more each, so that adding an entry never writes a line
 * holding another: entries are read by every thread, without a lock. */
typedef struct {
    _Alignas(64) uint64_t hash;
    uint32_t next;      /* next id in the same bucket, 0 at the end */
    uint32_t depth;
    void *pc[HK_STACK_MAX];
} stack_entry_t;

#define DEPOT_BUCKETS ((size_t)1 << 16)
#define DEPOT_BYTES   ((size_t)64 << 20) /* reserved; the kernel commits what is used */

static hk_lock_t depot_lock;
static uint32_t *buckets;        /* DEPOT_BUCKETS heads */
static stack_entry_t *entries;   /* entries[0] is unused: id 0 means no stack */
static uint32_t entry_count = 1, entry_max;

static bool depot_init(void) {
    if (entries) return true;
    uint8_t *mem = _hk_os_reserve(DEPOT_BYTES, HK_PAGE_SIZE, 0);
    if (mem == NULL) return false;
    buckets = (uint32_t *)mem;
    __atomic_store_n(&entries, (stack_entry_t *)(mem + DEPOT_BUCKETS * sizeof(uint32_t)),
                     __ATOMIC_RELEASE);
    entry_max = (uint32_t)((DEPOT_BYTES - DEPOT_BUCKETS * sizeof(uint32_t)) / sizeof(stack_entry_t));
    return true;
}

static bool same_frames(void *const *a, void *const *b, unsigned n) {
    for (unsigned i = 0; i < n; i++)
        if (a[i] != b[i]) return false;
    return true;
}

static uint32_t lookup(uint64_t h, void *const *pc, unsigned n) {
    for (uint32_t id = __atomic_load_n(&buckets[h % DEPOT_BUCKETS], __ATOMIC_ACQUIRE); id;
         id = entries[id].next)
        if (entries[id].hash == h && entries[id].depth == n && same_frames(entries[id].pc, pc, n))
            return id;
    return 0;
}

static uint32_t depot_find_or_add(void *const *pc, unsigned n, uint64_t h);

/* ---- The thread's recent stacks -----------------------------------------
 * A program allocates and frees from a few call sites over and over: the
 * thread keeps the ids of the stacks it took last, by their hash, and a
 * stack whose hash and depth match one of them and whose frames equal its
 * depot entry's has that id without a look in the depot's buckets. Keyed
 * by the whole stack's hash, not by the first frame: a program that
 * allocates through a wrapper of its own (python's PyMem_RawMalloc) calls
 * malloc from one place for every stack. The walk itself still runs on
 * every capture: only all the frames tell two stacks apart.
 */
#define RECENT 64 /* slots; a power of two */

typedef struct {
    uint64_t hash;
    uint32_t id;     /* 0: empty */
    uint32_t depth;
} recent_t;

static __thread recent_t recent[RECENT] __attribute__((tls_model("initial-exec")));

/* HEAPKIT_STACK=unwind, and heapkit's own text, learnt at the first
 * capture (a strcmp per capture was a tenth of its cost). */
static bool use_unwinder;
static bool stack_options_read;

uint32_t _hk_stack_capture(void) {
    void *pc[HK_STACK_MAX];
    unsigned n;
    uint64_t h;
    if (hk_unlikely(!__atomic_load_n(&stack_options_read, __ATOMIC_ACQUIRE))) {
        /* Threads that get here at once compute the same values. */
        _hk_init(); /* the options */
        if (own_hi == 0) learn_own_text();
        __atomic_store_n(&use_unwinder, _hk_options.stack && strcmp(_hk_options.stack, "unwind") == 0,
                         __ATOMIC_RELAXED);
        __atomic_store_n(&stack_options_read, true, __ATOMIC_RELEASE);
    }
    if (hk_unlikely(__atomic_load_n(&use_unwinder, __ATOMIC_RELAXED))) {
        unwind_state_t s = {pc, 0, HK_STACK_MAX};
        _Unwind_Backtrace(unwind_step, &s);
        n = s.n;
        h = hash_frames(pc, n);
    } else {
        n = walk_frame_pointers(pc, &h);
    }
    if (n == 0) return 0;
    recent_t *r = &recent[(h >> 32) & (RECENT - 1)];
    /* An id in the thread's cache is in the depot (entries is set). */
    if (r->hash == h && r->depth == n && same_frames(entries[r->id].pc, pc, n)) return r->id;
    uint32_t id = depot_find_or_add(pc, n, h);
    if (id) *r = (recent_t){h, id, n};
    return id;
}

/* The id of stack pc[0..n) (hash h) in the depot, stored there if new; 0
 * when the depot is full or cannot be had. */
static uint32_t depot_find_or_add(void *const *pc, unsigned n, uint64_t h) {
    /* Entries never change once published (a bucket head is stored with
     * release after its entry is written), so the common case, a stack
     * seen before, is found without the lock. */
    if (__atomic_load_n(&entries, __ATOMIC_ACQUIRE)) {
        uint32_t id = lookup(h, pc, n);
        if (id) return id;
    }
    _hk_lock(&depot_lock);
    uint32_t id = 0;
    if (depot_init()) {
        id = lookup(h, pc, n);
        if (id == 0 && entry_count < entry_max) {
            id = entry_count;
            stack_entry_t *e = &entries[id];
            e->hash = h;
            e->depth = n;
            memcpy(e->pc, pc, n * sizeof(void *));
            e->next = buckets[h % DEPOT_BUCKETS];
            __atomic_store_n(&entry_count, id + 1, __ATOMIC_RELEASE);
            __atomic_store_n(&buckets[h % DEPOT_BUCKETS], id, __ATOMIC_RELEASE);
        }
    }
    hk_unlock(&depot_lock);
    return id;
}

unsigned _hk_stack_get(uint32_t id, void **pc) {
    if (id == 0 || id >= __atomic_load_n(&entry_count, __ATOMIC_ACQUIRE)) return 0;
    const stack_entry_t *e = &entries[id];
    memcpy(pc, e->pc, e->depth * sizeof(void *));
    return e->depth;
}

/* ---- Symbolization ------------------------------------------------------- */

/* The address to give addr2line for a return address pc of module base. */
static uintptr_t module_address(const void *pc, const void *base) {
    const ElfW(Ehdr) *eh = base;
    uintptr_t at = (uintptr_t)pc - 1; /* the call, not the instruction after it */
    return eh->e_type == ET_EXEC ? at : at - (uintptr_t)base;
}

/* Runs `addr2line -C -f -e module addr` and fills func/where; false when
 * addr2line is missing or says nothing useful. */
static bool addr2line(const char *module, uintptr_t addr, char *func, size_t fsz, char *where,
                      size_t wsz) {
    int in[2], out[2];
    if (pipe(in) != 0) return false;
    if (pipe(out) != 0) {
        close(in[0]);
        close(in[1]);
        return false;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", 1 /* O_WRONLY */, 0);
    posix_spawn_file_actions_addclose(&fa, in[1]);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    char *argv[] = {"addr2line", "-C", "-f", "-e", (char *)module, NULL};
    /* Without LD_PRELOAD: addr2line should not run under heapkit's debug
     * library and print reports of its own. */
    char *env[] = {"PATH=/usr/bin:/bin", NULL};
    pid_t pid;
    int rc = posix_spawnp(&pid, "addr2line", &fa, NULL, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    bool ok = false;
    if (rc == 0) {
        char line[32];
        int len = snprintf(line, sizeof line, "0x%lx\n", (unsigned long)addr);
        ssize_t w = write(in[1], line, (size_t)len);
        (void)w;
        close(in[1]);
        char buf[1024];
        size_t got = 0;
        ssize_t r;
        while (got < sizeof buf - 1 && (r = read(out[0], buf + got, sizeof buf - 1 - got)) > 0)
            got += (size_t)r;
        buf[got] = 0;
        int status;
        waitpid(pid, &status, 0);
        char *nl = strchr(buf, '\n');
        if (nl) {
            *nl = 0;
            char *second = nl + 1;
            char *nl2 = strchr(second, '\n');
            if (nl2) *nl2 = 0;
            if (strcmp(buf, "??") != 0) {
                snprintf(func, fsz, "%.*s", (int)fsz - 1, buf);
                ok = true;
            }
            if (strncmp(second, "??", 2) != 0) {
                /* Drop " (discriminator N)". */
                char *d = strstr(second, " (discriminator");
                if (d) *d = 0;
                snprintf(where, wsz, "%.*s", (int)wsz - 1, second);
            }
        }
    } else {
        close(in[1]);
    }
    close(out[0]);
    return ok;
}

void _hk_stack_symbolize(const void *pc, hk_frame_name_t *out) {
    out->func[0] = out->where[0] = out->module[0] = 0;
    out->offset = 0;
    Dl_info info;
    if (dladdr(pc, &info) == 0 || info.dli_fname == NULL) {
        snprintf(out->func, sizeof out->func, "??");
        return;
    }
    const char *slash = strrchr(info.dli_fname, '/');
    snprintf(out->module, sizeof out->module, "%s", slash ? slash + 1 : info.dli_fname);
    out->offset = (uintptr_t)pc - (uintptr_t)info.dli_fbase;
    const char *module = info.dli_fname;
    char self[512];
    if (module[0] == 0) { /* the main program: dladdr gives "" on some systems */
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n > 0) {
            self[n] = 0;
            module = self;
        }
    }
    bool named = false;
    if (!_hk_options.stack || strcmp(_hk_options.stack, "nosymbols") != 0)
        named = addr2line(module, module_address(pc, info.dli_fbase), out->func, sizeof out->func,
                          out->where, sizeof out->where);
    if (!named) {
        if (info.dli_sname)
            snprintf(out->func, sizeof out->func, "%s+0x%lx", info.dli_sname,
                     (unsigned long)((uintptr_t)pc - (uintptr_t)info.dli_saddr));
        else
            snprintf(out->func, sizeof out->func, "??");
    }
}

#endif /* HK_DEBUG_MODE */
