"""The demo: the whole pipeline on an embedded default (scikit-learn's 8x8 digits, no download).

train a 64 -> H -> 10 LIF network with torch (spikeport's own modules) -> export it to NIR with its
semantics -> quantize to 8-bit fixed point and to power-of-two (shift) weights -> run the float
reference, both integer networks on the emulator, and a few samples on Lava (fixed_pt) -> accuracy,
emulator-vs-Lava bit-exactness, SynOps and energy per inference per profile -> a report folder.

Inputs are Bernoulli spike trains (pixel intensity / 16 = firing probability per step); the class is
the output neuron with the most spikes (ties go to the lower index). Everything is seeded.
"""

from __future__ import annotations

import json
import os
import sys
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from spikeport.demo.records import Data, DemoConfig, timed
from spikeport.demo.records import predict as predict  # re-exported: the demo's decision rule
from spikeport.demo.runs import evaluate

if TYPE_CHECKING:
    from spikeport.emulator.network import Network
    from spikeport.quantize.report import QuantReport
    from spikeport.quantize.semantics import Semantics

SEMANTICS = "nir"  # dt = 1 ms, zero reset in the same step, v > threshold: runs on Lava as it is


def load_data(steps: int, seed: int) -> Data:
    """Digits split 80/20 (stratified, seeded) and Bernoulli-encoded over ``steps`` time steps."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    img = digits.data.astype(np.float32) / 16.0
    i_tr, i_te = train_test_split(
        np.arange(len(img)), test_size=0.2, random_state=seed, stratify=digits.target
    )
    rng = np.random.default_rng(seed)

    def encode(x: np.ndarray) -> np.ndarray:
        return (rng.random((len(x), steps, x.shape[1])) < x[:, None, :]).astype(np.float32)

    return Data(
        x_train=encode(img[i_tr]),
        y_train=digits.target[i_tr],
        x_test=encode(img[i_te]),
        y_test=digits.target[i_te],
    )


# Numeric code paths that differ between CPUs (issue 11): MKL's branch (MKL_CBWR) and ATen's vector
# kernels (ATEN_CPU_CAPABILITY). Each is read once, at the process's first torch kernel, so they are
# pinned before the model is built, unless the caller set them. With one thread and float64 this
# trains the same model on any x86-64 CPU for a given torch build (otherwise the chaotic training
# amplifies last-bit differences into different weights, and accuracies differ by a point or two).
CPU_PINS = {"MKL_CBWR": "COMPATIBLE", "ATEN_CPU_CAPABILITY": "default"}


def pin_cpu_paths() -> None:
    """Set :data:`CPU_PINS` where unset; takes effect only before the process's first torch kernel."""
    for name, value in CPU_PINS.items():
        os.environ.setdefault(name, value)


def build_model(hidden: int) -> Any:
    pin_cpu_paths()
    from spikeport.quantize.semantics import semantics
    from spikeport.quantize.training.neurons import LIF, SNN
    from torch import nn

    return SNN(
        nn.Linear(64, hidden),
        LIF(hidden, beta=0.9, threshold=1.0),
        nn.Linear(hidden, 10),
        LIF(10, beta=0.9, threshold=1.0),
        semantics=semantics(SEMANTICS),
    )


def train(model: Any, data: Data, *, epochs: int, seed: int, progress: bool) -> list[float]:
    """Adam on cross-entropy of output spike counts; returns the mean loss per epoch.

    Trains in float64 on one thread (see :data:`CPU_PINS`); ``model`` ends in float32, for export.
    """
    pin_cpu_paths()
    import torch
    from tqdm import tqdm

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        model.double()
        for p in model.parameters():  # fresh, seeded initialization
            if p.ndim == 2:
                torch.nn.init.kaiming_uniform_(p, a=5**0.5)
            else:
                torch.nn.init.uniform_(p, -0.05, 0.05)
        opt = torch.optim.Adam(model.parameters(), lr=5e-3)
        x = torch.as_tensor(data.x_train, dtype=torch.float64)
        y = torch.as_tensor(data.y_train, dtype=torch.long)
        gen = torch.Generator().manual_seed(seed)
        losses = []
        bar = tqdm(range(epochs), desc="train", unit="epoch", disable=not progress, file=sys.stderr)
        for _ in bar:
            perm = torch.randperm(len(x), generator=gen)
            total = 0.0
            for k in range(0, len(x), 64):
                idx = perm[k : k + 64]
                counts = model(x[idx]).sum(1)
                loss = torch.nn.functional.cross_entropy(counts, y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            losses.append(total / len(x))
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    finally:
        model.float()
        torch.set_num_threads(threads)
    return losses


def _progress(cfg: DemoConfig) -> bool:
    return sys.stderr.isatty() if cfg.progress is None else cfg.progress


def quantize_both(
    graph: Any,
    sem: Semantics,
    calib: np.ndarray,
    out: Path,
    times: dict[str, float],
    train_data: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[dict[str, Network], dict[str, QuantReport]]:
    """Fixed-point and shift (power-of-two) networks; each saved with its report (one JSON object).

    With ``train_data`` ``(x, y)``: exponents chosen by output error on ``calib``, then
    quantization-aware fine-tuning on the exact integer model (its log in ``report.choices``)."""
    from spikeport.emulator.io import save_network
    from spikeport.quantize.quantize_nir import quantize

    nets, reports = {}, {}
    for mode in ("fixed", "shift"):
        if train_data is not None:
            net, rep = timed(times, f"quantize_{mode}", partial(_tuned, graph, sem, mode, calib, train_data))
        else:
            net, rep = timed(
                times, f"quantize_{mode}", partial(quantize, graph, sem, mode=mode, calibration=calib)
            )
        save_network(out / f"net_{mode}.h5", net)
        (out / f"quantization_{mode}.json").write_text(rep.to_json(indent=2))
        nets[mode], reports[mode] = net, rep
    return nets, reports


def _tuned(
    graph: Any, sem: Semantics, mode: str, calib: np.ndarray, train_data: tuple[np.ndarray, np.ndarray]
) -> tuple[Network, QuantReport]:
    """Quantize (exponent search by output error), then fine-tune on the integer model (seeded)."""
    import dataclasses

    from spikeport.quantize.quantize_nir import quantize_pair
    from spikeport.quantize.training.finetune import FineTuneConfig, fine_tune

    pin_cpu_paths()
    net, twin, rep = quantize_pair(graph, sem, mode=mode, calibration=calib, search="output")
    tuned, log = fine_tune(net, *train_data, twin=twin, config=FineTuneConfig(epochs=3))
    return tuned, dataclasses.replace(rep, choices={**rep.choices, "fine_tune": log.to_dict()})


def run_demo(cfg: DemoConfig) -> dict[str, Any]:
    """Run the pipeline, write the report folder, return the summary (also in ``summary.json``)."""
    from spikeport.nir.export import export_nir
    from spikeport.nir.io import write_nir

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    progress = _progress(cfg)
    data = timed(times, "data", lambda: load_data(cfg.steps, cfg.seed))
    model = build_model(cfg.hidden)
    losses = timed(
        times, "train", lambda: train(model, data, epochs=cfg.epochs, seed=cfg.seed, progress=progress)
    )
    sem = model.semantics
    graph = export_nir(model, sem, input_shape=(64,))
    write_nir(out / "model.nir", graph, sem)
    np.save(out / "inputs.npy", data.x_test[:32].astype(np.float32))  # for the CLI quickstart
    nets, reports = quantize_both(
        graph, sem, data.x_train[:256], out, times, train_data=(data.x_train, data.y_train)
    )
    results = evaluate(cfg, data, graph, sem, nets, times, progress)
    summary = {
        "spikeport_demo": 1,
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in cfg.__dict__.items()},
        "semantics": sem.to_dict(),
        "train_loss": [round(v, 4) for v in losses],
        "quantization_warnings": {m: [w.message for w in r.warnings] for m, r in reports.items()},
        **results,
        "seconds": times,
    }
    _write_summary(out, summary)
    return summary


def _write_summary(out: Path, summary: dict[str, Any]) -> None:
    """``summary.json`` and ``index.html``; ``summary["files"]`` lists the folder, both included."""
    from spikeport.report.html import write_html

    summary["files"] = sorted({*(p.name for p in out.iterdir()), "index.html", "summary.json"})
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=_json_default))
    write_html(out, summary)


def _json_default(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)
