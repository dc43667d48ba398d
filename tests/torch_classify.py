#!/usr/bin/python3
"""PyTorch reference of examples/classify (run by hand; CI does not need it).

    /usr/bin/python3 tests/torch_classify.py --data data/names \
        --steps 3000 --eval-every 1000 --threads 2

Options mean what they mean for `classify train` and default the same. The
same data, split, vocabulary, class weights, batches, model and optimizer:
  - data: one <Label>.txt per class in DIR, labels in sorted order, one
    example a line (UTF-8, a trailing CR dropped, empty lines skipped), cut
    to the first 64 code points; without --data the generated task of
    examples/apps/classify.c (four invented languages, tn_rng seeded 7);
  - split: per class in label order, a Fisher-Yates shuffle of its examples
    by one tn_rng seeded 20240 (splitmix64 + xoshiro256**,
    tests/rng_reference.py); the first floor(F * n_c) are validation;
  - vocabulary: <pad> 0, <unk> 1, then the training split's code points in
    ascending order;
  - class weights (--balance weights): n / (C * n_c) over the training split
    (sklearn's 'balanced'), as F.cross_entropy(weight=...); --balance
    sample draws a class uniformly, then one of its examples; none: neither;
  - batches: B training examples drawn with replacement by tn_rng seeded
    seed ^ 0x5851f42d4c957f2d (the very batches classify draws);
  - model: Embedding(V, E, padding_idx=0) -> GRU/LSTM/RNN(tanh) over the
    packed batch -> the last layer's h_n (both directions concatenated,
    forward first) -> Linear(D*H, C); Adam(lr), clip_grad_norm_(clip).
Only the initial weights differ (each side's own generator, the same
distributions). Prints "step N train_loss X val_loss Y val_accuracy Z
val_balanced_accuracy W" per evaluation (val_loss: unweighted mean
cross-entropy) and a final line with the wall time, training and
evaluation apart.
"""
import argparse
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rng_reference import Xoshiro  # noqa: E402

MAX_LEN = 64
SPLIT_SEED = 20240
DATA_SEED_MIX = 0x5851F42D4C957F2D
EVAL_BATCH = 256


def read_dir(path):
    names = sorted(f[:-4] for f in os.listdir(path)
                   if f.endswith(".txt") and len(f) > 4 and not f.startswith("."))
    # byte order of the UTF-8 names, as strcmp
    names.sort(key=lambda s: s.encode("utf-8"))
    examples, labels = [], []
    for c, name in enumerate(names):
        with open(os.path.join(path, name + ".txt"), encoding="utf-8", newline="") as f:
            for line in f.read().split("\n"):
                if line.endswith("\r"):
                    line = line[:-1]
                if line:
                    examples.append([ord(ch) for ch in line][:MAX_LEN])
                    labels.append(c)
    return names, examples, labels


def generated():
    names = ["lirana", "kotsuk", "brundel", "oyaque"]
    syl = [["li", "ra", "na", "mi", "el", "si", "ta", "lo"],
           ["ko", "tsu", "ki", "ha", "mo", "to", "ru", "ka"],
           ["bru", "del", "st", "ng", "ka", "orf", "ber", "sch"],
           ["oy", "que", "ai", "eu", "ou", "ia", "ll", "ta"]]
    count = [1200, 600, 300, 150]
    r = Xoshiro(7)
    examples, labels = [], []
    for c in range(4):
        for _ in range(count[c]):
            ns = 2 + r.next() % 3
            w = "".join(syl[c][r.next() % 8] for _ in range(ns))
            examples.append([ord(ch) for ch in w[0].upper() + w[1:]])
            labels.append(c)
    return names, examples, labels


def split(labels, C, frac):
    r = Xoshiro(SPLIT_SEED)
    train, val = [], []
    for c in range(C):
        cls = [i for i, y in enumerate(labels) if y == c]
        for i in range(len(cls) - 1, 0, -1):
            j = r.next() % (i + 1)
            cls[i], cls[j] = cls[j], cls[i]
        nv = math.floor(frac * len(cls))
        val += cls[:nv]
        train += cls[nv:]
    return train, val


class Classifier(nn.Module):
    def __init__(self, V, C, a):
        super().__init__()
        self.embed = nn.Embedding(V, a.embed, padding_idx=0)
        kind = {"gru": nn.GRU, "lstm": nn.LSTM, "rnn": nn.RNN}[a.cell]
        self.rnn = kind(a.embed, a.hidden, a.layers, batch_first=True,
                        bidirectional=a.bidirectional)
        self.D = 2 if a.bidirectional else 1
        self.head = nn.Linear(self.D * a.hidden, C)

    def forward(self, ids, lengths):
        packed = pack_padded_sequence(self.embed(ids), lengths, batch_first=True,
                                      enforce_sorted=False)
        _, h = self.rnn(packed)
        if isinstance(h, tuple):
            h = h[0]
        last = h[-self.D:].transpose(0, 1).reshape(ids.shape[0], -1)
        return self.head(last)


def make_batch(examples, labels, idx, ids_of):
    T = max(len(examples[i]) for i in idx)
    ids = torch.zeros(len(idx), T, dtype=torch.long)
    for b, i in enumerate(idx):
        ids[b, :len(examples[i])] = torch.tensor([ids_of(cp) for cp in examples[i]])
    lengths = torch.tensor([len(examples[i]) for i in idx])
    return ids, lengths, torch.tensor([labels[i] for i in idx])


def evaluate(model, examples, labels, val, C, ids_of):
    model.eval()
    conf = torch.zeros(C, C, dtype=torch.long)
    loss = 0.0
    with torch.no_grad():
        for i0 in range(0, len(val), EVAL_BATCH):
            ids, lengths, y = make_batch(examples, labels, val[i0:i0 + EVAL_BATCH], ids_of)
            logits = model(ids, lengths)
            loss += F.cross_entropy(logits, y, reduction="sum").item()
            pred = logits.argmax(1)
            for t, p in zip(y.tolist(), pred.tolist()):
                conf[t, p] += 1
    model.train()
    rows = conf.sum(1)
    seen = rows > 0
    recall = (conf.diag()[seen].double() / rows[seen].double()).mean().item()
    return loss / len(val), conf.diag().sum().item() / len(val), recall


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data")
    p.add_argument("--cell", default="gru", choices=["gru", "lstm", "rnn"])
    p.add_argument("--bidirectional", action="store_true")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--embed", type=int, default=64)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--clip", type=float, default=1.0)
    p.add_argument("--balance", default="weights", choices=["weights", "sample", "none"])
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--eval-every", type=int, default=1000)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    names, examples, labels = read_dir(a.data) if a.data else generated()
    C = len(names)
    train, val = split(labels, C, a.val_fraction)
    chars = sorted({cp for i in train for cp in examples[i]})
    index = {cp: k + 2 for k, cp in enumerate(chars)}
    ids_of = lambda cp: index.get(cp, 1)  # noqa: E731
    counts = [0] * C
    by_class = [[] for _ in range(C)]
    for i in train:
        counts[labels[i]] += 1
        by_class[labels[i]].append(i)
    weight = torch.tensor([len(train) / (C * n) for n in counts], dtype=torch.float32)
    model = Classifier(len(chars) + 2, C, a)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    print("torch_classify: %s%s H=%d E=%d L=%d; %d classes, %d characters; %d train / %d val; "
          "balance %s; params %d; %d threads" %
          (a.cell, " (bidirectional)" if a.bidirectional else "", a.hidden, a.embed, a.layers,
           C, len(chars), len(train), len(val), a.balance,
           sum(q.numel() for q in model.parameters()), torch.get_num_threads()), flush=True)

    rng = Xoshiro(a.seed ^ DATA_SEED_MIX)
    t0 = time.perf_counter()
    t_eval, smooth, scores = 0.0, None, (math.nan, math.nan, math.nan)
    for step in range(1, a.steps + 1):
        if a.balance == "sample":
            idx = []
            for _ in range(a.batch):
                c = rng.next() % C
                idx.append(by_class[c][rng.next() % counts[c]])
        else:
            idx = [train[rng.next() % len(train)] for _ in range(a.batch)]
        ids, lengths, y = make_batch(examples, labels, idx, ids_of)
        loss = F.cross_entropy(model(ids, lengths), y,
                               weight=weight if a.balance == "weights" else None)
        opt.zero_grad()
        loss.backward()
        if a.clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), a.clip)
        opt.step()
        v = loss.item()
        smooth = v if smooth is None else 0.95 * smooth + 0.05 * v
        if val and ((a.eval_every and step % a.eval_every == 0) or step == a.steps):
            te = time.perf_counter()
            scores = evaluate(model, examples, labels, val, C, ids_of)
            t_eval += time.perf_counter() - te
            print("step %d train_loss %.4f val_loss %.4f val_accuracy %.4f "
                  "val_balanced_accuracy %.4f" % ((step, smooth) + scores), flush=True)
    total = time.perf_counter() - t0
    print("final step %d train_loss %.4f val_loss %.4f val_accuracy %.4f "
          "val_balanced_accuracy %.4f time %.1fs (training %.1fs, evaluation %.1fs)" %
          ((a.steps, smooth) + scores + (total, total - t_eval, t_eval)))


if __name__ == "__main__":
    main()
