#!/bin/bash
# Downstream checks (CI runs this from .ci/run): build and install tensor
# static and shared into prefixes, then build and run the README's API
# example (examples/snippets/readme_example.c) against each install
#
#   1. through CMake's find_package(tensor 0.6) + tensor::tensor,
#   2. through pkg-config (`pkg-config --static` for the static library),
#
# and once more as a subproject (add_subdirectory: tensor::tensor exists, and
# tensor's tests are not added to the parent's). The static library must
# link into a shared object; the shared library must have a versioned SONAME
# and export only tn_ symbols. From the shared install, lm_generate
# (tests/downstream/lm_generate.c, built through find_package) must print,
# byte for byte, what the installed `tn-word-lm sample` prints for 100
# words of a checkpoint trained by the installed `tn-word-lm train`, with
# the same seed (generating through tn_lm_step, no tape of its own).
#
# With MPI (mpirun on PATH; CI installs Open MPI) both installs must hold
# tensor_dist, and a small MPI program (tests/downstream/dist_example.c) is
# built against each through find_package(tensor 0.6 COMPONENTS dist) +
# tensor::dist and through pkg-config tensor-dist, and run on 2 ranks.
# find_package(tensor 0.6) without components must not look for MPI. A
# third install, static with -DTN_MPI=OFF, must hold nothing of tensor_dist,
# serve find_package(tensor 0.6) and refuse COMPONENTS dist with a message.
#
#   tests/downstream/run.sh [WORKDIR]     (default: build-downstream)
#
# JOBS (default 2) is the build parallelism. Exits non-zero on any failure.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mkdir -p "${1:-$SRC/build-downstream}" && cd "${1:-$SRC/build-downstream}" && pwd)
JOBS=${JOBS:-2}
EXAMPLE=$SRC/examples/snippets/readme_example.c
VERSION=$(sed -n 's/^project(tensor VERSION \([0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt")
CC=${CC:-cc}
say() { echo "downstream: $*"; }
die() { echo "downstream: FAILED: $*" >&2; exit 1; }

# The example's output: its loss and a gradient, as readme_example_runs wants.
check_run() { # NAME PROGRAM
    local out
    out=$("$2") || die "$1: exit $?"
    [[ "$out" == *"d loss / d fc.weight[0][0] = "* ]] || die "$1: output '$out'"
    say "$1: ok: $(echo "$out" | tr '\n' ' ')"
}

# dist_example on 2 ranks: rank 0's value everywhere, the mean gradient.
MPIRUN=$(command -v mpirun || true)
check_mpi_run() { # NAME PROGRAM
    local out want
    out=$(OMP_NUM_THREADS=1 TN_NUM_THREADS=1 timeout 120 \
        "$MPIRUN" -np 2 --oversubscribe --allow-run-as-root "$2" 2>&1) || die "$1: exit $?: $out"
    want=$(printf 'rank %d of 2: value 3, mean gradient 1.5\n' 0 1)
    [ "$(echo "$out" | grep '^rank ' | sort)" = "$want" ] || die "$1: output '$out'"
    say "$1: ok: $(echo "$out" | grep '^rank ' | sort | tr '\n' ' ')"
}

for kind in static shared; do
    shared=$([ $kind = shared ] && echo ON || echo OFF)
    prefix=$WORK/prefix-$kind
    rm -rf "$prefix" "$WORK/lib-$kind"
    cmake -S "$SRC" -B "$WORK/lib-$kind" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=$shared \
        -DTN_BUILD_TESTS=OFF -DTN_BUILD_EXAMPLES=$shared -DTN_BUILD_BENCH=OFF \
        -DCMAKE_INSTALL_PREFIX="$prefix" > "$WORK/lib-$kind.log"
    cmake --build "$WORK/lib-$kind" -j"$JOBS" >> "$WORK/lib-$kind.log"
    cmake --install "$WORK/lib-$kind" >> "$WORK/lib-$kind.log"
    say "$kind: installed $(wc -l < "$WORK/lib-$kind/install_manifest.txt") files into $prefix"
    libdir=$prefix/lib
    [ -d "$libdir" ] || libdir=$(dirname "$(find "$prefix" -name tensor.pc)")/..

    # 1. find_package
    rm -rf "$WORK/app-cmake-$kind"
    cmake -S "$SRC/tests/downstream" -B "$WORK/app-cmake-$kind" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_PREFIX_PATH="$prefix" > "$WORK/app-cmake-$kind.log"
    cmake --build "$WORK/app-cmake-$kind" >> "$WORK/app-cmake-$kind.log"
    check_run "find_package, $kind" "$WORK/app-cmake-$kind/readme_example"
    grep -q "dist: , MPI searched: )" "$WORK/app-cmake-$kind.log" ||
        die "find_package, $kind: find_package(tensor 0.6) without components looked for MPI"
    # Before 1.0 a minor release may break compatibility: 0.N.x answers
    # find_package(tensor 0.N) only, not 0.(N-1) or 0.(N+1).
    minor=$(echo "$VERSION" | cut -d. -f2)
    below="0.$((minor - 1))" above="0.$((minor + 1))"
    for want in $below $above; do
        rm -rf "$WORK/app-want"
        if cmake -S "$SRC/tests/downstream" -B "$WORK/app-want" -DTENSOR_WANT=$want \
               -DCMAKE_PREFIX_PATH="$prefix" > "$WORK/app-want.log" 2>&1 ||
           ! grep -q "requested version \"$want\"" "$WORK/app-want.log"; then
            die "find_package(tensor $want) accepted version $VERSION"
        fi
    done
    say "find_package, $kind: version $VERSION refused for $below and $above"

    # 2. pkg-config (the static library needs its dependencies: --static)
    export PKG_CONFIG_PATH=$libdir/pkgconfig
    [ "$(pkg-config --modversion tensor)" = "$VERSION" ] || die "pkg-config version"
    pc_flags=$(pkg-config --cflags --libs $([ $kind = static ] && echo --static) tensor)
    rpath=""
    [ $kind = shared ] && rpath="-Wl,-rpath,$(pkg-config --variable=libdir tensor)"
    say "pkg-config, $kind: $CC -std=c11 readme_example.c $pc_flags $rpath"
    # shellcheck disable=SC2086 # the flags are words
    "$CC" -std=c11 -Wall -Wextra -Werror -o "$WORK/app-pc-$kind" "$EXAMPLE" $pc_flags $rpath
    check_run "pkg-config, $kind" "$WORK/app-pc-$kind"

    if [ $kind = static ]; then
        ! ldd "$WORK/app-pc-$kind" | grep -q libtensor ||
            die "static: the program depends on a libtensor.so"
        [ -f "$libdir/libtensor.a" ] || die "static: no libtensor.a"
        # The archive is position-independent: it links into a shared object
        # (a plugin), thread-local error state included.
        printf '%s\n' '#include <tensor/tensor.h>' \
            'const char *plugin_probe(void) { tn_tape_free(tn_tape_new()); return tn_last_error(); }' \
            > "$WORK/plugin.c"
        # shellcheck disable=SC2086
        "$CC" -std=c11 -Wall -Wextra -Werror -shared -fPIC -o "$WORK/plugin.so" "$WORK/plugin.c" \
            $pc_flags || die "static: libtensor.a does not link into a shared object"
        nm -D --defined-only "$WORK/plugin.so" | grep -q ' plugin_probe$' ||
            die "static: plugin.so lacks its symbol"
        say "static: libtensor.a links into a shared object (plugin.so)"
    else
        lib=$(readlink -f "$libdir/libtensor.so")
        soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
        [ "$soname" = "libtensor.so.${VERSION%.*}" ] || die "shared: SONAME '$soname'"
        [ "$(basename "$lib")" = "libtensor.so.$VERSION" ] || die "shared: file $lib"
        exported=$(nm -D --defined-only "$lib" | awk '{ print $3 }')
        bad=$(echo "$exported" | grep -v '^tn_' || true)
        internal=$(echo "$exported" | grep '^tn__' || true)
        [ -z "$bad" ] && [ -z "$internal" ] ||
            die "shared: exports other than the public tn_ API: $bad $internal"
        # every exported symbol is declared TN_API in a public header
        # (issue 21: nothing internal exported)
        undeclared=$(for sym in $exported; do
            grep -qE "\\b$sym\\(" "$SRC"/include/tensor/*.h || echo "$sym"
        done)
        [ -z "$undeclared" ] || die "shared: exported but not declared in include/tensor/: $undeclared"
        say "shared: SONAME $soname, $(echo "$exported" | wc -l) exported symbols, all tn_ (none tn__), all declared in include/tensor/"
        # The examples (built in this configuration only) link the shared
        # library through its public API alone.
        # (grep to the end, not -q: with pipefail, ldd writing after grep -q
        # quit would fail the pipeline with SIGPIPE)
        ldd "$WORK/lib-$kind/examples/char_rnn" | grep "libtensor.so.${VERSION%.*}" > /dev/null ||
            die "shared: char_rnn does not use libtensor.so"
        "$WORK/lib-$kind/examples/char_rnn" --version | grep -qx "char_rnn $VERSION (libtensor $VERSION)" ||
            die "shared: char_rnn --version"
        say "shared: the examples link libtensor.so: $("$WORK/lib-$kind/examples/char_rnn" --version)"
        # Installed under tn- names (no clash on a PATH), finding the
        # installed libtensor.so through their RPATH, not the build tree.
        for p in char-rnn word-lm translate classify tagger forecast caption lm-complete tensor-info; do
            [ -x "$prefix/bin/tn-$p" ] || die "shared: tn-$p not installed"
        done
        out=$("$prefix/bin/tn-char-rnn" --version) &&
            [ "$out" = "char_rnn $VERSION (libtensor $VERSION)" ] ||
            die "shared: installed tn-char-rnn --version: $out"
        ldd "$prefix/bin/tn-char-rnn" | grep "libtensor.so.* => $prefix/" > /dev/null ||
            die "shared: tn-char-rnn does not use the installed libtensor.so"
        say "shared: the programs are installed as tn-*: $out"
        # The step API from outside: a checkpoint trained by the installed
        # tn-word-lm; lm_generate (built through find_package) generates
        # 100 words from it through tn_lm_step, byte for byte the text of
        # tn-word-lm sample with the same seed and length.
        ck=$WORK/word_lm.safetensors
        "$prefix/bin/tn-word-lm" train --hidden 16 --embed 16 --layers 1 --steps 20 --threads 1 \
            --eval-every 0 --checkpoint "$ck" > "$WORK/word_lm.log" 2>&1 ||
            die "shared: tn-word-lm train (see $WORK/word_lm.log)"
        "$prefix/bin/tn-word-lm" sample --checkpoint "$ck" --words 100 --seed 3 --threads 1 \
            > "$WORK/sample.txt" || die "shared: tn-word-lm sample"
        "$WORK/app-cmake-$kind/lm_generate" "$ck" 100 3 > "$WORK/generated.txt" ||
            die "shared: lm_generate"
        cmp "$WORK/sample.txt" "$WORK/generated.txt" ||
            die "shared: lm_generate's 100 words differ from tn-word-lm sample's"
        say "shared: lm_generate (tn_lm_step) = tn-word-lm sample, $(wc -w < "$WORK/sample.txt") words + $(wc -l < "$WORK/sample.txt") line ends"
    fi

    # 4. tensor_dist (MPI) from the install
    if [ -z "$MPIRUN" ]; then
        say "$kind: no mpirun: tensor_dist checks skipped"
        continue
    fi
    [ -f "$libdir/pkgconfig/tensor-dist.pc" ] && [ -f "$prefix/include/tensor/dist.h" ] ||
        die "$kind: MPI is installed but the install has no tensor_dist (tensor-dist.pc, dist.h)"
    rm -rf "$WORK/app-dist-$kind"
    cmake -S "$SRC/tests/downstream" -B "$WORK/app-dist-$kind" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_PREFIX_PATH="$prefix" -DTENSOR_DIST=ON > "$WORK/app-dist-$kind.log"
    cmake --build "$WORK/app-dist-$kind" >> "$WORK/app-dist-$kind.log"
    check_mpi_run "find_package COMPONENTS dist, $kind" "$WORK/app-dist-$kind/dist_example"
    [ "$(pkg-config --modversion tensor-dist)" = "$VERSION" ] || die "pkg-config tensor-dist version"
    pc_flags=$(pkg-config --cflags --libs $([ $kind = static ] && echo --static) tensor-dist)
    say "pkg-config tensor-dist, $kind: $CC -std=c11 dist_example.c $pc_flags $rpath"
    # shellcheck disable=SC2086
    "$CC" -std=c11 -Wall -Wextra -Werror -o "$WORK/app-pc-dist-$kind" \
        "$SRC/tests/downstream/dist_example.c" $pc_flags $rpath
    check_mpi_run "pkg-config tensor-dist, $kind" "$WORK/app-pc-dist-$kind"
    if [ $kind = static ]; then
        [ -f "$libdir/libtensor_dist.a" ] || die "static: no libtensor_dist.a"
        ! ldd "$WORK/app-pc-dist-$kind" | grep -q libtensor ||
            die "static: the MPI program depends on a shared libtensor"
    else
        lib=$(readlink -f "$libdir/libtensor_dist.so")
        soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
        [ "$soname" = "libtensor_dist.so.${VERSION%.*}" ] || die "shared: tensor_dist SONAME '$soname'"
        exported=$(nm -D --defined-only "$lib" | awk '{ print $3 }')
        bad=$(echo "$exported" | grep -v '^tn_dist_' || true)
        [ -z "$bad" ] || die "shared: libtensor_dist exports other than tn_dist_: $bad"
        say "shared: tensor_dist SONAME $soname, $(echo "$exported" | wc -l) exported symbols, all tn_dist_"
    fi
done

# 5. an install without MPI (-DTN_MPI=OFF, static): nothing of tensor_dist,
# find_package(tensor 0.6) works, COMPONENTS dist is refused with a message
# and OPTIONAL_COMPONENTS dist finds tensor without it.
prefix=$WORK/prefix-nompi
rm -rf "$prefix" "$WORK/lib-nompi"
cmake -S "$SRC" -B "$WORK/lib-nompi" -DCMAKE_BUILD_TYPE=Release -DTN_MPI=OFF \
    -DTN_BUILD_TESTS=OFF -DTN_BUILD_EXAMPLES=OFF -DTN_BUILD_BENCH=OFF \
    -DCMAKE_INSTALL_PREFIX="$prefix" > "$WORK/lib-nompi.log"
cmake --build "$WORK/lib-nompi" -j"$JOBS" >> "$WORK/lib-nompi.log"
cmake --install "$WORK/lib-nompi" >> "$WORK/lib-nompi.log"
# (file names only: the work directory's path may contain "dist")
! sed 's|.*/||' "$WORK/lib-nompi/install_manifest.txt" | grep -i 'dist' ||
    die "no MPI: the install holds the files above of tensor_dist"
rm -rf "$WORK/app-nompi"
cmake -S "$SRC/tests/downstream" -B "$WORK/app-nompi" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$prefix" > "$WORK/app-nompi.log"
cmake --build "$WORK/app-nompi" >> "$WORK/app-nompi.log"
check_run "find_package, no MPI" "$WORK/app-nompi/readme_example"
rm -rf "$WORK/app-nompi-dist"
if cmake -S "$SRC/tests/downstream" -B "$WORK/app-nompi-dist" -DCMAKE_PREFIX_PATH="$prefix" \
       -DTENSOR_DIST=ON > "$WORK/app-nompi-dist.log" 2>&1 ||
   ! grep -q "component dist: this install of tensor was built without MPI" "$WORK/app-nompi-dist.log"; then
    die "no MPI: find_package(tensor COMPONENTS dist) not refused with the message (see $WORK/app-nompi-dist.log)"
fi
rm -rf "$WORK/app-nompi-dist"
cmake -S "$SRC/tests/downstream" -B "$WORK/app-nompi-dist" -DCMAKE_PREFIX_PATH="$prefix" \
    -DTENSOR_DIST=OPTIONAL > "$WORK/app-nompi-dist.log" 2>&1 ||
    die "no MPI: find_package(tensor OPTIONAL_COMPONENTS dist) failed"
grep -q "dist: FALSE" "$WORK/app-nompi-dist.log" || die "no MPI: OPTIONAL_COMPONENTS dist found dist"
say "no MPI: nothing of tensor_dist installed; COMPONENTS dist refused, OPTIONAL_COMPONENTS dist without it"

# 3. as a subproject: tensor::tensor from add_subdirectory; no tensor tests
# in the parent's ctest.
rm -rf "$WORK/app-subdir"
cmake -S "$SRC/tests/downstream" -B "$WORK/app-subdir" -DCMAKE_BUILD_TYPE=Release \
    -DTENSOR_SOURCE_DIR="$SRC" > "$WORK/app-subdir.log"
cmake --build "$WORK/app-subdir" -j"$JOBS" >> "$WORK/app-subdir.log"
check_run "add_subdirectory" "$WORK/app-subdir/readme_example"
ntests=$(ctest --test-dir "$WORK/app-subdir" -N | sed -n 's/^Total Tests: //p')
[ "$ntests" = 0 ] || die "add_subdirectory: tensor added $ntests tests to the parent project"
[ ! -e "$WORK/app-subdir/tensor/examples" ] || die "add_subdirectory: examples were built"
say "add_subdirectory: no tests, examples or benchmarks of tensor in the parent"
say "all passed"
