"""Assembly: per-group scales, decays and the integer records (the network and its float twin)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from spikeport.emulator import bits
from spikeport.emulator.network import Connection, InputGroup, LIFGroup, Network
from spikeport.quantize import fixed_point as fixed
from spikeport.quantize.calibrate import (
    Bounds,
    Observation,
    Scale,
    choose_scale,
    data_bounds,
    refine_scale,
    static_bounds,
)
from spikeport.quantize.graph.connection_plans import ConnPlan
from spikeport.quantize.graph.group_plan import BIAS_UNIT, GroupPlan, Plan
from spikeport.quantize.graph.neuron_models import NeuronModel
from spikeport.quantize.input_encoding import InputEncoding
from spikeport.quantize.semantics import Semantics


@dataclass(frozen=True, kw_only=True)
class BuildOptions:
    weight_bits: int
    mode: str
    shift_decays: bool


def _bias(g: GroupPlan) -> np.ndarray:
    return g.bias


def static_group_bounds(g: GroupPlan, conns: Sequence[ConnPlan]) -> Bounds:
    m = g.model
    return static_bounds(
        u_gain=m.u_gain,
        alpha_u=m.alpha_u,
        alpha_v=m.alpha_v,
        threshold=m.threshold,
        bias=_bias(g),
        inputs=[(c.m, c.xmax) for c in conns if c.target == g.name],
    )


def observed_group_bounds(g: GroupPlan, obs: Observation, scale: Scale, margin: float) -> Bounds:
    s = scale.scale
    return data_bounds(
        a_obs=obs.a_in / s,
        u_obs=obs.u / s,
        v_obs=obs.v / s,
        threshold=g.model.threshold,
        bias=_bias(g),
        margin=margin,
    )


def _top(w: np.ndarray, opts: BuildOptions) -> float:
    if opts.mode == "shift":
        return 128.0
    _, lo, hi = fixed.weight_grid(fixed.sign_mode(w), opts.weight_bits)
    return float(hi if hi > 0 else -lo)


def group_scale(g: GroupPlan, bounds: Bounds, conns: Sequence[ConnPlan], opts: BuildOptions) -> Scale:
    ws = [g.model.u_gain[:, None] * c.m / 64.0 for c in conns if c.target == g.name]
    peaks = [(np.max(np.abs(w), axis=1), _top(w, opts)) for w in ws]
    sc = choose_scale(threshold=g.model.threshold, bounds=bounds, weight_peaks=peaks, bias=_bias(g))
    return refine_scale(
        sc, spiking=g.model.threshold is not None, weights=ws, quantize=lambda w: _dequant(w, opts)
    )


def _dequant(w: np.ndarray, opts: BuildOptions) -> np.ndarray:
    q = (
        fixed.quantize_weights_pow2(w, opts.weight_bits)
        if opts.mode == "shift"
        else fixed.quantize_weights(w, opts.weight_bits)
    )
    return q.mant * 2.0**q.exp


def _decays(m: NeuronModel, opts: BuildOptions) -> tuple[float, float, float, float]:
    """(du, dv) integer and (du, dv) real for the twin."""
    if m.alpha_u is None:
        du, du_real = float(bits.DECAY_MAX), float(bits.DECAY_MAX)
    else:
        a = float(np.mean(m.alpha_u))
        du = float(fixed.du_from_alpha(a))
        if opts.shift_decays:
            du = float(np.clip(fixed.decay_to_shift(du + 1) - 1, 0, bits.DECAY_MAX))
        du_real = float(np.clip(a * bits.DECAY_UNITY - 1, 0, bits.DECAY_MAX))
    a = float(np.mean(m.alpha_v))
    dv = float(fixed.dv_from_alpha(a))
    if opts.shift_decays:
        dv = float(fixed.decay_to_shift(dv))
    return du, dv, du_real, float(np.clip(a * bits.DECAY_UNITY, 0, bits.DECAY_MAX))


@dataclass(frozen=True, kw_only=True)
class Parts:
    """What the report needs besides the records: float weights/biases next to quantized ones."""

    weights: dict[str, tuple[np.ndarray, fixed.QuantizedWeights]]
    biases: dict[str, tuple[np.ndarray, np.ndarray, int]]  # group -> (float, quantized, n saturated)


def build_records(
    plan: Plan,
    conns: Sequence[ConnPlan],
    scales: Mapping[str, Scale],
    enc: Mapping[str, InputEncoding],
    opts: BuildOptions,
    sem: Semantics,
    target: str,
) -> tuple[Network, Network, Parts]:
    """The integer network, its float twin (same description, values unrounded) and the report's parts."""
    inputs = tuple(InputGroup(name=k, n=e.n, num_message_bits=e.num_message_bits) for k, e in enc.items())
    groups, twins, biases = _group_records(plan, scales, opts)
    if any(c.source == BIAS_UNIT for c in conns):
        unit = _bias_unit()
        groups.insert(0, unit)
        twins.insert(0, unit)
    cs, ts, weights = _connection_records(plan, conns, scales, opts)
    meta = _metadata(plan, scales, enc, opts, sem, target)
    net = Network(inputs=inputs, groups=tuple(groups), connections=tuple(cs), metadata=meta)
    twin = Network(inputs=inputs, groups=tuple(twins), connections=tuple(ts), metadata={**meta, "twin": True})
    return net, twin, Parts(weights=weights, biases=biases)


def _group_records(
    plan: Plan, scales: Mapping[str, Scale], opts: BuildOptions
) -> tuple[list[LIFGroup], list[LIFGroup], dict[str, tuple[np.ndarray, np.ndarray, int]]]:
    """One integer LIF group and its float twin per planned group, plus the float/quantized biases."""
    groups, twins, biases = [], [], {}
    for g in plan.groups:
        sc, m = scales[g.name], g.model
        du, dv, du_r, dv_r = _decays(m, opts)
        b = sc.scale * _bias(g)
        mant, exp, nsat = fixed.quantize_bias(b)
        biases[g.name] = (b, fixed.bias_value(mant, exp).astype(np.float64), nsat)
        v_start = sc.scale * ((m.v_leak if g.sem.initial_v == "leak" else 0.0) - m.v_reset)
        v0 = _initial_v(v_start, b, dv, plan.lags[g.name])
        v0_r = _initial_v(v_start, b, dv_r, plan.lags[g.name])
        hold = m.spiking and g.sem.reset == "zero" and g.sem.reset_timing == "next_step_hold"
        common: dict[str, Any] = dict(
            name=g.name,
            n=len(m.u_gain),
            vth=sc.vth,
            bias_exp=exp,
            u0=np.zeros(len(v0)),
            reset="subtract" if m.spiking and g.sem.reset == "subtract" else "zero",
            refractory=int(hold),
        )
        groups.append(LIFGroup(du=du, dv=dv, bias_mant=mant, v0=np.rint(v0), **common))
        real_mant = np.clip(b / 2.0**exp, bits.BIAS_MANT_MIN, bits.BIAS_MANT_MAX)
        twins.append(LIFGroup(du=du_r, dv=dv_r, bias_mant=real_mant, v0=v0_r, **common))
    return groups, twins, biases


def _bias_unit() -> LIFGroup:
    """The one always-firing neuron that carries constant inputs (biases the neuron cannot hold)."""
    one, zero = np.ones(1, np.int64), np.zeros(1, np.int64)
    return LIFGroup(
        name=BIAS_UNIT, n=1, du=4095, dv=4095, vth=0, bias_mant=one, bias_exp=zero, u0=zero, v0=zero
    )


def _connection_records(
    plan: Plan, conns: Sequence[ConnPlan], scales: Mapping[str, Scale], opts: BuildOptions
) -> tuple[list[Connection], list[Connection], dict[str, tuple[np.ndarray, fixed.QuantizedWeights]]]:
    """One integer connection and its float twin per connection plan, plus float/quantized weights."""
    cs, ts, weights = [], [], {}
    for c in conns:
        sc, m = scales[c.target], next(g.model for g in plan.groups if g.name == c.target)
        w = sc.scale[:, None] * m.u_gain[:, None] * c.m / 64.0
        q = (
            fixed.quantize_weights_pow2(w, opts.weight_bits)
            if opts.mode == "shift"
            else fixed.quantize_weights(w, opts.weight_bits)
        )
        weights[c.name] = (w, q)
        delays = np.full(w.shape, c.delay) if c.delay else None
        sparse = bool(w.size >= 4096 and np.count_nonzero(c.m) < 0.2 * w.size)
        common_c: dict[str, Any] = dict(
            name=c.name,
            source=c.source,
            target=c.target,
            weight_exp=q.exp,
            num_weight_bits=opts.weight_bits,
            num_message_bits=c.num_message_bits,
            delays=delays,
            sparse=sparse,
        )
        cs.append(Connection(weights=q.mant, shift=opts.mode == "shift", **common_c))
        ts.append(Connection(weights=np.clip(w / 2.0**q.exp, bits.WEIGHT_MIN, bits.WEIGHT_MAX), **common_c))
    return cs, ts, weights


def _initial_v(v_start: np.ndarray, bias: np.ndarray, dv: float, lag: int) -> np.ndarray:
    """The v0 that bias-only steps during the ``lag`` leading steps (before any input arrives) turn
    into ``v_start`` (the float run's initial value): ``v0 = (...((v_start - b) / k - b) / k ...)``,
    ``k = 1 - dv/4096`` applied ``lag`` times; clipped to the 24-bit range."""
    k = 1.0 - dv / bits.DECAY_UNITY
    v = np.asarray(v_start, dtype=np.float64)
    for _ in range(lag):
        v = (v - bias) / k
    return np.clip(v, bits.V_MIN, bits.V_MAX)


def _metadata(
    plan: Plan,
    scales: Mapping[str, Scale],
    enc: Mapping[str, InputEncoding],
    opts: BuildOptions,
    sem: Semantics,
    target: str,
) -> dict[str, Any]:
    """Provenance and what compare needs: per group the NIR node, kind, lag, scale and v offset."""
    return {
        "producer": "spikeport.quantize",
        "semantics": sem.to_dict(),
        "quantizer": {
            "mode": opts.mode,
            "weight_bits": opts.weight_bits,
            "shift_decays": opts.shift_decays,
            "target": target,
        },
        "timing": "group G at float step t is emulator index t + lag[G] (one step per connection)",
        "inputs": {
            k: {"n": e.n, "scale": e.scale, "num_message_bits": e.num_message_bits} for k, e in enc.items()
        },
        "groups": {
            g.name: {
                "node": g.name,
                "kind": g.model.kind,
                "spiking": g.model.spiking,
                "lag": plan.lags[g.name],
                "scale": scales[g.name].scale.tolist(),
                "v_reset": g.model.v_reset.tolist(),
            }
            for g in plan.groups
        },
        "outputs": {k: {"group": gname, "variable": var} for k, (gname, var) in plan.outputs.items()},
    }
