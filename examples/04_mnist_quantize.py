"""Train a small spiking MLP on MNIST, quantize it (8-bit fixed point and power-of-two shifts) and
compare accuracies: float reference run vs the integer emulator.

Data: the official MNIST test set (10,000 images), split here (seeded) into a training and a test
part. The folder is ``--data DIR``, else ``$SPIKEPORT_MNIST``, else ``../shared/data/mnist/`` relative
to the repository; without the files the script says so and exits with code 1.

By default it runs a quick version (2,000 training images, 1 epoch, 1,000 test images: well under a
minute on 2 cores); ``--full`` trains on 8,000 images for 3 epochs and tests on the other 2,000.

    python examples/04_mnist_quantize.py [--full] [--data DIR] [--out DIR] [--epochs N] [--steps 8]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import spikeport as sp
import torch
from torch import nn

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
ENV_VAR = "SPIKEPORT_MNIST"
QUICK = {"train": 2000, "test": 1000, "epochs": 1}
FULL = {"train": 8000, "test": 2000, "epochs": 3}
FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def load_mnist(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 784) in [0, 1] and labels (N,) from the IDX files in ``folder``."""
    paths = [folder / f for f in FILES]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        sys.exit(
            "MNIST not found: "
            + ", ".join(missing)
            + f"\nPass --data DIR (or set ${ENV_VAR}) with the official MNIST test "
            "set files " + " and ".join(FILES) + " (http://yann.lecun.com/exdb/mnist/)."
        )
    with gzip.open(paths[0]) as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)
    with gzip.open(paths[1]) as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    return images.astype(np.float32) / 255.0, labels.astype(np.int64)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data", type=Path, default=None, help=f"MNIST folder (default: ${ENV_VAR} or {DEFAULT_DATA})"
    )
    ap.add_argument("--out", type=Path, default=None, help="output folder (default: a temporary one)")
    ap.add_argument("--full", action="store_true", help="8,000 training images, 3 epochs, 2,000 test images")
    ap.add_argument("--epochs", type=int, default=None, help="override the number of epochs")
    ap.add_argument("--train", type=int, default=None, help="override the number of training images")
    ap.add_argument("--test", type=int, default=None, help="override the number of test images")
    ap.add_argument("--steps", type=int, default=8, help="time steps per image (constant graded input)")
    ap.add_argument("--hidden", type=int, default=128)
    args = ap.parse_args(argv)
    data = args.data or Path(os.environ.get(ENV_VAR) or DEFAULT_DATA)
    size = dict(FULL if args.full else QUICK)
    for key in size:
        if getattr(args, key) is not None:
            size[key] = getattr(args, key)
    epochs = size["epochs"]
    x, y = load_mnist(data)
    out_dir = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="spikeport-ex04-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(y))
    tr, te = idx[: size["train"]], idx[len(y) - size["test"] :]
    T = args.steps

    def seq(a: np.ndarray) -> np.ndarray:
        return np.repeat(a[:, None, :], T, axis=1)

    torch.manual_seed(0)
    sem = sp.semantics("snntorch")
    model = sp.SNN(
        nn.Linear(784, args.hidden), sp.LIF(args.hidden, beta=0.9),
        nn.Linear(args.hidden, 10), sp.LIF(10, beta=0.9), semantics=sem,
    )  # fmt: skip
    opt = torch.optim.Adam(model.parameters(), 2e-3)
    t0 = time.time()
    for ep in range(epochs):
        perm = rng.permutation(tr)
        for i in range(0, len(perm), 128):
            b = perm[i : i + 128]
            out = model(torch.tensor(seq(x[b]))).sum(1)
            loss = nn.functional.cross_entropy(out * 2, torch.tensor(y[b]))
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"epoch {ep + 1}: loss {loss.item():.3f} ({time.time() - t0:.0f} s)")
    graph, sem = sp.export(model, (784,))
    x_te = seq(x[te])
    ref = sp.run_nir(graph, x_te, sem, record=("spikes",))
    acc = {"float": float(np.mean(ref["3/spikes"].sum(1).argmax(1) == y[te]))}
    for mode in ("fixed", "shift"):
        net, rep = sp.quantize(graph, sem, mode=mode, calibration=seq(x[tr[:500]]))
        lag = net.metadata["groups"]["3"]["lag"]
        res = sp.run(net, sp.encode_inputs(net, x_te, pad=lag))
        acc[mode] = float(np.mean(res["3/spikes"][:, lag : lag + T].sum(1).argmax(1) == y[te]))
        print(rep.summary())
        sp.save_network(out_dir / f"mnist_{mode}.h5", net)
    print(
        f"MNIST test split ({len(te)} images, {T} steps): float {acc['float']:.2%}  "
        f"8-bit fixed {acc['fixed']:.2%}  power-of-two {acc['shift']:.2%}"
    )
    (out_dir / "accuracy.json").write_text(
        json.dumps({"train": len(tr), "test": len(te), "epochs": epochs, **acc})
    )
    print(f"networks and accuracy.json written to {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
