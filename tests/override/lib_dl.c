/* lib_dl.c: libovr_dl.so, a module the lifecycle test dlopens.
 *
 * Its constructor allocates a thousand blocks when it is loaded (long after
 * heapkit started), its destructor checks and frees them (at dlclose, or at
 * exit for a module still loaded) and allocates more. It has a large
 * thread-local array: dynamic TLS of a dlopened module, which the dynamic
 * linker allocates with malloc in each thread that touches it and frees when
 * the thread is gone.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NODES 1000
#define TLS_SIZE (64 * 1024)

static char *nodes[NODES];
static int ctor_failures;
int ovr_dl_report;

static __thread unsigned char tls_buf[TLS_SIZE];

static size_t node_size(int i) { return 16 + (size_t)(i * 131 % 5000); }

__attribute__((constructor)) static void dl_ctor(void) {
    for (int i = 0; i < NODES; i++) {
        nodes[i] = malloc(node_size(i));
        if (!nodes[i]) { ctor_failures++; continue; }
        memset(nodes[i], i & 0xff, node_size(i));
    }
}

/* 0 when every block of the constructor is intact. */
int ovr_dl_check(void) {
    int bad = ctor_failures;
    for (int i = 0; i < NODES; i++) {
        if (!nodes[i]) continue;
        for (size_t k = 0; k < node_size(i); k++) bad += (unsigned char)nodes[i][k] != (i & 0xff);
    }
    return bad;
}

/* A block made by the module for the program to free. */
char *ovr_dl_make(size_t n) {
    char *s = malloc(n + 1);
    if (!s) return NULL;
    memset(s, 'x', n);
    s[n] = 0;
    return s;
}

/* Fills this thread's TLS array with v and returns its address. */
void *ovr_dl_tls_fill(int v) {
    memset(tls_buf, v, TLS_SIZE);
    return tls_buf;
}
int ovr_dl_tls_check(int v) {
    int bad = 0;
    for (size_t i = 0; i < TLS_SIZE; i++) bad += tls_buf[i] != (unsigned char)v;
    return bad;
}

__attribute__((destructor)) static void dl_dtor(void) {
    int bad = ovr_dl_check();
    for (int i = 0; i < NODES; i++) {
        free(nodes[i]);
        nodes[i] = NULL;
    }
    char *p = NULL;
    for (int i = 1; i <= 64; i++) {
        char *q = realloc(p, (size_t)i * 1000);
        if (!q) { bad++; break; }
        q[(size_t)i * 1000 - 1] = 1;
        p = q;
    }
    free(p);
    if (ovr_dl_report) {
        const char *s = bad ? "dl-dtor FAILED\n" : "dl-dtor ok\n";
        ssize_t w = write(1, s, strlen(s));
        (void)w;
    }
}
