"""The torch engine against the dense engine on the 700 -> 256 -> 256 -> 20 LIF network; prints one JSON object.

Same network and input as ``benchmarks/emulator_vs_lava.py`` (random 8-bit mixed-sign weights, du=410,
dv=256, Bernoulli(0.1) input). Measured in one run, side by side, recording spikes and v of every group:

- ``dense``: the dense engine (numba loop) at ``--batch``, sample-steps/s, best of ``--repeats``;
- ``torch_cpu``: ``engine="torch", device="cpu"`` at the same batch;
- ``torch_cuda`` (only where torch sees a GPU): at ``--batch`` and at ``--cuda-batch``, with the dense
  engine's run of the same inputs as the reference;
- ``equal``: ``np.array_equal`` of every recorded array of each torch run with the dense engine's.

``--torch-threads`` (default 1) sets torch's intra-op threads for the CPU runs.
The first call of each engine (numba compile or cache load, CUDA context) is not timed.
Usage: ``python benchmarks/torch_engine.py [--steps 200] [--batch 64] [--cuda-batch 4096]``.
"""

from __future__ import annotations

import os

os.environ.setdefault(
    "OMP_WAIT_POLICY", "PASSIVE"
)  # numba's idle OpenMP workers otherwise spin and starve torch

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from spikeport.emulator.engines.dispatch import run

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emulator_vs_lava import SIZES, build_net

RECORD = ("spikes", "v")


def _timed(fn: Any, repeats: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _equal(a: Any, b: Any) -> bool:
    return sorted(a.outputs) == sorted(b.outputs) and all(
        np.array_equal(a.outputs[k], b.outputs[k]) for k in a.outputs
    )


def _measure(net: Any, x: np.ndarray, repeats: int, **kw: Any) -> tuple[dict[str, Any], Any]:
    run(net, x[:, :5], record=RECORD, **kw)  # warm-up: compile / cache load / CUDA context
    secs, res = _timed(lambda: run(net, x, record=RECORD, **kw), repeats)
    batch, steps = x.shape[:2]
    return {"batch": int(batch), "steps": int(steps), "seconds": round(secs, 4),
            "sample_steps_per_s": round(batch * steps / secs, 1)}, res  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--cuda-batch", type=int, default=4096)
    ap.add_argument("--repeats", type=int, default=3)
    # torch's intra-op threads spin on a loaded machine (2 shared cores here: 40x slower with 2 threads
    # than with 1); 0 keeps torch's default
    ap.add_argument("--torch-threads", type=int, default=1)
    args = ap.parse_args()
    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)
    net = build_net()
    rng = np.random.default_rng(1)
    x = (rng.random((args.batch, args.steps, SIZES[0])) < 0.1).astype(np.int8)
    out: dict[str, Any] = {"network": "-".join(map(str, SIZES)), "torch": torch.__version__}
    out["torch_threads"] = torch.get_num_threads()
    out["dense"], ref = _measure(net, x, args.repeats, engine="dense")
    out["torch_cpu"], got = _measure(net, x, args.repeats, engine="torch", device="cpu")
    out["torch_cpu"]["equal"] = _equal(ref, got)
    out["torch_cpu_vs_dense"] = round(out["dense"]["seconds"] / out["torch_cpu"]["seconds"], 3)
    if torch.cuda.is_available():
        out["cuda_device"] = torch.cuda.get_device_name(0)
        out["torch_cuda"], got = _measure(net, x, args.repeats, engine="torch", device="cuda")
        out["torch_cuda"]["equal"] = _equal(ref, got)
        xl = (rng.random((args.cuda_batch, args.steps, SIZES[0])) < 0.1).astype(np.int8)
        out["dense_large"], ref_l = _measure(net, xl, 1, engine="dense")
        out["torch_cuda_large"], got_l = _measure(net, xl, args.repeats, engine="torch", device="cuda")
        out["torch_cuda_large"]["equal"] = _equal(ref_l, got_l)
        out["torch_cuda_large_vs_dense"] = round(
            out["dense_large"]["seconds"] / out["torch_cuda_large"]["seconds"], 3
        )
    else:
        out["torch_cuda"] = "no CUDA device visible to torch"
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
