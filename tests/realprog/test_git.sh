#!/bin/sh
# test_git: Debian's git under LD_PRELOAD=libheapkit.so, on a generated
# repository (git_workload.sh): init, add 3000 files, commits, renames, a
# branch and a merge, log, diff, blame, grep, gc, a full repack with four
# threads, fsck, archive and clone. Every process (git, its helpers, the
# shell and awk that drive them) runs on heapkit; the output must be what
# the same workload prints on glibc.
# Usage: test_git.sh LIBHEAPKIT
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
rp_init git "$1"
rp_need git git
rp_need awk mawk
rp_need cksum coreutils
echo "$(git --version)"

for mode in glibc heapkit; do
    mkdir -p "$RP_TMP/$mode"
    rp_run $mode "$RP_TMP/$mode.out" "$RP_TMP/$mode.err" 60 sh "$here/git_workload.sh" "$RP_TMP/$mode"
    echo $? >"$RP_TMP/$mode.rc"
done
rp_check "workload exits 0 on glibc" [ "$(cat "$RP_TMP/glibc.rc")" = 0 ]
rp_check "workload exits 0 on heapkit" [ "$(cat "$RP_TMP/heapkit.rc")" = 0 ]
rp_check "workload ran to its end" grep -q '^== end$' "$RP_TMP/glibc.out"
rp_check "3000 files made 3000+ objects" \
    sh -c "grep -q '^in-pack: [0-9]\{4\}' '$RP_TMP/glibc.out'"
rp_same "stdout: heapkit = glibc" "$RP_TMP/glibc.out" "$RP_TMP/heapkit.out"
rp_same "stderr: heapkit = glibc" "$RP_TMP/glibc.err" "$RP_TMP/heapkit.err"
rp_served "git" "$RP_TMP/heapkit.err" 500000
procs=$(cat "$RP_TMP/heapkit.err.procs")
rp_check "heapkit's statistics from $procs git, sh and awk processes" [ "$procs" -ge 50 ]
rp_done
