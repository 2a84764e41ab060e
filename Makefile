# heapkit: the two commands of the README, and a few more.
#   make check   build everything and run every test (plain, ASan+UBSan, TSan)
#   make bench   build and run the comparison benchmark
# Builds go to build/ (release), build-asan/, build-tsan/.

SHELL  := /bin/bash
.SHELLFLAGS := -o pipefail -c
JOBS   ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE  ?= cmake
CTEST  ?= ctest

.PHONY: all build check check-plain check-asan check-tsan bench bench-quick bench-instr clean install fuzz

all: build

build:
	@$(CMAKE) -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
	@$(CMAKE) --build build -j $(JOBS)

build-asan:
	@$(CMAKE) -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DHEAPKIT_DEBUG=ON \
	  -DHEAPKIT_SANITIZE=address,undefined >/dev/null

build-tsan:
	@$(CMAKE) -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DHEAPKIT_SANITIZE=thread >/dev/null

check-plain: build
	@echo "== tests: release build"
	@cd build && $(CTEST) --output-on-failure -j $(JOBS) | tee ctest-check.log

check-asan: build-asan
	@$(CMAKE) --build build-asan -j $(JOBS)
	@echo "== tests: AddressSanitizer + UndefinedBehaviorSanitizer, debug checks on"
	@cd build-asan && ASAN_OPTIONS=detect_leaks=0:abort_on_error=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(CTEST) --output-on-failure -j $(JOBS) -LE no-asan | tee ctest-check.log

check-tsan: build-tsan
	@$(CMAKE) --build build-tsan -j $(JOBS)
	@echo "== tests: ThreadSanitizer (threaded tests)"
	@cd build-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	  $(CTEST) --output-on-failure -j $(JOBS) -L threads | tee ctest-check.log

# The three runs end with one total, in the plain "N passed, M failed" form.
check: check-plain check-asan check-tsan
	@cat build/ctest-check.log build-asan/ctest-check.log build-tsan/ctest-check.log | \
	  awk '/tests passed, [0-9]+ tests failed out of/ { f += $$4; t += $$NF } \
	       /\(Skipped\)$$/ { k++ } \
	       END { printf "== all test runs passed (release, ASan+UBSan, TSan)\ncheck: %d passed, %d failed, %d skipped\n", t - f - k, f, k; exit f != 0 }'

install: build
	@$(CMAKE) --install build

clean:
	rm -rf build build-asan build-tsan build-fuzz

# fuzz         the long libFuzzer run of tests/fuzz (clang + libclang-rt-14-dev):
#              FUZZ_SECONDS (600) in build-fuzz/; make check runs a bounded
#              driver of the same target (tests/fuzz/README.md)
FUZZ_SECONDS ?= 600
fuzz:
	@tests/fuzz/run-fuzzer.sh $(FUZZ_SECONDS)

# ---- Benchmark (bench/README.md) ---------------------------------------------
# bench        every workload under glibc, jemalloc, tcmalloc, mimalloc and
#              heapkit, 7 runs each, plus instruction counts, the Beyond malloc
#              and Diagnostics sections (about 12-13 min on
#              2 cores); report in bench/results/
# bench-quick  every workload at a tiny size (under 2 min); bench/results/quick/
# bench-instr  instructions per malloc+free pair under callgrind only;
#              bench/results/instr/
# BENCH_ARGS passes options to the runner, e.g. make bench BENCH_ARGS="--runs 7".
HKBENCH ?= build/bench/hkbench

bench: build
	@$(HKBENCH) --instr --out bench/results $(BENCH_ARGS)

bench-quick: build
	@$(HKBENCH) --quick --out bench/results/quick $(BENCH_ARGS)

bench-instr: build
	@$(HKBENCH) --instr-only --out bench/results/instr $(BENCH_ARGS)
