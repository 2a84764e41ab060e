/* A program linked statically against libheapkit.a: malloc, the C
 * library's own allocations (strdup, getline, qsort's buffer, stdio) and
 * free all run on heapkit's heaps, not on glibc's. */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heapkit.h"
#include "hk_test.h"

static void *thread_main(void *arg) {
    (void)arg;
    char *s = strdup("from a thread");
    int ok = s && hk_heap_owns(hk_heap_default(), s);
    free(s);
    return (void *)(intptr_t)ok;
}

int main(void) {
    void *p = malloc(100);
    CHECK(p != NULL && hk_heap_owns(hk_heap_default(), p)); /* our malloc */
    CHECK(malloc_usable_size(p) == hk_usable_size(p));
    free(p);
    /* libc calls malloc through its PLT: the program's malloc must win. */
    char *d = strdup("static override");
    CHECK(d != NULL && hk_heap_owns(hk_heap_default(), d));
    free(d);
    char *line = NULL;
    size_t cap = 0;
    FILE *f = fmemopen((void *)"a line\n", 7, "r");
    REQUIRE(f != NULL);
    CHECK(getline(&line, &cap, f) == 7);
    CHECK(line != NULL && hk_heap_owns(hk_heap_default(), line));
    fclose(f);
    free(line);
    void *a = aligned_alloc(256, 1000);
    CHECK(a != NULL && ((uintptr_t)a & 255) == 0 && hk_heap_owns(hk_heap_default(), a));
    free(a);
    pthread_t t;
    void *r;
    REQUIRE(pthread_create(&t, NULL, thread_main, NULL) == 0);
    pthread_join(t, &r);
    CHECK((intptr_t)r == 1);
    hk_stats_t s;
    hk_stats(&s);
    CHECK(s.mallocs >= 4);
    return hk_test_done();
}
