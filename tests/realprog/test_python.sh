#!/bin/sh
# test_python: Debian's python3 under LD_PRELOAD=libheapkit.so runs a
# workload that builds and drops millions of objects in four threads, then
# in a pool of forked processes while a parent thread keeps allocating
# (py_workload.py), and prints exactly what it prints on glibc.
# PYTHONMALLOC=malloc sends every object to malloc (pymalloc would serve
# small objects from its own arenas); a shorter second workload keeps
# pymalloc, as Python normally runs.
# Usage: test_python.sh LIBHEAPKIT
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
rp_init python "$1"
PY=/usr/bin/python3  # Debian's, not a pyenv shim
rp_need $PY python3 $PY -c "import multiprocessing, threading, hashlib"
echo "$($PY --version 2>&1) ($PY)"

export PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1
W="$here/py_workload.py"

for mode in glibc heapkit; do
    PYTHONMALLOC=malloc rp_run $mode "$RP_TMP/$mode.out" "$RP_TMP/$mode.err" 60 $PY "$W" 0.7
    echo $? >"$RP_TMP/$mode.rc"
done
rp_check "workload (PYTHONMALLOC=malloc) exits 0 on glibc" [ "$(cat "$RP_TMP/glibc.rc")" = 0 ]
rp_check "workload (PYTHONMALLOC=malloc) exits 0 on heapkit" [ "$(cat "$RP_TMP/heapkit.rc")" = 0 ]
rp_check "workload printed its results" grep -q '^done$' "$RP_TMP/glibc.out"
rp_same "stdout: heapkit = glibc" "$RP_TMP/glibc.out" "$RP_TMP/heapkit.out"
rp_same "stderr: heapkit = glibc" "$RP_TMP/glibc.err" "$RP_TMP/heapkit.err"
rp_served "python3 with PYTHONMALLOC=malloc" "$RP_TMP/heapkit.err" 5000000

# Python's own allocator (pymalloc) on top of heapkit.
for mode in glibc heapkit; do
    rp_run $mode "$RP_TMP/$mode.pm.out" "$RP_TMP/$mode.pm.err" 60 $PY "$W" 0.15
    echo $? >"$RP_TMP/$mode.pm.rc"
done
rp_check "workload (pymalloc) exits 0 on glibc" [ "$(cat "$RP_TMP/glibc.pm.rc")" = 0 ]
rp_check "workload (pymalloc) exits 0 on heapkit" [ "$(cat "$RP_TMP/heapkit.pm.rc")" = 0 ]
rp_same "pymalloc stdout: heapkit = glibc" "$RP_TMP/glibc.pm.out" "$RP_TMP/heapkit.pm.out"
rp_same "pymalloc stderr: heapkit = glibc" "$RP_TMP/glibc.pm.err" "$RP_TMP/heapkit.pm.err"
rp_served "python3 with pymalloc" "$RP_TMP/heapkit.pm.err" 1000
rp_done
