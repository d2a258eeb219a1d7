"""``spikeport demo``: the main job on an embedded default."""

from __future__ import annotations

import argparse

from .cli import command


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--out", default="spikeport-report", help="report folder (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)


@command("demo", help="run the whole pipeline on an embedded default", configure=_configure)
def run(args: argparse.Namespace) -> int:
    from .cmd_doctor import run as doctor

    return doctor(argparse.Namespace(json=False, no_lava=False))
