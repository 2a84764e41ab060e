#!/bin/sh
# test_sqlite: Debian's sqlite3 shell under LD_PRELOAD=libheapkit.so runs a
# generated script (gen_sql.awk): 300,000 single-row INSERTs, each parsed
# and prepared on its own, 600,000 rows from a recursive CTE, indexes, a
# 64 MiB page cache, aggregates, joins, window functions, LIKE, JSON,
# updates, deletes, 2,500 point queries, VACUUM and an integrity check. Its
# output must be what it prints on glibc.
# Usage: test_sqlite.sh LIBHEAPKIT
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
rp_init sqlite "$1"
rp_need sqlite3 sqlite3
rp_need awk mawk
echo "sqlite3 $(sqlite3 -version | cut -d' ' -f1)"

awk -v n=200000 -f "$here/gen_sql.awk" >"$RP_TMP/work.sql"
for mode in glibc heapkit; do
    rp_run $mode "$RP_TMP/$mode.out" "$RP_TMP/$mode.err" 60 \
        sqlite3 -bail "$RP_TMP/$mode.db" <"$RP_TMP/work.sql"
    echo $? >"$RP_TMP/$mode.rc"
done
rp_check "script exits 0 on glibc" [ "$(cat "$RP_TMP/glibc.rc")" = 0 ]
rp_check "script exits 0 on heapkit" [ "$(cat "$RP_TMP/heapkit.rc")" = 0 ]
rp_check "script ran to its end" grep -q '^== end$' "$RP_TMP/glibc.out"
rp_check "integrity check ok, 200000 rows" \
    sh -c "grep -qx ok '$RP_TMP/heapkit.out' && grep -qx 200000 '$RP_TMP/heapkit.out'"
rp_same "stdout: heapkit = glibc" "$RP_TMP/glibc.out" "$RP_TMP/heapkit.out"
rp_same "stderr: heapkit = glibc" "$RP_TMP/glibc.err" "$RP_TMP/heapkit.err"
rp_served "sqlite3" "$RP_TMP/heapkit.err" 1000000
# The database files themselves: the same tables and rows.
for mode in glibc heapkit; do
    sqlite3 "$RP_TMP/$mode.db" .dump | cksum >"$RP_TMP/$mode.dump"
done
rp_same "database dumps identical" "$RP_TMP/glibc.dump" "$RP_TMP/heapkit.dump"
rp_done
