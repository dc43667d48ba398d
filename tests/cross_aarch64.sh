#!/usr/bin/env bash
# Compile every file of src/ for aarch64 (compile only: the library must
# build on CPUs other than x86-64; cpuid and x86-64-only code sit behind
# #if guards). Needs Debian's gcc-aarch64-linux-gnu; BLIS's and jansson's
# headers are the host's (declarations only). Exits non-zero on any error
# or warning.
set -euo pipefail
cd "$(dirname "$0")/.."
cc=aarch64-linux-gnu-gcc
command -v "$cc" >/dev/null || { echo "cross_aarch64: $cc not found (apt-get install gcc-aarch64-linux-gnu)"; exit 1; }
blis=""
for d in /usr/include/x86_64-linux-gnu/blis-openmp /usr/include/blis; do
  [ -f "$d/blis.h" ] && { blis="$d"; break; }
done
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
n=0
for f in src/*/*.c; do
  "$cc" -std=gnu11 -O2 -Wall -Wextra -Werror -fopenmp -Iinclude ${blis:+-isystem "$blis"} \
    -DTN_HAVE_JANSSON=1 -c "$f" -o "$out/$(basename "$f").o"
  n=$((n + 1))
done
arm=0
for o in "$out"/*.o; do
  readelf -h "$o" | grep -q "Machine:.*AArch64" && arm=$((arm + 1))
done
[ "$arm" -eq "$n" ] || { echo "cross_aarch64: only $arm of $n objects are aarch64"; exit 1; }
echo "cross_aarch64: $n files of src/ compiled for aarch64"
