"""quantize/report.py: every warning code has a graph that triggers it; the report is JSON."""

from __future__ import annotations

import json

import nir
import numpy as np
import pytest
from spikeport.quantize import WARNING_CODES, quantize
from spikeport.quantize.report import weight_errors
from spikeport.quantize.semantics import semantics


def _net(w1, *, tau=5e-3, thr=1.0, bias=None, r=1.0, cuba=False):
    n_h, n_in = w1.shape
    neuron = (
        nir.CubaLIF(tau_syn=np.full(n_h, 2e-3), tau_mem=np.full(n_h, tau), r=np.full(n_h, r),
                    v_leak=np.zeros(n_h),
                    v_threshold=np.full(n_h, thr), w_in=np.ones(n_h))
        if cuba
        else nir.LIF(tau=np.full(n_h, tau), r=np.full(n_h, r), v_leak=np.zeros(n_h),
                     v_threshold=np.full(n_h, thr))
    )  # fmt: skip
    nodes = {
        "input": nir.Input(input_type={"input": np.array([n_in])}),
        "fc": nir.Affine(weight=w1, bias=np.zeros(n_h) if bias is None else bias),
        "h": neuron,
        "output": nir.Output(output_type={"output": np.array([n_h])}),
    }
    return nir.NIRGraph(nodes=nodes, edges=[("input", "fc"), ("fc", "h"), ("h", "output")], type_check=False)


W = np.random.default_rng(3).normal(0, 1, (6, 8))
X = (np.random.default_rng(4).random((2, 30, 8)) < 0.3).astype(float)
WIDE = np.random.default_rng(5).normal(0, 0.5, (6, 200))


def _codes(graph, sem="nir", **kw):
    _, rep = quantize(graph, sem, **kw)
    return rep, {w.code: w for w in rep.warnings}


def two_group_cycle():
    n = 4
    lif = nir.LIF(tau=np.full(n, 5e-3), r=np.full(n, 2.0), v_leak=np.zeros(n), v_threshold=np.ones(n))
    nodes = {
        "input": nir.Input(input_type={"input": np.array([n])}), "a": nir.Linear(weight=np.eye(n)),
        "l1": lif, "b": nir.Linear(weight=np.eye(n)), "l2": lif, "back": nir.Linear(weight=-np.eye(n)),
        "output": nir.Output(output_type={"output": np.array([n])}),
    }  # fmt: skip
    edges = [
        ("input", "a"),
        ("a", "l1"),
        ("l1", "b"),
        ("b", "l2"),
        ("l2", "back"),
        ("back", "l1"),
        ("l2", "output"),
    ]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


TRIGGERS = {
    # tau = 1e4 dt: dv = round(4096 / 1e4) = 0
    "no_leak": lambda: _codes(_net(W, tau=10.0)),
    # tau = dt: alpha 1, dv clamps to 4095
    "full_reset": lambda: _codes(_net(W, tau=1e-3)),
    # threshold 1e-7 against weights ~1: vth would have to be far below 1
    "threshold_saturates": lambda: _codes(_net(W, thr=1e-7)),
    "weights_saturate": lambda: _codes(_net(W, thr=1e-7)),
    "bias_saturates": lambda: _codes(_net(W, thr=1e-7, bias=np.full(6, 50.0))),
    # a dynamic range of 1e5 within one connection: the small weights round to 0
    "weights_lost": lambda: _codes(_net(np.where(np.abs(W) > 0.5, W, W * 1e-5))),
    # calibration on one spike per step scales past the static worst case (200 inputs at once)
    "overflow_risk": lambda: _codes(_net(np.abs(WIDE)), calibration=np.eye(200)[None, :30]),
    "silent_layer": lambda: _codes(_net(W), calibration=np.zeros((1, 20, 8))),
    "saturated_layer": lambda: _codes(_net(W, bias=np.full(6, 100.0)), calibration=X),
    "approximation": lambda: _codes(_net(W), semantics("nir", threshold=">=")),
    "timing": lambda: _codes(two_group_cycle()),
}


def test_every_warning_code_has_a_trigger():
    assert set(TRIGGERS) == set(WARNING_CODES)


@pytest.mark.parametrize("code", sorted(TRIGGERS))
def test_warning_is_triggered(code):
    rep, codes = TRIGGERS[code]()
    assert code in codes, rep.summary()
    assert codes[code].where and codes[code].message


def test_clean_network_has_no_warnings():
    _, codes = _codes(_net(W, r=3.0), calibration=X)
    assert codes == {}


def test_cuba_bias_on_v_is_reported_as_approximation():
    g = _net(W, cuba=True, bias=np.full(6, 0.2))
    _, codes = _codes(g, cuba_bias="v")
    assert "approximation" in codes and "steady state" in codes["approximation"].message
    _, codes = _codes(g)  # default: exact through the bias unit
    assert "approximation" not in codes


def test_report_figures_and_json():
    net, rep = quantize(_net(W, tau=10.0), "nir", calibration=X)
    d = json.loads(rep.to_json())
    assert d["mode"] == "fixed" and d["weight_bits"] == 8
    g = d["groups"][0]
    assert g["name"] == "h" and g["dv"] == 0 and g["tau_mem"] == pytest.approx(10.0)
    assert g["tau_mem_effective"] == "inf"  # no leak left
    assert set(g["headroom_bits"]) == {"a_in", "u", "v"} and g["bound_source"] == "calibration"
    c = d["connections"][0]
    wq = net.connections[0].weights * 2.0 ** net.connections[0].weight_exp
    assert 0 < c["weight_rms_rel_error"] < 0.02 and c["sign_mode"] == "mixed"
    assert np.max(np.abs(wq)) > 0


def test_weight_errors_formula():
    w = np.array([1.0, -2.0, 0.001, 0.0])
    wq = np.array([1.0, -2.5, 0.0, 0.0])
    rms, mx, zf = weight_errors(w, wq)
    assert rms == pytest.approx(np.sqrt((0.25 + 1e-6) / 4) / np.sqrt((1 + 4 + 1e-6) / 4))
    assert mx == pytest.approx(0.25)
    assert zf == pytest.approx(1 / 3)


def test_tau_spread_within_a_group_is_an_approximation():
    g = _net(W)
    g.nodes["h"] = nir.LIF(
        tau=np.linspace(4e-3, 8e-3, 6), r=np.ones(6), v_leak=np.zeros(6), v_threshold=np.ones(6)
    )
    _, codes = _codes(g)
    assert "approximation" in codes and "one decay constant per group" in codes["approximation"].message
