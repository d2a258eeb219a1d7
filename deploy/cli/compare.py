"""``spikeport compare MODEL.nir NET.h5 --input X.npy``: float run vs fixed-point emulator (vs Lava)."""

from __future__ import annotations

import argparse
import json

from spikeport.cli.main import command


def _configure(p: argparse.ArgumentParser) -> None:
    from spikeport.nir.io import add_semantics_args

    p.add_argument("model", help="NIR file (the float model)")
    p.add_argument("network", help="quantized network (HDF5, from spikeport quantize)")
    p.add_argument("--input", required=True, metavar="X.npy", help="inputs (B, T, ...) or (T, ...)")
    p.add_argument("--lava", action="store_true", help="also run Lava fixed_pt (slow: sample by sample)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    add_semantics_args(p)


@command("compare", help="compare the float NIR run with the quantized network", configure=_configure)
def run(args: argparse.Namespace) -> int:
    import numpy as np
    from spikeport.emulator.io import load_network
    from spikeport.nir.io import read_nir, semantics_from_args
    from spikeport.report.compare import compare, format_report

    graph, _stored = read_nir(args.model)
    net = load_network(args.network)
    sem = semantics_from_args(args, None)  # default: the semantics the network was quantized under
    x = np.load(args.input)
    if x.ndim == 2:
        x = x[None]
    rep = compare(graph, net, x, sem, lava=args.lava)
    print(json.dumps(rep, indent=2) if args.json else format_report(rep))
    return 0
