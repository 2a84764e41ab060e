/* hkt_child.c: the program the heapkit command's tests run and inspect.
 *
 * Owns: small behaviours with known outcomes, one per mode:
 *   exit N        "child out" on stdout, "child err" on stderr, some
 *                 mallocs, exit(N) (atexit handlers run, unlike a shell's)
 *   signal N      dies of signal N
 *   env           prints LD_PRELOAD and every HEAPKIT_* variable, and
 *                 whether heapkit's hk_malloc is loaded
 *   map           a recognisable layout, described on one line, then waits
 *                 for stdin to close: an anonymous map at a fixed address
 *                 with some pages touched, a brk area, a file map, a
 *                 thread blocked in read(), a 1 MiB bss
 *   alloc         small blocks and a huge one (on heapkit when preloaded),
 *                 their addresses on one line, then waits
 *   stats         mallocs of known count and a second thread, hk_stats()
 *                 through dlsym so the figures are published, "ready PID",
 *                 then waits
 *   fake-stats    answers HEAPKIT_STATS_SIGNAL the way the library does
 *                 (fixed JSON, temporary file renamed into place), so the
 *                 command's side of the protocol is tested on its own;
 *                 "fake-stats mute" catches the signal and never answers
 *   wait          "ready PID", then waits
 * Every waiting mode ends when stdin reaches end of file.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "heapkit.h"

extern char **environ;

/* A bss the loader must map beyond the data's last page (external, so
 * that the compiler keeps all of it). */
char hkt_big_bss[1 << 20];

static void wait_stdin_eof(void) {
    char buf[256];
    for (;;) {
        ssize_t r = read(0, buf, sizeof buf);
        if (r == 0 || (r < 0 && errno != EINTR)) return;
    }
}

static _Atomic int thread_tid;

static void *blocked_thread(void *arg) {
    int fd = *(int *)arg;
    thread_tid = (int)syscall(SYS_gettid);
    char c;
    while (read(fd, &c, 1) < 0 && errno == EINTR) {
    }
    return NULL;
}

static int mode_map(void) {
    /* Anonymous: 1234 pages at a fixed spot, far from others, so the
     * kernel cannot merge the map with a neighbour; 100 pages touched. */
    size_t page = (size_t)sysconf(_SC_PAGESIZE), len = 1234 * page, touched = 100 * page;
    void *want = (void *)0x7e5000000000ul;
    char *anon = mmap(want, len, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (anon == MAP_FAILED)
        anon = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (anon == MAP_FAILED) return perror("mmap"), 1;
    madvise(anon, len, MADV_NOHUGEPAGE); /* so RSS is exactly the pages touched */
    for (size_t i = 0; i < touched; i += page) anon[i] = 1;

    /* brk */
    char *brk = sbrk(16 * (intptr_t)page);
    if (brk == (void *)-1) return perror("sbrk"), 1;
    memset(brk, 1, 16 * page);

    /* A file map. */
    char path[] = "/tmp/hkt_child_map.XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return perror("mkstemp"), 1;
    char block[4096] = {1};
    for (int i = 0; i < 3; i++)
        if (write(fd, block, sizeof block) != (ssize_t)sizeof block) return perror("write"), 1;
    void *file = mmap(NULL, 3 * sizeof block, PROT_READ, MAP_SHARED, fd, 0);
    if (file == MAP_FAILED) return perror("mmap file"), 1;

    /* A thread blocked in read(): its stack pointer is in the kernel's view. */
    int p[2];
    if (pipe(p) != 0) return perror("pipe"), 1;
    pthread_t t;
    if (pthread_create(&t, NULL, blocked_thread, &p[0]) != 0) return 1;
    while (thread_tid == 0) sched_yield();
    hkt_big_bss[0] = 1;
    hkt_big_bss[sizeof hkt_big_bss - 1] = 1;

    printf("ready pid=%d anon=%p len=%zu touched=%zu file=%s tid=%d\n", (int)getpid(),
           (void *)anon, len, touched, path, (int)thread_tid);
    fflush(stdout);
    wait_stdin_eof();
    close(p[1]);
    pthread_join(t, NULL);
    munmap(file, 3 * sizeof block);
    close(fd);
    unlink(path);
    return 0;
}

static int mode_alloc(void) {
    void *small[100];
    for (int i = 0; i < 100; i++) small[i] = malloc(48);
    char *huge = malloc(3u << 20);
    if (huge == NULL) return 1;
    memset(huge, 1, 3u << 20);
    printf("ready pid=%d small=%p huge=%p\n", (int)getpid(), small[50], (void *)huge);
    fflush(stdout);
    wait_stdin_eof();
    for (int i = 0; i < 100; i++) free(small[i]);
    free(huge);
    return 0;
}

static int mode_stats(void) {
    enum { N = 5000 };
    static void *blocks[N];
    for (int i = 0; i < N; i++) blocks[i] = malloc(100);
    /* A second thread, whose id the tests give `heapkit stats`. */
    int p[2];
    pthread_t t;
    if (pipe(p) != 0 || pthread_create(&t, NULL, blocked_thread, &p[0]) != 0) return 1;
    void (*stats)(hk_stats_t *) = (void (*)(hk_stats_t *))dlsym(RTLD_DEFAULT, "hk_stats");
    hk_stats_t s = {0};
    if (stats) stats(&s); /* publishes this thread's figures */
    printf("ready pid=%d blocks=%d heapkit=%s mallocs=%llu\n", (int)getpid(), N,
           stats ? "yes" : "no", (unsigned long long)s.mallocs);
    fflush(stdout);
    wait_stdin_eof();
    close(p[1]);
    pthread_join(t, NULL);
    for (int i = 0; i < N; i++) free(blocks[i]);
    return 0;
}

static volatile sig_atomic_t asked;
static void on_ask(int sig) {
    (void)sig;
    asked = 1;
}

static int mode_fake_stats(bool mute) {
    const char *env = getenv("HEAPKIT_STATS_SIGNAL");
    if (env == NULL) return fprintf(stderr, "no HEAPKIT_STATS_SIGNAL\n"), 1;
    int sig = atoi(env);
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, sig);
    sigprocmask(SIG_BLOCK, &block, &old);
    struct sigaction sa = {.sa_handler = on_ask};
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
    printf("ready pid=%d\n", (int)getpid());
    fflush(stdout);
    /* A signal -> answer (ppoll lets it in, and only there); stdin at end
     * of file -> exit. */
    unsigned answers = 0;
    for (;;) {
        struct pollfd pfd = {.fd = 0, .events = POLLIN};
        int r = ppoll(&pfd, 1, NULL, &old);
        if (asked && !mute) {
            answers++;
            char tmp[64], final[64];
            snprintf(tmp, sizeof tmp, "/tmp/heapkit-stats.%d.json.tmp", (int)getpid());
            snprintf(final, sizeof final, "/tmp/heapkit-stats.%d.json", (int)getpid());
            FILE *f = fopen(tmp, "w");
            if (f == NULL) return 1;
            fprintf(f,
                    "{\"live_bytes\":12345,\"live_bytes_peak\":23456,\"committed_bytes\":65536,"
                    "\"committed_peak\":131072,\"mapped_bytes\":4263936,\"mapped_peak\":8527872,"
                    "\"mallocs\":%u,\"frees\":900,\"live_blocks\":100,\"huge_live_bytes\":0,"
                    "\"heaps\":2,\"classes\":[{\"block_size\":16,\"live_blocks\":0,\"slabs\":0,"
                    "\"slab_bytes\":0},{\"block_size\":112,\"live_blocks\":77,\"slabs\":3,"
                    "\"slab_bytes\":49152}]}\n",
                    1000 + answers);
            fclose(f);
            rename(tmp, final);
        }
        asked = 0;
        if (r > 0) {
            char c;
            ssize_t n = read(0, &c, 1);
            if (n == 0 || (n < 0 && errno != EINTR)) break;
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: hkt_child exit N | signal N | env | map | alloc | stats | "
                        "fake-stats [mute] | wait\n");
        return 2;
    }
    const char *mode = argv[1];
    if (!strcmp(mode, "exit") && argc == 3) {
        void *p = malloc(1000);
        printf("child out\n");
        fprintf(stderr, "child err\n");
        free(p);
        exit(atoi(argv[2]));
    }
    if (!strcmp(mode, "signal") && argc == 3) {
        int sig = atoi(argv[2]);
        signal(sig, SIG_DFL);
        fflush(stdout);
        raise(sig);
        return 1;
    }
    if (!strcmp(mode, "env")) {
        for (char **e = environ; *e; e++)
            if (!strncmp(*e, "HEAPKIT_", 8) || !strncmp(*e, "LD_PRELOAD=", 11)) printf("%s\n", *e);
        printf("hk_malloc=%s\n", dlsym(RTLD_DEFAULT, "hk_malloc") ? "yes" : "no");
        return 0;
    }
    if (!strcmp(mode, "map")) return mode_map();
    if (!strcmp(mode, "alloc")) return mode_alloc();
    if (!strcmp(mode, "stats")) return mode_stats();
    if (!strcmp(mode, "fake-stats")) return mode_fake_stats(argc > 2 && !strcmp(argv[2], "mute"));
    if (!strcmp(mode, "wait")) {
        printf("ready pid=%d\n", (int)getpid());
        fflush(stdout);
        wait_stdin_eof();
        return 0;
    }
    fprintf(stderr, "hkt_child: unknown mode %s\n", mode);
    return 2;
}
