"""Quantized accuracy: float vs 8-bit fixed point vs power-of-two weights, before and after the
post-training choices and the quantization-aware fine-tuning on the exact integer model.

    python benchmarks/quantized_accuracy.py [--quick] [--seeds 0 1 2] [--datasets digits mnist]

Prints one JSON object ``{"runs": [...], "targets": {...}}``. Per run (dataset, seed): ``float`` (the
float64 reference run of the exported NIR graph), ``fixed`` and ``shift`` (what is deployed: the
emulator's accuracy after the exponent search and the fine-tuning), and as extra fields the untuned
numbers (``*_untuned``: plain post-training quantization; ``*_search``: exponent/clipping chosen by
output error; ``*_split``: weight splitting on top of the plain quantization, with its SynOps factor),
the fine-tuning logs and timings. Accuracies are fractions in [0, 1]. ``--rounding`` (default
``min_drift``): the same pipeline (without splitting) with decays and biases rounded that way besides the
default rounding, fields suffixed ``_<rounding>`` (``fixed_untuned_min_drift``, ``fixed_search_min_drift``,
``fixed_min_drift`` after fine-tuning, ``fixed_drift_min_drift`` the decays chosen per group).

Datasets: scikit-learn digits (the demo's model and training: 64-64-10 LIF, 16 Bernoulli steps) and
MNIST from ``../shared/data/mnist`` (the official test set, split by seed into training and test
parts; 784-128-10 LIF, 8 steps of constant graded input). ``--quick``: 3 seeds, small MNIST splits.
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

MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
MNIST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
TARGETS = {"fixed_max_drop": 0.005, "shift_max_drop": 0.01}


def load_mnist(folder: Path = MNIST) -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(folder / MNIST_FILES[0]) as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)
    with gzip.open(folder / MNIST_FILES[1]) as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    return images.astype(np.float64) / 255.0, labels.astype(np.int64)


def digits_task(seed: int, quick: bool) -> dict[str, Any]:
    """The demo's data, model and training (so the numbers are the demo's)."""
    from spikeport.demo.pipeline import build_model, load_data, train

    data = load_data(16, seed)
    model = build_model(64)
    train(model, data, epochs=12, seed=seed, progress=False)
    return {
        "model": model,
        "shape": (64,),
        "x_train": data.x_train,
        "y_train": data.y_train,
        "x_test": data.x_test,
        "y_test": data.y_test,
        "fine_tune": {"samples": len(data.y_train), "epochs": 3},
    }


def mnist_task(seed: int, quick: bool, steps: int = 8) -> dict[str, Any]:
    """784-128-10 LIF on constant graded input, trained 5 epochs with Adam (float64, one thread);
    fine-tuning picks its epoch on a held-out fifth of the training part."""
    import torch
    from spikeport.quantize.training.neurons import LIF, SNN
    from torch import nn

    x, y = load_mnist()
    n_train, n_test = (3000, 1000) if quick else (8000, 2000)
    idx = np.random.default_rng(seed).permutation(len(y))
    tr, te = idx[:n_train], idx[len(y) - n_test :]
    torch.manual_seed(seed)
    model = SNN(
        nn.Linear(784, 128), LIF(128, beta=0.9), nn.Linear(128, 10), LIF(10, beta=0.9), semantics="nir"
    )
    model.double()
    opt = torch.optim.Adam(model.parameters(), 2e-3)
    seq = lambda a: np.repeat(a[:, None, :], steps, axis=1)  # noqa: E731
    gen = np.random.default_rng(seed)
    for _ in range(5):
        perm = gen.permutation(tr)
        for i in range(0, len(perm), 64):
            b = perm[i : i + 64]
            out = model(torch.tensor(seq(x[b]))).sum(1)
            loss = nn.functional.cross_entropy(out * 2, torch.tensor(y[b]))
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.float()
    return {
        "model": model,
        "shape": (784,),
        "x_train": seq(x[tr]),
        "y_train": y[tr],
        "x_test": seq(x[te]),
        "y_test": y[te],
        "fine_tune": {"samples": n_train, "epochs": 3, "validation": 0.2},
    }


def recurrent_task(seed: int, quick: bool, steps: int = 25) -> dict[str, Any]:
    """snnTorch RLeaky (20 -> 32 recurrent -> 4 Leaky) on a memory task: the class is which of four
    channel groups fires more (rate 0.4 against 0.1) during the first 5 of 25 steps; noise after."""
    import snntorch as snt
    import torch
    from torch import nn

    rng = np.random.default_rng(seed)
    n = 1200 if quick else 3000
    y = rng.integers(0, 4, n)
    rate = np.full((n, steps, 20), 0.1)
    rate[:, :5] += 0.3 * (np.arange(20)[None, None, :] // 5 == y[:, None, None])
    x = (rng.random(rate.shape) < rate).astype(np.float64)
    torch.manual_seed(seed)
    layers = [nn.Linear(20, 32), snt.RLeaky(beta=0.9, linear_features=32, init_hidden=True)]
    layers += [nn.Linear(32, 4), snt.Leaky(beta=0.9, init_hidden=True)]
    params = [p for layer in layers for p in layer.parameters()]
    opt = torch.optim.Adam(params, 5e-3)
    tr = np.arange(n - 400)
    for _ in range(12):
        perm = rng.permutation(tr)
        for i in range(0, len(tr), 64):
            b = perm[i : i + 64]
            loss = nn.functional.cross_entropy(
                _snt_counts(layers, torch.tensor(x[b], dtype=torch.float32)) * 2, torch.tensor(y[b])
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
    return {
        "layers": layers,
        "x_train": x[tr],
        "y_train": y[tr],
        "x_test": x[n - 400 :],
        "y_test": y[n - 400 :],
        "fine_tune": {"samples": len(tr), "epochs": 3, "validation": 0.2},
    }


def _snt_counts(layers: list[Any], x: Any) -> Any:
    for layer in layers:
        if hasattr(layer, "reset_hidden"):
            layer.reset_hidden()
    total = 0
    for t in range(x.shape[1]):
        h = x[:, t]
        for layer in layers:
            h = layer(h)
        total = total + h
    return total


def run_recurrent(seed: int, quick: bool) -> dict[str, Any]:
    """Float vs fixed (plain, and exponent search + fine-tuning): accuracy, compare's argmax agreement
    and spike agreement per layer."""
    from spikeport.nir.frameworks import snntorch_to_nir
    from spikeport.report.compare import compare

    task = recurrent_task(seed, quick)
    graph, sem = snntorch_to_nir(task["layers"], (20,))
    row: dict[str, Any] = {"dataset": "recurrent", "seed": seed}
    row["float"] = float_accuracy(graph, sem, task["x_test"], task["y_test"])
    row.update(quantize_mode(task, graph, sem, "fixed", seed))
    from spikeport.quantize.quantize_nir import quantize_pair

    plain, _, _ = quantize_pair(graph, sem, mode="fixed", calibration=task["x_train"][:256])
    split, _, _ = quantize_pair(graph, sem, mode="fixed", calibration=task["x_train"][:256], split=True)
    for name, net in (("untuned", plain), ("split", split), ("deployed", row.pop("_net"))):
        rep = compare(graph, net, task["x_test"], sem)["backends"]["fixed"]
        row[f"argmax_agreement_{name}"] = min(o["argmax_agreement"] for o in rep["outputs"].values())
        row[f"spike_agreement_{name}"] = {g: round(m["spike_agreement"], 4) for g, m in rep["groups"].items()}
    return row


def emulator_accuracy(net: Any, x: np.ndarray, y: np.ndarray) -> float:
    from spikeport.emulator.engines.dispatch import run
    from spikeport.quantize.quantize_nir import encode_inputs
    from spikeport.quantize.training.finetune import readout

    group, lag, pad = readout(net)
    res = run(net, encode_inputs(net, x, pad=pad))
    counts = res[f"{group}/spikes"][:, lag : lag + x.shape[1]].sum(1)
    return float(np.mean(np.argmax(counts, axis=1) == y))


def float_accuracy(graph: Any, sem: Any, x: np.ndarray, y: np.ndarray) -> float:
    """The float64 reference run's accuracy; the output group is the one the quantizer wires out."""
    from spikeport.quantize.quantize_nir import quantize
    from spikeport.quantize.training.finetune import readout
    from spikeport.reference.run import run_nir

    group = readout(quantize(graph, sem)[0])[0]
    ref = run_nir(graph, x, sem, record=("spikes",), dtype="float64")
    return float(np.mean(np.argmax(ref[f"{group}/spikes"].sum(1), axis=1) == y))


def quantize_mode(
    task: dict[str, Any], graph: Any, sem: Any, mode: str, seed: int, rounding: str | None = None
) -> dict[str, Any]:
    """Plain PTQ, exponent search, weight splitting, and fine-tuning (on the searched network).

    ``rounding`` other than the default (decays and biases, :mod:`spikeport.quantize.drift`): the same
    without weight splitting, every field suffixed ``_<rounding>`` (e.g. ``fixed_untuned_min_drift``)."""
    from spikeport.quantize.quantize_nir import encode_inputs, quantize_pair
    from spikeport.quantize.search import search_network
    from spikeport.quantize.training.finetune import FineTuneConfig, fine_tune, readout
    from spikeport.quantize.weight_split import split_network

    xt, yt = task["x_test"], task["y_test"]
    cal = task["x_train"][:256]
    sfx = "" if rounding is None else f"_{rounding}"
    net, twin, report = quantize_pair(graph, sem, mode=mode, calibration=cal, rounding=rounding)
    out: dict[str, Any] = {f"{mode}_untuned{sfx}": emulator_accuracy(net, xt, yt)}
    out[f"{mode}_drift{sfx}"] = {
        g.name: {
            k: getattr(g.drift, k)
            for k in ("dv", "dv_nearest", "dv_error", "dv_error_nearest", "bias_changed")
        }
        for g in report.groups
        if g.drift is not None
    }
    searched, infos = search_network(net, twin, calibration=encode_inputs(net, cal, pad=readout(net)[2]))
    out[f"{mode}_search{sfx}"] = emulator_accuracy(searched, xt, yt)
    if rounding is None:
        out[f"{mode}_search_exponents"] = {
            i.connection: [i.weight_exp_before, i.weight_exp_after] for i in infos
        }
        split, sinfo = split_network(net, twin)
        out[f"{mode}_split"] = emulator_accuracy(split, xt, yt)
        out[f"{mode}_split_synops_factor"] = {i.connection: round(i.synops_factor, 3) for i in sinfo}
    t0 = time.perf_counter()
    ft = task["fine_tune"]
    cfg = FineTuneConfig(epochs=ft["epochs"], seed=seed, validation=ft.get("validation", 0.0))
    x_ft, y_ft = task["x_train"][: ft["samples"]], task["y_train"][: ft["samples"]]
    tuned, log = fine_tune(searched, x_ft, y_ft, twin=twin, config=cfg)
    out[f"{mode}_fine_tune{sfx}"] = {**log.to_dict(), "seconds": round(time.perf_counter() - t0, 1)}
    out[f"{mode}{sfx}"] = emulator_accuracy(tuned, xt, yt)
    out["_net"] = tuned
    return out


def run_one(dataset: str, seed: int, quick: bool, alternatives: tuple[str, ...] = ()) -> dict[str, Any]:
    from spikeport.nir.export import export_nir

    t0, c0 = time.perf_counter(), time.process_time()
    task = (digits_task if dataset == "digits" else mnist_task)(seed, quick)
    sem = task["model"].semantics
    graph = export_nir(task["model"], sem, input_shape=task["shape"])
    row: dict[str, Any] = {"dataset": dataset, "seed": seed}
    row["float"] = float_accuracy(graph, sem, task["x_test"], task["y_test"])
    for mode in ("fixed", "shift"):
        row.update(quantize_mode(task, graph, sem, mode, seed))
        row.pop("_net")
        for rounding in alternatives:
            row.update(quantize_mode(task, graph, sem, mode, seed, rounding=rounding))
            row.pop("_net")
    row["test_samples"] = len(task["y_test"])
    row["seconds"] = round(time.perf_counter() - t0, 1)
    row["cpu_seconds"] = round(time.process_time() - c0, 1)  # one thread: the time on an idle core
    return row


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Worst case over seeds of (float - deployed) per dataset and mode, and whether targets hold."""
    out: dict[str, Any] = {}
    for ds in sorted({r["dataset"] for r in runs}):
        rows = [r for r in runs if r["dataset"] == ds]
        entry = {}
        for mode in ("fixed", "shift"):
            for kind, suffix in (("deployed", ""), ("untuned", "_untuned")):
                entry[f"{mode}_{kind}_max_drop"] = round(max(r["float"] - r[mode + suffix] for r in rows), 4)
            for alt in sorted(
                {k[len(mode) + 1 :] for r in rows for k in r if k.startswith(f"{mode}_untuned_")}
            ):
                rnd = alt[len("untuned_") :]
                for kind, suffix in (("deployed", f"_{rnd}"), ("untuned", f"_untuned_{rnd}")):
                    entry[f"{mode}_{kind}_{rnd}_max_drop"] = round(
                        max(r["float"] - r[mode + suffix] for r in rows), 4
                    )
        entry["targets_met"] = (
            entry["fixed_deployed_max_drop"] <= TARGETS["fixed_max_drop"]
            and entry["shift_deployed_max_drop"] <= TARGETS["shift_max_drop"]
        )
        out[ds] = entry
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 seeds, small MNIST splits (< 10 min, 2 cores)")
    ap.add_argument("--seeds", type=int, nargs="+", default=None)
    ap.add_argument("--datasets", nargs="*", default=["digits", "mnist"], choices=["digits", "mnist"])
    ap.add_argument("--recurrent", action="store_true", help="also the snnTorch RLeaky model (fixed only)")
    ap.add_argument(
        "--rounding",
        nargs="*",
        default=["min_drift"],
        choices=["nearest", "min_drift"],
        help="decay/bias roundings measured besides the default one (fields suffixed _<rounding>)",
    )
    args = ap.parse_args(argv)
    import torch
    from spikeport.quantize.quantize_nir import DEFAULT_ROUNDING

    torch.set_num_threads(1)
    seeds = args.seeds if args.seeds is not None else [0, 1, 2] if args.quick else [0, 1, 2, 3, 4]
    runs = []
    for ds in args.datasets:
        if ds == "mnist" and not all((MNIST / f).is_file() for f in MNIST_FILES):
            print(f"MNIST not found in {MNIST}; skipped", file=sys.stderr)
            continue
        for seed in seeds:
            alts = tuple(r for r in args.rounding if r != DEFAULT_ROUNDING)
            runs.append(run_one(ds, seed, args.quick, alts))
            print(
                json.dumps({k: runs[-1][k] for k in ("dataset", "seed", "float", "fixed", "shift")}),
                file=sys.stderr,
            )
    result: dict[str, Any] = {
        "runs": runs,
        "targets": TARGETS,
        "default_rounding": DEFAULT_ROUNDING,
        "summary": summarize(runs),
    }
    if args.recurrent:
        result["recurrent"] = [run_recurrent(seed, args.quick) for seed in seeds]
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
