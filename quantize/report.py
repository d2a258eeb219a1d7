"""What quantization did, per connection and per neuron group, and what to worry about.

Every record is frozen and JSON-serializable through :meth:`QuantReport.to_dict`. Warnings
(:class:`~spikeport.quantize.quant_warnings.QuantWarning`, re-exported here) carry a stable ``code``
(one of :data:`WARNING_CODES`), the object they concern and a sentence for people.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from spikeport.emulator.network import LIFGroup, Network
from spikeport.quantize import calibrate as cal
from spikeport.quantize import fixed_point as fixed
from spikeport.quantize.calibrate import Bounds, Observation, Scale, static_bounds
from spikeport.quantize.drift import GroupDrift
from spikeport.quantize.quant_warnings import WARNING_CODES as WARNING_CODES
from spikeport.quantize.quant_warnings import QuantWarning as QuantWarning

# the records build_report reads: for the type checker only, so that loading a report loads no nir
if TYPE_CHECKING:
    from spikeport.quantize.build_network import Parts
    from spikeport.quantize.graph.connection_plans import ConnPlan
    from spikeport.quantize.graph.group_plan import GroupPlan, Plan
    from spikeport.quantize.semantics import Semantics

#: (float twin, fixed point) observations of the calibration run, per group
Rates = tuple[Mapping[str, Observation], Mapping[str, Observation]]


@dataclass(frozen=True, kw_only=True)
class ConnectionReport:
    name: str
    source: str
    target: str
    weight_exp: int
    sign_mode: str
    shift: bool
    n_weights: int
    n_nonzero_float: int
    weight_rms_rel_error: float  # rms(Wq - W) / rms(W)
    weight_max_rel_error: float  # max|Wq - W| / max|W|
    zero_fraction: float  # non-zero float weights that became 0, as a fraction of the non-zero ones
    saturated: int
    delay_max: int


@dataclass(frozen=True, kw_only=True)
class GroupReport:
    name: str
    node: str
    kind: str
    n: int
    spiking: bool
    lag: int
    du: float
    dv: float
    tau_mem: float | None  # requested (mean over neurons), seconds
    tau_mem_effective: float | None
    tau_syn: float | None
    tau_syn_effective: float | None
    vth: int
    threshold_rel_error: float
    scale: float  # integer v units per float v unit (mean over neurons)
    bias_max_rel_error: float
    headroom_bits: dict[str, float]  # a_in / u / v: log2(limit / bound)
    bound_source: str  # "static" or "calibration"
    rate_float: float | None = None
    rate_fixed: float | None = None
    #: decays and biases: the rounding rule, chosen and nearest values and their drift errors
    #: (:class:`~spikeport.quantize.drift.GroupDrift`, measures in :mod:`spikeport.quantize.drift`)
    drift: GroupDrift | None = None


@dataclass(frozen=True, kw_only=True)
class QuantReport:
    mode: str
    weight_bits: int
    target: str
    semantics: dict[str, Any]
    groups: tuple[GroupReport, ...]
    connections: tuple[ConnectionReport, ...]
    warnings: tuple[QuantWarning, ...] = field(default_factory=tuple)
    #: post-training choices beyond the defaults, each with its error (quantize_pair's ``search`` and
    #: ``split``): ``{"exponent_search": [...], "weight_split": [...]}`` (:mod:`..search`, :mod:`..weight_split`)
    choices: dict[str, Any] = field(default_factory=dict)

    @property
    def codes(self) -> set[str]:
        return {w.code for w in self.warnings}

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))

    def to_json(self, **kw: Any) -> str:
        return json.dumps(self.to_dict(), **kw)

    def summary(self) -> str:
        """A few lines for a terminal."""
        lines = [f"quantized ({self.mode}, {self.weight_bits}-bit weights, target {self.target})"]
        for g in self.groups:
            hr = ", ".join(f"{k} {v:+.1f}" for k, v in g.headroom_bits.items())
            tau = ""
            if g.tau_mem is not None and g.tau_mem_effective is not None:
                tau = f" tau {g.tau_mem:.3g}->{g.tau_mem_effective:.3g}s"
            lines.append(
                f"  group {g.name:<16} n={g.n:<5} du={g.du:<5g} dv={g.dv:<5g} vth={g.vth:<6}{tau}"
                f" headroom[bits] {hr} ({g.bound_source})"
            )
            if g.drift is not None:
                lines.append(_drift_line(g.drift))
        for c in self.connections:
            lines.append(
                f"  conn  {c.name:<16} exp={c.weight_exp:+d} {c.sign_mode:<10} rms err "
                f"{c.weight_rms_rel_error:.3%} max err {c.weight_max_rel_error:.3%} "
                f"zeroed {c.zero_fraction:.1%}"
            )
        lines += [f"  warning {w}" for w in self.warnings]
        lines += [f"  choice  {k}: {len(v)} connection(s)" for k, v in self.choices.items() if v]
        return "\n".join(lines)


def _drift_line(d: GroupDrift) -> str:
    """The group's decay and bias rounding: chosen value, drift error (nearest value's in brackets)."""
    du = ""
    if d.du is not None:
        du = f" du={d.du} err {d.du_error:.2e} (nearest {d.du_nearest}: {d.du_error_nearest:.2e})"
    return (
        f"    {d.rounding} rounding over {d.steps} steps: dv={d.dv} err {d.dv_error:.2e} "
        f"(nearest {d.dv_nearest}: {d.dv_error_nearest:.2e}){du}; bias rate err {d.bias_rate_error:.3g} "
        f"(nearest {d.bias_rate_error_nearest:.3g}), v err {d.bias_v_error:.2e} "
        f"(nearest {d.bias_v_error_nearest:.2e}), {d.bias_changed} mantissa(s) moved"
    )


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    return x


def weight_errors(w: np.ndarray, wq: np.ndarray) -> tuple[float, float, float]:
    """``(rms relative error, max relative error, fraction of non-zero weights zeroed)``."""
    w = np.asarray(w, dtype=np.float64)
    wq = np.asarray(wq, dtype=np.float64)
    rms = float(np.sqrt(np.mean(w**2))) if w.size else 0.0
    mx = float(np.max(np.abs(w), initial=0.0))
    err = wq - w
    nz = w != 0
    return (
        float(np.sqrt(np.mean(err**2))) / rms if rms else 0.0,
        float(np.max(np.abs(err), initial=0.0)) / mx if mx else 0.0,
        float(np.count_nonzero(nz & (wq == 0))) / max(int(np.count_nonzero(nz)), 1),
    )


# ------------------------------------------------------------------------------------ building


def _mean_or_none(x: np.ndarray | None) -> float | None:
    return None if x is None else float(np.mean(x))


def _headroom(bounds: Bounds, scale: np.ndarray, spiking: bool) -> dict[str, float]:
    v_lim = cal.V_LIM_SPIKING if spiking else cal.V_LIM_READOUT
    return {
        "a_in": fixed.headroom_bits(float(np.max(scale * bounds.a_in, initial=0)), cal.STATE_LIM),
        "u": fixed.headroom_bits(float(np.max(scale * bounds.u, initial=0)), cal.STATE_LIM),
        "v": fixed.headroom_bits(float(np.max(scale * bounds.v, initial=0)), v_lim),
    }


def _warn(code: str, where: str, message: str) -> QuantWarning:
    return QuantWarning(code=code, where=where, message=message)


def _decay_warnings(g: GroupPlan, rec: LIFGroup) -> list[QuantWarning]:
    """``no_leak`` / ``full_reset``: v's and u's decays that rounded to no leak or to forgetting."""
    m, out = g.model, []
    if m.alpha_v.size and float(np.max(m.alpha_v)) > 0 and m.kind != "Readout":
        a = float(np.mean(m.alpha_v))
        if rec.dv == 0:
            out.append(_warn("no_leak", g.name, f"dv = round(4096 * {a:.3g}) = 0: v no longer leaks"))
        if a * 4096 >= 4095.5:
            msg = f"dv = 4096 * {a:.3g} clamps to 4095: v is forgotten every step"
            out.append(_warn("full_reset", g.name, msg))
    if m.alpha_u is not None:
        a = float(np.mean(m.alpha_u))
        if round(a * 4096) < 1:
            msg = (
                f"du + 1 = round(4096 * {a:.3g}) = 0 clamps to 1: the synaptic current "
                f"barely decays (tau_syn ~ 4096 dt)"
            )
            out.append(_warn("no_leak", g.name, msg))
        if a * 4096 >= 4095.5:
            msg = "du = 4095: the synaptic current is forgotten every step (the neuron acts as a LIF)"
            out.append(_warn("full_reset", g.name, msg))
    return out


def _saturation_warnings(g: GroupPlan, sc: Scale, parts: Parts) -> list[QuantWarning]:
    """``threshold_saturates`` (vth clamped to 1) and ``bias_saturates``."""
    out = []
    if sc.clamped:
        msg = f"the scale needs vth = {sc.ideal:.3g} < 1; vth clamped to 1 (weights/bias saturate instead)"
        out.append(_warn("threshold_saturates", g.name, msg))
    nsat = parts.biases[g.name][2]
    if nsat:
        out.append(_warn("bias_saturates", g.name, f"{nsat} bias value(s) exceed 4095 << 10"))
    return out


def _overflow_warnings(
    g: GroupPlan, conns: Sequence[ConnPlan], bound: Bounds, sc: Scale
) -> list[QuantWarning]:
    """``overflow_risk``: the static worst case (even when the scale came from calibration) overflows."""
    m = g.model
    stat = bound
    if bound.source != "static":
        stat = static_bounds(
            u_gain=m.u_gain,
            alpha_u=m.alpha_u,
            alpha_v=m.alpha_v,
            threshold=m.threshold,
            bias=g.bias,
            inputs=[(c.m, c.xmax) for c in conns if c.target == g.name],
        )
    bad = {k: v for k, v in _headroom(stat, sc.scale, m.spiking).items() if v < 0}
    if not bad:
        return []
    by = ", ".join(f"{k} {-v:.1f} bits" for k, v in bad.items())
    return [_warn("overflow_risk", g.name, f"static worst case exceeds the bit width by {by}")]


def _rates(g: GroupPlan, rates: Rates | None) -> tuple[float | None, float | None]:
    """(float twin, fixed point) firing rates of a spiking group in the calibration run."""
    if rates is None or not g.model.spiking:
        return None, None
    return rates[0][g.name].rate, rates[1][g.name].rate


def _activity_warnings(name: str, rf: float | None, rx: float | None) -> list[QuantWarning]:
    """``silent_layer`` / ``saturated_layer`` from the fixed-point calibration run."""
    if rx == 0:
        msg = f"no spike in the fixed-point calibration run (float twin rate {rf:.3g})"
        return [_warn("silent_layer", name, msg)]
    if rx is not None and rx >= 0.95:
        msg = f"fires on {rx:.1%} of steps in the fixed-point calibration run (float twin {rf:.1%})"
        return [_warn("saturated_layer", name, msg)]
    return []


def _group_report(
    g: GroupPlan, rec: LIFGroup, sc: Scale, bound: Bounds, *, lag: int, parts: Parts, rates: Rates | None
) -> GroupReport:
    m = g.model
    dt, integ = g.sem.dt, g.sem.integration
    tau_eff = fixed.effective_tau(dt, fixed.alpha_from_dv(rec.dv), integ) if m.tau_mem is not None else None
    tsyn_eff = fixed.effective_tau(dt, fixed.alpha_from_du(rec.du), integ) if m.tau_syn is not None else None
    b_float, b_q, _ = parts.biases[g.name]
    bmax = float(np.max(np.abs(b_float), initial=0))
    rf, rx = _rates(g, rates)
    return GroupReport(
        name=g.name,
        node=g.name,
        kind=m.kind,
        n=len(m.u_gain),
        spiking=m.spiking,
        lag=lag,
        du=float(rec.du),
        dv=float(rec.dv),
        tau_mem=_mean_or_none(m.tau_mem),
        tau_mem_effective=_mean_or_none(tau_eff),
        tau_syn=_mean_or_none(m.tau_syn),
        tau_syn_effective=_mean_or_none(tsyn_eff),
        vth=int(rec.vth),
        threshold_rel_error=(1.0 / sc.ideal - 1.0) if sc.clamped else 0.0,
        scale=float(np.mean(sc.scale)),
        bias_max_rel_error=float(np.max(np.abs(b_q - b_float), initial=0)) / bmax if bmax else 0.0,
        headroom_bits=_headroom(bound, sc.scale, m.spiking),
        bound_source=bound.source,
        rate_float=rf,
        rate_fixed=rx,
        drift=parts.drift.get(g.name),
    )


def _connection_report(c: ConnPlan, parts: Parts, mode: str) -> tuple[ConnectionReport, list[QuantWarning]]:
    """The figures of one connection, and its ``weights_saturate`` / ``weights_lost`` warnings."""
    w, q = parts.weights[c.name]
    rms, mx, zf = weight_errors(w, q.mant * 2.0**q.exp)
    warns = []
    if q.saturated:
        msg = f"{q.saturated} weight(s) clipped at the largest mantissa * 2**{q.exp}"
        warns.append(_warn("weights_saturate", c.name, msg))
    if zf > 0.01:
        msg = f"{zf:.1%} of the non-zero weights became 0 (smallest step 2**{q.exp})"
        warns.append(_warn("weights_lost", c.name, msg))
    rep = ConnectionReport(
        name=c.name,
        source=c.source,
        target=c.target,
        weight_exp=q.exp,
        sign_mode=q.sign_mode,
        shift=mode == "shift",
        n_weights=int(c.m.shape[0] * c.m.shape[1]),  # w: the non-zero entries only when sparse
        n_nonzero_float=int(np.count_nonzero(w)),
        weight_rms_rel_error=rms,
        weight_max_rel_error=mx,
        zero_fraction=zf,
        saturated=q.saturated,
        delay_max=c.delay,
    )
    return rep, warns


def build_report(
    *,
    plan: Plan,
    conns: Sequence[ConnPlan],
    parts: Parts,
    bounds: Mapping[str, Bounds],
    scales: Mapping[str, Scale],
    net: Network,
    sem: Semantics,
    mode: str,
    weight_bits: int,
    target: str,
    warnings: Sequence[QuantWarning],
    rates: Rates | None,
) -> QuantReport:
    """Per-group and per-connection figures and every warning (see :data:`WARNING_CODES`)."""
    warns = list(warnings)
    recs = {g.name: g for g in net.groups if isinstance(g, LIFGroup)}
    groups = []
    for g in plan.groups:
        rec, sc, bound = recs[g.name], scales[g.name], bounds[g.name]
        rep = _group_report(g, rec, sc, bound, lag=plan.lags[g.name], parts=parts, rates=rates)
        warns += _decay_warnings(g, rec)
        warns += _saturation_warnings(g, sc, parts)
        warns += _overflow_warnings(g, conns, bound, sc)
        warns += _activity_warnings(g.name, rep.rate_float, rep.rate_fixed)
        groups.append(rep)
    connections = []
    for c in conns:
        crep, cwarns = _connection_report(c, parts, mode)
        connections.append(crep)
        warns += cwarns
    return QuantReport(
        mode=mode,
        weight_bits=weight_bits,
        target=target,
        semantics=sem.to_dict(),
        groups=tuple(groups),
        connections=tuple(connections),
        warnings=tuple(warns),
    )
