#!/bin/sh
# Installs heapkit into a temporary prefix, then builds and runs a consumer
# through find_package(heapkit) and through pkg-config (when present).
# Usage: test_install.sh SOURCE_DIR BUILD_DIR
src=$1 build=$2
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0 skip=0
ok()   { pass=$((pass + 1)); echo "ok: $1"; }
bad()  { fail=$((fail + 1)); echo "FAILED: $1"; }

if cmake --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log" 2>&1; then
  ok "cmake --install"
else
  cat "$tmp/install.log"; bad "cmake --install"
fi
for f in include/heapkit.h lib/libheapkit.a lib/pkgconfig/heapkit.pc lib/cmake/heapkit/heapkitConfig.cmake; do
  if [ -e "$tmp/prefix/$f" ]; then ok "installed $f"; else bad "installed $f"; fi
done
ls "$tmp/prefix"/lib/libheapkit.so* >/dev/null 2>&1 && ok "installed libheapkit.so" || bad "installed libheapkit.so"

mkdir -p "$tmp/c"
cp "$src/tests/install/consumer.c" "$tmp/c/"
cp "$src/tests/install/consumer.cmake.txt" "$tmp/c/CMakeLists.txt"
if cmake -S "$tmp/c" -B "$tmp/c/b" -DCMAKE_PREFIX_PATH="$tmp/prefix" >"$tmp/c.log" 2>&1 &&
   cmake --build "$tmp/c/b" >>"$tmp/c.log" 2>&1 &&
   LD_LIBRARY_PATH="$tmp/prefix/lib" "$tmp/c/b/consumer"; then
  ok "find_package(heapkit) consumer builds and runs"
else
  cat "$tmp/c.log"; bad "find_package(heapkit) consumer"
fi

if command -v pkg-config >/dev/null 2>&1; then
  flags=$(PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig" pkg-config --cflags --libs heapkit)
  if cc "$src/tests/install/consumer.c" $flags -o "$tmp/pc" &&
     LD_LIBRARY_PATH="$tmp/prefix/lib" "$tmp/pc"; then
    ok "pkg-config consumer builds and runs"
  else
    bad "pkg-config consumer"
  fi
else
  skip=$((skip + 1)); echo "SKIP: pkg-config not installed (apt-get install pkg-config)"
fi
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ] || exit 1
[ "$skip" -eq 0 ] || exit 77
