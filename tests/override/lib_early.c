/* lib_early.c: libovr_early.so, linked into test_lifecycle.
 *
 * Its constructor runs before main (and before the program's constructors):
 * with the program linked against heapkit or preloaded, it is where the
 * first malloc of the process happens, so heapkit starts up inside another
 * library's constructor. It uses every function of the family and keeps
 * one block for the program to check. Its destructor runs after main, after
 * the atexit handlers and static destructors (from the dynamic linker's
 * fini), and allocates and frees again; with ovr_early_report set it says
 * "early-dtor ok" (or FAILED) on stdout with write(2).
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EARLY_SIZE ((size_t)1 << 20)

static char *early_block;
static int early_failures;
int ovr_early_report;

static unsigned char early_byte(size_t i) { return (unsigned char)(i * 7 + 3); }

__attribute__((constructor)) static void early_ctor(void) {
    char *p = malloc(100);
    if (!p) { early_failures++; return; }
    memset(p, 'e', 100);
    char *z = calloc(1000, 8);
    if (!z) early_failures++;
    else {
        for (int i = 0; i < 8000; i++) early_failures += z[i] != 0;
        free(z);
    }
    char *s = strdup("before main");
    if (!s || strcmp(s, "before main")) early_failures++;
    free(s);
    void *a = NULL;
    if (posix_memalign(&a, 64, 1000) || ((uintptr_t)a & 63)) early_failures++;
    free(a);
    a = aligned_alloc(4096, 8192);
    if (!a || ((uintptr_t)a & 4095)) early_failures++;
    free(a);
    a = valloc(100);
    if (!a || ((uintptr_t)a & 4095)) early_failures++;
    free(a);
    /* Grow the first block to 1 MiB through realloc and keep it. */
    char *q = realloc(p, EARLY_SIZE);
    if (!q) { free(p); early_failures++; return; }
    for (int i = 0; i < 100; i++) early_failures += q[i] != 'e';
    for (size_t i = 0; i < EARLY_SIZE; i++) q[i] = (char)early_byte(i);
    early_block = q;
}

/* 0 when the constructor went well and the kept block is intact. */
int ovr_early_check(void) {
    if (!early_block) return -1;
    int bad = early_failures;
    for (size_t i = 0; i < EARLY_SIZE; i++) bad += (unsigned char)early_block[i] != early_byte(i);
    return bad;
}

void *ovr_early_block(void) { return early_block; }

static void say(const char *s) {
    ssize_t w = write(1, s, strlen(s));
    (void)w;
}

__attribute__((destructor)) static void early_dtor(void) {
    int bad = ovr_early_check();
    free(early_block);
    early_block = NULL;
    /* Allocate and free after everything else has finished. */
    void *v[256];
    for (int i = 0; i < 256; i++) {
        v[i] = malloc((size_t)(i * 37 % 3000) + 1);
        if (!v[i]) bad++;
        else memset(v[i], i, (size_t)(i * 37 % 3000) + 1);
    }
    for (int i = 0; i < 256; i++) free(v[i]);
    char *big = malloc(5u << 20);
    if (!big) bad++;
    else memset(big, 1, 5u << 20);
    free(big);
    if (ovr_early_report) say(bad ? "early-dtor FAILED\n" : "early-dtor ok\n");
}
