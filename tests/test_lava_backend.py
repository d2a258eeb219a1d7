"""The Lava mapping: process choice, step alignment, a_in, refusals, batches, clean shutdown.

Expected values are analytic integer series worked out by hand from docs/lava-arithmetic.md (or, for the
recorder, Lava's own Monitor); the emulator is not used as an oracle here.
"""

from __future__ import annotations

import multiprocessing
from typing import Any

import numpy as np
import pytest
from spikeport.emulator.errors import UnsupportedError, ValidationError
from spikeport.emulator.network import (
    Connection,
    InputGroup,
    LIFGroup,
    Network,
    SigmaDeltaGroup,
    TernaryLIFGroup,
)
from spikeport.lava import process_graph as lava_graph
from spikeport.lava import recorder as lava_recorder
from spikeport.lava.backend import check_supported, run_lava
from spikeport.lava.compat import import_lava

pytestmark = pytest.mark.lava
T = 8


LIF_BASE: dict[str, Any] = dict(du=4095, dv=4095, vth=1000, bias_mant=0, bias_exp=0, u0=0, v0=0)


def lif(name: str, n: int = 1, **kw: Any) -> LIFGroup:
    return LIFGroup(name=name, n=n, **{**LIF_BASE, **kw})


def conn(name: str, src: str, tgt: str, w: Any, **kw: Any) -> Connection:
    return Connection(name=name, source=src, target=tgt, weights=np.atleast_2d(w), **kw)


def one_in(*groups: Any, conns: Any, n_in: int = 1, bits: int = 0) -> Network:
    return Network(
        inputs=[InputGroup(name="x", n=n_in, num_message_bits=bits)], groups=groups, connections=conns
    )


def pulse(k: int, n: int = 1, value: int = 1) -> np.ndarray:
    x = np.zeros((T, n), np.int64)
    x[k] = value
    return x


# ---------------------------------------------------------------- mapping and alignment


@pytest.mark.parametrize(
    ("kw", "arrive", "a"),
    [
        ({}, 3, 10),  # Dense: spike sent at step 3 (index 2) reaches a_in at step 4 (index 3)
        ({"sparse": True}, 3, 10),
        ({"delays": [[3]]}, 6, 10),  # DelayDense: 3 more steps
        ({"delays": [[2]], "sparse": True}, 5, 10),  # DelaySparse
        ({"weight_exp": -1}, 3, 5),
        ({"weight_exp": 2}, 3, 40),
    ],
)
def test_one_input_spike_reaches_u_at_the_expected_step(kw: dict, arrive: int, a: int) -> None:
    """du = 4095 leaves no current state, so u[t] = a_in[t] << 6 exactly."""
    net = one_in(lif("g"), conns=[conn("c", "x", "g", 10, **kw)])
    out = run_lava(net, pulse(2), record=("u", "a_in")).outputs
    want = np.zeros((1, T, 1), np.int64)
    want[0, arrive, 0] = a
    np.testing.assert_array_equal(out["g/a_in"], want)
    np.testing.assert_array_equal(out["g/u"], want << 6)


def test_first_spikes_of_a_chain_arrive_one_step_per_dense() -> None:
    """vth=5 -> threshold 320 < 10 << 6: each layer fires one step after its input arrives."""
    net = one_in(
        lif("g0", vth=5), lif("g1", vth=5), conns=[conn("c0", "x", "g0", 10), conn("c1", "g0", "g1", 10)]
    )
    out = run_lava(net, pulse(1)).outputs
    assert np.flatnonzero(out["g0/spikes"][0, :, 0]).tolist() == [2]
    assert np.flatnonzero(out["g1/spikes"][0, :, 0]).tolist() == [3]


def test_fan_in_sums_every_incoming_connection_and_recurrence_feeds_back() -> None:
    """a_in of g = 7*x[t-1] - 3*s_g[t-1] (inhibitory self connection); vth 0 fires on any v > 0."""
    x = np.array([[1, 0, 0, 1, 1, 0, 0, 0]]).T
    net = one_in(lif("g", vth=0), conns=[conn("ff", "x", "g", 7), conn("rec", "g", "g", -3)])
    out = run_lava(net, x, record=("spikes", "a_in")).outputs
    s = out["g/spikes"][0, :, 0]
    a_prev = np.zeros(T, np.int64)
    a_prev[1:] = 7 * x[:-1, 0] - 3 * s[:-1]
    np.testing.assert_array_equal(out["g/a_in"][0, :, 0], a_prev)
    assert s.tolist() == [0, 1, 0, 0, 1, 1, 0, 0]


def test_group_without_inputs_integrates_its_bias() -> None:
    """No incoming connection (the mapper ties it to the source with zero weights): with du = dv = 0,
    v[t] = 12 * (steps since the last spike) and v > 64 fires: 12, 24, ..., 72 -> spike, 0 after."""
    net = one_in(
        lif("fed"), lif("alone", du=0, dv=0, vth=1, bias_mant=3, bias_exp=2), conns=[conn("c", "x", "fed", 1)]
    )
    out = run_lava(net, pulse(0), record=("spikes", "v")).outputs
    np.testing.assert_array_equal(out["alone/v"][0, :, 0], [12, 24, 36, 48, 60, 0, 12, 24])
    np.testing.assert_array_equal(out["alone/spikes"][0, :, 0], [0, 0, 0, 0, 0, 1, 0, 0])


def test_ternary_graded_and_sigma_delta_outputs() -> None:
    """TernaryLIF: +1 above vth, -1 below vth_lo; SigmaDelta (relu, vth 0) resends its input change."""
    x = np.zeros((T, 1), np.int64)
    x[1], x[3] = 5, -5
    net = one_in(
        TernaryLIFGroup(
            name="t", n=1, du=4095, dv=4095, vth=1, vth_lo=-1, bias_mant=0, bias_exp=0, u0=0, v0=0
        ),
        SigmaDeltaGroup(name="sd", n=1, vth=0, bias=0),
        conns=[conn("ct", "x", "t", 1, num_message_bits=8), conn("cs", "x", "sd", 1, num_message_bits=8)],
        bits=8,
    )
    out = run_lava(net, x, record=("spikes", "sigma")).outputs
    np.testing.assert_array_equal(out["t/spikes"][0, :, 0], [0, 0, 1, 0, -1, 0, 0, 0])
    np.testing.assert_array_equal(out["sd/sigma"][0, :, 0], [0, 0, 5, 5, 0, 0, 0, 0])
    np.testing.assert_array_equal(out["sd/spikes"][0, :, 0], [0, 0, 5, 0, -5, 0, 0, 0])


def test_fixed_pt_models_are_what_lava_selects() -> None:
    graphs = import_lava("lava.magma.compiler.compiler_graphs")
    cfg = import_lava("lava.magma.core.run_configs").Loihi2SimCfg(select_tag="fixed_pt")
    L = lava_graph.lava_modules()
    w = np.ones((1, 1), np.int64)
    g = lif("g")
    procs = [
        L.source.RingBuffer(data=np.zeros((1, 2), np.int32)),
        L.dense.Dense(weights=w),
        L.dense.DelayDense(weights=w, delays=np.ones((1, 1), int)),
        L.sparse.Sparse(weights=L.csr(w)),
        L.sparse.DelaySparse(weights=L.csr(w), delays=L.csr(np.ones((1, 1), int))),
        lava_graph.lif_process(L, g),
        lava_graph.lif_process(L, lif("r", reset_interval=2)),
        lava_graph.lif_process(L, TernaryLIFGroup(**{**g.__dict__, "vth_lo": 0})),
        lava_graph.sigma_delta_process(L, SigmaDeltaGroup(name="s", n=1, vth=1, bias=0)),
    ]
    assert sorted(type(p).__name__ for p in procs) == sorted(lava_graph.FIXED_PT_MODELS)
    for p in procs:
        assert cfg.select(p, graphs.ProcGroupDiGraphs._find_proc_models(p)) is lava_graph.fixed_pt_model(p)


def test_recorder_records_what_lava_monitors_record() -> None:
    L = lava_graph.lava_modules()
    mon_mod = import_lava("lava.proc.monitor.process")
    rng = np.random.default_rng(0)
    src = L.source.RingBuffer(data=(rng.random((4, T)) < 0.6).astype(np.int32))
    dense = L.dense.Dense(weights=rng.integers(-40, 120, (3, 4)))
    neuron = L.lif.LIF(shape=(3,), du=300, dv=200, vth=40, bias_mant=5, bias_exp=1)
    src.s_out.connect(dense.s_in)
    dense.a_out.connect(neuron.a_in)
    targets = [neuron.u, neuron.v, neuron.s_out, dense.a_out]
    monitors = []
    for target in targets:
        monitors.append(mon_mod.Monitor())
        monitors[-1].probe(target, T)
    rec = lava_recorder.recorder(targets, T)
    cfg = L.cfg.Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map=lava_recorder.model_map(rec))
    try:
        src.run(condition=L.cond.RunSteps(num_steps=T), run_cfg=cfg)
        for i, (m, target) in enumerate(zip(monitors, targets, strict=True)):
            want = m.get_data()[target.process.name][target.name]
            np.testing.assert_array_equal(lava_recorder.read(rec, i), np.asarray(want).astype(np.int64))
        assert np.abs(lava_recorder.read(rec, 1)).sum() > 0
    finally:
        src.stop()


# ---------------------------------------------------------------- batches, progress, shutdown


def test_batch_equals_single_sample_runs_and_leaves_no_process_behind(
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = set(multiprocessing.active_children())
    net = one_in(lif("g", vth=3, du=1000, dv=100), n_in=2, conns=[conn("c", "x", "g", [[10, 30]])])
    x = np.stack([pulse(1, 2), pulse(4, 2, 1)])
    both = run_lava(net, x, record=("spikes", "v"), progress=True)
    assert both["g/v"].shape == (2, T, 1)
    for b in range(2):
        alone = run_lava(net, x[b], record=("spikes", "v"))
        for k in ("g/spikes", "g/v"):
            np.testing.assert_array_equal(both[k][b], alone[k][0])
    assert capsys.readouterr().err == ""  # no progress bar when stderr is not a terminal
    assert both.metadata["backend"] == "lava" and both.metadata["batch"] == 2
    assert set(multiprocessing.active_children()) <= before


def test_processes_are_stopped_when_reading_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> None:
        raise RuntimeError("read failed")

    before = set(multiprocessing.active_children())
    monkeypatch.setattr(lava_graph, "read_graph", broken)
    net = one_in(lif("g"), conns=[conn("c", "x", "g", 1)])
    with pytest.raises(RuntimeError, match="read failed"):
        run_lava(net, pulse(0))
    assert set(multiprocessing.active_children()) <= before


# ---------------------------------------------------------------- refusals and bad input


@pytest.mark.parametrize(
    ("group", "match"),
    [
        (SigmaDeltaGroup(name="g", n=1, vth=2**23, bias=0, spike_exp=9), r"overflow Lava's int32"),
        (lif("g", vth=1.5), r"non-integer values.*vth"),
    ],
)
def test_refuses_what_lava_fixed_pt_cannot_run(group: Any, match: str) -> None:
    net = one_in(group, conns=[conn("c", "x", "g", 1)])
    with pytest.raises(UnsupportedError, match=match):
        run_lava(net, pulse(0))


def test_refusal_lists_every_problem_and_runs_nothing() -> None:
    sd = SigmaDeltaGroup(name="b", n=1, vth=2**23, bias=0, spike_exp=9)
    net = one_in(lif("a"), sd, conns=[conn("c", "x", "a", 0.5)])
    with pytest.raises(UnsupportedError) as info:
        check_supported(net)
    text = str(info.value)
    assert "overflow Lava's int32" in text and "weights" in text


def test_lif_extensions_are_not_refused() -> None:
    """Subtract reset, refractory periods and periodic TernaryLIF resets run as spikeport's own Lava
    process (tests/test_lava_processes.py checks them bit for bit)."""
    tern = TernaryLIFGroup(**{**LIF_BASE, "name": "c", "n": 1}, vth_lo=-1, reset_interval=2)
    net = one_in(lif("a", reset="subtract"), lif("b", refractory=1), tern, conns=[conn("c", "x", "a", 1)])
    check_supported(net)


@pytest.mark.parametrize(
    ("inputs", "record", "match"),
    [
        (np.zeros((T, 2)), ("spikes",), r"inputs\.x: must have shape \(T, 1\)"),
        (np.full((T, 1), 2), ("spikes",), r"binary input .* must be 0/1"),
        ({"y": np.zeros((T, 1))}, ("spikes",), r"must name input groups"),
        (np.zeros((T, 1)), ("sigma",), r"no selected group has this variable"),
        (np.zeros((T, 1)), ("h/v",), r"no neuron group of that name"),
    ],
)
def test_bad_inputs_and_records_are_validation_errors(inputs: Any, record: tuple, match: str) -> None:
    net = one_in(lif("g"), conns=[conn("c", "x", "g", 1)])
    with pytest.raises(ValidationError, match=match):
        run_lava(net, inputs, record=record)
