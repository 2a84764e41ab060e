/* probe_so.c: libhkbench_probe.so, preloaded after the allocator into the
 * real programs (python3, sqlite3, redis-server), which cannot print an
 * HKBENCH line of their own. Its constructor records which shared object
 * serves malloc in that process (dlsym + dladdr, as the workloads do) and
 * its destructor the process's VmHWM, one line each, appended to the file
 * named by HKBENCH_PROBE_OUT:
 *
 *     pid=1234 malloc_from=/tmp/hkbench-libs-x/heapkit/libheapkit.so.0
 *     pid=1234 hwm_kib=52344
 *
 * Which object serves malloc: the first, in the order the dynamic linker
 * searches (the program, the preloaded objects, then the libraries they
 * need), that *defines* malloc. Not simply dlsym(RTLD_DEFAULT) + dladdr:
 * in an executable built without PIE (Debian's python3), a function whose
 * address the program takes gets a "canonical PLT" entry, an undefined
 * symbol with a value, and dladdr would name the executable.
 *
 * It defines no allocation function, so it cannot change which allocator
 * is measured; the runner picks the lines of the process it started (a
 * program's own children would add lines with their pids). Without
 * HKBENCH_PROBE_OUT it does nothing.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void emit(const char *line, int len) {
    const char *path = getenv("HKBENCH_PROBE_OUT");
    if (!path || !*path || len <= 0) return;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return;
    /* One write with O_APPEND: lines of several processes never interleave. */
    ssize_t n = write(fd, line, (size_t)len);
    (void)n;
    close(fd);
}

/* The path of the first object in search order that defines `name`. */
static const char *first_definer(const char *name) {
    void *self = dlopen(NULL, RTLD_LAZY | RTLD_NOLOAD);
    struct link_map *lm = NULL;
    if (!self || dlinfo(self, RTLD_DI_LINKMAP, &lm) != 0) return NULL;
    for (; lm; lm = lm->l_next) {
        int main_prog = !lm->l_name || !*lm->l_name;
        void *h = main_prog ? self : dlopen(lm->l_name, RTLD_LAZY | RTLD_NOLOAD);
        if (!h) continue;
        /* dlsym on a handle also searches that object's dependencies: keep
         * the answer only if it lies in this object and is a definition. */
        void *p = dlsym(h, name);
        Dl_info di, own;
        const ElfW(Sym) *sym = NULL;
        int found = p && dladdr1(p, &di, (void **)&sym, RTLD_DL_SYMENT) && sym && sym->st_shndx != SHN_UNDEF &&
                    dladdr((void *)lm->l_ld, &own) && own.dli_fbase == di.dli_fbase;
        if (h != self) dlclose(h);
        if (found) return main_prog ? (di.dli_fname && *di.dli_fname ? di.dli_fname : "main program") : lm->l_name;
    }
    return NULL;
}

__attribute__((constructor)) static void probe_start(void) {
    if (!getenv("HKBENCH_PROBE_OUT")) return;
    const char *from = first_definer("malloc");
    char line[4200];
    int len = snprintf(line, sizeof line, "pid=%d malloc_from=%.4000s\n", (int)getpid(), from ? from : "unknown");
    emit(line, len < (int)sizeof line ? len : (int)sizeof line - 1);
}

__attribute__((destructor)) static void probe_end(void) {
    if (!getenv("HKBENCH_PROBE_OUT")) return;
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return;
    buf[n] = 0;
    const char *p = strstr(buf, "VmHWM:");
    if (!p) return;
    char line[64];
    int len = snprintf(line, sizeof line, "pid=%d hwm_kib=%ld\n", (int)getpid(), strtol(p + 6, NULL, 10));
    emit(line, len);
}
