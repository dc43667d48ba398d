#!/usr/bin/python3
"""PyTorch reference of examples/word_lm (run by hand; CI never runs it).

    /usr/bin/python3 tests/torch_word_lm.py [--data FILE] [--cell lstm|gru|rnn]
        [--embed 256] [--hidden 256] [--layers 2] [--dropout 0.2] [--batch 32]
        [--seq 35] [--steps 1000] [--lr 0.002] [--clip 0.25] [--seed 1]
        [--threads 2] [--eval-every 250] [--min-count 1] [--tie-weights]
        [--vectors FILE] [--freeze-embedding]

is the counterpart of `build/examples/word_lm train ...` with the same
options (same defaults; --data defaults to the repository's
data/tinyshakespeare.txt). Both print the same lines, so the curves compare
directly (the numbers differ only through the random streams: init, dropout;
stderr carries a line on the model and, with --vectors, the words found):

    vocab <V> train_tokens <N> val_tokens <M>
    step <k> train_loss <x.xxxx> val_loss <x.xxxx> val_ppl <x.xx> time <s.s>
    ...
    total <s.s> s

The scheme, exactly:
  - tokens: the file's lines (split on '\\n'; a final '\\n' does not start
    another line), each split on ASCII blanks (space \\t \\r \\v \\f; no
    Unicode spaces) and followed by "<eos>" (empty lines too). Words are
    compared as raw bytes (the same as the UTF-8 text for valid UTF-8).
    The first floor(0.9 * lines) lines are the training split, the rest
    validation.
  - vocabulary: 0 "<unk>", 1 "<eos>", then the training split's words with
    count >= --min-count in order of first appearance; anything else (in
    either split) is <unk> (a literal "<unk>"/"<eos>" in the text is that id).
  - batches: the training ids as one stream of N, cut into B streams of
    N // B; a position pos (start 0, zero state) per step: if
    pos + T + 1 > N // B then pos = 0 and the state is zeroed; x[b, s] =
    ids[b*(N//B) + pos + s], y = the next ids; pos += T; the detached final
    state is the next step's initial state.
  - model (batch first): Embedding(V, E) -> Dropout(p) -> LSTM/GRU/RNN(tanh)
    (E -> H, L layers, dropout p between layers) -> Dropout(p) -> Linear(H, V).
    torch.manual_seed(seed), modules created encoder, rnn, decoder, then
    encoder.weight ~ U(-0.1, 0.1), decoder.weight ~ U(-0.1, 0.1) (not with
    --tie-weights: it is encoder.weight, needs E == H), decoder.bias = 0.
  - --vectors FILE: text "word v1 ... vE" lines (a first line of exactly two
    integers, a word2vec header, is skipped); the row of every vocabulary
    word found is set to its vector (the first line of a repeated word) and
    the number of distinct words found goes to stderr; a line that is not a
    word and E finite numbers is an error. --freeze-embedding: the embedding
    (and so the tied decoder weight) is not trained.
  - loss: mean cross-entropy over the B*T targets; clip_grad_norm_(--clip,
    0 = none); Adam(lr, (0.9, 0.999), 1e-8).
  - evaluation every --eval-every steps and after the last: eval mode, the
    validation ids as one stream from a zero state in chunks of 256 with
    the state carried; mean NLL over the M-1 predictions, ppl = exp.
    train_loss is the mean step loss since the previous evaluation; time is
    the training time so far without evaluations; total is the wall time of
    the training loop with evaluations.
"""
import argparse
import math
import os
import re
import sys
import time

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.path.join(HERE, "..", "data", "tinyshakespeare.txt")
UNK, EOS = 0, 1
BLANKS = re.compile(rb"[ \t\r\v\f]+")


def die(msg):
    print(f"torch_word_lm: {msg}", file=sys.stderr)
    sys.exit(1)


def words(line):
    return [w for w in BLANKS.split(line) if w]


def read_lines(path):
    """The file's lines as lists of byte-string tokens, each ending in <eos>."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        die(f"{path}: not UTF-8 ({e})")
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines.pop()
    return [words(line) + [b"<eos>"] for line in lines]


def build_vocab(train_lines, min_count):
    counts = {}
    order = []
    for line in train_lines:
        for w in line:
            if w not in counts:
                counts[w] = 0
                order.append(w)
            counts[w] += 1
    stoi = {b"<unk>": UNK, b"<eos>": EOS}
    for w in order:
        if counts[w] >= min_count:
            stoi.setdefault(w, len(stoi))
    return stoi


def encode(lines, stoi):
    return [stoi.get(w, UNK) for line in lines for w in line]


def load_vectors(path, stoi, weight):
    """Set the rows of the words of stoi found in path (the first line for
    a word repeated); returns how many distinct words were found."""
    E = weight.shape[1]
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    found = set()
    for no, line in enumerate(lines, 1):
        fields = line.split()
        if not fields:
            continue
        if no == 1 and len(fields) == 2 and all(re.fullmatch(rb"[0-9]+", x) for x in fields):
            continue  # word2vec header: count dimension
        if len(fields) - 1 != E:
            die(f"--vectors {path} line {no}: {len(fields) - 1} values; expected a word and "
                f"{E} finite numbers (the embedding size)")
        try:
            vec = torch.tensor([float(x) for x in fields[1:]], dtype=weight.dtype)
        except ValueError:
            die(f"--vectors {path} line {no}: not a number")
        if not torch.isfinite(vec).all():
            die(f"--vectors {path} line {no}: a value is not a finite float")
        i = stoi.get(fields[0])
        if i is None or i in found:
            continue
        weight[i] = vec
        found.add(i)
    return len(found)


class WordLM(nn.Module):
    def __init__(self, cell, V, E, H, L, p, tie):
        super().__init__()
        self.drop = nn.Dropout(p)
        self.encoder = nn.Embedding(V, E)
        rnn_cls = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cell]
        kw = {"nonlinearity": "tanh"} if cell == "rnn" else {}
        self.rnn = rnn_cls(E, H, L, batch_first=True, dropout=p if L > 1 else 0.0, **kw)
        self.decoder = nn.Linear(H, V)
        with torch.no_grad():
            self.encoder.weight.uniform_(-0.1, 0.1)
            if tie:
                self.decoder.weight = self.encoder.weight
            else:
                self.decoder.weight.uniform_(-0.1, 0.1)
            self.decoder.bias.zero_()

    def forward(self, x, state=None):
        out, state = self.rnn(self.drop(self.encoder(x)), state)
        return self.decoder(self.drop(out)), state


def detach(state):
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


@torch.no_grad()
def stream_nll(model, ids, chunk=256):
    """Mean NLL of ids[1:], one stream from a zero state in chunks of
    `chunk` carrying the state."""
    was = model.training
    model.eval()
    total, count, state = 0.0, 0, None
    n = len(ids)
    for s in range(0, n - 1, chunk):
        length = min(chunk, n - 1 - s)
        x = torch.tensor(ids[s:s + length], dtype=torch.long).unsqueeze(0)
        y = torch.tensor(ids[s + 1:s + 1 + length], dtype=torch.long)
        logits, state = model(x, state)
        total += nn.functional.cross_entropy(logits[0], y, reduction="sum").item()
        count += length
    model.train(was)
    return total / count


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--cell", default="lstm", choices=["lstm", "gru", "rnn"])
    ap.add_argument("--embed", type=int, default=256)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=35)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--lr", type=float, default=0.002)
    ap.add_argument("--clip", type=float, default=0.25)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--min-count", type=int, default=1)
    ap.add_argument("--tie-weights", action="store_true")
    ap.add_argument("--vectors")
    ap.add_argument("--freeze-embedding", action="store_true")
    a = ap.parse_args()
    if a.tie_weights and a.embed != a.hidden:
        die(f"--tie-weights needs --embed == --hidden (got {a.embed} and {a.hidden})")
    for name in ("embed", "hidden", "layers", "batch", "seq", "steps", "threads",
                 "eval_every", "min_count"):
        if getattr(a, name) < 1:
            die(f"--{name.replace('_', '-')} must be at least 1")
    torch.set_num_threads(a.threads)

    lines = read_lines(a.data)
    n_train_lines = len(lines) * 9 // 10
    stoi = build_vocab(lines[:n_train_lines], a.min_count)
    train = encode(lines[:n_train_lines], stoi)
    val = encode(lines[n_train_lines:], stoi)
    V, N, M = len(stoi), len(train), len(val)
    B, T = a.batch, a.seq
    stream = N // B
    if stream < T + 1:
        die(f"{N} training tokens make streams of {stream} < --seq + 1 = {T + 1}")
    if M < 2:
        die(f"{M} validation tokens: nothing to predict")
    print(f"vocab {V} train_tokens {N} val_tokens {M}", flush=True)

    torch.manual_seed(a.seed)
    model = WordLM(a.cell, V, a.embed, a.hidden, a.layers, a.dropout, a.tie_weights)
    if a.vectors:
        with torch.no_grad():
            found = load_vectors(a.vectors, stoi, model.encoder.weight)
        print(f"torch_word_lm: --vectors: {found} of {V} words found", file=sys.stderr,
              flush=True)
    if a.freeze_embedding:
        model.encoder.weight.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=a.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    print(f"torch {torch.__version__} {a.cell} E={a.embed} H={a.hidden} L={a.layers} V={V} "
          f"params={sum(p.numel() for p in model.parameters())} "
          f"trainable={sum(p.numel() for p in params)}; B={B} T={T}; "
          f"{torch.get_num_threads()} threads", file=sys.stderr, flush=True)

    rows = torch.tensor(train[:B * stream], dtype=torch.long).view(B, stream)
    state, pos = None, 0
    loss_sum, loss_n = 0.0, 0
    t0 = time.perf_counter()
    eval_time = 0.0
    model.train()
    for step in range(1, a.steps + 1):
        if pos + T + 1 > stream:
            pos, state = 0, None
        x = rows[:, pos:pos + T]
        y = rows[:, pos + 1:pos + T + 1]
        opt.zero_grad(set_to_none=True)
        logits, state = model(x, state)
        loss = nn.functional.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
        loss.backward()
        state = detach(state)
        if a.clip > 0:
            nn.utils.clip_grad_norm_(params, a.clip)
        opt.step()
        pos += T
        loss_sum += loss.item()
        loss_n += 1
        if step % a.eval_every == 0 or step == a.steps:
            te = time.perf_counter()
            vl = stream_nll(model, val)
            eval_time += time.perf_counter() - te
            train_s = time.perf_counter() - t0 - eval_time
            print(f"step {step} train_loss {loss_sum / loss_n:.4f} val_loss {vl:.4f} "
                  f"val_ppl {math.exp(vl):.2f} time {train_s:.1f}", flush=True)
            loss_sum, loss_n = 0.0, 0
    print(f"total {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
