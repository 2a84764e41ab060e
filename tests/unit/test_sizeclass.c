// Unit tests of the size classes (src/sizeclass.c): coverage, rounding
// waste, alignment, slab geometry.
#include "hk_test.h"
#include "internal/internal.h"

int main(void) {
    hk_free(hk_malloc(1)); /* initialise the library */
    REQUIRE(_hk_class_count > 30 && _hk_class_count <= HK_CLASSES);
    CHECK(_hk_classes[_hk_class_count - 1].block_size == HK_SMALL_MAX);
    int bad_order = 0, bad_align = 0, bad_slab = 0;
    for (unsigned c = 0; c < _hk_class_count; c++) {
        const hk_class_t *k = &_hk_classes[c];
        if (c && k->block_size <= _hk_classes[c - 1].block_size) bad_order++;
        if (k->block_size >= 16 && k->block_size % 16) bad_align++;
        size_t slab = (size_t)k->slab_pages * HK_PAGE_SIZE;
        if (k->capacity == 0 || (size_t)k->capacity * k->block_size > slab) bad_slab++;
        if (slab / k->block_size != k->capacity) bad_slab++; /* no block left out */
        if ((slab - (size_t)k->capacity * k->block_size) * 8 > slab) bad_slab++; /* tail waste <= 1/8 */
        if (k->extend == 0 || k->extend > k->capacity) bad_slab++;
    }
    CHECK(bad_order == 0);
    CHECK(bad_align == 0);
    CHECK(bad_slab == 0);
    /* Every size maps to the smallest class that holds it; the formula and
     * the direct table agree. Waste: at most 12.5% on average, under 25%
     * for any size past 128 bytes. */
    int bad_map = 0;
    double waste_sum = 0, worst = 0;
    for (size_t s = 1; s <= HK_SMALL_MAX; s++) {
        unsigned c = hk_class_of(s);
        size_t bs = _hk_classes[c].block_size;
        if (bs < s || (c > 0 && _hk_classes[c - 1].block_size >= s)) bad_map++;
        double w = (double)(bs - s) / (double)bs;
        waste_sum += w;
        if (s > 128 && w > worst) worst = w;
    }
    double avg = waste_sum / (double)HK_SMALL_MAX;
    printf("size classes: %u, average rounding waste %.2f%%, worst past 128 B %.2f%%\n",
           _hk_class_count, 100 * avg, 100 * worst);
    CHECK(bad_map == 0);
    CHECK(avg <= 0.125);
    CHECK(worst < 0.25);
    /* A page plus a header (SQLite's page cache asks for 4096 + 272 bytes)
     * wastes under 1/9 of its block: eight classes from 4 to 8 KiB; so
     * does a KiB plus a header (SQLite's 1032-byte blocks): eight from 1 to
     * 2 KiB. */
    static const size_t octave[] = { 1024, 4096 };
    for (int o = 0; o < 2; o++) {
        double worst_here = 0;
        for (size_t s = octave[o] + 1; s <= 2 * octave[o]; s++) {
            size_t bs = _hk_classes[hk_class_of(s)].block_size;
            double w = (double)(bs - s) / (double)bs;
            if (w > worst_here) worst_here = w;
        }
        printf("worst rounding waste from %zu to %zu bytes: %.2f%%\n", octave[o], 2 * octave[o], 100 * worst_here);
        CHECK(worst_here < 1.0 / 9);
    }
    CHECK(_hk_classes[hk_class_of(4096 + 272)].block_size == 4608);
    CHECK(_hk_classes[hk_class_of(1024 + 8)].block_size == 1152);
    return hk_test_done();
}
