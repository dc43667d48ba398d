#!/usr/bin/env bash
# examples/gradient_flow (usage: test_gradient_flow.sh GRADIENT_FLOW):
#   1. over 30 steps: the CSV has a row per step and a column per model; the
#      LSTM's ratio ||dL/dh_1|| / ||dL/dh_T|| is at least 1000 times the
#      vanilla tanh RNN's (both with PyTorch's uniform W_hh; measured: about
#      5e4 times, 4.5e-4 against 8.9e-9 at seed 1: the tanh RNN loses about
#      half the norm per step, the LSTM's cell state with its forget gate
#      at sigmoid(1 + ...) about a quarter, so the gap grows geometrically
#      with T and 1000 leaves a margin of 50 at T = 30); the tanh RNN's
#      ratio is below 1e-5 (vanishing) and the x1.5 relu start's above 1
#      (exploding); the PNG has the size asked for (header bytes) when
#      gnuplot is installed;
#   2. over 100 steps, the exploding start trained 5 steps: it diverges
#      without clipping and not with it;
#   3. without gnuplot on PATH: the CSV, and a message saying how to plot;
#   4. refusals: a bad length, an output in a missing directory.
set -u
BIN=${1:?usage: test_gradient_flow.sh GRADIENT_FLOW}
source "$(dirname "$0")/checks.sh"
# ratio NAME: the first/last column of the model's row in the output $out
ratio() { echo "$out" | awk -v m="$1" '$0 ~ "^" m " +[0-9]" { print $NF }'; }

out=$("$BIN" --length 30 --steps 0 --threads 1 --csv "$TMP/g.csv" --png "$TMP/g.png" \
      --width 640 --height 400 2>&1)
rc=$?
echo "$out"
if [ $rc -eq 0 ] && [ "$(wc -l < "$TMP/g.csv")" -eq 31 ] &&
   [ "$(head -1 "$TMP/g.csv" | tr ',' '\n' | wc -l)" -eq 11 ]; then
    pass "CSV: 30 steps, t and 10 columns"
else
    fail "CSV (exit $rc)"
fi
tanh=$(ratio "rnn-tanh uniform")
lstm=$(ratio "lstm uniform")
boom=$(ratio "rnn-relu orthogonal x1.5")
if awk -v a="$lstm" -v b="$tanh" 'BEGIN { exit !(a != "" && b != "" && a + 0 >= 1000 * b) }'; then
    pass "LSTM's first/last ratio $lstm >= 1000 x tanh RNN's $tanh"
else
    fail "LSTM's first/last ratio '$lstm' not >= 1000 x tanh RNN's '$tanh'"
fi
if awk -v a="$tanh" -v b="$boom" 'BEGIN { exit !(a != "" && a + 0 < 1e-5 && b + 0 > 1) }'; then
    pass "tanh RNN's ratio $tanh < 1e-5 (vanishing), x1.5 relu's $boom > 1 (exploding)"
else
    fail "tanh RNN's ratio '$tanh', x1.5 relu's '$boom'"
fi
if command -v gnuplot > /dev/null; then
    size=$(od -An -tu1 -j12 -N12 "$TMP/g.png" 2>/dev/null |
           awk '{ printf "%c%c%c%c %d %d", $1, $2, $3, $4,
                  (($5 * 256 + $6) * 256 + $7) * 256 + $8, (($9 * 256 + $10) * 256 + $11) * 256 + $12 }')
    [ "$size" = "IHDR 640 400" ] && pass "PNG 640 x 400" || fail "PNG: '$size', expected 'IHDR 640 400'"
    # gnuplot runs without a shell and the script quotes the paths: any
    # file name works (a quote, a double quote, a space, a dollar sign)
    odd="$TMP/it's a \"plot\" \$HOME"
    mkdir "$odd"
    "$BIN" --length 10 --steps 0 --threads 1 --csv "$odd/g.csv" --png "$odd/g.png" > /dev/null 2>&1
    [ -s "$odd/g.png" ] && pass "a PNG under a path with quotes, spaces and \$" ||
        fail "no PNG under $odd"
else
    echo "skip - PNG size: gnuplot is not installed"
fi

out=$("$BIN" --steps 5 --threads 1 --csv "$TMP/h.csv" --png "$TMP/h.png" 2>&1)
if [[ "$out" == *"without clipping: diverged"*"with clipping: trained to the end"* ]]; then
    pass "the x1.5 relu start over 100 steps diverges without clipping, not with it"
else
    fail "clipping: $out"
fi

mkdir "$TMP/bin"
out=$(PATH="$TMP/bin" "$BIN" --length 10 --steps 0 --threads 1 --csv "$TMP/n.csv" \
      --png "$TMP/n.png" 2>&1)
if [ $? -eq 0 ] && [ -s "$TMP/n.csv" ] && [ ! -e "$TMP/n.png" ] && [ -s "$TMP/n.png.gp" ] &&
   [[ "$out" == *"gnuplot $TMP/n.png.gp"* ]]; then
    pass "without gnuplot: the CSV and how to plot it"
else
    fail "without gnuplot: $out"
fi

for args in "--length 1" "--csv $TMP/missing/g.csv" "--png $TMP/missing/g.png" "--gain 0"; do
    # shellcheck disable=SC2086
    err=$("$BIN" $args --steps 0 2>&1 > /dev/null)
    rc=$?
    [ $rc -ne 0 ] && [ -n "$err" ] && pass "refused $args: $err" || fail "not refused: $args"
done

checks_end
