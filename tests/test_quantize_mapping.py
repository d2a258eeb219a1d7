"""quantize/mapping.py: NIR graphs -> integer networks.

Oracle: the float reference run (deploy.reference.run_nir, float64). The quantizer's float twin (same
description, no rounding, emulator mode="float") must reproduce it spike for spike once aligned by the
recorded per-group lag; the integer network must stay close to it.
"""

from __future__ import annotations

import copy

import nir
import numpy as np
import pytest
from spikeport.emulator.engines.dispatch import run
from spikeport.emulator.errors import UnsupportedError
from spikeport.quantize import encode_inputs, quantize, quantize_pair
from spikeport.quantize.semantics import semantics
from spikeport.reference.run import run_nir

RNG = np.random.default_rng(7)


def _inp(n):
    return nir.Input(input_type={"input": np.array([n])})


def _out(n):
    return nir.Output(output_type={"output": np.array([n])})


def _lif(n, tau=5e-3, r=5.0, thr=1.0, v_leak=0.0):
    return nir.LIF(
        tau=np.full(n, tau), r=np.full(n, r), v_leak=np.full(n, v_leak), v_threshold=np.full(n, thr)
    )


def _cuba(n, tau_syn=5e-3, tau=1e-2, r=10.0, w_in=1.0):
    return nir.CubaLIF(
        tau_syn=np.full(n, tau_syn), tau_mem=np.full(n, tau), r=np.full(n, r), v_leak=np.zeros(n),
        v_threshold=np.ones(n), w_in=np.full(n, w_in),
    )  # fmt: skip


def _w(o, i, s=0.6):
    return RNG.normal(0, s, (o, i))


def chain(hidden, *, n_in=12, n_h=10, n_o=4, bias=True):
    nodes = {
        "input": _inp(n_in),
        "fc1": nir.Affine(weight=_w(n_h, n_in), bias=RNG.normal(0, 0.1, n_h) if bias else np.zeros(n_h)),
        "h": hidden(n_h),
        "fc2": nir.Affine(weight=_w(n_o, n_h), bias=RNG.normal(0, 0.1, n_o) if bias else np.zeros(n_o)),
        "o": hidden(n_o),
        "output": _out(n_o),
    }
    edges = [("input", "fc1"), ("fc1", "h"), ("h", "fc2"), ("fc2", "o"), ("o", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def skip_graph():
    n = 8
    nodes = {
        "input": _inp(n), "a": nir.Linear(weight=_w(n, n)), "l1": _lif(n), "b": nir.Linear(weight=_w(n, n)),
        "l2": _lif(n), "skip": nir.Linear(weight=_w(n, n)), "output": _out(n),
    }  # fmt: skip
    edges = [
        ("input", "a"),
        ("a", "l1"),
        ("l1", "b"),
        ("b", "l2"),
        ("input", "skip"),
        ("skip", "l2"),
        ("l2", "output"),
    ]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def delay_graph():
    n = 6
    nodes = {
        "input": _inp(n), "a": nir.Linear(weight=_w(n, n, 1.0)),
        "d": nir.Delay(delay=np.array([0, 1, 2, 3, 1, 0]) * 1e-3),
        "l1": _lif(n), "output": _out(n),
    }  # fmt: skip
    edges = [("input", "a"), ("a", "d"), ("d", "l1"), ("l1", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def recurrent_graph():
    n = 8
    nodes = {
        "input": _inp(n), "a": nir.Linear(weight=_w(n, n, 1.0)), "l1": _lif(n),
        "rec": nir.Linear(weight=_w(n, n, 0.5)), "output": _out(n),
    }  # fmt: skip
    edges = [("input", "a"), ("a", "l1"), ("l1", "rec"), ("rec", "l1"), ("l1", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def conv_graph():
    c, h = 2, 6
    nodes = {
        "input": nir.Input(input_type={"input": np.array([c, h, h])}),
        "conv": nir.Conv2d(input_shape=(h, h), weight=RNG.normal(0, 0.6, (3, c, 3, 3)), stride=1, padding=1,
                           dilation=1, groups=1, bias=RNG.normal(0, 0.1, 3)),
        "l1": nir.LIF(tau=np.full((3, h, h), 5e-3), r=np.full((3, h, h), 5.0), v_leak=np.zeros((3, h, h)),
                      v_threshold=np.ones((3, h, h))),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                              padding=np.array([0, 0])),
        "flat": nir.Flatten(input_type={"input": np.array([3, 3, 3])}, start_dim=0),
        "scale": nir.Scale(scale=np.full(27, 0.7)),
        "fc": nir.Linear(weight=_w(4, 27)),
        "out": _lif(4),
        "output": _out(4),
    }  # fmt: skip
    edges = [("input", "conv"), ("conv", "l1"), ("l1", "pool"), ("pool", "flat"), ("flat", "scale"),
             ("scale", "fc"), ("fc", "out"), ("out", "output")]  # fmt: skip
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def avgpool_graph():
    c, h = 2, 4
    nodes = {
        "input": nir.Input(input_type={"input": np.array([c, h, h])}),
        "pool": nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                              padding=np.array([0, 0])),
        "flat": nir.Flatten(input_type={"input": np.array([c, 2, 2])}, start_dim=0),
        "fc": nir.Affine(weight=_w(5, 8, 2.0), bias=np.zeros(5)),
        "l1": _lif(5), "output": _out(5),
    }  # fmt: skip
    edges = [("input", "pool"), ("pool", "flat"), ("flat", "fc"), ("fc", "l1"), ("l1", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def li_graph():
    n_in, n = 10, 5
    nodes = {"input": _inp(n_in), "fc": nir.Affine(weight=_w(n, n_in), bias=RNG.normal(0, 0.1, n)),
             "ro": nir.LI(tau=np.full(n, 2e-3), r=np.ones(n), v_leak=np.zeros(n)),
             "output": _out(n)}  # fmt: skip
    edges = [("input", "fc"), ("fc", "ro"), ("ro", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def _x(graph, b=3, t=40, p=0.3):
    shape = tuple(int(s) for s in graph.nodes["input"].input_type["input"])
    return (RNG.random((b, t, *shape)) < p).astype(np.float64)


CASES = {
    "lif_nir": (lambda: chain(_lif), "nir"),
    "lif_snntorch_subtract_next_step": (
        lambda: chain(lambda n: _lif(n, tau=1e-3, r=10.0), bias=False),
        "snntorch",
    ),
    "cuba_euler_bias": (lambda: chain(_cuba), "nir"),
    "cuba_norse_jump": (lambda: chain(lambda n: _cuba(n, r=1.0, w_in=1.0, tau=5e-3)), "norse"),
    "if": (
        lambda: chain(lambda n: nir.IF(r=np.full(n, 0.5), v_threshold=np.ones(n), v_reset=np.zeros(n))),
        "nir",
    ),
    "skip_connection": (skip_graph, "nir"),
    "delay": (delay_graph, "nir"),
    "recurrent": (recurrent_graph, "nir"),
    "conv_pool_flatten_scale": (conv_graph, "nir"),
    "avgpool": (avgpool_graph, "nir"),
    "lif_v_reset_v_leak": (
        lambda: chain(
            lambda n: nir.LIF(
                tau=np.full(n, 5e-3),
                r=np.full(n, 5.0),
                v_leak=np.full(n, 0.4),
                v_threshold=np.full(n, 1.3),
                v_reset=np.full(n, 0.3),
            )
        ),
        "nir",
    ),
    "norse_initial_v_leak": (
        lambda: chain(
            lambda n: nir.LIF(
                tau=np.full(n, 5e-3),
                r=np.ones(n),
                v_leak=np.full(n, 0.5),
                v_threshold=np.ones(n),
                v_reset=np.zeros(n),
            )
        ),
        "norse",
    ),
}


def _twin_vs_ref(graph, sem, x):
    net, twin, rep = quantize_pair(graph, sem)
    ref = run_nir(graph, x, sem, record=("spikes", "v"), dtype="float64")
    pad = max(g["lag"] for g in net.metadata["groups"].values())
    tw = run(twin, encode_inputs(net, x, pad=pad, exact=True), record=("spikes", "v"), mode="float")
    fx = run(net, encode_inputs(net, x, pad=pad), record=("spikes", "v"))
    return net, rep, ref, tw, fx


@pytest.mark.parametrize("case", sorted(CASES))
def test_float_twin_reproduces_reference_spike_for_spike(case):
    make, conv = CASES[case]
    graph = make()
    sem = semantics(conv)
    x = _x(graph)
    net, _rep, ref, tw, fx = _twin_vs_ref(graph, sem, x)
    T = x.shape[1]
    spiking = [k for k, m in net.metadata["groups"].items() if m["spiking"]]
    assert spiking
    total = 0
    for k in spiking:
        lag = net.metadata["groups"][k]["lag"]
        np.testing.assert_array_equal(tw[f"{k}/spikes"][:, lag : lag + T], ref[f"{k}/spikes"])
        total += int(ref[f"{k}/spikes"].sum())
        agree = np.mean(fx[f"{k}/spikes"][:, lag : lag + T] == ref[f"{k}/spikes"])
        assert agree >= 0.9, (k, agree)
    assert total > 0  # the comparison saw spikes


def test_li_readout_voltage_matches_reference():
    graph = li_graph()
    x = _x(graph)
    net, _rep, ref, tw, fx = _twin_vs_ref(graph, semantics("nir"), x)
    meta = net.metadata["groups"]["ro"]
    assert not meta["spiking"] and net.group("ro").vth == 2**17 - 1
    s, lag, T = np.asarray(meta["scale"]), meta["lag"], x.shape[1]
    np.testing.assert_allclose(tw["ro/v"][:, lag : lag + T] / s, ref["ro/v"], rtol=1e-9, atol=1e-9)
    v_fixed = fx["ro/v"][:, lag : lag + T] / s
    err = np.sqrt(np.mean((v_fixed - ref["ro/v"]) ** 2)) / np.sqrt(np.mean(ref["ro/v"] ** 2))
    assert err < 0.01  # 8-bit weights and 13-bit biases, no spike flips upstream


def test_cuba_li_readout_matches_reference():
    n = 4
    nodes = {"input": _inp(6), "fc": nir.Affine(weight=_w(n, 6), bias=RNG.normal(0, 0.2, n)),
             "ro": nir.CubaLI(tau_syn=np.full(n, 3e-3), tau_mem=np.full(n, 5e-3), r=np.ones(n),
                              v_leak=np.zeros(n), w_in=np.ones(n)),
             "output": _out(n)}  # fmt: skip
    graph = nir.NIRGraph(
        nodes=nodes, edges=[("input", "fc"), ("fc", "ro"), ("ro", "output")], type_check=False
    )
    x = _x(graph)
    net, _rep, ref, tw, _fx = _twin_vs_ref(graph, semantics("nir"), x)
    meta = net.metadata["groups"]["ro"]
    s, lag, T = np.asarray(meta["scale"]), meta["lag"], x.shape[1]
    np.testing.assert_allclose(tw["ro/v"][:, lag : lag + T] / s, ref["ro/v"], rtol=1e-9, atol=1e-9)


def test_shift_decays_are_two_shift_multiplies():
    net, rep = quantize(chain(_cuba), "nir", shift_decays=True)  # alpha 0.2 / 0.1: 819.2 / 409.6
    h = net.group("h")
    assert h.du + 1 == 1024 and h.dv == 512  # 4096 - 2**j: x * (4096 - d) = (x << 12) - (x << j)
    g = next(r for r in rep.groups if r.name == "h")
    assert g.tau_mem_effective == pytest.approx(1e-3 * 4096 / 512)


def test_linear_straight_to_output_becomes_a_readout():
    nodes = {
        "input": _inp(6),
        "fc": nir.Affine(weight=_w(3, 6), bias=RNG.normal(0, 0.3, 3)),
        "output": _out(3),
    }
    graph = nir.NIRGraph(nodes=nodes, edges=[("input", "fc"), ("fc", "output")], type_check=False)
    x = _x(graph)
    net, _ = quantize(graph, "nir")
    assert net.metadata["outputs"] == {"output": {"group": "fc", "variable": "v"}}
    ref = run_nir(graph, x, "nir", record=("out",), dtype="float64")
    s = np.asarray(net.metadata["groups"]["fc"]["scale"])
    v = run(net, encode_inputs(net, x, pad=1), record=("v",))["fc/v"][:, 1:] / s
    # v = x + b each step, up to 8-bit weights, the bias mantissa and the 1/4096 kept by dv = 4095
    assert np.max(np.abs(v - ref["fc/out"])) < 0.02 * np.max(np.abs(ref["fc/out"]))


def test_lags_and_skip_delay():
    net, _ = quantize(skip_graph(), "nir")
    lags = {k: m["lag"] for k, m in net.metadata["groups"].items()}
    assert lags == {"l1": 1, "l2": 2}
    conns = {c.name: c for c in net.connections}
    assert conns["input->l1"].delays is None and conns["l1->l2"].delays is None
    # input reaches l2 directly in the float run: one extra step keeps it aligned with the l1 path
    np.testing.assert_array_equal(conns["input->l2"].delays, np.ones((8, 8)))


def test_decay_and_threshold_integers():
    net, rep = quantize(chain(_cuba), "nir")  # dt 1e-3: alpha_syn 0.2, alpha_mem 0.1
    h = net.group("h")
    assert h.du == round(4096 * 0.2) - 1 == 818
    assert h.dv == round(4096 * 0.1) == 410
    assert net.is_integer
    g = next(r for r in rep.groups if r.name == "h")
    assert g.tau_syn_effective == pytest.approx(1e-3 * 4096 / 819)
    # threshold exact by construction: vth << 6 equals S * v_threshold
    s = np.asarray(net.metadata["groups"]["h"]["scale"])
    np.testing.assert_array_equal(s * 1.0, np.full(10, h.vth * 64.0))


def test_weights_are_what_lava_keeps():
    from spikeport.quantize.fixed_point import lava_weights

    net, _ = quantize(conv_graph(), "nir", weight_bits=6)
    for c in net.connections:
        # the stored values (a lowered convolution's are held sparse; zeros do not change the sign mode)
        np.testing.assert_array_equal(lava_weights(c.weight_values, 6), c.weight_values)
        assert c.num_weight_bits == 6


def test_shift_mode_weights_are_powers_of_two():
    net, rep = quantize(chain(_lif), "nir", mode="shift")
    for c in net.connections:
        assert c.shift
        mag = np.abs(c.weights[c.weights != 0]).astype(np.int64)
        assert mag.size and np.all(mag & (mag - 1) == 0)
    assert rep.mode == "shift"


def test_metadata_records_semantics_and_provenance():
    sem = semantics("norse")
    net, rep = quantize(chain(_cuba), sem)
    assert net.metadata["semantics"] == sem.to_dict()
    assert net.metadata["quantizer"]["mode"] == "fixed"
    assert net.metadata["outputs"] == {"output": {"group": "o", "variable": "spikes"}}
    assert rep.to_dict()["semantics"]["convention"] == "norse"


def test_input_graph_is_not_mutated():
    g = chain(_cuba)
    before = copy.deepcopy({k: dict(vars(v)) for k, v in g.nodes.items()})
    quantize(g, "nir", calibration=_x(g))
    for k, v in g.nodes.items():
        for f, val in before[k].items():
            if isinstance(val, np.ndarray):
                np.testing.assert_array_equal(getattr(v, f), val)


def test_unsupported_node_lists_supported_types():
    g = nir.NIRGraph(
        nodes={"input": _inp(4), "thr": nir.Threshold(threshold=np.ones(4)), "output": _out(4)},
        edges=[("input", "thr"), ("thr", "output")], type_check=False,
    )  # fmt: skip
    with pytest.raises(UnsupportedError, match=r"Threshold.*supported: .*CubaLIF.*Conv2d"):
        quantize(g, "nir")


def test_lava_target_accepts_subtract_reset_and_hold():
    """Subtract reset and the held reset (refractory=1) run on Lava as spikeport's own process
    (spikeport.lava.lif_processes), so target='lava' maps them as the emulator target does."""
    for sem in ("snntorch", semantics("snntorch", reset="zero", reset_timing="next_step_hold")):
        lava, _ = quantize(chain(_lif), sem, target="lava")
        emu, _ = quantize(chain(_lif), sem)
        for name in ("h", "o"):
            assert (lava.group(name).reset, lava.group(name).refractory) == (
                emu.group(name).reset,
                emu.group(name).refractory,
            )
    assert lava.group("h").refractory == 1
    assert quantize(chain(_lif), "snntorch", target="lava")[0].group("h").reset == "subtract"


def test_reset_none_refused_and_multi_spike_mapped():
    with pytest.raises(UnsupportedError, match="reset='none'"):
        quantize(chain(_lif), semantics("nir", reset="none"))
    net, _ = quantize(chain(_lif), "sinabs")  # multi-spike: graded payloads (tests/test_multi_spike.py)
    assert net.group("h").max_spikes > 1


def test_recurrent_rest_zero_refused_where_a_recurrent_bias_reaches_the_group():
    g = recurrent_graph()
    g.nodes["rec"] = nir.Affine(weight=g.nodes["rec"].weight, bias=np.full(8, 0.2))
    with pytest.raises(UnsupportedError, match=r"l1: Semantics recurrent_rest='zero' cannot be quantized"):
        quantize(g, semantics("nir", recurrent_rest="zero"))
    quantize(g, "nir")  # the default, recurrent_rest='response', is what the integer network does
    quantize(recurrent_graph(), semantics("nir", recurrent_rest="zero"))  # no bias: nothing differs


def test_graded_input_calibration_picks_exact_scale():
    g = chain(_lif)
    x = RNG.integers(0, 17, (2, 10, 12)) / 16.0
    net, _ = quantize(g, "nir", calibration=x)
    e = net.metadata["inputs"]["input"]
    assert e["num_message_bits"] == 8 and e["scale"] == 112.0  # 7 * 16: every k/16 maps to 7k exactly
    np.testing.assert_array_equal(encode_inputs(net, x)["input"], np.rint(x * 112).astype(np.int64))


@pytest.mark.lava
def test_quantized_network_runs_bit_exact_on_lava():
    # bias unit (Cuba bias), DelayDense (skip connection) and mixed-sign 8-bit weights, on Lava fixed_pt
    from spikeport.lava.backend import run_lava

    n = 6
    nodes = {
        "input": _inp(n), "a": nir.Affine(weight=_w(n, n, 1.0), bias=RNG.normal(0, 0.2, n)),
        "l1": _cuba(n, r=1.0, tau=5e-3), "b": nir.Linear(weight=_w(n, n, 1.0)),
        "l2": _cuba(n, r=1.0, tau=5e-3), "skip": nir.Linear(weight=_w(n, n, 1.0)), "output": _out(n),
    }  # fmt: skip
    edges = [("input", "a"), ("a", "l1"), ("l1", "b"), ("b", "l2"), ("input", "skip"), ("skip", "l2"),
             ("l2", "output")]  # fmt: skip
    graph = nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)
    net, _ = quantize(graph, "norse", target="lava")
    assert any(c.delays is not None for c in net.connections)
    assert any(c.source == "~bias" for c in net.connections)
    x = encode_inputs(net, (RNG.random((1, 25, n)) < 0.4).astype(float), pad=2)
    emu = run(net, x, record=("spikes", "v"))
    lava = run_lava(net, x, record=("spikes", "v"))
    assert emu["l2/spikes"].sum() > 0
    for k in ("l1/spikes", "l2/spikes", "l1/v", "l2/v"):
        np.testing.assert_array_equal(lava[k], emu[k])
