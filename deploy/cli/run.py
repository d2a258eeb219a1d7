"""``spikeport run``: run a network on inputs and write every recorded array to one ``.npz``.

::

    spikeport run NET.h5 --input X.npy -o OUT.npz [--backend emulator|lava] [--record spikes,v,u]
                  [--pad auto|N] [--aligned] [--internal] [--time-first] [--float] [--json]
                  [--engine dense|event|torch] [--device cpu|cuda] [--format npz|npz-compressed|h5|npy-dir]
                  [--cluster local[:N]|tcp://HOST:PORT] [--chunk-size B] [--stream B]
    spikeport run MODEL.nir --input X.npy -o OUT.npz [--semantics NAME --dt ... --reset ...]  (float run)

``NET.h5`` is an integer network (:func:`spikeport.emulator.io.save_network`). ``X.npy`` holds one
array ``(B, T, ...)`` in the model's natural shape (``(B, T, n)``, ``(B, T, C, H, W)``; ``(T, ...)`` for
one sample; ``(T, B, ...)`` with ``--time-first``); ``X.npz`` holds one array per input, named after it.
Inputs are read and checked by :mod:`spikeport.cli.files` (the loading path every command shares).

Lag. Every connection of an integer network delivers one step later, so group ``G`` answers input
step ``t`` at index ``t + lag[G]`` (the quantizer records ``lag`` per group; for other networks it is
the longest feed-forward path, one step plus its delay per connection). ``--pad auto`` (default)
appends ``max lag`` zero steps so that every group sees the last input step; ``--pad N`` appends ``N``.
``--aligned`` cuts each group's arrays to ``[lag[G], lag[G] + T)``: index ``t`` is then input step ``t``,
as in the float run of the NIR model. ``__metadata__`` records the lag per group, the padding, the
alignment and the semantics of the source model.

``OUT.npz`` gets one array per group and variable, ``<group>/<variable>`` ``(B, T', n)``, spikes always
``int32`` (every backend alike), plus ``__metadata__`` (JSON). Groups the quantizer adds (``~bias``) are
left out unless ``--internal``. A ``.nir`` model runs the float reference
(:func:`spikeport.reference.run.run_nir`) under its stored semantics or ``--semantics``, with any
field overridden. stdout gets a one-line summary, or a JSON object with ``--json``.

Output formats (``--format``, :mod:`spikeport.emulator.result_files`, every one written atomically and
read back by ``load_result``): ``npz`` (default: uncompressed, written at disk speed; ``np.load``),
``npz-compressed`` (zlib level 1: small, slower), ``h5`` (one dataset per array, metadata in the root
attribute ``__metadata__``) and ``npy-dir`` (a folder: ``OUT/<group>/<variable>.npy`` plus
``__metadata__.json``; ``np.load(..., mmap_mode="r")``).

Scale. ``--engine torch --device cpu|cuda`` runs the bit-exact torch engine. ``--cluster local[:N]``
(N local worker processes) or ``--cluster tcp://HOST:PORT`` (a running ``dask scheduler``) splits the
batch into chunks (``--chunk-size``) run on the Dask workers (:mod:`spikeport.cluster`): the arrays equal
the in-process run's. ``--stream B`` (:mod:`spikeport.cli.run_stream`) reads, runs and writes ``B``
samples at a time (``.npy`` input, ``--format h5`` or ``npy-dir``), so memory stays that of one chunk
for any number of samples; the arrays equal the one-shot run's.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from spikeport.cli.main import command
from spikeport.cli.run_core import INTERNAL_PREFIX as INTERNAL_PREFIX
from spikeport.cli.run_core import add_cluster_arg as add_cluster_arg
from spikeport.cli.run_core import align_result, finish_result, group_lags, pad_steps, run_with, spike_dtypes
from spikeport.cli.run_core import backend_options as backend_options
from spikeport.cli.run_core import cluster_client as cluster_client
from spikeport.cli.run_core import run_options as run_options
from spikeport.emulator.errors import UnsupportedError, ValidationError
from spikeport.nir.semantics_args import add_semantics_args

if TYPE_CHECKING:
    from spikeport.emulator.network import Network
    from spikeport.emulator.result import RunResult

BACKENDS = ("emulator", "lava")
OUTPUT_FORMATS = ("npz", "npz-compressed", "h5", "npy-dir")  # spikeport.emulator.result_files.FORMATS


def pad_value(text: str) -> int | None:
    """``--pad``: ``auto`` (None) or a step count >= 0."""
    if text == "auto":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be 'auto' or an integer >= 0 (got {text!r})") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 'auto' or an integer >= 0 (got {text!r})")
    return value


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("net", metavar="NET", help="network file: integer network .h5, or a .nir model")
    p.add_argument(
        "--input", required=True, metavar="X", help=".npy array (B, T, ...) / (T, ...), or .npz per input"
    )
    p.add_argument(
        "-o", "--output", required=True, metavar="OUT", help="where to write the arrays (see --format)"
    )
    p.add_argument("--backend", choices=BACKENDS, default="emulator", help="default: emulator")
    p.add_argument(
        "--record",
        default="spikes",
        metavar="VARS",
        help="comma-separated variables or group/var (default: spikes)",
    )
    p.add_argument("--float", action="store_true", help="emulator float mode (no rounding, wrap or clip)")
    p.add_argument(
        "--engine",
        choices=("dense", "event", "torch"),
        default="dense",
        help="emulator engine (default: dense; torch: bit-exact, on --device)",
    )
    p.add_argument("--device", default=None, metavar="cpu|cuda", help="torch engine device (default: cpu)")
    p.add_argument(
        "--format",
        choices=OUTPUT_FORMATS,
        default="npz",
        help="npz (uncompressed, default), npz-compressed (zlib 1), h5, npy-dir (a folder of .npy)",
    )
    add_cluster_arg(p)
    p.add_argument(
        "--stream",
        type=int,
        default=None,
        metavar="B",
        help="run and write B samples at a time, in bounded memory (.npy input; --format h5 or npy-dir)",
    )
    p.add_argument(
        "--pad",
        type=pad_value,
        default=None,
        metavar="auto|N",
        help="zero steps appended for the lag (default: auto = largest lag)",
    )
    p.add_argument(
        "--aligned", action="store_true", help="cut each group to its lag window: index t = input step t"
    )
    p.add_argument("--internal", action="store_true", help="also write internal groups (~bias)")
    p.add_argument("--time-first", action="store_true", help="the input arrays are (T, B, ...)")
    p.add_argument(
        "--lava-timeout",
        type=float,
        default=3600.0,
        metavar="S",
        help="end a Lava run that has not answered after S seconds (default 3600)",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_semantics_args(p)  # .nir models: the convention to run under, with per-field overrides


def load_inputs(path: str, *, time_first: bool = False) -> Any:
    """An array from ``.npy``, or ``{name: array}`` from ``.npz`` (:func:`spikeport.cli.files.read_arrays`)."""
    from spikeport.cli.files import read_arrays

    return read_arrays(path, option="--input", time_first=time_first)


def _run_network(
    args: argparse.Namespace, record: list[str], net: Network
) -> tuple[RunResult, dict[str, Any]]:
    from spikeport.cli.files import network_inputs

    mode = "float" if args.float else "fixed"
    if args.backend == "lava" and args.float:
        raise UnsupportedError("--float: Lava runs fixed point only; use --backend emulator")
    xs = network_inputs(net, load_inputs(args.input, time_first=args.time_first), path=args.input, mode=mode)
    lags = group_lags(net)
    pad = max(lags.values(), default=0) if args.pad is None else args.pad
    if args.aligned and pad < max(lags.values(), default=0):
        raise ValidationError(
            f"--pad: --aligned needs at least the largest lag {max(lags.values())} (got {pad})"
        )
    steps = next(iter(xs.values())).shape[1]
    result = _execute(net, pad_steps(xs, pad), args, record, mode)
    meta = {
        "semantics": net.metadata.get("semantics"),
        "lag": lags,
        "pad": pad,
        "input_steps": int(steps),
        "aligned": bool(args.aligned),
        "timing": "group G answers input step t at index t + lag[G]"
        + ("; arrays cut to [lag[G], lag[G] + T): index t = input step t" if args.aligned else ""),
    }
    if args.aligned:
        result = align_result(result, lags, steps)
    return result, meta


def _execute(
    net: Network, xs: dict[str, Any], args: argparse.Namespace, record: list[str], mode: str
) -> RunResult:
    """The run itself, on the backend: in this process, or split over the ``--cluster`` workers."""
    opts = backend_options(args, mode)
    with cluster_client(args) as client:
        return run_with(net, xs, args, record, opts, client)


def _run_nir_model(args: argparse.Namespace, record: list[str]) -> tuple[RunResult, dict[str, Any]]:
    """The float reference run of a NIR model under its stored semantics, or the given ones."""
    if args.backend != "emulator" or args.float or args.cluster or args.device:
        raise UnsupportedError(
            f"{args.net}: a .nir model runs the float reference only "
            "(no --backend/--float/--cluster/--device)"
        )
    from spikeport.cli.files import float_inputs, load_model, model_semantics
    from spikeport.reference.run import run_nir

    graph, stored = load_model(args.net, option="NET")
    sem, origin = model_semantics(args, graph, stored)
    xs = float_inputs(graph, load_inputs(args.input, time_first=args.time_first), path=args.input)
    result = run_nir(graph, xs, sem, record=record)
    extra = {"semantics_source": origin, "lag": {}, "pad": 0, "aligned": True}
    return result, {**extra, "timing": "float reference: no lag"}


def spike_counts(result: RunResult) -> dict[str, int]:
    """Spike events per group (nonzero entries of ``<group>/spikes``), for groups that recorded them."""
    import numpy as np

    return {
        k.split("/", 1)[0]: int(np.count_nonzero(v))
        for k, v in result.outputs.items()
        if k.endswith("/spikes")
    }


def run_summary(result: RunResult, args: argparse.Namespace) -> dict[str, Any]:
    """What ``--json`` prints: where the arrays went, the backend, batch, steps and spikes per group."""
    shape = next((a.shape for a in result.outputs.values()), (0, 0, 0))
    return {
        "output": str(args.output),
        "backend": result.metadata.get("backend", args.backend),
        "batch": int(shape[0]),
        "steps": int(shape[1]),
        "pad": int(result.metadata.get("pad", 0)),
        "arrays": len(result.outputs),
        "spikes": spike_counts(result),
        **_semantics_summary(result),
    }


def _semantics_summary(result: RunResult) -> dict[str, Any]:
    """A NIR model's run: the convention it ran under and where it came from (stored, suggested, given)."""
    origin = result.metadata.get("semantics_source")
    return {"semantics": origin} if origin else {}


def check_output(args: argparse.Namespace) -> None:
    """``--output`` before any work: a file (:func:`~spikeport.cli.files.check_outputs`), or for
    ``--format npy-dir`` a new folder or a previous npy-dir output that holds none of the inputs."""
    from pathlib import Path

    from spikeport.cli.files import check_outputs

    if args.format != "npy-dir":
        check_outputs({"--output": args.output}, [args.net, args.input])
        return
    from spikeport.emulator.result_files import check_folder_target

    folder = check_folder_target(args.output, obj="--output", field="path").resolve()
    for src in (args.net, args.input):
        if folder == Path(src).resolve() or folder in Path(src).resolve().parents:
            raise ValidationError(f"--output.path: must not hold the inputs (got {args.output!r})")


def _say_semantics(result: RunResult, args: argparse.Namespace) -> None:
    """The one stderr line naming a NIR model's semantics (said once the run worked)."""
    import sys

    from spikeport.cli.files import semantics_line

    origin = result.metadata.get("semantics_source")
    line = semantics_line(origin, args) if origin else None
    if line:
        print(f"spikeport run: {line}", file=sys.stderr)


@command(
    "run",
    help="run a network (emulator or Lava) or a NIR model and save the recorded arrays",
    configure=_configure,
)
def run(args: argparse.Namespace) -> int:
    from spikeport.cli.files import is_nir, load_network

    record = [r.strip() for r in args.record.split(",") if r.strip()]
    if not record:
        raise ValidationError(f"--record: must name at least one variable (got {args.record!r})")
    check_output(args)
    if args.stream is not None:
        from spikeport.cli.run_stream import stream_run

        summary = stream_run(args, record)
    else:
        net = None if args.net.endswith(".nir") or is_nir(args.net) else load_network(args.net)
        result, extra = _run_nir_model(args, record) if net is None else _run_network(args, record, net)
        result = finish_result(result, extra, args)
        casts = spike_dtypes(result, net, "float" if args.float else "fixed")
        result.save(args.output, format=args.format, obj="--output", dtypes=casts)
        _say_semantics(result, args)
        summary = run_summary(result, args)
    if args.json:
        print(json.dumps(summary))
    else:
        spikes = ", ".join(f"{g} {n}" for g, n in summary["spikes"].items()) or "none recorded"
        print(
            f"spikeport run: {summary['backend']}, B={summary['batch']} T={summary['steps']} "
            f"(pad {summary['pad']}), {summary['arrays']} arrays -> {args.output}; spikes: {spikes}"
        )
    return 0
