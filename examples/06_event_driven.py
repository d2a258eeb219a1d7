"""Event-driven simulation: the event engine vs the dense engine, and SparseProp.

1. A sparse-activity integer network (input channels -> ``--neurons`` LIF neurons, each channel
   reaching 100 random neurons; a few neurons driven by their bias alone) runs on the dense engine and
   on the event engine (``sp.run(..., engine="event")``, which only updates neurons that received input
   or are not at rest). Prints both wall times, the fraction of neuron updates the event engine did, and
   checks that every output and the final ``u``/``v`` are equal.
2. SparseProp (:mod:`spikeport.emulator.continuous.sparseprop`): a balanced inhibitory LIF network simulated
   exactly, event by event, with the O(K log N)-per-spike heap method and the O(N)-per-spike naive
   reference; the two give the same spikes (same neurons, same times).

    python examples/06_event_driven.py [--out DIR] [--neurons 100000] [--steps 100] [--spikes 20000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import spikeport as sp
from spikeport.emulator.continuous.sparseprop import BalancedNetwork, simulate  # no sp verb: a research tool


def sparse_network(n: int, n_in: int, rng: np.random.Generator) -> sp.Network:
    """``n_in`` channels -> ``n`` LIF neurons; each channel reaches 100 neurons with a weight of 120
    (above the threshold of 100, so one input spike fires them); 0.2% of the neurons have a bias."""
    w = np.zeros((n, n_in), np.int16)
    for j in range(n_in):
        w[rng.choice(n, 100, replace=False), j] = 120
    bias = np.where(rng.random(n) < 0.002, 600, 0)
    lif = sp.LIFGroup(name="h", n=n, du=4095, dv=410, vth=100, bias_mant=bias, bias_exp=0, u0=0, v0=0)
    return sp.Network(
        inputs=[sp.InputGroup(name="x", n=n_in)],
        groups=[lif],
        connections=[sp.Connection(name="in", source="x", target="h", weights=w)],
    )


def event_vs_dense(n: int, steps: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    net = sparse_network(n, 200, rng)
    x = (rng.random((1, steps, 200)) < 0.01).astype(np.int64)
    for engine in ("dense", "event"):  # compile and warm caches outside the timing
        sp.run(net, x[:, :3], engine=engine)
    t0 = time.perf_counter()
    dense = sp.run(net, x, engine="dense")
    t1 = time.perf_counter()
    event = sp.run(net, x, engine="event")
    t2 = time.perf_counter()
    equal = all(np.array_equal(dense[k], event[k]) for k in dense.outputs) and all(
        np.array_equal(getattr(dense.state.groups["h"], v), getattr(event.state.groups["h"], v))
        for v in ("u", "v")
    )
    return {
        "neurons": n,
        "steps": steps,
        "spikes": int(dense["h/spikes"].sum()),
        "activity": float(dense["h/spikes"].mean()),
        "dense_s": round(t1 - t0, 4),
        "event_s": round(t2 - t1, 4),
        "event_updates_fraction": event.metadata["neuron_updates"] / (n * steps),
        "equal": bool(equal),
    }


def sparseprop_run(n: int, spikes: int) -> dict[str, Any]:
    net = BalancedNetwork(model="lif", n=n, k=100)
    simulate(BalancedNetwork(model="lif", n=100, k=10), 10, method="heap")  # compile
    simulate(BalancedNetwork(model="lif", n=100, k=10), 10, method="naive")
    t0 = time.perf_counter()
    heap = simulate(net, spikes, method="heap")
    t1 = time.perf_counter()
    naive = simulate(net, spikes, method="naive")
    t2 = time.perf_counter()
    same = bool(np.array_equal(heap.neurons, naive.neurons))
    max_dt = float(np.max(np.abs(heap.times - naive.times)))
    return {
        "neurons": n,
        "k": 100,
        "network_spikes": spikes,
        "heap_us_per_spike": round((t1 - t0) / spikes * 1e6, 3),
        "naive_us_per_spike": round((t2 - t1) / spikes * 1e6, 3),
        "rate_hz": round(heap.rate, 3),
        "isi_cv": round(heap.isi_cv(), 3),
        "same_neurons": same,
        "max_time_difference_s": max_dt,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="output folder (default: a temporary one)")
    ap.add_argument("--neurons", type=int, default=100000)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--spikes", type=int, default=20000, help="SparseProp network spikes")
    ap.add_argument("--sp-neurons", type=int, default=20000, help="SparseProp network size")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="spikeport-ex06-"))
    out.mkdir(parents=True, exist_ok=True)

    ev = event_vs_dense(args.neurons, args.steps, args.seed)
    print(
        f"event vs dense engine: {ev['neurons']} LIF neurons x {ev['steps']} steps, {ev['spikes']} spikes "
        f"(activity {ev['activity']:.4f} per neuron-step)"
    )
    print(
        f"  dense {ev['dense_s']} s, event {ev['event_s']} s; event engine updated "
        f"{100 * ev['event_updates_fraction']:.2f}% of neuron-steps; outputs and final state "
        f"{'equal (bit-exact)' if ev['equal'] else 'DIFFERENT'}"
    )
    spr = sparseprop_run(args.sp_neurons, args.spikes)
    print(
        f"SparseProp (balanced LIF, N={spr['neurons']}, K={spr['k']}, {spr['network_spikes']} spikes): "
        f"heap {spr['heap_us_per_spike']} us/spike, naive {spr['naive_us_per_spike']} us/spike; "
        f"rate {spr['rate_hz']} Hz, ISI CV {spr['isi_cv']}"
    )
    print(
        f"  heap vs naive: {'same spike sequence' if spr['same_neurons'] else 'DIFFERENT neurons'}, "
        f"max spike-time difference {spr['max_time_difference_s']:.3g} s"
    )
    (out / "event_driven.json").write_text(json.dumps({"event_vs_dense": ev, "sparseprop": spr}, indent=2))
    return 0 if ev["equal"] and spr["same_neurons"] else 1


if __name__ == "__main__":
    sys.exit(main())
