#!/usr/bin/python3
"""PyTorch reference of examples/apps/caption.c's training (run by hand; CI
does not need it): the same model, scenes, batches, loss, clipping, Adam
and evaluation as `caption train`, timed the same way.

    build/examples/caption scenes --split train --out /tmp/cap_train.st
    build/examples/caption scenes --out /tmp/cap_val.st
    /usr/bin/python3 tests/torch_caption.py --train-data /tmp/cap_train.st \\
        --val-data /tmp/cap_val.st [--steps 1500] [--eval-every 500] \\
        [--threads 1] [--seed 1234] [--attention none|bahdanau|luong|general] [--log CSV]

(bench/caption_vs_torch.sh runs both sides one after the other.)

The same as `caption train` with its defaults (and its --attention: the
Captioner's attn, tests/torch_translate.py's Attention, over the last
convolution's 8 x 8 activations, its context concatenated to the word's
embedding at every step, as caption's):
  - scenes: the ones caption made (`caption scenes`: --split train, its
    --train-scenes 8000, and the held-out --val-scenes 500), read from
    safetensors; Python has no copy of the scene generator;
  - model: tools/torch_models.py's Captioner (encoder Conv2d/ReLU/MaxPool2d
    x 3 and AdaptiveAvgPool2d(--grid), init_h, init_c, embed, LSTMCell
    decoder, out), initialised by PyTorch's default modules from
    torch.manual_seed(--seed), as caption initialises (uniform in
    +-1/sqrt(fan_in) for the convolutions and Linears, +-1/sqrt(H) for the
    LSTMCell, N(0, 1) for the embedding), the embedding's <pad> row zeroed
    as caption's (padding_idx 0; no target ever reads it);
  - batches: --batch scenes drawn uniformly with replacement, by the same
    generator as caption's (tn_rng seeded --seed ^ 0x5851f42d4c957f2d,
    scene next() % N; tests/rng_reference.py): the same batches in the
    same order;
  - loss: the cross-entropy of every caption word and <eos> (teacher
    forcing, <sos> first; <pad> ignored), mean over those targets; the
    batch's steps are its longest caption plus <eos>, as caption's;
  - step: Adam (--lr 0.003, betas 0.9 0.999, eps 1e-8), the global
    gradient norm clipped to --clip 5 (0: off);
  - evaluation (every --eval-every steps and after the last): the held-out
    loss (teacher forced, the sum over the targets / their number, in
    batches of 250) and corpus BLEU-4 with the brevity penalty x 100
    (torch_translate.bleu, the computation of examples/common/bleu.c) of
    greedy captions: the likeliest word each step (the first of equal
    ones), until <eos> or 10 words.
Only the initial weights differ from caption's run of the same --seed.
--init CHECKPOINT starts from a checkpoint of caption instead (its sizes
from its metadata): with `caption train --steps 0 --checkpoint C0` and
--compare C3, the weights of `caption train --steps 3 --checkpoint C3`
(same seed), the script prints per parameter the largest difference from
caption's weights after the same steps (float32 on both sides: rounding
differences, far below the size of the steps). --init C --steps 0 prints
the evaluation of caption's checkpoint C, which `caption eval --checkpoint
C` prints too (the same loss, BLEU and decoding).

Prints "step N train_loss X val_loss Y val_bleu Z" at each evaluation
(train_loss: the mean since the last one) and, as caption, "final step N
train_loss X (last batch Y) val_loss Y val_bleu Z in Ts (evaluation Es)
train_ms_per_step M": the wall time of the training steps alone (batch,
forward, backward, clipping, Adam), not of the evaluations.
"""
import argparse
import os
import sys
import time

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
from rng_reference import Xoshiro  # noqa: E402
from safetensors_io import read_safetensors_f32  # noqa: E402
from torch_models import Captioner  # noqa: E402
from torch_translate import bleu  # noqa: E402

PAD, SOS, EOS = 0, 1, 2
MAX_WORDS = 10  # caption.c: the longest caption
EVAL_BATCH = 250
DATA_SEED_MIX = 0x5851F42D4C957F2D  # caption.c: the batches' generator


def read_scenes(path, split):
    """(images [N, 3, 32, 32] float32, captions [N, 11] int64, words) of a
    file `caption scenes --split SPLIT` wrote."""
    t, meta = read_safetensors_f32(path)
    if meta.get("format") != "caption scenes 1" or meta.get("split", "val") != split:
        sys.exit(f"torch_caption: {path}: not the {split} scenes of `caption scenes "
                 f"--split {split}` (format {meta.get('format')!r}, split "
                 f"{meta.get('split', 'val')!r})")
    return (torch.from_numpy(t["images"]), torch.from_numpy(t["captions"]).long(),
            meta["words"].split("\n"))


def batch_loss(model, images, captions, reduction):
    """caption_loss: the cross-entropy of captions [B, 11] given images,
    over the batch's longest caption and <eos>; (loss, targets)."""
    T = int((captions != PAD).sum(1).max())
    loss, n = model.loss(images, captions[:, :T])
    return (loss / n if reduction == "mean" else loss), n


@torch.no_grad()
def greedy(model, images):
    """caption's decode with K = 1: the likeliest word each step (the first
    of equal log-probabilities), until <eos> or MAX_WORDS words."""
    fm = model.encoder[:-1](images)  # [B, 4C, 8, 8]: the annotations, with attention
    f = model.encoder[-1](fm).flatten(1)
    h, c = model.init_h(f), model.init_c(f)
    ann = fm.flatten(2).transpose(1, 2)
    every = torch.full((ann.shape[0],), ann.shape[1])
    y = torch.full((images.shape[0],), SOS, dtype=torch.long)
    outs, live = [[] for _ in range(images.shape[0])], [True] * images.shape[0]
    for _ in range(MAX_WORDS):
        x = model.embed(y)
        if model.attention != "none":
            x = torch.cat([x, model.attn(h, ann, every)[0]], 1)
        h, c = model.decoder(x, (h, c))
        y = torch.log_softmax(model.out(h), 1).argmax(1)
        for b, w in enumerate(y.tolist()):
            if live[b]:
                if w == EOS:
                    live[b] = False
                else:
                    outs[b].append(w)
        if not any(live):
            break
    return outs


@torch.no_grad()
def evaluate(model, images, captions):
    """(held-out loss per target, BLEU-4 x 100, share exactly right)."""
    model.eval()
    loss, n, hyps = 0.0, 0, []
    for i in range(0, images.shape[0], EVAL_BATCH):
        im, cap = images[i:i + EVAL_BATCH], captions[i:i + EVAL_BATCH]
        lb, nb = batch_loss(model, im, cap, "sum")
        loss, n = loss + lb.item(), n + nb
        hyps += greedy(model, im)
    model.train()
    refs = [[w for w in row if w not in (PAD, EOS)] for row in captions.tolist()]
    exact = sum(h == r for h, r in zip(hyps, refs)) / len(refs)
    return loss / n, 100 * bleu(hyps, refs), exact


def load_caption(path):
    """(state_dict, metadata) of a checkpoint of `caption train`."""
    t, meta = read_safetensors_f32(path)
    if meta.get("format") != "caption 1":
        sys.exit(f"torch_caption: {path}: not a caption checkpoint")
    return {k: torch.from_numpy(v) for k, v in t.items()}, meta


def check_args(a):
    """Inputs readable and outputs writable before any work."""
    for opt, path in (("--train-data", a.train_data), ("--val-data", a.val_data),
                      ("--init", a.init), ("--compare", a.compare)):
        if path and not os.path.isfile(path):
            sys.exit(f"torch_caption: {opt} {path}: no such file")
    if a.log and not os.path.isdir(os.path.dirname(os.path.abspath(a.log))):
        sys.exit(f"torch_caption: --log {a.log}: its directory does not exist")
    if a.compare and not a.init:
        sys.exit("torch_caption: --compare needs --init (the same starting weights)")


def compare(model, start, path):
    """Per parameter the largest |torch - caption| of the weights after the
    steps, beside how far caption's moved; returns the largest ratio."""
    end, meta = load_caption(path)
    print(f"against {path} (caption's step {meta.get('step')}):")
    worst = 0.0
    for k, p in model.state_dict().items():
        d = (p - end[k]).abs().max().item()
        moved = (end[k] - start[k]).abs().max().item()
        worst = max(worst, d / moved if moved else 0.0)
        print(f"  {k:22s} max|torch - caption| {d:.3e}  (caption moved by {moved:.3e})")
    print(f"largest weight difference / largest update: {worst:.3e}")
    return worst


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train-data", required=True, help="`caption scenes --split train --out`")
    ap.add_argument("--val-data", required=True, help="`caption scenes --out` (held-out)")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--clip", type=float, default=5.0, help="0: off")
    ap.add_argument("--embed", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--grid", type=int, default=2)
    ap.add_argument("--attention", default="none", choices=["none", "bahdanau", "luong", "general"],
                    help="caption's --attention (with --init: the checkpoint's)")
    ap.add_argument("--eval-every", type=int, default=500,
                    help="evaluate every N steps and after the last (0: only after the last)")
    ap.add_argument("--seed", type=int, default=1234, help="initial weights and batches")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    ap.add_argument("--log", help="CSV: step,train_loss,val_loss,val_bleu,elapsed_s,train_s")
    ap.add_argument("--init", help="start from this checkpoint of caption (sizes from it)")
    ap.add_argument("--compare", help="with --init: caption's checkpoint after the same steps")
    a = ap.parse_args()
    check_args(a)
    if a.steps < 0 or a.batch < 1 or a.eval_every < 0 or a.threads < 1 or not a.lr > 0:
        sys.exit("torch_caption: --steps, --eval-every >= 0; --batch, --threads >= 1; --lr > 0")
    torch.set_num_threads(a.threads)
    tr_img, tr_cap, words = read_scenes(a.train_data, "train")
    va_img, va_cap, va_words = read_scenes(a.val_data, "val")
    if words != va_words:
        sys.exit("torch_caption: the two scene files have other vocabularies")
    meta = {"embed": a.embed, "hidden": a.hidden, "channels": a.channels, "grid": a.grid}
    start = None
    if a.init:
        start, cmeta = load_caption(a.init)
        meta = {k: int(cmeta[k]) for k in meta}
        a.attention = cmeta.get("attention", "none")
    meta["attention"] = a.attention
    if a.attention == "luong" and meta["hidden"] != 4 * meta["channels"]:
        sys.exit("torch_caption: --attention luong (dot) needs --hidden = 4 x --channels")
    torch.manual_seed(a.seed)
    model = Captioner(meta, len(words))
    with torch.no_grad():
        model.embed.weight[PAD].zero_()  # caption's embedding: padding_idx <pad>
    if start is not None:
        model.load_state_dict(start, strict=True)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr, betas=(0.9, 0.999), eps=1e-8)
    N = tr_img.shape[0]
    print(f"torch_caption: CNN {meta['channels']} channels, pool {meta['grid']}, LSTM "
          f"H={meta['hidden']} E={meta['embed']}, attention {meta['attention']}; "
          f"{len(words)} words; {N} train / "
          f"{va_img.shape[0]} held-out scenes; params "
          f"{sum(p.numel() for p in model.parameters())}; {torch.get_num_threads()} threads",
          file=sys.stderr)
    log = open(a.log, "w") if a.log else None
    if log:
        log.write("step,train_loss,val_loss,val_bleu,elapsed_s,train_s\n")
    r = Xoshiro(a.seed ^ DATA_SEED_MIX)
    t0, train_s, eval_s = time.time(), 0.0, 0.0
    smooth = last = float("nan")
    since, n_since = 0.0, 0
    vl = vb = float("nan")

    def run_eval(step):
        nonlocal eval_s, since, n_since, vl, vb
        e0 = time.time()
        vl, vb, _ = evaluate(model, va_img, va_cap)
        eval_s += time.time() - e0
        mean = since / n_since if n_since else float("nan")
        print(f"step {step} train_loss {mean:.4f} val_loss {vl:.4f} val_bleu {vb:.2f}",
              file=sys.stderr, flush=True)
        if log:
            log.write(f"{step},{mean:.6f},{vl:.6f},{vb:.4f},{time.time() - t0:.3f},"
                      f"{train_s:.3f}\n")
            log.flush()
        since, n_since = 0.0, 0

    if a.steps == 0:
        run_eval(0)
    for step in range(1, a.steps + 1):
        ts = time.time()
        idx = torch.tensor([r.next() % N for _ in range(a.batch)])
        loss, _ = batch_loss(model, tr_img[idx], tr_cap[idx], "mean")
        opt.zero_grad()
        loss.backward()
        norm = nn.utils.clip_grad_norm_(model.parameters(), a.clip if a.clip > 0 else float("inf"))
        if not (torch.isfinite(loss) and torch.isfinite(norm)):
            sys.exit(f"torch_caption: training diverged at step {step}: loss {loss.item()}")
        opt.step()
        last = loss.item()
        train_s += time.time() - ts
        smooth = last if smooth != smooth else 0.95 * smooth + 0.05 * last
        since, n_since = since + last, n_since + 1
        if (a.eval_every and step % a.eval_every == 0) or step == a.steps:
            run_eval(step)
    print(f"final step {a.steps} train_loss {smooth:.4f} (last batch {last:.4f}) val_loss "
          f"{vl:.4f} val_bleu {vb:.2f} in {time.time() - t0:.1f}s (evaluation {eval_s:.1f}s) "
          f"train_ms_per_step {1e3 * train_s / a.steps if a.steps else 0.0:.1f}", flush=True)
    if a.compare:
        compare(model, start, a.compare)
    return 0


if __name__ == "__main__":
    sys.exit(main())
