"""``spikeport energy NET.h5 --input X.npy``: SynOps, NeuroBench ops and energy per inference.

Runs the network in the emulator (fixed point, recording spikes, v and u so the active-update count is
exact; ``--cluster local[:N]|tcp://HOST:PORT`` splits the batch over Dask workers), then prints a
per-layer table, totals per inference and the comparison across energy profiles (built-in names or
user TOML/JSON files), or the same as JSON; ``--plot`` writes a bar chart. ``--chip loihi1|loihi2``
counts messages (one per spike and destination core) on that chip's placement.
``X.npy`` holds (T, n) or (B, T, n) input spikes for a single-input network; an ``.npz`` maps each
input group name to its array.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from spikeport.cli.main import command
from spikeport.cli.run import add_cluster_arg


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
    p.add_argument(
        "--chip",
        choices=("loihi1", "loihi2"),
        default=None,
        help="count messages on this chip's core placement (default: ceil(n / neurons_per_core) cores per group)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--plot",
        metavar="FILE.png",
        help="write a bar chart of energy per profile (a folder: FOLDER/energy.png)",
    )
    p.add_argument("--time-first", action="store_true", help="the input arrays are (T, B, ...)")
    add_cluster_arg(p)


PLOT_SUFFIXES = (".png", ".svg", ".pdf")


def plot_path(path: str) -> str:
    """``--plot``: a folder gets ``energy.png`` inside it, a name without a suffix gets ``.png``; other
    suffixes than .png/.svg/.pdf are refused (the printed name is always the written one)."""
    from spikeport.emulator.errors import ValidationError

    p = Path(path)
    if p.is_dir() or path.endswith(("/", "\\")):
        return str(p / "energy.png")
    if not p.suffix:
        return f"{path}.png"
    if p.suffix.lower() not in PLOT_SUFFIXES:
        raise ValidationError(
            f"--plot.path: must end in one of {PLOT_SUFFIXES} or name a folder (got {path!r})"
        )
    return path


def load_network(path: str) -> Any:
    """The integer network at ``path`` (:func:`spikeport.cli.files.load_network`; a NIR model is named)."""
    from spikeport.cli.files import load_network as _load

    return _load(path)


@command(
    "energy", help="count SynOps and estimate energy per inference of a network run", configure=_configure
)
def run(args: argparse.Namespace) -> int:
    from spikeport.api import run as run_net
    from spikeport.cli.files import check_outputs, network_inputs, read_arrays
    from spikeport.cli.run import cluster_client, run_options
    from spikeport.emulator.energy.estimate import builtin_profiles
    from spikeport.emulator.network import LIFGroup
    from spikeport.report.energy import format_text, plot_png, report_from_run, to_json

    plot = plot_path(args.plot) if args.plot else None
    check_outputs({"--plot": plot}, [args.net, args.input, *(args.profile or [])])
    net = load_network(args.net)
    mode = "float" if args.float else "fixed"
    data = read_arrays(args.input, time_first=args.time_first)
    x = network_inputs(net, data, path=args.input, mode=mode)
    has_lif = any(isinstance(g, LIFGroup) for g in net.groups)
    record = ("spikes", "v", "u") if has_lif else ("spikes",)
    with cluster_client(args) as client:
        result = run_net(net, x, record=record, mode=mode, **run_options(args, client))
    profiles = args.profile or list(builtin_profiles())
    rep = report_from_run(net, x, result, profiles=profiles, baseline=args.baseline, chip=args.chip)
    if plot:
        plot_png(rep, plot)
    if args.json:
        print(json.dumps(to_json(rep), indent=2))
    else:
        print(format_text(rep))
        if plot:
            print(f"chart: {plot}")
    return 0
