#!/usr/bin/env bash
# caption against its PyTorch reference, tests/torch_caption.py (usage:
# test_torch_caption.sh CAPTION_BINARY; exit 77, skipped, when
# /usr/bin/python3 cannot import torch: CI has no PyTorch). On 400 training
# and 100 held-out scenes (`caption scenes`, --threads 1):
#   1. the same steps: from caption's initial weights (train --steps 0),
#      torch_caption.py takes the same 5 steps on the same batches and
#      prints the same losses (4 decimals) as `caption train --steps 5`,
#      and its weights differ from caption's by less than 1% of the
#      largest update (float32 rounding: 3.7e-4 measured over 3 steps);
#      the same for a small model with --attention bahdanau;
#   2. the same evaluation: torch_caption.py's held-out loss and greedy
#      BLEU of a checkpoint caption trained 150 steps are caption's own
#      (the same decoding and BLEU-4), and that BLEU is not 0;
#   3. torch_caption.py refuses held-out scenes as training scenes.
# About 20 s.
set -u
BIN=$1
PY=${PYTHON:-/usr/bin/python3} # (PYTHON: another interpreter, e.g. to see the skip)
TC=$(cd "$(dirname "$0")" && pwd)/torch_caption.py
if ! "$PY" -c "import torch" 2>/dev/null; then
    echo "skipped: $PY cannot import torch"
    exit 77
fi
source "$(dirname "$0")/checks.sh"
SC=(--train-scenes 400 --val-scenes 100)
"$BIN" scenes --split train --train-scenes 400 --out "$TMP/train.st" --threads 1 >/dev/null &&
    "$BIN" scenes --val-scenes 100 --out "$TMP/val.st" --threads 1 >/dev/null ||
    fail "caption scenes"
DATA=(--train-data "$TMP/train.st" --val-data "$TMP/val.st" --threads 1)
# the final line's figures: train_loss, last batch, val_loss, val_bleu
figures() { awk '$1 == "final" { print $5, $8, $10, $12 }' | tr -d ')'; }

# 1. the same steps
"$BIN" train "${SC[@]}" --steps 0 --seed 7 --threads 1 --checkpoint "$TMP/c0.st" >/dev/null 2>&1
ours=$("$BIN" train "${SC[@]}" --steps 5 --seed 7 --threads 1 --checkpoint "$TMP/c5.st" \
    2>/dev/null | figures)
out=$("$PY" "$TC" "${DATA[@]}" --init "$TMP/c0.st" --steps 5 --seed 7 --compare "$TMP/c5.st" 2>&1)
theirs=$(echo "$out" | figures)
ratio=$(echo "$out" | awk '/^largest weight difference/ { print $NF }')
if [ -n "$ours" ] && [ "$ours" = "$theirs" ]; then
    pass "the same 5 steps: train_loss, last batch, val_loss, val_bleu $ours on both sides"
else
    fail "5 steps: caption '$ours', torch_caption.py '$theirs'"
fi
if [ -n "$ratio" ] && awk -v r="$ratio" 'BEGIN { exit !(r < 1e-2) }'; then
    pass "weights after 5 steps: largest difference / largest update $ratio (< 1e-2)"
else
    fail "weights after 5 steps: ratio '$ratio': $out"
fi

# 1b. the same steps with attention over the feature map (a smaller model)
ATT=(--attention bahdanau --channels 4 --hidden 32 --embed 16)
"$BIN" train "${SC[@]}" "${ATT[@]}" --steps 0 --seed 7 --threads 1 --checkpoint "$TMP/a0.st" \
    >/dev/null 2>&1
ours=$("$BIN" train "${SC[@]}" "${ATT[@]}" --steps 5 --seed 7 --threads 1 \
    --checkpoint "$TMP/a5.st" 2>/dev/null | figures)
out=$("$PY" "$TC" "${DATA[@]}" --init "$TMP/a0.st" --steps 5 --seed 7 --compare "$TMP/a5.st" 2>&1)
theirs=$(echo "$out" | figures)
ratio=$(echo "$out" | awk '/^largest weight difference/ { print $NF }')
if [ -n "$ours" ] && [ "$ours" = "$theirs" ] && [ -n "$ratio" ] &&
    awk -v r="$ratio" 'BEGIN { exit !(r < 1e-2) }'; then
    pass "attention, the same 5 steps: $ours on both sides, weights $ratio of the update apart"
else
    fail "attention, 5 steps: caption '$ours', torch_caption.py '$theirs', ratio '$ratio'"
fi

# 2. the same evaluation of a trained checkpoint
ours=$("$BIN" train "${SC[@]}" --steps 150 --lr 0.006 --eval-every 0 --seed 7 --threads 1 \
    --checkpoint "$TMP/c150.st" 2>/dev/null | figures | awk '{ print $3, $4 }')
theirs=$("$PY" "$TC" "${DATA[@]}" --init "$TMP/c150.st" --steps 0 2>/dev/null | figures |
    awk '{ print $3, $4 }')
if [ -n "$ours" ] && [ "$ours" = "$theirs" ] && [ "${ours#* }" != "0.00" ]; then
    pass "the same evaluation of caption's checkpoint: val_loss, val_bleu $ours on both sides"
else
    fail "evaluation of caption's checkpoint: caption '$ours', torch_caption.py '$theirs'"
fi

# 3. refusals
refuse "held-out scenes as the training scenes" "not the train scenes" \
    "$PY" "$TC" --train-data "$TMP/val.st" --val-data "$TMP/val.st" --steps 1
refuse "a missing --val-data" "--val-data $TMP/none.st: no such file" \
    "$PY" "$TC" --train-data "$TMP/train.st" --val-data "$TMP/none.st" --steps 1
checks_end
