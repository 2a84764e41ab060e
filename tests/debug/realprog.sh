#!/bin/sh
# realprog.sh DEBUG_LIB SCRIPT: real programs run unchanged under the debug
# library: python3 (PYTHONMALLOC=malloc, threads, millions of objects made
# and dropped) and sqlite3 must give the same output as on glibc, exit 0,
# and report no error (the leak summary is allowed). Exit 77 (skipped)
# when python3 is missing.
lib=$1
script=$2
command -v python3 >/dev/null 2>&1 || { echo "SKIP: python3 not installed"; exit 77; }
py=$(command -v python3)
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

check() { # name, then the command
    name=$1; shift
    "$@" >"$tmp/plain.out" 2>/dev/null
    LD_PRELOAD=$lib "$@" >"$tmp/debug.out" 2>"$tmp/debug.err"
    rc=$?
    if [ $rc -ne 0 ]; then
        echo "FAILED: $name exited $rc under the debug library"; sed -n 1,30p "$tmp/debug.err"; fail=1
    elif ! cmp -s "$tmp/plain.out" "$tmp/debug.out"; then
        echo "FAILED: $name output differs under the debug library"; fail=1
    elif grep -v -e '^heapkit: no leaks' -e '^heapkit: leaks:' -e '^heapkit: [0-9]* bytes in' \
             -e '^    #' -e '^    (no stack)' "$tmp/debug.err" | grep -q 'heapkit:'; then
        echo "FAILED: $name: the debug library reported an error"; sed -n 1,30p "$tmp/debug.err"; fail=1
    else
        echo "ok: $name"
    fi
}

check python3 env PYTHONMALLOC=malloc PYTHONHASHSEED=0 "$py" -s "$script" --scale 0.05 --threads 2
if command -v sqlite3 >/dev/null 2>&1; then
    check sqlite3 sqlite3 :memory: "create table t(a, b); \
        with recursive c(x) as (select 1 union all select x + 1 from c where x < 20000) \
        insert into t select x, hex(x * 7919 % 10007) || printf('%08d', x) from c; \
        create index i on t(b); select count(*), sum(a) from t where b > '8';"
fi
[ $fail -eq 0 ] && echo "all passed" || echo "some failed"
exit $fail
