#!/usr/bin/python3
"""Write tests/fixtures/sparse_grad.bin: PyTorch's sparse embedding
gradients (nn.Embedding(sparse=True)) with the optimizers that take them,
for tests/test_sparse_grad.c.

    /usr/bin/python3 tests/gen_sparse_fixtures.py [outdir]   (default tests/fixtures)

Needs PyTorch (Debian's python3-torch); CI reads the committed file. All
float64. The model: Embedding(V=12, E=4, padding_idx=0) -> Linear(4, 3) ->
cross-entropy (mean) over a batch of 2 x 5 ids, 4 steps on fixed batches
(ids with repeats, the padding id and rows never used). The embedding's
optimizer takes the sparse gradient, the Linear's the dense one:

    <opt>: sparse_adam (SparseAdam(lr 0.05) + Adam(lr 0.05)),
           adagrad     (Adagrad(lr 0.3) both),
           sgd         (SGD(lr 0.5) both)

Entries: emb0 [12, 4], w0 [3, 4], b0 [3] the initial parameters; ids
[4, 10] and targets [4, 10] per step; <opt>.emb, <opt>.w, <opt>.b the
parameters after the 4 steps; <opt>.loss [4] the loss of each step.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_io import write_fixture  # noqa: E402

torch.set_default_dtype(torch.float64)
V, E, C, STEPS = 12, 4, 3, 4
IDS = [[1, 3, 3, 0, 5, 2, 1, 0, 0, 7],
       [4, 4, 4, 9, 0, 2, 2, 1, 0, 0],
       [6, 1, 3, 5, 5, 0, 11, 11, 2, 0],
       [1, 1, 1, 1, 8, 3, 0, 0, 0, 0]]


def run(name, emb0, w0, b0, targets):
    emb = torch.nn.Embedding(V, E, padding_idx=0, sparse=True)
    head = torch.nn.Linear(E, C)
    with torch.no_grad():
        emb.weight.copy_(emb0)
        head.weight.copy_(w0)
        head.bias.copy_(b0)
    if name == "sparse_adam":
        opts = [torch.optim.SparseAdam(emb.parameters(), lr=0.05),
                torch.optim.Adam(head.parameters(), lr=0.05)]
    elif name == "adagrad":
        opts = [torch.optim.Adagrad(emb.parameters(), lr=0.3),
                torch.optim.Adagrad(head.parameters(), lr=0.3)]
    else:
        opts = [torch.optim.SGD(emb.parameters(), lr=0.5),
                torch.optim.SGD(head.parameters(), lr=0.5)]
    losses = []
    for s in range(STEPS):
        for o in opts:
            o.zero_grad()
        ids = torch.tensor(IDS[s])
        loss = torch.nn.functional.cross_entropy(head(emb(ids)), targets[s])
        loss.backward()
        assert emb.weight.grad.is_sparse
        for o in opts:
            o.step()
        losses.append(loss.item())
    return {name + ".emb": emb.weight.detach(), name + ".w": head.weight.detach(),
            name + ".b": head.bias.detach(), name + ".loss": torch.tensor(losses)}


def main():
    torch.manual_seed(20261205)
    emb0 = torch.randn(V, E)
    emb0[0] = 0
    w0 = torch.empty(C, E).uniform_(-0.5, 0.5)
    b0 = torch.empty(C).uniform_(-0.5, 0.5)
    targets = torch.randint(0, C, (STEPS, len(IDS[0])))
    d = {"emb0": emb0, "w0": w0, "b0": b0, "ids": torch.tensor(IDS, dtype=torch.float64),
         "targets": targets.double()}
    for name in ("sparse_adam", "adagrad", "sgd"):
        d.update(run(name, emb0, w0, b0, targets))
    here = os.path.dirname(os.path.abspath(__file__))
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "fixtures")
    path = os.path.join(outdir, "sparse_grad.bin")
    write_fixture(path, d)
    print("%s: %d bytes" % (path, os.path.getsize(path)))


if __name__ == "__main__":
    main()
