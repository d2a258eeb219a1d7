"""Multi-spike neurons quantized exactly (issue 13 point 3): the NIR paper's Sinabs CNN shape; prints JSON.

Model (built in Sinabs 3.1.3, exported with ``sinabs.to_nir``, repaired by :func:`spikeport.nir.io.repair_nir`):
the NIR paper's N-MNIST CNN shape, ``2x34x34 -> Conv(16, 5x5, pad 1) -> IAF -> SumPool 2 -> Conv(16, 3x3,
pad 1) -> IAF -> SumPool 2 -> Conv(8, 3x3, pad 1) -> IAF -> SumPool 2 -> Flatten (128) -> Linear(10) ->
IAF`` (Sinabs' default multi-spike IAF), seeded untrained weights scaled so that every layer fires.
Input: random events at ``density`` (5%) per pixel and step, ``samples`` (16) samples of ``steps`` steps.

Float run: spikeport's reference under the ``sinabs`` convention (equal to Sinabs' own forward; see
tests/test_frameworks_real.py). Quantized runs (8-bit, fixed point, calibrated on the same inputs), each
compared with the float run (steps aligned by the quantizer's lags):

- ``binary_forced``: ``sinabs`` with ``multi_spike=False``, one spike per step (what the quantizer
  could do before: it refused multi-spike semantics);
- ``multi_spike``: ``sinabs`` as is, multi-spike groups with ``max_spikes`` = 15 and 4-bit graded
  payloads.

Both are compared with the same float run (Sinabs' multi-spike IAF), step for step after the lags:
``fixed`` (the integer network, fixed point) and ``float_twin`` (the quantizer's float twin, same
records unrounded, in the emulator's float mode: separates the neuron rule from weight rounding).
Fields of each: ``argmax_changed`` (samples whose output argmax of spike counts over time differs from
the float run's), per layer ``spike_agreement`` (fraction of equal (sample, step, neuron) spike counts),
``fire_agreement`` (same, on "fired at all"), ``spikes_float``/``spikes_quantized`` (totals),
``max_spikes`` (the integer groups' values), ``quant_warnings``; and ``max_spikes_per_step_float`` per
layer (the largest count the float run sends in one step).

    python benchmarks/multi_spike_cnn.py [--quick] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sparse_cnn import graph as sinabs_cnn_graph  # the same model, one builder

CONFIG = {"quick": {"steps": 30, "samples": 16}, "full": {"steps": 100, "samples": 16}}


def _float_run(graph: Any, x: np.ndarray) -> dict[str, np.ndarray]:
    from spikeport.reference.run import run_nir

    ref = run_nir(graph, x, "sinabs", record=("spikes",))
    return {k.split("/")[0]: np.rint(np.asarray(v)).astype(np.int64) for k, v in ref.outputs.items()}


def _layers(net: Any, res: Any, ref: dict[str, np.ndarray], steps: int) -> dict[str, dict[str, Any]]:
    """Per spiking layer: the emulator's spike counts aligned with the float run's, and agreement."""
    layers = {}
    for name, meta in net.metadata["groups"].items():
        if not meta["spiking"] or meta["node"] not in ref:
            continue
        lag = int(meta["lag"])
        got = np.rint(np.asarray(res[f"{name}/spikes"])[:, lag : lag + steps]).astype(np.int64)
        want = ref[meta["node"]]
        layers[meta["node"]] = {
            "spike_agreement": float(np.mean(got == want)),
            "fire_agreement": float(np.mean((got > 0) == (want > 0))),
            "spikes_float": int(want.sum()),
            "spikes_quantized": int(got.sum()),
            "counts": got.sum(axis=1),
        }
    return layers


def _one(graph: Any, x: np.ndarray, sem: Any, ref: dict[str, np.ndarray], out_node: str) -> dict[str, Any]:
    """Quantize under ``sem`` (calibrated on ``x``), run the emulator (fixed point, and the float twin
    in float mode), compare with the float ``ref``."""
    from spikeport.emulator.engines.dispatch import run
    from spikeport.quantize.quantize_nir import encode_inputs, quantize_pair

    net, twin, report = quantize_pair(graph, sem, calibration=x)
    pad = max(int(g["lag"]) for g in net.metadata["groups"].values())
    xe = encode_inputs(net, x, pad=pad)
    out: dict[str, Any] = {}
    for key, n, mode in (("fixed", net, "fixed"), ("float_twin", twin, "float")):
        layers = _layers(n, run(n, xe, record=("spikes",), mode=mode), ref, x.shape[1])
        want = ref[out_node].sum(axis=1)
        changed = np.argmax(layers[out_node]["counts"], axis=-1) != np.argmax(want, axis=-1)
        for m in layers.values():
            del m["counts"]
        out[key] = {"argmax_changed": int(np.sum(changed)), "layers": layers}
    out["max_spikes"] = sorted({int(getattr(g, "max_spikes", 1)) for g in net.groups})
    out["quant_warnings"] = sorted({f"{w.code}: {w.where}: {w.message}" for w in report.warnings})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--density", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out")
    args = ap.parse_args()
    cfg = CONFIG["quick" if args.quick else "full"]
    from spikeport.quantize.semantics import semantics

    graph = sinabs_cnn_graph(args.seed)
    rng = np.random.default_rng(args.seed)
    x = (rng.random((cfg["samples"], cfg["steps"], 2, 34, 34)) < args.density).astype(np.float64)
    out: dict[str, Any] = {
        "model": "Sinabs CNN 2x34x34-16C5-IAF-P2-16C3-IAF-P2-8C3-IAF-P2-128-10-IAF (NIR paper shape)",
        "samples": cfg["samples"],
        "steps": cfg["steps"],
        "density": args.density,
    }
    ref = _float_run(graph, x)
    out_node = list(ref)[-1]
    out["max_spikes_per_step_float"] = {k: int(v.max()) for k, v in ref.items()}
    out["output_layer"] = out_node
    out["binary_forced"] = _one(graph, x, semantics("sinabs", multi_spike=False), ref, out_node)
    out["multi_spike"] = _one(graph, x, semantics("sinabs"), ref, out_node)
    text = json.dumps(out, indent=2)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    sys.stdout.write(text + "\n")


if __name__ == "__main__":
    main()
