#!/bin/sh
# test_gcc: Debian's gcc (driver, cc1, as, collect2, ld: every process of
# the toolchain) under LD_PRELOAD=libheapkit.so compiles, with -O2 -g:
#   - heapkit's own sources (src/*.c, override/*.c) into objects and a
#     shared library,
#   - a generated C program of 300 functions (gen_c.awk), linked and run;
# and produces byte-identical objects, library and executable to gcc on
# glibc, with the same diagnostics; the program prints the same output.
# Usage: test_gcc.sh LIBHEAPKIT
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
. "$here/lib.sh"
rp_init gcc "$1"
rp_need gcc gcc
rp_need awk mawk
echo "$(gcc --version | head -1)"

awk -v n=300 -f "$here/gen_c.awk" >"$RP_TMP/big.c"
echo "generated big.c: $(wc -l <"$RP_TMP/big.c") lines"
# Both runs compile one snapshot of the sources (the tree may change while
# the test runs), in the same directory (it is recorded in the debug
# information), into separate output directories.
mkdir -p "$RP_TMP/work" "$RP_TMP/glibc" "$RP_TMP/heapkit" "$RP_TMP/srcs"
cp -R "$src/src" "$src/override" "$src/include" "$RP_TMP/srcs/"
src=$RP_TMP/srcs
cd "$RP_TMP/work" || exit 1
CFLAGS="-O2 -g -fPIC -std=gnu11 -Wall -Wextra -fvisibility=hidden -I$src/include -I$src/src"

for mode in glibc heapkit; do
    o=$RP_TMP/$mode
    st=0
    for f in "$src"/src/*.c "$src"/override/*.c; do
        b=$(basename "$f" .c)
        rp_run $mode "$o/$b.out" "$o/$b.err" 60 gcc $CFLAGS -c "$f" -o "$o/$b.o" || st=1
    done
    echo $st >"$o/objs.rc"
    rp_run $mode "$o/so.out" "$o/so.err" 60 gcc -shared -o "$o/libhk.so" "$o"/*.o -lpthread
    echo $? >"$o/so.rc"
    rp_run $mode "$o/big.out" "$o/big.err" 60 gcc -O2 -g -c "$RP_TMP/big.c" -o "$o/big.o"
    echo $? >"$o/bigc.rc"
    rp_run $mode "$o/link.out" "$o/link.err" 60 gcc "$o/big.o" -o "$o/big"
    echo $? >"$o/link.rc"
done

for step in objs so bigc link; do
    rp_check "$step: exit 0 on glibc and on heapkit" \
        sh -c "[ \"\$(cat '$RP_TMP/glibc/$step.rc')\" = 0 ] && [ \"\$(cat '$RP_TMP/heapkit/$step.rc')\" = 0 ]"
done

# Objects: identical bytes, symbols and section sizes.
nobj=0
ndiff=0
for g in "$RP_TMP"/glibc/*.o; do
    b=$(basename "$g")
    h=$RP_TMP/heapkit/$b
    nobj=$((nobj + 1))
    if ! cmp -s "$g" "$h"; then
        ndiff=$((ndiff + 1))
        echo "differs: $b"
        nm "$g" >"$RP_TMP/nm.g"; nm "$h" >"$RP_TMP/nm.h" 2>&1
        size "$g" "$h"
        diff "$RP_TMP/nm.g" "$RP_TMP/nm.h" | head -5
    fi
done
rp_check "$nobj object files identical" [ "$ndiff" -eq 0 -a "$nobj" -ge 10 ]
rp_same "shared library identical" "$RP_TMP/glibc/libhk.so" "$RP_TMP/heapkit/libhk.so"
rp_same "executable identical" "$RP_TMP/glibc/big" "$RP_TMP/heapkit/big"
nm -D "$RP_TMP/heapkit/libhk.so" >"$RP_TMP/heapkit/dyn.txt" 2>&1
rp_check "the library exports malloc and hk_malloc" \
    sh -c "grep -q ' T malloc\$' '$RP_TMP/heapkit/dyn.txt' && grep -q ' T hk_malloc\$' '$RP_TMP/heapkit/dyn.txt'"

# Diagnostics: the same warnings (none expected, but the same anyway).
cat "$RP_TMP"/glibc/*.err >"$RP_TMP/glibc.diag"
cat "$RP_TMP"/heapkit/*.err >"$RP_TMP/heapkit.diag"
rp_same "compiler diagnostics identical" "$RP_TMP/glibc.diag" "$RP_TMP/heapkit.diag"

# The compiled program (run normally) prints the same either way.
"$RP_TMP/glibc/big" >"$RP_TMP/run.glibc" 2>&1
"$RP_TMP/heapkit/big" >"$RP_TMP/run.heapkit" 2>&1
rp_check "program output has its checksums" grep -q '^total ' "$RP_TMP/run.glibc"
rp_same "program output identical" "$RP_TMP/run.glibc" "$RP_TMP/run.heapkit"

# heapkit served the toolchain: statistics from cc1 and the others.
for f in "$RP_TMP"/heapkit/*.err.mallocs; do cat "$f"; done | awk '{s += $1} END {print s + 0}' >"$RP_TMP/all.err.mallocs"
for f in "$RP_TMP"/heapkit/*.err.procs; do cat "$f"; done | awk '{s += $1} END {print s + 0}' >"$RP_TMP/all.err.procs"
rp_served "gcc toolchain" "$RP_TMP/all.err" 100000
procs=$(cat "$RP_TMP/all.err.procs")
rp_check "every compile ran several heapkit processes ($procs statistics blocks)" [ "$procs" -ge 30 ]
rp_done
