"""Per-group step functions of the dense engine: a registry ``(group type, mode) -> GroupModel``.

A step takes the group's state (a :class:`LIFState` or :class:`~.kernels.SigmaDeltaState` of ``(B, n)``
arrays), the summed synaptic input ``a_in`` and the
1-based time step; it returns the new state and the message the group sends (``(B, n)``: 0/1 spikes,
-1/0/+1 ternary spikes or sigma-delta payloads). The fixed-point steps call :mod:`.kernels`; the float
steps do the same operations in real arithmetic:

- decay ``x * (1 - d / 4096)`` (u uses ``du + 1`` as in fixed point), shifts ``x * 2**k``,
  ``a_in << 6`` is ``a_in * 64``, threshold ``vth * 64``, no wrap, clip or rounding;
- sigma-delta: ``vth`` and ``bias`` scaled by ``2**(spike_exp + state_exp)``, ``s >> state_exp`` is
  ``s / 2**state_exp``.

spikeport extensions (both modes): ``reset="subtract"`` sets ``v <- v - k (vth << 6)`` after k spikes
(k = 1, or up to ``max_spikes`` for a multi-spike group: see LIFGroup);
``refractory = R > 0``: after a spike at step t, during steps t+1 .. t+R the neuron cannot spike and v
is frozen at its post-reset value (u still integrates), as Lava's float ``LIFRefractory`` does with v;
a LIFReset reset does not end a refractory period.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, TypeAlias

import numpy as np
from spikeport.emulator import bits, kernels
from spikeport.emulator.errors import UnsupportedError
from spikeport.emulator.kernels import Guard, SigmaDeltaState
from spikeport.emulator.network import LIFGroup, SigmaDeltaGroup, TernaryLIFGroup
from spikeport.emulator.psn import (
    PSN_VARIABLES,
    PSNGroup,
    PSNState,
    psn_init_fixed,
    psn_init_float,
    psn_step_fixed,
    psn_step_float,
)


class LIFState(NamedTuple):
    """State of a LIF-family group, ``(B, n)`` arrays: current, voltage, refractory steps left."""

    u: np.ndarray
    v: np.ndarray
    refractory: np.ndarray


State: TypeAlias = LIFState | SigmaDeltaState | PSNState
StepFn = Callable[..., tuple[State, np.ndarray]]
InitFn = Callable[..., State]

LIF_VARIABLES = ("spikes", "u", "v", "a_in")
SD_VARIABLES = ("spikes", "sigma", "act", "residue", "error", "a_in")


@dataclass(frozen=True, kw_only=True)
class GroupModel:
    """How one group type runs in one mode: state init, step, recordable variables."""

    init: InitFn
    step: StepFn
    variables: tuple[str, ...]


# ---------------------------------------------------------------- LIF family


def _lif_init(g: LIFGroup, batch: int, dtype: type) -> LIFState:
    n = int(g.n)
    return LIFState(
        u=np.broadcast_to(np.asarray(g.u0, dtype), (batch, n)).copy(),
        v=np.broadcast_to(np.asarray(g.v0, dtype), (batch, n)).copy(),
        refractory=np.zeros((batch, n), np.int64),
    )


def _threshold(vth: float, fixed: bool) -> int | float:
    """``vth << 6`` (fixed) or ``vth * 2**6`` (float)."""
    return (int(vth) << bits.VTH_SHIFT) if fixed else vth * float(1 << bits.VTH_SHIFT)


def _lif_spike(g: LIFGroup, v: np.ndarray, fixed: bool) -> np.ndarray:
    if isinstance(g, TernaryLIFGroup):
        if fixed:
            return kernels.ternary_spikes(v, int(g.vth), int(g.vth_lo))
        hi, lo = _threshold(g.vth, False), _threshold(g.vth_lo, False)
        return (v > hi).astype(np.int64) - (v < lo).astype(np.int64)
    if g.max_spikes > 1:
        return _multi_spikes(g, v, fixed)
    if fixed:
        return kernels.lif_spikes(v, int(g.vth))
    return (v > _threshold(g.vth, False)).astype(np.int64)


def _multi_spikes(g: LIFGroup, v: np.ndarray, fixed: bool) -> np.ndarray:
    """``k = min(max_spikes, v // th) if v > th else 0`` (float: ``floor(v / th)``; see LIFGroup)."""
    if fixed:
        return kernels.lif_multi_spikes(v, int(g.vth), int(g.max_spikes))
    th = _threshold(g.vth, False)
    if th <= 0:
        return np.where(v > th, float(g.max_spikes), 0.0)
    return np.where(v > th, np.minimum(np.floor(v / th), float(g.max_spikes)), 0.0)


def _lif_finish(
    g: LIFGroup, st: LIFState, u: np.ndarray, v_new: np.ndarray, fixed: bool
) -> tuple[LIFState, np.ndarray]:
    ref = st.refractory
    frozen = ref > 0
    v = np.where(frozen, st.v, v_new) if g.refractory else v_new
    s = _lif_spike(g, v, fixed)
    if g.refractory:
        s = np.where(frozen, 0, s)
    fired = s != 0
    if g.reset == "subtract":
        v = np.where(fired, v - s * _threshold(g.vth, fixed), v)
    else:
        v = np.where(fired, 0, v)
    if g.refractory:
        ref = np.where(fired, int(g.refractory), np.where(frozen, ref - 1, 0))
    return LIFState(u=u, v=v, refractory=ref), s


def _lif_reset(g: LIFGroup, st: LIFState, t: int) -> LIFState:
    if kernels.lif_reset_due(t, int(g.reset_interval), int(g.reset_offset)):
        return st._replace(u=np.zeros_like(st.u), v=np.zeros_like(st.v))
    return st


def lif_init_fixed(g: LIFGroup, batch: int) -> LIFState:
    return _lif_init(g, batch, np.int64)


def lif_step_fixed(
    g: LIFGroup, st: LIFState, a_in: np.ndarray, t: int, guard: Guard = None
) -> tuple[LIFState, np.ndarray]:
    """Lava ``PyLifModelBitAcc`` / ``PyLifResetModelBitAcc`` / ``PyTernLifModelFixed`` (see kernels)."""
    st = _lif_reset(g, st, t)
    u = kernels.lif_current(st.u, a_in, int(g.du), guard)
    bias = kernels.effective_bias(g.bias_mant, g.bias_exp)
    v = kernels.lif_voltage(st.v, u, bias, int(g.dv), guard)
    return _lif_finish(g, st, u, v, True)


def lif_init_float(g: LIFGroup, batch: int) -> LIFState:
    return _lif_init(g, batch, np.float64)


def lif_step_float(
    g: LIFGroup, st: LIFState, a_in: np.ndarray, t: int, guard: Guard = None
) -> tuple[LIFState, np.ndarray]:
    """``u <- u (1 - (du + 1)/4096) + 64 a_in``; ``v <- v (1 - dv/4096) + u + bias_mant 2**bias_exp``."""
    st = _lif_reset(g, st, t)
    u = st.u * (1.0 - (g.du + bits.DU_OFFSET) / bits.DECAY_UNITY) + a_in * float(1 << bits.ACT_SHIFT)
    bias = np.asarray(g.bias_mant, np.float64) * np.exp2(np.asarray(g.bias_exp, np.float64))
    v = st.v * (1.0 - (g.dv + bits.DV_OFFSET) / bits.DECAY_UNITY) + u + bias
    return _lif_finish(g, st, u, v, False)


# ---------------------------------------------------------------- sigma-delta


def _sd_scale(g: SigmaDeltaGroup) -> int:
    return 1 << (int(g.spike_exp) + int(g.state_exp))


def _sd_init(g: SigmaDeltaGroup, batch: int, dtype: type) -> SigmaDeltaState:
    return SigmaDeltaState(*(np.zeros((batch, int(g.n)), dtype) for _ in SigmaDeltaState._fields))


def sd_init_fixed(g: SigmaDeltaGroup, batch: int) -> SigmaDeltaState:
    return _sd_init(g, batch, np.int64)


def sd_step_fixed(
    g: SigmaDeltaGroup, st: SigmaDeltaState, a_in: np.ndarray, t: int, guard: Guard = None
) -> tuple[SigmaDeltaState, np.ndarray]:
    """Lava ``PySigmaDeltaModelFixed`` (or PR #875's corrected model when ``g.corrected``)."""
    vth_raw = int(g.vth) * _sd_scale(g)
    vth = int(kernels.wrap32(np.array(vth_raw, np.int64)))
    bias_raw = np.asarray(g.bias, np.int64) * _sd_scale(g)
    bias = kernels.wrap32(bias_raw)
    if guard is not None:
        guard("vth", np.array([vth_raw]), np.array([vth]))
        guard("bias", bias_raw, bias)
    relu = g.act_mode == "relu"
    if g.corrected:
        return kernels.sigma_delta_corrected_step(
            st, a_in, vth=vth, bias=bias, relu=relu, state_exp=int(g.state_exp), guard=guard
        )
    return kernels.sigma_delta_step(
        st,
        a_in,
        vth=vth,
        bias=bias,
        relu=relu,
        cum_error=bool(g.cum_error),
        state_exp=int(g.state_exp),
        guard=guard,
    )


def sd_init_float(g: SigmaDeltaGroup, batch: int) -> SigmaDeltaState:
    return _sd_init(g, batch, np.float64)


def sd_step_float(
    g: SigmaDeltaGroup, st: SigmaDeltaState, a_in: np.ndarray, t: int, guard: Guard = None
) -> tuple[SigmaDeltaState, np.ndarray]:
    """The fixed-point step in real arithmetic (no wrap; the state shift is a division)."""
    scale = float(_sd_scale(g))
    vth = g.vth * scale
    sigma = st.sigma + a_in
    act_new = sigma + np.asarray(g.bias, np.float64) * scale
    if g.act_mode == "relu":
        act_new = np.maximum(act_new, 0.0)
    div = float(1 << int(g.state_exp))
    if g.corrected:
        delta = act_new - st.act
        s = np.where(np.abs(delta) >= vth, delta, 0.0)
        return st._replace(sigma=sigma, act=st.act + s), s / div
    delta = act_new - st.act + st.residue
    error = st.error
    if g.cum_error:
        error = error + delta
        s = np.where(np.abs(error) >= vth, delta, 0.0)
        error = np.where(s != 0, 0.0, error)
    else:
        s = np.where(np.abs(delta) >= vth, delta, 0.0)
    return SigmaDeltaState(sigma=sigma, act=act_new, residue=delta - s, error=error), s / div


GROUP_MODELS: dict[tuple[type, str], GroupModel] = {
    (LIFGroup, "fixed"): GroupModel(init=lif_init_fixed, step=lif_step_fixed, variables=LIF_VARIABLES),
    (LIFGroup, "float"): GroupModel(init=lif_init_float, step=lif_step_float, variables=LIF_VARIABLES),
    (TernaryLIFGroup, "fixed"): GroupModel(init=lif_init_fixed, step=lif_step_fixed, variables=LIF_VARIABLES),
    (TernaryLIFGroup, "float"): GroupModel(init=lif_init_float, step=lif_step_float, variables=LIF_VARIABLES),
    (SigmaDeltaGroup, "fixed"): GroupModel(init=sd_init_fixed, step=sd_step_fixed, variables=SD_VARIABLES),
    (SigmaDeltaGroup, "float"): GroupModel(init=sd_init_float, step=sd_step_float, variables=SD_VARIABLES),
}

# parallel spiking neurons (spikeport.emulator.psn): a dilated k-tap history, shifts and adds only
GROUP_MODELS[(PSNGroup, "fixed")] = GroupModel(
    init=psn_init_fixed, step=psn_step_fixed, variables=PSN_VARIABLES
)
GROUP_MODELS[(PSNGroup, "float")] = GroupModel(
    init=psn_init_float, step=psn_step_float, variables=PSN_VARIABLES
)


def group_model(group: object, mode: str) -> GroupModel:
    """The registered model of ``type(group)`` in ``mode``; ``UnsupportedError`` lists the supported."""
    model = GROUP_MODELS.get((type(group), mode))
    if model is None:
        supported = sorted({f"{t.__name__}/{m}" for t, m in GROUP_MODELS})
        raise UnsupportedError(
            f"dense engine: unsupported group type {type(group).__name__!r} in mode {mode!r} "
            f"(supported: {', '.join(supported)})"
        )
    return model
