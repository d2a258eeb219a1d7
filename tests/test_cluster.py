"""Runs on a Dask cluster (``sp.run(..., client=...)``) equal the in-process run whatever the chunking.

One small in-process cluster (2 workers, threads) for the module, always closed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

import spikeport as sp  # noqa: E402
from spikeport import cluster  # noqa: E402
from spikeport.emulator.errors import ValidationError  # noqa: E402
from spikeport.emulator.randnet import random_inputs, random_network  # noqa: E402


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as lc,
        distributed.Client(lc) as c,
    ):
        yield c


def _net_and_inputs(seed: int, batch: int, steps: int = 20) -> tuple[Any, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    net = random_network(rng, steps=steps, max_n=5)
    return net, random_inputs(rng, net, steps, batch=batch)


def _assert_same(a: Any, b: Any) -> None:
    assert sorted(a.outputs) == sorted(b.outputs)
    for k, want in a.outputs.items():
        np.testing.assert_array_equal(b[k], want, err_msg=k)
    for name, st in a.state.groups.items():
        for field, want in st._asdict().items():
            np.testing.assert_array_equal(getattr(b.state.groups[name], field), want, err_msg=field)
    for name, ring in a.state.rings.items():
        np.testing.assert_array_equal(b.state.rings[name], ring, err_msg=f"ring {name}")
    assert b.state.batch == a.state.batch and b.state.time_step == a.state.time_step


@pytest.mark.parametrize("chunk_size", [None, 1, 3, 7])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cluster_run_equals_in_process(client: Any, seed: int, chunk_size: int | None) -> None:
    net, x = _net_and_inputs(seed, batch=7)
    rec = ("spikes", "a_in")
    want = sp.run(net, x, record=rec, counters=True)
    got = sp.run(net, x, record=rec, counters=True, client=client, chunk_size=chunk_size)
    _assert_same(want, got)
    for field in ("spike_counts", "payload_sums", "input_events"):
        for k, arr in getattr(want.counters, field).items():
            np.testing.assert_array_equal(getattr(got.counters, field)[k], arr, err_msg=f"{field}[{k}]")
    assert got.counters.steps == want.counters.steps
    meta = got.metadata["cluster"]
    assert meta["workers"] == 2 and meta["chunks"] == len(cluster.chunk_bounds(7, meta["chunk_size"]))
    assert got.metadata["batch"] == 7


def test_cluster_resume_splits_the_state(client: Any) -> None:
    net, x = _net_and_inputs(4, batch=5, steps=24)
    first = {k: v[:, :10] for k, v in x.items()}
    rest = {k: v[:, 10:] for k, v in x.items()}
    whole = sp.run(net, x, record=("spikes", "v"))
    a = sp.run(net, first, record=("spikes", "v"), client=client, chunk_size=2)
    b = sp.run(net, rest, record=("spikes", "v"), client=client, chunk_size=3, state=a.state)
    for k, want in whole.outputs.items():
        np.testing.assert_array_equal(np.concatenate([a[k], b[k]], axis=1), want, err_msg=k)


def test_cluster_event_engine_and_worker_errors(client: Any) -> None:
    rng = np.random.default_rng(8)
    net = random_network(rng, kinds=("lif", "ternary"), steps=20)
    x = random_inputs(rng, net, 20, batch=4)
    want = sp.run(net, x, engine="event")
    got = sp.run(net, x, engine="event", client=client, chunk_size=1)
    for k in want.outputs:
        np.testing.assert_array_equal(got[k], want[k])
    assert got.metadata["engine"] == "event"
    with pytest.raises(ValidationError, match="record"):
        sp.run(net, x, record=("nonsense",), client=client)  # raised on the worker, re-raised here


def test_chunking_rules_and_specs() -> None:
    assert cluster.chunk_bounds(7, 3) == [(0, 3), (3, 6), (6, 7)]
    assert cluster.chunk_bounds(2, 5) == [(0, 2)]
    for bad in ("locale", "local:x", "local:0", "udp://h:1"):
        with pytest.raises(ValidationError, match="local:N"):
            cluster.client_from_spec(bad)


def test_local_spec_starts_a_process_cluster_and_closes_it() -> None:
    """``client_from_spec("local:1")``: one worker process, short-lived, closed with its cluster."""
    net, x = _net_and_inputs(6, batch=3, steps=10)
    c = cluster.client_from_spec("local:1")
    try:
        got = sp.run(net, x, client=c, chunk_size=2)
        assert got.metadata["cluster"] == {"chunks": 2, "chunk_size": 2, "workers": 1}
    finally:
        cluster.close_client(c)
    assert c.status == "closed"
    want = sp.run(net, x)
    for k in want.outputs:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def test_binary_inputs_travel_as_bits_and_come_back_equal() -> None:
    rng = np.random.default_rng(3)
    net = random_network(rng, steps=5, max_n=13)
    x = {g.name: rng.integers(0, 2, (3, 5, int(g.n))).astype(np.int8) for g in net.inputs}
    for g in net.inputs:
        if g.num_message_bits:
            x[g.name] = rng.integers(-3, 4, (3, 5, int(g.n))).astype(np.int32)
    packed = cluster.pack_inputs(net, x)
    for g in net.inputs:
        assert isinstance(packed[g.name], tuple) == (g.num_message_bits == 0)
    back = cluster.unpack_inputs(packed)
    for k, arr in x.items():
        np.testing.assert_array_equal(back[k], arr, err_msg=k)
        assert back[k].dtype == arr.dtype


def test_bad_chunk_size_is_refused(client: Any) -> None:
    net, x = _net_and_inputs(0, batch=2)
    with pytest.raises(ValidationError, match="chunk_size"):
        sp.run(net, x, client=client, chunk_size=0)


def _numba_threads_in_task() -> tuple[int, int]:
    import numba

    return cluster.worker_threads(), numba.get_num_threads()


def test_a_task_runs_numba_on_its_workers_threads_only(client: Any) -> None:
    """A 1-thread worker's chunk runs the compiled loop on 1 thread, not on every core (two such workers
    on 2 cores would otherwise run 4 compute threads); outside a worker nothing changes."""
    import numba

    assert client.submit(_numba_threads_in_task, pure=False).result() == (1, 1)
    before = numba.get_num_threads()
    assert cluster.worker_threads() == 0 and numba.get_num_threads() == before
