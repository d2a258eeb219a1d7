"""``spikeport quantize MODEL.nir -o NET.h5``: float NIR + semantics -> the integer network (HDF5)."""

from __future__ import annotations

import argparse
import json
import sys

from spikeport.cli.main import command
from spikeport.nir.semantics_args import add_semantics_args


def _configure(p: argparse.ArgumentParser) -> None:
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
        "--rounding",
        choices=("nearest", "min_drift"),
        default=None,
        help="decays and biases: rounded to nearest, or by least drift over the run (default: nearest, "
        "or the --scales network's rule)",
    )
    p.add_argument(
        "--scales",
        metavar="NET.h5",
        help="take the group scales, thresholds, weight exponents, decays and input scales of this "
        "quantized network (e.g. to requantize a fine-tuned network's written-back NIR exactly)",
    )
    p.add_argument(
        "--margin", type=float, default=2.0, help="calibration peaks are multiplied by this (default 2)"
    )
    p.add_argument(
        "--json", metavar="REPORT.json", help="write the quantization report as JSON ('-': stdout)"
    )
    p.add_argument("--time-first", action="store_true", help="the calibration arrays are (T, B, ...)")
    add_semantics_args(p)


@command("quantize", help="quantize a NIR model to the Loihi-style integer network", configure=_configure)
def run(args: argparse.Namespace) -> int:
    from spikeport.cli.files import (
        check_outputs,
        float_inputs,
        load_model,
        model_semantics,
        read_arrays,
        semantics_line,
    )
    from spikeport.emulator.errors import UnsupportedError
    from spikeport.emulator.io import load_network
    from spikeport.quantize.quantize_nir import quantize

    check_outputs({"--output": args.output, "--json": args.json}, [args.model, args.calibrate, args.scales])
    graph, stored = load_model(args.model)
    sem, origin = model_semantics(args, graph, stored)
    cal = None
    if args.calibrate:
        data = read_arrays(args.calibrate, option="--calibrate", time_first=args.time_first)
        cal = float_inputs(graph, data, path=args.calibrate, require_all=False)
    try:
        net, report = quantize(
            graph, sem,
            weight_bits=args.weight_bits, mode=args.mode, calibration=cal, target=args.target,
            shift_decays=args.shift_decays, margin=args.margin, rounding=args.rounding,
            scales=None if not args.scales else load_network(args.scales),
        )  # fmt: skip
    except UnsupportedError as exc:  # a refusal names the convention it came from, when not given
        line = semantics_line(origin, args)
        raise UnsupportedError(f"{exc} [{line}]" if line else str(exc)) from None
    net = type(net)(
        inputs=net.inputs, groups=net.groups, connections=net.connections,
        metadata={**net.metadata, "source_file": str(args.model), "semantics_source": origin},
    )  # fmt: skip
    _write(args, net, report)
    line = semantics_line(origin, args)
    if line:  # said once it worked: an error stays the only line on stderr
        print(f"spikeport quantize: {line}", file=sys.stderr)
    if args.json == "-":
        print(report.to_json(indent=2))
    else:
        print(report.summary())
        print(f"wrote {args.output}" + (f" and {args.json}" if args.json else ""))
    return 0


def _write(args: argparse.Namespace, net: object, report: object) -> None:
    """The network and the JSON report: both or neither (staged, then renamed together)."""
    from spikeport.emulator.atomic import staged_outputs
    from spikeport.emulator.io import save_network

    with staged_outputs() as stage:
        save_network(stage.path(args.output, obj="--output"), net)  # type: ignore[arg-type]
        if args.json and args.json != "-":
            with open(stage.path(args.json, obj="--json"), "w") as f:
                json.dump(report.to_dict(), f, indent=2)  # type: ignore[attr-defined]
