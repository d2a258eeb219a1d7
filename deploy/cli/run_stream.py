"""``spikeport run --stream B``: a dataset-sized run in chunks of ``B`` samples, in bounded memory.

The input ``.npy`` is read ``B`` samples at a time (:class:`spikeport.cli.files.ArrayRows`: mapped,
copied, unmapped), each chunk is validated, padded, run (in this process or on the ``--cluster``, whose
client is opened once) and its arrays written at their place in the preallocated outputs
(:func:`spikeport.emulator.result_stream.streamed_arrays`: ``--format h5`` or ``npy-dir``), atomically:
the output appears only once every chunk is written. Samples are independent (nothing is carried from
one to the next), so the arrays equal the one-shot run's whatever ``B`` (``tests/test_cli_stream.py``).
A progress bar (tqdm, when stderr is a terminal) counts chunks. The metadata is the one-shot run's,
less the engine's per-run counts (values that differ between chunks are left out), plus
``stream = {"chunk_size", "chunks"}``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import Any, NamedTuple

from spikeport.emulator.errors import UnsupportedError, ValidationError


class _Plan(NamedTuple):
    net: Any
    reader: Any
    single: bool  # the file is one sample (T, ...)
    batch: int
    lags: dict[str, int]
    pad: int
    mode: str


def check_stream(args: argparse.Namespace) -> None:
    """Refuse what streaming cannot do, before any work."""
    if args.stream < 1:
        raise ValidationError(f"--stream: must be >= 1 samples per chunk (got {args.stream})")
    if args.format not in ("h5", "npy-dir"):
        raise UnsupportedError(
            f"--stream: writes --format h5 or npy-dir (a .npz is written whole) (got {args.format!r})"
        )
    if str(args.net).endswith(".nir"):
        raise UnsupportedError(f"--stream: runs integer networks, not a .nir model (got {args.net!r})")
    if args.float and args.backend == "lava":
        raise UnsupportedError("--float: Lava runs fixed point only; use --backend emulator")


def _single_sample(shape: tuple[int, ...], n: int) -> bool:
    """A ``(T, n)`` or ``(T, C, H, W)`` array: one sample (as :func:`spikeport.cli.files.network_inputs`)."""
    import numpy as np

    return len(shape) == 2 or (len(shape) >= 3 and shape[-1] != n and int(np.prod(shape[1:])) == n)


def _plan(args: argparse.Namespace) -> _Plan:
    from spikeport.cli.files import ArrayRows, load_network
    from spikeport.cli.run_core import group_lags

    net = load_network(args.net)
    reader = ArrayRows(args.input, option="--input", time_first=args.time_first)
    single = len(net.inputs) == 1 and _single_sample(reader.shape, int(net.inputs[0].n))
    lags = group_lags(net)
    pad = max(lags.values(), default=0) if args.pad is None else args.pad
    if args.aligned and pad < max(lags.values(), default=0):
        raise ValidationError(
            f"--pad: --aligned needs at least the largest lag {max(lags.values())} (got {pad})"
        )
    batch = 1 if single else int(reader.shape[0])
    return _Plan(net, reader, single, batch, lags, pad, "float" if args.float else "fixed")


def _chunks(batch: int, size: int) -> Iterator[tuple[int, int]]:
    bounds = [(s, min(s + size, batch)) for s in range(0, batch, size)]
    if sys.stderr.isatty():
        from tqdm import tqdm

        yield from tqdm(bounds, desc="chunks", unit="chunk", leave=False)
    else:
        yield from bounds


def _run_chunk(
    plan: _Plan, args: argparse.Namespace, record: list[str], bounds: tuple[int, int], client: Any
) -> Any:
    """The finished result (as the one-shot run writes it) of samples ``bounds``."""
    from spikeport.cli.files import network_inputs
    from spikeport.cli.run_core import align_result, backend_options, finish_result, pad_steps, run_with

    reader = plan.reader
    raw = reader.rows(0, reader.shape[0]) if plan.single else reader.rows(*bounds)
    xs = network_inputs(plan.net, raw, path=args.input, mode=plan.mode)
    steps = int(next(iter(xs.values())).shape[1])
    opts = {**backend_options(args, plan.mode), "progress": False}
    result = run_with(plan.net, pad_steps(xs, plan.pad), args, record, opts, client)
    if args.aligned:
        result = align_result(result, plan.lags, steps)
    extra = {"semantics": plan.net.metadata.get("semantics"), "lag": plan.lags, "pad": plan.pad,
             "input_steps": steps, "aligned": bool(args.aligned)}  # fmt: skip
    return finish_result(result, extra, args)


def stream_run(args: argparse.Namespace, record: list[str]) -> dict[str, Any]:
    """Run and write chunk by chunk (module docstring); returns the ``--json`` summary."""
    import numpy as np
    from spikeport.cli.run_core import cluster_client, spike_dtypes
    from spikeport.emulator.result_stream import streamed_arrays

    check_stream(args)
    plan = _plan(args)
    meta: dict[str, Any] | None = None
    spikes: dict[str, int] = {}
    shape: tuple[int, ...] = (0, 0, 0)
    arrays = 0
    stream = {"chunk_size": int(args.stream), "chunks": -(-plan.batch // args.stream)}
    with (
        cluster_client(args) as client,
        streamed_arrays(args.output, fmt=args.format, batch=plan.batch) as sink,
    ):
        for start, stop in _chunks(plan.batch, args.stream):
            result = _run_chunk(plan, args, record, (start, stop), client)
            sink.write(start, result.outputs, casts=spike_dtypes(result, plan.net, plan.mode))
            new = dict(result.metadata)
            meta = new if meta is None else {k: v for k, v in meta.items() if k in new and new[k] == v}
            for k, v in result.outputs.items():
                if k.endswith("/spikes"):
                    g = k.split("/", 1)[0]
                    spikes[g] = spikes.get(g, 0) + int(np.count_nonzero(v))
            shape, arrays = next((a.shape for a in result.outputs.values()), shape), len(result.outputs)
        sink.metadata = {**(meta or {}), "batch": plan.batch, "stream": stream}
    return {
        "output": str(args.output),
        "backend": (meta or {}).get("backend", args.backend),
        "batch": plan.batch,
        "steps": int(shape[1]),
        "pad": int(plan.pad),
        "arrays": arrays,
        "spikes": spikes,
        "stream": stream,
    }
