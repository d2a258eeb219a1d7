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
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from spikeport.emulator.errors import field_error

SEMANTICS = "nir"  # dt = 1 ms, zero reset in the same step, v > threshold: runs on Lava as it is


@dataclass(frozen=True, kw_only=True)
class DemoConfig:
    out: Path = Path("spikeport-report")
    seed: int = 0
    steps: int = 16
    hidden: int = 64
    epochs: int = 12
    lava_samples: int = 64
    progress: bool | None = None  # None: only when stderr is a terminal

    def __post_init__(self) -> None:
        for name in ("steps", "hidden", "epochs"):
            if int(getattr(self, name)) < 1:
                raise field_error("DemoConfig", name, "must be >= 1", getattr(self, name))
        if self.lava_samples < 0:
            raise field_error("DemoConfig", "lava_samples", "must be >= 0", self.lava_samples)


@dataclass(frozen=True, kw_only=True)
class Data:
    x_train: np.ndarray  # (N, T, 64) spikes
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


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


def build_model(hidden: int) -> Any:
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
    """Adam on cross-entropy of output spike counts; returns the mean loss per epoch."""
    import torch
    from tqdm import tqdm

    torch.manual_seed(seed)
    for p in model.parameters():  # fresh, seeded initialization
        if p.ndim == 2:
            torch.nn.init.kaiming_uniform_(p, a=5**0.5)
        else:
            torch.nn.init.uniform_(p, -0.05, 0.05)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    x = torch.as_tensor(data.x_train)
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
    return losses


def predict(counts: np.ndarray) -> np.ndarray:
    """Class = output neuron with the most spikes (ties: lowest index)."""
    return np.argmax(counts, axis=-1)


def _timed(log: dict[str, float], name: str, fn: Callable[[], Any]) -> Any:
    t0 = time.perf_counter()
    out = fn()
    log[name] = round(time.perf_counter() - t0, 3)
    return out


def _progress(cfg: DemoConfig) -> bool:
    return sys.stderr.isatty() if cfg.progress is None else cfg.progress


def run_demo(cfg: DemoConfig) -> dict[str, Any]:
    """Run the pipeline, write the report folder, return the summary (also in ``summary.json``)."""
    from spikeport.emulator.io import save_network
    from spikeport.nir.export import export_nir
    from spikeport.nir.io import write_nir
    from spikeport.quantize.quantize_nir import quantize

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    progress = _progress(cfg)
    data = _timed(times, "data", lambda: load_data(cfg.steps, cfg.seed))
    model = build_model(cfg.hidden)
    losses = _timed(
        times, "train", lambda: train(model, data, epochs=cfg.epochs, seed=cfg.seed, progress=progress)
    )
    sem = model.semantics
    graph = export_nir(model, sem, input_shape=(64,))
    write_nir(out / "model.nir", graph, sem)
    np.save(out / "inputs.npy", data.x_test[:32].astype(np.float32))  # for the CLI quickstart
    calib = data.x_train[:256]
    nets = {}
    reports = {}
    for mode in ("fixed", "shift"):
        net, rep = _timed(
            times, f"quantize_{mode}", partial(quantize, graph, sem, mode=mode, calibration=calib)
        )
        save_network(out / f"net_{mode}.h5", net)
        (out / f"quantization_{mode}.json").write_text(json.dumps(rep.to_json(), indent=2))
        nets[mode], reports[mode] = net, rep
    from spikeport.demo.runs import evaluate

    results = evaluate(cfg, data, model, graph, sem, nets, times, progress)
    summary = {
        "spikeport_demo": 1,
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in cfg.__dict__.items()},
        "semantics": sem.to_dict(),
        "train_loss": [round(v, 4) for v in losses],
        "quantization_warnings": {m: [w.message for w in r.warnings] for m, r in reports.items()},
        **results,
        "seconds": times,
        "files": sorted(p.name for p in out.iterdir()),
    }
    from spikeport.report.html import write_html

    summary["files"] = sorted({*summary["files"], "index.html", "summary.json"})
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=_json_default))
    write_html(out, summary)
    return summary


def _json_default(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)
