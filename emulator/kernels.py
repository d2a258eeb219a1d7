"""Integer kernels of Lava's fixed-point models, one small pure function per operation.

Every function takes and returns ``int64`` numpy arrays that hold the value Lava would hold in its
(mostly ``int32``) variables. Sources (lava-nc 0.10.0): ``lava/proc/lif/models.py``
(``AbstractPyLifModelFixed``, ``PyLifModelBitAcc``, ``PyTernLifModelFixed``, ``PyLifResetModelBitAcc``),
``lava/proc/dense/models.py`` (``PyDenseModelBitAcc``, ``PyDelayDenseModelBitAcc``),
``lava/utils/weightutils.py`` (``determine_sign_mode``, ``clip_weights``, ``truncate_weights``) and
``lava/proc/sdn/models.py`` (``PySigmaDeltaModelFixed``; upstream PR #875
``PySigmaDeltaModelFixedCorrected``). See docs/lava-arithmetic.md.

``guard`` arguments: when given, a kernel calls ``guard(variable, raw, kept)`` for every wrap or clip
it performs (``raw`` the mathematically exact value, ``kept`` what Lava keeps); the engine's strict
overflow mode raises when they differ.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NamedTuple

import numpy as np
from spikeport.emulator import bits

Guard = Callable[[str, np.ndarray, np.ndarray], None] | None
SignMode = Literal["excitatory", "inhibitory", "mixed"]

_I64 = np.int64


class SigmaDeltaState(NamedTuple):
    """State of a sigma-delta neuron (arrays of one shape): the integrated input ``sigma``, the
    activation ``act`` last sent, the unsent ``residue`` and the accumulated ``error``."""

    sigma: np.ndarray
    act: np.ndarray
    residue: np.ndarray
    error: np.ndarray


def _check(guard: Guard, name: str, raw: np.ndarray, kept: np.ndarray) -> None:
    if guard is not None:
        guard(name, raw, kept)


def wrap32(x: np.ndarray) -> np.ndarray:
    """Two's-complement wrap to int32: ``((x + 2**31) mod 2**32) - 2**31``."""
    x = np.asarray(x, dtype=_I64)
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def decay(x: np.ndarray, d: int | np.ndarray) -> np.ndarray:
    """``sign(p) * (|p| >> 12)`` with ``p = x * (4096 - d)`` in int64 (rounds toward zero)."""
    p = np.asarray(x, dtype=_I64) * (bits.DECAY_UNITY - np.asarray(d, dtype=_I64))
    return np.sign(p) * (np.abs(p) >> bits.DECAY_BITS)


def effective_bias(bias_mant: np.ndarray, bias_exp: np.ndarray) -> np.ndarray:
    """``bias_mant << bias_exp`` for ``bias_exp >= 0``, else ``bias_mant >> -bias_exp`` (floor)."""
    m = np.asarray(bias_mant, dtype=_I64)
    e = np.asarray(bias_exp, dtype=_I64)
    return np.where(e >= 0, m << np.maximum(e, 0), m >> np.maximum(-e, 0))


def quirky_wrap24(x: np.ndarray) -> np.ndarray:
    """Lava's one-shot u wrap: ``x - 2**24 if x > 2**23``; else ``x + 2**24 if x <= -2**23``; else x.

    Note the asymmetry: ``+2**23`` survives, ``-2**23`` becomes ``+2**23``; a value beyond
    ``+-(2**23 + 2**24)`` is wrapped once only (as Lava does).
    """
    x = np.asarray(x, dtype=_I64)
    lim = bits.STATE_LIMIT
    hi = np.where(x > lim, x - 2 * lim, x)
    return np.where(hi <= -lim, x + 2 * lim, hi)


def lif_current(u: np.ndarray, a_in: np.ndarray, du: int, guard: Guard = None) -> np.ndarray:
    """``u' = quirky_wrap24(wrap32(decay(u, du + 1) + wrap32(a_in << 6)))``.

    ``a_in`` is the int32 synaptic input; the shift and the add wrap in int32 as in Lava.
    """
    a = np.asarray(a_in, dtype=_I64)
    shifted = wrap32(a << bits.ACT_SHIFT)
    _check(guard, "a_in << 6", a << bits.ACT_SHIFT, shifted)
    raw = decay(u, du + bits.DU_OFFSET) + shifted
    summed = wrap32(raw)
    _check(guard, "u", raw, summed)
    out = quirky_wrap24(summed)
    _check(guard, "u", summed, out)
    return out


def lif_voltage(v: np.ndarray, u: np.ndarray, bias: np.ndarray, dv: int, guard: Guard = None) -> np.ndarray:
    """``v' = clip(wrap32(decay(v, dv) + u + bias), -(2**23 - 1), 2**23 - 1)``."""
    raw = decay(v, dv + bits.DV_OFFSET) + np.asarray(u, dtype=_I64) + np.asarray(bias, dtype=_I64)
    summed = wrap32(raw)
    _check(guard, "v", raw, summed)
    out = np.clip(summed, bits.V_MIN, bits.V_MAX)
    _check(guard, "v", summed, out)
    return out


def lif_spikes(v: np.ndarray, vth: int) -> np.ndarray:
    """Binary spikes ``v > (vth << 6)`` as int64 0/1."""
    return (np.asarray(v, dtype=_I64) > (int(vth) << bits.VTH_SHIFT)).astype(_I64)


def lif_multi_spikes(v: np.ndarray, vth: int, max_spikes: int) -> np.ndarray:
    """Multi-spike count ``k = min(max_spikes, v // th) if v > th else 0``, ``th = vth << 6``
    (``th = 0``: ``max_spikes`` where ``v > 0``), as int64 (``LIFGroup.max_spikes``)."""
    v = np.asarray(v, dtype=_I64)
    th = int(vth) << bits.VTH_SHIFT
    if th == 0:
        return np.where(v > 0, int(max_spikes), 0).astype(_I64)
    return np.where(v > th, np.minimum(v // th, int(max_spikes)), 0).astype(_I64)


def ternary_spikes(v: np.ndarray, vth_hi: int, vth_lo: int) -> np.ndarray:
    """``+1 if v > (vth_hi << 6)``, ``-1 if v < (vth_lo << 6)``, else 0 (TernaryLIF; hi wins ties)."""
    v = np.asarray(v, dtype=_I64)
    pos = v > (int(vth_hi) << bits.VTH_SHIFT)
    neg = v < (int(vth_lo) << bits.VTH_SHIFT)
    return pos.astype(_I64) - neg.astype(_I64)


def lif_reset_due(time_step: int, interval: int, offset: int) -> bool:
    """LIFReset: u and v are zeroed before the dynamics when ``time_step % interval == offset``."""
    return interval > 0 and time_step % interval == offset % interval


def sign_mode(weights: np.ndarray) -> SignMode:
    """Lava's ``determine_sign_mode``: excitatory if ``min >= 0``, else inhibitory if ``max <= 0``,
    else mixed (an all-zero matrix is excitatory)."""
    w = np.asarray(weights)
    if w.size == 0 or np.min(w) >= 0:
        return "excitatory"
    if np.max(w) <= 0:
        return "inhibitory"
    return "mixed"


def clip_weights(weights: np.ndarray, mode: SignMode) -> np.ndarray:
    """8-bit clip by sign mode: mixed ``[-256, 255]``, excitatory ``[0, 255]``, inhibitory
    ``[-255, 0]`` (Lava negates, clips to ``[0, 255]`` and negates back). Float weights are first
    truncated toward zero (Lava's ``astype(np.int32)``)."""
    w = np.trunc(np.asarray(weights)).astype(_I64)
    top = (1 << bits.WEIGHT_BITS_MAX) - 1
    if mode == "mixed":
        return np.clip(w, -(1 << bits.WEIGHT_BITS_MAX), top)
    if mode == "inhibitory":
        return -np.clip(-w, 0, top)
    return np.clip(w, 0, top)


def truncate_weights(weights: np.ndarray, mode: SignMode, num_weight_bits: int) -> np.ndarray:
    """``(w >> s) << s`` with ``s = 8 - num_weight_bits + (1 if mixed)``; inhibitory weights are
    negated first and after (so their magnitude is truncated, toward zero)."""
    w = np.asarray(weights, dtype=_I64)
    s = bits.WEIGHT_BITS_MAX - int(num_weight_bits) + (1 if mode == "mixed" else 0)
    if mode == "inhibitory":
        return -((-w >> s) << s)
    return (w >> s) << s


def effective_weights(weights: np.ndarray, num_weight_bits: int = 8) -> np.ndarray:
    """What Lava's Dense uses: ``truncate_weights(clip_weights(w, m), m, num_weight_bits)`` with
    ``m = sign_mode(w)``."""
    mode = sign_mode(weights)
    return truncate_weights(clip_weights(weights, mode), mode, num_weight_bits)


def shift_activation(acc: np.ndarray, weight_exp: int, guard: Guard = None) -> np.ndarray:
    """``wrap32(acc << weight_exp)`` if ``weight_exp > 0`` else ``wrap32(acc >> -weight_exp)``
    (arithmetic shift: floor for negative ``acc``)."""
    a = np.asarray(acc, dtype=_I64)
    raw = a << weight_exp if weight_exp > 0 else a >> -weight_exp
    out = wrap32(raw)
    _check(guard, "a_out", raw, out)
    return out


def dense_activation(
    weights_eff: np.ndarray,
    msg: np.ndarray,
    weight_exp: int,
    graded: bool,
    guard: Guard = None,
) -> np.ndarray:
    """One Dense step, ``msg`` of shape (..., n_in) -> (..., n_out)::

        binary (num_message_bits = 0): a = wrap32(shift(sum_i w[j, i] * (msg[i] != 0), weight_exp))
        graded:                        a = wrap32(shift(wrap32(sum_i w[j, i] * msg[i]), weight_exp))

    (Lava: binary sums int32 weights into int64; graded takes an int32 dot product, which wraps.)
    """
    w = np.asarray(weights_eff, dtype=_I64)
    m = np.asarray(msg, dtype=_I64)
    if not graded:
        return shift_activation((m != 0).astype(_I64) @ w.T, weight_exp, guard)
    raw = m @ w.T
    acc = wrap32(raw)
    _check(guard, "a_out", raw, acc)
    return shift_activation(acc, weight_exp, guard)


def delay_dense_activation(
    weights_eff: np.ndarray,
    msg: np.ndarray,
    weight_exp: int,
    graded: bool,
    guard: Guard = None,
) -> np.ndarray:
    """DelayDense (``PyDelayDenseModelBitAcc``) per delay slot: each product is an int32 product
    (``wrap32(w * msg)``, which only matters for graded payloads), the row sum is exact (int64), then
    ``wrap32(shift(sum, weight_exp))``. ``weights_eff`` holds one delay slot's weights."""
    w = np.asarray(weights_eff, dtype=_I64)
    m = np.asarray(msg, dtype=_I64)
    if not graded:
        m = (m != 0).astype(_I64)
    raw = m[..., None, :] * w
    prod = wrap32(raw)
    _check(guard, "a_out", raw, prod)
    return shift_activation(prod.sum(axis=-1), weight_exp, guard)


def sigma_delta_step(
    state: SigmaDeltaState,
    a_in: np.ndarray,
    *,
    vth: int,
    bias: np.ndarray,
    relu: bool,
    cum_error: bool,
    state_exp: int,
    guard: Guard = None,
) -> tuple[SigmaDeltaState, np.ndarray]:
    """Lava 0.10.0 ``PySigmaDeltaModelFixed`` (``vth`` and ``bias`` already scaled by
    ``2**(spike_exp + state_exp)``), all sums wrapping in int32::

        sigma <- sigma + a_in;  act_new <- relu(sigma + bias) (or sigma + bias)
        delta <- act_new - act + residue
        cum_error: error <- error + delta; s = delta where |error| >= vth; error <- 0 where s != 0
        else:      s = delta where |delta| >= vth
        residue <- delta - s;  act <- act_new;  sent = s >> state_exp   (shifted-out LSBs are lost)
    """
    sigma = _wrapped(state.sigma + np.asarray(a_in, dtype=_I64), "sigma", guard)
    act_new = _wrapped(sigma + np.asarray(bias, dtype=_I64), "act", guard)
    if relu:
        act_new = np.maximum(act_new, 0)
    delta = _wrapped(act_new - state.act + state.residue, "delta", guard)
    error = state.error
    if cum_error:
        error = _wrapped(error + delta, "error", guard)
        s = np.where(_abs32(error) >= vth, delta, 0)
        error = np.where(s != 0, 0, error)
    else:
        s = np.where(_abs32(delta) >= vth, delta, 0)
    new = SigmaDeltaState(sigma=sigma, act=act_new, residue=delta - s, error=error)
    return new, s >> state_exp


def sigma_delta_corrected_step(
    state: SigmaDeltaState,
    a_in: np.ndarray,
    *,
    vth: int,
    bias: np.ndarray,
    relu: bool,
    state_exp: int,
    guard: Guard = None,
) -> tuple[SigmaDeltaState, np.ndarray]:
    """Upstream Lava PR #875 ``PySigmaDeltaModelFixedCorrected``::

        sigma <- sigma + a_in;  act_new <- relu(sigma + bias) (or sigma + bias)
        delta <- act_new - act;  s = delta where |delta| >= vth
        sent = s >> state_exp;  act <- act + (sent << state_exp)

    ``act`` tracks what the receiver reconstructs, so the LSBs lost by the shift are sent later;
    ``residue`` and ``error`` are left unchanged and ``cum_error`` is ignored (as upstream).
    """
    sigma = _wrapped(state.sigma + np.asarray(a_in, dtype=_I64), "sigma", guard)
    act_new = _wrapped(sigma + np.asarray(bias, dtype=_I64), "act", guard)
    if relu:
        act_new = np.maximum(act_new, 0)
    delta = _wrapped(act_new - state.act, "delta", guard)
    s = np.where(_abs32(delta) >= vth, delta, 0)
    sent = s >> state_exp
    act = _wrapped(state.act + (sent << state_exp), "act", guard)
    return state._replace(sigma=sigma, act=act), sent


def _wrapped(raw: np.ndarray, name: str, guard: Guard) -> np.ndarray:
    out = wrap32(raw)
    _check(guard, name, raw, out)
    return out


def _abs32(x: np.ndarray) -> np.ndarray:
    """``np.abs`` on int32: ``|-2**31|`` stays ``-2**31``."""
    return wrap32(np.abs(x))
