"""Run a quantized network on Lava (fixed_pt, CPU) and on the emulator, and prove they are bit-exact.

Builds the seeded 64 -> 48 -> 10 LIF network of example 03 (NIR semantics: zero reset, which Lava's LIF
runs as it is), quantizes it for ``target="lava"``, runs the same input spikes through
``sp.run(..., backend="lava")`` and ``sp.run(..., backend="emulator")`` recording spikes, ``u`` and ``v``
of every group, checks ``np.array_equal`` on every recorded variable, and prints
the throughput of both (sample-steps per second, Lava's process start-up included).

    python examples/05_lava_deploy.py [--out DIR] [--samples 3] [--steps 20]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import spikeport as sp
import torch
from torch import nn

RECORD = ("spikes", "u", "v")


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
    ap.add_argument("--samples", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="spikeport-ex05-"))
    out.mkdir(parents=True, exist_ok=True)

    graph, sem = build_graph(args.seed)
    rng = np.random.default_rng(args.seed)
    x = (rng.random((args.samples, args.steps, 64)) < 0.2).astype(np.float32)
    net, _ = sp.quantize(graph, sem, mode="fixed", calibration=x, target="lava")
    sp.save_network(out / "net_fixed.h5", net)
    lag = max(int(g["lag"]) for g in net.metadata["groups"].values())
    xs = sp.encode_inputs(net, x, pad=lag)
    work = args.samples * (args.steps + lag)

    t0 = time.perf_counter()
    emu = sp.run(net, xs, backend="emulator", record=RECORD)
    t_emu = time.perf_counter() - t0
    t0 = time.perf_counter()
    lava = sp.run(net, xs, backend="lava", record=RECORD)
    t_lava = time.perf_counter() - t0

    equal = True
    for key in sorted(emu.outputs):
        same = bool(np.array_equal(emu[key], lava[key]))
        equal &= same
        a = np.asarray(emu[key])
        extra = f", {int(a.sum())} spikes" if key.endswith("/spikes") else f", range [{a.min()}, {a.max()}]"
        print(f"  {key:10s} shape {a.shape}{extra}: {'equal' if same else 'DIFFERENT'}")
    print(f"emulator: {work / t_emu:10.1f} sample-steps/s ({t_emu:.3f} s)")
    print(f"lava    : {work / t_lava:10.1f} sample-steps/s ({t_lava:.3f} s, process start-up included)")
    if not equal:
        print("MISMATCH: Lava and the emulator differ")
        return 1
    n = sum(np.asarray(emu[k]).size for k in emu.outputs)
    print(
        f"bit-exact: Lava fixed_pt equals the emulator on all {len(emu.outputs)} recorded variables ({n} values)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
