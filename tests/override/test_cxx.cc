// test_cxx: C++ operator new and delete, in all their forms, end up in
// heapkit.
//   - every replaceable operator (plain, array, nothrow, sized, aligned,
//     aligned nothrow; 8 news and 12 deletes) is bound to libheapkit.so;
//   - each new returns a live heapkit block (hk_heap_owns), aligned as
//     asked, with malloc_usable_size >= the size; each delete frees it;
//   - new-expressions, over-aligned types, containers, strings and smart
//     pointers, and libstdc++'s own allocations, are heapkit's;
//   - an absurd size: throwing new throws std::bad_alloc (after calling the
//     new handler), nothrow new returns nullptr, aligned forms too, and
//     array new with an overflowing count throws;
//   - out of memory under RLIMIT_AS: new throws, a new handler that frees
//     memory makes the retry succeed;
//   - delete of a pointer heapkit does not own is reported and aborts.
#include "ovr.h"

#include <malloc.h>

#include <cstddef>
#include <list>
#include <map>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

/* The mangled names of the replaceable operators (x86-64: size_t is
 * unsigned long, "m"). */
static const char *const operator_names[] = {
    "_Znwm", "_Znam", "_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t", "_ZnwmSt11align_val_t",
    "_ZnamSt11align_val_t", "_ZnwmSt11align_val_tRKSt9nothrow_t",
    "_ZnamSt11align_val_tRKSt9nothrow_t", "_ZdlPv", "_ZdaPv", "_ZdlPvm", "_ZdaPvm",
    "_ZdlPvRKSt9nothrow_t", "_ZdaPvRKSt9nothrow_t", "_ZdlPvSt11align_val_t",
    "_ZdaPvSt11align_val_t", "_ZdlPvmSt11align_val_t", "_ZdaPvmSt11align_val_t",
    "_ZdlPvSt11align_val_tRKSt9nothrow_t", "_ZdaPvSt11align_val_tRKSt9nothrow_t",
};

static void test_binding() {
    for (const char *name : operator_names) {
        void *f = dlsym(RTLD_DEFAULT, name);
        CHECK(f != nullptr);
        CHECK(ovr_from_heapkit(f, name));
    }
    /* The addresses the program itself calls. */
    CHECK(ovr_from_heapkit((void *)static_cast<void *(*)(std::size_t)>(&::operator new),
                           "&operator new"));
    CHECK(ovr_from_heapkit(
        (void *)static_cast<void (*)(void *, std::size_t, std::align_val_t)>(&::operator delete),
        "&operator delete(void*, size_t, align_val_t)"));
}

static bool aligned(const void *p, std::size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

/* p is a live heapkit block of at least n bytes, aligned to a; after `del`
 * runs, it is no longer live (checked for small blocks, whose liveness
 * heapkit can tell exactly). */
template <class Del>
static bool check_form(const char *what, void *p, std::size_t n, std::size_t a, Del del) {
    bool ok = p != nullptr && ovr_owned(p) && aligned(p, a) && malloc_usable_size(p) >= n;
    if (p) memset(p, 0x5c, n);
    del(p);
    if (p && n <= 1024 && ovr_owned(p)) {
        fprintf(stderr, "%s: block %p still live after delete\n", what, p);
        ok = false;
    }
    if (!ok) fprintf(stderr, "%s (size %zu, align %zu): %p\n", what, n, a, p);
    return ok;
}

static void test_forms() {
    const std::size_t sizes[] = {1, 8, 24, 100, 1000, 5000, 100000, 3 << 20};
    int bad = 0;
    for (std::size_t n : sizes) {
        std::size_t base = n >= 16 ? 16 : 8;
        bad += !check_form("new", ::operator new(n), n, base, [](void *p) { ::operator delete(p); });
        bad += !check_form("new[]", ::operator new[](n), n, base,
                           [](void *p) { ::operator delete[](p); });
        bad += !check_form("new sized delete", ::operator new(n), n, base,
                           [n](void *p) { ::operator delete(p, n); });
        bad += !check_form("new[] sized delete[]", ::operator new[](n), n, base,
                           [n](void *p) { ::operator delete[](p, n); });
        bad += !check_form("new nothrow", ::operator new(n, std::nothrow), n, base,
                           [](void *p) { ::operator delete(p, std::nothrow); });
        bad += !check_form("new[] nothrow", ::operator new[](n, std::nothrow), n, base,
                           [](void *p) { ::operator delete[](p, std::nothrow); });
        for (std::size_t a = 16; a <= (std::size_t)1 << 21; a *= 4) {
            std::align_val_t al{a};
            bad += !check_form("new aligned", ::operator new(n, al), n, a,
                               [al](void *p) { ::operator delete(p, al); });
            bad += !check_form("new[] aligned", ::operator new[](n, al), n, a,
                               [al](void *p) { ::operator delete[](p, al); });
            bad += !check_form("new aligned, sized delete", ::operator new(n, al), n, a,
                               [n, al](void *p) { ::operator delete(p, n, al); });
            bad += !check_form("new[] aligned, sized delete[]", ::operator new[](n, al), n, a,
                               [n, al](void *p) { ::operator delete[](p, n, al); });
            bad += !check_form("new aligned nothrow", ::operator new(n, al, std::nothrow), n, a,
                               [al](void *p) { ::operator delete(p, al, std::nothrow); });
            bad += !check_form("new[] aligned nothrow", ::operator new[](n, al, std::nothrow), n,
                               a, [al](void *p) { ::operator delete[](p, al, std::nothrow); });
        }
    }
    CHECK(bad == 0);
    /* new(0) is a unique pointer. */
    void *z1 = ::operator new(0), *z2 = ::operator new(0);
    CHECK(z1 && z2 && z1 != z2 && ovr_owned(z1) && ovr_owned(z2));
    ::operator delete(z1);
    ::operator delete(z2);
    /* delete of nullptr in every form is a no-op. */
    ::operator delete(nullptr);
    ::operator delete[](nullptr);
    ::operator delete(nullptr, std::align_val_t{64});
    ::operator delete(nullptr, std::size_t{8});
}

struct alignas(64) Line {
    char bytes[64];
};
struct alignas(4096) PageObj {
    int x;
};
struct Node {
    Node *next;
    long value;
    std::string name;
};

static void test_expressions() {
    Node *n = new Node{nullptr, 42, std::string(100, 'n')};
    CHECK(ovr_owned(n) && ovr_owned(n->name.data()));
    delete n;
    int *arr = new int[1000]();
    CHECK(ovr_owned(arr) && arr[999] == 0);
    delete[] arr;
    Line *l = new Line;
    CHECK(ovr_owned(l) && aligned(l, 64));
    delete l;
    Line *ls = new Line[100];
    CHECK(aligned(ls, 64));
    delete[] ls;
    PageObj *po = new PageObj{7};
    CHECK(ovr_owned(po) && aligned(po, 4096) && po->x == 7);
    delete po;
    PageObj *pa = new (std::nothrow) PageObj[3];
    CHECK(pa && aligned(pa, 4096));
    delete[] pa;

    /* Containers and smart pointers, through std::allocator. */
    std::vector<long> v;
    for (long i = 0; i < 100000; i++) v.push_back(i);
    CHECK(ovr_owned(v.data()));
    std::vector<Line> vl(100);
    CHECK(aligned(vl.data(), 64) && ovr_owned(vl.data()));
    auto sp = std::make_shared<std::string>(200, 's');
    CHECK(ovr_owned(sp->data()));
    auto up = std::make_unique<PageObj>();
    CHECK(aligned(up.get(), 4096) && ovr_owned(up.get()));
    std::map<int, std::string> m;
    std::unordered_map<std::string, int> um;
    std::list<std::vector<int>> li;
    for (int i = 0; i < 20000; i++) {
        m[i] = std::to_string(i);
        um[std::to_string(i * 3)] = i;
        if (i % 100 == 0) li.emplace_back((std::size_t)i, i);
    }
    long sum = 0;
    for (auto &kv : m) sum += std::stol(kv.second);
    for (auto &kv : um) sum -= kv.second;
    CHECK(sum == 0 && um.size() == 20000 && li.size() == 200);
    m.clear();
    um.clear();
    li.clear();
    /* libstdc++'s own allocations (inside the library) are heapkit's too. */
    std::string s = std::to_string(1234567) + std::string(1000, 'x');
    CHECK(ovr_owned(s.data()));
    try {
        throw std::runtime_error(std::string(500, 'e')); /* exception object: __cxa_allocate_exception */
    } catch (const std::exception &e) {
        CHECK(strlen(e.what()) == 500);
    }
}

static int handler_calls;
static void counting_handler() {
    handler_calls++;
    std::set_new_handler(nullptr); /* next failure throws */
}

template <class F>
static bool throws_bad_alloc(F f) {
    try {
        void *p = f();
        fprintf(stderr, "no exception; got %p\n", p);
        return false;
    } catch (const std::bad_alloc &) {
        return true;
    } catch (...) {
        fprintf(stderr, "some other exception\n");
        return false;
    }
}

static void test_absurd() {
    volatile std::size_t huge = SIZE_MAX - 4096;
    volatile std::size_t half = (std::size_t)PTRDIFF_MAX + 1;
    volatile std::size_t ptrdiff = (std::size_t)PTRDIFF_MAX;
    CHECK(throws_bad_alloc([&] { return ::operator new(huge); }));
    CHECK(throws_bad_alloc([&] { return ::operator new[](half); }));
    CHECK(throws_bad_alloc([&] { return ::operator new(ptrdiff); }));
    CHECK(throws_bad_alloc([&] { return ::operator new(huge, std::align_val_t{64}); }));
    CHECK(throws_bad_alloc([&] { return ::operator new[](huge, std::align_val_t{4096}); }));
    /* A new-expression whose count overflows: std::bad_array_new_length. */
    volatile std::size_t count = SIZE_MAX / 2;
    CHECK(throws_bad_alloc([&] { return (void *)new long[count]; }));
    /* nothrow forms return nullptr. */
    CHECK(::operator new(huge, std::nothrow) == nullptr);
    CHECK(::operator new[](half, std::nothrow) == nullptr);
    CHECK(::operator new(huge, std::align_val_t{64}, std::nothrow) == nullptr);
    CHECK(::operator new[](huge, std::align_val_t{64}, std::nothrow) == nullptr);
    CHECK(new (std::nothrow) char[count] == nullptr);
    /* The new handler is called before giving up. */
    handler_calls = 0;
    std::set_new_handler(counting_handler);
    CHECK(throws_bad_alloc([&] { return ::operator new(huge); }));
    CHECK(handler_calls == 1);
    handler_calls = 0;
    std::set_new_handler(counting_handler);
    CHECK(::operator new(huge, std::nothrow) == nullptr);
    CHECK(handler_calls == 1);
    handler_calls = 0;
    std::set_new_handler(counting_handler);
    CHECK(throws_bad_alloc([&] { return ::operator new(huge, std::align_val_t{128}); }));
    CHECK(handler_calls == 1);
    std::set_new_handler(nullptr);
    /* Ordinary allocation still works. */
    void *p = ::operator new(100);
    CHECK(ovr_owned(p));
    ::operator delete(p);
}

/* ---- out of memory under RLIMIT_AS, in a child ---------------------------------- */
static char *reserve;
static int oom_handler_calls;
static void freeing_handler() {
    oom_handler_calls++;
    if (reserve) {
        free(reserve);
        reserve = nullptr;
        malloc_trim(0); /* return the address space now */
    } else {
        std::set_new_handler(nullptr);
    }
}

static void oom_child() {
    unsigned f0 = hk_test_failed;
    long pages = 0, rss;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld %ld", &pages, &rss) != 2) _exit(99);
    fclose(f);
    std::size_t page = (std::size_t)sysconf(_SC_PAGESIZE);
    struct rlimit rl;
    rl.rlim_cur = rl.rlim_max = (rlim_t)pages * page + 192 * MiB;
    if (setrlimit(RLIMIT_AS, &rl) != 0) _exit(98);
    /* 100 MiB reserve, then more than is left: new fails and throws. */
    reserve = (char *)malloc(100 * MiB);
    CHECK(reserve != nullptr);
    if (reserve) memset(reserve, 1, 100 * MiB);
    CHECK(throws_bad_alloc([] { return ::operator new(150 * MiB); }));
    CHECK(::operator new(150 * MiB, std::nothrow) == nullptr);
    CHECK(throws_bad_alloc([] { return ::operator new(150 * MiB, std::align_val_t{4096}); }));
    std::vector<char> *vec = nullptr;
    CHECK(throws_bad_alloc([&] {
        vec = new std::vector<char>(150 * MiB);
        return (void *)vec;
    }));
    /* A handler that frees the reserve: the retry succeeds. */
    oom_handler_calls = 0;
    std::set_new_handler(freeing_handler);
    void *p = nullptr;
    try {
        p = ::operator new(150 * MiB);
    } catch (const std::bad_alloc &) {
        p = nullptr;
    }
    CHECK(p != nullptr);
    CHECK(oom_handler_calls >= 1);
    if (p) {
        CHECK(ovr_owned(p));
        memset(p, 2, 150 * MiB);
        ::operator delete(p);
    }
    printf("  out of memory: new threw; the new handler ran %d time(s) and the retry %s\n",
           oom_handler_calls, p ? "succeeded" : "failed");
    fflush(stdout);
    _exit(hk_test_failed != f0 ? 1 : 0);
}

static void test_oom() {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) oom_child();
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status)) fprintf(stderr, "oom child: status %#x\n", status);
}

/* ---- delete of a foreign pointer ----------------------------------------------- */
static int a_static[16];
static void delete_static(void *) { ::operator delete(sink(&a_static[2])); }
static void delete_array_stack(void *) {
    int local[8];
    ::operator delete[](sink(&local[1]));
}

static bool death_reports(void (*fn)(void *), const void *addr, const char *what) {
    char out[8192], expect[128];
    snprintf(expect, sizeof expect, "heapkit: free(): invalid pointer %p\n", addr);
    bool ok = hk_expect_death_ex(fn, nullptr, expect, nullptr, out, sizeof out);
    if (!ok) fprintf(stderr, "%s: want \"%s\", got \"%s\"\n", what, expect, out);
    return ok;
}

static void test_delete_foreign() {
    CHECK(death_reports(delete_static, &a_static[2], "delete of a static"));
    /* The stack address differs in the child only by what the frame
     * holds: check the message kind only. */
    char out[8192];
    CHECK(hk_expect_death_ex(delete_array_stack, nullptr, "heapkit: free(): invalid pointer 0x",
                             nullptr, out, sizeof out));
}

int main() {
    ovr_init();
    struct {
        const char *name;
        void (*fn)();
    } tests[] = {{"binding", test_binding},         {"forms", test_forms},
                 {"expressions", test_expressions}, {"absurd", test_absurd},
                 {"oom", test_oom},                 {"delete_foreign", test_delete_foreign}};
    for (auto &t : tests) {
        unsigned f0 = hk_test_failed;
        double t0 = ovr_now();
        t.fn();
        printf("%-15s %s (%.2f s)\n", t.name, hk_test_failed == f0 ? "ok" : "FAILED",
               ovr_now() - t0);
        fflush(stdout);
    }
    printf("mode: %s\n", OVR_MODE);
    return hk_test_done();
}
