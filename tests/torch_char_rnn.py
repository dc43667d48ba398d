#!/usr/bin/python3
"""PyTorch reference for examples/char_rnn (PyTorch 1.13 from Debian).

The model is the one char_rnn's checkpoints are named after:

    embed = nn.Embedding(V, E)
    rnn   = nn.LSTM(E, H, L, batch_first=True)   (or GRU / RNN with --cell)
    head  = nn.Linear(H, V)

Modes:

  export [--cell C] [OUT_CKPT] [EVAL_TEXT]
      Build that model with a fixed seed (E=8, H=16, L=2, V = the sorted
      distinct characters of EVAL_TEXT), train it for a few hundred Adam
      steps on EVAL_TEXT so its predictions are far from uniform (the loss
      then depends on every weight and on the carried state), and write its
      state_dict to OUT_CKPT as safetensors with struct + json + numpy only.
      Then read OUT_CKPT back and print PyTorch's mean NLL of every next
      character of EVAL_TEXT read as one stream from a zero state (N-1
      predictions) as `loss <x> ppl <y>`, in float32 and (for reference)
      float64. Defaults: tests/fixtures/char_rnn_torch.safetensors and
      tests/fixtures/char_rnn_torch_eval.txt (the committed fixtures; the
      loss printed is the value test_char_rnn.sh checks).

  eval CKPT TEXT
      PyTorch's `loss <x> ppl <y>` of any checkpoint in char_rnn's format
      (one written by `char_rnn train` too: the extra state tensors are
      ignored), computed like `char_rnn eval`.

  train --data FILE [--hidden 256] [--layers 2] [--embed 64] [--batch 32]
        [--seq 64] [--lr 2e-3] [--clip 1.0] [--steps 1000] [--eval-every 200]
        [--eval-chars 20000] [--seed 1337] [--threads 2] [--log CSV]
      The batch scheme of `char_rnn train`: vocabulary = sorted distinct code
      points of FILE; the first 90% (n*9//10) is the training split; B
      streams at offsets b*(n_train//B), read in consecutive windows of T
      with the state carried and detached; when pos+T+1 > n_train//B the
      position returns to 0 and the state is zeroed. Adam(lr), global-norm
      clipping, mean cross-entropy. Every --eval-every steps (and at the
      end): mean NLL over the first --eval-chars characters of the
      validation split as one stream from a zero state, in chunks of 256
      carrying the state. Prints val_loss and the wall time.
"""
import argparse
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))


class CharRNN(nn.Module):
    def __init__(self, cell, V, E, H, L, dropout=0.0):
        super().__init__()
        self.embed = nn.Embedding(V, E)
        rnn_cls = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cell]
        self.rnn = rnn_cls(E, H, L, batch_first=True, dropout=dropout)
        self.head = nn.Linear(H, V)

    def forward(self, x, state=None):
        out, state = self.rnn(self.embed(x), state)
        return self.head(out), state


def detach(state):
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


# ---- safetensors with struct + json + numpy ----

DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16,
          "I32": np.int32, "I64": np.int64}


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    buf = b""
    for name, arr in tensors:
        arr = np.ascontiguousarray(arr, dtype=np.dtype("<f4"))
        raw = arr.tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape),
                        "data_offsets": [len(buf), len(buf) + len(raw)]}
        buf += raw
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-(8 + len(text)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        f.write(buf)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (hlen,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + hlen].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    base = 8 + hlen
    tensors = {}
    for name, info in header.items():
        a, b = info["data_offsets"]
        dt = np.dtype(DTYPES[info["dtype"]]).newbyteorder("<")
        tensors[name] = np.frombuffer(data[base + a:base + b], dtype=dt).reshape(info["shape"])
    return meta, tensors


def load_model(path, dtype=torch.float32):
    meta, tensors = read_safetensors(path)
    vocab = meta["vocab"]
    m = CharRNN(meta["cell"], len(vocab), int(meta["embed"]), int(meta["hidden"]),
                int(meta["layers"]))
    sd = {k: torch.from_numpy(np.array(v, dtype=np.float64)) for k, v in tensors.items()
          if k in m.state_dict()}
    m.load_state_dict(sd, strict=True)
    return m.to(dtype), vocab


# ---- evaluation as char_rnn does it ----

@torch.no_grad()
def stream_nll(model, ids, chunk=256):
    """Mean NLL of ids[1:] given the prefix, one stream from zero state,
    in chunks carrying the state (the same as one pass over the whole)."""
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


def read_text(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8", errors="replace")


# ---- modes ----

def cmd_export(args):
    torch.manual_seed(20240601)
    text = read_text(args.text)
    vocab = "".join(sorted(set(text)))
    stoi = {c: i for i, c in enumerate(vocab)}
    ids = [stoi[c] for c in text]
    V, E, H, L = len(vocab), 8, 16, 2
    model = CharRNN(args.cell, V, E, H, L)
    # A few hundred full-sequence Adam steps on the text itself.
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = torch.tensor(ids[:-1]).unsqueeze(0)
    y = torch.tensor(ids[1:])
    for _ in range(args.train_steps):
        opt.zero_grad()
        logits, _ = model(x)
        loss = nn.functional.cross_entropy(logits[0], y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    tensors = [(k, v.detach().numpy()) for k, v in model.state_dict().items()]
    write_safetensors(args.out, tensors, {"cell": args.cell, "hidden": str(H),
                                          "layers": str(L), "embed": str(E), "vocab": vocab})
    print(f"wrote {args.out}: V={V} E={E} H={H} L={L} cell={args.cell}; "
          f"{len(text)} chars of {args.text}")
    # Evaluate what was written, read back from the file.
    m32, _ = load_model(args.out, torch.float32)
    m64, _ = load_model(args.out, torch.float64)
    l32, l64 = stream_nll(m32, ids), stream_nll(m64, ids)
    whole = stream_nll(m32, ids, chunk=len(ids))
    print(f"loss {l32:.9f} ppl {math.exp(l32):.9f}")
    print(f"(float64: loss {l64:.9f}; float32 in one pass instead of 256-char chunks: "
          f"{whole:.9f}; uniform would be ln V = {math.log(V):.6f})")


def cmd_eval(args):
    model, vocab = load_model(args.checkpoint, torch.float64 if args.f64 else torch.float32)
    stoi = {c: i for i, c in enumerate(vocab)}
    ids = [stoi[c] for c in read_text(args.data)]
    loss = stream_nll(model, ids)
    print(f"loss {loss:.6f} ppl {math.exp(loss):.6f}")


def cmd_train(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    text = read_text(args.data)
    vocab = sorted(set(text))
    stoi = {c: i for i, c in enumerate(vocab)}
    data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
    n = len(data)
    n_train = n * 9 // 10
    B, T = args.batch, args.seq
    stream = n_train // B
    val = data[n_train:n_train + min(n - n_train, args.eval_chars)].tolist()
    V = len(vocab)
    model = CharRNN("lstm", V, args.embed, args.hidden, args.layers, args.dropout)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    nparams = sum(p.numel() for p in model.parameters())
    print(f"torch {torch.__version__} lstm H={args.hidden} L={args.layers} E={args.embed} "
          f"V={V} params={nparams}; B={B} T={T}; {n_train} train / {n - n_train} val chars; "
          f"{torch.get_num_threads()} threads", flush=True)
    # The B streams as rows: row b is data[b*stream : (b+1)*stream].
    rows = data[:B * stream].view(B, stream)
    log = open(args.log, "w") if args.log else None
    if log:
        log.write("step,train_loss,val_loss,val_ppl,elapsed_s,train_s\n")
    state, pos, smooth = None, 0, float("nan")
    t0 = time.perf_counter()
    eval_time = 0.0
    model.train()
    for step in range(1, args.steps + 1):
        if pos + T + 1 > stream:
            pos, state = 0, None
        x = rows[:, pos:pos + T]
        y = rows[:, pos + 1:pos + T + 1]
        opt.zero_grad(set_to_none=True)
        logits, state = model(x, state)
        loss = nn.functional.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
        loss.backward()
        state = detach(state)
        if args.clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        pos += T
        lv = loss.item()
        smooth = lv if math.isnan(smooth) else 0.95 * smooth + 0.05 * lv
        if step % 50 == 0:
            el = time.perf_counter() - t0
            print(f"step {step}/{args.steps} loss {smooth:.4f} "
                  f"{(step * B * T) / (el - eval_time):.0f} tok/s", flush=True)
        if args.eval_every and (step % args.eval_every == 0 or step == args.steps):
            te = time.perf_counter()
            vl = stream_nll(model, val)
            eval_time += time.perf_counter() - te
            el = time.perf_counter() - t0
            print(f"step {step} train_loss {smooth:.4f} val_loss {vl:.4f} "
                  f"val_ppl {math.exp(vl):.3f} elapsed {el:.1f}s", flush=True)
            if log:
                log.write(f"{step},{smooth:.6f},{vl:.6f},{math.exp(vl):.6f},{el:.3f},"
                          f"{el - eval_time:.3f}\n")
                log.flush()
    el = time.perf_counter() - t0
    print(f"final step {args.steps} train_loss {smooth:.4f} in {el:.1f}s "
          f"({el - eval_time:.1f}s training, {eval_time:.1f}s validation)")
    if log:
        log.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    e = sub.add_parser("export")
    e.add_argument("out", nargs="?",
                   default=os.path.join(HERE, "fixtures", "char_rnn_torch.safetensors"))
    e.add_argument("text", nargs="?",
                   default=os.path.join(HERE, "fixtures", "char_rnn_torch_eval.txt"))
    e.add_argument("--cell", default="lstm", choices=["lstm", "gru", "rnn"])
    e.add_argument("--train-steps", type=int, default=300)
    v = sub.add_parser("eval")
    v.add_argument("checkpoint")
    v.add_argument("data")
    v.add_argument("--f64", action="store_true")
    t = sub.add_parser("train")
    t.add_argument("--data", required=True)
    t.add_argument("--hidden", type=int, default=256)
    t.add_argument("--layers", type=int, default=2)
    t.add_argument("--embed", type=int, default=64)
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--seq", type=int, default=64)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--clip", type=float, default=1.0)
    t.add_argument("--dropout", type=float, default=0.0)
    t.add_argument("--steps", type=int, default=1000)
    t.add_argument("--eval-every", type=int, default=200)
    t.add_argument("--eval-chars", type=int, default=20000)
    t.add_argument("--seed", type=int, default=1337)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--log")
    args = ap.parse_args()
    {"export": cmd_export, "eval": cmd_eval, "train": cmd_train}[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
