"""``spikeport map NET --chip loihi1|loihi2 [--json]``: how a network partitions over a chip's cores."""

from __future__ import annotations

import argparse
import json

from spikeport.cli.main import command


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("network", help="integer network: spikeport HDF5 (.h5) or lava-dl netx (.net)")
    p.add_argument(
        "--chip", choices=("loihi1", "loihi2"), default="loihi2", help="target chip (default loihi2)"
    )
    p.add_argument("--json", action="store_true", help="print the map as JSON")


def load_any(path: str) -> object:
    """A spikeport network from ``.net`` (lava-dl netx, as netx loads it by default) or spikeport's HDF5."""
    from spikeport.netx import is_netx, read_netx

    if is_netx(path):
        return read_netx(path)
    from spikeport.emulator.io import load_network

    return load_network(path)


@command(
    "map",
    help="partition a network over Loihi 1 / Loihi 2 cores and check every core's limits",
    configure=_configure,
)
def run(args: argparse.Namespace) -> int:
    from spikeport.chip.resource_map import format_map, resource_map

    m = resource_map(load_any(args.network), chip=args.chip)  # type: ignore[arg-type]
    print(json.dumps(m, indent=2) if args.json else format_map(m))
    return 1 if m["violations"] else 0
