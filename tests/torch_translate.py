#!/usr/bin/python3
"""PyTorch reference of examples/translate (run by hand; CI does not need it).

    /usr/bin/python3 tests/torch_translate.py --data data/eng-fra-76k.txt \
        --steps 1000 --eval-every 250 [--threads 2] [--log curve.csv]

The same model, training scheme, tokenisation and split as `translate
train` with its defaults (bidirectional is an option here as there):
  - tokens: lowercase (ASCII and Latin-1 letters), the punctuation
    . , ! ? ; : " ( ) « » ¿ ¡ split off, whitespace words; pairs with more
    than --max-len tokens on a side dropped;
  - split: the usable lines shuffled by tn_rng seeded 20240 (the library's
    splitmix64 + xoshiro256**, tests/rng_reference.py), the last 5% held
    out; vocabularies from the training lines in order of first use after
    <pad> <sos> <eos> <unk>;
  - model: embed (padding 0) -> GRU/LSTM encoder over packed sources ->
    decoder layer l starts at tanh(bridge(h_n of encoder layer l, both
    directions)); per step x = [embed(y_prev); feed] -> cells -> h,
    context = attention(h), feed = tanh(combine([h; context])) (no bias),
    logits = out(feed); Bahdanau score v(tanh(key(k) + query(h)))
    (--attention: also Luong dot (luong) or general, or none: logits =
    out(h));
  - loss: mean cross-entropy over target tokens (ignore <pad>), teacher
    forcing 1.0, Adam, clip 1.0; batches of --batch random training pairs;
  - validation: loss (teacher forced) and corpus BLEU-4 of greedy decoding
    on the first --eval-pairs validation pairs, every --eval-every steps.
The random draws are torch's (initial weights: torch.manual_seed(--seed);
batches: a torch.Generator seeded --seed), not translate's: the same
distributions, other numbers. tests/torch_translate_same.py checks that
from translate's initial weights and batches this model takes the same
steps as translate (same losses and Adam state).
Prints lines "step N train_loss X val_loss Y val_bleu Z elapsed_s T".
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

PAD, SOS, EOS, UNK = 0, 1, 2, 3
PUNCT = set('.,!?;:"()') | {"\u00ab", "\u00bb", "\u00bf", "\u00a1"}
SPACE = {" ", "\t", "\n", "\r", "\u00a0", "\u202f"}


def lower(c):
    o = ord(c)
    if o < 128:
        return c.lower()
    if 0xC0 <= o <= 0xDE and o != 0xD7:
        return chr(o + 0x20)
    return c


def tokenize(text):
    toks, cur = [], ""
    for c in text:
        c = lower(c)
        if c in SPACE or c in PUNCT:
            if cur:
                toks.append(cur)
                cur = ""
            if c in PUNCT:
                toks.append(c)
            continue
        cur += c
    if cur:
        toks.append(cur)
    return toks


def read_pairs(path, max_len):
    lines = []
    with open(path, encoding="utf-8") as f:
        for line in f.read().split("\n"):
            parts = line.split("\t")
            if len(parts) < 2:
                continue
            s, t = tokenize(parts[0]), tokenize(parts[1])
            if not s or not t or len(s) > max_len or len(t) > max_len:
                continue
            lines.append((s, t))
    return lines


def split(lines):
    n = len(lines)
    perm = list(range(n))
    r = Xoshiro(20240)
    for i in range(n - 1, 0, -1):
        j = r.next() % (i + 1)
        perm[i], perm[j] = perm[j], perm[i]
    n_val = n // 20
    return [lines[p] for p in perm[: n - n_val]], [lines[p] for p in perm[n - n_val:]]


def vocab(pairs, side):
    v = {"<pad>": 0, "<sos>": 1, "<eos>": 2, "<unk>": 3}
    for p in pairs:
        for w in p[side]:
            v.setdefault(w, len(v))
    return v


class Attention(nn.Module):
    """tn_attention (src/nn/attention.c): Bahdanau score v(tanh(key(k) +
    query(q))) (A units: key, query, v); Luong "general" q . linear(k);
    "luong" (dot) q . k, no parameters (tests/gen_attention_fixtures.py too)."""

    def __init__(self, kind, Hq, Hk, A=None):
        super().__init__()
        self.kind = kind
        if kind == "bahdanau":
            self.key = nn.Linear(Hk, A or Hq)
            self.query = nn.Linear(Hq, A or Hq, bias=False)
            self.v = nn.Linear(A or Hq, 1, bias=False)
        elif kind == "general":
            self.linear = nn.Linear(Hk, Hq, bias=False)

    def prepare(self, k):
        """What the scores read of the keys k [B, S, Hk] (computed once)."""
        return self.key(k) if self.kind == "bahdanau" else k

    def scores(self, keys, q):
        """[B, S] scores of the query q [B, Hq] against prepare()'s keys."""
        if self.kind == "bahdanau":
            return self.v(torch.tanh(keys + self.query(q).unsqueeze(1))).squeeze(2)
        if self.kind == "general":
            q = q @ self.linear.weight  # [B, Hk], as the library: (q W) . k
        return torch.bmm(keys, q.unsqueeze(2)).squeeze(2)

    def forward(self, q, k, lengths):
        """(context [B, Hk], weights [B, S]) of q over k's first lengths rows."""
        pad = torch.arange(k.shape[1]).unsqueeze(0) >= lengths.unsqueeze(1)
        w = torch.softmax(self.scores(self.prepare(k), q).masked_fill(pad, float("-inf")), dim=1)
        return torch.bmm(w.unsqueeze(1), k).squeeze(1), w


class Seq2seq(nn.Module):
    """attention: bahdanau (translate's default), general, dot or none (no
    context, no input feeding: logits = out(top layer's h))."""

    def __init__(self, cell, SV, TV, E, H, L, bi, attention="bahdanau"):
        super().__init__()
        D = 2 if bi else 1
        R = nn.GRU if cell == "gru" else nn.LSTM
        C = nn.GRUCell if cell == "gru" else nn.LSTMCell
        self.cell, self.L, self.H, self.D = cell, L, H, D
        self.src_embed = nn.Embedding(SV, E, padding_idx=PAD)
        self.tgt_embed = nn.Embedding(TV, E, padding_idx=PAD)
        self.encoder = R(E, H, L, batch_first=True, bidirectional=bi)
        self.bridge = nn.Linear(D * H, H)
        if cell == "lstm":
            self.bridge_c = nn.Linear(D * H, H)
        ctx = 0 if attention == "none" else H
        self.decoder = nn.ModuleList([C(E + ctx if l == 0 else H, H) for l in range(L)])
        self.attn = None
        if attention != "none":
            self.attn = Attention(attention, H, D * H)
            self.combine = nn.Linear(H + D * H, H, bias=False)
        self.out = nn.Linear(H, TV)

    def encode(self, src, lengths):
        B, S = src.shape
        packed = pack_padded_sequence(self.src_embed(src), lengths, batch_first=True,
                                      enforce_sorted=False)
        out, st = self.encoder(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=S)
        hn, cn = st if self.cell == "lstm" else (st, None)

        def bridge(x, lin):
            x = x.view(self.L, self.D, B, self.H).permute(0, 2, 1, 3).reshape(self.L, B, -1)
            return [torch.tanh(lin(x[l])) for l in range(self.L)]
        h = bridge(hn, self.bridge)
        c = bridge(cn, self.bridge_c) if cn is not None else None
        mask = torch.arange(S).unsqueeze(0) < lengths.unsqueeze(1)
        return out, self.attn.prepare(out) if self.attn else None, mask, h, c

    def step(self, y, enc, keys, mask, h, c, feed):
        x = self.tgt_embed(y)
        if self.attn:
            x = torch.cat([x, feed], 1)
        for l in range(self.L):
            if self.cell == "lstm":
                h[l], c[l] = self.decoder[l](x, (h[l], c[l]))
            else:
                h[l] = self.decoder[l](x, h[l])
            x = h[l]
        if not self.attn:
            return self.out(x), feed
        e = self.attn.scores(keys, x)
        w = torch.softmax(e.masked_fill(~mask, float("-inf")), 1)
        ctx = torch.bmm(w.unsqueeze(1), enc).squeeze(1)
        feed = torch.tanh(self.combine(torch.cat([x, ctx], 1)))
        return self.out(feed), feed

    def loss(self, src, lengths, tgt):
        enc, keys, mask, h, c = self.encode(src, lengths)
        B, T = tgt.shape
        feed = torch.zeros(B, self.H)
        y = torch.full((B,), SOS, dtype=torch.long)
        logits = []
        for t in range(T):
            lg, feed = self.step(y, enc, keys, mask, h, c, feed)
            logits.append(lg)
            y = tgt[:, t]
        return F.cross_entropy(torch.stack(logits, 1).reshape(B * T, -1), tgt.reshape(-1),
                               ignore_index=PAD)

    @torch.no_grad()
    def greedy(self, src, lengths, max_len):
        enc, keys, mask, h, c = self.encode(src, lengths)
        B = src.shape[0]
        feed = torch.zeros(B, self.H)
        y = torch.full((B,), SOS, dtype=torch.long)
        outs, done = [[] for _ in range(B)], [False] * B
        for _ in range(max_len):
            lg, feed = self.step(y, enc, keys, mask, h, c, feed)
            lg[:, PAD] = -float("inf")
            lg[:, SOS] = -float("inf")
            y = lg.argmax(1)
            for b in range(B):
                if not done[b]:
                    if y[b].item() == EOS:
                        done[b] = True
                    else:
                        outs[b].append(y[b].item())
        return outs


def bleu(hyps, refs):
    match, total = [0] * 4, [0] * 4
    c = r = 0
    for h, ref in zip(hyps, refs):
        c += len(h)
        r += len(ref)
        for g in range(1, 5):
            hg = [tuple(h[i:i + g]) for i in range(len(h) - g + 1)]
            rg = [tuple(ref[i:i + g]) for i in range(len(ref) - g + 1)]
            for gram in set(hg):
                match[g - 1] += min(hg.count(gram), rg.count(gram))
            total[g - 1] += len(hg)
    if min(match) == 0 or min(total) == 0:
        return 0.0
    bp = 1.0 if c >= r else (math.exp(1 - r / c) if c else 0.0)
    return bp * math.exp(sum(math.log(m / t) for m, t in zip(match, total)) / 4)


def batch(pairs, sv, tv):
    B = len(pairs)
    S = max(len(p[0]) for p in pairs)
    T = max(len(p[1]) for p in pairs) + 1
    src = torch.zeros(B, S, dtype=torch.long)
    tgt = torch.zeros(B, T, dtype=torch.long)
    for b, (s, t) in enumerate(pairs):
        src[b, :len(s)] = torch.tensor([sv.get(w, UNK) for w in s])
        tgt[b, :len(t) + 1] = torch.tensor([tv.get(w, UNK) for w in t] + [EOS])
    return src, torch.tensor([len(p[0]) for p in pairs]), tgt


def evaluate(model, val, sv, tv, max_len, B=64):
    model.eval()
    loss = count = 0.0
    hyps, refs = [], []
    with torch.no_grad():
        for i in range(0, len(val), B):
            part = val[i:i + B]
            src, lengths, tgt = batch(part, sv, tv)
            n = (tgt != PAD).sum().item()
            loss += model.loss(src, lengths, tgt).item() * n
            count += n
            hyps += model.greedy(src, lengths, max_len)
            refs += [[tv.get(w, UNK) for w in p[1]] for p in part]
    model.train()
    return loss / count, 100 * bleu(hyps, refs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--cell", default="gru", choices=["gru", "lstm"])
    ap.add_argument("--bidirectional", action="store_true")
    ap.add_argument("--attention", default="bahdanau", choices=["bahdanau", "luong", "general",
                                                                "none"])
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--embed", type=int, default=256)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--max-len", type=int, default=10)
    ap.add_argument("--eval-every", type=int, default=500,
                    help="validation every N steps (0: only after the last step)")
    ap.add_argument("--eval-pairs", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--log")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    train, val = split(read_pairs(a.data, a.max_len))
    sv, tv = vocab(train, 0), vocab(train, 1)
    val = val[:a.eval_pairs]
    model = Seq2seq(a.cell, len(sv), len(tv), a.embed, a.hidden, a.layers, a.bidirectional,
                    a.attention)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    print(f"torch_translate: {len(train)} train / {len(val)} val pairs, vocab {len(sv)} -> "
          f"{len(tv)}, params {sum(p.numel() for p in model.parameters())}", file=sys.stderr)
    log = open(a.log, "w") if a.log else None
    if log:
        log.write("step,train_loss,val_loss,val_bleu,elapsed_s\n")
    g = torch.Generator().manual_seed(a.seed)
    # Training steps and evaluations are timed apart: the comparison with
    # translate is of training steps (train_ms_per_step), not of evaluation.
    t0, smooth, train_s = time.time(), None, 0.0
    for step in range(1, a.steps + 1):
        ts = time.time()
        idx = torch.randint(len(train), (a.batch,), generator=g).tolist()
        src, lengths, tgt = batch([train[i] for i in idx], sv, tv)
        loss = model.loss(src, lengths, tgt)
        opt.zero_grad()
        loss.backward()
        if a.clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), a.clip)
        opt.step()
        smooth = loss.item() if smooth is None else 0.95 * smooth + 0.05 * loss.item()
        train_s += time.time() - ts
        if (a.eval_every > 0 and step % a.eval_every == 0) or step == a.steps:
            vl, vb = evaluate(model, val, sv, tv, a.max_len)
            el = time.time() - t0
            print(f"step {step} train_loss {smooth:.4f} val_loss {vl:.4f} val_bleu {vb:.2f} "
                  f"elapsed_s {el:.1f} train_ms_per_step {1e3 * train_s / step:.1f}", flush=True)
            if log:
                log.write(f"{step},{smooth:.6f},{vl:.6f},{vb:.4f},{el:.3f}\n")
                log.flush()


if __name__ == "__main__":
    main()
