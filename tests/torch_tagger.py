#!/usr/bin/python3
"""PyTorch reference of examples/tagger (run by hand; CI does not need it).

    /usr/bin/python3 tests/torch_tagger.py --steps 1000 --threads 1
    /usr/bin/python3 tests/torch_tagger.py --unidirectional

Options mean what they mean for `tagger train` and default the same. The
same data, split, vocabulary, batches, model and optimizer:
  - data: the generated part-of-speech task of examples/apps/tagger.c (its
    grammar, drawn in the same order from tn_rng seeded --seed:
    splitmix64 + xoshiro256**, tests/rng_reference.py), or --data FILE of
    word/TAG lines;
  - split: a Fisher-Yates shuffle of the sentences by tn_rng seeded 20250;
    the first max(1, floor(0.1 n)) are held out;
  - vocabulary: <pad> 0, <unk> 1, then the training words in byte order;
  - batches: B training sentences drawn with replacement by tn_rng seeded
    seed ^ 0x2545f4914f6cdd1d, then, from the same generator, each word
    read as <unk> with probability --unk (the very batches tagger draws);
  - model: Embedding(V, E, padding_idx=0) -> LSTM (bidirectional unless
    --unidirectional) over the packed batch -> Linear(D*H, n_tags) at every
    position -> cross_entropy(ignore_index=-1); Adam(lr), clip_grad_norm_.
Only the initial weights differ (each side's own generator). Prints the
validation lines as tagger does, then eval's per-tag table.
"""
import argparse
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rng_reference import Xoshiro  # noqa: E402

SPLIT_SEED = 20250
DATA_SEED_MIX = 0x2545F4914F6CDD1D

DETS = ["the", "a", "every", "this", "my", "our"]
ADJS = ["big", "small", "red", "old", "happy", "quiet", "light", "cold", "dark"]
NOUNS = ["dog", "cat", "man", "woman", "child", "house", "river", "boat", "tree", "garden",
         "park", "can", "saw", "light", "cold", "dark", "fish", "watch", "duck", "run"]
SUBJ = ["she", "he", "it", "they", "we", "i", "you"]
OBJ = ["them", "her", "him", "us", "me", "it"]
PAST = ["saw", "found", "liked", "ate", "watched", "left", "painted"]
BASE = ["run", "fish", "watch", "duck", "park", "see", "find", "like", "paint", "leave"]
ADVS = ["quickly", "slowly", "often", "today", "near", "in", "on", "around", "outside"]
PREPS = ["in", "on", "near", "with", "under", "around", "outside"]
CONJS = ["and", "but", "or"]


class Gen:
    """The grammar of examples/apps/tagger.c, drawing as it does."""

    def __init__(self, seed):
        self.r = Xoshiro(seed)

    def u(self):
        return (self.r.next() >> 11) * 2.0**-53

    def pick(self, a):
        return a[self.r.next() % len(a)]

    def np(self, s, depth):
        s.append((self.pick(DETS), "DET"))
        for k in range(2):
            if not self.u() < (0.25 if k else 0.5):
                break
            s.append((self.pick(ADJS), "ADJ"))
        s.append((self.pick(NOUNS), "NOUN"))
        if depth == 0 and self.u() < 0.15:
            s.append((self.pick(PREPS), "PREP"))
            self.np(s, 1)

    def clause(self, s):
        plural = False
        if self.u() < 0.4:
            w = self.pick(SUBJ)
            plural = w not in ("she", "he", "it")
            s.append((w, "PRON"))
        else:
            self.np(s, 0)
        u = self.u()
        if u < 0.3:
            s.append(("can", "VERB"))
            s.append((self.pick(BASE), "VERB"))
        elif plural and u < 0.6:
            s.append((self.pick(BASE), "VERB"))
        else:
            s.append((self.pick(PAST), "VERB"))
        if self.u() < 0.6:
            if self.u() < 0.25:
                s.append((self.pick(OBJ), "PRON"))
            else:
                self.np(s, 0)
        u = self.u()
        if u < 0.35:
            s.append((self.pick(ADVS), "ADV"))
        elif u < 0.7:
            s.append((self.pick(PREPS), "PREP"))
            self.np(s, 1)

    def sentences(self, n):
        out = []
        for _ in range(n):
            s = []
            self.clause(s)
            if self.u() < 0.3:
                s.append((self.pick(CONJS), "CONJ"))
                self.clause(s)
            out.append(s)
        return out


def read_data(path):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            s = []
            for tok in line.split():
                w, _, t = tok.rpartition("/")
                s.append((w, t))
            if s:
                out.append(s)
    return out


def split(n):
    p = list(range(n))
    r = Xoshiro(SPLIT_SEED)
    for i in range(n - 1, 0, -1):
        j = r.next() % (i + 1)
        p[i], p[j] = p[j], p[i]
    nva = max(1, math.floor(0.1 * n))
    return p[:nva], p[nva:]


def make_batch(sents, idx, wid, tid, rng=None, unk=0.0):
    """Sentences idx as ids [B, T] (0 padding; an unknown word as its
    lowercase, else <unk> 1; with rng, each token <unk> with probability
    unk), tags [B*T] (-1 padding) and lengths [B]."""
    T = max(len(sents[i]) for i in idx)
    ids = torch.zeros(len(idx), T, dtype=torch.long)
    tg = torch.full((len(idx), T), -1, dtype=torch.long)
    for b, i in enumerate(idx):
        for k, (w, t) in enumerate(sents[i]):
            ids[b, k] = wid.get(w, wid.get(w.lower(), 1))
            if rng is not None and (rng.next() >> 11) * 2.0**-53 < unk:
                ids[b, k] = 1
            tg[b, k] = tid[t]
    return ids, tg.reshape(-1), torch.tensor([len(sents[i]) for i in idx])


class Tagger(nn.Module):
    def __init__(self, V, E, H, C, bi):
        super().__init__()
        self.embed = nn.Embedding(V, E, padding_idx=0)
        self.rnn = nn.LSTM(E, H, batch_first=True, bidirectional=bi)
        self.head = nn.Linear((2 if bi else 1) * H, C)

    def forward(self, ids, lens):
        x = self.embed(ids)
        packed = pack_padded_sequence(x, lens, batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=ids.shape[1])
        return self.head(out).reshape(-1, self.head.out_features)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data")
    ap.add_argument("--sentences", type=int, default=3000)
    ap.add_argument("--unidirectional", action="store_true")
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--embed", type=int, default=32)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--unk", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    sents = read_data(a.data) if a.data else Gen(a.seed).sentences(a.sentences)
    va, tr = split(len(sents))
    key = lambda s: s.encode()  # noqa: E731 (strcmp's byte order)
    words = sorted({w for i in tr for w, _ in sents[i]}, key=key)
    tags = sorted({t for s in sents for _, t in s}, key=key)
    wid = {w: k + 2 for k, w in enumerate(words)}
    tid = {t: k for k, t in enumerate(tags)}
    C = len(tags)
    print("%d tags, %d words; %d train / %d held-out sentences, %d held-out tokens"
          % (C, len(words), len(tr), len(va), sum(len(sents[i]) for i in va)), flush=True)
    # per word, the tags seen with it in training (ambiguous: more than one)
    seen = {}
    for i in tr:
        for w, t in sents[i]:
            seen.setdefault(wid[w], set()).add(tid[t])

    def batch(idx, rng=None):
        return make_batch(sents, idx, wid, tid, rng, a.unk)

    model = Tagger(len(words) + 2, a.embed, a.hidden, C, not a.unidirectional)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)

    def evaluate():
        model.eval()
        conf = torch.zeros(C, C, dtype=torch.long)
        loss, amb, amb_right = 0.0, 0, 0
        with torch.no_grad():
            for i0 in range(0, len(va), 128):
                ids, tg, lens = batch(va[i0:i0 + 128])
                lg = model(ids, lens)
                loss += F.cross_entropy(lg, tg, ignore_index=-1, reduction="sum").item()
                pred = lg.argmax(1)
                flat = ids.reshape(-1)
                for r in range(tg.shape[0]):
                    if tg[r] < 0:
                        continue
                    conf[tg[r], pred[r]] += 1
                    if len(seen.get(int(flat[r]), ())) > 1:
                        amb += 1
                        amb_right += int(pred[r] == tg[r])
        model.train()
        n = int(conf.sum())
        return loss / n, int(conf.trace()) / n, amb_right / max(amb, 1), conf

    rng = Xoshiro(a.seed ^ DATA_SEED_MIX)
    t0, smooth = time.time(), None
    for step in range(1, a.steps + 1):
        idx = [tr[rng.next() % len(tr)] for _ in range(a.batch)]
        ids, tg, lens = batch(idx, rng)
        loss = F.cross_entropy(model(ids, lens), tg, ignore_index=-1)
        opt.zero_grad()
        loss.backward()
        if a.clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), a.clip)
        opt.step()
        smooth = loss.item() if smooth is None else 0.95 * smooth + 0.05 * loss.item()
        if (a.eval_every and step % a.eval_every == 0) or step == a.steps:
            vl, acc, amb, conf = evaluate()
            print("step %d train_loss %.4f val_loss %.4f val_accuracy %.4f "
                  "val_ambiguous_accuracy %.4f" % (step, smooth, vl, acc, amb), flush=True)
    print("tag  precision recall     f1 support")
    macro = 0.0
    for t in range(C):
        tp, row, col = int(conf[t, t]), int(conf[t].sum()), int(conf[:, t].sum())
        p, r = (tp / col if col else 0.0), (tp / row if row else 0.0)
        f = 2 * p * r / (p + r) if tp else 0.0
        macro += f
        print("%-4s %9.4f %6.4f %6.4f %7d" % (tags[t], p, r, f, row))
    print("micro_f1 %.4f\nmacro_f1 %.4f\ntime %.1fs" % (acc, macro / C, time.time() - t0))


if __name__ == "__main__":
    main()
