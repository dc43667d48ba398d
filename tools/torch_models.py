#!/usr/bin/python3
"""The PyTorch modules of the programs (examples/apps), to move their models
between tensor and PyTorch (docs/pytorch.md). Needs torch and numpy; reads
and writes safetensors with struct + json (no safetensors package).

    torch_models.py import FILE [--save STATE_DICT.pt]
        FILE: what `PROGRAM export --checkpoint IN --out FILE` wrote. Build
        the program's module from FILE's metadata and load the tensors with
        load_state_dict(strict=True); print the module (and torch.save its
        state_dict to --save).
    torch_models.py export STATE_DICT.pt LIKE OUT
        The reverse: the tensors of a torch.save'd state_dict of the module
        of LIKE (a file the program exported: it gives the metadata, the
        vocabularies and sizes) to OUT, a file the program loads (every
        program reads model-only files: `PROGRAM eval --checkpoint OUT`).
    torch_models.py eval FILE DATA
        The figure the program's `eval --checkpoint FILE --data DATA` prints,
        computed by the module in PyTorch, as `loss X` (char_rnn, word_lm:
        mean NLL of the text read as one stream; classify: mean
        cross-entropy of every example of the directory DATA (eval --split
        all); tagger: mean cross-entropy of the held-out sentences' tokens;
        translate: mean cross-entropy of the target tokens of the pairs
        file DATA; forecast: the "mean" rnn_mse of the series DATA; caption:
        eval's loss on the scenes DATA that `caption scenes --out DATA
        [--val-scenes N]` wrote, as `eval --val-scenes N`).
    torch_models.py perturb FILE OUT SEED DATA
        Add N(0, 0.01) noise (torch.manual_seed(SEED)) to every parameter
        of FILE's module, write the module to OUT (export_model) and print
        its loss on DATA as `eval` does (tests/test_export_torch.sh).

From Python: `module, meta = import_model(path)`, `export_model(module,
meta, path)`, `eval_loss(module, meta, data)`.

The modules (parameter names as the programs' checkpoints):
  char_rnn  tests/torch_char_rnn.py CharRNN: embed, rnn, head
  word_lm   tests/torch_word_lm.py WordLM (PyTorch's word_language_model):
            encoder, rnn, decoder (tied: decoder.weight is encoder.weight;
            the file holds it once, under encoder.weight, and import
            ties the module before loading)
  classify  tests/torch_classify.py Classifier: embed, rnn, head (plain
            stacked layers: --residual, --layer-norm, --ln-gates refused)
  tagger    tests/torch_tagger.py Tagger: embed, rnn (LSTM, bidirectional
            unless trained --unidirectional), head
  forecast  Forecaster: rnn, head
  translate Seq2seq (tests/torch_translate.py's): src_embed, tgt_embed,
            encoder, bridge(_c), decoder.l (cells), attn.*, combine, out
  caption   Captioner: encoder (Conv2d/ReLU/MaxPool2d x 3,
            AdaptiveAvgPool2d), init_h, init_c, embed, decoder (LSTMCell),
            out, and with attention attn.* (tests/torch_translate.py's
            Attention over the last feature map's 64 positions)
"""
import argparse
import os
import sys
import types

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

TESTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests")
sys.path.insert(0, TESTS)
import torch_char_rnn  # noqa: E402
import torch_classify  # noqa: E402
import torch_tagger  # noqa: E402
import torch_translate  # noqa: E402
import torch_word_lm  # noqa: E402
from safetensors_io import write_safetensors  # noqa: E402
from torch_char_rnn import read_safetensors  # noqa: E402


def cell_module(cell):
    return {"gru": nn.GRU, "lstm": nn.LSTM, "rnn": nn.RNN}[cell]


class Forecaster(nn.Module):
    """examples/apps/forecast.c: rnn(F inputs per step, H, L) -> head
    Linear(H, K); F and K are read from the file's tensors."""

    def __init__(self, cell, F_in, H, L, K):
        super().__init__()
        self.rnn = cell_module(cell)(F_in, H, L, batch_first=True)
        self.head = nn.Linear(H, K)

    def forward(self, x, state=None):
        """(head(the last layer's last h) [B, K], the state) of x [B, T, F]
        from state (None: zeros)."""
        _, st = self.rnn(x, state)
        return self.head((st[0] if isinstance(st, tuple) else st)[-1]), st


class Seq2seq(torch_translate.Seq2seq):
    """examples/apps/translate.c (tn_seq2seq): tests/torch_translate.py's
    model, its options from the file's metadata."""

    def __init__(self, meta, SV, TV):
        # the library's s2s.* keys ("translate 2"), or the program's ("translate 1")
        key = (lambda k: "s2s." + k) if "s2s.format" in meta else (lambda k: k)
        E, H, L = (int(meta[key(k)]) for k in ("embed", "hidden", "layers"))
        super().__init__(meta[key("cell")], SV, TV, E, H, L, meta[key("bidirectional")] == "1",
                         meta[key("attention")])


class Captioner(nn.Module):
    """examples/apps/caption.c: CNN encoder -> LSTMCell decoder; with the
    metadata's attention (bahdanau, luong, general; "none" or no key: none)
    soft attention over the last convolution's activations before the pool
    (the annotations, [B, 64, 4C]): at each step the query h_{t-1}, the
    context sum_l w_l a_l, the cell's input [embed(word); context]
    (tests/torch_translate.py's Attention, tn_attention's math, A = H)."""

    def __init__(self, meta, V):
        super().__init__()
        c, E, H, g = (int(meta[k]) for k in ("channels", "embed", "hidden", "grid"))
        self.attention = meta.get("attention", "none")
        self.encoder = nn.Sequential(
            nn.Conv2d(3, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c, 2 * c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * c, 4 * c, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(g))
        self.init_h = nn.Linear(4 * c * g * g, H)
        self.init_c = nn.Linear(4 * c * g * g, H)
        self.embed = nn.Embedding(V, E)
        with_attn = self.attention != "none"
        self.decoder = nn.LSTMCell(E + (4 * c if with_attn else 0), H)
        self.out = nn.Linear(H, V)
        if with_attn:
            self.attn = torch_translate.Attention(self.attention, H, 4 * c)

    def loss(self, images, captions, sos=1, pad=0):
        """Sum of the cross-entropies of captions [B, T] (word ids, <eos>,
        <pad>) given images [B, 3, 32, 32], teacher forced (<sos> first),
        and the number of targets (not <pad>)."""
        fm = self.encoder[:-1](images)  # [B, 4C, 8, 8], after the last ReLU
        f = self.encoder[-1](fm).flatten(1)
        h, c = self.init_h(f), self.init_c(f)
        x = torch.cat([torch.full_like(captions[:, :1], sos), captions[:, :-1]], 1)
        if self.attention != "none":
            ann = fm.flatten(2).transpose(1, 2)  # [B, 64, 4C], positions row by row
            every = torch.full((ann.shape[0],), ann.shape[1])
        hs = []
        for t in range(captions.shape[1]):
            xt = self.embed(x[:, t])
            if self.attention != "none":
                ctx, _ = self.attn(h, ann, every)
                xt = torch.cat([xt, ctx], 1)
            h, c = self.decoder(xt, (h, c))
            hs.append(h)
        logits = self.out(torch.stack(hs, 1))
        return (F.cross_entropy(logits.reshape(-1, logits.shape[2]), captions.reshape(-1),
                                ignore_index=pad, reduction="sum"),
                int((captions != pad).sum()))


def lines(s):
    return [w for w in s.split("\n") if w]


def build(meta, tensors):
    """The module a file's metadata (and, where the metadata has no size,
    its tensors' shapes) describes."""
    fmt = meta.get("format", "")
    if fmt == "char_rnn 1":
        return torch_char_rnn.CharRNN(meta["cell"], len(meta["vocab"]), int(meta["embed"]),
                                      int(meta["hidden"]), int(meta["layers"]))
    if fmt == "word_lm 1":
        return torch_word_lm.WordLM(meta["cell"], len(meta["vocab"].split("\n")),
                                    int(meta["embed"]), int(meta["hidden"]), int(meta["layers"]),
                                    float(meta.get("dropout", 0)), meta["tie_weights"] == "1")
    if fmt == "classify 1":
        if any(meta.get(k) == "1" for k in ("residual", "layer_norm", "ln_gates")):
            sys.exit("torch_models: classify with --residual, --layer-norm or --ln-gates has no "
                     "module here")
        a = types.SimpleNamespace(embed=int(meta["embed"]), hidden=int(meta["hidden"]),
                                  layers=int(meta["layers"]), cell=meta["cell"],
                                  bidirectional=meta["bidirectional"] == "1")
        return torch_classify.Classifier(2 + len(meta["chars"]), len(lines(meta["labels"])), a)
    if fmt == "tagger 1":
        return torch_tagger.Tagger(2 + len(lines(meta["words"])), int(meta["embed"]),
                                   int(meta["hidden"]), len(lines(meta["tags"])),
                                   meta["bidirectional"] == "1")
    if fmt == "forecast 1":
        return Forecaster(meta["cell"], tensors["rnn.weight_ih_l0"].shape[1], int(meta["hidden"]),
                          int(meta["layers"]), tensors["head.weight"].shape[0])
    if fmt in ("translate 1", "translate 2"):
        return Seq2seq(meta, len(lines(meta["src_vocab"])), len(lines(meta["tgt_vocab"])))
    if fmt == "caption 1":
        return Captioner(meta, len(lines(meta["words"])))
    sys.exit(f"torch_models: unknown format {fmt!r} (not a file a program exported?)")


def import_model(path):
    """(module, metadata) of an exported file, loaded with strict=True."""
    meta, tensors = read_safetensors(path)
    m = build(meta, tensors)
    sd = {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in tensors.items()}
    if meta.get("lm.tie") == "1":  # saved once: the module's two names of one tensor
        sd[meta["lm.head_name"] + ".weight"] = sd[meta["lm.embed_name"] + ".weight"]
    m.load_state_dict(sd, strict=True)
    return m.float(), meta


def export_model(module, meta, path):
    """module's state_dict with meta (a file's metadata) to path, float32;
    a tied head weight once, as tn_lm_save writes it."""
    sd = module.state_dict()
    if meta.get("lm.tie") == "1":
        sd.pop(meta["lm.head_name"] + ".weight")
    tensors = [(k, "F32", tuple(v.shape), v.detach().cpu().float().contiguous().numpy()
                .astype("<f4").tobytes()) for k, v in sd.items()]
    write_safetensors(path, tensors, meta)


# ---- the programs' eval losses ----

def eval_loss(m, meta, data):
    fmt = meta["format"]
    if fmt == "char_rnn 1":
        stoi = {c: i for i, c in enumerate(meta["vocab"])}
        return torch_char_rnn.stream_nll(m, [stoi[c] for c in torch_char_rnn.read_text(data)])
    if fmt == "word_lm 1":
        stoi = {w.encode(): i for i, w in enumerate(meta["vocab"].split("\n"))}
        return torch_word_lm.stream_nll(m, torch_word_lm.encode(torch_word_lm.read_lines(data),
                                                                stoi))
    if fmt == "classify 1":
        labels = lines(meta["labels"])
        names, examples, y = torch_classify.read_dir(data)
        y = [labels.index(names[c]) for c in y]
        cp = {ord(c): i + 2 for i, c in enumerate(meta["chars"])}
        loss, _, _ = torch_classify.evaluate(m, examples, y, list(range(len(examples))),
                                             len(labels), lambda c: cp.get(c, 1))
        return loss
    if fmt == "tagger 1":
        sents = torch_tagger.read_data(data)
        va, _ = torch_tagger.split(len(sents))
        wid = {w: k + 2 for k, w in enumerate(lines(meta["words"]))}
        tid = {t: k for k, t in enumerate(lines(meta["tags"]))}
        m.eval()
        loss, n = 0.0, 0
        with torch.no_grad():
            for i0 in range(0, len(va), 128):
                ids, tg, lens = torch_tagger.make_batch(sents, va[i0:i0 + 128], wid, tid)
                loss += F.cross_entropy(m(ids, lens), tg, ignore_index=-1,
                                        reduction="sum").item()
                n += int(lens.sum())
        return loss / n
    if fmt in ("translate 1", "translate 2"):
        return translate_loss(m, meta, data)
    if fmt == "forecast 1":
        return forecast_mse(m, meta, data)
    if fmt == "caption 1":
        # DATA: `caption scenes --out DATA [--val-scenes N]`, eval's scenes
        smeta, t = read_safetensors(data)
        if smeta.get("format") != "caption scenes 1" or smeta.get("words") != meta["words"]:
            sys.exit(f"torch_models: {data}: not caption scenes of this model's words")
        m.eval()
        with torch.no_grad():
            loss, n = m.loss(torch.from_numpy(np.array(t["images"], dtype=np.float32)),
                             torch.from_numpy(np.array(t["captions"])).long())
        return loss.item() / n
    sys.exit(f"torch_models: no eval for {fmt}")


FORECAST_AR = 16  # forecast eval's default --ar: the first origin is at least this


def forecast_mse(m, meta, data):
    """forecast eval --data DATA's "mean" rnn_mse (examples/apps/forecast.c
    task_prepare, forecast_rnn, score): DATA one number a line (a first
    line that is not one: a header); the last val_fraction held out; from
    every origin o with its horizon K of targets held out (o >= the
    training part's end, the window, FORECAST_AR), the window of W values
    before o normalised by the file's mean and std, each step's inputs z
    and sin, cos(2 pi (t mod P) / P) per period; mode ar rolls out K steps
    (each prediction the next input, the state carried on), direct gives
    the K values at once; the squared errors in the series' units, mean
    over the origins per step, then over the K steps."""
    import math
    vals = []
    for i, line in enumerate(open(data).read().split("\n")):
        if line.strip():
            try:
                vals.append(float(line.strip().strip('"')))
            except ValueError:
                if i or vals:
                    raise
    mean, std, vf = (float(meta[k]) for k in ("mean", "std", "val_fraction"))
    W, K = int(meta["window"]), int(meta["horizon"])
    periods = [float(p) for p in meta["periods"].split(",") if p]
    n = len(vals)
    first = max(n - math.floor(vf * n), W, FORECAST_AR)
    orgs = range(first, n - K + 1)
    z = [(v - mean) / std for v in vals]

    def inputs(v, t):  # fill_input: float32 of the doubles
        row = [v]
        for P in periods:
            a = 2 * math.pi * math.fmod(t, P) / P
            row += [math.sin(a), math.cos(a)]
        return row
    m.eval()
    with torch.no_grad():
        x = torch.tensor([[inputs(z[t], t) for t in range(o - W, o)] for o in orgs],
                         dtype=torch.float32)
        p, st = m(x)
        fc = [p]
        for k in range(1, K if meta["mode"] == "ar" else 1):
            x1 = torch.tensor([[inputs(float(y), o + k - 1)] for y, o in zip(fc[-1][:, 0], orgs)],
                              dtype=torch.float32)
            p, st = m(x1, st)
            fc.append(p)
        fc = torch.cat(fc, 1).double()  # [origins, K]
    truth = torch.tensor([vals[o:o + K] for o in orgs], dtype=torch.float64)
    return float(((mean + std * fc - truth) ** 2).mean(0).mean())


TRANSLATE_MAX_TOK = 64  # examples/common/translate_model.h MAX_TOK


def translate_loss(m, meta, data):
    """translate eval's loss (examples/apps/translate.c cmd_eval): every
    pair of DATA in order with at most MAX_TOK - 1 tokens a side, unknown
    words <unk>, batches of 64, teacher forced; the mean cross-entropy of
    the target tokens and <eos> (tests/torch_translate.py evaluate)."""
    sv, tv = ({w: i for i, w in enumerate(lines(meta[k]))} for k in ("src_vocab", "tgt_vocab"))
    pairs = torch_translate.read_pairs(data, TRANSLATE_MAX_TOK - 1)
    # (evaluate's BLEU unused: its greedy decoding cut at one token)
    return torch_translate.evaluate(m, pairs, sv, tv, 1, B=64)[0]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for cmd, args in (("import", ["file"]), ("export", ["state_dict", "like", "out"]),
                      ("eval", ["file", "data"]), ("perturb", ["file", "out", "seed", "data"])):
        sp = sub.add_parser(cmd)
        for arg in args:
            sp.add_argument(arg, type=int if arg == "seed" else str)
        if cmd == "import":
            sp.add_argument("--save")
    a = p.parse_args()
    torch.set_num_threads(1)
    if a.cmd == "import":
        m, meta = import_model(a.file)
        print(m)
        print(f"{a.file}: {meta['format']}, {sum(t.numel() for t in m.parameters())} "
              "parameters, loaded with strict=True")
        if a.save:
            torch.save(m.state_dict(), a.save)
    elif a.cmd == "export":
        m, meta = import_model(a.like)
        m.load_state_dict(torch.load(a.state_dict), strict=True)
        export_model(m, meta, a.out)
        print(f"wrote {a.out}")
    elif a.cmd == "eval":
        m, meta = import_model(a.file)
        print(f"loss {eval_loss(m, meta, a.data):.9f}")
    else:
        m, meta = import_model(a.file)
        torch.manual_seed(a.seed)
        with torch.no_grad():
            for t in m.parameters():
                t.add_(0.01 * torch.randn_like(t))
        export_model(m, meta, a.out)
        print(f"loss {eval_loss(m, meta, a.data):.9f}")


if __name__ == "__main__":
    main()
