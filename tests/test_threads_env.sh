#!/usr/bin/env bash
# tests/test_threads_env.sh - the default thread count (src/core/runtime.c)
# as tensor_info reports it: TN_NUM_THREADS, else OMP_NUM_THREADS (its
# first entry), else the CPUs of the affinity mask shared among the MPI
# ranks of this node; an invalid value is refused with a message naming the
# variable, not ignored.
#   bash tests/test_threads_env.sh TENSOR_INFO
set -u
. "$(dirname "$0")/checks.sh"
info=$1
unset TN_NUM_THREADS OMP_NUM_THREADS OMPI_COMM_WORLD_LOCAL_SIZE MPI_LOCALNRANKS

threads() { # the tn_num_threads that tensor_info reports under env "$@"
    env "$@" "$info" 2>&1 | sed -n 's/^threads: tn_num_threads \([0-9]*\),.*/\1/p'
}
expect() { # WANT ENV...
    local want=$1
    shift
    local got
    got=$(threads "$@")
    [ "$got" = "$want" ] && pass "$* -> $want threads" || fail "$* -> '$got' threads, want $want"
}

cpus=$(threads)
[ -n "$cpus" ] && [ "$cpus" -ge 1 ] && pass "default: $cpus threads" || fail "default: '$cpus'"
expect 3 TN_NUM_THREADS=3
expect 2 OMP_NUM_THREADS=2,1
expect 5 TN_NUM_THREADS=5 OMP_NUM_THREADS=2
if command -v taskset >/dev/null; then
    got=$(taskset -c 0 env "$info" | sed -n 's/^threads: tn_num_threads \([0-9]*\),.*/\1/p')
    [ "$got" = 1 ] && pass "affinity mask of one CPU -> 1 thread" || fail "taskset -c 0 -> '$got'"
fi
expect $(((cpus / 2) > 0 ? cpus / 2 : 1)) OMPI_COMM_WORLD_LOCAL_SIZE=2
expect 4 TN_NUM_THREADS=4 OMPI_COMM_WORLD_LOCAL_SIZE=2
for bad in "TN_NUM_THREADS=abc" "TN_NUM_THREADS=0" "TN_NUM_THREADS=2x" "TN_NUM_THREADS=99999" \
           "OMP_NUM_THREADS=-1"; do
    out=$(env "$bad" "$info" 2>&1)
    echo "$out" | grep -q "$bad: not a thread count" && pass "$bad refused naming it" ||
        fail "$bad: $out"
done
checks_end
