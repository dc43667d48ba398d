#!/usr/bin/env bash
# examples/classify end to end (usage: test_classify.sh CLASSIFY [DATA_DIR]):
#   1. train on the generated task (no data needed, a few seconds): the CSV
#      log has a row per evaluation, and the final validation accuracy is at
#      least 0.90 and the balanced accuracy at least 0.85. The task has 4
#      classes of 1200/600/300/150 words: a model that has not learnt
#      anything predicts one class whatever the input, which scores at most
#      the largest class's share (120/225 = 0.53 of the validation split)
#      and a balanced accuracy of 0.25;
#   2. predict: one line out per line in, "label<TAB>label p<TAB>label p"
#      with --top 2, probabilities in [0, 1] in falling order, the first
#      label repeated first, an empty line answered too;
#   3. eval: "accuracy <x>" and the confusion matrix (4 rows whose counts
#      sum to the examples); --plot writes the CSV, and an 800x800 PNG (the
#      size read from the IHDR header) when gnuplot exists;
#   4. refusals, each a non-zero exit and a message: a missing --data
#      directory, a directory without <Label>.txt files, an empty class
#      file, a bad checkpoint (missing, not a checkpoint), a class eval's
#      checkpoint does not know,
#      bad option values, predict without --checkpoint; a class file name
#      with a newline, a tab or bytes that are not UTF-8, a FIFO class file,
#      a checkpoint with a label twice; a checkpoint whose metadata sizes
#      its tensors do not have (refused before the model is built); a
#      model with a NaN in its head (predict and eval);
#   5. with DATA_DIR/names (the repository's data/names, which ctest
#      passes), a short run (200 steps) on the 18 surname languages: a
#      balanced validation accuracy of at least 0.20, where any constant
#      prediction scores 1/18 = 0.056 (plain accuracy is no evidence here:
#      always "Russian" scores 0.50); skipped only when the script is run
#      by hand without DATA_DIR (a DATA_DIR without names/ fails). The same
#      run with --balance none: the class weights (the default) must show,
#      as a balanced accuracy at least 0.05 higher and a plain accuracy at
#      least 0.10 lower than without them (measured 0.40 / 0.50 against
#      0.28 / 0.71 on every kernel path; the weights dropped from the
#      training loss make the two runs equal).
set -u
BIN=$1
DATA=${2:-}
source "$(dirname "$0")/checks.sh"
FLAGS=(--hidden 32 --embed 16 --batch 32 --threads 2 --lr 0.01)

# 1. training on the generated task
out=$("$BIN" train "${FLAGS[@]}" --steps 150 --eval-every 50 --checkpoint "$TMP/g.st" \
      --log "$TMP/g.csv" 2>&1)
rc=$?
final=$(echo "$out" | grep '^final step')
acc=$(echo "$final" | sed -n 's/.* val_accuracy \([0-9.]*\).*/\1/p')
bal=$(echo "$final" | sed -n 's/.* val_balanced_accuracy \([0-9.]*\).*/\1/p')
if [ $rc -eq 0 ] && [ -n "$acc" ] && awk -v a="$acc" -v b="$bal" 'BEGIN { exit !(a >= 0.90 && b >= 0.85) }' &&
   [ "$(wc -l < "$TMP/g.csv")" -eq 4 ] &&
   [ "$(head -1 "$TMP/g.csv")" = "step,train_loss,val_loss,val_accuracy,val_balanced_accuracy,elapsed_s,train_s" ]; then
    pass "train on the generated task: accuracy $acc >= 0.90, balanced $bal >= 0.85; log of 3 evaluations"
else
    fail "train on the generated task (rc $rc): $out"
fi

# 2. predict
printf 'Kotsuki\nLiranami\n\nBrundelsch\n' > "$TMP/in.txt"
pred=$("$BIN" predict --checkpoint "$TMP/g.st" --top 2 < "$TMP/in.txt")
if [ $? -eq 0 ] && [ "$(echo "$pred" | wc -l)" -eq 4 ] &&
   echo "$pred" | awk -F'\t' '
       NF != 3 { exit 1 }
       { split($2, a, " "); split($3, b, " ")
         if (a[1] != $1 || a[2] < b[2] || a[2] > 1 || b[2] < 0) exit 1 }' &&
   [ "$(echo "$pred" | head -2 | cut -f1 | tr '\n' ' ')" = "kotsuk lirana " ]; then
    pass "predict: 4 lines in, 4 out, label<TAB>label p<TAB>label p ($(echo "$pred" | head -1 | tr '\t' '|'))"
else
    fail "predict: '$pred'"
fi

# 3. eval, the confusion matrix and its plot
ev=$("$BIN" eval --checkpoint "$TMP/g.st" --split val --plot "$TMP/conf.png")
rc=$?
rows=$(echo "$ev" | awk '/^ *[0-9]+ [a-z]+ / { n++; for (i = 3; i <= NF; i++) s += $i } END { print n + 0, s + 0 }')
if [ $rc -eq 0 ] && [[ "$ev" =~ accuracy\ 0\.9[0-9]{3}|accuracy\ 1\.0000 ]] && [[ "$ev" == *"examples 225"* ]] &&
   [ "$rows" = "4 225" ] && [ -s "$TMP/conf.png.csv" ] && [ "$(wc -l < "$TMP/conf.png.csv")" -eq 4 ]; then
    pass "eval: $(echo "$ev" | head -1), 4x4 confusion matrix over 225 examples"
else
    fail "eval (rc $rc): $ev"
fi
if command -v gnuplot > /dev/null && gnuplot -e 'set terminal pngcairo' > /dev/null 2>&1; then
    # PNG: 8-byte signature, IHDR length and type, then width and height
    # as 4-byte big-endian numbers at offsets 16 and 20
    size=$(od -An -tu1 -j16 -N8 "$TMP/conf.png" 2>/dev/null |
           awk '{ print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4 "x" $5 * 16777216 + $6 * 65536 + $7 * 256 + $8 }')
    sig=$(od -An -tx1 -N8 "$TMP/conf.png" 2>/dev/null | tr -d ' ')
    [ "$sig" = "89504e470d0a1a0a" ] && [ "$size" = "800x800" ] &&
        pass "--plot: PNG of 800x800" || fail "--plot: PNG '$sig' of '$size', want 800x800"
else
    echo "skip - --plot PNG: no gnuplot with pngcairo (the CSV was checked)"
fi

# 4. refusals: non-zero exit and the message (refuse: checks.sh)
mkdir "$TMP/empty" "$TMP/one" "$TMP/hollow" "$TMP/other"
echo abc > "$TMP/one/A.txt"
printf 'Kotsu\n' > "$TMP/other/kotsuk.txt"
printf 'Abc\n' > "$TMP/other/Zed.txt"
echo abc > "$TMP/hollow/A.txt"
printf '\n\n' > "$TMP/hollow/B.txt"
echo "not a checkpoint" > "$TMP/bad.st"
refuse "missing --data directory" "No such file or directory" \
    "$BIN" train --data "$TMP/nowhere" --steps 1
refuse "a directory without <Label>.txt files" "no <Label>.txt files" \
    "$BIN" train --data "$TMP/empty" --steps 1
refuse "a single class" "only one <Label>.txt file" "$BIN" train --data "$TMP/one" --steps 1
refuse "a class file without examples" "B.txt: no examples" "$BIN" train --data "$TMP/hollow" --steps 1
refuse "a missing checkpoint" "--checkpoint $TMP/none.st" "$BIN" predict --checkpoint "$TMP/none.st"
refuse "a file that is not a checkpoint" "--checkpoint $TMP/bad.st" "$BIN" eval --checkpoint "$TMP/bad.st"
refuse "predict without --checkpoint" "needs --checkpoint" "$BIN" predict
refuse "--hidden 0" "--hidden" "$BIN" train --hidden 0
refuse "--val-fraction 1.5" "--val-fraction" "$BIN" train --val-fraction 1.5
refuse "--balance equal" "weights|sample|none" "$BIN" train --balance equal
refuse "--top x" "--top" "$BIN" predict --checkpoint "$TMP/g.st" --top x
refuse "--cell gru for eval" "--cell" "$BIN" eval --checkpoint "$TMP/g.st" --cell gru
refuse "--checkpoint in a missing directory" "--checkpoint" \
    "$BIN" train --steps 1 --checkpoint "$TMP/no/such/dir/x.st"
for opt in --log --loss-log; do
    refuse "$opt in a missing directory" "$opt" "$BIN" train --steps 1 $opt "$TMP/no/such/dir/x.csv"
done
refuse "eval on a class the checkpoint lacks" "class Zed is not one of the checkpoint's 4 labels" \
    "$BIN" eval --checkpoint "$TMP/g.st" --data "$TMP/other"
# Labels that a checkpoint cannot hold or predict cannot print plainly
# (issue 19): a file name with a newline (labels are saved one a line: the
# run trained, exit 0, and predict refused its checkpoint), with a tab
# (predict's columns), not UTF-8 (trained the whole run, then failed at the
# save); each refused before training, naming the file. A FIFO named X.txt
# hung the run forever: only regular files are classes (timeout 10 s).
for case in "newline:B"$'\n'"C" "tab:B"$'\t'"C" "byte that is not UTF-8:B"$'\xff'; do
    rm -rf "$TMP/lab" "$TMP/lab.st" && mkdir "$TMP/lab" && echo abc > "$TMP/lab/A.txt" &&
        echo def > "$TMP/lab/${case#*:}.txt"
    refuse "a label with a ${case%%:*}" "its label (the file name without .txt) has a ${case%%:*} at byte 1" \
        "$BIN" train --data "$TMP/lab" --steps 1 --checkpoint "$TMP/lab.st"
    [ ! -e "$TMP/lab.st" ] || fail "a label with a ${case%%:*}: a checkpoint was written"
done
rm -rf "$TMP/lab" && mkdir "$TMP/lab" && echo abc > "$TMP/lab/A.txt" && mkfifo "$TMP/lab/X.txt"
refuse "a FIFO named X.txt" "X.txt: not a regular file" timeout 10 "$BIN" train --data "$TMP/lab" --steps 1
# a checkpoint whose labels repeat one (predict's answers would be ambiguous)
cp "$TMP/g.st" "$TMP/dup.st"
set_meta "$TMP/dup.st" labels 'brundel\\nkotsuk\\nkotsuk\\noyaque' ||
    fail "duplicate labels: no labels in the checkpoint"
refuse "a checkpoint with a label twice" "label kotsuk twice" "$BIN" predict --checkpoint "$TMP/dup.st"
# sizes the file's tensors do not have (issue 19: predict built the model
# first, 3.9 GB for a crafted file; moderate sizes here)
for kv in "hidden 1024" "embed 1024" "layers 3"; do
    refuse_meta "$TMP/g.st" $kv "$BIN" predict --checkpoint "$TMP/crafted.st" < /dev/null
done
# a NaN in the head's bias (issue 19: predict printed "lirana nan", eval
# "loss nan", both exit 0)
refuse_nan "$TMP/g.st" 'head\.bias' 0 "$BIN" predict --checkpoint "$TMP/nan.st" <<< "Kotsu"
refuse_nan "$TMP/g.st" 'head\.bias' 0 "$BIN" eval --checkpoint "$TMP/nan.st"

# 4b. the recurrent layer's options (residual connections, LayerNorm,
#     Xavier/orthogonal init, forget-gate bias): the model trains, and its
#     checkpoint rebuilds it (eval's loss on the validation split is
#     train's last val_loss, up to the 4 decimals train prints); the forget-gate
#     bias needs an LSTM
out=$("$BIN" train "${FLAGS[@]}" --cell lstm --layers 2 --residual --layer-norm \
      --init xavier-orthogonal --forget-bias 1 --steps 40 --eval-every 0 \
      --checkpoint "$TMP/opt.st" 2>&1)
rc=$?
vl=$(echo "$out" | grep '^final step' | sed -n 's/.* val_loss \([0-9.]*\).*/\1/p')
el=$("$BIN" eval --checkpoint "$TMP/opt.st" --split val 2>/dev/null | awk '$1 == "loss" { print $2 }')
err=$("$BIN" train "${FLAGS[@]}" --cell gru --forget-bias 1 --steps 1 2>&1)
# eval's loss VL EL: train's 4-decimal val_loss is eval's 6-decimal loss
# up to the rounding of the 4th decimal
eval_loss_is() { [ -n "$1" ] && [ -n "$2" ] &&
    awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; exit !(d <= 5e-5 && d >= -5e-5) }'; }
if [ $rc -eq 0 ] && eval_loss_is "$vl" "$el" &&
   [[ "$err" == *"forget_bias 1 needs an LSTM"* ]]; then
    pass "--residual --layer-norm --init xavier-orthogonal --forget-bias 1: val_loss $vl, eval of the checkpoint $el; GRU refused"
else
    fail "rnn options (rc $rc): val_loss '$vl', eval '$el': $out $err"
fi
# the layer-norm LSTM, likewise (and refused for a GRU)
out=$("$BIN" train "${FLAGS[@]}" --cell lstm --ln-gates --bidirectional --steps 20 --eval-every 0 \
      --checkpoint "$TMP/lng.st" 2>&1)
rc=$?
vl=$(echo "$out" | grep '^final step' | sed -n 's/.* val_loss \([0-9.]*\).*/\1/p')
el=$("$BIN" eval --checkpoint "$TMP/lng.st" --split val 2>/dev/null | awk '$1 == "loss" { print $2 }')
err=$("$BIN" train "${FLAGS[@]}" --cell gru --ln-gates --steps 1 2>&1)
if [ $rc -eq 0 ] && eval_loss_is "$vl" "$el" && [[ "$err" == *"needs the LSTM cell"* ]]; then
    pass "--ln-gates: val_loss $vl, eval of the checkpoint $el; GRU refused"
else
    fail "--ln-gates (rc $rc): val_loss '$vl', eval '$el': $out $err"
fi

# 5. the surnames of DATA_DIR/names
if [ -n "$DATA" ]; then
    out=$("$BIN" train --data "$DATA/names" --hidden 64 --embed 32 --batch 64 --threads 2 \
          --steps 200 --eval-every 0 2>&1)
    final=$(echo "$out" | grep '^final step')
    acc=$(echo "$final" | sed -n 's/.* val_accuracy \([0-9.]*\).*/\1/p')
    bal=$(echo "$final" | sed -n 's/.* val_balanced_accuracy \([0-9.]*\).*/\1/p')
    if [ -n "$bal" ] && [[ "$out" == *"18 classes"* ]] &&
       awk -v b="$bal" 'BEGIN { exit !(b >= 0.20) }'; then
        pass "names, 200 steps: balanced accuracy $bal >= 0.20 (constant: 1/18), accuracy $acc"
    else
        fail "names, 200 steps: $out"
    fi
    out=$("$BIN" train --data "$DATA/names" --hidden 64 --embed 32 --batch 64 --threads 2 \
          --steps 200 --eval-every 0 --balance none 2>&1)
    final=$(echo "$out" | grep '^final step')
    acc0=$(echo "$final" | sed -n 's/.* val_accuracy \([0-9.]*\).*/\1/p')
    bal0=$(echo "$final" | sed -n 's/.* val_balanced_accuracy \([0-9.]*\).*/\1/p')
    if [ -n "$bal" ] && [ -n "$bal0" ] &&
       awk -v a="$acc" -v b="$bal" -v a0="$acc0" -v b0="$bal0" \
           'BEGIN { exit !(b >= b0 + 0.05 && a0 >= a + 0.10) }'; then
        pass "names: class weights give balanced accuracy $bal (none: $bal0), accuracy $acc (none: $acc0)"
    else
        fail "names: class weights: balanced accuracy '$bal' vs '$bal0' without, accuracy '$acc' vs '$acc0': $out"
    fi
else
    echo "skip - names: no DATA_DIR given"
fi

checks_end
