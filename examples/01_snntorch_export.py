"""Export a snnTorch model to NIR with its semantics, and show NIR reproduces it spike for spike.

Builds a small seeded snnTorch network (Linear -> Leaky -> Linear -> Synaptic, random weights), exports
it with ``sp.export`` (which records snnTorch's reset and timing conventions in the graph's metadata),
writes the ``.nir`` file (``sp.write_nir``), reads it back (``sp.read_nir``), runs it with the float
reference ``sp.run_nir``, and compares every layer's spikes with snnTorch's
own forward pass.

    python examples/01_snntorch_export.py [--out DIR] [--steps 25] [--batch 8] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import snntorch as snn
import spikeport as sp
import torch
from torch import nn


def build_model(seed: int) -> list[nn.Module]:
    """A 20 -> 30 -> 10 snnTorch network with seeded random weights (scaled up so every layer fires)."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = [
        nn.Linear(20, 30),
        snn.Leaky(beta=0.85, init_hidden=True),
        nn.Linear(30, 10),
        snn.Synaptic(alpha=0.7, beta=0.9, init_hidden=True),
    ]
    with torch.no_grad():
        for layer in layers:
            if isinstance(layer, nn.Linear):
                layer.weight.mul_(3.0)
    return layers


def snntorch_forward(layers: list[nn.Module], x: torch.Tensor) -> dict[str, np.ndarray]:
    """snnTorch's own forward pass, step by step; spikes (B, T, n) per spiking layer index."""
    for layer in layers:
        if isinstance(layer, snn.SpikingNeuron):
            layer.reset_hidden()
    rec: dict[str, list[np.ndarray]] = {}
    with torch.no_grad():
        for t in range(x.shape[1]):
            h = x[:, t]
            for k, layer in enumerate(layers):
                h = layer(h)
                if isinstance(layer, snn.SpikingNeuron):
                    rec.setdefault(str(k), []).append(h.numpy())
    return {k: np.stack(v, 1) for k, v in rec.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="output folder (default: a temporary one)")
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="spikeport-ex01-"))
    out.mkdir(parents=True, exist_ok=True)

    layers = build_model(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    x = (torch.rand(args.batch, args.steps, 20, generator=gen) < 0.3).float()
    ref = snntorch_forward(layers, x)

    graph, sem = sp.export(layers, (20,))
    path = out / "snntorch_model.nir"
    sp.write_nir(path, graph, sem)
    graph2, sem2 = sp.read_nir(path)
    print(f"wrote {path} ({path.stat().st_size} bytes); nodes: {', '.join(sorted(graph2.nodes))}")
    print(f"semantics read back: {sem2.to_dict() if sem2 else None}")

    res = sp.run_nir(graph2, x.numpy(), sem2, record=("spikes",))
    mismatches = 0
    for layer, spikes in ref.items():
        got = res[f"{layer}/spikes"]
        diff = int(np.count_nonzero(got != spikes))
        mismatches += diff
        print(
            f"layer {layer}: snnTorch {int(spikes.sum())} spikes, NIR run {int(got.sum())} spikes, {diff} mismatches"
        )
    if mismatches:
        print(f"FAILED: {mismatches} mismatches between snnTorch and the NIR run")
        return 1
    total = sum(int(s.sum()) for s in ref.values())
    print(
        f"NIR run equals snnTorch spike for spike: 0 mismatches ({total} spikes, {args.batch} samples x {args.steps} steps)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
