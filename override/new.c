/* override/new.c: C++ operator new and delete, in all their forms.
 *
 * Owns: the mangled operator symbols (plain, array, nothrow, sized,
 * aligned), written in C so libheapkit.so needs no C++ runtime. A failing
 * throwing new calls the program's new handler, as the standard asks, and
 * throws std::bad_alloc through libstdc++ (present in any C++ program).
 * Calls: the public API and the inline fast paths.
 */
#include "internal/fastpath.h"
#include "internal/debug.h" /* the debug library: every entry is checked */

#define EXPORT __attribute__((visibility("default")))

typedef void (*new_handler_t)(void);
extern new_handler_t _ZSt15get_new_handlerv(void) __attribute__((weak));
extern void _ZSt17__throw_bad_allocv(void) __attribute__((weak, noreturn));

static void *new_failed(size_t size, size_t align, bool nothrow) {
    for (;;) {
        new_handler_t handler = _ZSt15get_new_handlerv ? _ZSt15get_new_handlerv() : NULL;
        if (handler == NULL) break;
        handler(); /* may free memory, throw, or abort */
        void *p = align ? hk_aligned_alloc(align, size) : hk_malloc(size);
        if (p) return p;
    }
    if (nothrow) return NULL;
    if (_ZSt17__throw_bad_allocv) _ZSt17__throw_bad_allocv();
    _hk_fatal("operator new", "out of memory, size", (void *)size);
}

static inline void *new_plain(size_t size, bool nothrow) {
    void *p = hk_malloc_fast(size);
    return hk_likely(p != NULL) ? p : new_failed(size, 0, nothrow);
}

static inline void *new_aligned(size_t size, size_t align, bool nothrow) {
    void *p = hk_aligned_alloc(align, size);
    return hk_likely(p != NULL) ? p : new_failed(size, align, nothrow);
}

/* operator new / new[] */
EXPORT void *_Znwm(size_t n) { return new_plain(n, false); }
EXPORT void *_Znam(size_t n) { return new_plain(n, false); }
EXPORT void *_ZnwmRKSt9nothrow_t(size_t n, const void *t) { (void)t; return new_plain(n, true); }
EXPORT void *_ZnamRKSt9nothrow_t(size_t n, const void *t) { (void)t; return new_plain(n, true); }
EXPORT void *_ZnwmSt11align_val_t(size_t n, size_t a) { return new_aligned(n, a, false); }
EXPORT void *_ZnamSt11align_val_t(size_t n, size_t a) { return new_aligned(n, a, false); }
EXPORT void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t a, const void *t) {
    (void)t;
    return new_aligned(n, a, true);
}
EXPORT void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t a, const void *t) {
    (void)t;
    return new_aligned(n, a, true);
}

/* operator delete / delete[]: every form frees the same way. */
EXPORT void _ZdlPv(void *p) { hk_free_fast(p); }
EXPORT void _ZdaPv(void *p) { hk_free_fast(p); }
EXPORT void _ZdlPvm(void *p, size_t n) { (void)n; hk_free_fast(p); }
EXPORT void _ZdaPvm(void *p, size_t n) { (void)n; hk_free_fast(p); }
EXPORT void _ZdlPvRKSt9nothrow_t(void *p, const void *t) { (void)t; hk_free_fast(p); }
EXPORT void _ZdaPvRKSt9nothrow_t(void *p, const void *t) { (void)t; hk_free_fast(p); }
EXPORT void _ZdlPvSt11align_val_t(void *p, size_t a) { (void)a; hk_free_fast(p); }
EXPORT void _ZdaPvSt11align_val_t(void *p, size_t a) { (void)a; hk_free_fast(p); }
EXPORT void _ZdlPvmSt11align_val_t(void *p, size_t n, size_t a) { (void)n; (void)a; hk_free_fast(p); }
EXPORT void _ZdaPvmSt11align_val_t(void *p, size_t n, size_t a) { (void)n; (void)a; hk_free_fast(p); }
EXPORT void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t a, const void *t) {
    (void)a; (void)t;
    hk_free_fast(p);
}
EXPORT void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t a, const void *t) {
    (void)a; (void)t;
    hk_free_fast(p);
}
