/* A program that uses an installed heapkit: built by test_install.sh through
 * CMake's find_package(heapkit) and through pkg-config. */
#include <heapkit.h>
#include <stdio.h>

int main(void) {
    hk_heap_t *h = hk_heap_new();
    if (h == NULL) return 1;
    for (int i = 0; i < 1000; i++)
        if (hk_heap_malloc(h, 100) == NULL) return 1;
    hk_stats_t s;
    hk_heap_stats(h, &s);
    hk_heap_destroy(h);
    printf("live blocks %zu\n", s.live_blocks);
    return s.live_blocks == 1000 ? 0 : 1;
}
