#!/usr/bin/env bash
# translate and classify train under mpirun as char_rnn and word_lm do
# (tests/CMakeLists.txt runs this only when MPI was found): usage
# test_programs_mpi.sh TRANSLATE CLASSIFY MPIEXEC
#   1. classify: 2 ranks x half the batch give the model of 1 process x the
#      whole batch (--balance none: every example weighs the same, so the
#      mean of the ranks' means is the batch's mean): eval losses agree to
#      2e-4 (set when eval printed 4 decimals; it prints 6 now);
#   2. translate with dropout and teacher forcing 0.8, 2 ranks: a run
#      resumed half-way ends at the straight run's checkpoint
#      (byte-identical: every rank's generators are saved); its loss is
#      finite (the ranks' means over their own target tokens are averaged,
#      as data-parallel training does, so it is not compared with 1
#      process);
#   3. classify's --batch 5 on 2 ranks and translate's 2-rank checkpoint
#      resumed by 1 process are refused with a message, exit 1, no hang.
set -u
TRANSLATE=$1
CLASSIFY=$2
MPI=$3
RUN=("$MPI" -np 2 --oversubscribe --allow-run-as-root)
source "$(dirname "$0")/checks.sh"
export TN_NUM_THREADS=1 OMP_NUM_THREADS=1

C=(--hidden 16 --embed 8 --batch 8 --steps 12 --eval-every 0 --balance none --lr 0.01)
timeout 120 "${RUN[@]}" "$CLASSIFY" train "${C[@]}" --checkpoint "$TMP/c2.st" > /dev/null 2>&1
timeout 120 "$CLASSIFY" train "${C[@]}" --checkpoint "$TMP/c1.st" > /dev/null 2>&1
l2=$("$CLASSIFY" eval --checkpoint "$TMP/c2.st" --split val 2>/dev/null | awk '$1 == "loss" { print $2 }')
l1=$("$CLASSIFY" eval --checkpoint "$TMP/c1.st" --split val 2>/dev/null | awk '$1 == "loss" { print $2 }')
if [ -n "$l1" ] && [ -n "$l2" ] && awk -v a="$l1" -v b="$l2" 'BEGIN { d = a - b; exit !(d <= 2e-4 && d >= -2e-4) }'; then
    pass "classify, 2 ranks vs 1 process: eval loss $l2 vs $l1"
else
    fail "classify, 2 ranks vs 1 process: eval loss '$l2' vs '$l1'"
fi

T=(--hidden 16 --embed 8 --batch 8 --eval-every 0 --eval-pairs 20 --dropout 0.1
   --teacher-forcing 0.8)
timeout 300 "${RUN[@]}" "$TRANSLATE" train "${T[@]}" --steps 10 --checkpoint "$TMP/t.st" > /dev/null 2>&1
timeout 300 "${RUN[@]}" "$TRANSLATE" train "${T[@]}" --steps 5 --checkpoint "$TMP/h.st" > /dev/null 2>&1
out=$(timeout 300 "${RUN[@]}" "$TRANSLATE" train "${T[@]}" --steps 10 --checkpoint "$TMP/h.st" --resume 2>&1)
if [ -s "$TMP/h.st" ] && cmp -s "$TMP/h.st" "$TMP/t.st" &&
   [[ "$out" == *"final step 10 train_loss "[0-9]* ]]; then
    pass "translate, 2 ranks resumed at step 5 = straight 2-rank run (byte-identical checkpoint)"
else
    fail "translate, 2 ranks resumed at step 5 differs from the straight run: $out"
fi

err=$(timeout 120 "${RUN[@]}" "$CLASSIFY" train "${C[@]}" --batch 5 2>&1 >/dev/null)
rc=$?
if [ $rc -ne 0 ] && [ $rc -ne 124 ] && [[ "$err" == *"does not split over 2 ranks"* ]]; then
    pass "classify --batch 5 on 2 ranks: exit $rc"
else
    fail "classify --batch 5 on 2 ranks: exit $rc: $err"
fi
err=$(timeout 120 "$TRANSLATE" train "${T[@]}" --steps 12 --checkpoint "$TMP/t.st" --resume 2>&1 >/dev/null)
rc=$?
if [ $rc -eq 1 ] && [[ "$err" == *"run of 2 ranks"* ]]; then
    pass "translate: a 2-rank checkpoint resumed by 1 process is refused: $err"
else
    fail "translate: a 2-rank checkpoint resumed by 1 process: exit $rc: $err"
fi
checks_end
