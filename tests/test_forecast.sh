#!/usr/bin/env bash
# examples/forecast end to end (usage: test_forecast.sh FORECAST):
#   1. train briefly (300 steps, GRU H=32, one thread, under a second) on
#      the generated series (two sines, a trend, noise), its --log and
#      --loss-log a row per evaluation and per step: the RNN's held-out
#      MSE (mean over the 12 forecast steps) must be below half the naive
#      last-value forecast's. Over seeds 1..8 it was 0.09 to 0.14 of it
#      (naive about 1.16, RNN 0.10 to 0.16), so 0.5 is not flaky; an RNN
#      that has learnt nothing predicts the mean (MSE about 0.8) or worse;
#   2. the AR(p) baseline on series whose answer is known exactly: an exact
#      AR(2) recurrence without noise, x_t = 2cos(2pi/17) x_{t-1} - x_{t-2}
#      (a sine), given as --data with a header: the fitted coefficients
#      must be the recurrence's to 1e-6 and the intercept 0 to 1e-6; the
#      same values as column 2 of a two-column CSV (--column 2);
#   3. eval: a table of 12 steps and the mean, whose RNN MSE is train's
#      val_mse (same origins, same model); --plot writes the CSV (truth,
#      rnn, last value, ar) and a 1100x500 PNG when gnuplot exists;
#   4. predict: the checkpoint's 12 values after the end of the series
#      (t = 3000..3011), --horizon 30 rolls out 30 (mode ar), and a direct
#      model refuses another horizon;
#   5. refusals: bad option values (exit 2), a missing or unwritable path,
#      --data that is missing, has a word among its numbers, is too short,
#      lacks the column, is constant or overflows the statistics (exit 1); checkpoints that are not
#      forecast checkpoints, whose metadata sizes their tensors do not have
#      (refused before the model is built), with a zero std, or with a NaN
#      in the head (eval and predict print nothing and exit 1).
set -u
BIN=$1
source "$(dirname "$0")/checks.sh"
FLAGS=(--threads 1)

# 1. training on the generated series
out=$("$BIN" train "${FLAGS[@]}" --steps 300 --eval-every 100 --checkpoint "$TMP/g.st" \
      --log "$TMP/g.csv" --loss-log "$TMP/gl.csv" 2>&1)
rc=$?
final=$(echo "$out" | grep '^final step')
val=$(echo "$final" | sed -n 's/.* val_mse \([0-9.]*\).*/\1/p')
naive=$(echo "$final" | sed -n 's/.* naive_mse \([0-9.]*\).*/\1/p')
ar=$(echo "$final" | sed -n 's/.* ar_mse \([0-9.]*\).*/\1/p')
if [ $rc -eq 0 ] && [ -n "$val" ] && [ -n "$naive" ] &&
   awk -v v="$val" -v n="$naive" 'BEGIN { exit !(v < 0.5 * n) }' &&
   [ "$(echo "$out" | grep -c '^step [0-9]* train_loss')" -eq 3 ]; then
    pass "train on the generated series: held-out MSE $val < 0.5 x naive $naive (ar(16) $ar); 3 evaluations"
else
    fail "train on the generated series (rc $rc): $out"
fi

# 2. AR(2) exactly
awk 'BEGIN { a1 = 2 * cos(2 * 3.14159265358979 / 17); x2 = 0.3; x1 = 1.1
             print "value"; print x2; print x1
             for (t = 2; t < 600; t++) { x = a1 * x1 - x2; printf "%.17g\n", x; x2 = x1; x1 = x }
             printf "%.17g\n", a1 > "'"$TMP/a1"'" }' > "$TMP/ar2.csv"
a1=$(cat "$TMP/a1")
awk 'NR == 1 { print "t,value"; next } { print NR - 2 "," $0 }' "$TMP/ar2.csv" > "$TMP/ar2c.csv"
for args in "--data $TMP/ar2.csv" "--data $TMP/ar2c.csv --column 2"; do
    fit=$("$BIN" train "${FLAGS[@]}" $args --ar 2 --steps 0 2>&1 | grep '^ar(2) fit')
    if [ -n "$fit" ] && echo "$fit" | awk -v a1="$a1" '{
           c = $8; x = $10; y = $11
           d1 = x - a1; d2 = y + 1
           if (c < 0) c = -c; if (d1 < 0) d1 = -d1; if (d2 < 0) d2 = -d2
           exit !(NF == 11 && c < 1e-6 && d1 < 1e-6 && d2 < 1e-6) }'; then
        pass "AR(2) fitted exactly (${args#--data $TMP/}): a = $a1 -1: $fit"
    else
        fail "AR(2) fit (${args#--data $TMP/}), want $a1 -1 and intercept 0: '$fit'"
    fi
done
# the recurrence is the data's only structure: its AR(2) forecast is exact
fc=$("$BIN" train "${FLAGS[@]}" --data "$TMP/ar2.csv" --ar 2 --steps 0 2>&1 | grep '^final')
[[ "$fc" == *"ar_mse 0.00000 "* ]] && pass "AR(2) forecast of the recurrence: $fc" ||
    fail "AR(2) forecast of the recurrence not exact: $fc"

# the logs of that run: a row per evaluation (3) and per step (300)
if [ "$(head -1 "$TMP/g.csv")" = "step,train_loss,val_mse,naive_mse,ar_mse,elapsed_s,train_s" ] &&
   [ "$(wc -l < "$TMP/g.csv")" -eq 4 ] && [ "$(head -1 "$TMP/gl.csv")" = "step,loss" ] &&
   [ "$(wc -l < "$TMP/gl.csv")" -eq 301 ]; then
    pass "--log: 3 evaluations, --loss-log: 300 steps"
else
    fail "--log / --loss-log: $(cat "$TMP/g.csv") / $(head -3 "$TMP/gl.csv")"
fi

# 3. eval and its plot
ev=$("$BIN" eval "${FLAGS[@]}" --checkpoint "$TMP/g.st" --plot "$TMP/fc.png")
rc=$?
steps=$(echo "$ev" | awk '$1 ~ /^[0-9]+$/ && NF == 7 { n++ } END { print n + 0 }')
mean=$(echo "$ev" | awk '$1 == "mean" { print $2 }')
if [ $rc -eq 0 ] && [ "$steps" -eq 12 ] && [ "$mean" = "$val" ] &&
   [ "$(head -1 "$TMP/fc.png.csv")" = "t,truth,rnn (rollout),last value,ar(16)" ] &&
   [ "$(grep -c , "$TMP/fc.png.csv")" -eq $((1 + 8 * 13)) ]; then
    pass "eval: 12 steps and the mean, RNN MSE $mean as train's; plot CSV of 8 forecasts"
else
    fail "eval (rc $rc, $steps steps, mean '$mean', train '$val'): $ev"
fi
if command -v gnuplot > /dev/null && gnuplot -e 'set terminal pngcairo' > /dev/null 2>&1; then
    size=$(od -An -tu1 -j16 -N8 "$TMP/fc.png" 2>/dev/null |
           awk '{ print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4 "x" $5 * 16777216 + $6 * 65536 + $7 * 256 + $8 }')
    [ "$size" = "1100x500" ] && pass "--plot: PNG of 1100x500" || fail "--plot: PNG of '$size'"
else
    echo "skip - --plot PNG: no gnuplot with pngcairo (the CSV was checked)"
fi

# 4. predict
pr=$("$BIN" predict "${FLAGS[@]}" --checkpoint "$TMP/g.st")
rc=$?
if [ $rc -eq 0 ] && [ "$(echo "$pr" | sed -n 2p)" = "t,rnn,last_value,ar16" ] &&
   echo "$pr" | awk -F, 'NR > 2 { if ($1 != 2997 + NR || $2 != $2 + 0 || $2 > 10 || $2 < -10) exit 1; n++ }
                         END { exit !(n == 12) }'; then
    pass "predict: t = 3000..3011, $(echo "$pr" | sed -n 3p)"
else
    fail "predict (rc $rc): $pr"
fi
n30=$("$BIN" predict "${FLAGS[@]}" --checkpoint "$TMP/g.st" --horizon 30 | tail -n +3 | wc -l)
[ "$n30" -eq 30 ] && pass "predict --horizon 30: 30 values rolled out" || fail "predict --horizon 30: $n30 lines"
"$BIN" train "${FLAGS[@]}" --mode direct --steps 20 --checkpoint "$TMP/d.st" > /dev/null 2>&1 ||
    fail "train --mode direct"

# --help names every option, --version the program
help=$("$BIN" --help)
miss=""
for o in --data --column --length --cell --mode --hidden --layers --window --horizon --periods \
         --batch --steps --lr --clip --val-fraction --ar --seed --threads --checkpoint \
         --eval-every --plot --plot-length; do
    [[ "$help" == *"$o "* ]] || miss="$miss $o"
done
[ -z "$miss" ] && [[ "$("$BIN" --version)" == forecast* ]] && pass "--help lists every option; --version" ||
    fail "--help lacks:$miss; --version '$("$BIN" --version 2>&1)'"

# 5. refusals
refuse() { # what want-rc want-in-message command...
    local what=$1 want_rc=$2 want=$3
    shift 3
    msg=$("$@" 2>&1 < /dev/null)
    local rc=$?
    if [ $rc -eq "$want_rc" ] && [[ "$msg" == *"$want"* ]]; then
        pass "refused ($rc): $what"
    else
        fail "$what: rc $rc (want $want_rc), message '$msg' lacks '$want'"
    fi
}
refuse "predict --horizon 30 of a direct model" 2 "mode direct" \
    "$BIN" predict --checkpoint "$TMP/d.st" --horizon 30
refuse "--cell rnn" 2 "gru|lstm" "$BIN" train --cell rnn
refuse "--window 0" 2 "--window" "$BIN" train --window 0
refuse "--periods 24,x" 2 "--periods" "$BIN" train --periods 24,x --steps 1
refuse "--periods of 5" 2 "at most 4" "$BIN" train --periods 1,2,3,4,5 --steps 1
refuse "--val-fraction 0.95" 2 "--val-fraction" "$BIN" train --val-fraction 0.95
refuse "--mode for eval" 2 "--mode" "$BIN" eval --checkpoint "$TMP/g.st" --mode ar
refuse "eval without --checkpoint" 2 "needs --checkpoint" "$BIN" eval
refuse "--checkpoint in a missing directory" 2 "--checkpoint" \
    "$BIN" train --steps 1 --checkpoint "$TMP/no/such/x.st"
for opt in --log --loss-log; do
    refuse "$opt in a missing directory" 2 "$opt" "$BIN" train --steps 1 $opt "$TMP/no/such/x.csv"
done
refuse "--plot in a missing directory" 2 "--plot" \
    "$BIN" eval --checkpoint "$TMP/g.st" --plot "$TMP/no/such/x.png"
printf '1\n2\nthree\n4\n' > "$TMP/word.csv"
seq 1 20 > "$TMP/short.csv"
for i in $(seq 300); do echo 5; done > "$TMP/flat.csv"
refuse "missing --data" 1 "No such file or directory" "$BIN" train --data "$TMP/none.csv"
refuse "a word among the numbers" 1 "line 3, column 1: 'three' is not a finite number" \
    "$BIN" train --data "$TMP/word.csv"
refuse "too short a series" 1 "20 values: too few" "$BIN" train --data "$TMP/short.csv"
refuse "--column 3 of two columns" 1 "line 1 has no column 3" \
    "$BIN" train --data "$TMP/ar2c.csv" --column 3
refuse "a constant series" 1 "is constant" "$BIN" train --data "$TMP/flat.csv"
{ echo 1e308; echo -1.7e308; seq 300; } > "$TMP/huge.csv"
refuse "values whose spread overflows" 1 "not a finite number (values too large)" \
    "$BIN" train --data "$TMP/huge.csv"
echo "not a checkpoint" > "$TMP/bad.st"
refuse "a missing checkpoint" 1 "--checkpoint $TMP/none.st" "$BIN" eval --checkpoint "$TMP/none.st"
refuse "a file that is not a checkpoint" 1 "$TMP/bad.st" "$BIN" predict --checkpoint "$TMP/bad.st"
cp "$TMP/g.st" "$TMP/std.st" && set_meta "$TMP/std.st" std 0
refuse "a zero std" 1 "not a forecast checkpoint" "$BIN" eval --checkpoint "$TMP/std.st"
# sizes the file's tensors do not have, refused before the model is built
for kv in "hidden 64" "layers 2" "periods 24" "cell lstm"; do
    refuse_meta "$TMP/g.st" $kv "$BIN" eval --checkpoint "$TMP/crafted.st"
done
refuse_meta "$TMP/d.st" horizon 24 "$BIN" predict --checkpoint "$TMP/crafted.st"
# a NaN in the head's bias: nothing printed, exit 1
refuse_nan "$TMP/g.st" 'head\.bias' 0 "$BIN" predict --checkpoint "$TMP/nan.st"
refuse_nan "$TMP/g.st" 'head\.bias' 0 "$BIN" eval --checkpoint "$TMP/nan.st"

checks_end
