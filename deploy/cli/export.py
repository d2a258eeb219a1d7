"""``spikeport export NET.h5 --format netx -o model.net``: write an integer network for lava-dl's netx."""

from __future__ import annotations

import argparse

from spikeport.cli.main import command


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("network", help="integer network: spikeport HDF5 (.h5) or lava-dl netx (.net)")
    p.add_argument("--format", choices=("netx",), default="netx", help="output format (default netx)")
    p.add_argument("-o", "--output", required=True, help="file to write (e.g. model.net)")


@command("export", help="write an integer network as a lava-dl netx file (.net)", configure=_configure)
def run(args: argparse.Namespace) -> int:
    from spikeport.cli.map import load_any
    from spikeport.netx.write import write_netx

    path = write_netx(load_any(args.network), args.output)  # type: ignore[arg-type]
    print(f"wrote {path} (load it with lava.lib.dl.netx.hdf5.Network)")
    return 0
