/* fuzz_api.h: what the fuzz target (fuzz_api.c) shares with its standalone
 * driver (fuzz_api_main.c).
 *
 * Owns: nothing but declarations. The target is LLVMFuzzerTestOneInput; the
 * driver adds a failure hook (to print the seed and save the input) and
 * reads the operation counts to show what a run covered.
 */
#ifndef HK_FUZZ_API_H
#define HK_FUZZ_API_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Called once, just before a model mismatch aborts the process (after the
 * mismatch and the recent operations were printed to stderr). */
void fz_set_failure_hook(void (*hook)(void));

/* Operations run since the start of the process, per kind, printed one
 * line per kind with a nonzero count (and the kinds never run). */
void fz_print_counts(FILE *out);
/* Total operations run since the start of the process. */
uint64_t fz_total_ops(void);
/* True when the object cache (hk_cache_*) is part of the model. */
int fz_cache_enabled(void);

#endif /* HK_FUZZ_API_H */
