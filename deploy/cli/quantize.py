"""``spikeport quantize MODEL.nir -o NET.h5``: float NIR + semantics -> the integer network (HDF5)."""

from __future__ import annotations

import argparse
import json
import sys

from spikeport.cli.main import command


def _configure(p: argparse.ArgumentParser) -> None:
    from spikeport.nir.io import add_semantics_args

    p.add_argument("model", help="NIR file")
    p.add_argument("-o", "--output", required=True, help="where to write the network (HDF5)")
    p.add_argument("--weight-bits", type=int, default=8, help="weight mantissa bits, 1..8 (default 8)")
    p.add_argument(
        "--mode", choices=("fixed", "shift"), default="fixed", help="fixed point or power-of-two weights"
    )
    p.add_argument(
        "--calibrate", metavar="X.npy", help="inputs (B, T, ...) for a data-driven scale and activity check"
    )
    p.add_argument(
        "--target", choices=("emulator", "lava"), default="emulator", help="refuse what Lava cannot run"
    )
    p.add_argument("--shift-decays", action="store_true", help="round du + 1 and dv to powers of two")
    p.add_argument(
        "--margin", type=float, default=2.0, help="calibration peaks are multiplied by this (default 2)"
    )
    p.add_argument(
        "--json", metavar="REPORT.json", help="write the quantization report as JSON ('-': stdout)"
    )
    add_semantics_args(p)


@command("quantize", help="quantize a NIR model to the Loihi-style integer network", configure=_configure)
def run(args: argparse.Namespace) -> int:
    import numpy as np
    from spikeport.emulator.io import save_network
    from spikeport.nir.io import read_nir, semantics_from_args
    from spikeport.quantize.quantize_nir import quantize

    graph, stored = read_nir(args.model)
    sem = semantics_from_args(args, stored)
    if sem is None:
        print("spikeport quantize: no semantics stored or given; using the 'nir' convention", file=sys.stderr)
        sem_arg: object = "nir"
    else:
        sem_arg = sem
    cal = np.load(args.calibrate) if args.calibrate else None
    net, report = quantize(
        graph, sem_arg,  # type: ignore[arg-type]
        weight_bits=args.weight_bits, mode=args.mode, calibration=cal, target=args.target,
        shift_decays=args.shift_decays, margin=args.margin,
    )  # fmt: skip
    net = type(net)(
        inputs=net.inputs, groups=net.groups, connections=net.connections,
        metadata={**net.metadata, "source_file": str(args.model)},
    )  # fmt: skip
    save_network(args.output, net)
    if args.json == "-":
        print(report.to_json(indent=2))
    else:
        print(report.summary())
        print(f"wrote {args.output}")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(report.to_dict(), f, indent=2)
    return 0
