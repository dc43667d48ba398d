#!/bin/bash
# End-to-end tests of examples/custom_cell (registered in tests/CMakeLists.txt).
#
#   bash test_custom_cell.sh path/to/custom_cell path/to/tests/fixtures
#
# 1. parity: the first 8 training losses of each cell, from custom_cell's own
#    initial weights, equal PyTorch's (fixtures/custom_cell_torch_losses.txt,
#    written by tests/torch_custom_cell.py fixture);
# 2. each cell trains briefly on the generated text: the loss falls, sample
#    and eval read the checkpoint;
# 3. the gradient check passes for both cells, and fails with --cut-bptt;
# 4. bad arguments exit 2 with a message; bad files exit 1 naming the file;
# 5. bench prints its key=value line.
# No Python: everything here is bash, coreutils and awk.
set -u
BIN=${1:?usage: test_custom_cell.sh CUSTOM_CELL FIXTURES}
FIX=${2:?usage: test_custom_cell.sh CUSTOM_CELL FIXTURES}
export LC_ALL=C.UTF-8
export TN_NUM_THREADS=1
source "$(dirname "$0")/checks.sh"

# ---- 1. parity with PyTorch ----
# Tolerance 2e-5 on each loss (about 3.5): custom_cell and PyTorch agree to
# 2.4e-7 (one float32 rounding of the loss; PyTorch 1.13), while real
# mistakes are far larger: the output gate's peephole reading c_{t-1} instead
# of c_t differs by 2e-4 to 7e-4 over these 8 steps. Step 8 starts the
# streams over (state zeroed), so the wrap is covered too.
TOL=2e-5
FLAGS=(--data "$FIX/char_rnn_torch_eval.txt" --hidden 16 --embed 8 --batch 4 --seq 16
       --lr 0.01 --seed 5 --eval-every 0 --threads 1)
for cell in peephole mgu; do
    if "$BIN" train --cell $cell --steps 8 "${FLAGS[@]}" --loss-log "$TMP/$cell.csv" \
        > /dev/null 2> "$TMP/err"; then
        res=$(awk -v cell=$cell -v tol=$TOL -F'[ ,]' '
            FNR == NR { if ($1 == cell) want[$2] = $3; next }
            FNR > 1 { n++; d = $2 - want[$1]; if (d < 0) d = -d; if (d > worst) worst = d
                      if (!($1 in want) || d > tol) bad++ }
            END { printf "%d %d %.2g", n, bad, worst }' \
            "$FIX/custom_cell_torch_losses.txt" "$TMP/$cell.csv")
        read -r n bad worst <<< "$res"
        if [ "$n" -eq 8 ] && [ "$bad" -eq 0 ]; then
            pass "parity $cell: 8 losses match PyTorch's within $TOL (largest difference $worst)"
        else
            fail "parity $cell: $n losses, $bad beyond $TOL (largest difference $worst)"
        fi
    else
        fail "parity $cell: train failed: $(cat "$TMP/err")"
    fi
done

# ---- 2. train, sample, eval ----
# 40 steps of B 8 x T 32 at --lr 0.01 on the generated text. The first
# loss is about ln(V) = 3.4 (V = 30); the mean of the last 5 must be at
# least 1.0 lower (seen: 1.88 and 1.89, a fall of 1.5; an untrained model
# stays near 3.4). This checks that training works end to end; the
# gradients' correctness is checked by 1 and 3.
printf 'The old man loves the sea. A young queen finds the river at night.\n' \
    > "$TMP/eval.txt"
for cell in peephole mgu; do
    CK="$TMP/$cell.st"
    if "$BIN" train --cell $cell --steps 40 --hidden 32 --embed 16 --batch 8 --seq 32 \
        --lr 0.01 --eval-every 20 --threads 1 --checkpoint "$CK" --loss-log "$TMP/t$cell.csv" \
        > "$TMP/out" 2> "$TMP/err"; then
        read -r first last <<< "$(awk -F, 'NR == 2 { f = $2 } NR > 36 { s += $2; n++ }
                                       END { printf "%.4f %.4f", f, s / n }' "$TMP/t$cell.csv")"
        if awk -v f="$first" -v l="$last" 'BEGIN { exit !(l < f - 1.0) }'; then
            pass "train $cell: loss $first -> $last (mean of the last 5 steps)"
        else
            fail "train $cell: loss $first -> $last, want a fall of 1.0"
        fi
    else
        fail "train $cell: exit $?: $(cat "$TMP/err")"
        continue
    fi
    N=60
    "$BIN" sample --checkpoint "$CK" --length $N --seed 3 --prime "The " > "$TMP/s1" 2> "$TMP/err"
    rc=$?
    "$BIN" sample --checkpoint "$CK" --length $N --seed 3 --prime "The " > "$TMP/s2" 2> /dev/null
    got=$(wc -m < "$TMP/s1")
    if [ $rc -eq 0 ] && [ "$got" -eq $((4 + N + 1)) ] && cmp -s "$TMP/s1" "$TMP/s2"; then
        pass "sample $cell: prime + $N characters, the same again: $(head -c 64 "$TMP/s1")"
    else
        fail "sample $cell: rc $rc, $got characters: $(cat "$TMP/s1" "$TMP/err")"
    fi
    out=$("$BIN" eval --checkpoint "$CK" --data "$TMP/eval.txt" 2>&1)
    rc=$?
    loss=$(echo "$out" | awk '$1 == "loss" { print $2 }')
    if [ $rc -eq 0 ] && [ -n "$loss" ] &&
       awk -v l="$loss" -v f="$first" 'BEGIN { exit !(l < f - 1.0) }'; then
        pass "eval $cell: $out (untrained: about $first)"
    else
        fail "eval $cell: rc $rc: $out"
    fi
done

# ---- 3. gradient check ----
# custom_cell gradcheck compares the tape's gradients of every parameter and
# of h0, c0 with central differences in float64 (tolerance 1e-6 relative;
# seen about 5e-8; the program prints its reasoning in the source). With
# --cut-bptt the state is detached at each step: the gradients through time
# are missing, and the check must fail (seen: relative errors above 1).
for cell in peephole mgu; do
    out=$("$BIN" gradcheck --cell $cell 2>&1)
    rc=$?
    if [ $rc -eq 0 ] && [[ "$out" == *": ok (tolerance"* ]]; then
        pass "$out"
    else
        fail "gradcheck $cell: exit $rc: $out"
    fi
    out=$("$BIN" gradcheck --cell $cell --cut-bptt 2>&1)
    rc=$?
    if [ $rc -eq 1 ] && [[ "$out" == *": FAILED (tolerance"* ]]; then
        pass "negative control: $out"
    else
        fail "gradcheck $cell --cut-bptt passed or crashed: exit $rc: $out"
    fi
done

# ---- 4. refusals ----
# Bad arguments: exit 2 with a message naming the option, before any work.
refuse() {
    local want=$1 what=$2
    shift 2
    err=$("$BIN" "$@" 2>&1 > /dev/null)
    rc=$?
    if [ $rc -eq "$want" ] && [[ "$err" == *"$what"* ]]; then
        pass "$* -> exit $rc: $(echo "$err" | head -1)"
    else
        fail "$* -> exit $rc (want $want, message with '$what'): $err"
    fi
}
refuse 2 "--cell" train --cell gru
refuse 2 "--hidden" train --hidden 0
refuse 2 "--steps" train --steps -1
refuse 2 "--lr" train --lr 0
refuse 2 "--lr" train --lr nan
refuse 2 "--batch" train --batch 1x
refuse 2 "--bogus" train --bogus 1
refuse 2 "--prime" train --prime abc
refuse 2 "--cut-bptt" train --cut-bptt
refuse 2 "predict" predict
refuse 2 "--checkpoint" sample
refuse 2 "--data" eval --checkpoint "$TMP/peephole.st"
refuse 2 "--checkpoint" train --steps 1 --checkpoint "$TMP/no/such/dir/x.st"
refuse 2 "--prime" sample --checkpoint "$TMP/peephole.st" --prime $'\xff'
refuse 2 "--seconds" bench --seconds -1
refuse 2 "--log" train --steps 1 --log "$TMP/no/such/dir/log.csv"
refuse 2 "--loss-log" train --steps 1 --loss-log "$TMP/no/such/dir/log.csv"
# --help lists the options with their defaults on stdout, exit 0.
out=$("$BIN" train --help 2>&1)
rc=$?
if [ $rc -eq 0 ] && [[ "$out" == *"--cell"*"peephole|mgu"*"--hidden"*"128"* ]]; then
    pass "train --help lists --cell and --hidden with its default"
else
    fail "train --help: exit $rc: $out"
fi
# Bad files: exit 1 naming the file.
refuse 1 "$TMP/none.st" sample --checkpoint "$TMP/none.st"
refuse 1 "$FIX/char_rnn_torch.safetensors" eval --checkpoint "$FIX/char_rnn_torch.safetensors" \
    --data "$TMP/eval.txt"
head -c 100 "$TMP/peephole.st" > "$TMP/cut.st"
refuse 1 "$TMP/cut.st" eval --checkpoint "$TMP/cut.st" --data "$TMP/eval.txt"
printf 'Zebra\n' > "$TMP/zebra.txt" # Z is not in the generated text's vocabulary
refuse 1 "Z" eval --checkpoint "$TMP/peephole.st" --data "$TMP/zebra.txt"
refuse 1 "$TMP/nodata" train --data "$TMP/nodata"

# ---- 5. bench ----
out=$("$BIN" bench --hidden 16 --batch 4 --seq 8 --seconds 0.2 --threads 1 2> "$TMP/err")
rc=$?
if [ $rc -eq 0 ] && [[ "$out" == config=peephole-h16-b4-t8\ *tokens_per_s=* ]]; then
    pass "bench: $out"
else
    fail "bench: exit $rc: $out $(cat "$TMP/err")"
fi

checks_end
