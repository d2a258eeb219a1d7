"""ANN -> SNN conversion and STDB fine-tuning on MNIST (Rathi et al. 2020; docs/seed-methods.md, "Hybrid
conversion and STDB"); prints one JSON object.

Data: the official MNIST test set (``../shared/data/mnist`` next to the repository, or ``--data``), split
here (seeded) into 8,000 training and 2,000 test images; scikit-learn's digits (1,300 / 497) for the
second MLP. Models: an MLP 784-256-256-10 and a CNN (Conv 8@5x5, AvgPool 2, Conv 16@5x5, AvgPool 2,
Linear 256-10), bias-free, trained here as ANNs (Adam, dropout); digits: MLP 64-128-128-10.

Every accuracy is the 8-bit integer network on spikeport's emulator (``sp.quantize``, ``mode="fixed"``,
calibrated on 64 training images padded by the network's depth, then ``sp.run``): the readout's ``v`` at the last step, argmax. Input: constant current (the ANN's analog
input as 8-bit graded payloads). Rows:

- ``conversion``: per model, steps and threshold rule (``spike``: Rathi's spike-driven maximum, balanced
  at the same T; ``spike`` with ``scale`` 0.7; ``percentile``: 99.9th percentile of ANN activations),
  ``accuracy``, ``synops`` (synaptic operations per inference, emulator counters) and ``energy_pj`` per
  profile;
- ``stdb``: from the conversion with ``scale`` 0.7 at ``steps`` (MLP 4, CNN 5: :data:`STDB`), fine-tuned
  by STDB (MLP: also the linear surrogate) for ``epochs`` on the training split: ``accuracy`` after,
  ``conversion_accuracy`` before, ``synops``;
- ``energy``: the MNIST MLP converted at T = 8 (scale 0.7) and T = 100 side by side (per inference, per
  profile; ``ann_dense_pj`` is the energy report's dense baseline, the SNN's synapses evaluated densely at
  every step, and ``ann_fp32_inference_pj`` one ANN inference, its MACs at 4.6 pJ);
- ``lava``: zero reset (Lava's stock LIF) vs subtract reset on the emulator (the accuracy cost), and
  the zero-reset network on Lava fixed_pt for ``lava_samples`` test images: ``bit_exact`` is
  ``np.array_equal`` of every group's spikes and v (null when Lava is not installed).

``--quick`` (< 15 minutes on 2 cores) runs fewer steps values, threshold rules and epochs, on 1,000 test
images; the full run uses 2,000 (:data:`SIZES`). STDB trains on the whole training split.

    python benchmarks/conversion.py [--quick] [--data DIR] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import spikeport as sp
import torch
from spikeport.quantize.conversion.convert import convert_module, depth, encode
from spikeport.quantize.conversion.snn import ConvertedSNN, to_nir
from spikeport.quantize.training.stdb import finetune
from torch import nn

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
SIZES: dict[str, dict[str, Any]] = {
    "quick": {"test": 1000, "steps": {"mnist_mlp": (4, 8, 32), "mnist_cnn": (5, 32), "digits_mlp": (4, 8, 32)}, "cnn_rules": 2, "stdb_epochs": 3, "lava_samples": 8},
    "full": {"test": 2000, "steps": {"mnist_mlp": (2, 4, 5, 8, 16, 32, 64, 100), "mnist_cnn": (4, 5, 8, 32), "digits_mlp": (4, 8, 16, 32, 100)}, "cnn_rules": 3, "stdb_epochs": 5, "lava_samples": 32},
}  # fmt: skip
RULES = (("spike", 1.0), ("spike", 0.7), ("percentile", 1.0))
#: STDB per model: (steps, learning rate); the paper's Adam 1e-4 for the MLP, 3e-4 for the CNN (whose
#: loss still fell steeply after 3 epochs at 1e-4)
STDB = {"mnist_mlp": (4, 1e-4), "mnist_cnn": (5, 3e-4)}
CAL = 256  # calibration images of the threshold balancing
QCAL = 64  # calibration images of the quantizer (activity bounds)


def load_mnist(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    paths = [folder / f for f in FILES]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        sys.exit(f"MNIST not found: {', '.join(missing)} (pass --data DIR holding {' and '.join(FILES)})")
    with gzip.open(paths[0]) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)
    with gzip.open(paths[1]) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    return x.astype(np.float32) / 255.0, y.astype(np.int64)


def datasets(folder: Path, n_test: int) -> dict[str, dict[str, np.ndarray]]:
    from sklearn.datasets import load_digits

    x, y = load_mnist(folder)
    idx = np.random.default_rng(0).permutation(len(y))
    tr, te = idx[:8000], idx[len(y) - n_test :]
    d = load_digits()
    dx, dy = (d.data / 16.0).astype(np.float32), d.target.astype(np.int64)
    didx = np.random.default_rng(0).permutation(len(dy))
    return {
        "mnist": {"x_train": x[tr], "y_train": y[tr], "x_test": x[te], "y_test": y[te]},
        "digits": {"x_train": dx[didx[:1300]], "y_train": dy[didx[:1300]], "x_test": dx[didx[1300:]], "y_test": dy[didx[1300:]]},
    }  # fmt: skip


def models() -> dict[str, tuple[str, nn.Module, tuple[int, ...], int]]:
    """name -> (dataset, untrained ANN, input shape, epochs)."""
    torch.manual_seed(0)
    mlp = nn.Sequential(
        nn.Linear(784, 256, bias=False), nn.ReLU(), nn.Dropout(0.2),
        nn.Linear(256, 256, bias=False), nn.ReLU(), nn.Dropout(0.2), nn.Linear(256, 10, bias=False),
    )  # fmt: skip
    cnn = nn.Sequential(
        nn.Conv2d(1, 8, 5, bias=False), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(8, 16, 5, bias=False), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Dropout(0.2), nn.Linear(256, 10, bias=False),
    )  # fmt: skip
    digits = nn.Sequential(
        nn.Linear(64, 128, bias=False), nn.ReLU(), nn.Dropout(0.1),
        nn.Linear(128, 128, bias=False), nn.ReLU(), nn.Linear(128, 10, bias=False),
    )  # fmt: skip
    return {
        "mnist_mlp": ("mnist", mlp, (784,), 8),
        "mnist_cnn": ("mnist", cnn, (1, 28, 28), 4),
        "digits_mlp": ("digits", digits, (64,), 40),
    }


def train_ann(ann: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    opt = torch.optim.Adam(ann.parameters(), 1e-3)
    xt, yt = torch.tensor(x), torch.tensor(y)
    ann.train()
    for _ in range(epochs):
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), 64):
            b = perm[i : i + 64]
            loss = nn.functional.cross_entropy(ann(xt[b]), yt[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return ann.eval()


@torch.no_grad()
def ann_accuracy(ann: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(ann(torch.tensor(x)).argmax(1).numpy() == y))


def quant_calibration(d: dict[str, np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    """The quantizer's calibration images: ``QCAL`` training images with pixels rounded to sixteenths,
    so that the quantizer's search for an exact graded input scale stops at 16 (payload scale 112)
    instead of scanning all 127 candidates over every step of every image (minutes at T = 100)."""
    return np.round(d["x_train"][:QCAL].reshape(-1, *shape) * 16) / 16


def emulate(
    snn: ConvertedSNN, info: dict[str, Any], d: dict[str, np.ndarray], steps: int, energy: int = 100
) -> dict[str, Any]:
    """Quantize (8-bit) and run the test split on the emulator: accuracy, SynOps and energy per inference."""
    graph, sem = to_nir(snn, info), snn.semantics()
    shape = snn.input_shape
    net, _ = sp.quantize(graph, sem, calibration=encode(quant_calibration(d, shape), steps, pad=depth(graph)))
    lag = net.metadata["groups"]["readout"]["lag"]
    x_test = d["x_test"].reshape(-1, *shape)
    correct = 0
    for i in range(0, len(x_test), 250):
        xi = sp.encode_inputs(net, encode(x_test[i : i + 250], steps, "current"), pad=lag)
        v = sp.run(net, xi, record=("readout/v",))["readout/v"][:, steps - 1 + lag]
        correct += int(np.sum(v.argmax(1) == d["y_test"][i : i + 250]))
    rep = sp.energy(net, sp.encode_inputs(net, encode(x_test[:energy], steps, "current"), pad=lag))
    return {
        "accuracy": correct / len(x_test),
        "synops": float(np.mean(rep.counts.total("synops"))),
        "energy_pj": {e.profile.name: e.per_inference()["total"] for e in rep.estimates},
        "ann_dense_pj": float(np.mean(rep.ann_dense_pj)),
    }


def conversion_rows(
    name: str, ann: nn.Module, d: dict[str, np.ndarray], steps_list: tuple[int, ...], rules: int = 3
) -> list[dict[str, Any]]:
    rows = []
    x_cal = d["x_train"][:CAL].reshape(-1, *_shape(name))
    for steps in steps_list:
        for rule, scale in RULES[:rules]:
            snn, info = convert_module(ann, x_cal, steps, threshold=rule, scale=scale)
            res = emulate(snn, info, d, steps)
            rows.append({"model": name, "steps": steps, "threshold": rule, "scale": scale, **res})
            _log(f"conversion {name} T={steps} {rule} x{scale}: {res['accuracy']:.4f}")
    return rows


def stdb_rows(
    name: str, ann: nn.Module, d: dict[str, np.ndarray], size: dict[str, Any], converted: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """STDB (and, for the MLP, the linear surrogate) from the conversion with scale 0.7 at ``STDB[name]``."""
    rows = []
    shape = _shape(name)
    steps, lr = STDB[name]
    x_cal = d["x_train"][:CAL].reshape(-1, *shape)
    x_tr, y_tr = d["x_train"].reshape(-1, *shape), d["y_train"]
    key = (steps, "spike", 0.7)
    before = next((r["accuracy"] for r in converted if (r["steps"], r["threshold"], r["scale"]) == key), None)
    for surrogate in ("stdb", "linear") if name == "mnist_mlp" else ("stdb",):
        snn, info = convert_module(ann, x_cal, steps, threshold="spike", scale=0.7)
        if before is None:
            before = emulate(snn, info, d, steps)["accuracy"]
        epochs = size["stdb_epochs"]
        hist = finetune(snn, x_tr, y_tr, steps=steps, epochs=epochs, lr=lr, batch=64, surrogate=surrogate)
        res = emulate(snn, {**info, "stdb": {"surrogate": surrogate, "epochs": epochs, "lr": lr}}, d, steps)
        rows.append({
            "model": name, "steps": steps, "surrogate": surrogate, "epochs": epochs, "lr": lr,
            "train_images": len(y_tr), "accuracy": res["accuracy"], "conversion_accuracy": before,
            "synops": res["synops"], "energy_pj": res["energy_pj"], "loss": hist.loss,
            "seconds": round(hist.seconds, 1),
        })  # fmt: skip
        _log(
            f"stdb {name} T={steps} {surrogate}: {before:.4f} -> {res['accuracy']:.4f} ({hist.seconds:.0f} s)"
        )
    return rows


FP32_MAC_PJ = 4.6  # Horowitz, 45 nm (docs/synops-energy.md, "Horowitz 45 nm arithmetic")


def ann_macs(ann: nn.Module, shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one ANN inference (Linear and Conv2d layers)."""
    macs = 0

    def hook(m: Any, args: Any, out: torch.Tensor) -> None:
        nonlocal macs
        w = m.weight
        macs += out[0].numel() * (w[0].numel() if isinstance(m, nn.Conv2d) else w.shape[1])

    layers = [m for m in ann.modules() if isinstance(m, nn.Linear | nn.Conv2d)]
    handles = [m.register_forward_hook(hook) for m in layers]
    with torch.no_grad():
        ann(torch.zeros(1, *shape))
    for h in handles:
        h.remove()
    return macs


def energy_rows(ann: nn.Module, d: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """The MNIST MLP at T = 8 (scale 0.7) and T = 100 (scale 1), next to one fp32 ANN inference."""
    rows = []
    macs = ann_macs(ann, (784,))
    for steps in (8, 100):
        snn, info = convert_module(
            ann, d["x_train"][:CAL], steps, threshold="spike", scale=0.7 if steps < 16 else 1.0
        )
        res = emulate(snn, info, d, steps)
        rows.append({
            "model": "mnist_mlp", "steps": steps, "threshold": "spike", "scale": info["scale"], **res,
            "ann_macs": macs, "ann_fp32_inference_pj": macs * FP32_MAC_PJ,
        })  # fmt: skip
    return rows


def lava_check(ann: nn.Module, d: dict[str, np.ndarray], samples: int, steps: int = 32) -> dict[str, Any]:
    """Zero vs subtract reset on the emulator; the zero-reset network on Lava vs the emulator."""
    out: dict[str, Any] = {"model": "mnist_mlp", "steps": steps, "lava_samples": samples}
    for reset in ("subtract", "zero"):
        snn, info = convert_module(ann, d["x_train"][:CAL], steps, reset=reset)
        out[f"accuracy_{reset}_reset"] = emulate(snn, info, d, steps, energy=10)["accuracy"]
    out["zero_reset_cost_pp"] = 100 * (out["accuracy_subtract_reset"] - out["accuracy_zero_reset"])
    graph, sem = to_nir(snn, info), snn.semantics()
    net, _ = sp.quantize(
        graph, sem, calibration=encode(quant_calibration(d, (784,)), steps, pad=depth(graph)), target="lava"
    )
    lag = net.metadata["groups"]["readout"]["lag"]
    xi = sp.encode_inputs(net, encode(d["x_test"][:samples], steps, "current"), pad=lag)
    try:
        from spikeport.lava.compat import import_lava

        import_lava()
    except Exception as exc:  # Lava is optional: say why it did not run
        return {**out, "bit_exact": None, "lava_error": f"{type(exc).__name__}: {exc}"}
    t0 = time.time()
    lava = sp.run(net, xi, backend="lava", record=("spikes", "v"))
    emu = sp.run(net, xi, record=("spikes", "v"))
    out["lava_seconds"] = round(time.time() - t0, 1)
    out["bit_exact"] = sorted(lava.outputs) == sorted(emu.outputs) and all(
        np.array_equal(lava[k], emu[k]) for k in lava.outputs
    )
    out["compared"] = sorted(lava.outputs)
    return out


def _shape(name: str) -> tuple[int, ...]:
    return (1, 28, 28) if name == "mnist_cnn" else (784,) if name == "mnist_mlp" else (64,)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--quick", action="store_true", help="fewer steps values and epochs (< 15 min on 2 cores)"
    )
    ap.add_argument("--data", type=Path, default=DATA / "mnist", help="MNIST folder")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    ap.add_argument("--no-lava", action="store_true", help="skip the Lava run")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    size = SIZES["quick" if args.quick else "full"]
    t0 = time.time()
    data = datasets(args.data, size["test"])
    result: dict[str, Any] = {"ann_accuracy": {}, "conversion": [], "stdb": [], "energy": [], "lava": None}
    for name, (ds, ann, shape, epochs) in models().items():
        d = {k: v.reshape(-1, *shape) if k.startswith("x") else v for k, v in data[ds].items()}
        train_ann(ann, d["x_train"], d["y_train"], epochs)
        result["ann_accuracy"][name] = ann_accuracy(ann, d["x_test"], d["y_test"])
        _log(f"ANN {name}: {result['ann_accuracy'][name]:.4f} ({time.time() - t0:.0f} s)")
        rules = size["cnn_rules"] if name == "mnist_cnn" else 3
        rows = conversion_rows(name, ann, data[ds], size["steps"][name], rules)
        result["conversion"] += rows
        if name != "digits_mlp":
            result["stdb"] += stdb_rows(name, ann, data[ds], size, rows)
        if name == "mnist_mlp":
            result["energy"] = energy_rows(ann, data[ds])
            if not args.no_lava:
                result["lava"] = lava_check(ann, data[ds], size["lava_samples"])
        _log(f"{name} done ({time.time() - t0:.0f} s)")
    result["mode"] = "quick" if args.quick else "full"
    result["test_images"] = {k: len(v["y_test"]) for k, v in data.items()}
    result["seconds"] = round(time.time() - t0, 1)
    result["cpu_seconds"] = round(time.process_time(), 1)  # the robust figure on a shared machine
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
