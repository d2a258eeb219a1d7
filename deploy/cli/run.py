"""``spikeport run``: run a network on inputs and write every recorded array to one ``.npz``.

::

    spikeport run NET.h5 --input X.npy -o OUT.npz [--backend emulator|lava] [--record spikes,v,u]
                  [--pad auto|N] [--aligned] [--internal] [--time-first] [--float] [--json]
                  [--engine dense|event|torch] [--device cpu|cuda] [--format npz|npz-compressed|h5|npy-dir]
                  [--cluster local[:N]|tcp://HOST:PORT] [--chunk-size B]
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
the in-process run's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from spikeport.cli.main import command
from spikeport.emulator.errors import UnsupportedError, ValidationError
from spikeport.nir.semantics_args import add_semantics_args

if TYPE_CHECKING:
    from spikeport.emulator.network import Network
    from spikeport.emulator.result import RunResult

BACKENDS = ("emulator", "lava")
INTERNAL_PREFIX = "~"
OUTPUT_FORMATS = ("npz", "npz-compressed", "h5", "npy-dir")  # spikeport.emulator.result_files.FORMATS


def add_cluster_arg(p: argparse.ArgumentParser) -> None:
    """``--cluster`` and ``--chunk-size`` (``run``, ``compare``, ``energy``)."""
    p.add_argument(
        "--cluster",
        default=None,
        metavar="local[:N]|tcp://HOST:PORT",
        help="split the batch over a Dask cluster: N local worker processes, or a running scheduler",
    )
    p.add_argument(
        "--chunk-size", type=int, default=None, metavar="B", help="samples per Dask chunk (with --cluster)"
    )


@contextlib.contextmanager
def cluster_client(args: argparse.Namespace) -> Iterator[Any]:
    """A Dask client for ``--cluster`` (None without it), closed with its local cluster afterwards."""
    spec = getattr(args, "cluster", None)
    if spec is None:
        if getattr(args, "chunk_size", None) is not None:
            raise ValidationError(f"--chunk-size: needs --cluster (got {args.chunk_size})")
        yield None
        return
    if args.chunk_size is not None and args.chunk_size < 1:
        raise ValidationError(f"--chunk-size: must be >= 1 (got {args.chunk_size})")
    from spikeport.cluster import client_from_spec, close_client

    client = client_from_spec(spec)
    try:
        yield client
    finally:
        close_client(client)


def run_options(args: argparse.Namespace, client: Any) -> dict[str, Any]:
    """``sp.run`` keywords for the cluster: the client and the chunk size, when given."""
    if client is None:
        return {}
    return {"client": client, **({"chunk_size": args.chunk_size} if args.chunk_size else {})}


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


def group_lags(net: Network) -> dict[str, int]:
    """Steps by which each group answers behind the input: the quantizer's record, else the longest
    feed-forward path (1 + delay per connection; connections that close a loop are left out)."""
    import numpy as np

    recorded = net.metadata.get("groups") if isinstance(net.metadata, dict) else None
    lags = {g.name: 0 for g in net.inputs}
    incoming: dict[str, list[tuple[str, int]]] = {g.name: [] for g in net.groups}
    for c in net.connections:
        extra = 0 if c.delays is None else int(np.max(c.delays, initial=0))
        incoming.setdefault(c.target, []).append((c.source, 1 + extra))
    pending = [g.name for g in net.groups]
    while pending:
        ready = [g for g in pending if all(s in lags for s, _ in incoming[g])] or pending[:1]
        for g in ready:
            lags[g] = max([0, *(lags[s] + d for s, d in incoming[g] if s in lags)])
            pending.remove(g)
    if recorded:
        lags.update({k: int(v["lag"]) for k, v in recorded.items() if k in lags and "lag" in v})
    return {g.name: lags[g.name] for g in net.groups}


def _pad(xs: dict[str, Any], steps: int) -> dict[str, Any]:
    import numpy as np

    if not steps:
        return xs
    return {
        k: np.concatenate([a, np.zeros((a.shape[0], steps, *a.shape[2:]), a.dtype)], axis=1)
        for k, a in xs.items()
    }


def _run_network(args: argparse.Namespace, record: list[str]) -> tuple[RunResult, dict[str, Any]]:
    from spikeport.cli.files import load_network, network_inputs

    net = load_network(args.net)
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
    result = _execute(net, _pad(xs, pad), args, record, mode)
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
        result = _align(result, lags, steps)
    return result, meta


def _execute(
    net: Network, xs: dict[str, Any], args: argparse.Namespace, record: list[str], mode: str
) -> RunResult:
    """The run itself, on the backend: in this process, or split over the ``--cluster`` workers."""
    if args.backend == "lava":
        if args.device is not None:
            raise UnsupportedError("--device: Lava runs on the CPU; use --backend emulator --engine torch")
        opts: dict[str, Any] = {"progress": True, "timeout": args.lava_timeout}
    else:
        opts = {"mode": mode, "engine": args.engine, "progress": True}
        if args.device is not None:
            opts["device"] = args.device
    with cluster_client(args) as client:
        if client is not None:
            from spikeport.api import run as sp_run

            return sp_run(net, xs, backend=args.backend, record=record, **run_options(args, client), **opts)
        if args.backend == "lava":
            from spikeport.lava.backend import run_lava

            return run_lava(net, xs, record=record, **opts)
        from spikeport.emulator.engines.dispatch import run

        return run(net, xs, record=record, **opts)


def _align(result: RunResult, lags: dict[str, int], steps: int) -> RunResult:
    from spikeport.emulator.result import RunResult

    outs = {k: v[:, lags.get(k.split("/", 1)[0], 0) :][:, :steps] for k, v in result.outputs.items()}
    return RunResult(outputs=outs, metadata=result.metadata)


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


def _finish(result: RunResult, extra: dict[str, Any], args: argparse.Namespace) -> RunResult:
    """Hide internal groups, the run's facts in the metadata (spikes are written as int32:
    :func:`spike_dtypes`)."""
    from spikeport.emulator.result import RunResult

    outs = {k: v for k, v in result.outputs.items() if args.internal or not k.startswith(INTERNAL_PREFIX)}
    meta = {
        **result.metadata,
        **{k: v for k, v in extra.items() if v is not None or k not in result.metadata},
    }
    meta.update(network_file=str(args.net), input_file=str(args.input), time_first=bool(args.time_first))
    return RunResult(outputs=outs, metadata=meta)


def spike_dtypes(result: RunResult) -> dict[str, Any]:
    """Spikes are written as ``int32`` whatever the backend recorded (cast while writing, no copy)."""
    import numpy as np

    return {k: np.int32 for k in result.outputs if k.endswith("/spikes")}


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
    from spikeport.cli.files import is_nir

    record = [r.strip() for r in args.record.split(",") if r.strip()]
    if not record:
        raise ValidationError(f"--record: must name at least one variable (got {args.record!r})")
    check_output(args)
    runner = _run_nir_model if args.net.endswith(".nir") or is_nir(args.net) else _run_network
    result, extra = runner(args, record)
    result = _finish(result, extra, args)
    result.save(args.output, format=args.format, obj="--output", dtypes=spike_dtypes(result))
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
