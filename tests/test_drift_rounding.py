"""``rounding="min_drift"``: decays and biases chosen by the drift measures of spikeport.quantize.drift.

The oracle is a straightforward loop written here: Python integers with Lava's round-toward-zero decay
(``sign(p) * (|p| // 4096)``, not the emulator's kernel) against the float recurrence, over every
candidate. The cases are built so that nearest rounding drifts measurably: a decay whose fraction is just
above one half (nearest rounds up, while the truncation already decays the state faster), and biases
whose truncation loss moves the spike count under constant drive.
"""

from __future__ import annotations

import math

import nir
import numpy as np
import pytest
import spikeport as sp
from spikeport.quantize import drift

DT = 1e-3  # the "nir" semantics' step


def _trunc_decay(x: int, d: int) -> int:
    p = x * (4096 - d)
    return (1 if p >= 0 else -1) * (abs(p) // 4096)


def _decay_error_loop(d: int, alpha: float, amplitude: float, steps: int) -> float:
    """The documented measure: mean over A/4**k (k < 4, >= 1, distinct) and t of |x(t) - A(1-a)**t| / A."""
    amps = sorted({max(round(amplitude / 4**k), 1) for k in range(4)})
    errs = []
    for a in amps:
        x, ref, tot = a, float(a), 0.0
        for _ in range(steps):
            x = _trunc_decay(x, d)
            ref *= 1.0 - alpha
            tot += abs(x - ref) / a
        errs.append(tot / steps)
    return sum(errs) / len(errs)


def _graph(n: int, tau: float, weight: float, bias: np.ndarray) -> nir.NIRGraph:
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([n])}),
            "fc": nir.Affine(weight=np.eye(n) * weight, bias=bias),
            "h": nir.LIF(tau=np.full(n, tau), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n)),
            "output": nir.Output(output_type={"output": np.array([n])}),
        },
        edges=[("input", "fc"), ("fc", "h"), ("h", "output")],
        type_check=False,
    )


def test_decay_choice_beats_nearest_by_the_stated_measure() -> None:
    alpha, amp, steps = 100.55 / 4096, 64 * 1000, 60
    errs = {d: _decay_error_loop(d, alpha, amp, steps) for d in (100, 101, 102)}
    best = min(errs, key=errs.__getitem__)
    assert best == 100 and errs[101] > 1.3 * errs[100]  # nearest (101) drifts measurably more
    c = drift.choose_decay(
        alpha, 101, field="v", amplitude=amp, steps=steps, shift=False, rounding="min_drift"
    )
    assert (c.value, c.nearest) == (100, 101)
    assert c.error == pytest.approx(errs[100], rel=1e-9)
    assert c.error_nearest == pytest.approx(errs[101], rel=1e-9)
    # u: the decay is du + 1, so the same fraction gives du = 99 rather than 100
    cu = drift.choose_decay(
        alpha, 100, field="u", amplitude=amp, steps=steps, shift=False, rounding="min_drift"
    )
    assert (cu.value, cu.nearest) == (99, 100)
    near = drift.choose_decay(
        alpha, 101, field="v", amplitude=amp, steps=steps, shift=False, rounding="nearest"
    )
    assert near.value == 101 and near.error == pytest.approx(errs[101], rel=1e-9)


def test_shift_decays_choose_the_power_of_two_with_less_drift() -> None:
    """4096 alpha = 360: log2-nearest is 256 (log2 360 = 8.49), but 512 follows the float response closer."""
    alpha, amp, steps = 360 / 4096, 64 * 5000, 40
    errs = {d: _decay_error_loop(d, alpha, amp, steps) for d in (256, 512)}
    assert errs[512] < 0.9 * errs[256]
    c = drift.choose_decay(
        alpha, 256, field="v", amplitude=amp, steps=steps, shift=True, rounding="min_drift"
    )
    assert (c.value, c.nearest) == (512, 256)
    assert c.error == pytest.approx(errs[512], rel=1e-9)


def _bias_loop(b_int: int, b: float, dv: int, alpha: float, thr: float, steps: int) -> tuple[int, float]:
    """Constant drive from rest, zero reset: (|n_int - n_float|, mean |v_int - v_float| / thr)."""
    vi, vf, ni, nf, dev = 0, 0.0, 0, 0, 0.0
    for _ in range(steps):
        vi = _trunc_decay(vi, dv) + b_int
        vf = (1 - alpha) * vf + b
        if vi > thr:
            ni, vi = ni + 1, 0
        if vf > thr:
            nf, vf = nf + 1, 0.0
        dev += abs(vi - vf)
    return abs(ni - nf), dev / steps / thr


def test_quantized_network_uses_the_least_drift_decay_and_biases() -> None:
    """Through sp.quantize: large weights make vth small, so the truncation matters; the chosen dv and
    bias mantissas are the loop's argmins for the network's own vth, and they beat nearest rounding."""
    n, steps = 24, 50
    tau = DT * 4096 / 100.55
    bias = np.linspace(0.02, 0.9, n)  # float units of the threshold
    graph = _graph(n, tau, 300.0, bias)
    x = np.zeros((4, steps, n))
    x[:, 0] = 1.0
    nets = {r: sp.quantize(graph, "nir", calibration=x, rounding=r) for r in ("nearest", "min_drift")}
    g_near, g_min = (next(g for g in nets[r][0].groups if g.name == "h") for r in ("nearest", "min_drift"))
    assert g_near.vth == g_min.vth and g_near.vth < 8000
    thr, alpha = g_min.vth * 64, 100.55 / 4096
    errs = {d: _decay_error_loop(d, alpha, thr, steps) for d in (100, 101, 102)}
    assert g_near.dv == 101
    assert g_min.dv == min(errs, key=errs.__getitem__) == 100
    rep = next(g for g in nets["min_drift"][1].groups if g.name == "h").drift
    assert rep is not None and rep.dv == 100 and rep.dv_nearest == 101 and rep.dv_error < rep.dv_error_nearest
    # biases: each mantissa is the argmin (rate error, then v error) of the loop over round(b) + {0,-1,+1}
    scale = np.asarray(nets["min_drift"][0].metadata["groups"]["h"]["scale"])
    b = scale * alpha * bias  # the float bias per step, integer v units
    total = {"nearest": [0, 0.0], "min_drift": [0, 0.0]}
    for i in range(n):
        e = int(g_min.bias_exp[i])
        assert e == g_near.bias_exp[i] and e >= 0
        r = round(b[i] / 2**e)
        figs = {m: _bias_loop(m << e, b[i], 100, alpha, thr, steps) for m in (r, r - 1, r + 1)}
        best = min(figs, key=lambda m: (figs[m][0], figs[m][1]))
        assert g_min.bias_mant[i] == best, i
        assert g_near.bias_mant[i] == r
        for key, m, d in (("nearest", r, 101), ("min_drift", best, 100)):
            k, v = _bias_loop(m << e, b[i], d, alpha, thr, steps)
            total[key][0] += k
            total[key][1] += v
    assert total["min_drift"][0] < total["nearest"][0] or total["min_drift"][1] < total["nearest"][1]
    assert math.isfinite(rep.bias_v_error) and rep.bias_changed > 0


def test_default_rounding_and_report_fields() -> None:
    graph = _graph(4, 5e-3, 1.0, np.full(4, 0.3))
    net, rep = sp.quantize(graph, "nir")
    assert net.metadata["quantizer"]["rounding"] == "nearest"
    d = rep.to_dict()["groups"][0]["drift"]
    assert d["rounding"] == "nearest" and d["steps"] == drift.DEFAULT_STEPS and d["dv"] == d["dv_nearest"]
    assert "nearest rounding over 100 steps" in rep.summary()
