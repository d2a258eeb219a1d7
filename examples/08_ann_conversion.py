"""Convert a trained ReLU network to a spiking one, fine-tune it with STDB, and run it as an 8-bit
integer network (docs/seed-methods.md, "Hybrid conversion and STDB (Rathi et al. 2020)").

Steps, on scikit-learn's digits (1,300 training / 497 test images; no download):

1. train an ANN (64-128-128-10, ReLU, dropout) in torch;
2. ``sp.convert(ann, x_cal, steps=T)``: IF neurons, subtract reset, thresholds balanced by the
   spike-driven maximum; the readout ``"readout"`` integrates the class scores;
3. ``sp.quantize`` + ``sp.run``: accuracy of the 8-bit network on the emulator at T = 32 and at T = 4;
4. STDB fine-tuning at T = 4 (``finetune``), then the same check;
5. ``sp.energy``: SynOps and energy per inference at T = 4 and T = 32 side by side.

It writes ``digits_snn.nir`` (the converted graph, with its Semantics) and ``results.json`` to ``--out``.

    python examples/08_ann_conversion.py [--out DIR] [--epochs 2] [--steps 32]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import spikeport as sp
import torch
from sklearn.datasets import load_digits
from spikeport.quantize.conversion.convert import constant_current, convert_module, depth, encode
from spikeport.quantize.conversion.snn import to_nir
from spikeport.quantize.training.stdb import finetune
from torch import nn


def train_ann(x: np.ndarray, y: np.ndarray, epochs: int = 40) -> nn.Module:
    torch.manual_seed(0)
    ann = nn.Sequential(
        nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.1), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10)
    )
    opt = torch.optim.Adam(ann.parameters(), 1e-3)
    xt, yt = torch.tensor(x), torch.tensor(y)
    for _ in range(epochs):
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), 64):
            b = perm[i : i + 64]
            loss = nn.functional.cross_entropy(ann(xt[b]), yt[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return ann.eval()


def on_emulator(graph: Any, sem: Any, x_cal: np.ndarray, x: np.ndarray, y: np.ndarray, steps: int) -> dict:
    """8-bit quantization, emulator run: accuracy (readout v at the last step), SynOps, energy."""
    # pad the calibration by the network's depth: the integer network runs one step behind per layer
    net, _ = sp.quantize(graph, sem, calibration=encode(x_cal, steps, pad=depth(graph)))
    lag = net.metadata["groups"]["readout"]["lag"]
    xi = sp.encode_inputs(net, constant_current(x, steps), pad=lag)
    res = sp.run(net, xi, record=("spikes", "v", "u"))
    acc = float(np.mean(res["readout/v"][:, steps - 1 + lag].argmax(1) == y))
    rep = sp.energy(net, xi, res)
    loihi = next(e for e in rep.estimates if e.profile.name == "loihi1")
    return {
        "steps": steps,
        "accuracy": acc,
        "synops": float(np.mean(rep.counts.total("synops"))),
        "loihi1_nj": loihi.per_inference()["total"] / 1e3,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="output folder (default: a temporary one)")
    ap.add_argument("--steps", type=int, default=32, help="time steps of the converted network")
    ap.add_argument("--epochs", type=int, default=3, help="STDB epochs at T = 4")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    out = args.out or Path(tempfile.mkdtemp(prefix="spikeport-ex08-"))
    out.mkdir(parents=True, exist_ok=True)
    d = load_digits()
    x, y = (d.data / 16.0).astype(np.float32), d.target
    idx = np.random.default_rng(0).permutation(len(y))
    tr, te = idx[:1300], idx[1300:]
    ann = train_ann(x[tr], y[tr])
    with torch.no_grad():
        ann_acc = float(np.mean(ann(torch.tensor(x[te])).argmax(1).numpy() == y[te]))
    x_cal = x[tr[:256]]
    graph, sem = sp.convert(ann, x_cal, steps=args.steps)  # thresholds: spike-driven maximum
    sp.write_nir(out / "digits_snn.nir", graph, sem)
    rows: dict[str, Any] = {"ann_accuracy": ann_acc}
    rows["converted"] = on_emulator(graph, sem, x_cal, x[te], y[te], args.steps)
    snn, info = convert_module(ann, x_cal, 4, scale=0.7)  # T = 4: Rathi's 0.7 scale factor
    rows["converted_T4"] = on_emulator(to_nir(snn, info), snn.semantics(), x_cal, x[te], y[te], 4)
    finetune(snn, x[tr], y[tr], steps=4, epochs=args.epochs, lr=1e-4)
    rows["stdb_T4"] = on_emulator(to_nir(snn, info), snn.semantics(), x_cal, x[te], y[te], 4)
    print(f"ANN accuracy {ann_acc:.2%} on {len(te)} test digits")
    for key in ("converted", "converted_T4", "stdb_T4"):
        r = rows[key]
        print(
            f"{key:<13} T={r['steps']:>3}: 8-bit emulator accuracy {r['accuracy']:.2%}, "
            f"{r['synops']:.0f} SynOps, {r['loihi1_nj']:.1f} nJ (loihi1) per inference"
        )
    (out / "results.json").write_text(json.dumps(rows, indent=1))
    print(f"wrote {out / 'digits_snn.nir'} and {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
