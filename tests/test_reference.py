"""run_nir against plainly written numpy loops (float64, the same operation order)."""

from __future__ import annotations

import itertools

import nir
import numpy as np
import pytest
from spikeport.emulator.errors import ValidationError
from spikeport.quantize.semantics import semantics
from spikeport.reference.run import run_nir

RNG = np.random.default_rng(7)


def g(nodes: dict, edges: list) -> nir.NIRGraph:
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def io(n):
    shape = np.atleast_1d(np.asarray(n))
    return nir.Input(input_type={"input": shape}), nir.Output(output_type={"output": shape})


def chain(*nodes, n_in, n_out) -> nir.NIRGraph:
    i, _ = io(n_in)
    _, o = io(n_out)
    names = ["input"] + [f"n{k}" for k in range(len(nodes))] + ["output"]
    table = dict(zip(names, [i, *nodes, o], strict=True))
    return g(table, list(itertools.pairwise(names)))


def lif_node(n, tau, thr=1.0, v_leak=0.0, v_reset=0.0, r=1.0):
    f = lambda v: np.full(n, v, np.float64)  # noqa: E731
    return nir.LIF(tau=f(tau), r=f(r), v_leak=f(v_leak), v_threshold=f(thr), v_reset=f(v_reset))


def oracle_lif(x, dt, tau, r, v_leak, thr, v_reset, reset, timing, rule=">"):
    """The euler LIF, 'decay' order, written out per step."""
    a, gain, c = 1 - dt / tau, dt / tau * r, dt / tau * v_leak
    v = np.zeros(x.shape[0])
    s_prev = np.zeros(x.shape[0])
    vs, ss = [], []
    for t in range(x.shape[1]):
        if timing == "next_step" and reset == "zero":
            v = np.where(s_prev > 0, v_reset, v)
        v = a * v + gain * x[:, t]
        if c:
            v = v + c
        if timing == "next_step" and reset == "subtract":
            v = v - s_prev * thr
        s = (v > thr) if rule == ">" else (v >= thr)
        s = s.astype(np.float64)
        if timing == "same_step":
            v = np.where(s > 0, v_reset, v) if reset == "zero" else v - s * thr
        vs.append(v.copy())
        ss.append(s)
        s_prev = s
    return np.stack(ss, 1), np.stack(vs, 1)


@pytest.mark.parametrize("reset", ["zero", "subtract"])
@pytest.mark.parametrize("timing", ["same_step", "next_step"])
@pytest.mark.parametrize("rule", [">", ">="])
def test_lif_matches_written_out_euler(reset: str, timing: str, rule: str) -> None:
    x = RNG.uniform(0, 1.5, size=(5, 60))
    graph = chain(lif_node(1, tau=0.005, thr=1.0, v_leak=0.1, v_reset=0.2, r=1.5), n_in=1, n_out=1)
    sem = semantics("nir", dt=1e-3, reset=reset, reset_timing=timing, threshold=rule)
    res = run_nir(graph, x[:, :, None], sem, dtype="float64")
    s, v = oracle_lif(x, 1e-3, 0.005, 1.5, 0.1, 1.0, 0.2, reset, timing, rule)
    np.testing.assert_array_equal(res["n0/spikes"][:, :, 0], s)
    np.testing.assert_array_equal(res["n0/v"][:, :, 0], v)
    assert s.sum() > 10


def test_threshold_rule_matters_on_the_threshold() -> None:
    graph = chain(nir.IF(r=np.ones(1), v_threshold=np.ones(1), v_reset=np.zeros(1)), n_in=1, n_out=1)
    x = np.full((1, 3, 1), 0.5)
    gt = run_nir(graph, x, semantics("nir", threshold=">"))["n0/spikes"][0, :, 0]
    ge = run_nir(graph, x, semantics("nir", threshold=">="))["n0/spikes"][0, :, 0]
    np.testing.assert_array_equal(gt, [0, 0, 1])
    np.testing.assert_array_equal(ge, [0, 1, 0])


def test_multi_spike_emits_floor_of_ratio() -> None:
    graph = chain(nir.IF(r=np.ones(1), v_threshold=np.ones(1), v_reset=np.zeros(1)), n_in=1, n_out=1)
    x = np.array([[[3.5], [0.2], [0.4]]])
    res = run_nir(graph, x, semantics("sinabs"), record=("spikes", "v"), dtype="float64")
    v0 = 3.5 - 3 * 1.0
    v1 = v0 + 0.2
    v2 = (v1 + 0.4) - 1.0
    np.testing.assert_array_equal(res["n0/spikes"][0, :, 0], [3, 0, 1])
    np.testing.assert_array_equal(res["n0/v"][0, :, 0], [v0, v1, v2])


def test_cuba_euler_and_jump() -> None:
    n = 1
    f = lambda v: np.full(n, v, np.float64)  # noqa: E731
    node = nir.CubaLIF(
        tau_syn=f(0.002),
        tau_mem=f(0.004),
        r=f(1.0),
        v_leak=f(0.0),
        v_threshold=f(10.0),
        v_reset=f(0.0),
        w_in=f(2.0),
    )
    x = RNG.uniform(0, 1, size=(2, 30))
    graph = chain(node, n_in=1, n_out=1)
    for mode in ("euler", "jump"):
        res = run_nir(
            graph, x[:, :, None], semantics("nir", synaptic_input=mode), record=("v", "i"), dtype="float64"
        )
        i = np.zeros(2)
        v = np.zeros(2)
        a_s, a_m = 1 - 1e-3 / 0.002, 1 - 1e-3 / 0.004
        g_s = (1e-3 / 0.002 * 2.0) if mode == "euler" else 2.0
        for t in range(30):
            i = a_s * i + g_s * x[:, t]
            v = a_m * v + (1e-3 / 0.004 * 1.0) * i
            np.testing.assert_array_equal(res["n0/i"][:, t, 0], i)
            np.testing.assert_array_equal(res["n0/v"][:, t, 0], v)


def test_recurrent_edge_is_delayed_one_step_from_rest() -> None:
    # IF neuron fed back through an Affine with bias: at t = 0 the loop delivers the bias (rest output).
    i_node, o_node = io(1)
    nodes = {
        "input": i_node,
        "if": nir.IF(r=np.ones(1), v_threshold=np.full(1, 0.5), v_reset=np.zeros(1)),
        "rec": nir.Affine(weight=np.full((1, 1), 2.0), bias=np.full(1, 0.25)),
        "output": o_node,
    }
    graph = g(nodes, [("input", "if"), ("if", "rec"), ("rec", "if"), ("if", "output")])
    x = np.array([[[0.0], [0.3], [0.0], [0.0]]])
    res = run_nir(graph, x, "nir", dtype="float64")
    # v: 0.25 -> 0.25+0.3+0.25=0.8 spike,reset 0 -> 0 + 2.25 spike -> 0+2.25 spike ...
    np.testing.assert_array_equal(res["if/v"][0, :, 0], [0.25, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(res["if/spikes"][0, :, 0], [0, 1, 1, 1])


def test_delay_node_and_scale_and_threshold() -> None:
    i_node, o_node = io(2)
    nodes = {
        "input": i_node,
        "delay": nir.Delay(delay=np.array([0.0, 2e-3])),
        "scale": nir.Scale(scale=np.array([2.0, 3.0])),
        "thr": nir.Threshold(threshold=np.array([1.0, 1.0])),
        "output": o_node,
    }
    graph = g(nodes, [("input", "delay"), ("delay", "scale"), ("scale", "thr"), ("thr", "output")])
    x = np.zeros((1, 5, 2))
    x[0, 0] = [1.0, 1.0]
    res = run_nir(graph, x, semantics("nir", dt=1e-3), record=("spikes", "out"))
    np.testing.assert_array_equal(res["delay/out"][0], [[1, 0], [0, 0], [0, 1], [0, 0], [0, 0]])
    np.testing.assert_array_equal(res["thr/spikes"][0], [[1, 0], [0, 0], [0, 1], [0, 0], [0, 0]])


def test_conv1d_sumpool_against_numpy() -> None:
    w = RNG.normal(size=(2, 1, 3))
    conv = nir.Conv1d(
        input_shape=8, weight=w, stride=1, padding=0, dilation=1, groups=1, bias=np.array([0.5, -0.5])
    )
    graph = chain(conv, n_in=[1, 8], n_out=[2, 6])
    x = RNG.normal(size=(2, 3, 1, 8))
    res = run_nir(graph, x, "nir", record=("out",), dtype="float64")
    for b in range(2):
        for t in range(3):
            want = np.stack(
                [np.correlate(x[b, t, 0], w[c, 0], mode="valid") + [0.5, -0.5][c] for c in range(2)]
            )
            np.testing.assert_allclose(res["n0/out"][b, t], want.ravel(), rtol=0, atol=1e-12)


def test_outputs_shapes_and_metadata() -> None:
    graph = chain(nir.Affine(weight=np.ones((3, 4)), bias=np.zeros(3)), lif_node(3, 0.01), n_in=4, n_out=3)
    res = run_nir(graph, np.ones((2, 5, 4)), semantics("norse"), record=("spikes", "v", "out"))
    assert set(res.outputs) == {"n0/out", "n1/spikes", "n1/v", "output/out"}
    assert res["n1/v"].shape == (2, 5, 3) and res["n1/spikes"].dtype == np.int32
    assert res.metadata["semantics"]["convention"] == "norse" and res.metadata["steps"] == 5


def test_bad_inputs_raise_typed_errors() -> None:
    graph = chain(lif_node(3, 0.01), n_in=3, n_out=3)
    with pytest.raises(ValidationError, match=r"inputs\['input'\]: must have shape"):
        run_nir(graph, np.ones((2, 5, 4)))
    with pytest.raises(ValidationError, match="record"):
        run_nir(graph, np.ones((2, 5, 3)), record=("bogus",))
