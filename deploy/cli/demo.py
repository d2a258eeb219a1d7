"""``spikeport demo``: the whole pipeline on an embedded default (scikit-learn digits)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from spikeport.cli.main import command


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--out", default="spikeport-report", help="report folder (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=16, help="time steps per sample (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=12, help="training epochs (default: %(default)s)")
    p.add_argument("--hidden", type=int, default=64, help="hidden LIF neurons (default: %(default)s)")
    p.add_argument(
        "--lava-samples",
        type=int,
        default=64,
        help="samples also run on Lava (default: %(default)s); 0 skips",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


@command(
    "demo",
    help="train, export, quantize, emulate, run on Lava and estimate energy (digits)",
    configure=_configure,
)
def run(args: argparse.Namespace) -> int:
    from spikeport.demo.pipeline import DemoConfig, run_demo
    from spikeport.demo.runs import print_summary

    cfg = DemoConfig(
        out=Path(args.out),
        seed=args.seed,
        steps=args.steps,
        epochs=args.epochs,
        hidden=args.hidden,
        lava_samples=args.lava_samples,
    )
    summary = run_demo(cfg)
    if args.json:
        summary.pop("energy_text", None)
        print(json.dumps(summary, indent=2))
    else:
        print_summary(summary)
    lava = summary.get("lava") or {}
    return 0 if all(r["bit_exact"] for k, r in lava.items() if k != "samples") else 1
