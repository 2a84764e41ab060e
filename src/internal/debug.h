/* debug.h: the debug library's layer (libheapkit-debug.so).
 *
 * In the debug variant (built with HK_DEBUG_MODE=1, see cmake/debug.cmake)
 * every block of the malloc family gets a header, red zones and an
 * allocation stack, and free checks them (debug.c); stack.c takes and
 * names the call stacks. In the plain libraries none of this is compiled.
 *
 * Included after fastpath.h by the entry points (alloc.c, override/): in
 * the debug variant it turns the inline fast paths into calls to debug.c,
 * so every way into the malloc family is checked.
 */
#ifndef HK_DEBUG_H
#define HK_DEBUG_H

#include "internal/internal.h"

#ifndef HK_DEBUG_MODE
#define HK_DEBUG_MODE 0
#endif

#if HK_DEBUG_MODE
/* ---- debug.c -------------------------------------------------------------- */
/* align: 0 for malloc's; zero: calloc. NULL with errno on failure. */
HK_INTERNAL void *_hk_debug_alloc(size_t size, size_t align, bool zero);
/* func names the entry point in reports ("free", "realloc", ...). */
HK_INTERNAL void _hk_debug_free(void *p, const char *func);
HK_INTERNAL void *_hk_debug_realloc(void *p, size_t size);
/* The size asked for (so that a program filling malloc_usable_size bytes
 * does not write into the red zone). */
HK_INTERNAL size_t _hk_debug_usable_size(const void *p);

/* ---- stack.c -------------------------------------------------------------- */
#define HK_STACK_MAX 16
/* Takes the stack from the first frame outside heapkit's own library (the
 * caller of malloc or free) and returns its id in the depot (0: no stack). */
HK_INTERNAL uint32_t _hk_stack_capture(void);
/* The top of the calling thread's stack (its highest address). */
HK_INTERNAL uintptr_t _hk_stack_top(void);
/* Copies stack `id` to pc (HK_STACK_MAX entries); returns the depth. */
HK_INTERNAL unsigned _hk_stack_get(uint32_t id, void **pc);
typedef struct {
    char func[256];    /* function name, demangled, or "??" */
    char where[256];   /* "file:line" when debug information tells, else "" */
    char module[128];  /* file name of the executable or library */
    uintptr_t offset;  /* pc's offset in the module */
} hk_frame_name_t;
/* Names a return address (slow: may run addr2line). */
HK_INTERNAL void _hk_stack_symbolize(const void *pc, hk_frame_name_t *out);

#ifndef HK_DEBUG_IMPL
/* Every entry point goes through the checks. */
#define hk_malloc_fast(size) _hk_debug_alloc((size), 0, false)
#define hk_free_fast(p)      _hk_debug_free((p), "free")
#endif
#endif /* HK_DEBUG_MODE */

#endif /* HK_DEBUG_H */
