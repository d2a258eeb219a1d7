"""``spikeport compare MODEL.nir NET.h5 --input X.npy``: float run vs fixed-point emulator (vs Lava).

``--cluster local[:N]|tcp://HOST:PORT`` runs the emulator (and Lava) on Dask workers, batch split in chunks.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from spikeport.cli.main import command
from spikeport.cli.run import add_cluster_arg
from spikeport.nir.semantics_args import add_semantics_args


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="NIR file (the float model)")
    p.add_argument("network", help="quantized network (HDF5, from spikeport quantize)")
    p.add_argument("--input", required=True, metavar="X.npy", help="inputs (B, T, ...) or (T, ...)")
    p.add_argument("--time-first", action="store_true", help="the input arrays are (T, B, ...)")
    p.add_argument("--lava", action="store_true", help="also run Lava fixed_pt (slow: sample by sample)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    add_cluster_arg(p)
    add_semantics_args(p)


@command("compare", help="compare the float NIR run with the quantized network", configure=_configure)
def run(args: argparse.Namespace) -> int:
    from spikeport.cli.files import float_inputs, load_model, load_network, read_arrays
    from spikeport.cli.run import cluster_client, run_options
    from spikeport.emulator.errors import ValidationError
    from spikeport.quantize.quantize_nir import encode_inputs
    from spikeport.report.compare import compare, format_report

    graph, _stored = load_model(args.model)
    net = load_network(args.network, option="NETWORK")
    sem, origin = _semantics(args, net)
    x = float_inputs(graph, read_arrays(args.input, time_first=args.time_first), path=args.input)
    if "inputs" in net.metadata:
        try:  # the network's input encoding (binary inputs take 0/1 only), checked up front
            encode_inputs(net, x)
        except ValidationError as exc:
            raise ValidationError(str(exc).replace("encode_inputs.", f"{args.input}.", 1)) from None
    with cluster_client(args) as client:
        rep = compare(graph, net, x, sem, lava=args.lava, **run_options(args, client))
    rep["semantics_source"] = origin
    print(json.dumps(rep, indent=2) if args.json else format_report(rep))
    if origin["source"] != "given":
        print(f"spikeport compare: semantics: {origin['convention']} ({origin['reason']}; "
              "override with --semantics)", file=sys.stderr)  # fmt: skip
    return 0


def _semantics(args: argparse.Namespace, net: Any) -> tuple[Any, dict[str, str]]:
    """``--semantics`` (with overrides), else the semantics the network was quantized under (which
    ``spikeport quantize`` took from the NIR file or suggested), with any per-field option applied."""
    from spikeport.nir.semantics_args import semantics_from_args
    from spikeport.quantize.semantics import Semantics, semantics

    if args.semantics:
        sem = semantics_from_args(args) or semantics(args.semantics)
        return sem, {"source": "given", "convention": sem.convention, "reason": "--semantics"}
    recorded = net.metadata.get("semantics")
    base = Semantics.from_dict(dict(recorded)) if recorded else None
    given = semantics_from_args(args, default=base)
    origin = dict(net.metadata.get("semantics_source") or {})
    why = "the network was quantized under it" + (
        f"; {origin['source']}: {origin['reason']}" if origin.get("source") in ("stored", "suggested") else ""
    )
    name = given.convention if given is not None else "nir"
    return given, {"source": "network", "convention": name, "reason": why}
