"""Sparse connections on the NIR paper's N-MNIST CNN: file size, quantization time, peak memory, run time.

Model: the Sinabs CNN shape of ``benchmarks/multi_spike_cnn.py`` (``2x34x34 -> Conv(16, 5x5, pad 1) ->
IAF -> SumPool 2 -> Conv(16, 3x3, pad 1) -> IAF -> SumPool 2 -> Conv(8, 3x3, pad 1) -> IAF -> SumPool 2
-> Flatten (128) -> Linear(10) -> IAF``), seeded untrained weights, exported with ``sinabs.to_nir``,
quantized under the ``sinabs`` convention with one spike per step (8-bit, no calibration). Its lowered
convolutions are (16384 x 2312), (4096 x 16384) and (512 x 4096) matrices, about 3 % non-zero.

Two variants, each in its own subprocess (so that ``peak_rss_mb``, the child's max RSS, is its own):

- ``sparse``: as shipped: lowered convolutions stay ``scipy.sparse`` in the quantizer and become
  :class:`~spikeport.emulator.sparse_weights.SparseWeights` connections;
- ``dense``: the same code with sparse matrices switched off (``sparse_linear.DENSE_FRACTION = -1``):
  dense matrices end to end, as before sparse connections existed.

Fields per variant: ``quantize_s`` (``quantize(graph, sem)``), ``file_mb`` (``save_network``),
``quantize_cpu_s`` (its process CPU time, less sensitive to a loaded machine), ``run_s`` (dense engine, ``--batch`` samples of ``--steps`` steps of 5 % random events, spikes and v
of every group recorded; the first call's numba compile excluded by a warm-up run), ``peak_rss_mb``
(max RSS after those), ``load_s`` (``load_network``); for ``sparse``, ``equal_to_dense``: the run's
every recorded array ``np.array_equal`` to the same network with its weights made dense (a second
representation, run by the same engine; measured after ``peak_rss_mb``). ``ratios`` compare the two.

    python benchmarks/sparse_cnn.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np


def model(seed: int = 0) -> Any:
    import sinabs.layers as sl
    import torch
    from torch import nn

    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(2, 16, 5, padding=1, bias=False),
        sl.IAFSqueeze(batch_size=1),
        sl.SumPool2d(2),
        nn.Conv2d(16, 16, 3, padding=1, bias=False),
        sl.IAFSqueeze(batch_size=1),
        sl.SumPool2d(2),
        nn.Conv2d(16, 8, 3, padding=1, bias=False),
        sl.IAFSqueeze(batch_size=1),
        sl.SumPool2d(2),
        nn.Flatten(),
        nn.Linear(128, 10, bias=False),
        sl.IAFSqueeze(batch_size=1),
    )
    with torch.no_grad():
        for layer, gain in zip((0, 3, 6, 10), (6.0, 3.0, 3.0, 3.0), strict=True):
            net[layer].weight.mul_(gain)
    return net


def graph(seed: int = 0) -> Any:
    import sinabs
    import torch
    from spikeport.nir.io import repair_nir

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return repair_nir(sinabs.to_nir(model(seed), torch.zeros(1, 2, 34, 34)))


def _dense_twin(net: Any) -> Any:
    conns = tuple(
        replace(c, weights=c.dense_weights(limit=1 << 28)) if c.is_sparse else c for c in net.connections
    )
    return replace(net, connections=conns)


def child(variant: str, batch: int, steps: int, tmp: str) -> dict[str, Any]:
    """One variant, measured in this process."""
    from spikeport.emulator.engines.dispatch import run
    from spikeport.emulator.io import load_network, save_network
    from spikeport.quantize.graph import sparse_linear
    from spikeport.quantize.quantize_nir import quantize
    from spikeport.quantize.semantics import semantics

    if variant == "dense":
        sparse_linear.DENSE_FRACTION = -1.0
    g = graph()
    sem = semantics("sinabs", multi_spike=False)
    t0, c0 = time.perf_counter(), time.process_time()
    net, _ = quantize(g, sem)
    quantize_s, quantize_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    path = Path(tmp) / f"{variant}.h5"
    save_network(path, net)
    t0 = time.perf_counter()
    net = load_network(path)
    load_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    x = (rng.random((batch, steps, net.inputs[0].n)) < 0.05).astype(np.int8)
    run(net, x[:1, :2])  # compile / load numba's cache
    t0 = time.perf_counter()
    res = run(net, x, record=("spikes", "v"))
    run_s = time.perf_counter() - t0
    out: dict[str, Any] = {
        "variant": variant,
        "connections": {
            c.name: {
                "shape": list(c.weights.shape),
                "sparse_record": c.is_sparse,
                "nonzero": int(c.nonzero()[0].size),
            }
            for c in net.connections
        },
        "quantize_s": quantize_s,
        "quantize_cpu_s": quantize_cpu_s,  # process CPU time: less sensitive to other programs' load
        "file_mb": path.stat().st_size / 1e6,
        "load_s": load_s,
        "run_s": run_s,
        "run_path": res.metadata.get("path"),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "spikes": {k: int(np.count_nonzero(v)) for k, v in res.outputs.items() if k.endswith("/spikes")},
    }
    if variant == "sparse":
        twin = run(_dense_twin(net), x, record=("spikes", "v"))
        out["equal_to_dense"] = all(np.array_equal(twin[k], res[k]) for k in res.outputs)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="batch 2, 20 steps")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--child", choices=("sparse", "dense"), help=argparse.SUPPRESS)
    ap.add_argument("--tmp", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.quick:
        args.batch, args.steps = 2, 20
    if args.child:
        print(json.dumps(child(args.child, args.batch, args.steps, args.tmp)))
        return {}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for variant in ("sparse", "dense"):
            cmd = [sys.executable, __file__, "--child", variant, "--tmp", tmp]
            cmd += ["--batch", str(args.batch), "--steps", str(args.steps)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
            results[variant] = json.loads(proc.stdout.strip().splitlines()[-1])
    s, d = results["sparse"], results["dense"]
    out = {
        "model": "Sinabs CNN 2x34x34-16C5-IAF-P2-16C3-IAF-P2-8C3-IAF-P2-128-10-IAF (NIR paper N-MNIST shape)",
        "batch": args.batch,
        "steps": args.steps,
        **{k: s[k] for k in ("file_mb", "quantize_s", "peak_rss_mb", "run_s", "equal_to_dense")},
        "sparse": s,
        "dense": d,
        "ratios_dense_over_sparse": {
            k: d[k] / s[k]
            for k in ("file_mb", "quantize_s", "quantize_cpu_s", "peak_rss_mb", "run_s", "load_s")
            if s[k]
        },
        "load_average_1min": os.getloadavg()[0],
    }
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
