"""Connection plans: every composed path into a group becomes one connection (float matrix, delay,
message width), plus the bias unit's connections and the delayed-subtract-reset correction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from spikeport.emulator import bits
from spikeport.emulator.errors import UnsupportedError
from spikeport.quantize.graph import sparse_linear as sl
from spikeport.quantize.graph.group_plan import (
    BIAS_UNIT,
    DELAYED_RESET_TIMINGS,
    GroupPlan,
    Plan,
    max_spikes,
)
from spikeport.quantize.input_encoding import InputEncoding
from spikeport.quantize.quant_warnings import QuantWarning
from spikeport.quantize.semantics import Semantics


@dataclass(frozen=True, kw_only=True)
class ConnPlan:
    name: str
    source: str
    target: str
    m: Any  # (n_target, n_source): float input x per unit the source emits (dense, or CSR: .sparse_linear)
    xmax: np.ndarray  # largest unit the source emits, per channel
    delay: int
    recurrent: bool
    num_message_bits: int


def connection_plans(
    plan: Plan, enc: Mapping[str, InputEncoding], sem: Semantics
) -> tuple[list[ConnPlan], list[QuantWarning]]:
    """Per group in plan order: one connection per composed path (in path order), then the bias
    unit's connection, then the delayed-subtract-reset correction; plus timing warnings."""
    spiking = {g.name: g.model.spiking for g in plan.groups}
    conns: list[ConnPlan] = []
    warns: list[QuantWarning] = []
    for g in plan.groups:
        per_src: dict[str, int] = {}
        for src, _, _ in g.inputs.paths:
            per_src[src] = per_src.get(src, 0) + 1
        for (src, d, rec), m in g.inputs.paths.items():
            if sl.nnz(m) == 0:
                continue
            amp, xmax, nmb = _source_units(src, g.name, enc, spiking, sem)
            delay = _path_delay(plan, src, g.name, d + (sem.recurrent_delay if rec else 0), warns)
            name = f"{src}->{g.name}" + (f"@{d}{'r' if rec else ''}" if per_src[src] > 1 else "")
            conns.append(
                ConnPlan(
                    name=name,
                    source=src,
                    target=g.name,
                    m=m * amp,
                    xmax=np.full(m.shape[1], xmax),
                    delay=delay,
                    recurrent=rec,
                    num_message_bits=nmb,
                )
            )
        if g.unit_bias is not None:
            conns.append(_bias_unit(g, plan))
        if _needs_reset_correction(g):
            conns.append(_reset_correction(g))
    return conns, warns


def _source_units(
    src: str, target: str, enc: Mapping[str, InputEncoding], spiking: Mapping[str, bool], sem: Semantics
) -> tuple[float, float, int]:
    """(float amplitude per emitted unit, largest unit, num_message_bits) of what ``src`` sends."""
    if src in enc:
        e = enc[src]
        return (1.0 / e.scale, 127.0, 8) if e.num_message_bits else (1.0, 1.0, 0)
    if spiking.get(src):
        s = sem.for_node(src)
        k = max_spikes(s)  # a multi-spike source sends k <= max_spikes as a graded payload
        return s.spike_amplitude, float(k), (k.bit_length() if k > 1 else 0)
    raise UnsupportedError(
        f"{src} -> {target}: a non-spiking node's state cannot feed another node on "
        f"Loihi-style hardware; only spiking nodes and inputs can be sources"
    )


def _path_delay(plan: Plan, src: str, target: str, float_delay: int, warns: list[QuantWarning]) -> int:
    """The emulator delay of a path (see :func:`~.group_plan.group_lags`); a negative one is clamped
    to 0 with a ``timing`` warning appended to ``warns``, one beyond the hardware's refused."""
    delay = float_delay + plan.lags[target] - plan.lags[src] - 1
    if delay < 0:
        warns.append(
            QuantWarning(
                code="timing",
                where=f"{src}->{target}",
                message=f"recurrent path needs delay {delay} < 0 in the emulator; clamped to 0 "
                f"(the loop runs {-delay} step(s) slower than the float run)",
            )
        )
        delay = 0
    if delay > bits.DELAY_MAX:
        raise UnsupportedError(
            f"{src} -> {target}: needs a synaptic delay of {delay} steps; "
            f"the emulator supports 0..{bits.DELAY_MAX}"
        )
    return delay


def _bias_unit(g: GroupPlan, plan: Plan) -> ConnPlan:
    """The always-firing bias unit into ``g``'s synaptic current, aligned to ``g``'s first step."""
    assert g.unit_bias is not None
    return ConnPlan(
        name=f"{BIAS_UNIT}->{g.name}",
        source=BIAS_UNIT,
        target=g.name,
        m=g.unit_bias[:, None],
        xmax=np.ones(1),
        delay=max(plan.lags[g.name] - 1, 0),
        recurrent=False,
        num_message_bits=0,
    )


def _needs_reset_correction(g: GroupPlan) -> bool:
    return bool(
        g.model.spiking
        and g.sem.reset == "subtract"
        and g.sem.reset_timing in DELAYED_RESET_TIMINGS
        and g.model.alpha_u is None
        and np.any(g.model.alpha_v > 0)
    )


def _reset_correction(g: GroupPlan) -> ConnPlan:
    """snnTorch's delayed subtract reset, ``v[t+1] = (1 - a) v[t] + x - thr s[t]``, made exact for a
    group without current state: the emulator subtracts at once, so the decay also shrinks the
    subtracted threshold, ``(1 - a)(v[t] - thr s[t]) + x``; a one-step self-connection adds the
    missing ``-a thr s[t]`` (a = alpha_v)."""
    m = g.model
    assert m.threshold is not None
    corr = sl.diagonal(-m.alpha_v * m.threshold / m.u_gain)
    n = len(m.u_gain)
    k = max_spikes(g.sem)  # multi-spike: the correction scales with the k spikes sent
    return ConnPlan(
        name=f"{g.name}->{g.name}~reset",
        source=g.name,
        target=g.name,
        m=corr,
        xmax=np.full(n, float(k)),
        delay=0,
        recurrent=True,
        num_message_bits=k.bit_length() if k > 1 else 0,
    )
