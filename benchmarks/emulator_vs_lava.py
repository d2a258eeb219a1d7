"""Emulator vs Lava fixed_pt on a 700 -> 256 -> 256 -> 20 LIF network; prints one JSON object.

Network: random 8-bit weights (uniform integers in [-256, 255], mixed sign mode), du=410, dv=256,
vth=10000, no bias; Bernoulli(0.1) input spikes. Measured in one run, side by side:

- Lava steps/s at batch 1, two ways: ``lava_unprobed_steps_per_s``, the same processes built directly
  with no probes and timed after a warm-up run (Lava's best case; the ratios use it), and
  ``lava_run_lava_*`` from ``spikeport.lava.backend.run_lava`` recording spikes and v of every
  group (the run that also gives the equality proof); its marginal rate removes set-up by timing a
  10-step run too: (T - 10) / (t_T - t_10).
- emulator steps/s at batch 1 and sample-steps/s at batch 64 (same recording), best of ``--repeats``;
  the first call compiles (or loads numba's cache) and is not timed.
- proof of equality: ``np.array_equal`` of Lava's and the emulator's spikes and v, every group and
  step, and of the batch-64 run's sample 0 with the batch-1 run.
- counters overhead: batch-64 run with ``counters=True`` vs without, best of repeats each, as wall time
  and as process CPU time (interleaved runs; the CPU figure is the robust one on a shared machine).
- peak memory: tracemalloc peak of the batch-64 emulator run, and the process's max RSS.

Usage: ``python benchmarks/emulator_vs_lava.py [--steps 1000] [--quick] [--no-lava]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
import tracemalloc
from typing import Any

import numpy as np
from spikeport.emulator.engines.dispatch import run
from spikeport.emulator.network import Connection, InputGroup, LIFGroup, Network

SIZES = (700, 256, 256, 20)


def build_net(seed: int = 0) -> Network:
    rng = np.random.default_rng(seed)
    groups = tuple(
        LIFGroup(name=f"l{i}", n=n, du=410, dv=256, vth=10_000, bias_mant=0, bias_exp=0, u0=0, v0=0)
        for i, n in enumerate(SIZES[1:], start=1)
    )
    names = ["in", *(g.name for g in groups)]
    conns = tuple(
        Connection(
            name=f"c{i}",
            source=names[i],
            target=names[i + 1],
            weights=rng.integers(-256, 256, size=(SIZES[i + 1], SIZES[i])),
        )
        for i in range(3)
    )
    return Network(inputs=(InputGroup(name="in", n=SIZES[0]),), groups=groups, connections=conns)


def best_time(fn: Any, repeats: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def counters_cpu_times(
    net: Network, xb: np.ndarray, record: tuple[str, ...], repeats: int
) -> tuple[float, float]:
    """Best process CPU time (all threads) without and with counters, runs interleaved: less sensitive
    to other programs' load than wall time."""
    plain, counted = float("inf"), float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        run(net, xb, record=record)
        plain = min(plain, time.process_time() - t0)
        t0 = time.process_time()
        run(net, xb, record=record, counters=True)
        counted = min(counted, time.process_time() - t0)
    return plain, counted


def lava_unprobed_steps_per_s(net: Network, x1: np.ndarray, steps: int) -> float:
    """Lava's own step rate on this network with no probes: RingBuffer -> (Dense -> LIF) x 3 built
    directly (as deploy/doctor.py does), a 10-step warm-up run (compile, process start), then the
    timed ``steps``-step run of the same processes."""
    from spikeport.lava.compat import import_lava

    lif_mod = import_lava("lava.proc.lif.process")
    dense_mod = import_lava("lava.proc.dense.process")
    src_mod = import_lava("lava.proc.io.source")
    cfg = import_lava("lava.magma.core.run_configs").Loihi2SimCfg(select_tag="fixed_pt")
    cond = import_lava("lava.magma.core.run_conditions")
    data = np.zeros((SIZES[0], steps + 10), np.int32)
    data[:, 10:] = x1[0].T
    src = src_mod.RingBuffer(data=data)
    prev = src.s_out
    for c, g in zip(net.connections, net.groups, strict=True):
        assert isinstance(g, LIFGroup)
        dense = dense_mod.Dense(weights=np.asarray(c.weights), num_message_bits=0)
        lif = lif_mod.LIF(
            shape=(int(g.n),), du=int(g.du), dv=int(g.dv), vth=int(g.vth), bias_mant=0, bias_exp=0
        )
        prev.connect(dense.s_in)
        dense.a_out.connect(lif.a_in)
        prev = lif.s_out
    try:
        lif.run(condition=cond.RunSteps(num_steps=10), run_cfg=cfg)
        t0 = time.perf_counter()
        lif.run(condition=cond.RunSteps(num_steps=steps), run_cfg=cfg)
        return steps / (time.perf_counter() - t0)
    finally:
        lif.stop()


def lava_part(net: Network, x1: np.ndarray, steps: int) -> dict[str, Any]:
    from spikeport.lava.backend import run_lava

    record = ("spikes", "v")
    t0 = time.perf_counter()
    run_lava(net, x1[:, :10], record=record)
    t_short = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = run_lava(net, x1, record=record)
    t_full = time.perf_counter() - t0
    return {
        "result": res,
        "lava_unprobed_steps_per_s": lava_unprobed_steps_per_s(net, x1, steps),
        "lava_run_lava_seconds": t_full,
        "lava_run_lava_steps_per_s": steps / t_full,
        "lava_run_lava_steps_per_s_marginal": (steps - 10) / max(t_full - t_short, 1e-9),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="T=100, batch 16, 1 repeat")
    ap.add_argument("--no-lava", action="store_true", help="skip Lava (no ratios, no equality proof)")
    args = ap.parse_args(argv)
    steps, batch, repeats = args.steps, args.batch, args.repeats
    if args.quick:
        steps, batch, repeats = 100, 16, 1
    net = build_net()
    rng = np.random.default_rng(1)
    xb = (rng.random((batch, steps, SIZES[0])) < 0.1).astype(np.int8)
    x1 = xb[:1]
    record = ("spikes", "v")
    run(net, x1[:, :5], record=record)  # compile / load the numba cache
    t1, r1 = best_time(lambda: run(net, x1, record=record), repeats)
    tb, rb = best_time(lambda: run(net, xb, record=record), repeats)
    tc, rc = best_time(lambda: run(net, xb, record=record, counters=True), repeats)
    cpu_plain, cpu_count = counters_cpu_times(net, xb, record, max(repeats, 3))
    tracemalloc.start()
    run(net, xb, record=record)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    out: dict[str, Any] = {
        "network": "700-256-256-20 LIF, random 8-bit weights, 10% input rate",
        "steps": steps,
        "batch": batch,
        "engine_path": r1.metadata.get("path"),
        "numba_threads": int(os.environ.get("NUMBA_NUM_THREADS", 0)) or None,
        "cpu_count": os.cpu_count(),
        "spike_rates": {g: float((r1[f"{g}/spikes"] != 0).mean()) for g in ("l1", "l2", "l3")},
        "emulator_steps_per_s_batch1": steps / t1,
        f"emulator_sample_steps_per_s_batch{batch}": batch * steps / tb,
        "counters_overhead_percent_wall": 100.0 * (tc - tb) / tb,
        "counters_overhead_percent_cpu": 100.0 * (cpu_count - cpu_plain) / cpu_plain,
        f"cpu_us_per_sample_step_batch{batch}": 1e6 * cpu_plain / (batch * steps),
        "batch_sample0_equals_batch1": all(np.array_equal(rb[k][:1], r1[k]) for k in r1.outputs),
        "counters_match_spikes": all(
            np.array_equal(rc.counters.spike_counts[g], (rc[f"{g}/spikes"] != 0).sum(axis=1))
            for g in ("l1", "l2", "l3")
        ),
        f"tracemalloc_peak_mb_batch{batch}": peak / 2**20,
    }
    if not args.no_lava:
        lv = lava_part(net, x1, steps)
        res = lv.pop("result")
        out.update(lv)
        out["identical_to_lava"] = {k: bool(np.array_equal(res[k], r1[k])) for k in r1.outputs}
        out["all_identical"] = all(out["identical_to_lava"].values())
        base = lv["lava_unprobed_steps_per_s"]  # the fastest Lava figure: the conservative ratio
        out["ratio_batch1"] = out["emulator_steps_per_s_batch1"] / base
        out[f"ratio_batch{batch}_sample_steps"] = out[f"emulator_sample_steps_per_s_batch{batch}"] / base
        marginal = lv["lava_run_lava_steps_per_s_marginal"]
        out["ratio_batch1_vs_run_lava"] = out["emulator_steps_per_s_batch1"] / marginal
    out["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["load_average_1min"] = os.getloadavg()[0]
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
