#!/bin/sh
# test_perl: Debian's perl under LD_PRELOAD=libheapkit.so runs
# perl_workload.pl (a million-entry hash sorted and rebuilt, regexes over a
# 3 MB text, growing strings, nested structures, four ithreads that copy
# and free whole interpreters) and prints exactly what it prints on glibc.
# Usage: test_perl.sh LIBHEAPKIT
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
rp_init perl "$1"
rp_need perl perl perl -Mthreads -MDigest::MD5 -e 1
echo "$(perl -e 'printf "perl %vd", $^V')"
export PERL_HASH_SEED=0 PERL_PERTURB_KEYS=0

for mode in glibc heapkit; do
    rp_run $mode "$RP_TMP/$mode.out" "$RP_TMP/$mode.err" 60 perl "$here/perl_workload.pl" 0.7
    echo $? >"$RP_TMP/$mode.rc"
done
rp_check "workload exits 0 on glibc" [ "$(cat "$RP_TMP/glibc.rc")" = 0 ]
rp_check "workload exits 0 on heapkit" [ "$(cat "$RP_TMP/heapkit.rc")" = 0 ]
rp_check "workload ran to its end, threads included" \
    sh -c "grep -q '^done\$' '$RP_TMP/glibc.out' && [ \$(grep -c '^thread ' '$RP_TMP/glibc.out') = 4 ]"
rp_same "stdout: heapkit = glibc" "$RP_TMP/glibc.out" "$RP_TMP/heapkit.out"
rp_same "stderr: heapkit = glibc" "$RP_TMP/glibc.err" "$RP_TMP/heapkit.err"
rp_served "perl" "$RP_TMP/heapkit.err" 3000000
rp_done
