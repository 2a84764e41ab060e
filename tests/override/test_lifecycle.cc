// ctest-timeout: 180
// test_lifecycle: heapkit from the first allocation of the process to the
// last, including the awkward moments.
//   - before main: the constructor of a linked library (lib_early.c)
//     allocates with every function of the family (the process's first
//     malloc), then the program's own constructor and a C++ static object;
//   - dlopen of a module that allocates in its constructor and frees in its
//     destructor (at dlclose and at exit), with dynamic TLS that the
//     dynamic linker allocates with malloc in every thread;
//   - thread creation and exit: pthread_key destructors (which run after
//     heapkit retired the thread's heap) that free, allocate with malloc,
//     calloc, realloc and new, and set the key again; C++ thread_local
//     destructors that allocate; libc's per-thread buffers (strerror,
//     dlerror) freed at thread exit; joinable, detached and std::thread
//     threads, pthread_exit, threads that start threads;
//   - after main: atexit handlers that allocate and free, free what main
//     allocated, start a thread, register another handler; the main
//     thread's thread_local destructor; static destructors; the destructors
//     of the libraries;
//   - exit() while other threads are allocating hard.
// The program runs itself as a child (--child, --busy-exit) and checks the
// child's exit status and every line it printed, so that what happens after
// main is checked too; once more with HEAPKIT_SHOW_STATS=1. A hang (a
// recursion or a lock held during start-up) is killed by an alarm and fails.
#include "ovr.h"

#include <malloc.h>
#include <pthread.h>

#include <atomic>
#include <map>
#include <new>
#include <string>
#include <thread>
#include <vector>

extern "C" {
int ovr_early_check(void);
void *ovr_early_block(void);
extern int ovr_early_report;
}

static void say(const char *s) {
    ssize_t w = write(1, s, strlen(s));
    (void)w;
}
static void say_ok(const char *what, bool ok) {
    char line[128];
    snprintf(line, sizeof line, "%s %s\n", what, ok ? "ok" : "FAILED");
    say(line);
}

static bool g_report; /* set by the child's main: print the after-main lines */

/* ---- before main ------------------------------------------------------------------- */
static int exe_ctor_bad = -1;
static char *exe_early;

__attribute__((constructor(101))) static void exe_ctor(void) {
    int bad = ovr_early_check(); /* the library's constructor ran first */
    exe_early = (char *)malloc(5000);
    if (!exe_early) bad++;
    else ovr_fill(exe_early, 5000, 5000);
    std::string *s = new std::string(1000, 'c');
    bad += (*s)[999] != 'c';
    delete s;
    exe_ctor_bad = bad;
}

struct Global {
    std::vector<std::string> v;
    std::map<int, std::string> m;
    Global() {
        for (int i = 0; i < 1000; i++) {
            v.push_back(std::string((size_t)(i % 100 + 20), (char)('a' + i % 26)));
            m[i] = std::to_string(i * 7);
        }
    }
    ~Global() {
        bool ok = v.size() == 1000 && m.size() == 1000;
        for (int i = 0; ok && i < 1000; i++)
            ok = v[(size_t)i] == std::string((size_t)(i % 100 + 20), (char)('a' + i % 26)) &&
                 m[i] == std::to_string(i * 7);
        v.clear();
        v.shrink_to_fit();
        m.clear();
        std::vector<std::string> tmp;
        for (int i = 0; i < 2000; i++) tmp.emplace_back((size_t)(i % 300 + 1), 'g');
        if (g_report) say_ok("static-dtor", ok);
    }
};
static Global global;

/* ---- threads ------------------------------------------------------------------------ */
enum { JOINED = 160, DETACHED = 16, STD_THREADS = 4, BATCH = 8 };
enum { NTHREADS = JOINED + DETACHED + STD_THREADS };

static pthread_key_t key;
static std::atomic<void *> dtor_blocks[NTHREADS * 2];
static std::atomic<int> dtor_bad{0}, dtor_runs{0}, tl_dtor_runs{0}, tl_bad{0}, thread_bad{0};
static std::atomic<int> detached_done{0};
static void *(*dl_tls_fill)(int);
static int (*dl_tls_check)(int);

struct KeyVal {
    int id, iter;
    bool detached;
    char *block;
    size_t size;
};

static size_t dtor_block_size(int id) { return 100 + (size_t)id * 3; }

/* Runs after heapkit's own key destructor retired the thread's heap. */
static void key_dtor(void *v) {
    KeyVal *kv = (KeyVal *)v;
    int bad = 0;
    if (!ovr_check(kv->block, (uint64_t)(kv->id * 2 + kv->iter), kv->size)) bad++;
    free(kv->block);
    size_t n = dtor_block_size(kv->id);
    char *b = (char *)malloc(n);
    if (!b) bad++;
    else ovr_fill(b, (uint64_t)(50000 + kv->id * 2 + kv->iter), n);
    char *c = (char *)calloc(1, 5000);
    if (!c) bad++;
    else {
        for (int i = 0; i < 5000; i++) bad += c[i] != 0;
        free(c);
    }
    char *m = (char *)malloc(200 * 1024);
    if (!m) bad++;
    else {
        memset(m, 1, 200 * 1024);
        char *m2 = (char *)realloc(m, 400 * 1024);
        if (!m2) { bad++; free(m); }
        else { bad += m2[200 * 1024 - 1] != 1; free(m2); }
    }
    {
        std::string s(2000, 'k');
        std::vector<int> vec(1000, kv->id);
        bad += s[1999] != 'k' || vec[999] != kv->id;
    }
    dtor_blocks[kv->id * 2 + kv->iter].store(b);
    if (kv->iter == 0) {
        /* Set the key again: the destructor runs a second time. */
        KeyVal *again = new KeyVal{kv->id, 1, kv->detached, (char *)malloc(64), 64};
        ovr_fill(again->block, (uint64_t)(kv->id * 2 + 1), 64);
        pthread_setspecific(key, again);
    } else if (kv->detached) {
        detached_done++;
    }
    delete kv;
    dtor_bad += bad;
    dtor_runs++;
}

struct TL {
    std::vector<int> v;
    char *p = nullptr;
    int id = -1;
    ~TL() {
        if (id < 0) return;
        int bad = 0;
        for (size_t i = 0; i < v.size(); i++) bad += v[i] != id;
        if (!ovr_check(p, (uint64_t)(90000 + id), 1000)) bad++;
        free(p);
        v.clear();
        v.shrink_to_fit();
        for (int k = 0; k < 100; k++) free(sink(malloc((size_t)k * 10 + 1)));
        std::vector<std::string> tmp(100, std::string(100, 't'));
        bad += tmp[99][99] != 't';
        tl_bad += bad;
        tl_dtor_runs++;
        if (id == 9999 && g_report) say_ok("main-tl-dtor", bad == 0);
    }
};
static thread_local TL tl;

static void *nested(void *) {
    void *p = malloc(3000);
    memset(p, 3, 3000);
    return p;
}

static void *thread_main(void *arg) {
    int id = (int)(intptr_t)arg & 0xffff;
    bool detached = ((intptr_t)arg >> 16) & 1;
    int bad = 0;
    tl.id = id;
    tl.p = (char *)malloc(1000);
    ovr_fill(tl.p, (uint64_t)(90000 + id), 1000);
    tl.v.assign(1000, id);
    KeyVal *kv = new KeyVal{id, 0, detached, (char *)malloc(777), 777};
    ovr_fill(kv->block, (uint64_t)(id * 2), 777);
    pthread_setspecific(key, kv);
    /* Dynamic TLS of the dlopened module: malloc'd by the dynamic linker. */
    if (dl_tls_fill) {
        dl_tls_fill(id & 0xff);
        bad += dl_tls_check(id & 0xff) != 0;
    }
    /* libc's per-thread buffers, freed by libc at thread exit. */
    const char *e = strerror(100000 + id);
    bad += strstr(e, "Unknown error") == NULL;
    (void)dlsym(RTLD_DEFAULT, "ovr_no_such_symbol");
    bad += dlerror() == NULL;
    /* Ordinary work. */
    hk_rng_t rng = hk_rng_seeded((uint64_t)id);
    void *v[64] = {0};
    for (int i = 0; i < 2000; i++) {
        int k = (int)hk_rng_below(&rng, 64);
        free(v[k]);
        v[k] = malloc(1 + hk_rng_below(&rng, i % 100 == 0 ? 100000 : 600));
        if (!v[k]) bad++;
    }
    for (int k = 0; k < 64; k++) free(v[k]);
    if (id % 5 == 0) {
        pthread_t t;
        void *r = NULL;
        if (pthread_create(&t, NULL, nested, NULL) == 0 && pthread_join(t, &r) == 0 && r) {
            bad += ((char *)r)[2999] != 3;
            free(r);
        } else {
            bad++;
        }
    }
    thread_bad += bad;
    if (id % 2) pthread_exit(NULL);
    return NULL;
}

static void run_threads(void) {
    pthread_key_create(&key, key_dtor);
    int next = 0;
    while (next < JOINED) {
        pthread_t t[BATCH];
        int n = 0;
        for (; n < BATCH && next < JOINED; n++, next++)
            REQUIRE(pthread_create(&t[n], NULL, thread_main, (void *)(intptr_t)next) == 0);
        for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (int i = 0; i < DETACHED; i++) {
        pthread_t t;
        intptr_t arg = (intptr_t)(JOINED + i) | ((intptr_t)1 << 16);
        REQUIRE(pthread_create(&t, &attr, thread_main, (void *)arg) == 0);
    }
    pthread_attr_destroy(&attr);
    std::vector<std::thread> st;
    for (int i = 0; i < STD_THREADS; i++)
        st.emplace_back([i] { thread_main((void *)(intptr_t)(JOINED + DETACHED + i)); });
    for (auto &t : st) t.join();
    double t0 = ovr_now();
    while (detached_done.load() < DETACHED && ovr_now() - t0 < 30) usleep(1000);
    /* The detached threads' last moments (after their last destructor). */
    usleep(20000);
    CHECK(detached_done.load() == DETACHED);
    CHECK(dtor_runs.load() == 2 * NTHREADS);
    CHECK(tl_dtor_runs.load() == NTHREADS);
    CHECK(dtor_bad.load() == 0);
    CHECK(tl_bad.load() == 0);
    CHECK(thread_bad.load() == 0);
    /* The blocks allocated in the key destructors outlive their threads. */
    int bad = 0;
    for (int i = 0; i < NTHREADS * 2; i++) {
        char *b = (char *)dtor_blocks[i].load();
        if (!b || !ovr_check(b, (uint64_t)(50000 + i), dtor_block_size(i / 2))) bad++;
        free(b);
    }
    CHECK(bad == 0);
    printf("threads: %d thread lifetimes, %d key destructor runs, %d thread_local destructors\n",
           NTHREADS, dtor_runs.load(), tl_dtor_runs.load());
}

/* ---- after main ---------------------------------------------------------------------- */
static char *main_block;

static void at_last(void) {
    int bad = 0;
    std::vector<void *> v;
    for (int i = 0; i < 10000; i++) {
        void *p = malloc((size_t)(i % 700) + 1);
        if (!p) bad++;
        v.push_back(p);
    }
    for (void *p : v) free(p);
    char *h = (char *)malloc(3 * MiB);
    char *h2 = h ? (char *)realloc(h, 30 * MiB) : NULL;
    if (!h2) { bad++; free(h); }
    else { h2[30 * MiB - 1] = 1; free(h2); }
    say_ok("atexit-last", bad == 0);
}
static void at_free(void) {
    bool ok = main_block && ovr_check(main_block, 777, 100000);
    free(main_block);
    void *leak = malloc(100); /* never freed: the process ends anyway */
    ok = ok && leak;
    say_ok("atexit-free", ok);
}
static void *exit_thread(void *) {
    void *v[100];
    for (int i = 0; i < 100; i++) v[i] = malloc((size_t)i * 50 + 1);
    for (int i = 0; i < 100; i++) free(v[i]);
    char *r = (char *)malloc(1000);
    if (r) memset(r, 9, 1000);
    return r;
}
static void at_thread(void) {
    pthread_t t;
    void *r = NULL;
    bool ok = pthread_create(&t, NULL, exit_thread, NULL) == 0 && pthread_join(t, &r) == 0 && r &&
              ((char *)r)[999] == 9;
    free(r);
    say_ok("atexit-thread", ok);
}
static void at_nested(void) {
    std::string s(100000, 'n');
    char *p = strdup(s.c_str());
    bool ok = p && strlen(p) == 100000;
    free(p);
    say_ok("atexit-nested", ok);
}
static void at_register(void) {
    bool ok = atexit(at_nested) == 0;
    void *p = calloc(100, 100);
    ok = ok && p;
    free(p);
    say_ok("atexit-register", ok);
}

static int child_main(const char *dlpath) {
    ovr_init();
    g_report = true;
    ovr_early_report = 1;
    /* Before main. */
    CHECK(ovr_early_check() == 0);
    CHECK(ovr_owned(ovr_early_block()));
    CHECK(exe_ctor_bad == 0);
    CHECK(exe_early && ovr_owned(exe_early) && ovr_check(exe_early, 5000, 5000));
    free(exe_early);
    say_ok("early-ctor", ovr_early_check() == 0 && ovr_owned(ovr_early_block()));
    say_ok("exe-ctor", exe_ctor_bad == 0);

    /* dlopen, use, dlclose, dlopen again and keep it for exit. */
    bool dl_ok = true;
    void *h = dlopen(dlpath, RTLD_NOW);
    REQUIRE(h != NULL);
    int (*dl_check)(void) = (int (*)(void))dlsym(h, "ovr_dl_check");
    char *(*dl_make)(size_t) = (char *(*)(size_t))dlsym(h, "ovr_dl_make");
    int *dl_report = (int *)dlsym(h, "ovr_dl_report");
    REQUIRE(dl_check && dl_make && dl_report);
    dl_ok &= dl_check() == 0;
    char *s = dl_make(1000);
    dl_ok &= s && ovr_owned(s) && strlen(s) == 1000;
    free(s);
    *dl_report = 1;
    dl_ok &= dlclose(h) == 0; /* its destructor says "dl-dtor ok" */
    h = dlopen(dlpath, RTLD_NOW);
    REQUIRE(h != NULL);
    dl_check = (int (*)(void))dlsym(h, "ovr_dl_check");
    dl_report = (int *)dlsym(h, "ovr_dl_report");
    dl_tls_fill = (void *(*)(int))dlsym(h, "ovr_dl_tls_fill");
    dl_tls_check = (int (*)(int))dlsym(h, "ovr_dl_tls_check");
    REQUIRE(dl_check && dl_report && dl_tls_fill && dl_tls_check);
    dl_ok &= dl_check() == 0;
    *dl_report = 1; /* and again at exit */
    CHECK(dl_ok);
    say_ok("dlopen", dl_ok);

    unsigned f0 = hk_test_failed;
    run_threads();
    say_ok("threads", hk_test_failed == f0);

    /* The main thread's own thread_local: destroyed in exit(). */
    tl.id = 9999;
    tl.p = (char *)malloc(1000);
    ovr_fill(tl.p, 90000 + 9999, 1000);
    tl.v.assign(100, 9999);

    main_block = (char *)malloc(100000);
    ovr_fill(main_block, 777, 100000);
    /* Run in reverse: at_register (which adds at_nested, run next),
     * at_thread, at_free, at_last; then static destructors, then the
     * libraries' destructors. */
    atexit(at_last);
    atexit(at_free);
    atexit(at_thread);
    atexit(at_register);
    return hk_test_done();
}

/* exit() while four threads allocate as fast as they can. */
static std::atomic<bool> busy_started[4];
static void *busy(void *arg) {
    int id = (int)(intptr_t)arg;
    hk_rng_t rng = hk_rng_seeded((uint64_t)id + 77);
    void *v[256] = {0};
    busy_started[id] = true;
    for (uint64_t i = 0;; i++) {
        int k = (int)hk_rng_below(&rng, 256);
        free(v[k]);
        v[k] = malloc(1 + hk_rng_below(&rng, i % 64 == 0 ? 300000 : 1000));
        if (v[k]) ((char *)v[k])[0] = 1;
    }
    return NULL;
}
static void at_busy(void) {
    int bad = 0;
    for (int i = 0; i < 20000; i++) {
        void *p = malloc((size_t)(i % 2000) + 1);
        if (!p) bad++;
        free(p);
    }
    say_ok("busy-exit", bad == 0);
}
static int busy_exit_main(void) {
    ovr_init();
    g_report = false;
    atexit(at_busy);
    for (int i = 0; i < 4; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, busy, (void *)(intptr_t)i) != 0) return 3;
    }
    for (int i = 0; i < 4; i++)
        while (!busy_started[i]) usleep(100);
    usleep(20000);
    exit(0);
}

/* ---- the parent: runs the children and checks what they said -------------------- */
static int count(const char *text, const char *what) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, what)) != NULL; p += strlen(what)) n++;
    return n;
}

static void check_child(const char *label, ovr_run_t *r, bool stats) {
    static const char *once[] = {"early-ctor ok", "exe-ctor ok", "dlopen ok", "threads ok",
                                 "main-tl-dtor ok", "atexit-register ok", "atexit-nested ok",
                                 "atexit-thread ok", "atexit-free ok", "atexit-last ok",
                                 "static-dtor ok", "early-dtor ok"};
    bool ok = ovr_exited_ok(r) && !r->timed_out;
    for (size_t i = 0; i < sizeof once / sizeof once[0]; i++) {
        int n = count(r->out, once[i]);
        if (n != 1) {
            fprintf(stderr, "%s: \"%s\" printed %d times\n", label, once[i], n);
            ok = false;
        }
    }
    if (count(r->out, "dl-dtor ok") != 2) {
        fprintf(stderr, "%s: \"dl-dtor ok\" printed %d times, want 2 (dlclose, exit)\n", label,
                count(r->out, "dl-dtor ok"));
        ok = false;
    }
    if (strstr(r->out, "FAILED") || !strstr(r->out, " passed, 0 failed")) ok = false;
    /* In order: main's atexit handlers, static destructors, libraries. */
    const char *order[] = {"atexit-register ok", "atexit-nested ok", "atexit-thread ok",
                           "atexit-free ok", "atexit-last ok", "static-dtor ok"};
    for (size_t i = 0; i + 1 < sizeof order / sizeof order[0]; i++) {
        const char *a = strstr(r->out, order[i]), *b = strstr(r->out, order[i + 1]);
        if (a && b && a > b) {
            fprintf(stderr, "%s: \"%s\" before \"%s\"\n", label, order[i + 1], order[i]);
            ok = false;
        }
    }
    const char *sd = strstr(r->out, "static-dtor ok"), *ed = strstr(r->out, "early-dtor ok");
    const char *dd = strstr(r->out, "dl-dtor ok");
    if (dd) dd = strstr(dd + 1, "dl-dtor ok"); /* the one at exit */
    if (sd && ((ed && ed < sd) || (dd && dd < sd))) {
        fprintf(stderr, "%s: a library destructor ran before the static destructors\n", label);
        ok = false;
    }
    if (strstr(r->err, "heapkit:") && !stats) ok = false;
    if (stats && !strstr(r->err, "heapkit statistics")) {
        fprintf(stderr, "%s: no statistics at exit with HEAPKIT_SHOW_STATS=1\n", label);
        ok = false;
    }
    if (strstr(r->err, "heapkit: free") || strstr(r->err, "heapkit: realloc")) ok = false;
    CHECK(ok);
    printf("%s: status %#x%s\n", label, r->status, r->timed_out ? " (hung: killed)" : "");
    if (!ok)
        fprintf(stderr, "---- %s stdout:\n%s---- %s stderr:\n%s----\n", label, r->out, label,
                r->err);
}

int main(int argc, char **argv) {
    if (argc >= 4 && strcmp(argv[3], "--child") == 0) return child_main(argv[2]);
    if (argc >= 4 && strcmp(argv[3], "--busy-exit") == 0) return busy_exit_main();
    if (argc < 3) {
        fprintf(stderr, "usage: %s LIBHEAPKIT LIBOVR_DL\n", argv[0]);
        return 2;
    }
    ovr_init();
    static ovr_run_t r;
    char *child[] = {(char *)"/proc/self/exe", argv[1], argv[2], (char *)"--child", NULL};
    double t0 = ovr_now();
    ovr_run(child, NULL, NULL, 60, &r);
    check_child("child", &r, false);
    printf("  (%.2f s)\n", ovr_now() - t0);

    /* The same with statistics printed at exit. */
    static char preload[4096];
    snprintf(preload, sizeof preload, "LD_PRELOAD=%s", argv[1]);
#ifdef OVR_PRELOAD
    char **env = ovr_env("HEAPKIT_SHOW_STATS=1", preload, NULL, NULL);
#else
    char **env = ovr_env("HEAPKIT_SHOW_STATS=1", NULL, NULL, NULL);
#endif
    ovr_run(child, env, NULL, 60, &r);
    check_child("child with HEAPKIT_SHOW_STATS=1", &r, true);

    /* exit() while other threads allocate: no crash, no hang. */
    char *busy_child[] = {(char *)"/proc/self/exe", argv[1], argv[2], (char *)"--busy-exit",
                          NULL};
    int busy_bad = 0;
    for (int i = 0; i < 20; i++) {
        ovr_run(busy_child, NULL, NULL, 30, &r);
        bool ok = ovr_exited_ok(&r) && count(r.out, "busy-exit ok") == 1 && !r.err[0];
        if (!ok) {
            busy_bad++;
            fprintf(stderr, "busy exit run %d: status %#x%s\nstdout:\n%s\nstderr:\n%s\n", i,
                    r.status, r.timed_out ? " (hung)" : "", r.out, r.err);
        }
    }
    CHECK(busy_bad == 0);
    printf("exit() with 4 threads allocating: %d of 20 runs failed\n", busy_bad);
    printf("mode: %s\n", OVR_MODE);
    return hk_test_done();
}
