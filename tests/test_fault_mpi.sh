#!/usr/bin/env bash
# A rank killed mid-run (tests/CMakeLists.txt runs this only when MPI was
# found): usage test_fault_mpi.sh CHAR_RNN MPIEXEC
#   1. char_rnn trains on 2 ranks, writing a checkpoint every 5 steps; once
#      a checkpoint exists, rank 1 gets SIGKILL: mpirun ends the run and
#      exits non-zero within 60 s (Open MPI aborts the job when a process
#      dies), never hangs;
#   2. the last checkpoint (written atomically: a rename over the old
#      file) still loads (eval), and --resume on 2 ranks continues from it
#      10 steps further.
set -u
BIN=$1
MPI=$2
RUN=("$MPI" -np 2 --oversubscribe --allow-run-as-root)
source "$(dirname "$0")/checks.sh"
export TN_NUM_THREADS=1 OMP_NUM_THREADS=1
for i in $(seq 1 80); do printf 'line %d: the fox saw %d hens.\n' "$i" $((i * 7 % 13)); done > "$TMP/text.txt"
FLAGS=(--data "$TMP/text.txt" --hidden 32 --layers 1 --embed 16 --batch 4 --seq 16
       --eval-every 0 --save-every 5 --checkpoint "$TMP/ck.st")

# the PID of rank R of the run under mpirun (its environment says its rank)
rank_pid() {
    for p in $(pgrep -f "$BIN train"); do
        if tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$1"; then
            echo "$p"
            return
        fi
    done
}

"${RUN[@]}" "$BIN" train "${FLAGS[@]}" --steps 1000000 > /dev/null 2> "$TMP/err" &
job=$!
for i in $(seq 1 600); do [ -s "$TMP/ck.st" ] && break; sleep 0.1; done
victim=$(rank_pid 1)
t0=$(date +%s)
[ -n "$victim" ] && kill -9 "$victim"
for i in $(seq 1 600); do kill -0 $job 2>/dev/null || break; sleep 0.1; done
if kill -0 $job 2>/dev/null; then
    kill -9 $job; pkill -9 -f "$BIN train"
    fail "rank 1 killed: the run still hangs after 60 s"
else
    wait $job
    rc=$?
    if [ -n "$victim" ] && [ $rc -ne 0 ]; then
        pass "rank 1 (pid $victim) killed: mpirun exit $rc after $(( $(date +%s) - t0 )) s"
    else
        fail "rank 1 killed (pid '$victim'): exit $rc"
    fi
fi

loss=$("$BIN" eval --checkpoint "$TMP/ck.st" --data "$TMP/text.txt" 2>/dev/null | awk '$1 == "loss" { print $2 }')
at=$(head -c 4096 "$TMP/ck.st" | grep -ao '"step":"[0-9]*"' | grep -o '[0-9][0-9]*')
end=$(( ${at:-0} + 10 ))
out=$(timeout 120 "${RUN[@]}" "$BIN" train "${FLAGS[@]}" --steps $end --resume 2>&1)
rc=$?
if [ -n "$loss" ] && [ -n "$at" ] && [ $rc -eq 0 ] && [[ "$out" == *"resumed"*"at step $at"*"final step $end"* ]]; then
    pass "the last checkpoint (step $at) loads (eval loss $loss) and --resume runs on to step $end"
else
    fail "after the kill: eval '$loss', checkpoint step '$at', resume exit $rc: $out"
fi
checks_end
