"""Dask scale-out: a local cluster of 1 and of 2 worker processes on a large batch; prints one JSON object.

Network 700 -> 256 -> 256 -> 20 LIF of ``benchmarks/emulator_vs_lava.py``, Bernoulli(0.1) input,
recording the output layer's spikes (what a dataset-scale run keeps). Measured in one run, side by side,
for each engine of ``--engines``:

- ``in_process``: ``sp.run`` without a client (the dense engine's numba loop uses every core);
- ``workers_1`` / ``workers_2``: ``sp.run(..., client=...)`` on a ``LocalCluster`` of 1 / 2 single-threaded
  worker processes (``NUMBA_NUM_THREADS=1`` in the workers, so that N workers use N cores), after a
  warm-up run that loads numba's cache on every worker; chunk size = batch / (2 x workers);
- ``speedup_2_vs_1``; ``equal``: every array of the cluster runs equals the in-process run's.

Usage: ``python benchmarks/cluster_scaling.py [--batch 256] [--steps 300] [--engines dense]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import spikeport as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emulator_vs_lava import SIZES, build_net

RECORD = ("l3/spikes",)


def _timed_cluster(net: Any, x: np.ndarray, engine: str, workers: int, repeats: int) -> tuple[float, Any]:
    import distributed

    env = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    with (
        distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, env=env
        ) as lc,
        distributed.Client(lc) as client,
    ):
        sp.run(net, x[: 2 * workers, :5], record=RECORD, engine=engine, client=client, chunk_size=1)
        best, res = float("inf"), None
        for _ in range(repeats):
            t0 = time.perf_counter()
            res = sp.run(net, x, record=RECORD, engine=engine, client=client)
            best = min(best, time.perf_counter() - t0)
    return best, res


def _engine_part(net: Any, x: np.ndarray, engine: str, repeats: int) -> dict[str, Any]:
    sp.run(net, x[:2, :5], record=RECORD, engine=engine)
    t0 = time.perf_counter()
    ref = sp.run(net, x, record=RECORD, engine=engine)
    part: dict[str, Any] = {"in_process_s": round(time.perf_counter() - t0, 3)}
    equal = True
    for w in (1, 2):
        secs, res = _timed_cluster(net, x, engine, w, repeats)
        part[f"workers_{w}_s"] = round(secs, 3)
        equal = equal and all(np.array_equal(res[k], ref[k]) for k in ref.outputs)
    part["speedup_2_vs_1"] = round(part["workers_1_s"] / part["workers_2_s"], 3)
    part["equal"] = equal
    return part


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--engines", default="dense")
    args = ap.parse_args()
    net = build_net()
    x = (np.random.default_rng(1).random((args.batch, args.steps, SIZES[0])) < 0.1).astype(np.int8)
    out: dict[str, Any] = {"network": "-".join(map(str, SIZES)), "batch": args.batch, "steps": args.steps}
    out["record"] = list(RECORD)
    for engine in args.engines.split(","):
        out[engine] = _engine_part(net, x, engine, args.repeats)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
