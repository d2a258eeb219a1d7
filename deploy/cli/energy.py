"""``spikeport energy NET.h5 --input X.npy``: SynOps, NeuroBench ops and energy per inference.

Runs the network in the emulator (fixed point, recording spikes, v and u so the active-update count is
exact), then prints a per-layer table, totals per inference and the comparison across energy
profiles (built-in names or user TOML/JSON files), or the same as JSON; ``--plot`` writes a bar chart.
``X.npy`` holds (T, n) or (B, T, n) input spikes for a single-input network; an ``.npz`` maps each
input group name to its array.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from spikeport.cli.main import command


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("net", help="integer network (HDF5)")
    p.add_argument("--input", required=True, help="input spikes: .npy (T, n) / (B, T, n), or .npz by group")
    p.add_argument(
        "--profile",
        action="append",
        default=None,
        help="energy profile: built-in name or a .toml/.json file (repeatable; default: all built-ins)",
    )
    p.add_argument(
        "--baseline", default="ann-fp32", help="ANN profile for the dense baseline (default ann-fp32)"
    )
    p.add_argument("--float", action="store_true", help="run the float twin instead of fixed point")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--plot", metavar="FILE.png", help="write a bar chart of energy per profile")


def load_network(path: str) -> Any:
    """The network stored at ``path`` (HDF5, via the emulator's loader)."""
    from spikeport.emulator.errors import MissingDependencyError

    try:
        from spikeport.emulator.io import load_network as _load
    except ImportError as exc:
        raise MissingDependencyError(
            "spikeport.emulator.io.load_network is not available in this build"
        ) from exc
    return _load(path)


def load_inputs(path: str) -> Any:
    import numpy as np
    from spikeport.emulator.errors import ValidationError

    p = Path(path)
    if not p.is_file():
        raise ValidationError(f"energy.input: no such file (got {path!r})")
    data = np.load(p, allow_pickle=False)
    if isinstance(data, np.ndarray):
        return data
    with data:
        return {k: data[k] for k in data.files}


@command(
    "energy", help="count SynOps and estimate energy per inference of a network run", configure=_configure
)
def run(args: argparse.Namespace) -> int:
    from spikeport.emulator.energy.estimate import builtin_profiles
    from spikeport.emulator.engines.dispatch import run as run_net
    from spikeport.emulator.network import LIFGroup
    from spikeport.report.energy import format_text, plot_png, report_from_run, to_json

    net = load_network(args.net)
    x = load_inputs(args.input)
    mode = "float" if args.float else "fixed"
    has_lif = any(isinstance(g, LIFGroup) for g in net.groups)
    result = run_net(net, x, record=("spikes", "v", "u") if has_lif else ("spikes",), mode=mode)
    profiles = args.profile or list(builtin_profiles())
    rep = report_from_run(net, x, result, profiles=profiles, baseline=args.baseline)
    if args.plot:
        plot_png(rep, args.plot)
    if args.json:
        print(json.dumps(to_json(rep), indent=2))
    else:
        print(format_text(rep))
        if args.plot:
            print(f"chart: {args.plot}")
    return 0
