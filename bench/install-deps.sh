#!/bin/sh
# install-deps.sh: installs what the benchmark compares heapkit with (and
# valgrind for the instruction counts), and the real programs of the
# real-* workloads, from Debian's packages. Safe to run again; needs root
# (or sudo). The benchmark itself skips whatever is missing, so this is a
# convenience, not a requirement.
#
#   allocators        libjemalloc-dev libgoogle-perftools-dev libmimalloc-dev
#   instructions,     valgrind (callgrind counts the fast path; memcheck is
#   diagnostics       compared with heapkit's debug library)
#   real-python       python3
#   real-sqlite       sqlite3
#   real-redis        redis-server redis-tools (redis-benchmark)
#   beyond malloc     libapr1-dev libtalloc-dev libglib2.0-dev (APR pools, talloc
#                     and g_slice, compared with heapkit's pools and caches),
#                     pkg-config (how CMake finds them)
#
# On a machine with systemd, installing redis-server also starts Debian's
# own redis service on port 6379. The benchmark does not use it (it starts
# its own server on a free port of 127.0.0.1, and stops it); for a quiet
# machine: systemctl disable --now redis-server
set -e
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
$SUDO apt-get update
$SUDO apt-get install -y libjemalloc-dev libgoogle-perftools-dev libmimalloc-dev valgrind \
    python3 sqlite3 redis-server redis-tools \
    libapr1-dev libtalloc-dev libglib2.0-dev pkg-config
