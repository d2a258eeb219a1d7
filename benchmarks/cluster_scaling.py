"""Dask scale-out: a local cluster of 1 and of 2 worker processes on a large batch; prints one JSON object.

Network 700 -> 256 -> 256 -> 20 LIF of ``benchmarks/emulator_vs_lava.py``, Bernoulli(0.1) input,
recording the output layer's spikes (what a dataset-scale run keeps). Measured in one run, side by side,
for each engine of ``--engines``:

- ``in_process``: ``sp.run`` without a client (the dense engine's numba loop uses every core);
- ``workers_1`` / ``workers_2``: ``sp.run(..., client=...)`` on a ``LocalCluster`` of 1 / 2 single-threaded
  worker processes (``NUMBA_NUM_THREADS=1`` in the workers, so that N workers use N cores), after a
  warm-up run (5 steps, same chunking) that loads numba's cache on every worker; chunk size =
  batch / (2 x workers);
- ``speedup_2_vs_1``; ``equal``: every array of the cluster runs equals the in-process run's;
- where the time goes, per cluster size (``workers_N_breakdown``, from Dask's task stream of the timed
  run): ``compute_s`` (sum of the chunks' compute time on the workers), ``busiest_worker_s`` (the most
  compute one worker did), ``transfer_s`` (sum of transfers), ``overhead_s`` (wall minus the busiest
  worker's compute: scheduling, shipping, gathering). When ``compute_s`` with 2 workers is well above
  the 1-worker figure, the two workers did not get a core each (other load): no chunking can help;
- ``load_avg``: the 1-minute load average before and after (this machine has 2 cores; other work
  running on it makes the 2-worker figure meaningless, so it is reported with every run).

Usage: ``python benchmarks/cluster_scaling.py [--batch 256] [--steps 300] [--engines dense]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import spikeport as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emulator_vs_lava import SIZES, build_net

RECORD = ("l3/spikes",)


def _breakdown(stream: list[dict[str, Any]], wall: float) -> dict[str, float]:
    """Compute / transfer time of a run from Dask's task stream (see the module docstring)."""
    busy: dict[str, float] = {}
    transfer = 0.0
    for task in stream:
        for ss in task.get("startstops", ()):
            dt = float(ss["stop"]) - float(ss["start"])
            if ss["action"] == "compute":
                busy[task["worker"]] = busy.get(task["worker"], 0.0) + dt
            elif ss["action"] == "transfer":
                transfer += dt
    top = max(busy.values(), default=0.0)
    return {"compute_s": round(sum(busy.values()), 3), "busiest_worker_s": round(top, 3),
            "transfer_s": round(transfer, 3), "overhead_s": round(wall - top, 3)}  # fmt: skip


def _timed_cluster(
    net: Any, x: np.ndarray, engine: str, workers: int, repeats: int
) -> tuple[float, Any, dict[str, float]]:
    import distributed

    env = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    with (
        distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, env=env
        ) as lc,
        distributed.Client(lc) as client,
    ):
        # warm-up with the timed run's chunking: the same compiled kernel per worker (batch 1 chunks
        # would load the serial loop and leave the parallel one's cache load inside the timing)
        sp.run(net, x[:, :5], record=RECORD, engine=engine, client=client)
        best, res, parts = float("inf"), None, {}
        for _ in range(repeats):
            with distributed.get_task_stream(client) as ts:
                t0 = time.perf_counter()
                res = sp.run(net, x, record=RECORD, engine=engine, client=client)
                wall = time.perf_counter() - t0
            if wall < best:
                best, parts = wall, _breakdown(ts.data, wall)
    return best, res, parts


def _engine_part(net: Any, x: np.ndarray, engine: str, repeats: int) -> dict[str, Any]:
    sp.run(net, x[:2, :5], record=RECORD, engine=engine)
    t0 = time.perf_counter()
    ref = sp.run(net, x, record=RECORD, engine=engine)
    part: dict[str, Any] = {"in_process_s": round(time.perf_counter() - t0, 3)}
    equal = True
    for w in (1, 2):
        secs, res, parts = _timed_cluster(net, x, engine, w, repeats)
        part[f"workers_{w}_s"] = round(secs, 3)
        part[f"workers_{w}_breakdown"] = parts
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
    load = [round(os.getloadavg()[0], 2)]
    for engine in args.engines.split(","):
        out[engine] = _engine_part(net, x, engine, args.repeats)
    out["load_avg"] = {"before": load[0], "after": round(os.getloadavg()[0], 2), "cores": os.cpu_count()}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
