#!/usr/bin/python3
"""Check that tests/torch_translate.py is the same model and training step as
`translate train` (run by hand; CI does not need it).

    build/examples/translate train --data data/eng-fra-76k.txt --bidirectional \
        --steps 0 --eval-every 0 --eval-pairs 1 --threads 1 --seed 1 --checkpoint c0.st
    build/examples/translate train --data data/eng-fra-76k.txt --bidirectional \
        --steps 3 --eval-every 3 --eval-pairs 1 --threads 1 --seed 1 --checkpoint c3.st
    /usr/bin/python3 tests/torch_translate_same.py --data data/eng-fra-76k.txt \
        --bidirectional --seed 1 --start c0.st --end c3.st [--eval c600.st]

Loads translate's initial weights (c0) into torch_translate's model, checks
that both made the same vocabularies, then takes the same training steps as
translate (its batches: tn_rng seeded seed ^ 0x5851f42d4c957f2d, pair index
next() % n) with torch_translate's loss, clipping and Adam, and prints per
parameter the largest difference from translate's weights and Adam moments
after them (c3: its step count is read from the file). Float32 on both
sides: differences of ~1e-6 relative are rounding; a different formulation
shows as differences of the size of the update itself (lr = 1e-3).
It also prints the mean and standard deviation of every initial tensor of
translate (c0) beside those of torch_translate's own initialisation.

With --eval, the weights of a checkpoint of translate (of any step) go
through torch_translate's evaluation (teacher-forced loss and greedy
BLEU-4 on the first --eval-pairs validation pairs): the same numbers as
translate printed at that step mean the same decoding and BLEU.
"""
import argparse
import sys

import torch
import torch.nn as nn

import torch_translate as tt
from rng_reference import Xoshiro
from safetensors_io import read_safetensors_f32


def load(path):
    arrays, metadata = read_safetensors_f32(path)
    return {k: torch.from_numpy(a) for k, a in arrays.items()}, metadata


def torch_name(c):
    return c[len("attn."):] if c.startswith("attn.") else c


def load_into(model, w):
    """translate's weights w into torch_translate's model; the parameter names."""
    names = dict(model.named_parameters())
    params = [k for k in w if not k.endswith((".exp_avg", ".exp_avg_sq"))]
    assert sorted(torch_name(k) for k in params) == sorted(names), "parameter names differ"
    with torch.no_grad():
        for k in params:
            names[torch_name(k)].copy_(w[k])
    return names, params


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--bidirectional", action="store_true")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--start", required=True)
    ap.add_argument("--end", required=True)
    ap.add_argument("--max-len", type=int, default=10)
    ap.add_argument("--eval", help="a checkpoint of translate to evaluate")
    ap.add_argument("--eval-pairs", type=int, default=1000)
    a = ap.parse_args()
    torch.set_num_threads(1)
    w0, meta = load(a.start)
    w1, meta1 = load(a.end)
    steps, B = int(meta1["step"]), int(meta1["batch"])
    H, E = int(meta["hidden"]), int(meta["embed"])
    train, val = tt.split(tt.read_pairs(a.data, a.max_len))
    sv, tv = tt.vocab(train, 0), tt.vocab(train, 1)
    for name, v in (("src_vocab", sv), ("tgt_vocab", tv)):
        assert meta[name].split("\n") == list(v), name + " differs"
    print(f"vocabularies equal ({len(sv)}, {len(tv)}); {len(train)} training pairs")
    torch.manual_seed(a.seed)
    model = tt.Seq2seq("gru", len(sv), len(tv), E, H, 1, a.bidirectional)
    print("initial tensors: mean / std, translate and torch_translate")
    for n, p in model.named_parameters():
        c = w0["attn." + n if n in ("key.weight", "key.bias", "query.weight", "v.weight") else n]
        print(f"  {n:28s} {c.mean().item():+.5f} / {c.std().item():.5f}   "
              f"{p.mean().item():+.5f} / {p.std().item():.5f}")
    names, params = load_into(model, w0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    r = Xoshiro(a.seed ^ 0x5851F42D4C957F2D)
    for step in range(1, steps + 1):
        idx = [r.next() % len(train) for _ in range(B)]
        src, lengths, tgt = tt.batch([train[i] for i in idx], sv, tv)
        loss = model.loss(src, lengths, tgt)
        opt.zero_grad()
        loss.backward()
        norm = nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        print(f"step {step} loss {loss.item():.6f} grad_norm {norm.item():.4f}")
    worst = 0.0
    for k in params:
        p = names[torch_name(k)].detach()
        st = opt.state[names[torch_name(k)]]
        for what, mine, theirs in (("weight", p, w1[k]),
                                   ("exp_avg", st["exp_avg"], w1[k + ".exp_avg"]),
                                   ("exp_avg_sq", st["exp_avg_sq"], w1[k + ".exp_avg_sq"])):
            d = (mine - theirs).abs().max().item()
            scale = theirs.abs().max().item()
            if what == "weight":
                moved = (theirs - w0[k]).abs().max().item()
                worst = max(worst, d / moved if moved else 0.0)
                print(f"{k:32s} max|torch - translate| {d:.3e}  (translate moved by {moved:.3e})")
            else:
                print(f"{k + '.' + what:32s} max|torch - translate| {d:.3e}  (max {scale:.3e})")
    print(f"largest weight difference / largest update: {worst:.3e}")
    if a.eval:
        w, m = load(a.eval)
        load_into(model, w)
        vl, vb = tt.evaluate(model, val[:a.eval_pairs], sv, tv, a.max_len)
        print(f"{a.eval} (step {m['step']}): torch_translate's evaluation: "
              f"val_loss {vl:.4f} val_bleu {vb:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
