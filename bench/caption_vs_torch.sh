#!/usr/bin/env bash
# caption against its PyTorch reference (tests/torch_caption.py), one side
# after the other with the same thread count, seeds and steps; prints per
# seed and side the held-out greedy BLEU, the held-out loss and the wall
# time of a training step (train_ms_per_step, evaluations not counted),
# then per side the mean and standard deviation over the seeds. Time it on
# an idle machine; on a shared one, nice it:
#
#   nice -n 10 bench/caption_vs_torch.sh [--steps 1500] [--threads 1]
#       [--seeds "1234 1 2"] [--attention none|bahdanau|luong|general]
#       [--bin build/examples] [--python /usr/bin/python3]
#       [--dir /tmp/caption_vs_torch]
#
# Both sides train on the same scenes (`caption scenes --split train` and
# the held-out `caption scenes`, written to --dir once) with the same
# batches (the same generator and seed); only the initial weights differ
# (tests/torch_caption.py). For each seed the script also has PyTorch
# evaluate caption's final checkpoint (torch_caption.py --init CKPT
# --steps 0): the column "torch eval of caption" should equal caption's own
# loss and BLEU (the same loss, decoding and BLEU on both sides). The
# PyTorch side gets OMP_NUM_THREADS and BLIS_NUM_THREADS = --threads too,
# and our BLIS configuration (BLIS_ARCH_TYPE, unless set) and, on the AVX2
# path, ONEDNN_MAX_CPU_ISA=AVX2 for its convolutions.
# Every run's output goes to --dir (caption_SEED.txt, torch_SEED.txt).
set -eu
SRC=$(cd "$(dirname "$0")/.." && pwd)
BIN=$SRC/build/examples
PY=/usr/bin/python3
STEPS=1500
THREADS=1
SEEDS="1234 1 2"
ATTN=none
DIR=/tmp/caption_vs_torch
while [ $# -gt 0 ]; do
    if [ "$1" = -h ] || [ "$1" = --help ]; then
        sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
    fi
    [ $# -ge 2 ] || {
        echo "caption_vs_torch: $1 needs a value (--help)" >&2
        exit 2
    }
    case $1 in
    --steps) STEPS=$2 ;;
    --threads) THREADS=$2 ;;
    --seeds) SEEDS=$2 ;;
    --attention) ATTN=$2 ;;
    --bin) BIN=$2 ;;
    --python) PY=$2 ;;
    --dir) DIR=$2 ;;
    *)
        echo "caption_vs_torch: unknown option $1 (--help)" >&2
        exit 2
        ;;
    esac
    shift 2
done
[ -x "$BIN/caption" ] || {
    echo "caption_vs_torch: --bin $BIN: no caption program there (build first)" >&2
    exit 2
}
mkdir -p "$DIR" || exit 2
TORCH=1
if ! "$PY" -c "import torch" 2>/dev/null; then
    echo "caption_vs_torch: $PY cannot import torch: caption alone" >&2
    TORCH=0
fi
[ -s "$DIR/train.st" ] || "$BIN/caption" scenes --split train --out "$DIR/train.st" --threads 1 >&2
[ -s "$DIR/val.st" ] || "$BIN/caption" scenes --out "$DIR/val.st" --threads 1 >&2

# field NAME: the value after NAME on the "final" line of stdin
field() { awk -v k="$1" '$1 == "final" { for (i = 1; i < NF; i++) if ($i == k) print $(i + 1) }'; }
export OMP_NUM_THREADS=$THREADS BLIS_NUM_THREADS=$THREADS
# PyTorch's products go through Debian's BLIS too: the same configuration
# as ours (skx on the AVX-512 path, haswell with TN_ISA=avx2; left to BLIS,
# it picks haswell on some AVX-512 CPUs), unless the caller set one.
info=$("$BIN/tensor_info")
if [ -z "${BLIS_ARCH_TYPE:-}" ]; then
    arch=$(echo "$info" | sed -n 's/^blis config:.*BLIS_ARCH_TYPE=\([0-9]*\).*/\1/p')
    [ -z "$arch" ] || export BLIS_ARCH_TYPE=$arch
fi
# and its convolutions (oneDNN) no wider instructions than our path's
if [ -z "${ONEDNN_MAX_CPU_ISA:-}" ] && echo "$info" | grep -q '^isa avx2 '; then
    export ONEDNN_MAX_CPU_ISA=AVX2
fi
echo "| seed | side | val BLEU | val loss | train ms/step | torch eval of caption (loss, BLEU) |"
echo "|---:|---|---:|---:|---:|---|"
rows=""
for seed in $SEEDS; do
    out=$DIR/caption_$seed.txt
    "$BIN/caption" train --steps "$STEPS" --threads "$THREADS" --seed "$seed" --attention "$ATTN" \
        --checkpoint "$DIR/caption_$seed.st" >"$out" 2>&1 || {
        cat "$out" >&2
        exit 1
    }
    cb=$(field val_bleu <"$out") cl=$(field val_loss <"$out") cm=$(field train_ms_per_step <"$out")
    again="-"
    if [ $TORCH = 1 ]; then
        again=$("$PY" "$SRC/tests/torch_caption.py" --train-data "$DIR/train.st" \
            --val-data "$DIR/val.st" --init "$DIR/caption_$seed.st" --steps 0 --threads "$THREADS" \
            2>/dev/null | awk '{ for (i = 1; i < NF; i++) v[$i] = $(i + 1) }
                $1 == "final" { print v["val_loss"] ", " v["val_bleu"] }')
    fi
    echo "| $seed | caption | $cb | $cl | $cm | $again |"
    rows="$rows caption $cb $cl $cm"
    [ $TORCH = 1 ] || continue
    out=$DIR/torch_$seed.txt
    "$PY" "$SRC/tests/torch_caption.py" --train-data "$DIR/train.st" --val-data "$DIR/val.st" \
        --attention "$ATTN" --steps "$STEPS" --threads "$THREADS" --seed "$seed" >"$out" 2>&1 || {
        cat "$out" >&2
        exit 1
    }
    tb=$(field val_bleu <"$out") tl=$(field val_loss <"$out") tm=$(field train_ms_per_step <"$out")
    echo "| $seed | PyTorch | $tb | $tl | $tm | |"
    rows="$rows torch $tb $tl $tm"
done
# per side: mean +- sample standard deviation over the seeds
echo "$rows" | awk -v steps="$STEPS" -v threads="$THREADS" '
    function sd(s2, s1, k) { return k > 1 ? sqrt((s2 - s1 * s1 / k) / (k - 1)) : 0 }
    { for (i = 1; i <= NF; i += 4) {
        s = $i; n[s]++; b[s] += $(i + 1); l[s] += $(i + 2); m[s] += $(i + 3)
        b2[s] += $(i + 1) ^ 2; l2[s] += $(i + 2) ^ 2; m2[s] += $(i + 3) ^ 2 } }
    END { for (s in n) printf "%s: BLEU %.2f +- %.2f, val loss %.4f +- %.4f, train ms/step " \
          "%.1f +- %.1f (%d seeds, %d steps, %d threads)\n", s, b[s] / n[s], sd(b2[s], b[s], n[s]), l[s] / n[s], sd(l2[s], l[s], n[s]),
          m[s] / n[s], sd(m2[s], m[s], n[s]), n[s], steps, threads }'
