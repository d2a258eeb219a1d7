"""Assembly: per-group scales, decays and the integer records (the network and its float twin)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from spikeport.emulator import bits
from spikeport.emulator.network import Connection, InputGroup, LIFGroup, Network
from spikeport.emulator.sparse_weights import SparseWeights
from spikeport.quantize import drift
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
from spikeport.quantize.drift import GroupDrift
from spikeport.quantize.fixed_scales import QuantScales
from spikeport.quantize.graph import sparse_linear as sl
from spikeport.quantize.graph.connection_plans import ConnPlan
from spikeport.quantize.graph.group_plan import BIAS_UNIT, GroupPlan, Plan, max_spikes
from spikeport.quantize.graph.neuron_models import NeuronModel
from spikeport.quantize.input_encoding import InputEncoding
from spikeport.quantize.semantics import Semantics


@dataclass(frozen=True, kw_only=True)
class BuildOptions:
    weight_bits: int
    mode: str
    shift_decays: bool
    rounding: str = "nearest"  # decays and biases: "nearest" or "min_drift" (:mod:`.drift`)
    drift_steps: int = drift.DEFAULT_STEPS  # the run length T of the drift measures
    fixed: QuantScales | None = None  # fixed scales, exponents and decays (:mod:`.fixed_scales`)


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


def _top(w: Any, opts: BuildOptions) -> float:
    if opts.mode == "shift":
        return 128.0
    vals = sl.entries(w)[2] if sl.is_sparse(w) else w  # zeros do not change the sign mode
    _, lo, hi = fixed.weight_grid(fixed.sign_mode(vals), opts.weight_bits)
    return float(hi if hi > 0 else -lo)


def group_scale(g: GroupPlan, bounds: Bounds, conns: Sequence[ConnPlan], opts: BuildOptions) -> Scale:
    ws = [
        sl.scale_rows(c.m, g.model.u_gain) / 64.0
        if sl.is_sparse(c.m)
        else g.model.u_gain[:, None] * c.m / 64.0
        for c in conns
        if c.target == g.name
    ]
    peaks = [(sl.row_abs_max(w), _top(w, opts)) for w in ws]
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


def _decays(
    name: str, m: NeuronModel, opts: BuildOptions, amplitude: float
) -> tuple[float, float, float, float, drift.DecayChoice, drift.DecayChoice | None]:
    """(du, dv) integer and (du, dv) real for the twin, and the drift figures of dv and du."""
    kw: dict[str, Any] = dict(
        amplitude=amplitude, steps=opts.drift_steps, shift=opts.shift_decays, rounding=opts.rounding
    )
    fixed_rec = None if opts.fixed is None else opts.fixed.groups[name]
    du_choice = None
    if m.alpha_u is None:
        du, du_real = float(bits.DECAY_MAX), float(bits.DECAY_MAX)
    else:
        a = float(np.mean(m.alpha_u))
        du = float(fixed.du_from_alpha(a))
        if opts.shift_decays:
            du = float(np.clip(fixed.decay_to_shift(du + 1) - 1, 0, bits.DECAY_MAX))
        du_choice = _fixed_decay(drift.choose_decay(a, int(du), field="u", **kw), fixed_rec, "u", a, kw)
        du = float(du_choice.value)
        du_real = float(np.clip(a * bits.DECAY_UNITY - 1, 0, bits.DECAY_MAX))
    a = float(np.mean(m.alpha_v))
    dv = float(fixed.dv_from_alpha(a))
    if opts.shift_decays:
        dv = float(fixed.decay_to_shift(dv))
    dv_choice = _fixed_decay(drift.choose_decay(a, int(dv), field="v", **kw), fixed_rec, "v", a, kw)
    dv_real = float(np.clip(a * bits.DECAY_UNITY, 0, bits.DECAY_MAX))
    return du, float(dv_choice.value), du_real, dv_real, dv_choice, du_choice


def _fixed_decay(
    c: drift.DecayChoice, rec: Any, field: str, alpha: float, kw: dict[str, Any]
) -> drift.DecayChoice:
    """The decay a fixed-scales record gives (with its drift error), else ``c``."""
    if rec is None:
        return c
    value = int(rec.du if field == "u" else rec.dv)
    d_eff = value + (bits.DU_OFFSET if field == "u" else 0)
    err = drift.decay_error(d_eff, alpha, kw["amplitude"], kw["steps"])
    return drift.DecayChoice(value=value, nearest=c.nearest, error=err, error_nearest=c.error_nearest)


@dataclass(frozen=True, kw_only=True)
class Parts:
    """What the report needs besides the records: float weights/biases next to quantized ones."""

    weights: dict[str, tuple[np.ndarray, fixed.QuantizedWeights]]
    biases: dict[str, tuple[np.ndarray, np.ndarray, int]]  # group -> (float, quantized, n saturated)
    drift: dict[str, GroupDrift] = field(default_factory=dict)  # group -> decay and bias rounding


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
    groups, twins, biases, drifts = _group_records(plan, scales, opts)
    if any(c.source == BIAS_UNIT for c in conns):
        unit = _bias_unit()
        groups.insert(0, unit)
        twins.insert(0, unit)
    cs, ts, weights = _connection_records(plan, conns, scales, opts)
    meta = _metadata(plan, scales, enc, opts, sem, target)
    net = Network(inputs=inputs, groups=tuple(groups), connections=tuple(cs), metadata=meta)
    twin = Network(inputs=inputs, groups=tuple(twins), connections=tuple(ts), metadata={**meta, "twin": True})
    return net, twin, Parts(weights=weights, biases=biases, drift=drifts)


def _group_records(
    plan: Plan, scales: Mapping[str, Scale], opts: BuildOptions
) -> tuple[
    list[LIFGroup], list[LIFGroup], dict[str, tuple[np.ndarray, np.ndarray, int]], dict[str, GroupDrift]
]:
    """One integer LIF group and its float twin per planned group, plus the float/quantized biases
    and the drift figures of the decays and biases."""
    groups, twins, biases, drifts = [], [], {}, {}
    for g in plan.groups:
        sc, m = scales[g.name], g.model
        du, dv, du_r, dv_r, dv_c, du_c = _decays(g.name, m, opts, float(sc.vth << bits.VTH_SHIFT))
        b = sc.scale * _bias(g)
        mant, exp, nsat, b_c = _bias_mantissas(g, b, sc, opts, dv)
        drifts[g.name] = drift.group_drift(opts.rounding, opts.drift_steps, dv_c, du_c, b_c)
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
            max_spikes=max_spikes(g.sem) if m.spiking else 1,
        )
        groups.append(LIFGroup(du=du, dv=dv, bias_mant=mant, v0=np.rint(v0), **common))
        real_mant = np.clip(b / 2.0**exp, bits.BIAS_MANT_MIN, bits.BIAS_MANT_MAX)
        twins.append(LIFGroup(du=du_r, dv=dv_r, bias_mant=real_mant, v0=v0_r, **common))
    return groups, twins, biases, drifts


def _bias_mantissas(
    g: GroupPlan, b: np.ndarray, sc: Scale, opts: BuildOptions, dv: float
) -> tuple[np.ndarray, np.ndarray, int, drift.BiasChoice]:
    """``(mant, exp, n_saturated, choice)``: nearest rounding (at the fixed scales' exponents when
    given), then :func:`~.drift.choose_bias` under ``opts.rounding``."""
    mant, exp, nsat = fixed.quantize_bias(b)
    if opts.fixed is not None:
        exp = np.asarray(opts.fixed.groups[g.name].bias_exp, np.int64)
        ideal = np.rint(b / 2.0**exp)
        mant = np.clip(ideal, bits.BIAS_MANT_MIN, bits.BIAS_MANT_MAX).astype(np.int64)
        nsat = int(np.count_nonzero(mant != ideal))
    m = g.model
    choice = drift.choose_bias(
        b,
        mant,
        exp,
        dv=int(dv),
        alpha=float(np.mean(m.alpha_v)),
        thr=float(sc.vth << bits.VTH_SHIFT) if m.spiking else None,
        reset="subtract" if m.spiking and g.sem.reset == "subtract" else "zero",
        steps=opts.drift_steps,
        rounding=opts.rounding,
        max_spikes=max_spikes(g.sem) if m.spiking else 1,
    )
    return choice.mant, exp, nsat, choice


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
        if sl.is_sparse(c.m):  # the entries only, in the dense formula's order of operations
            rows, cols, vals = sl.entries(c.m)
            w = sc.scale[rows] * m.u_gain[rows] * vals / 64.0
        else:
            w = sc.scale[:, None] * m.u_gain[:, None] * c.m / 64.0
        q = _quantized(c.name, w, opts)
        weights[c.name] = (w, q)
        if sl.is_sparse(c.m):
            cs_c, ts_c = _sparse_records(c, rows, cols, w, q, opts)
            cs.append(cs_c)
            ts.append(ts_c)
            continue
        delays = np.full(w.shape, c.delay) if c.delay else None
        sparse = bool(w.size >= 4096 and np.count_nonzero(c.m) < 0.2 * w.size)
        common_c = {**_connection_fields(c, q, opts), "delays": delays, "sparse": sparse}
        cs.append(Connection(weights=q.mant, shift=opts.mode == "shift", **common_c))
        ts.append(Connection(weights=np.clip(w / 2.0**q.exp, bits.WEIGHT_MIN, bits.WEIGHT_MAX), **common_c))
    return cs, ts, weights


def _connection_fields(c: ConnPlan, q: fixed.QuantizedWeights, opts: BuildOptions) -> dict[str, Any]:
    """What the integer connection of ``c`` and its float twin share."""
    return dict(
        name=c.name,
        source=c.source,
        target=c.target,
        weight_exp=q.exp,
        num_weight_bits=opts.weight_bits,
        num_message_bits=c.num_message_bits,
    )


def _sparse_records(
    c: ConnPlan,
    rows: np.ndarray,
    cols: np.ndarray,
    w: np.ndarray,
    q: fixed.QuantizedWeights,
    opts: BuildOptions,
) -> tuple[Connection, Connection]:
    """The integer connection and its float twin of a sparse path matrix (``w``: its non-zero
    entries at ``rows, cols``), held sparse (:class:`SparseWeights`). A delayed one is made dense
    (sparse weights take no delays; refused above the dense limit)."""
    shape = c.m.shape
    mant = SparseWeights.from_coo(rows, cols, q.mant, shape)
    twin = SparseWeights.from_coo(
        rows, cols, np.clip(w / 2.0**q.exp, bits.WEIGHT_MIN, bits.WEIGHT_MAX), shape
    )
    common = _connection_fields(c, q, opts)
    if c.delay:
        where = f"Connection({c.name!r}).weights"
        delays = np.full(shape, c.delay)
        return (
            Connection(
                weights=mant.to_dense(where=where),
                delays=delays,
                sparse=True,
                shift=opts.mode == "shift",
                **common,
            ),
            Connection(weights=twin.to_dense(where=where), delays=delays, sparse=True, **common),
        )
    return Connection(weights=mant, shift=opts.mode == "shift", **common), Connection(weights=twin, **common)


def _quantized(name: str, w: np.ndarray, opts: BuildOptions) -> fixed.QuantizedWeights:
    """The connection's mantissas and exponent (the fixed scales' exponent when given)."""
    if opts.fixed is not None:
        return fixed.quantize_weights_at(w, opts.fixed.weight_exps[name], opts.mode, opts.weight_bits)
    if opts.mode == "shift":
        return fixed.quantize_weights_pow2(w, opts.weight_bits)
    return fixed.quantize_weights(w, opts.weight_bits)


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
            "rounding": opts.rounding,
            "drift_steps": opts.drift_steps,
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
