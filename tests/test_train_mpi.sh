#!/usr/bin/env bash
# char_rnn or word_lm train under mpirun (tests/CMakeLists.txt runs this
# only when MPI was found): usage test_train_mpi.sh PROGRAM MPIEXEC, where
# PROGRAM is the path of char_rnn or word_lm (the two language models: the
# same options, and eval prints "loss L ppl P")
#   1. 2 ranks x half the batch give the model of 1 process x the whole
#      batch: the losses of the two final checkpoints on the text agree to
#      1e-5 relative (float32 sums in another order); dropout off here,
#      since each rank draws its own masks;
#   2. a 2-rank run with dropout resumed half-way ends at the same
#      checkpoint as the straight 2-rank run (byte-identical file: MPI's sums of 2 ranks are
#      in a fixed order for a fixed message size);
#   3. resuming with another number of ranks, and a batch that does not
#      split over the ranks, are refused with a message, exit 1, no hang.
set -u
BIN=$1
MPI=$2
RUN=("$MPI" -np 2 --oversubscribe --allow-run-as-root)
source "$(dirname "$0")/checks.sh"
export TN_NUM_THREADS=1 OMP_NUM_THREADS=1
for i in $(seq 1 120); do printf 'line %d: the fox saw %d hens and %d geese.\n' "$i" $((i * 7 % 13)) $((i * 5 % 11)); done \
    > "$TMP/text.txt"
FLAGS=(--data "$TMP/text.txt" --hidden 24 --layers 1 --embed 16 --batch 4 --seq 16 --eval-every 0 --dropout 0)

timeout 120 "${RUN[@]}" "$BIN" train "${FLAGS[@]}" --steps 12 --checkpoint "$TMP/two.st" > /dev/null 2>&1
timeout 120 "$BIN" train "${FLAGS[@]}" --steps 12 --checkpoint "$TMP/one.st" > /dev/null 2>&1
l2=$("$BIN" eval --checkpoint "$TMP/two.st" --data "$TMP/text.txt" 2>/dev/null | awk '{print $2}')
l1=$("$BIN" eval --checkpoint "$TMP/one.st" --data "$TMP/text.txt" 2>/dev/null | awk '{print $2}')
if [ -n "$l1" ] && [ -n "$l2" ] && awk -v a="$l1" -v b="$l2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-5 * a) }'; then
    pass "2 ranks vs 1 process: eval loss $l2 vs $l1"
else
    fail "2 ranks vs 1 process: eval loss '$l2' vs '$l1'"
fi

# with dropout: each rank's mask generator is saved and restored
timeout 120 "${RUN[@]}" "$BIN" train "${FLAGS[@]}" --dropout 0.1 --steps 12 --checkpoint "$TMP/drop.st" > /dev/null 2>&1
timeout 120 "${RUN[@]}" "$BIN" train "${FLAGS[@]}" --dropout 0.1 --steps 6 --checkpoint "$TMP/half.st" > /dev/null 2>&1
timeout 120 "${RUN[@]}" "$BIN" train "${FLAGS[@]}" --dropout 0.1 --steps 12 --checkpoint "$TMP/half.st" --resume > /dev/null 2>&1
if [ -s "$TMP/half.st" ] && cmp -s "$TMP/half.st" "$TMP/drop.st"; then
    pass "2 ranks resumed at step 6 = straight 2-rank run (byte-identical checkpoint)"
else
    fail "2 ranks resumed at step 6 differs from the straight run"
fi

err=$(timeout 120 "$BIN" train "${FLAGS[@]}" --steps 14 --checkpoint "$TMP/two.st" --resume 2>&1 >/dev/null)
rc=$?
if [ $rc -eq 1 ] && [[ "$err" == *"run of 2 ranks"* ]]; then
    pass "resume a 2-rank checkpoint with 1 process: exit $rc: $err"
else
    fail "resume a 2-rank checkpoint with 1 process: exit $rc: $err"
fi
err=$(timeout 120 "${RUN[@]}" "$BIN" train --batch 3 --steps 2 2>&1 >/dev/null)
rc=$?
if [ $rc -ne 0 ] && [ $rc -ne 124 ] && [[ "$err" == *"does not split over 2 ranks"* ]]; then
    pass "--batch 3 on 2 ranks: exit $rc: $(echo "$err" | grep 'does not split' | head -1)"
else
    fail "--batch 3 on 2 ranks: exit $rc: $err"
fi
checks_end
