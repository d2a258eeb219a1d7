"""Runs spread over a Dask cluster: ``sp.run(net, x, client=client)`` splits the batch into chunks.

Needs the optional extra ``spikeport[dask]`` (``dask[distributed]``; ``make setup`` installs it). The network
is shipped once to every worker (``client.scatter(..., broadcast=True)``), so each worker deserializes one
network object and the engines' per-network plans (and numba's compiled loops) are built once per worker
and reused by every chunk it runs. Chunks are independent (every sample of a batch runs on its own), so
the assembled arrays, counters and state equal the in-process run's whatever the chunking
(``tests/test_cluster.py``). A progress bar (tqdm, when stderr is a terminal) counts finished chunks.

Several machines: start a scheduler on one (``dask scheduler``, it prints ``tcp://host:8786``) and a worker
on each machine (``dask worker tcp://host:8786 --nthreads 1 --nworkers 2``), with spikeport installed in
the same version everywhere; then ``Client("tcp://host:8786")``, or ``--cluster tcp://host:8786`` on
the CLI. :func:`client_from_spec` turns ``local``, ``local:N`` or a ``tcp://`` address into a client.
"""

from __future__ import annotations

import gc
import logging
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from spikeport.emulator.errors import MissingDependencyError, field_error
from spikeport.emulator.network import Network
from spikeport.emulator.result import RunResult

Runner = Callable[..., RunResult]
_INSTALL = "pip install 'spikeport[dask]' (or: pip install 'dask[distributed]')"


def _distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:  # pragma: no cover - the extra is installed in the dev venv
        raise MissingDependencyError(f"Dask runs need dask.distributed: {_INSTALL}") from exc
    return distributed


def client_from_spec(spec: str) -> Any:
    """A ``distributed.Client`` for ``"local"`` / ``"local:N"`` (a local cluster of N single-threaded
    worker processes; N defaults to the CPU count) or ``"tcp://host:port"`` (a running scheduler).
    The caller closes it (``client.close()``; a local cluster is closed with it)."""
    distributed = _distributed()
    if spec.startswith(("tcp://", "tls://", "ucx://")):
        return distributed.Client(spec)
    head, _, count = spec.partition(":")
    if head != "local" or (count and not count.isdigit()) or count == "0":
        raise field_error("cluster", "spec", "must be 'local', 'local:N' (N >= 1) or 'tcp://host:port'", spec)
    import os

    n = int(count) if count else os.cpu_count() or 1
    # dashboard on a free port (client.dashboard_link): 8787 may be held by another cluster
    cluster = distributed.LocalCluster(
        n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    client = distributed.Client(cluster)
    client._spikeport_cluster = cluster  # closed by close_client
    return client


class _UnretrievedCloseTimeouts(logging.Filter):
    """Drops asyncio's "Future exception was never retrieved ... TimeoutError" records: a local cluster's
    close leaves such a future behind at times, and asyncio reports it whenever it is garbage-collected,
    possibly in the middle of a later command's output."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return not (text.startswith("Future exception was never retrieved") and "TimeoutError" in text)


_QUIET_CLOSE = _UnretrievedCloseTimeouts()


def close_client(client: Any) -> None:
    """Close a client made by :func:`client_from_spec` and its local cluster, if any."""
    logging.getLogger("asyncio").addFilter(_QUIET_CLOSE)  # once per process (a filter is added once)
    cluster = getattr(client, "_spikeport_cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()
    gc.collect()  # report (and drop) such futures now rather than during whatever runs next


def chunk_bounds(batch: int, chunk_size: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` covering ``0..batch`` in chunks of ``chunk_size`` (the last may be shorter)."""
    return [(s, min(s + chunk_size, batch)) for s in range(0, batch, chunk_size)]


def _default_chunk(batch: int, client: Any) -> int:
    """Two chunks per worker thread (so a slow worker does not hold up the end), at least one sample."""
    threads = sum(client.nthreads().values()) or 1
    return max(1, math.ceil(batch / (2 * threads)))


def _slice_state(state: Any, start: int, stop: int) -> Any:
    """The samples ``start:stop`` of a dense-engine state (batch axis 0 in groups, 1 in rings)."""
    if state is None:
        return None
    from dataclasses import replace

    groups = {k: type(s)(*(a[start:stop] for a in s)) for k, s in state.groups.items()}
    rings = {k: r[:, start:stop] for k, r in state.rings.items()}
    return replace(state, batch=stop - start, groups=groups, rings=rings)


def _merge_states(states: Sequence[Any]) -> Any:
    first = states[0]
    if first is None or not hasattr(first, "rings"):
        return None
    from dataclasses import replace

    groups = {
        k: type(s)(*(np.concatenate([st.groups[k][i] for st in states]) for i in range(len(s))))
        for k, s in first.groups.items()
    }
    rings = {k: np.concatenate([st.rings[k] for st in states], axis=1) for k in first.rings}
    return replace(first, batch=sum(st.batch for st in states), groups=groups, rings=rings)


def _merge_counters(parts: Sequence[Any]) -> Any:
    if parts[0] is None:
        return None
    from spikeport.emulator.energy.counters import make_counters

    def cat(field: str) -> dict[str, np.ndarray]:
        return {k: np.concatenate([getattr(p, field)[k] for p in parts]) for k in getattr(parts[0], field)}

    return make_counters(parts[0].steps, cat("spike_counts"), cat("payload_sums"), cat("input_events"))


def merge_results(parts: Sequence[RunResult], meta: Mapping[str, Any]) -> RunResult:
    """One result from the results of consecutive batch chunks (outputs, counters and state joined along
    the batch; ``meta`` added to the first chunk's metadata)."""
    outputs = {k: np.concatenate([p.outputs[k] for p in parts]) for k in parts[0].outputs}
    return RunResult(
        outputs=outputs,
        state=_merge_states([p.state for p in parts]),
        counters=_merge_counters([p.counters for p in parts]),
        metadata={**parts[0].metadata, **meta},
    )


def pack_inputs(net: Network, arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Binary input groups as bits (``np.packbits`` on the neuron axis: 8x less to send), graded ones
    as they are; :func:`unpack_inputs` restores the 0/1 ``int8`` arrays exactly."""
    binary = {g.name for g in net.inputs if int(g.num_message_bits) == 0}
    # np.packbits sets a bit for every nonzero integer: no boolean copy of the chunk is needed
    return {
        k: (np.packbits(a if a.dtype.kind in "iu" else a != 0, axis=-1), a.shape[-1]) if k in binary else a
        for k, a in arrays.items()
    }


def unpack_inputs(packed: Mapping[str, Any]) -> dict[str, np.ndarray]:
    out = {}
    for k, v in packed.items():
        if isinstance(v, tuple):
            bits, n = v
            out[k] = np.unpackbits(bits, axis=-1, count=n).view(np.int8)  # 0/1: the same values
        else:
            out[k] = v
    return out


def worker_threads() -> int:
    """Limit numba's threads in this task's thread to the worker's own thread count (``--nthreads``) and
    return it. Numba starts as many threads as the machine has cores, whatever the worker was given, so
    two 1-thread workers on 2 cores would otherwise run 4 compute threads; a worker's environment (e.g.
    ``NUMBA_NUM_THREADS``) can arrive after numba was imported. Outside a worker: no change (0)."""
    distributed = _distributed()
    try:
        n = int(distributed.get_worker().state.nthreads)
    except ValueError:  # not running on a worker
        return 0
    import numba

    n = max(1, min(n, int(numba.config.NUMBA_NUM_THREADS)))  # type: ignore[attr-defined]
    numba.set_num_threads(n)
    return n


def run_chunk(
    net: Network, inputs: Mapping[str, Any], runner: Runner, options: Mapping[str, Any]
) -> RunResult:
    """What a worker runs: one chunk (packed by :func:`pack_inputs`) through ``runner`` (a backend of
    :data:`spikeport.api.BACKENDS`), in process, on the worker's number of threads."""
    worker_threads()
    return runner(net, unpack_inputs(inputs), **options)


def _gather(futures: list[Any], progress: bool) -> list[RunResult]:
    distributed = _distributed()
    bar = None
    if progress and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=len(futures), desc="chunks", unit="chunk", leave=False)
    for fut in distributed.as_completed(futures):
        if fut.status == "error":
            fut.result()  # raises the worker's exception here
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return [f.result() for f in futures]


def run_on_cluster(
    net: Network,
    inputs: Any,
    *,
    client: Any,
    runner: Runner,
    chunk_size: int | None = None,
    progress: bool = False,
    **options: Any,
) -> RunResult:
    """Run ``net`` on ``inputs`` split along the batch over the workers of ``client`` (module docstring),
    each chunk through ``runner`` ``(net, inputs, **options) -> RunResult``, a module-level function (it
    travels by name): :func:`spikeport.run` passes its backend's.

    ``options`` (``record``, ``engine``, ``mode``, ``counters``, ``state``, ...) go to the backend of every
    chunk; ``state`` (a dense-engine state) is split along the batch like the inputs. The result equals the
    in-process run's; ``metadata["cluster"]`` says how it was split.
    """
    from spikeport.emulator.inputs import network_inputs

    if not isinstance(net, Network):
        raise field_error("sp.run", "net", "must be a Network", type(net).__name__)
    mode = options.get("mode", "fixed")
    arrays = network_inputs(
        net, inputs, caller="sp.run", mode=mode if mode in ("fixed", "float") else "fixed"
    )
    batch = int(next(iter(arrays.values())).shape[0])
    if chunk_size is None:
        chunk_size = _default_chunk(batch, client)
    if int(chunk_size) < 1:
        raise field_error("sp.run", "chunk_size", "must be >= 1", chunk_size)
    state = options.pop("state", None)
    net_future = client.scatter(net, broadcast=True, hash=False)
    bounds = chunk_bounds(batch, int(chunk_size))
    futures = []
    workers = sorted(client.nthreads())
    for i, (start, stop) in enumerate(bounds):  # each chunk packed, sent and started before the next
        packed = pack_inputs(net, {k: a[start:stop] for k, a in arrays.items()})
        # straight to a worker (not inside the task graph), the workers in turn
        [chunk] = client.scatter([packed], hash=False, workers=[workers[i % len(workers)]])
        opts = {**options, "state": _slice_state(state, start, stop), "progress": False}
        futures.append(client.submit(run_chunk, net_future, chunk, runner, opts, pure=False))
    parts = _gather(futures, progress)
    meta = {"batch": batch, "cluster": {"chunks": len(parts), "chunk_size": int(chunk_size),
                                        "workers": len(client.nthreads())}}  # fmt: skip
    return merge_results(parts, meta)
