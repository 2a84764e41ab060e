#!/bin/sh
# run.sh VG_API DEBUG_BUGGY PLAIN_LIB: memcheck finds bugs in programs on
# heapkit. The hk_ API tells memcheck about its blocks (client requests):
# each buggy mode of vg_api must give its error, naming the function, and
# the clean mode none. The malloc family is memcheck's to replace with
# --soname-synonyms: a drop-in program preloading libheapkit.so gets
# memcheck's checks too. Exit 77 (skipped) without valgrind.
vg_api=$1
buggy=$2
lib=$3
command -v valgrind >/dev/null 2>&1 || { echo "SKIP: valgrind not installed (apt-get install valgrind)"; exit 77; }
fail=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

expect() { # mode, then the texts memcheck's output must hold
    mode=$1; shift
    valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
        "$vg_api" "$mode" >"$out" 2>&1
    rc=$?
    ok=1
    [ $rc -eq 99 ] || { echo "FAILED: $mode: exit $rc, not memcheck's 99"; ok=0; }
    for want in "$@"; do
        grep -q -- "$want" "$out" || { echo "FAILED: $mode: no \"$want\""; ok=0; }
    done
    if [ $ok -eq 1 ]; then echo "ok: $mode"; else fail=1; sed -n 1,40p "$out"; fi
}

expect hk-use-after-free "Invalid read of size 1" "hk_use_after_free" "Address .* is 3 bytes inside a block of size 40 free'd"
expect hk-overflow "Invalid read of size 1" "hk_overflow" "0 bytes after a block of size 40 alloc'd"
expect hk-uninit "Conditional jump or move depends on uninitialised value" "hk_uninit"
expect hk-leak "1,234 bytes in 1 blocks are definitely lost" "hk_leak"
expect pool-after-reset "Invalid read of size 1" "pool_after_reset"
expect pool-overflow "Invalid read of size 1" "pool_overflow"
expect cache-after-free "Invalid read of size 1" "cache_after_free"
expect heap-after-destroy "Invalid read of size 4" "heap_after_destroy"

valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite "$vg_api" clean >"$out" 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q "ERROR SUMMARY: 0 errors" "$out" && [ -z "$(grep -v '^==' "$out")" ]; then
    echo "ok: clean"
else
    echo "FAILED: clean: exit $rc"; sed -n 1,60p "$out"; fail=1
fi

# The drop-in library: memcheck replaces heapkit's malloc family.
LD_PRELOAD=$lib valgrind --error-exitcode=99 --soname-synonyms=somalloc='*libheapkit*' \
    "$buggy" double-free >"$out" 2>&1
rc=$?
if [ $rc -eq 99 ] && grep -q "Invalid free() / delete / delete\[\] / realloc()" "$out" &&
   grep -q "second_free" "$out"; then
    echo "ok: drop-in double free under memcheck"
else
    echo "FAILED: drop-in double free: exit $rc"; sed -n 1,40p "$out"; fail=1
fi

[ $fail -eq 0 ] && echo "all passed" || echo "some failed"
exit $fail
