#!/bin/sh
# install-deps.sh: installs what the benchmark compares heapkit with (and
# valgrind for the instruction counts) from Debian's packages. Safe to run
# again; needs root (or sudo). The benchmark itself skips whatever is
# missing, so this is a convenience, not a requirement.
set -e
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
$SUDO apt-get update
$SUDO apt-get install -y libjemalloc-dev libgoogle-perftools-dev libmimalloc-dev valgrind
