"""Sparse spiking gradient descent (issue 16; Perez-Nieves & Goodman 2021) vs dense BPTT (prints JSON).

Two tasks, each trained twice per seed from the same initial weights and batch order: dense (spikeport's
LIF, ``sparse_grad=None``: the whole surrogate, the paper's dense baseline) and sparse
(``LIF(sparse_grad=B_th)``: the same surrogate truncated to ``|v - theta| < B_th``, theta = 1, so B_th
is in units of the threshold as in the paper). The sparse gradient *is* dense BPTT with the truncated
surrogate (``grad_max_rel_err_vs_truncated_dense``), so dense vs sparse measures what the truncation costs. Model: ``in -> Linear -> LIF -> Linear -> LIF
-> Linear -> LIF(readout)``, both hidden LIF layers sparse in the sparse model; the readout LIF has a
threshold it never reaches (a leaky integrator) and the logits are its membrane averaged over time.
Surrogate: ``1 / (100 |v - theta| + 1)^2`` (the paper's beta = 100), Adam with cosine decay, batch 64;
lr 4e-3 on SHD-like (2e-3 left both models undertrained there: about 4 pp lower, with a ~1.2 pp gap
over 5 seeds) and 2e-3 on MNIST; the same recipe for dense and sparse.

* ``shd_like``: a synthetic SHD-like spike task (100 channels, 20 classes as SHD; each class a set of spike
  "formants" sweeping across channels, each sample time-shifted, time-warped, channel-shifted, with
  background spikes);
* ``mnist_spikes``: MNIST (the official t10k file, split here) latency coded, one spike per pixel above
  0.2 at step ``round((1 - p) (T - 1))``.

Per task: ``accuracy_dense``, ``accuracy_sparse`` (test split, float torch run; mean over ``seeds``, the
``*_per_seed`` lists, ``accuracy_gap_pp_mean`` / ``accuracy_gap_pp_worst``: dense - sparse in percentage
points, mean and largest over seeds), ``active_fraction`` (of the
(sample, step, neuron) entries of each hidden layer of the trained sparse model on a test batch), and
for the second hidden layer on that batch (the layer the paper times), measured side by side:

* ``backward_speedup``: the backward time of the same layer (same weights, input spikes and incoming
  gradient) in dense mode (torch autograd through the LIF's steps, written as a lean torch loop with a
  whole-sequence ``Linear``: a little faster than spikeport's per-step modules) over the sparse one
  (numba kernels; input gradient at the first hidden layer's active entries).
  Medians over interleaved repetitions, wall time on ``--threads`` threads (torch and numba); the
  CPU-time ratio and ``backward_speedup_vs_blas_dense`` (also in CPU time), the ratio to the best dense
  backward written here (dense ``g``, one backward scan of ``delta``, two BLAS matmuls; much faster than
  autograd), are given too.
* ``memory_saved_fraction``: ``1 - sparse / dense`` of the backward's memory = bytes kept for the
  backward (tensors saved by autograd, unique storages, not counting the layer's input and
  parameters, which exist anyway) + the peak of what the backward allocates (torch profiler).
* ``grad_max_rel_err_vs_truncated_dense``: max over dW, db and dx (at the lower layer's active entries)
  of ``max |sparse - dense| / max |dense|``, dense = torch autograd with the same truncated surrogate,
  both in float64 on this batch.

Outside ``--quick``: five seeds on SHD-like with a 4000-sample test set (binomial std ~0.5 pp per model;
the gap is paired: same initial weights, batch order and test set), three on MNIST; 14 (SHD-like) / 10
(MNIST) epochs; ``accuracy_gap_pp_sem``: the standard error of the mean gap over seeds; a B_th sweep on
``shd_like`` (accuracy, active fractions, backward speed-ups, cosine of the sparse weight gradient to the
untruncated dense one: where learning breaks; ``b_th: null`` is the dense reference) and the speed-up
vs hidden size. ``--quick``: one seed, smaller data and fewer epochs, no sweeps (about 5-10 minutes on a
busy 2-core machine; the full run a few hours).

Threads: on a machine shared with other jobs, OpenMP with 2 threads can be slower than 1 by an order of
magnitude (barriers wait for a descheduled thread); ``--threads 1`` measures the work itself. Right
after a torch op, torch's OpenMP worker keeps spinning for a few ms on the second core (the sparse CPU
time includes that spinning), so the sparse kernels run on one thread unless a layer's work is large
(``sparse_grad.PARALLEL_MIN_WORK``; then two chunks of samples on two threads of their own).
``loadavg_start`` / ``loadavg_end`` record how busy the machine was.

    python benchmarks/sparse_backprop.py [--quick] [--threads 2] [--out FILE]
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numba
import numpy as np
import torch
from spikeport.quantize.training import neurons as snn
from spikeport.quantize.training.sparse_grad import sparse_lif
from torch import nn

SLOPE = 100.0
BETA = 0.95
MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
QUICK = {
    "shd_like": {"train": 1500, "test": 1000, "T": 100, "epochs": 6, "lr": 4e-3, "seeds": [0]},
    "mnist_spikes": {"train": 3000, "test": 1000, "T": 40, "epochs": 3, "lr": 2e-3, "seeds": [0]},
    "hidden": 200,
    "b_th": 0.05,
    "reps": 7,
}
FULL = {
    "shd_like": {"train": 2000, "test": 4000, "T": 100, "epochs": 14, "lr": 4e-3, "seeds": [0, 1, 2, 3, 4]},
    "mnist_spikes": {"train": 5000, "test": 2000, "T": 40, "epochs": 10, "lr": 2e-3, "seeds": [0, 1, 2]},
    "hidden": 200,
    "b_th": 0.05,
    "reps": 9,
    "sweep_config": {"train": 1500, "test": 1000, "T": 100, "epochs": 6, "lr": 4e-3},
    "sweep_b_th": [None, 1e-4, 1e-3, 1e-2, 0.05, 0.2, 0.5],
    "sweep_hidden": [200, 400, 800],
}


# ---------------------------------------------------------------- data


def shd_like(
    n: int, n_t: int, seed: int, channels: int = 100, classes: int = 20
) -> tuple[np.ndarray, np.ndarray]:
    """Spikes ``(n, n_t, channels)`` (float32 0/1) and labels of the synthetic SHD-like task."""
    proto = np.random.default_rng(1234)  # the class templates are fixed; ``seed`` draws the samples
    k = 5
    c0 = proto.uniform(10, channels - 10, (classes, k))
    slope = proto.uniform(-0.6, 0.6, (classes, k)) * channels / n_t
    on = proto.uniform(0.05, 0.6, (classes, k))
    length = proto.uniform(0.2, 0.4, (classes, k))
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    t = np.arange(n_t)[None, :, None] / n_t  # (1, T, 1)
    warp = rng.uniform(0.8, 1.2, (n, 1, 1))
    tt = (t - rng.uniform(-0.12, 0.12, (n, 1, 1))) * warp  # (n, T, 1)
    ch = np.arange(channels)[None, None, :]
    rate = np.full((n, n_t, channels), 0.01)
    shift = rng.uniform(-6, 6, (n, 1, 1))
    for j in range(k):
        start, dur = on[y, j][:, None, None], length[y, j][:, None, None]
        active = (tt >= start) & (tt < start + dur)
        centre = c0[y, j][:, None, None] + slope[y, j][:, None, None] * (tt - start) * n_t + shift
        rate += 0.15 * active * np.exp(-0.5 * ((ch - centre) / 1.5) ** 2)
    return (rng.random(rate.shape) < rate).astype(np.float32), y


def mnist_spikes(n_t: int, n_train: int, n_test: int) -> tuple[np.ndarray, ...]:
    """Latency-coded MNIST (t10k split, seeded): ``x_tr, y_tr, x_te, y_te``."""
    paths = [MNIST / "t10k-images-idx3-ubyte.gz", MNIST / "t10k-labels-idx1-ubyte.gz"]
    if not all(p.is_file() for p in paths):
        sys.exit(f"MNIST not found under {MNIST}")
    with gzip.open(paths[0]) as f:
        img = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784) / 255.0
    with gzip.open(paths[1]) as f:
        lab = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    idx = np.random.default_rng(0).permutation(len(lab))
    tr, te = idx[:n_train], idx[len(lab) - n_test :]

    def encode(p: np.ndarray) -> np.ndarray:
        x = np.zeros((len(p), n_t, 784), np.float32)
        b, i = np.nonzero(p > 0.2)
        x[b, np.rint((1 - p[b, i]) * (n_t - 1)).astype(int), i] = 1.0
        return x

    return encode(img[tr]), lab[tr], encode(img[te]), lab[te]


# ---------------------------------------------------------------- model and training


def make_model(n_in: int, hidden: int, b_th: float | None, seed: int, n_out: int = 20) -> snn.SNN:
    """``n_in -> hidden -> hidden -> n_out``; weights N(0, 1/(in * rate-ish)) so the layers start active."""
    torch.manual_seed(seed)
    lif = {"beta": BETA, "slope": SLOPE}
    model = snn.SNN(
        nn.Linear(n_in, hidden), snn.LIF(hidden, sparse_grad=b_th, **lif),
        nn.Linear(hidden, hidden), snn.LIF(hidden, sparse_grad=b_th, **lif),
        nn.Linear(hidden, n_out), snn.LIF(n_out, threshold=1e9, **lif),
        semantics="snntorch",
    )  # fmt: skip
    with torch.no_grad():
        for layer, gain in zip(model.layers[::2], (4.0, 3.0, 1.0), strict=True):
            layer.weight.normal_(0.0, gain / math.sqrt(layer.in_features))
            layer.bias.zero_()
    return model


def logits(model: snn.SNN, x: torch.Tensor) -> torch.Tensor:
    model(x)
    return model.record["5/v"].mean(1)


def train(
    model: snn.SNN, x: np.ndarray, y: np.ndarray, epochs: int, seed: int, lr: float, batch: int = 64
) -> float:
    """Adam (``lr``, cosine decay over the epochs: the last epochs' noise averages out); returns the
    training time in seconds. Batch order from ``seed``."""
    opt = torch.optim.Adam(model.parameters(), lr)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    for epoch in range(epochs):
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))
        perm = rng.permutation(len(y))
        for i in range(0, len(perm), batch):
            b = perm[i : i + batch]
            loss = nn.functional.cross_entropy(logits(model, torch.from_numpy(x[b])), torch.from_numpy(y[b]))
            opt.zero_grad()
            loss.backward()
            opt.step()
    return time.perf_counter() - t0


def accuracy(model: snn.SNN, x: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        pred = torch.cat(
            [logits(model, torch.from_numpy(x[i : i + 256])).argmax(1) for i in range(0, len(y), 256)]
        )
    return float((pred.numpy() == y).mean())


# ---------------------------------------------------------------- the second hidden layer, side by side


class _TruncatedSpike(torch.autograd.Function):
    """Heaviside forward; backward ``grad * f'(u) * [|u| < B_th]`` (B_th = inf: the dense surrogate)."""

    @staticmethod
    def forward(ctx: Any, u: torch.Tensor, b_th: float) -> torch.Tensor:
        ctx.save_for_backward(u)
        ctx.b_th = b_th
        return (u > 0).to(u.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (u,) = ctx.saved_tensors
        out = grad / (SLOPE * u.abs() + 1.0) ** 2
        return (out if math.isinf(ctx.b_th) else out * (u.abs() < ctx.b_th)), None


def dense_layer(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, a: float, b_th: float) -> torch.Tensor:
    """Linear -> LIF (snnTorch semantics) with torch autograd, as spikeport's LIF steps."""
    cur = nn.functional.linear(x, w, b)
    v = torch.zeros_like(cur[:, 0])
    prev = torch.zeros_like(v)
    out = []
    for t in range(cur.shape[1]):
        v = a * v + cur[:, t] - prev.detach()
        prev = _TruncatedSpike.apply(v - 1.0, b_th)
        out.append(prev)
    return torch.stack(out, 1)


class _FusedDense(torch.autograd.Function):
    """The dense backward written out: ``g = grad f'(u)``, one backward scan, two matmuls."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, a: float) -> torch.Tensor:
        with torch.no_grad():
            cur = nn.functional.linear(x, w, b)
            v, prev, u_all = torch.zeros_like(cur[:, 0]), torch.zeros_like(cur[:, 0]), torch.empty_like(cur)
            for t in range(cur.shape[1]):
                v = a * v + cur[:, t] - prev
                u_all[:, t] = v - 1.0
                prev = (v > 1.0).to(v.dtype)
        ctx.save_for_backward(x, w, u_all)
        ctx.a = a
        return (u_all > 0).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        x, w, u = ctx.saved_tensors
        d = grad / (SLOPE * u.abs() + 1.0) ** 2
        for t in range(d.shape[1] - 2, -1, -1):
            d[:, t] += ctx.a * d[:, t + 1]
        d2 = d.reshape(-1, d.shape[2])
        return d @ w, d2.t() @ x.reshape(-1, x.shape[2]), d2.sum(0), None


def layer_case(model: snn.SNN, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """The second hidden layer's input spikes, the lower layer's active set, the incoming gradient."""
    model(torch.from_numpy(x))
    rec = model.record
    loss = nn.functional.cross_entropy(rec["5/v"].mean(1), torch.from_numpy(y))
    go = torch.autograd.grad(loss, rec["3/spikes"])[0]
    lower = rec["1/spikes"].grad_fn.active
    lin, lif = model.layers[2], model.layers[3]
    numel = rec["1/spikes"].numel()
    act2 = rec["3/spikes"].grad_fn.active.numel() / numel * lin.in_features / lin.out_features
    return {
        "x": rec["1/spikes"].detach(),
        "lower": lower,
        "go": go,
        "w": lin.weight.detach(),
        "b": lin.bias.detach(),
        "lif": lif,
        "a": float(1.0 - lif.semantics.dt / lif.tau(lif.semantics.dt)[0]),
        "active": [lower.numel() / numel, act2],
    }


def _backward_fns(case: dict[str, Any]) -> dict[str, Any]:
    """name -> a function that runs the layer's forward and returns a thunk running its backward."""
    a32 = float(np.float32(case["a"]))

    def prepare(kind: str) -> Any:
        x = case["x"].clone().requires_grad_()
        w, b = case["w"].clone().requires_grad_(), case["b"].clone().requires_grad_()
        if kind == "sparse":
            out = sparse_lif(x, w, b, case["lif"], lower=case["lower"])[0]
        elif kind == "fused_dense":
            out = _FusedDense.apply(x, w, b, a32)
        else:
            out = dense_layer(x, w, b, a32, math.inf)
        return (lambda: torch.autograd.grad(out, (x, w, b), case["go"])), (x, w, b)

    return {k: (lambda k=k: prepare(k)) for k in ("dense", "sparse", "fused_dense")}


def time_backward(case: dict[str, Any], reps: int) -> dict[str, Any]:
    """Median wall and CPU seconds of each backward, interleaved (forwards not timed)."""
    fns = _backward_fns(case)
    for f in fns.values():  # warm-up (numba compilation or cache load)
        f()[0]()
    wall: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for k, f in fns.items():
            run = f()[0]
            t0, c0 = time.perf_counter(), time.process_time()
            run()
            wall[k].append(time.perf_counter() - t0)
            cpu[k].append(time.process_time() - c0)
    med = {k: float(np.median(v)) for k, v in wall.items()}
    med_cpu = {k: float(np.median(v)) for k, v in cpu.items()}
    return {
        "backward_s": med,
        "backward_cpu_s": med_cpu,
        "backward_speedup": med["dense"] / med["sparse"],
        "backward_speedup_cpu_time": med_cpu["dense"] / med_cpu["sparse"],
        "backward_speedup_vs_blas_dense": med["fused_dense"] / med["sparse"],
        "backward_speedup_vs_blas_dense_cpu_time": med_cpu["fused_dense"] / med_cpu["sparse"],
    }


def _saved_bytes(make: Any) -> tuple[Any, int]:
    """Run ``make()`` (a forward returning ``(backward thunk, inputs)``) counting the unique storages
    autograd saves for the backward, less the inputs' and parameters' own (they exist anyway)."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        run, inputs = make()
    for t in inputs:
        seen.pop(t.untyped_storage().data_ptr(), None)
    return run, sum(seen.values())


def _peak_allocated(run: Any) -> int:
    """Peak bytes allocated by torch on the CPU while ``run()`` runs (profiler memory events)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run()
    path = Path(tempfile.mkdtemp()) / "trace.json"
    prof.export_chrome_trace(str(path))
    events = json.loads(path.read_text())["traceEvents"]
    path.unlink()
    totals = [e["args"]["Total Allocated"] for e in events if e.get("name") == "[memory]"]
    return int(max([0, *totals]))


def backward_memory(case: dict[str, Any]) -> dict[str, Any]:
    """Bytes kept for the backward + peak allocated by it, dense (autograd) and sparse."""
    out: dict[str, Any] = {}
    for kind, make in _backward_fns(case).items():
        if kind == "fused_dense":
            continue
        run, saved = _saved_bytes(make)
        peak = _peak_allocated(run)
        out[kind] = {"saved_bytes": saved, "backward_peak_bytes": peak, "total_bytes": saved + peak}
    out["memory_saved_fraction"] = 1.0 - out["sparse"]["total_bytes"] / out["dense"]["total_bytes"]
    return out


def grad_error(case: dict[str, Any]) -> float:
    """max over dW, db, dx (at the lower layer's active entries) of max|sparse - dense| / max|dense|,
    dense = autograd with the same truncated surrogate; float64."""
    lower, go = case["lower"], case["go"].double()
    grads = {}
    for kind in ("dense", "sparse"):
        x = case["x"].double().requires_grad_()
        w, b = case["w"].double().requires_grad_(), case["b"].double().requires_grad_()
        if kind == "sparse":
            out = sparse_lif(x, w, b, case["lif"], lower=lower)[0]
        else:
            out = dense_layer(x, w, b, case["a"], case["lif"].sparse_grad)
        dx, dw, db = torch.autograd.grad(out, (x, w, b), go)
        dx = dx.to_dense() if dx.layout == torch.sparse_coo else dx
        grads[kind] = (dx.flatten()[lower], dw, db)
    errs = [
        float((s - d).abs().max() / d.abs().max())
        for s, d in zip(grads["sparse"], grads["dense"], strict=True)
    ]
    return max(errs)


# ---------------------------------------------------------------- tasks, sweeps, main


def load_task(name: str, cfg: dict[str, Any]) -> tuple[np.ndarray, ...]:
    if name == "shd_like":
        x_tr, y_tr = shd_like(cfg["train"], cfg["T"], seed=1)
        x_te, y_te = shd_like(cfg["test"], cfg["T"], seed=2)
        return x_tr, y_tr, x_te, y_te
    return mnist_spikes(cfg["T"], cfg["train"], cfg["test"])


def run_task(name: str, cfg: dict[str, Any], hidden: int, b_th: float, reps: int) -> dict[str, Any]:
    """Train dense and sparse per seed (same initial weights and batch order within a seed); accuracies
    (mean over seeds, per seed, worst-case gap); the second hidden layer's backward side by side
    (the first seed's sparse model)."""
    x_tr, y_tr, x_te, y_te = load_task(name, cfg)
    res: dict[str, Any] = {"task": name, **cfg, "hidden": hidden, "b_th": b_th, "n_in": x_tr.shape[2]}
    acc: dict[str, list[float]] = {"dense": [], "sparse": []}
    first = None
    for seed in cfg["seeds"]:
        for kind, bt in (("dense", None), ("sparse", b_th)):
            model = make_model(x_tr.shape[2], hidden, bt, seed=seed, n_out=int(y_tr.max()) + 1)
            res.setdefault(f"train_s_{kind}", []).append(
                train(model, x_tr, y_tr, cfg["epochs"], seed, cfg["lr"])
            )
            acc[kind].append(accuracy(model, x_te, y_te))
            first = model if first is None and kind == "sparse" else first
    for kind, values in acc.items():
        res[f"accuracy_{kind}"] = float(np.mean(values))
        res[f"accuracy_{kind}_per_seed"] = values
    gaps = [100.0 * (d - s) for d, s in zip(acc["dense"], acc["sparse"], strict=True)]
    res["accuracy_gap_pp_mean"], res["accuracy_gap_pp_worst"] = float(np.mean(gaps)), max(gaps)
    if len(gaps) > 1:  # standard error of the mean gap over seeds (paired: same init, same test set)
        res["accuracy_gap_pp_sem"] = float(np.std(gaps, ddof=1) / math.sqrt(len(gaps)))
    case = layer_case(first, x_te[:256], y_te[:256])
    res["active_fraction_per_layer"] = case["active"]
    res["active_fraction"] = case["active"][1]
    res["grad_max_rel_err_vs_truncated_dense"] = grad_error(case)
    res.update(time_backward(case, reps))
    mem = backward_memory(case)
    res["memory_saved_fraction"] = mem.pop("memory_saved_fraction")
    res["backward_memory"] = mem
    return res


def sweep_b_th(
    cfg: dict[str, Any], hidden: int, values: list[float | None], reps: int
) -> list[dict[str, Any]]:
    """Accuracy, active fractions, backward speed-up and cos(sparse dW, dense dW) vs B_th on shd_like
    (paper's Fig. 3; one seed)."""
    x_tr, y_tr, x_te, y_te = load_task("shd_like", cfg)
    rows = []
    for b_th in values:
        model = make_model(x_tr.shape[2], hidden, b_th, seed=0)
        train(model, x_tr, y_tr, cfg["epochs"], 0, cfg["lr"])
        row: dict[str, Any] = {"b_th": b_th, "accuracy": accuracy(model, x_te, y_te)}
        if b_th is not None:  # None: the dense reference
            case = layer_case(model, x_te[:256], y_te[:256])
            row["active_fraction_per_layer"] = case["active"]
            row["active_fraction"] = case["active"][1]
            row["grad_cosine_vs_untruncated"] = _cosine_to_untruncated(case)
            row.update(time_backward(case, reps))
        rows.append(row)
    return rows


def _cosine_to_untruncated(case: dict[str, Any]) -> float:
    """cos(dW sparse, dW dense with the untruncated surrogate) of the second hidden layer."""
    out = []
    for b_th in (case["lif"].sparse_grad, math.inf):
        w = case["w"].double().requires_grad_()
        s = dense_layer(case["x"].double(), w, case["b"].double(), case["a"], b_th)
        out.append(torch.autograd.grad(s, w, case["go"].double())[0].flatten())
    return float(torch.nn.functional.cosine_similarity(out[0], out[1], dim=0))


def sweep_hidden(cfg: dict[str, Any], sizes: list[int], b_th: float, reps: int) -> list[dict[str, Any]]:
    """Backward speed-up and memory vs hidden size (shd_like, sparse model trained for 2 epochs)."""
    x_tr, y_tr, x_te, y_te = load_task("shd_like", {**cfg, "train": min(cfg["train"], 1000)})
    rows = []
    for hidden in sizes:
        model = make_model(x_tr.shape[2], hidden, b_th, seed=0)
        train(model, x_tr, y_tr, 2, 0, cfg["lr"])
        case = layer_case(model, x_te[:256], y_te[:256])
        row = {"hidden": hidden, "active_fraction": case["active"][1], **time_backward(case, reps)}
        row["memory_saved_fraction"] = backward_memory(case)["memory_saved_fraction"]
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small data, few epochs, no sweeps")
    ap.add_argument("--threads", type=int, default=2, help="torch and numba threads (default 2)")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = ap.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    torch.set_num_threads(args.threads)
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    t0 = time.perf_counter()
    res: dict[str, Any] = {
        "quick": args.quick,
        "threads": args.threads,
        "cpus": os.cpu_count(),
        "loadavg_start": list(os.getloadavg()),
        "torch": torch.__version__,
    }
    res["tasks"] = {
        name: run_task(name, cfg[name], cfg["hidden"], cfg["b_th"], cfg["reps"])
        for name in ("shd_like", "mnist_spikes")
    }
    if not args.quick:
        res["sweep_b_th"] = sweep_b_th(cfg["sweep_config"], cfg["hidden"], cfg["sweep_b_th"], cfg["reps"])
        res["sweep_hidden"] = sweep_hidden(cfg["sweep_config"], cfg["sweep_hidden"], cfg["b_th"], cfg["reps"])
    res["loadavg_end"] = list(os.getloadavg())
    res["wall_s"] = time.perf_counter() - t0
    text = json.dumps(res, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
