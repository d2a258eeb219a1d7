"""What quantization did, per connection and per neuron group, and what to worry about.

Every record is frozen and JSON-serializable through :meth:`QuantReport.to_dict`. Warnings carry a
stable ``code`` (one of :data:`WARNING_CODES`), the object they concern and a sentence for people.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

#: every warning the quantizer can raise, with what triggers it
WARNING_CODES: dict[str, str] = {
    "no_leak": "a decay rounded to 0: the state no longer leaks (tau > ~8192 dt)",
    "full_reset": "a decay rounded to 4096: the state is forgotten every step (tau < ~dt)",
    "threshold_saturates": "the threshold mantissa was clipped to [1, 2**17 - 1]",
    "bias_saturates": "a bias needed more than 13-bit mantissa << 10",
    "weights_saturate": "weights were clipped at the largest mantissa * 2**7",
    "weights_lost": "non-zero float weights became zero mantissas (truncation / underflow)",
    "overflow_risk": "a static worst-case bound on a_in, u or v exceeds its bit width",
    "silent_layer": "a spiking group emitted no spike in the calibration run",
    "saturated_layer": "a spiking group fired on >= 95% of steps in the calibration run",
    "approximation": "a NIR feature mapped only approximately (see the message)",
    "timing": "a recurrent edge cannot get its exact delay in the emulator",
}


@dataclass(frozen=True, kw_only=True)
class QuantWarning:
    code: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"[{self.code}] {self.where}: {self.message}"


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


@dataclass(frozen=True, kw_only=True)
class QuantReport:
    mode: str
    weight_bits: int
    target: str
    semantics: dict[str, Any]
    groups: tuple[GroupReport, ...]
    connections: tuple[ConnectionReport, ...]
    warnings: tuple[QuantWarning, ...] = field(default_factory=tuple)

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
        for c in self.connections:
            lines.append(
                f"  conn  {c.name:<16} exp={c.weight_exp:+d} {c.sign_mode:<10} rms err "
                f"{c.weight_rms_rel_error:.3%} max err {c.weight_max_rel_error:.3%} "
                f"zeroed {c.zero_fraction:.1%}"
            )
        lines += [f"  warning {w}" for w in self.warnings]
        return "\n".join(lines)


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


def _headroom(bounds: Any, scale: np.ndarray, spiking: bool) -> dict[str, float]:
    from spikeport.quantize import calibrate as cal
    from spikeport.quantize.fixed_point import headroom_bits

    v_lim = cal.V_LIM_SPIKING if spiking else cal.V_LIM_READOUT
    return {
        "a_in": headroom_bits(float(np.max(scale * bounds.a_in, initial=0)), cal.STATE_LIM),
        "u": headroom_bits(float(np.max(scale * bounds.u, initial=0)), cal.STATE_LIM),
        "v": headroom_bits(float(np.max(scale * bounds.v, initial=0)), v_lim),
    }


def build_report(
    *,
    plan: Any,
    conns: Any,
    parts: Any,
    bounds: Any,
    scales: Any,
    net: Any,
    sem: Any,
    mode: str,
    weight_bits: int,
    target: str,
    warnings: list[QuantWarning],
    rates: Any,
) -> QuantReport:
    """Per-group and per-connection figures and every warning (see :data:`WARNING_CODES`)."""
    from spikeport.quantize import fixed_point as fixed
    from spikeport.quantize.calibrate import static_bounds

    warns = list(warnings)
    groups = []
    recs = {g.name: g for g in net.groups}
    for g in plan.groups:
        m, sc, rec = g.model, scales[g.name], recs[g.name]
        dt, integ = g.sem.dt, g.sem.integration
        if m.alpha_v.size and float(np.max(m.alpha_v)) > 0 and m.kind != "Readout":
            a = float(np.mean(m.alpha_v))
            if rec.dv == 0:
                warns.append(
                    QuantWarning(
                        code="no_leak",
                        where=g.name,
                        message=f"dv = round(4096 * {a:.3g}) = 0: v no longer leaks",
                    )
                )
            if a * 4096 >= 4095.5:
                warns.append(
                    QuantWarning(
                        code="full_reset",
                        where=g.name,
                        message=f"dv = 4096 * {a:.3g} clamps to 4095: v is forgotten every step",
                    )
                )
        if m.alpha_u is not None:
            a = float(np.mean(m.alpha_u))
            if round(a * 4096) < 1:
                warns.append(
                    QuantWarning(
                        code="no_leak",
                        where=g.name,
                        message=f"du + 1 = round(4096 * {a:.3g}) = 0 clamps to 1: the synaptic current "
                        f"barely decays (tau_syn ~ 4096 dt)",
                    )
                )
            if a * 4096 >= 4095.5:
                warns.append(
                    QuantWarning(
                        code="full_reset",
                        where=g.name,
                        message="du = 4095: the synaptic current is forgotten every step "
                        "(the neuron acts as a LIF)",
                    )
                )
        if sc.clamped:
            warns.append(
                QuantWarning(
                    code="threshold_saturates",
                    where=g.name,
                    message=f"the scale needs vth = {sc.ideal:.3g} < 1; vth clamped to 1 (weights/bias "
                    f"saturate instead)",
                )
            )
        b_float, b_q, nsat = parts.biases[g.name]
        if nsat:
            warns.append(
                QuantWarning(
                    code="bias_saturates", where=g.name, message=f"{nsat} bias value(s) exceed 4095 << 10"
                )
            )
        stat = (
            static_bounds(
                u_gain=m.u_gain,
                alpha_u=m.alpha_u,
                alpha_v=m.alpha_v,
                threshold=m.threshold,
                bias=g.bias,
                inputs=[(c.m, c.xmax) for c in conns if c.target == g.name],
            )
            if bounds[g.name].source != "static"
            else bounds[g.name]
        )
        hr_static = _headroom(stat, sc.scale, m.spiking)
        bad = {k: v for k, v in hr_static.items() if v < 0}
        if bad:
            warns.append(
                QuantWarning(
                    code="overflow_risk",
                    where=g.name,
                    message="static worst case exceeds the bit width by "
                    + ", ".join(f"{k} {-v:.1f} bits" for k, v in bad.items()),
                )
            )
        tau_eff = (
            fixed.effective_tau(dt, fixed.alpha_from_dv(rec.dv), integ) if m.tau_mem is not None else None
        )
        tsyn_eff = (
            fixed.effective_tau(dt, fixed.alpha_from_du(rec.du), integ) if m.tau_syn is not None else None
        )
        bmax = float(np.max(np.abs(b_float), initial=0))
        rf = rx = None
        if rates is not None and m.spiking:
            rf, rx = rates[0][g.name].rate, rates[1][g.name].rate
            if rx == 0:
                warns.append(
                    QuantWarning(
                        code="silent_layer",
                        where=g.name,
                        message=f"no spike in the fixed-point calibration run (float twin rate {rf:.3g})",
                    )
                )
            elif rx is not None and rx >= 0.95:
                warns.append(
                    QuantWarning(
                        code="saturated_layer",
                        where=g.name,
                        message=f"fires on {rx:.1%} of steps in the fixed-point calibration run (float "
                        f"twin {rf:.1%})",
                    )
                )
        groups.append(
            GroupReport(
                name=g.name,
                node=g.name,
                kind=m.kind,
                n=len(m.u_gain),
                spiking=m.spiking,
                lag=plan.lags[g.name],
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
                headroom_bits=_headroom(bounds[g.name], sc.scale, m.spiking),
                bound_source=bounds[g.name].source,
                rate_float=rf,
                rate_fixed=rx,
            )
        )
    connections = []
    for c in conns:
        w, q = parts.weights[c.name]
        wq = q.mant * 2.0**q.exp
        rms, mx, zf = weight_errors(w, wq)
        if q.saturated:
            warns.append(
                QuantWarning(
                    code="weights_saturate",
                    where=c.name,
                    message=f"{q.saturated} weight(s) clipped at the largest mantissa * 2**{q.exp}",
                )
            )
        if zf > 0.01:
            warns.append(
                QuantWarning(
                    code="weights_lost",
                    where=c.name,
                    message=f"{zf:.1%} of the non-zero weights became 0 (smallest step 2**{q.exp})",
                )
            )
        connections.append(
            ConnectionReport(
                name=c.name,
                source=c.source,
                target=c.target,
                weight_exp=q.exp,
                sign_mode=q.sign_mode,
                shift=mode == "shift",
                n_weights=int(w.size),
                n_nonzero_float=int(np.count_nonzero(w)),
                weight_rms_rel_error=rms,
                weight_max_rel_error=mx,
                zero_fraction=zf,
                saturated=q.saturated,
                delay_max=c.delay,
            )
        )
    return QuantReport(
        mode=mode,
        weight_bits=weight_bits,
        target=target,
        semantics=sem.to_dict(),
        groups=tuple(groups),
        connections=tuple(connections),
        warnings=tuple(warns),
    )
