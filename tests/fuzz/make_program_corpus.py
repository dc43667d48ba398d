#!/usr/bin/env python3
"""Writes the seed corpora of the programs' fuzz targets (committed; rerun
to regenerate):  tests/fuzz/make_program_corpus.py BUILD_DIR
(BUILD_DIR: a build with the examples, whose translate and word_lm train
the small base checkpoints).

corpus_translate (fuzz_translate), corpus_word_lm (fuzz_word_lm): small
checkpoints written by the programs (translate: GRU + Bahdanau, LSTM +
general attention bidirectional 2 layers, with the s2s.* keys, and one
rewritten with the older "translate 1" keys, the base of the crafted cases
of those keys; word_lm: LSTM, GRU 2 layers tied
and frozen under AdamW), the same with the model's tensors only (as
PyTorch writes them), and crafted variants: the cases of
tests/test_translate.sh and tests/test_word_lm.sh (sizes that do not match
the tensors, a step or data position no run could write, a NaN weight) and
broken metadata (a repeated, empty or missing vocabulary word, unknown
cell or attention, sizes out of range, a carried state of batch 0).

corpus_vectors (fuzz_word_vectors, vocabulary <unk> <eos> the cat sees
moon ".", embedding size 4): GloVe and word2vec text, and the cases of
tests/test_word_lm.sh (a NUL byte in a line, vectors of the wrong size)
with values that are not finite floats, blank lines, CRLF, a repeated
word."""
import json
import os
import random
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def read_st(path):
    with open(path, "rb") as f:
        b = f.read()
    n = struct.unpack("<Q", b[:8])[0]
    return json.loads(b[8:8 + n]), b[8 + n:]


def write_st(path, hdr, data):
    h = json.dumps(hdr, separators=(",", ":"), ensure_ascii=False).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def variant(base, name, meta=None, drop=None, shape=None, nan=None):
    """base (header, data) with metadata keys set (None: removed), tensors
    whose names contain `drop` removed (data repacked), a tensor's shape
    replaced (its data cut or, past the end, extended with zeros), or a NaN
    written over a tensor's first float."""
    hdr, data = json.loads(json.dumps(base[0])), bytearray(base[1])
    for k, v in (meta or {}).items():
        if v is None:
            hdr["__metadata__"].pop(k, None)
        else:
            hdr["__metadata__"][k] = v
    if shape:
        hdr[shape[0]]["shape"] = shape[1]
    # repack: dropped tensors out, a reshaped one's bytes cut or extended
    # with zeros to its new size (4-byte floats), no gaps
    out = bytearray()
    for k in sorted((k for k in hdr if k != "__metadata__"),
                    key=lambda k: hdr[k]["data_offsets"][0]):
        if drop and drop in k:
            del hdr[k]
            continue
        a, b = hdr[k]["data_offsets"]
        size = 4
        for d in hdr[k]["shape"]:
            size *= d
        chunk = data[a:min(b, a + size)]
        hdr[k]["data_offsets"] = [len(out), len(out) + size]
        out += chunk + bytes(size - len(chunk))
    data = out
    if nan:
        a = hdr[nan]["data_offsets"][0]
        data[a:a + 4] = struct.pack("<f", float("nan"))
    write_st(name, hdr, bytes(data))


def run(*cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def programs(build, tmp):
    random.seed(1)
    src, tgt = ["un", "deux", "trois"], ["one", "two", "three"]
    with open(os.path.join(tmp, "pairs.txt"), "w") as f:
        for _ in range(60):
            k, j = random.randrange(3), random.randrange(3)
            f.write(f"{src[k]} {src[j]} .\t{tgt[k]} {tgt[j]} .\n")
    with open(os.path.join(tmp, "text.txt"), "w") as f:
        for _ in range(60):
            f.write(" ".join(random.choice(["the", "cat", "sees", "moon"]) for _ in range(4)) + " .\n")
    tr = os.path.join(build, "examples", "translate")
    wl = os.path.join(build, "examples", "word_lm")
    small = ["--hidden", "2", "--embed", "2", "--steps", "1", "--eval-every", "0", "--threads", "1"]
    run(tr, "train", "--data", f"{tmp}/pairs.txt", "--batch", "4", *small,
        "--checkpoint", f"{tmp}/tr.st")
    run(tr, "train", "--data", f"{tmp}/pairs.txt", "--batch", "4", *small, "--cell", "lstm",
        "--attention", "general", "--bidirectional", "--layers", "2",
        "--checkpoint", f"{tmp}/tr2.st")
    run(wl, "train", "--data", f"{tmp}/text.txt", "--batch", "2", "--seq", "3", *small,
        "--checkpoint", f"{tmp}/wl.st")
    run(wl, "train", "--data", f"{tmp}/text.txt", "--batch", "2", "--seq", "3", *small,
        "--cell", "gru", "--layers", "2", "--tie-weights", "--freeze-embedding",
        "--weight-decay", "0.01", "--checkpoint", f"{tmp}/wl2.st")

    os.makedirs(os.path.join(HERE, "corpus_translate"), exist_ok=True)
    os.chdir(os.path.join(HERE, "corpus_translate"))
    t, t2 = read_st(f"{tmp}/tr.st"), read_st(f"{tmp}/tr2.st")
    sv = t[0]["__metadata__"]["src_vocab"]
    variant(t, "valid")
    variant(t2, "valid_lstm_bi_2layers")
    variant(t, "model_only", drop=".exp_avg")
    # the same model as a "translate 1" file (options in program keys)
    old = {"format": "translate 1"}
    for k in ("cell", "attention", "bidirectional", "hidden", "embed", "layers", "dropout"):
        old[k] = t[0]["__metadata__"]["s2s." + k]
    old.update({k: None for k in t[0]["__metadata__"] if k.startswith("s2s.")})
    variant(t, "valid_translate1", meta=old)
    t1 = read_st("valid_translate1")
    # tests/test_translate.sh: 6 (step), 7 (NaN output bias), 8 (sizes)
    for k, v in [("step", "-1"), ("step", "9223372036854775807"), ("s2s.hidden", "1024"),
                 ("s2s.embed", "1024"), ("s2s.layers", "3"), ("s2s.src_vocab", "900000")]:
        variant(t, f"{k}_{v}", meta={k: v})
    variant(t, "nan_out_bias", nan="out.bias")
    for name, meta in [
            ("s2s_format_2", {"s2s.format": "2"}), ("s2s_cell_bad", {"s2s.cell": "rnn"}),
            ("s2s_attention_bad", {"s2s.attention": "dot"}), ("s2s_hidden_0", {"s2s.hidden": "0"}),
            ("s2s_prefix", {"s2s.prefix": "model"}), ("s2s_eos_pad", {"s2s.eos": "0"}),
            ("s2s_dropout_nan", {"s2s.dropout": "nan"}), ("s2s_missing", {"s2s.layers": None})]:
        variant(t, name, meta=meta)
    t = t1  # the crafted cases of the older keys
    for name, meta in [
            ("hidden_0", {"hidden": "0"}), ("hidden_huge", {"hidden": "4611686018427387904"}),
            ("hidden_1024", {"hidden": "1024"}), ("embed_1024", {"embed": "1024"}),
            ("layers_3", {"layers": "3"}),
            ("layers_0", {"layers": "0"}), ("max_len_64", {"max_len": "64"}),
            ("max_len_neg", {"max_len": "-5"}), ("cell_rnn", {"cell": "rnn"}),
            ("cell_missing", {"cell": None}), ("attention_bad", {"attention": "dot"}),
            ("attention_none", {"attention": "none"}),
            ("luong_bidirectional", {"attention": "luong", "bidirectional": "1"}),
            ("src_vocab_missing", {"src_vocab": None}), ("src_vocab_empty", {"src_vocab": ""}),
            ("src_vocab_repeat", {"src_vocab": sv + "un\n"}),
            ("src_vocab_specials", {"src_vocab": sv.replace("<sos>", "<SOS>")}),
            ("src_vocab_blank_lines", {"src_vocab": sv.replace("\n", "\n\n")}),
            ("tgt_vocab_short", {"tgt_vocab": "<pad>\n<sos>\n<eos>\n"}),
            ("dropout_nan", {"dropout": "nan"}), ("hidden_not_int", {"hidden": "2x"})]:
        variant(t, name, meta=meta)
    variant(t, "exp_avg_partial", drop="out.weight.exp_avg_sq")
    variant(t, "out_weight_3d", shape=("out.weight", [1, 1, 2]))

    os.makedirs(os.path.join(HERE, "corpus_word_lm"), exist_ok=True)
    os.chdir(os.path.join(HERE, "corpus_word_lm"))
    w, w2 = read_st(f"{tmp}/wl.st"), read_st(f"{tmp}/wl2.st")
    voc = w[0]["__metadata__"]["vocab"]
    variant(w, "valid")
    variant(w2, "valid_gru_tied_frozen")
    variant(w, "model_only", drop="exp_avg")  # the optimizer's tensors, then the state's
    variant(read_st("model_only"), "model_only", drop="state.")
    # tests/test_word_lm.sh: 8 (data_pos, step), 9 (NaN decoder), 11 (sizes)
    for k, v in [("data_pos", "-1"), ("data_pos", "9223372036854775807"), ("step", "-1"),
                 ("step", "9223372036854775807"), ("hidden", "2048"), ("embed", "2048"),
                 ("layers", "3")]:
        variant(w, f"{k}_{v}", meta={k: v})
    variant(w, "nan_decoder_weight", nan="decoder.weight")
    variant(w, "nan_decoder_bias", nan="decoder.bias")
    for name, meta in [
            ("format_bad", {"format": "word_lm 2"}), ("format_char_rnn", {"format": "char_rnn 1"}),
            ("cell_bad", {"cell": "transformer"}), ("hidden_0", {"hidden": "0"}),
            ("hidden_huge", {"hidden": "16385"}), ("layers_0", {"layers": "0"}),
            ("vocab_missing", {"vocab": None}), ("vocab_empty", {"vocab": ""}),
            ("vocab_repeat", {"vocab": voc + "\nthe"}),
            ("vocab_empty_word", {"vocab": voc.replace("\n", "\n\n", 1)}),
            ("vocab_trailing_newline", {"vocab": voc + "\n"}),
            ("vocab_no_unk", {"vocab": voc.replace("<unk>", "<UNK>")}),
            ("vocab_one_word", {"vocab": "<unk>"}),
            ("tie_weights", {"tie_weights": "1"}), ("freeze", {"freeze_embedding": "1"}),
            ("dropout_nan", {"dropout": "nan"}), ("dropout_1", {"dropout": "1"})]:
        variant(w, name, meta=meta)
    variant(w, "state_batch_0", shape=("state.h", [1, 0, 2]))
    variant(w, "state_2d", shape=("state.h", [2, 2]))
    variant(w, "no_exp_avg_sq", drop="exp_avg_sq")


def vectors():
    os.makedirs(os.path.join(HERE, "corpus_vectors"), exist_ok=True)
    os.chdir(os.path.join(HERE, "corpus_vectors"))
    files = {
        "glove": b"the 0.1 0.2 0.3 0.4\ncat -1 2 -3e-2 4.5\nunknownword 1 1 1 1\n. 0 0 0 0\n",
        "word2vec": b"3 4\nthe 0.1 0.2 0.3 0.4\nmoon 1 2 3 4\nsees 5 6 7 8\n",
        "no_final_newline": b"the 1 2 3 4\ncat 1 2 3 4",
        "crlf": b"the 1 2 3 4\r\ncat 5 6 7 8\r\n",
        "blank_lines": b"\n\nthe 1 2 3 4\n   \n\t\ncat 1 2 3 4\n",
        "repeated_word": b"the 1 2 3 4\nthe 5 6 7 8\n",
        # tests/test_word_lm.sh 6 and 10: a NUL byte, vectors of the wrong size
        "nul_byte": b"the 0.5 0.5 0.5 0.5\0 junk\n",
        "short": b"the 1 2 3\n",
        "long": b"the 1 2 3 4 5\n",
        "float_overflow": b"the 1e39 0 0 0\n",
        "nan": b"the nan 0 0 0\n",
        "inf": b"the 1 -inf 0 0\n",
        "hex_float": b"the 0x1p-3 0X.8 -0x10 1e-45\n",
        "not_a_number": b"the 1 2 3 four\n",
        "header_late": b"the 1 2 3 4\n3 4\n",
        "header_like_float": b"3 4.0\nthe 1 2 3 4\n",
        "number_word": b"42 1 2 3 4\n",
        "empty": b"",
        "only_word": b"the\n",
        "tabs": b"the\t1\t2\t3\t4\n",
    }
    for name, data in files.items():
        with open(name, "wb") as f:
            f.write(data)


if __name__ == "__main__":
    vectors()
    if len(sys.argv) > 1:
        with tempfile.TemporaryDirectory() as tmp:
            programs(os.path.abspath(sys.argv[1]), tmp)
    else:
        print("corpus_vectors written; give a build directory for corpus_translate and "
              "corpus_word_lm", file=sys.stderr)
