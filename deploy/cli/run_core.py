"""The steps of ``spikeport run`` that the one-shot run (:mod:`spikeport.cli.run`) and the streamed run
(:mod:`spikeport.cli.run_stream`) share: the Dask client of ``--cluster``, the lag of each group and the
padding, the backend call, ``--aligned``, and what the written result holds (internal groups hidden,
spikes as ``int32``). Heavy modules are imported inside the functions.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from spikeport.emulator.errors import UnsupportedError, ValidationError

if TYPE_CHECKING:
    from spikeport.emulator.network import Network
    from spikeport.emulator.result import RunResult

INTERNAL_PREFIX = "~"


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


def pad_steps(xs: dict[str, Any], steps: int) -> dict[str, Any]:
    """``steps`` zero steps appended to every input array (``--pad``)."""
    import numpy as np

    if not steps:
        return xs
    return {
        k: np.concatenate([a, np.zeros((a.shape[0], steps, *a.shape[2:]), a.dtype)], axis=1)
        for k, a in xs.items()
    }


def backend_options(args: argparse.Namespace, mode: str) -> dict[str, Any]:
    """The backend's keywords for ``args`` (progress bars on)."""
    if args.backend == "lava":
        if args.device is not None:
            raise UnsupportedError("--device: Lava runs on the CPU; use --backend emulator --engine torch")
        opts: dict[str, Any] = {"progress": True, "timeout": args.lava_timeout}
    else:
        opts = {"mode": mode, "engine": args.engine, "progress": True}
        if args.device is not None:
            opts["device"] = args.device
    return opts


def run_with(
    net: Network,
    xs: dict[str, Any],
    args: argparse.Namespace,
    record: list[str],
    opts: dict[str, Any],
    client: Any,
) -> RunResult:
    """One run of ``xs`` on the backend with ``opts``: on the Dask ``client``, or in this process."""
    if client is not None:
        from spikeport.api import run as sp_run

        return sp_run(net, xs, backend=args.backend, record=record, **run_options(args, client), **opts)
    if args.backend == "lava":
        from spikeport.lava.backend import run_lava

        return run_lava(net, xs, record=record, **opts)
    from spikeport.emulator.engines.dispatch import run

    return run(net, xs, record=record, **opts)


def align_result(result: RunResult, lags: dict[str, int], steps: int) -> RunResult:
    """Each group's arrays cut to ``[lag[G], lag[G] + steps)`` (``--aligned``)."""
    from spikeport.emulator.result import RunResult

    outs = {k: v[:, lags.get(k.split("/", 1)[0], 0) :][:, :steps] for k, v in result.outputs.items()}
    return RunResult(outputs=outs, metadata=result.metadata)


def finish_result(result: RunResult, extra: dict[str, Any], args: argparse.Namespace) -> RunResult:
    """Hide internal groups, the run's facts in the metadata (the dtype spikes are written in:
    :func:`spike_dtypes`)."""
    from spikeport.emulator.result import RunResult

    outs = {k: v for k, v in result.outputs.items() if args.internal or not k.startswith(INTERNAL_PREFIX)}
    meta = {
        **result.metadata,
        **{k: v for k, v in extra.items() if v is not None or k not in result.metadata},
    }
    meta.update(network_file=str(args.net), input_file=str(args.input), time_first=bool(args.time_first))
    return RunResult(outputs=outs, metadata=meta)


def spike_dtypes(result: RunResult, net: Network | None = None, mode: str = "float") -> dict[str, Any]:
    """The dtype each ``G/spikes`` array is written in, fixed by the network, never by the values, so
    every backend, chunk and run of one network writes the same dtype (cast while writing, no copy).

    ``int8`` where group ``G`` of ``net`` is a fixed-point LIF group: its spikes are counts
    ``0..max_spikes`` with ``max_spikes <= bits.MAX_SPIKES_MAX = 127`` (ternary: ``-1, 0, 1``), so int8
    holds every value a quarter of int32's bytes; ``int32`` otherwise (graded payloads, inputs,
    ``--float`` runs and NIR models, whose multi-spike counts are unbounded)."""
    import numpy as np
    from spikeport.emulator.network import LIFGroup

    lif = (
        {g.name for g in net.groups if isinstance(g, LIFGroup)}
        if net is not None and mode == "fixed"
        else set()
    )
    return {
        k: np.int8 if k.split("/", 1)[0] in lif else np.int32 for k in result.outputs if k.endswith("/spikes")
    }
