"""Energy per inference of a quantized network: SynOps, NeuroBench ops and energy per hardware profile.

Builds a seeded 64 -> 48 -> 10 LIF network with spikeport's own torch modules (random weights, NIR
semantics), exports it to NIR, quantizes it to 8-bit fixed point, runs it on the emulator with spikes,
``u`` and ``v`` recorded, and prints ``sp.format_energy(sp.energy(...))`` for the default
profiles (Loihi 1, SANA-FE's Loihi model, TrueNorth, and dense ANN baselines). Writes the bar chart
``energy.png`` and the JSON report into ``--out``.

    python examples/03_energy_report.py [--out DIR] [--steps 20] [--batch 16] [--rate 0.2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import spikeport as sp
import torch
from spikeport.report import energy as er  # the bar chart and the JSON form of the report
from torch import nn


def build_graph(seed: int) -> sp.Exported:
    """NIR graph + semantics of a seeded 64 -> 48 -> 10 LIF network (weights scaled so both layers fire)."""
    torch.manual_seed(seed)
    sem = sp.semantics("nir")
    model = sp.SNN(
        nn.Linear(64, 48), sp.LIF(48, beta=0.9), nn.Linear(48, 10), sp.LIF(10, beta=0.9), semantics=sem
    )
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2:
                p.mul_(4.0)
    return sp.export(model, (64,))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="output folder (default: a temporary one)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--rate", type=float, default=0.2, help="input firing probability per step")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="spikeport-ex03-"))
    out.mkdir(parents=True, exist_ok=True)

    graph, sem = build_graph(args.seed)
    rng = np.random.default_rng(args.seed)
    x = (rng.random((args.batch, args.steps, 64)) < args.rate).astype(np.float32)
    net, _ = sp.quantize(graph, sem, mode="fixed", calibration=x)
    xs = sp.encode_inputs(net, x)
    res = sp.run(net, xs, record=("spikes", "u", "v"))
    spikes = {k: int(v.sum()) for k, v in res.outputs.items() if k.endswith("/spikes")}
    print(f"emulator run: {args.batch} samples x {args.steps} steps; spikes per group: {spikes}")

    rep = sp.energy(net, xs, res)
    print(sp.format_energy(rep))
    png = er.plot_png(rep, out / "energy.png")
    (out / "energy.json").write_text(json.dumps(er.to_json(rep), indent=2))
    print(f"bar chart: {png} ({Path(png).stat().st_size} bytes); JSON: {out / 'energy.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
