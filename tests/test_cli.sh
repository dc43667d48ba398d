#!/bin/bash
# The programs' command lines (examples/common/cli.c; registered in
# tests/CMakeLists.txt):
#
#   bash test_cli.sh VERSION CHAR_RNN TENSOR_INFO [RNN_BENCH]
#
# 1. every bad option value is refused with exit status 2, a one-line message
#    that names the option and what is allowed, and no work done;
# 2. unusable paths (checkpoint directory, log file, --resume checkpoint,
#    data that is a directory, missing or not UTF-8) are refused before
#    training starts, also for the 1000-step run of docs/programs/char_rnn.md;
# 3. --encoding latin-1 reads Latin-1; --temperature 0 samples greedily;
# 4. -h/--help prints every option with its default to stdout, exit 0,
#    and the exit status section; --version prints VERSION, for every
#    program;
# 5. the short aliases (-s -t -c for --steps --threads --checkpoint) train
#    the same model as the long names; -- ends the options, and an argument
#    after it is refused (exit 2);
# 6. train --plot FILE.png writes the learning curve's rows to FILE.png.csv
#    (one per evaluation) and, with gnuplot, the PNG.
set -u
VERSION=${1:?usage: test_cli.sh VERSION CHAR_RNN TENSOR_INFO [RNN_BENCH]}
BIN=${2:?usage}
INFO=${3:?usage}
BENCH=${4:-}
export LC_ALL=C.UTF-8 TN_NUM_THREADS=1
source "$(dirname "$0")/checks.sh"
trap 'chmod -R u+w "$TMP"; rm -rf "$TMP"' EXIT

# refused WANT_IN_MESSAGE... -- COMMAND...: the command exits 2 at once with
# one line on stderr containing every WANT, nothing on stdout, and (for
# train) without reading data or building a model.
refused() {
    local want=()
    while [ "$1" != "--" ]; do want+=("$1"); shift; done
    shift
    "$@" > "$TMP/out" 2> "$TMP/err"
    local rc=$? err lines
    err=$(cat "$TMP/err")
    lines=$(wc -l < "$TMP/err")
    local ok=1
    [ $rc -eq 2 ] && [ "$lines" -eq 1 ] && [ ! -s "$TMP/out" ] || ok=0
    for w in "${want[@]}"; do [[ "$err" == *"$w"* ]] || ok=0; done
    if [ $ok -eq 1 ]; then
        pass "refused: ${*:2}: $err"
    else
        fail "not refused as wanted (exit 2, one line with: ${want[*]}): ${*:2}: exit $rc, stderr '$err', stdout '$(head -c 200 "$TMP/out")'"
    fi
}

# ---- 1. option values ----
# option, bad value, what the message must say
while read -r opt val why; do
    [ -z "$opt" ] && continue
    [ "$val" = "''" ] && val=""
    refused "$opt" "'$val'" "$why" "allowed:" -- "$BIN" train "$opt" "$val" --steps 1
done <<'EOF'
--hidden 16abc not a whole number
--hidden 1.5 not a whole number
--hidden '' not a whole number
--hidden 0x10 not a whole number
--hidden 0 out of range
--hidden 16385 out of range
--hidden 99999999999999999999 out of range
--layers 0 out of range
--layers 9 out of range
--embed -1 out of range
--batch 0 out of range
--seq 0 out of range
--steps -1 out of range
--save-every -1 out of range
--eval-every -1 out of range
--eval-chars -5 out of range
--eval-chars 1 out of range
--threads -3 out of range
--threads 0 out of range
--threads 3000000000 out of range
--threads 2x not a whole number
--seed -1 out of range
--seed 18446744073709551616 out of range
--seed 12x not a whole number
--lr 0 out of range
--lr -0.1 out of range
--lr 11 out of range
--lr nan not a number
--lr inf out of range
--lr 1e999 out of range
--lr 0.1x not a number
--clip -1 out of range
--dropout 1 out of range
--dropout -0.1 out of range
--cell foo not a choice
--cell LSTM not a choice
--encoding utf8 not a choice
EOF
while read -r opt val why; do
    refused "$opt" "'$val'" "$why" "allowed:" -- "$BIN" sample --checkpoint "$TMP/none.st" "$opt" "$val"
done <<'EOF'
--length -1 out of range
--length 5k not a whole number
--temperature -0.5 out of range
--temperature nan not a number
--temperature 101 out of range
--top-k -1 out of range
--top-k x not a whole number
EOF
refused "--hidden needs a value (an integer from 1 to 16384)" -- "$BIN" train --hidden
refused "--hidden needs a value (an integer" -- "$BIN" train --hidden --layers 2
refused "--checkpoint needs a value (PATH)" -- "$BIN" train --checkpoint --steps 5
refused "unknown option '--hiden'" "char_rnn train --help" -- "$BIN" train --hiden 5
refused "unknown argument 'extra'" -- "$BIN" train extra
refused "--hidden is not an option of 'sample'" -- "$BIN" sample --hidden 5
refused "--data is not an option of 'sample'" -- "$BIN" sample --checkpoint x --data x
refused "--resume takes no value" -- "$BIN" train --resume=yes
refused "unknown command 'trian'" "train, sample, eval" -- "$BIN" trian
refused "no command given" -- "$BIN"
refused "--threads '0' is out of range" -- "$INFO" --threads 0
refused "unknown option '--gem'" -- "$INFO" --gem
if [ -n "$BENCH" ]; then
    refused "--seconds '-1' is out of range" "allowed:" -- "$BENCH" --seconds -1
    refused "--config 'lstm-x' is not a choice" -- "$BENCH" --config lstm-x
fi
# --name=value is the same as --name value
refused "--hidden '16abc' is not a whole number" -- "$BIN" train --hidden=16abc

# ---- 2. paths, before any work ----
mkdir -p "$TMP/dir"
echo "plain file" > "$TMP/file"
# The 1000-step run of docs/programs/char_rnn.md with paths it cannot use: refused before the
# data is read or the model built (one line on stderr, checked by refused).
README_RUN=(train --steps 1000)
refused "--checkpoint $TMP/missing/ck.st" "directory $TMP/missing" "No such file" -- \
    "$BIN" "${README_RUN[@]}" --checkpoint "$TMP/missing/ck.st"
refused "--checkpoint $TMP/dir: is a directory" -- "$BIN" "${README_RUN[@]}" --checkpoint "$TMP/dir"
refused "--checkpoint $TMP/file/ck.st" "is not a directory" -- \
    "$BIN" "${README_RUN[@]}" --checkpoint "$TMP/file/ck.st"
refused "--log $TMP/missing/curve.csv" "No such file" -- \
    "$BIN" "${README_RUN[@]}" --log "$TMP/missing/curve.csv"
refused "--log $TMP/dir: is a directory" -- "$BIN" "${README_RUN[@]}" --log "$TMP/dir"
refused "--resume needs --checkpoint" -- "$BIN" "${README_RUN[@]}" --resume
refused "--resume: checkpoint $TMP/none.st" "No such file" -- \
    "$BIN" "${README_RUN[@]}" --resume --checkpoint "$TMP/none.st"
refused "--prime: not valid UTF-8 at byte offset 2" -- \
    "$BIN" sample --checkpoint "$TMP/none.st" --prime $'ab\xe9cd'
# Permissions do not stop root, so this one runs only for other users.
if [ "$(id -u)" -ne 0 ]; then
    mkdir "$TMP/ro" && chmod 555 "$TMP/ro"
    refused "--checkpoint $TMP/ro/ck.st: cannot create files in $TMP/ro" -- \
        "$BIN" "${README_RUN[@]}" --checkpoint "$TMP/ro/ck.st"
else
    echo "skip - read-only checkpoint directory (running as root)"
fi
[ -z "$(ls -A "$TMP/dir")" ] || fail "a refused run left files behind: $(ls -A "$TMP/dir")"

# Data: refused with exit 1 after the checks above, naming the problem.
data_refused() {
    local want=$1; shift
    "$@" > "$TMP/out" 2> "$TMP/err"
    local rc=$? err
    err=$(cat "$TMP/err")
    if [ $rc -ne 0 ] && [ $rc -lt 128 ] && [[ "$err" == *"$want"* ]] && ! grep -q "params=" "$TMP/err"; then
        pass "refused: ${*:2}: exit $rc: $err"
    else
        fail "${*:2}: exit $rc, stderr '$err' (wanted '$want', before the model is built)"
    fi
}
data_refused "--data $TMP/dir: is a directory, not a file" "$BIN" train --data "$TMP/dir"
data_refused "--data $TMP/nope.txt: No such file" "$BIN" train --data "$TMP/nope.txt"
for i in $(seq 1 30); do printf 'Le café est très bon, dit-il %d fois.\n' "$i"; done > "$TMP/utf8.txt"
iconv -f UTF-8 -t LATIN1 "$TMP/utf8.txt" > "$TMP/latin1.txt"
# "Le caf" is 6 bytes: the Latin-1 e-acute is byte 6.
data_refused "--data $TMP/latin1.txt: not valid UTF-8 at byte offset 6 (byte 0xe9)" \
    "$BIN" train --data "$TMP/latin1.txt" --steps 1
for bad in $'\xc0\xaf' $'\xed\xa0\x80' $'\xf4\x90\x80\x80' $'ok\xe2\x82'; do
    printf '%s' "$bad" > "$TMP/bad.txt"
    off=$([[ "$bad" == ok* ]] && echo 2 || echo 0)
    data_refused "not valid UTF-8 at byte offset $off" "$BIN" train --data "$TMP/bad.txt"
done

# ---- 3. what the new options do ----
TINY=(--hidden 8 --layers 1 --embed 4 --batch 2 --seq 8 --steps 3 --eval-every 0)
if "$BIN" train --data "$TMP/latin1.txt" --encoding latin-1 "${TINY[@]}" \
       --checkpoint "$TMP/l1.st" > /dev/null 2> "$TMP/err" &&
   "$BIN" eval --data "$TMP/latin1.txt" --encoding latin-1 --checkpoint "$TMP/l1.st" > "$TMP/e1" &&
   "$BIN" eval --data "$TMP/utf8.txt" --checkpoint "$TMP/l1.st" > "$TMP/e2" &&
   grep -q '^loss' "$TMP/e1" && cmp -s "$TMP/e1" "$TMP/e2"; then
    pass "--encoding latin-1: trains, and evaluates like the same text in UTF-8: $(cat "$TMP/e1")"
else
    fail "--encoding latin-1: $(cat "$TMP/err" "$TMP/e1" "$TMP/e2" 2> /dev/null)"
fi
"$BIN" sample --checkpoint "$TMP/l1.st" --temperature 0 --length 40 --seed 1 > "$TMP/g1" 2>&1
r1=$?
"$BIN" sample --checkpoint "$TMP/l1.st" --temperature 0 --length 40 --seed 2 > "$TMP/g2" 2>&1
r2=$?
"$BIN" sample --checkpoint "$TMP/l1.st" --temperature 1 --length 40 --seed 1 > "$TMP/g3" 2>&1
"$BIN" sample --checkpoint "$TMP/l1.st" --temperature 1 --length 40 --seed 2 > "$TMP/g4" 2>&1
if [ $r1 -eq 0 ] && [ $r2 -eq 0 ] && cmp -s "$TMP/g1" "$TMP/g2" && ! cmp -s "$TMP/g3" "$TMP/g4"; then
    pass "--temperature 0 is greedy: the same text whatever the seed (temperature 1 differs)"
else
    fail "--temperature 0: rc $r1 $r2: '$(cat "$TMP/g1")' vs '$(cat "$TMP/g2")'"
fi
# A --log in a writable place is written (the check before training does
# not leave a probe file behind).
if "$BIN" train "${TINY[@]}" --eval-every 3 --log "$TMP/dir/curve.csv" \
       --checkpoint "$TMP/dir/ck.st" > /dev/null 2>&1 &&
   [ "$(head -1 "$TMP/dir/curve.csv")" = "step,train_loss,val_loss,val_ppl,elapsed_s,train_s" ] &&
   [ "$(ls -A "$TMP/dir" | sort | tr '\n' ' ')" = "ck.st curve.csv " ]; then
    pass "--log and --checkpoint written, nothing else left in their directory"
else
    fail "--log/--checkpoint run: $(ls -A "$TMP/dir")"
fi

# ---- 4. --help and --version ----
help_ok() { # PROGRAM_ARGS... : exit 0, stdout has every --option, stderr empty
    "$@" > "$TMP/out" 2> "$TMP/err"
    local rc=$? missing=""
    for o in $(grep -o -- '"--[a-z-]*"' "$SRC" | tr -d '"' | sort -u); do
        grep -qE -- "^  (-[a-z], )?$o" "$TMP/out" || missing="$missing $o"
    done
    if [ $rc -eq 0 ] && [ ! -s "$TMP/err" ] && [ -z "$missing" ] && grep -q "(default: " "$TMP/out"; then
        pass "$*: every option of $(basename "$SRC") with its default, exit 0"
    else
        fail "$*: exit $rc, missing:$missing, stderr '$(cat "$TMP/err")'"
    fi
}
HERE=$(cd "$(dirname "$0")/.." && pwd)
SRC=$HERE/examples/apps/char_rnn.c help_ok "$BIN" --help
SRC=$HERE/examples/apps/char_rnn.c help_ok "$BIN" -h
SRC=$HERE/examples/tools/tensor_info.c help_ok "$INFO" --help
[ -n "$BENCH" ] && SRC=$HERE/bench/rnn_bench.c help_ok "$BENCH" --help
if "$BIN" train --help | grep -q -- "--hidden H .*(default: 256; an integer from 1 to 16384)" &&
   ! "$BIN" train --help | grep -q -- "^  --top-k"; then
    pass "char_rnn train --help: train's options only, with defaults and ranges"
else
    fail "char_rnn train --help: $("$BIN" train --help)"
fi
for prog in "$BIN" "$INFO" $BENCH; do
    out=$("$prog" --version 2>&1)
    rc=$?
    if [ $rc -eq 0 ] && [ "$out" = "$(basename "$prog") $VERSION (libtensor $VERSION)" ]; then
        pass "$(basename "$prog") --version: $out"
    else
        fail "$(basename "$prog") --version: exit $rc: '$out' (want version $VERSION)"
    fi
done

for prog in "$BIN" "$INFO" $BENCH "$(dirname "$BIN")"/{word_lm,translate,classify,tagger,forecast,caption}; do
    if "$prog" --help | grep -q "^Exit status:" && "$prog" --help | grep -q "^  2  bad arguments"; then
        pass "$(basename "$prog") --help: exit status section"
    else
        fail "$(basename "$prog") --help: no exit status section"
    fi
done

# 5. short aliases and --
"$BIN" train --steps 3 --threads 1 --checkpoint "$TMP/long.st" > /dev/null 2>&1
"$BIN" train -s 3 -t 1 -c "$TMP/short.st" -- > /dev/null 2>&1
if [ -s "$TMP/long.st" ] && cmp -s "$TMP/long.st" "$TMP/short.st"; then
    pass "-s 3 -t 1 -c PATH --: the same checkpoint as --steps 3 --threads 1 --checkpoint PATH"
else
    fail "short aliases: checkpoints differ or missing"
fi
refused "unexpected argument 'extra' after --" -- "$BIN" train --steps 1 -- extra

# 6. the learning curve
rm -f "$TMP/curve.png" "$TMP/curve.png.csv"
"$BIN" train --steps 4 --eval-every 2 --threads 1 --plot "$TMP/curve.png" > /dev/null 2>&1
rows=$(wc -l < "$TMP/curve.png.csv" 2>/dev/null || echo 0)
if [ "$rows" -eq 3 ] && head -1 "$TMP/curve.png.csv" | grep -q '^step,train_loss,val_loss' &&
   { ! command -v gnuplot > /dev/null || [ -s "$TMP/curve.png" ]; }; then
    pass "train --plot: $rows lines of curve rows$(command -v gnuplot > /dev/null && echo ' and the PNG')"
else
    fail "train --plot: $rows lines in curve.png.csv: $(cat "$TMP/curve.png.csv" 2>&1)"
fi

checks_end
