"""Event-driven scaling benchmark (prints JSON).

1. SparseProp: time per network spike vs N (K = 100, LIF balanced network) for the heap simulation and
   the naive O(N) one, measured in the same run. Each cost is CPU time (``time.process_time``, the
   machine may be shared) as a difference of two runs (``2 S`` and ``S`` spikes from the same initial
   phases), so set-up (phases, heap build, compilation) cancels; the headline uses the fastest of
   the rounds (5 for heap/tree, 3 for naive) for each length, the median difference is given too.
   The naive method is measured over fewer spikes at large N (``spikes_naive`` in the output).
   Also the steady-state rate and ISI CV of the heap run, and a QIF run's rate and CV.
2. The bit-exact event engine vs the dense engine on a sparse-activity network (200 input channels
   -> 1e5 LIF neurons, 0.07%, 0.1%, 1% and 5% of them spiking per step, plus bias-driven neurons): wall time
   of each ``run()`` (set-up included), the ratio, and whether all outputs and final states are equal;
   also the best of 5 interleaved runs in process CPU time (``speedup_cpu``, the robust figure on a
   shared machine); the same without recording (``speedup_cpu_no_record``: the engines' own work) and
   ``spike_array_floor_cpu_s``, the CPU time of making the returned (1, steps, N) int8 spike array
   alone (zeros, then the spikes written), which bounds any engine that returns it.
   ``--event-only`` runs just this part (``--event-n``, ``--event-steps``).

``--quick`` runs smaller sizes (CI-sized); the default is the full run.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any

import numpy as np
from spikeport.emulator.continuous.sparseprop import BalancedNetwork, simulate
from spikeport.emulator.engines import dispatch as engine
from spikeport.emulator.network import Connection, InputGroup, LIFGroup, Network


def _per_spike(net: BalancedNetwork, method: str, spikes: int, rounds: int) -> tuple[float, float]:
    """CPU seconds per network spike over ``rounds`` rounds of a run of S and one of 2S spikes:
    ``(min t(2S) - min t(S)) / S`` and the median of the per-round ``(t(2S) - t(S)) / S``."""
    phases = net.initial_phases(1)
    simulate(BalancedNetwork(model=net.model, n=100, k=10), 10, method=method)  # type: ignore[arg-type]
    one, two = [], []
    for _ in range(rounds):
        t0 = time.process_time()
        simulate(net, spikes, method=method, phases=phases)  # type: ignore[arg-type]
        t1 = time.process_time()
        simulate(net, 2 * spikes, method=method, phases=phases)  # type: ignore[arg-type]
        t2 = time.process_time()
        one.append(t1 - t0)
        two.append(t2 - t1)
    best = max(min(two) - min(one), 1e-12) / spikes
    return best, float(np.median(np.subtract(two, one))) / spikes


def _steady_stats(net: BalancedNetwork, spikes: int) -> dict[str, float]:
    rec = simulate(net, spikes, method="tree")
    half = rec.times.size // 2
    dt = rec.times[-1] - rec.times[half]
    from spikeport.emulator.continuous.sparseprop import SpikeRecord

    tail = SpikeRecord(times=rec.times[half:], neurons=rec.neurons[half:], phases=rec.phases, n=rec.n)
    return {
        "rate_hz": (rec.times.size - half) / (net.n * dt),
        "isi_cv": tail.isi_cv(),
        "sim_time_s": rec.times[-1],
    }


def sparseprop_scaling(sizes: list[int], fast_spikes: int, naive_budget: float) -> dict[str, Any]:
    rows = []
    for n in sizes:
        net = BalancedNetwork(model="lif", n=n, k=100)
        heap, heap_med = _per_spike(net, "heap", fast_spikes, 5)
        tree, tree_med = _per_spike(net, "tree", fast_spikes, 5)
        naive_spikes = max(200, min(fast_spikes, int(naive_budget / (n * 2e-9))))
        naive, naive_med = _per_spike(net, "naive", naive_spikes, 3)
        rows.append(
            {
                "n": n,
                "heap_us_per_spike": heap * 1e6,
                "tree_us_per_spike": tree * 1e6,
                "naive_us_per_spike": naive * 1e6,
                "speedup_heap": naive / heap,
                "speedup_tree": naive / tree,
                "median_us_per_spike": {
                    "heap": heap_med * 1e6,
                    "tree": tree_med * 1e6,
                    "naive": naive_med * 1e6,
                },
                "spikes_heap_tree": fast_spikes,
                "spikes_naive": naive_spikes,
                "heap_us_per_spike_over_log2n": heap * 1e6 / math.log2(n),
                "tree_us_per_spike_over_log2n": tree * 1e6 / math.log2(n),
            }
        )
    return {
        "k": 100,
        "model": "lif",
        "timing": "CPU time per spike: (min t(2S) - min t(S)) / S over rounds; median of per-round differences also given",
        "rows": rows,
    }


def _sparse_network(n: int, n_in: int, fan_out: int, rng: np.random.Generator) -> Network:
    """Input channels -> ``n`` LIF neurons (each channel reaches ``fan_out`` random neurons with a
    weight that makes them spike), plus 0.2% neurons driven by their bias alone."""
    w = np.zeros((n, n_in), np.int16)
    for j in range(n_in):
        w[rng.choice(n, fan_out, replace=False), j] = 120
    bias = np.where(rng.random(n) < 0.002, 600, 0)
    hidden = LIFGroup(name="h", n=n, du=4095, dv=410, vth=100, bias_mant=bias, bias_exp=0, u0=0, v0=0)
    return Network(
        inputs=[InputGroup(name="x", n=n_in)],
        groups=[hidden],
        connections=[Connection(name="in", source="x", target="h", weights=w)],
    )


def _best_cpu(
    net: Network, x: dict[str, np.ndarray], repeats: int, record: tuple[str, ...] = ("spikes",)
) -> dict[str, float]:
    best = {"dense": math.inf, "event": math.inf}
    for _ in range(repeats):
        for name in best:
            t0 = time.process_time()
            engine.run(net, x, engine=name, record=record)
            best[name] = min(best[name], time.process_time() - t0)
    return best


def _output_floor(spikes: np.ndarray, repeats: int) -> float:
    """Best CPU time to make the dense spike array alone: zeros (B, T, N) int8, then the spikes written
    where they fell (what any engine returning that array pays, whatever its own work)."""
    where = np.nonzero(spikes)
    best = math.inf
    for _ in range(repeats):
        t0 = time.process_time()
        out = np.zeros(spikes.shape, np.int8)
        out[where] = 1
        best = min(best, time.process_time() - t0)
        del out
    return best


def event_vs_dense(n: int, steps: int, activity: float, seed: int = 0, repeats: int = 5) -> dict[str, Any]:
    """``activity``: target fraction of neurons spiking per step (input rate chosen to give it)."""
    rng = np.random.default_rng(seed)
    n_in, fan_out = 200, 100
    p = min(1.0, activity * n / (n_in * fan_out))
    net = _sparse_network(n, n_in, fan_out, rng)
    x = (rng.random((1, steps, n_in)) < p).astype(np.int64)
    small = {"x": x[:, :5]}
    engine.run(net, small, engine="dense")
    engine.run(net, small, engine="event")  # compile / load caches outside the timing
    t0 = time.perf_counter()
    dense = engine.run(net, x, engine="dense")
    t1 = time.perf_counter()
    event = engine.run(net, x, engine="event")
    t2 = time.perf_counter()
    cpu = _best_cpu(net, x, repeats)
    bare = _best_cpu(net, x, repeats, record=())
    equal = all(np.array_equal(dense[k], event[k]) for k in dense.outputs)
    equal = equal and all(
        np.array_equal(getattr(dense.state.groups["h"], v), getattr(event.state.groups["h"], v))
        for v in ("u", "v")
    )
    return {
        "n_neurons": n,
        "steps": steps,
        "input_channels": n_in,
        "fan_out": fan_out,
        "input_rate": p,
        "activity_spikes_per_neuron_step": float(dense["h/spikes"].mean()),
        "dense_s": t1 - t0,
        "event_s": t2 - t1,
        "speedup": (t1 - t0) / (t2 - t1),
        # best of ``repeats`` interleaved runs in process CPU time (robust on a shared machine; batch 1
        # runs single-threaded in both engines)
        "dense_cpu_s": cpu["dense"],
        "event_cpu_s": cpu["event"],
        "speedup_cpu": cpu["dense"] / cpu["event"],
        # the same without recording anything: the engines' own work, and the floor of making the
        # (1, steps, n) spike array that the recorded runs return
        "dense_cpu_s_no_record": bare["dense"],
        "event_cpu_s_no_record": bare["event"],
        "speedup_cpu_no_record": bare["dense"] / bare["event"],
        "spike_array_floor_cpu_s": _output_floor(dense["h/spikes"], repeats),
        "event_neuron_updates_fraction": event.metadata["neuron_updates"] / (n * steps),
        "outputs_equal": bool(equal),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    ap.add_argument("--event-only", action="store_true", help="only the event vs dense part")
    ap.add_argument("--event-n", type=int, default=0, help="neurons of the event part (0: by --quick)")
    ap.add_argument("--event-steps", type=int, default=0, help="steps of the event part (0: by --quick)")
    args = ap.parse_args()
    if args.event_only:
        n, steps = args.event_n or 20_000, args.event_steps or 200
        rows = [event_vs_dense(n, steps, a) for a in (0.0007, 0.001, 0.01)]
        print(json.dumps({"event_vs_dense": rows}, indent=2))
        return
    if args.quick:
        sizes, heap_spikes, budget, stats_n, stats_spikes, ev_n, ev_steps = (
            [1000, 10_000],
            20_000,
            0.5,
            10_000,
            100_000,
            20_000,
            200,
        )
    else:
        sizes, heap_spikes, budget, stats_n, stats_spikes, ev_n, ev_steps = (
            [1000, 10_000, 100_000, 1_000_000],
            100_000,
            3.0,
            100_000,
            2_000_000,
            100_000,
            2000,
        )
    out = {
        "quick": args.quick,
        "sparseprop": sparseprop_scaling(sizes, heap_spikes, budget),
        "lif_steady_state": {
            "n": stats_n,
            "k": 100,
            **_steady_stats(BalancedNetwork(n=stats_n), stats_spikes),
        },
        "qif_steady_state": {
            "n": stats_n,
            "k": 100,
            **_steady_stats(BalancedNetwork(model="qif", n=stats_n), stats_spikes),
        },
        "event_vs_dense": [event_vs_dense(ev_n, ev_steps, a) for a in (0.0007, 0.001, 0.01, 0.05)],
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
