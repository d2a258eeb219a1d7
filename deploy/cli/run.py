"""``spikeport run``: run a network on inputs and write every recorded array to one ``.npz``.

::

    spikeport run NET.h5 --input X.npy -o OUT.npz [--backend emulator|lava] [--record spikes,v,u]
                  [--float] [--json]
    spikeport run MODEL.nir --input X.npy -o OUT.npz [--semantics NAME --dt ... --reset ...]  (float run)

``NET.h5`` is an integer network (:func:`spikeport.emulator.io.save_network`). ``X.npy`` holds one
array ``(T, n)`` or ``(B, T, n)`` (a network with one input group); ``X.npz`` holds one array per
input group, named after it. ``OUT.npz`` gets one array per group and variable, named
``<group>/<variable>``, shape ``(B, T, n)``, plus ``__metadata__`` (JSON). ``--float`` runs the
emulator's float mode (same steps, real arithmetic). A ``.nir`` model runs the float reference
(:func:`spikeport.reference.run.run_nir`) under its stored semantics or ``--semantics``, with any
field overridden (``--reset subtract``, ``--dt 1e-4``, ...). ``--engine event`` picks the event-driven engine.
stdout gets a one-line summary (spike counts per group), or a JSON object with ``--json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from spikeport.cli.main import command
from spikeport.emulator.errors import UnsupportedError, ValidationError
from spikeport.emulator.result import RunResult
from spikeport.nir.io import add_semantics_args, semantics_from_args

BACKENDS = ("emulator", "lava")


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("net", metavar="NET", help="network file: integer network .h5, or a .nir model")
    p.add_argument(
        "--input", required=True, metavar="X", help=".npy array (T, n) / (B, T, n), or .npz per input"
    )
    p.add_argument("-o", "--output", required=True, metavar="OUT.npz", help="where to write the arrays")
    p.add_argument("--backend", choices=BACKENDS, default="emulator", help="default: emulator")
    p.add_argument(
        "--record",
        default="spikes",
        metavar="VARS",
        help="comma-separated variables or group/var (default: spikes)",
    )
    p.add_argument("--float", action="store_true", help="emulator float mode (no rounding, wrap or clip)")
    p.add_argument(
        "--engine", choices=("dense", "event"), default="dense", help="emulator engine (default: dense)"
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_semantics_args(p)  # .nir models: the convention to run under, with per-field overrides


def load_inputs(path: str) -> Any:
    """An array from ``.npy``, or ``{name: array}`` from ``.npz``."""
    p = Path(path)
    if not p.is_file():
        raise ValidationError(f"--input: no such file (got {path!r})")
    try:
        loaded = np.load(p, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValidationError(f"--input: not a .npy/.npz file ({path}: {exc})") from None
    if isinstance(loaded, np.ndarray):
        return loaded
    with loaded:
        return {k: loaded[k] for k in loaded.files}


def _run_network(args: argparse.Namespace, x: Any, record: list[str]) -> RunResult:
    from spikeport.emulator.io import load_network

    net = load_network(args.net)
    if args.backend == "lava":
        if args.float:
            raise UnsupportedError("--float: Lava runs fixed point only; use --backend emulator")
        from spikeport.lava.backend import run_lava

        return run_lava(net, x, record=record, progress=True)
    from spikeport.emulator.engines.dispatch import run

    mode = "float" if args.float else "fixed"
    return run(net, x, record=record, mode=mode, engine=args.engine, progress=True)


def _run_nir_model(args: argparse.Namespace, x: Any, record: list[str]) -> RunResult:
    """The float reference run of a NIR model under its stored semantics, or the given ones."""
    if args.backend != "emulator" or args.float:
        raise UnsupportedError(
            f"{args.net}: a .nir model runs the float reference only (no --backend/--float)"
        )
    from spikeport.nir.io import read_nir
    from spikeport.reference.run import run_nir

    graph, stored = read_nir(args.net)
    return run_nir(graph, x, semantics_from_args(args, default=stored), record=record)


def spike_counts(result: RunResult) -> dict[str, int]:
    """Spike events per group (nonzero entries of ``<group>/spikes``), for groups that recorded them."""
    return {
        k.split("/", 1)[0]: int(np.count_nonzero(v))
        for k, v in result.outputs.items()
        if k.endswith("/spikes")
    }


@command(
    "run",
    help="run a network (emulator or Lava) or a NIR model and save the recorded arrays",
    configure=_configure,
)
def run(args: argparse.Namespace) -> int:
    record = [r.strip() for r in args.record.split(",") if r.strip()]
    if not record:
        raise ValidationError(f"--record: must name at least one variable (got {args.record!r})")
    if not Path(args.net).is_file():
        raise ValidationError(f"NET: no such file (got {args.net!r})")
    x = load_inputs(args.input)
    runner = _run_nir_model if args.net.endswith(".nir") else _run_network
    result = runner(args, x, record)
    result.save_npz(args.output)
    counts = spike_counts(result)
    first = next(iter(result.outputs.values()), np.zeros((0, 0, 0)))
    summary = {
        "output": str(args.output),
        "backend": result.metadata.get("backend", args.backend),
        "batch": int(first.shape[0]),
        "steps": int(first.shape[1]),
        "arrays": len(result.outputs),
        "spikes": counts,
    }
    if args.json:
        print(json.dumps(summary))
    else:
        spikes = ", ".join(f"{g} {n}" for g, n in counts.items()) or "none recorded"
        print(
            f"spikeport run: {summary['backend']}, B={summary['batch']} T={summary['steps']}, "
            f"{summary['arrays']} arrays -> {args.output}; spikes: {spikes}"
        )
    return 0
