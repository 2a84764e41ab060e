/* vg.h: valgrind's client requests, or nothing.
 *
 * With valgrind's headers at build time (Debian's valgrind package brings
 * them), heapkit tells memcheck about the blocks of its own API: hk_malloc
 * and friends (alloc.c), pool blocks (pool.c) and cache objects (cache.c),
 * so memcheck finds their overflows, uses after free and leaks. The
 * requests are a few no-op instructions outside valgrind, and each entry
 * point tests a flag first (hk_malloc and hk_free on their miss paths: the
 * fast paths always miss under valgrind); without the headers they compile
 * to nothing.
 * The malloc family itself is memcheck's to replace:
 *   valgrind --soname-synonyms=somalloc='*libheapkit*' PROGRAM
 * (memcheck then serves malloc with its own allocator, as it does for
 * glibc's).
 * Header-only: no link dependency. HK_VG_OFF builds as if the headers
 * were missing (the benchmark's copy of the cache for instruction counts
 * uses it, so that not even the flag tests are counted).
 */
#ifndef HK_VG_H
#define HK_VG_H

#if defined(__has_include) && !defined(HK_VG_OFF)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define HK_VALGRIND 1
#endif
#endif

#include <stdlib.h>
#include <string.h>

#ifndef HK_VALGRIND
#define HK_VALGRIND 0
#define RUNNING_ON_VALGRIND 0
#define VALGRIND_MALLOCLIKE_BLOCK(addr, size, rz, zeroed) ((void)0)
#define VALGRIND_FREELIKE_BLOCK(addr, rz) ((void)0)
#define VALGRIND_RESIZEINPLACE_BLOCK(addr, old, size, rz) ((void)0)
#define VALGRIND_CREATE_MEMPOOL(pool, rz, zeroed) ((void)0)
#define VALGRIND_DESTROY_MEMPOOL(pool) ((void)0)
#define VALGRIND_MEMPOOL_ALLOC(pool, addr, size) ((void)0)
#define VALGRIND_MEMPOOL_FREE(pool, addr) ((void)0)
#define VALGRIND_MEMPOOL_TRIM(pool, addr, size) ((void)0)
#define VALGRIND_MAKE_MEM_NOACCESS(addr, size) ((void)0)
#define VALGRIND_MAKE_MEM_UNDEFINED(addr, size) ((void)0)
#define VALGRIND_MAKE_MEM_DEFINED(addr, size) ((void)0)
#define VALGRIND_DISABLE_ERROR_REPORTING ((void)0)
#define VALGRIND_ENABLE_ERROR_REPORTING ((void)0)
#endif

/* Whether the valgrind tool we run under tracks heap blocks: memcheck,
 * helgrind, drd, massif and dhat preload a library of their own
 * (vgpreload_<tool>) to replace malloc, and read our client requests;
 * callgrind, cachegrind and the like preload only vgpreload_core, ignore
 * the requests, and should see the fast paths as they run outside
 * valgrind (the instruction counts of `make bench-instr`). getenv does not
 * allocate, so this is safe in the first malloc. */
static inline int hk_vg_tool_tracks_heap(void) {
    const char *pre = getenv("LD_PRELOAD");
    for (const char *s = pre; s && (s = strstr(s, "vgpreload_")) != NULL; s += 10)
        if (strncmp(s + 10, "core", 4) != 0) return 1;
    return 0;
}

/* 1 under a valgrind tool that tracks heap blocks, 0 otherwise, -1 until
 * asked; one per file that uses it. Threads may race to set it, always to
 * the same answer: relaxed atomics (plain moves on x86-64 and aarch64)
 * say so to ThreadSanitizer. */
#define HK_VG_FLAG(name) static int name = -1
/* Out of line: the client request keeps its arguments on the stack, which
 * inlined would give every caller (hk_malloc, hk_free) a stack frame. */
__attribute__((noinline, cold, unused)) static int hk_vg_ask(int *flag) {
    int v = RUNNING_ON_VALGRIND && hk_vg_tool_tracks_heap() ? 1 : 0;
    __atomic_store_n(flag, v, __ATOMIC_RELAXED);
    return v;
}
static inline int hk_vg_check(int *flag) {
    int v = __atomic_load_n(flag, __ATOMIC_RELAXED);
    return v < 0 ? hk_vg_ask(flag) : v;
}
static inline int hk_vg_known(const int *flag) { return __atomic_load_n(flag, __ATOMIC_RELAXED); }

#endif /* HK_VG_H */
