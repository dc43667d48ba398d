#!/usr/bin/env bash
# examples/hidden_states (usage: test_hidden_states.sh HIDDEN_STATES CHAR_RNN):
#   1. on an LSTM char_rnn trained 60 steps on a small text with quotes,
#      parentheses, '<' and '&': the ranking names every feature, its units
#      sorted by |r| (each r in [-1, 1]); the HTML page is a whole document
#      with one coloured span per character and unit, holds the text with
#      <, &, " escaped and nothing unescaped;
#   2. --units picks the units shown;
#   3. without --text: char_rnn's generated text, on a model trained on it;
#   4. refusals (non-zero exit, a message): a missing checkpoint, a unit out
#      of range or malformed, a cell state of a GRU, a character outside the
#      vocabulary, --text a directory, --out in a missing directory;
#   5. a model with a NaN in its recurrent weights: refused naming the
#      checkpoint and the non-finite activation, no page written.
set -u
BIN=${1:?usage: test_hidden_states.sh HIDDEN_STATES CHAR_RNN}
CHAR_RNN=${2:?usage: test_hidden_states.sh HIDDEN_STATES CHAR_RNN}
source "$(dirname "$0")/checks.sh"
export TN_NUM_THREADS=1
for i in $(seq 1 150); do
    echo 'She said "a < b & c" (twice) to him.'
    echo 'He wrote (in the margin) that "x & y" was true.'
    echo 'No quotes here, only words.'
done > "$TMP/train.txt"
SMALL=(--hidden 32 --embed 16 --batch 8 --seq 32 --threads 1 --eval-every 1000)
"$CHAR_RNN" train --data "$TMP/train.txt" "${SMALL[@]}" --steps 60 --checkpoint "$TMP/lstm.st" \
    > /dev/null 2>&1 || fail "char_rnn train (lstm)"

out=$("$BIN" --checkpoint "$TMP/lstm.st" --text "$TMP/train.txt" --chars 600 --out "$TMP/p.html" 2>&1)
rc=$?
echo "$out"
ranked=$(echo "$out" | awk '
    $1 ~ /^(in_quotes|in_parens|line_pos|newline|word_pos|uppercase)$/ && NF == 11 {
        prev = 2
        for (i = 3; i <= NF; i += 2) {
            r = $i + 0; a = r < 0 ? -r : r
            if (a > 1 || a > prev || $(i - 1) !~ /^[hc][0-9]+$/) bad = 1
            prev = a
        }
        n++
    }
    END { print (bad ? "unsorted" : n + 0) }')
[ $rc -eq 0 ] && [ "$ranked" = 6 ] && pass "ranking: 6 features, 5 units each by |r|" ||
    fail "ranking (exit $rc, $ranked)"
html="$TMP/p.html"
units=$(grep -c '^<h2>[hc][0-9]*</h2>$' "$html")
spans=$(grep -o '<span' "$html" | wc -l)
ends=$(grep -o '</span>' "$html" | wc -l)
text=$(sed 's/<[^>]*>//g' "$html")
if [ "$(head -1 "$html")" = "<!DOCTYPE html>" ] && [ "$(tail -1 "$html")" = "</html>" ] &&
   [ "$units" -ge 1 ] && [ "$spans" -eq $((600 * units)) ] && [ "$ends" -eq "$spans" ]; then
    pass "HTML: a whole page, $units units x 600 characters in spans"
else
    fail "HTML: $units units, $spans spans, $ends ends"
fi
if [[ "$text" == *'She said &quot;a &lt; b &amp; c&quot; (twice) to him.'* ]] &&
   ! grep -q -e '< b' -e ' & [cy]' -e '"a ' "$html" && ! grep -q -i -e '<script' -e 'http' "$html"; then
    pass "HTML: the text, with <, & and \" escaped; no script, no external resource"
else
    fail "HTML: text or escaping"
fi

"$BIN" --checkpoint "$TMP/lstm.st" --text "$TMP/train.txt" --chars 100 --units h0,c31 \
    --out "$TMP/u.html" > /dev/null 2>&1
[ "$(grep '^<h2>[hc][0-9]*</h2>$' "$TMP/u.html" | tr '\n' ' ')" = "<h2>h0</h2> <h2>c31</h2> " ] &&
    pass "--units h0,c31: those two" || fail "--units h0,c31"

"$CHAR_RNN" train --cell gru "${SMALL[@]}" --layers 1 --steps 5 --checkpoint "$TMP/gru.st" \
    > /dev/null 2>&1 || fail "char_rnn train (gru, generated text)"
out=$("$BIN" --checkpoint "$TMP/gru.st" --chars 300 --out "$TMP/g.html" 2>&1)
[ $? -eq 0 ] && [[ "$out" == *"gru, 1 layer of 32 units"*"over 300 characters"* ]] && [ -s "$TMP/g.html" ] &&
    pass "without --text: the generated text (GRU)" || fail "without --text: $out"

printf 'Zebra\n' > "$TMP/z.txt"
refuse() { # refuse WHAT ARGS...: exits non-zero with a message
    local what=$1; shift
    err=$("$BIN" "$@" 2>&1 > /dev/null)
    [ $? -ne 0 ] && [ -n "$err" ] && pass "refused $what: $err" || fail "not refused: $what"
}
refuse "a missing checkpoint" --checkpoint "$TMP/none.st" --text "$TMP/train.txt" --out "$TMP/x.html"
refuse "unit h32 of 32" --checkpoint "$TMP/lstm.st" --text "$TMP/train.txt" --units h32 --out "$TMP/x.html"
refuse "unit 'x1'" --checkpoint "$TMP/lstm.st" --text "$TMP/train.txt" --units x1 --out "$TMP/x.html"
refuse "a GRU's c0" --checkpoint "$TMP/gru.st" --units c0 --out "$TMP/x.html"
refuse "a character outside the vocabulary" --checkpoint "$TMP/lstm.st" --text "$TMP/z.txt" --out "$TMP/x.html"
refuse "--text a directory" --checkpoint "$TMP/lstm.st" --text "$TMP" --out "$TMP/x.html"
refuse "--out in a missing directory" --checkpoint "$TMP/lstm.st" --out "$TMP/no/x.html"
refuse "no --out" --checkpoint "$TMP/lstm.st"
[ ! -e "$TMP/x.html" ] && pass "no page written by a refused run" || fail "a refused run wrote a page"

# 5. a NaN in the first layer's input weights makes every activation NaN
# after a step or two (issue 19: the page was written with every r +0.000)
refuse_nan "$TMP/lstm.st" 'rnn\.weight_ih_l0' 0 "$BIN" --checkpoint "$TMP/nan.st" \
    --text "$TMP/train.txt" --chars 100 --out "$TMP/nan.html"
[ ! -e "$TMP/nan.html" ] && pass "NaN model: no page written" || fail "NaN model: a page written"

checks_end
