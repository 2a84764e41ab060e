# lib.sh: shared by the real-program tests (sourced, POSIX sh).
#
# A test runs the same workload twice, with glibc's malloc and with
# LD_PRELOAD=libheapkit.so, and compares what the two runs produced. The
# heapkit run also sets HEAPKIT_SHOW_STATS=1: every process prints heapkit's
# statistics to stderr at exit, which proves that heapkit served it; those
# blocks are cut out of stderr before the comparison and their "mallocs N"
# figures summed.
#
# Usage in a test:  . lib.sh; rp_init NAME "$1"; rp_need PROG PACKAGE; ...;
#                   rp_done
# A missing program is a skip (exit 77, ctest SKIP_RETURN_CODE), never a pass.

RP_PASSED=0
RP_FAILED=0

# rp_init NAME LIBHEAPKIT: checks the library, makes a scratch directory.
rp_init() {
    RP_NAME=$1
    RP_LIB=$2
    if [ -z "$RP_LIB" ] || [ ! -f "$RP_LIB" ]; then
        echo "$RP_NAME: libheapkit.so not found: '$RP_LIB'"
        echo "0 passed, 1 failed"
        exit 1
    fi
    case $RP_LIB in /*) ;; *) RP_LIB=$(pwd)/$RP_LIB ;; esac
    RP_TMP=$(mktemp -d "${TMPDIR:-/tmp}/hk-$RP_NAME-XXXXXX") || exit 1
    trap 'rm -rf "$RP_TMP"' EXIT
    trap 'exit 130' INT TERM
    RP_T0=$(date +%s)
    # The same environment for both runs: no heapkit settings, C locale.
    unset LD_PRELOAD HEAPKIT_SHOW_STATS HEAPKIT_VERBOSE HEAPKIT_DECOMMIT_DELAY_MS \
        HEAPKIT_CHUNK_CACHE HEAPKIT_HUGE_CACHE_MB
    LC_ALL=C
    export LC_ALL
}

# rp_need PROG PACKAGE [CHECK-COMMAND...]: skips the test when PROG (or
# what the check command needs) is missing.
rp_need() {
    prog=$1
    pkg=$2
    shift 2
    if ! command -v "$prog" >/dev/null 2>&1; then
        echo "SKIP: $RP_NAME: $prog not found (Debian package: $pkg); this test did not run"
        exit 77
    fi
    if [ $# -gt 0 ] && ! "$@" >/dev/null 2>&1; then
        echo "SKIP: $RP_NAME: $prog is incomplete ('$*' failed; Debian package: $pkg); this test did not run"
        exit 77
    fi
}

rp_pass() {
    RP_PASSED=$((RP_PASSED + 1))
    echo "ok: $*"
}
rp_fail() {
    RP_FAILED=$((RP_FAILED + 1))
    echo "FAILED: $*"
}

# rp_check DESCRIPTION COMMAND...: passes when the command succeeds.
rp_check() {
    desc=$1
    shift
    if "$@"; then rp_pass "$desc"; else rp_fail "$desc"; fi
}

# rp_run MODE OUT ERR TIMEOUT COMMAND...: runs the command with glibc
# (MODE glibc) or heapkit (MODE heapkit); stdout to OUT, stderr to ERR.
# For heapkit, the statistics blocks are cut out of both (a program may send
# a child's stderr to its stdout, git relays its server's as "remote: "
# lines); their mallocs are summed into ERR.mallocs and the number of blocks
# (processes) into ERR.procs. Returns the command's exit status.
rp_run() {
    mode=$1
    out=$2
    err=$3
    limit=$4
    shift 4
    if [ "$mode" = heapkit ]; then
        LD_PRELOAD=$RP_LIB HEAPKIT_SHOW_STATS=1 timeout -k 5 "$limit" "$@" >"$out.raw" 2>"$err.raw"
        rc=$?
        rp_strip_stats "$out.raw" "$out" "$out"
        rp_strip_stats "$err.raw" "$err" "$err"
        echo $(($(cat "$out.mallocs") + $(cat "$err.mallocs"))) >"$err.mallocs"
        echo $(($(cat "$out.procs") + $(cat "$err.procs"))) >"$err.procs"
    else
        timeout -k 5 "$limit" "$@" >"$out" 2>"$err"
        rc=$?
    fi
    [ $rc -eq 124 ] && echo "$mode run timed out after $limit s: $*"
    return $rc
}

# rp_strip_stats RAW CLEAN COUNTS: CLEAN = RAW without heapkit's statistics
# blocks ("heapkit statistics (...)" and the indented lines after it,
# possibly behind "remote: "); sums their "mallocs N" figures into
# COUNTS.mallocs and counts the blocks into COUNTS.procs.
rp_strip_stats() {
    awk -v mfile="$3.mallocs" -v pfile="$3.procs" '
        { line = $0; sub(/^remote: /, "", line) }
        line ~ /^heapkit statistics \(/ { inblk = 1; procs++; next }
        inblk && line ~ /^  / {
            split(line, w, " ")
            if (w[1] == "mallocs") { m = w[2]; sub(/,$/, "", m); total += m }
            next
        }
        { inblk = 0; print }
        END { print total + 0 > mfile; print procs + 0 > pfile }
    ' "$1" >"$2"
}

# rp_same DESCRIPTION FILE1 FILE2: passes when the files are identical.
rp_same() {
    if cmp -s "$2" "$3"; then
        rp_pass "$1"
    else
        rp_fail "$1 (outputs differ)"
        diff "$2" "$3" | head -20
    fi
}

# rp_served DESCRIPTION ERR MIN: heapkit's statistics were printed and count
# at least MIN mallocs.
rp_served() {
    m=$(cat "$2.mallocs" 2>/dev/null || echo 0)
    p=$(cat "$2.procs" 2>/dev/null || echo 0)
    if [ "$p" -gt 0 ] && [ "$m" -ge "$3" ]; then
        rp_pass "$1: heapkit served it ($m mallocs in $p process(es))"
    else
        rp_fail "$1: heapkit's statistics show $m mallocs in $p process(es), want >= $3"
    fi
}

rp_done() {
    echo "$RP_NAME: $(($(date +%s) - RP_T0)) s"
    echo "$RP_PASSED passed, $RP_FAILED failed"
    [ "$RP_FAILED" -eq 0 ]
    exit $?
}
