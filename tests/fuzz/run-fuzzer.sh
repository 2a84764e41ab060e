#!/usr/bin/env bash
# tests/fuzz/run-fuzzer.sh [SECONDS [LIBFUZZER-OPTIONS...]]: the long fuzz run.
#
# Owns: the libFuzzer build in build-fuzz/ (clang, -fsanitize=fuzzer with
# AddressSanitizer and UndefinedBehaviorSanitizer, heapkit's debug checks
# on) and one run of fuzz_api_libfuzzer for SECONDS (default 600), one job.
#
# The run starts from the committed seed corpus (tests/fuzz/corpus, read
# only) and keeps what it learns in build-fuzz/fuzz-corpus/, so the next run
# goes on from there. A failing input lands in build-fuzz/fuzz-artifacts/
# (crash-*, timeout-*, oom-*); replay it with either binary:
#   build-fuzz/tests/fuzz/fuzz_api_libfuzzer build-fuzz/fuzz-artifacts/crash-...
#   build-fz/tests/fuzz/fuzz_api build-fuzz/fuzz-artifacts/crash-...
# Options after SECONDS go to libFuzzer (e.g. -jobs=2, -seed=N).
# Environment: HEAPKIT_FUZZ_BUILD (build directory, default build-fuzz),
# CC (default clang).
set -euo pipefail

secs=${1:-600}
shift || true
case $secs in *[!0-9]* | '') echo "usage: $0 [SECONDS [LIBFUZZER-OPTIONS...]]" >&2; exit 2 ;; esac

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${HEAPKIT_FUZZ_BUILD:-$root/build-fuzz}
cc=${CC:-clang}
case $cc in *clang*) ;; *) cc=clang ;; esac

# libFuzzer comes with clang's compiler-rt (Debian: libclang-rt-14-dev for
# clang 14; the unversioned libclang-rt-dev follows the default clang).
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' \
  >"$probe/t.c"
if ! command -v "$cc" >/dev/null 2>&1 ||
   ! "$cc" -fsanitize=fuzzer,address,undefined "$probe/t.c" -o "$probe/t" >/dev/null 2>&1; then
  echo "run-fuzzer.sh: $cc cannot build a libFuzzer target with AddressSanitizer." >&2
  echo "  install it with: apt-get install clang libclang-rt-dev   (for clang-14: libclang-rt-14-dev)" >&2
  exit 1
fi

echo "== configure $build ($cc, libFuzzer + ASan + UBSan, HEAPKIT_DEBUG)"
cmake -S "$root" -B "$build" \
  -DCMAKE_C_COMPILER="$cc" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link" \
  -DHEAPKIT_DEBUG=ON \
  -DHEAPKIT_SANITIZE=address,undefined \
  -DHEAPKIT_FUZZ_LIBFUZZER=ON \
  -DHEAPKIT_BUILD_BENCH=OFF >/dev/null
echo "== build fuzz_api_libfuzzer"
cmake --build "$build" --target fuzz_api_libfuzzer -j 2 >/dev/null

corpus=$build/fuzz-corpus
artifacts=$build/fuzz-artifacts
mkdir -p "$corpus" "$artifacts"
echo "== fuzz for $secs s (corpus $corpus, failures in $artifacts)"
cd "$build"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
exec "$build/tests/fuzz/fuzz_api_libfuzzer" \
  -max_total_time="$secs" -max_len=8192 -timeout=60 -rss_limit_mb=4096 \
  -print_final_stats=1 -artifact_prefix="$artifacts/" "$@" \
  "$corpus" "$root/tests/fuzz/corpus"
