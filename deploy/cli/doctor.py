"""``spikeport doctor``: what is installed, and does Lava run fixed_pt here."""

from __future__ import annotations

import argparse
import json

from spikeport.cli.main import command


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--no-lava", action="store_true", help="skip the Lava run")


@command("doctor", help="show versions and check that Lava runs fixed-point here", configure=_configure)
def run(args: argparse.Namespace) -> int:
    from spikeport.doctor import report

    rep = report(run_lava=not args.no_lava)
    if args.json:
        print(json.dumps(rep, indent=2))
    else:
        print("spikeport doctor")
        for k, v in rep["versions"].items():
            print(f"  {k:<10} {v or 'not installed'}")
        lava = rep.get("lava_fixed_pt")
        if lava is None:
            print("  lava run   skipped" if rep["lava_available"] else "  lava run   lava-nc missing")
        else:
            verdict = "bit-exact" if lava["ok"] else f"MISMATCH {lava['mismatches']}"
            print(
                f"  lava run   Dense+LIF fixed_pt, {lava['steps']} steps, {lava['spikes']} spikes, "
                f"{lava['seconds']} s: {verdict} vs integer oracle"
            )
    lava = rep.get("lava_fixed_pt")
    return 0 if lava is None or lava["ok"] else 1
