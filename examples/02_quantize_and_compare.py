"""Quantize a NIR model to 8-bit fixed point and to power-of-two (shift) weights, and compare.

Takes a NIR file with its semantics (``--nir``, e.g. the one example 01 writes) or, by default, builds
the same seeded snnTorch network as example 01 and exports it. For each mode it prints the quantizer's
report summary (scales, weight exponents, warnings) and the compare report (``sp.compare``, printed by
``sp.format_comparison``): the float NIR reference against the integer emulator, group by group (spike
agreement, first divergence, membrane correlation). Writes each integer network (HDF5) and its
quantization report (one JSON object) into ``--out``.

    python examples/02_quantize_and_compare.py [--nir FILE] [--out DIR] [--steps 25] [--batch 16]
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


def default_graph(seed: int) -> sp.Exported:
    """Example 01's network: 20 -> 30 (Leaky) -> 10 (Synaptic), seeded random weights x 3."""
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
    return sp.export(layers, (20,))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nir", type=Path, default=None, help="a .nir file with semantics (default: build one)")
    ap.add_argument("--out", type=Path, default=None, help="output folder (default: a temporary one)")
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="spikeport-ex02-"))
    out.mkdir(parents=True, exist_ok=True)

    if args.nir is not None:
        graph, sem = sp.read_nir(args.nir)
        if sem is None:
            sys.exit(f"{args.nir}: no semantics in the file's metadata (export it with spikeport)")
    else:
        graph, sem = default_graph(args.seed)
    n_in = int(np.prod(np.asarray(graph.nodes["input"].input_type["input"])))
    rng = np.random.default_rng(args.seed)
    x = (rng.random((args.batch, args.steps, n_in)) < 0.3).astype(np.float32)
    calib = (rng.random((args.batch, args.steps, n_in)) < 0.3).astype(np.float32)

    for mode in ("fixed", "shift"):
        net, rep = sp.quantize(graph, sem, mode=mode, calibration=calib)
        sp.save_network(out / f"net_{mode}.h5", net)
        (out / f"quantization_{mode}.json").write_text(rep.to_json(indent=2))  # to_json() is the JSON text
        print(f"===== mode={mode}: quantization report =====")
        print(rep.summary())
        print(f"===== mode={mode}: float NIR reference vs integer emulator ({args.batch} samples) =====")
        print(sp.format_comparison(sp.compare(graph, net, x, sem)))
        print()
    print(f"networks and reports written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
