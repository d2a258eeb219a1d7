"""Hybrid-spiking LMU with temporally diffused quantization (Voelker et al. 2020): prints JSON.

Row-sequential MNIST (T = 28 rows of 28 pixels; the MNIST test set at ``../shared/data/mnist`` split
into our own train and test parts). Steps:

1. the non-spiking LMU (clipped ReLU, no quantizer) trained for ``E1 + E2`` epochs:
   ``accuracy_nonspiking``;
2. from its epoch-``E1`` checkpoint, for every ``dt`` of the sweep and both quantizers (diffused error,
   per-step rounding), ``E2`` epochs annealing ``dt`` geometrically from 64 down to ``dt``; ``dt``
   bounds the spikes per step (rates are clipped to [0, 1]), so activity is at most
   ``ceil(log2(dt + 1))`` bits. The ``dt = 7`` entries give ``accuracy_spiking`` and
   ``accuracy_rounding_same_bits`` (both at most 3 bits);
3. the ``dt = 7`` diffused model deployed as an integer network (:mod:`spikeport.quantize.lmu_deploy`):
   accuracy of the analytic integer oracle on the whole test part, the emulator checked bit-exact
   against it on a subset, Lava (0.10.0 fixed_pt) checked bit-exact on a few samples, the linear
   memory's quantization error, Lava 0.10.0's own SigmaDelta used as the quantizer ("naive": it
   drops the diffused error), and payload-bit weighted SynOps (emulator/energy/payload_bits.py).

Metrics (docs/seed-methods.md): ``mean_activity_bits`` = mean over hidden neurons of
``ceil(log2(max |n| + 1))`` over the test part and time; ``mean_significant_bits`` = mean
``bit_length(|n|)`` over nonzero spike counts. Accuracies are means over ``seeds`` (per-seed values
kept); the deployment uses the first seed's model. Outside ``--quick``: permuted sequential MNIST
(T = 784, one pixel per step) on a subset. Accuracies are measured on our test part, not MNIST's
training set, and vary with float summation order: targets live here, not in the tests.
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from spikeport.emulator.energy.payload_bits import payload_synops
from spikeport.emulator.engines.dispatch import run
from spikeport.quantize import lmu_deploy as D
from spikeport.quantize.training.lmu import LMU, evaluate, fit
from spikeport.quantize.training.sigma_delta import (
    SigmaDeltaActivation,
    activity_bits,
    anneal_dt,
    significant_bits,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
DT_START = 64.0
DT_HEADLINE = 7


def load_mnist() -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(DATA / "t10k-images-idx3-ubyte.gz") as f:
        img = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(DATA / "t10k-labels-idx1-ubyte.gz") as f:
        lab = np.frombuffer(f.read(), np.uint8, offset=8)
    return img, lab


def config(quick: bool) -> dict[str, Any]:
    if quick:
        return {
            "train": 6000,
            "test": 2000,
            "order": 16,
            "hidden": 64,
            "e1": 10,
            "e2": 4,
            "lava": 2,
            "emu": 200,
            "sweep": (1, 3, 7),
            "seeds": (0, 1),
            "lr": 5e-3,
        }
    return {
        "train": 8000,
        "test": 2000,
        "order": 16,
        "hidden": 128,
        "e1": 16,
        "e2": 6,
        "lava": 6,
        "emu": 2000,
        "sweep": (1, 2, 3, 7, 15),
        "seeds": (0, 1),
        "lr": 5e-3,
    }


def _bits(counts: torch.Tensor) -> tuple[float, float]:
    return float(activity_bits(counts).double().mean()), significant_bits(counts)


def train_sweep(
    cfg: dict[str, Any], data: dict[str, torch.Tensor], steps: int, seed: int = 0
) -> dict[str, Any]:
    """Steps 1 and 2 of the module docstring for one seed; returns the non-spiking accuracy, the
    sweep and the trained models."""
    torch.manual_seed(seed)
    base = LMU(data["x_tr"].shape[2], cfg["order"], steps + 1, cfg["hidden"], 10, seed=seed)
    fit(base, data["x_tr"], data["y_tr"], epochs=cfg["e1"], lr=cfg["lr"], seed=seed)
    ckpt = copy.deepcopy(base)
    fit(base, data["x_tr"], data["y_tr"], epochs=cfg["e2"], lr=cfg["lr"] / 2, seed=seed + 1)
    acc_ns, _ = evaluate(base, data["x_te"], data["y_te"])
    sweep, models = [], {}
    for dt in cfg["sweep"]:
        for mode in ("diffuse", "round"):
            model = copy.deepcopy(ckpt)
            model.act = SigmaDeltaActivation(dt=DT_START, mode=mode)
            fit(
                model,
                data["x_tr"],
                data["y_tr"],
                epochs=cfg["e2"],
                lr=cfg["lr"] / 2,
                seed=seed + 1,
                dt_schedule=lambda p, dt=dt: anneal_dt(p, DT_START, float(dt)),
            )
            model.act.set(dt=float(dt))
            acc, counts = evaluate(model, data["x_te"], data["y_te"])
            bits, sig = _bits(counts)
            sweep.append(
                {
                    "dt": dt,
                    "bits_bound": int(dt).bit_length(),
                    "mode": mode,
                    "accuracy": acc,
                    "mean_activity_bits": bits,
                    "mean_significant_bits": sig,
                }
            )
            models[(dt, mode)] = model
            print(f"seed {seed} dt={dt} {mode}: {acc:.4f} bits={bits:.2f}", file=sys.stderr, flush=True)
    return {"accuracy_nonspiking": acc_ns, "sweep": sweep, "models": models}


def _energy(il: D.IntegerLMU, net: Any, x: np.ndarray, steps: int) -> dict[str, Any]:
    res = run(net, D.encode_inputs(il, x), record=("spikes", "act"))
    msgs = {g.name: res.outputs[f"{g.name}/spikes"] for g in net.groups}
    msgs["x"] = D.encode_inputs(il, x)
    rep = payload_synops(net, msgs)
    spiking = [k for k, c in zip(rep["connections"], net.connections, strict=True) if c.source == "q"]
    q = {
        k: sum(rep["connections"][c][k] for c in spiking) / len(x)
        for k in ("synops", "bit_synops", "add_synops")
    }
    q["significant_bits"] = q["bit_synops"] / q["synops"] if q["synops"] else 0.0
    total = {k: v for k, v in rep.items() if k != "connections"}
    return {"all_connections": total, "spike_connections": q, "outputs": res.outputs}


def _lava_check(il: D.IntegerLMU, net: Any, x: np.ndarray) -> dict[str, Any]:
    from spikeport.lava.backend import run_lava

    xs = D.encode_inputs(il, x)
    rec = ("spikes", "act", "sigma")
    t0 = time.perf_counter()
    lava = run_lava(net, xs, record=rec)
    secs = time.perf_counter() - t0
    emu = run(net, xs, record=rec)
    oracle = D.integer_forward(il, x)
    dec = D.decode(il, lava.outputs, x.shape[1])
    same = all(np.array_equal(emu.outputs[k], lava.outputs[k]) for k in lava.outputs)
    same = same and np.array_equal(dec["n"], oracle["n"]) and np.array_equal(dec["logits"], oracle["logits"])
    return {
        "lava_bit_exact": bool(same),
        "lava_samples": len(x),
        "lava_seconds": secs,
        "lava_variables_compared": len(lava.outputs),
    }


def deploy(cfg: dict[str, Any], model: LMU, x_te: np.ndarray, y_te: np.ndarray, lava: bool) -> dict[str, Any]:
    """Step 3 of the module docstring."""
    steps = x_te.shape[1]
    params = model.deploy_params()
    il = D.quantize_lmu(params, steps=steps)
    out = D.integer_forward(il, x_te)
    naive = D.integer_forward(il, x_te, "naive")
    n = torch.from_numpy(out["n"])
    net = D.build_network(il, "lava")
    sub = x_te[: cfg["emu"]]
    en = _energy(il, net, sub, steps)
    dec = D.decode(il, en.pop("outputs"), steps)
    ref = D.integer_forward(il, sub)
    result = {
        "accuracy_deployed_integer": float((out["logits"].argmax(1) == y_te).mean()),
        "accuracy_lava_0100_sigma_delta_quantizer": float((naive["logits"].argmax(1) == y_te).mean()),
        "deployed_mean_activity_bits": float(activity_bits(n).double().mean()),
        "deployed_mean_significant_bits": significant_bits(n),
        "emulator_bit_exact": bool(
            np.array_equal(dec["n"], ref["n"]) and np.array_equal(dec["logits"], ref["logits"])
        ),
        "emulator_samples": len(sub),
        "memory_quantization_error": D.memory_error(params, il, x_te, out),
        "memory_weight_grid_error_vs_zoh": model.memory_grid_error(),
        "weight_quantization": il.report["weights"],
        "network": {
            "groups": len(net.groups),
            "connections": len(net.connections),
            "lava_steps": D.hw_steps(il, steps),
            "period": D.PERIOD,
        },
        "energy_per_sample": en,
    }
    if lava:
        result.update(_lava_check(il, net, x_te[: cfg["lava"]]))
    return result


def psmnist(
    train: int = 2000, test: int = 500, epochs: tuple[int, int] = (6, 3), seed: int = 0
) -> dict[str, Any]:
    """Permuted sequential MNIST (T = 784) on a subset, non-spiking vs diffused dt = 7."""
    img, lab = load_mnist()
    rng = np.random.default_rng(seed)
    idx, perm = rng.permutation(len(lab)), rng.permutation(784)
    tr, te = idx[:train], idx[len(lab) - test :]
    x = torch.tensor(img.reshape(-1, 784)[:, perm, None] / 255.0, dtype=torch.float32)
    y = torch.tensor(lab, dtype=torch.long)
    base = LMU(1, 32, 785, 64, 10, seed=0)
    fit(base, x[tr], y[tr], epochs=epochs[0], lr=5e-3, seed=0)
    acc_ns, _ = evaluate(base, x[te], y[te])
    base.act = SigmaDeltaActivation(dt=DT_START)
    fit(
        base,
        x[tr],
        y[tr],
        epochs=epochs[1],
        lr=2.5e-3,
        seed=1,
        dt_schedule=lambda p: anneal_dt(p, DT_START, 7.0),
    )
    base.act.set(dt=7.0)
    acc, counts = evaluate(base, x[te], y[te])
    bits, sig = _bits(counts)
    return {
        "train": len(tr),
        "test": len(te),
        "accuracy_nonspiking": acc_ns,
        "accuracy_spiking": acc,
        "mean_activity_bits": bits,
        "mean_significant_bits": sig,
    }


def merge_seeds(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean over seeds of every sweep entry (per-seed accuracies kept); models of the first seed."""
    rows = []
    for i, row in enumerate(runs[0]["sweep"]):
        same = [r["sweep"][i] for r in runs]
        mean = {
            k: float(np.mean([x[k] for x in same]))
            for k in ("accuracy", "mean_activity_bits", "mean_significant_bits")
        }
        rows.append({**row, **mean, "accuracy_per_seed": [x["accuracy"] for x in same]})
    ns = [r["accuracy_nonspiking"] for r in runs]
    return {
        "accuracy_nonspiking": float(np.mean(ns)),
        "accuracy_nonspiking_per_seed": ns,
        "sweep": rows,
        "models": runs[0]["models"],
    }


def _split(cfg: dict[str, Any]) -> tuple[dict[str, torch.Tensor], np.ndarray, np.ndarray]:
    img, lab = load_mnist()
    idx = np.random.default_rng(0).permutation(len(lab))
    tr, te = idx[: cfg["train"]], idx[len(lab) - cfg["test"] :]
    x = torch.tensor(img / 255.0, dtype=torch.float32)
    y = torch.tensor(lab.astype(np.int64))
    data = {"x_tr": x[tr], "y_tr": y[tr], "x_te": x[te], "y_te": y[te]}
    return data, img[te].astype(np.int64), lab[te].astype(np.int64)


def _fewest_bits(out: dict[str, Any], pairs: list[tuple[dict, dict]]) -> dict[str, Any] | None:
    """The diffused setting with the fewest bits within 1 pp of the non-spiking LMU, if any."""
    ok = [(d, r) for d, r in pairs if d["accuracy"] >= out["accuracy_nonspiking"] - 0.01]
    if not ok:
        return None
    d, r = min(ok, key=lambda p: p[0]["mean_activity_bits"])
    return {
        "dt": d["dt"],
        "mean_activity_bits": d["mean_activity_bits"],
        "accuracy_spiking": d["accuracy"],
        "accuracy_rounding_same_bits": r["accuracy"],
    }


def _targets(out: dict[str, Any]) -> dict[str, Any]:
    rows = out["sweep"]
    pairs = [
        (d, r)
        for d in rows
        if d["mode"] == "diffuse"
        for r in rows
        if r["mode"] == "round" and r["dt"] == d["dt"]
    ]
    best = _fewest_bits(out, pairs)
    every_seed = {
        str(d["dt"]): all(a > b for a, b in zip(d["accuracy_per_seed"], r["accuracy_per_seed"], strict=True))
        for d, r in pairs
    }
    return {
        "spiking_within_1pp_at_le_3_bits": best is not None and best["mean_activity_bits"] <= 3,
        "headline_within_1pp": bool(out["accuracy_spiking"] >= out["accuracy_nonspiking"] - 0.01),
        "fewest_bits_within_1pp": best,
        "diffusion_minus_rounding_by_dt": {str(d["dt"]): d["accuracy"] - r["accuracy"] for d, r in pairs},
        "diffusion_beats_rounding_every_seed_by_dt": every_seed,
        "diffusion_beats_rounding_at_headline_bits": bool(
            out["accuracy_spiking"] > out["accuracy_rounding_same_bits"]
        ),
        "lava_bit_exact": out.get("lava_bit_exact"),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="CI-sized run (about 10 minutes on 2 cores)")
    ap.add_argument("--no-lava", action="store_true", help="skip the Lava bit-exactness check")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    cfg = config(args.quick)
    t0 = time.perf_counter()
    data, x_te, y_te = _split(cfg)
    res = merge_seeds([train_sweep(cfg, data, steps=28, seed=k) for k in cfg["seeds"]])
    head = {(r["dt"], r["mode"]): r for r in res["sweep"]}
    d, r = head[(DT_HEADLINE, "diffuse")], head[(DT_HEADLINE, "round")]
    out: dict[str, Any] = {
        "benchmark": "sigma_delta_lmu",
        "quick": args.quick,
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()},
        "task": "row-sequential MNIST, T = 28 (+1 blank step)",
        "dt_headline": DT_HEADLINE,
        "accuracy_nonspiking": res["accuracy_nonspiking"],
        "accuracy_nonspiking_per_seed": res["accuracy_nonspiking_per_seed"],
        "accuracy_spiking": d["accuracy"],
        "mean_activity_bits": d["mean_activity_bits"],
        "mean_significant_bits": d["mean_significant_bits"],
        "accuracy_rounding_same_bits": r["accuracy"],
        "rounding_mean_activity_bits": r["mean_activity_bits"],
        "sweep": res["sweep"],
    }
    out.update(deploy(cfg, res["models"][(DT_HEADLINE, "diffuse")], x_te, y_te, lava=not args.no_lava))
    if not args.quick:
        out["psmnist"] = psmnist()
    out["targets"] = _targets(out)
    out["seconds"] = time.perf_counter() - t0
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
