#!/usr/bin/env python3
"""Write tests/fixtures/optim.bin: PyTorch reference values for test_optim.c.

Needs PyTorch (1.13 from Debian is what the committed file came from); CI
only reads the committed file. Run from anywhere:

    /usr/bin/python3 tests/gen_optim_fixtures.py

Everything is float64. Contents (TNFX format, see tests/fixture_io.py):

  p0.w [2,3], p0.b [4]          initial parameters "w" and "b"
  grads.w [5,2,3], grads.b [5,4] the gradient given at each of 5 steps
  <cfg>.hyper                   the optimizer's options, layout by kind:
      sgd      lr, momentum, dampening, weight_decay, nesterov
      adagrad  lr, lr_decay, weight_decay, initial_accumulator_value, eps
      rmsprop  lr, alpha, eps, weight_decay, momentum, centered
      adam(w)  lr, beta1, beta2, eps, weight_decay, amsgrad
  <cfg>.w [5,2,3], <cfg>.b [5,4] parameters after each step
  <cfg>.state.<param>.<key>     the optimizer state after the last step
  defaults.<kind>               PyTorch's default options (same layouts;
                                SGD has no default lr in 1.13: stored as -1)
  clip.g.w, clip.g.b            gradients before clipping
  clip.max_norm [3]             three max_norm values (clip, no clip, and
                                just above the norm: inside the 1e-6 margin)
  clip.<k>.norm, clip.<k>.w, clip.<k>.b   returned norm and clipped grads
  clipv.value, clipv.w, clipv.b clip_grad_value_ result
  lr.<sched>.args, lr.<sched>   schedule arguments and the lr in effect at
                                steps 0..N-1, from PyTorch's schedulers
"""
import inspect
import math
import os
import sys
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_io import write_fixture  # noqa: E402

torch.set_default_dtype(torch.float64)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "optim.bin")
STEPS = 5

g = torch.Generator().manual_seed(1234)
P0 = {"w": torch.randn(2, 3, generator=g), "b": torch.randn(4, generator=g)}
# Gradient scales vary by step so that AMSGrad's running maximum matters.
SCALE = [2.0, 0.1, 1.0, 0.05, 0.5]
GRADS = {k: torch.stack([SCALE[s] * torch.randn(v.shape, generator=g) for s in range(STEPS)])
         for k, v in P0.items()}

CONFIGS = [
    ("sgd_plain", "sgd", dict(lr=0.1)),
    ("sgd_nesterov", "sgd", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("sgd_dampening", "sgd", dict(lr=0.05, momentum=0.8, dampening=0.3)),
    ("adagrad", "adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.02,
                                initial_accumulator_value=0.1, eps=1e-10)),
    ("rmsprop_plain", "rmsprop", dict()),
    ("rmsprop_centered", "rmsprop", dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.01,
                                         momentum=0.5, centered=True)),
    ("adam", "adam", dict(lr=0.01)),
    ("adam_amsgrad", "adam", dict(lr=0.02, betas=(0.8, 0.99), weight_decay=0.05, amsgrad=True)),
    ("adamw", "adamw", dict(lr=0.01)),
]
CLASSES = {"sgd": torch.optim.SGD, "adagrad": torch.optim.Adagrad,
           "rmsprop": torch.optim.RMSprop, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
LAYOUT = {
    "sgd": ["lr", "momentum", "dampening", "weight_decay", "nesterov"],
    "adagrad": ["lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"],
    "rmsprop": ["lr", "alpha", "eps", "weight_decay", "momentum", "centered"],
    "adam": ["lr", "beta1", "beta2", "eps", "weight_decay", "amsgrad"],
    "adamw": ["lr", "beta1", "beta2", "eps", "weight_decay", "amsgrad"],
}


def hyper(kind, opts):
    """Options as a vector in LAYOUT order (betas split; bools as 0/1)."""
    o = dict(opts)
    if "betas" in o:
        o["beta1"], o["beta2"] = o.pop("betas")
    return [float(o[k]) for k in LAYOUT[kind]]


def defaults(kind):
    """The constructor's default options."""
    sig = inspect.signature(CLASSES[kind].__init__).parameters
    o = {}
    for k in LAYOUT[kind]:
        name = "betas" if k in ("beta1", "beta2") else k
        d = sig[name].default
        if name == "betas":
            d = d[0] if k == "beta1" else d[1]
        o[k] = d if isinstance(d, (bool, int, float)) else -1.0  # lr=required
    return o


def run(kind, opts):
    params = {k: v.clone().requires_grad_(True) for k, v in P0.items()}
    full = defaults(kind)
    full.update({k: v for k, v in opts.items() if k != "betas"})
    if "betas" in opts:
        full["beta1"], full["beta2"] = opts["betas"]
    o = dict(opts)
    o["foreach"] = False  # the single-tensor code path (the one documented)
    opt = CLASSES[kind](list(params.values()), **o)
    hist = {k: [] for k in params}
    for s in range(STEPS):
        for k, p in params.items():
            p.grad = GRADS[k][s].clone()
        opt.step()
        for k, p in params.items():
            hist[k].append(p.detach().clone())
    state = {}
    for k, p in params.items():
        for key, val in opt.state[p].items():
            if key != "step" and val is not None:
                state["%s.%s" % (k, key)] = val
    return full, {k: torch.stack(v) for k, v in hist.items()}, state


def schedule_lrs(make, n):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    sched = make(opt)
    lrs = []
    for _ in range(n):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def main():
    warnings.simplefilter("ignore")
    out = {"p0.w": P0["w"], "p0.b": P0["b"], "grads.w": GRADS["w"], "grads.b": GRADS["b"]}
    for kind in CLASSES:
        d = defaults(kind)
        out["defaults." + kind] = [float(d[k]) for k in LAYOUT[kind]]
    for name, kind, opts in CONFIGS:
        full, hist, state = run(kind, opts)
        out[name + ".hyper"] = [float(full[k]) for k in LAYOUT[kind]]
        out[name + ".w"] = hist["w"]
        out[name + ".b"] = hist["b"]
        for k, v in state.items():
            out["%s.state.%s" % (name, k)] = v

    # clip_grad_norm_ and clip_grad_value_
    gw, gb = torch.randn(2, 3, generator=g), torch.randn(4, generator=g)
    norm = math.sqrt(float((gw ** 2).sum() + (gb ** 2).sum()))
    max_norms = [0.5, 100.0, norm + 5e-7]
    out["clip.g.w"], out["clip.g.b"], out["clip.max_norm"] = gw, gb, max_norms
    for k, mn in enumerate(max_norms):
        ps = [gw.clone().requires_grad_(True), gb.clone().requires_grad_(True)]
        for p, gr in zip(ps, (gw, gb)):
            p.grad = gr.clone()
        n = torch.nn.utils.clip_grad_norm_(ps, mn)
        out["clip.%d.norm" % k] = float(n)
        out["clip.%d.w" % k], out["clip.%d.b" % k] = ps[0].grad, ps[1].grad
    ps = [gw.clone().requires_grad_(True), gb.clone().requires_grad_(True)]
    for p, gr in zip(ps, (gw, gb)):
        p.grad = gr.clone()
    torch.nn.utils.clip_grad_value_(ps, 0.3)
    out["clipv.value"], out["clipv.w"], out["clipv.b"] = 0.3, ps[0].grad, ps[1].grad

    # schedules (base lr 0.1), as the lr in effect before each optimizer step
    S = torch.optim.lr_scheduler
    out["lr.step.args"] = [0.1, 3, 0.3]  # base, step_size, gamma
    out["lr.step"] = schedule_lrs(lambda o: S.StepLR(o, 3, 0.3), 12)
    out["lr.cosine.args"] = [0.1, 10, 0.001]  # base, T_max, eta_min
    out["lr.cosine"] = schedule_lrs(lambda o: S.CosineAnnealingLR(o, 10, 0.001), 25)
    out["lr.warmup.args"] = [0.1, 5]  # base, warmup
    out["lr.warmup"] = schedule_lrs(lambda o: S.LinearLR(o, 1 / 5, 1.0, 4), 10)
    out["lr.warmup_cosine.args"] = [0.1, 4, 14, 0.001]  # base, warmup, total, eta_min
    out["lr.warmup_cosine"] = schedule_lrs(
        lambda o: S.SequentialLR(o, [S.LinearLR(o, 1 / 4, 1.0, 3),
                                     S.CosineAnnealingLR(o, 10, 0.001)], [4]), 14)
    # The recursive forms PyTorch steps with agree with the closed forms the
    # C functions implement (checked here so a mismatch is PyTorch's).
    for e, lr in enumerate(out["lr.cosine"]):
        closed = 0.001 + (0.1 - 0.001) * (1 + math.cos(math.pi * e / 10)) / 2
        assert abs(lr - closed) <= 1e-13, (e, lr, closed)

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    write_fixture(OUT, out)
    print("wrote %s: %d tensors, %d bytes" % (OUT, len(out), os.path.getsize(OUT)))


if __name__ == "__main__":
    main()
