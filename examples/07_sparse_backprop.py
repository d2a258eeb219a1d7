"""Train with sparse spiking gradient descent, then take the model to the emulator.

The hidden LIF layer is ``LIF(..., sparse_grad=B_th)``: its backward touches only the (sample, step, neuron)
entries whose membrane is within ``B_th`` of threshold (Perez-Nieves & Goodman 2021; dense BPTT with
the same truncated surrogate, computed sparsely). The same model is trained densely from the same
initial weights for comparison. Then the usual path: export NIR, quantize to 8-bit fixed point, run
the integer emulator, and compare with the float reference run of the NIR graph.

Data: scikit-learn's 8x8 digits, latency coded (one spike per pixel above 1/16, earlier for brighter).

Last, the quantized network is fine-tuned on its own integer arithmetic with the same sparse backward
(``FineTuneConfig(sparse_grad=B_th)``) and run on the emulator again.

    python examples/07_sparse_backprop.py [--epochs 4] [--steps 20] [--b-th 0.1] [--finetune-epochs 1] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import spikeport as sp
import torch
from torch import nn

SLOPE = 100.0  # surrogate steepness 1 / (SLOPE |v - theta| + 1)^2 of the hidden layer (the paper's beta)


def latency_digits(steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Digits as spikes ``(N, steps, 64)``: pixel ``p`` in (1/16, 1] fires once at ``round((1-p)(steps-1))``."""
    from sklearn.datasets import load_digits

    d = load_digits()
    p = d.data / 16.0
    x = np.zeros((len(p), steps, 64))
    n, i = np.nonzero(p > 1 / 16)
    x[n, np.rint((1 - p[n, i]) * (steps - 1)).astype(int), i] = 1.0
    return x, d.target


def make_model(b_th: float | None, hidden: int) -> sp.SNN:
    torch.manual_seed(0)
    model = sp.SNN(
        nn.Linear(64, hidden), sp.LIF(hidden, beta=0.9, slope=SLOPE, sparse_grad=b_th),
        nn.Linear(hidden, 10), sp.LIF(10, beta=0.9), semantics="snntorch",
    )  # fmt: skip
    with torch.no_grad():
        model.layers[0].weight.normal_(0.0, 0.5)
    return model


def train(model: sp.SNN, x: np.ndarray, y: np.ndarray, epochs: int) -> float:
    """Cross-entropy on output spike counts, Adam; returns seconds."""
    opt = torch.optim.Adam(model.parameters(), 5e-3)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(epochs):
        perm = rng.permutation(len(y))
        for i in range(0, len(perm), 64):
            b = perm[i : i + 64]
            out = model(torch.tensor(x[b], dtype=torch.float32)).sum(1)
            loss = nn.functional.cross_entropy(out * 2, torch.tensor(y[b]))
            opt.zero_grad()
            loss.backward()
            opt.step()
    return time.perf_counter() - t0


def to_emulator(model: sp.SNN, x_cal: np.ndarray, x_te: np.ndarray, y_te: np.ndarray) -> dict[str, float]:
    """Export, quantize (8-bit fixed), emulate; float reference accuracy, emulator accuracy, spike agreement."""
    graph, sem = sp.export(model, input_shape=(64,))
    net, _report = sp.quantize(graph, sem, calibration=x_cal)
    ref = sp.run_nir(graph, x_te, sem, record=("spikes",))
    lag = net.metadata["groups"]["3"]["lag"]
    res = sp.run(net, sp.encode_inputs(net, x_te, pad=lag))
    emu = res["3/spikes"][:, lag : lag + x_te.shape[1]]
    hid_lag = net.metadata["groups"]["1"]["lag"]
    hid = res["1/spikes"][:, hid_lag : hid_lag + x_te.shape[1]]
    return {
        "accuracy_float_nir": float(np.mean(ref["3/spikes"].sum(1).argmax(1) == y_te)),
        "accuracy_emulator": float(np.mean(emu.sum(1).argmax(1) == y_te)),
        "hidden_spike_agreement": float(np.mean(hid == ref["1/spikes"])),
        "output_spike_agreement": float(np.mean(emu == ref["3/spikes"])),
        "hidden_spike_rate": float(np.mean(ref["1/spikes"])),
    }


def fine_tune_sparse(
    model: sp.SNN,
    x_tr: np.ndarray,
    y_tr: np.ndarray,
    x_te: np.ndarray,
    y_te: np.ndarray,
    b_th: float,
    epochs: int,
) -> dict[str, object]:
    """Quantization-aware fine-tuning on the integer model with the sparse backward (``sparse_grad=B_th``),
    then the tuned network on the emulator: accuracy, and whether its spikes equal the training forward's."""
    from spikeport.emulator.engines.dispatch import run
    from spikeport.quantize.training.finetune import FineTuneConfig, exact_accuracy, fine_tune, readout
    from spikeport.quantize.training.qat import IntegerSNN

    graph, sem = sp.export(model, input_shape=(64,))
    net, twin, _ = sp.quantize_pair(graph, sem, calibration=x_tr[:300])
    cfg = FineTuneConfig(epochs=epochs, sparse_grad=b_th, lr=0.5)
    tuned, log = fine_tune(net, x_tr, y_tr, twin=twin, config=cfg)
    xi = sp.encode_inputs(tuned, x_te, pad=readout(tuned)[2])
    trainer = IntegerSNN(tuned, sparse_grad=b_th)
    emu = run(tuned, xi, record=("spikes",))
    same = all(np.array_equal(emu[k], v.detach().numpy()) for k, v in trainer(xi).items())
    return {
        "finetune_train_accuracy": log.accuracy,
        "accuracy_emulator_finetuned": exact_accuracy(IntegerSNN(tuned), xi, y_te, x_te.shape[1]),
        "finetune_emulator_equals_training_forward": same,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--b-th", type=float, default=0.1, help="B_th of the sparse backward")
    ap.add_argument(
        "--finetune-epochs", type=int, default=1, help="sparse QAT epochs on the integer model (0: none)"
    )
    ap.add_argument("--out", type=Path, default=None, help="output folder (default: a temporary one)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    out_dir = args.out or Path(tempfile.mkdtemp(prefix="spikeport-ex07-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    x, y = latency_digits(args.steps)
    idx = np.random.default_rng(0).permutation(len(y))
    tr, te = idx[:1300], idx[1300:]
    summary: dict[str, object] = {"b_th": args.b_th, "epochs": args.epochs, "steps": args.steps}
    for kind, b_th in (("dense", None), ("sparse", args.b_th)):
        model = make_model(b_th, args.hidden)
        summary[f"train_s_{kind}"] = train(model, x[tr], y[tr], args.epochs)
        with torch.no_grad():
            counts = model(torch.tensor(x[te], dtype=torch.float32)).sum(1)
        summary[f"accuracy_{kind}"] = float(np.mean(counts.argmax(1).numpy() == y[te]))
        print(
            f"{kind:6s} training: {summary[f'train_s_{kind}']:.1f} s, test accuracy {summary[f'accuracy_{kind}']:.2%}"
        )
    emu = to_emulator(model, x[tr[:300]], x[te], y[te])
    summary.update(emu)
    print(
        f"sparse-trained model on the emulator (8-bit fixed point): accuracy {emu['accuracy_emulator']:.2%} "
        f"(float NIR run {emu['accuracy_float_nir']:.2%}); spike agreement hidden "
        f"{emu['hidden_spike_agreement']:.2%}, output {emu['output_spike_agreement']:.2%}"
    )
    if args.finetune_epochs > 0:
        tuned = fine_tune_sparse(model, x[tr], y[tr], x[te], y[te], args.b_th, args.finetune_epochs)
        summary.update(tuned)
        print(
            f"fine-tuned on the integer model with the sparse backward: emulator accuracy "
            f"{tuned['accuracy_emulator_finetuned']:.2%}; emulator spikes equal the training forward: "
            f"{tuned['finetune_emulator_equals_training_forward']}"
        )
    (out_dir / "sparse_backprop.json").write_text(json.dumps(summary, indent=2))
    print(f"summary written to {out_dir / 'sparse_backprop.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
