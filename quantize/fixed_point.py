"""Numeric quantizers: float parameters -> the integers of Lava's fixed-point LIF and Dense.

Every function is pure and vectorized; the exact integer rule is in its docstring. Sources: lava-nc
0.10.0 ``lava/proc/lif/models.py`` (PyLifModelBitAcc), ``lava/proc/dense/models.py`` and
``lava/utils/weightutils.py`` (docs/lava-arithmetic.md); power-of-two weights after Xue et al. 2025
(docs/seed-methods.md, "Mul-free parallel spiking neuron (Xue et al. 2025)").

Units. A neuron group gets a scale ``S`` (integer v units per float v unit). Lava's per-step update

    u <- u * (4096 - (du + 1)) / 4096 + (a_in << 6)
    v <- v * (4096 - dv) / 4096 + u + (bias_mant << bias_exp)

matches the Euler step ``v <- (1 - alpha) v + alpha (v_leak + r x)`` with ``dv = round(4096 alpha)``,
``vth << 6 = S v_th`` and an input of ``S alpha r x`` per step (so a weight in a_in units is
``S alpha r w / 64``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from spikeport.emulator import bits, kernels

#: the mantissa magnitudes a connection may use, by sign mode: (most negative, most positive)
SIGN_MODES = ("excitatory", "inhibitory", "mixed")


def decay_alpha(dt: float, tau: np.ndarray | float, integration: str = "euler") -> np.ndarray:
    """Fraction of the state lost per step: ``dt / tau`` (Euler) or ``1 - exp(-dt / tau)`` (exact)."""
    tau = np.asarray(tau, dtype=np.float64)
    if integration == "exp":
        return np.asarray(-np.expm1(-dt / tau))
    return np.asarray(dt / tau)


def dv_from_alpha(alpha: np.ndarray | float) -> np.ndarray:
    """``dv = clip(round(4096 * alpha), 0, 4095)``: v decays by ``(4096 - dv) / 4096`` per step."""
    return np.clip(np.rint(np.asarray(alpha, dtype=np.float64) * bits.DECAY_UNITY), 0, bits.DECAY_MAX)


def du_from_alpha(alpha: np.ndarray | float) -> np.ndarray:
    """``du = clip(round(4096 * alpha) - 1, 0, 4095)``: Lava decays u by ``(4096 - (du + 1)) / 4096``.

    ``alpha = 1`` (no synaptic current state) gives ``du = 4095``: u becomes ``a_in << 6`` every step,
    so the current-based form reduces to a delta input.
    """
    raw = np.rint(np.asarray(alpha, dtype=np.float64) * bits.DECAY_UNITY) - bits.DU_OFFSET
    return np.clip(raw, 0, bits.DECAY_MAX)


def alpha_from_dv(dv: np.ndarray | float) -> np.ndarray:
    """The fraction Lava actually removes from v per step: ``dv / 4096``."""
    return np.asarray(dv, dtype=np.float64) / bits.DECAY_UNITY


def alpha_from_du(du: np.ndarray | float) -> np.ndarray:
    """The fraction Lava actually removes from u per step: ``(du + 1) / 4096``."""
    return (np.asarray(du, dtype=np.float64) + bits.DU_OFFSET) / bits.DECAY_UNITY


def effective_tau(dt: float, alpha: np.ndarray | float, integration: str = "euler") -> np.ndarray:
    """Inverse of :func:`decay_alpha`: ``dt / alpha`` or ``-dt / log(1 - alpha)``; inf for no decay."""
    a = np.asarray(alpha, dtype=np.float64)
    with np.errstate(divide="ignore"):
        if integration == "exp":
            return np.where(a >= 1, 0.0, -dt / np.log1p(-np.minimum(a, 1 - 1e-300)))
        return np.where(a > 0, dt / np.where(a > 0, a, 1.0), np.inf)


def decay_to_shift(d: np.ndarray | float) -> np.ndarray:
    """Nearest decay constant whose multiply is two shifts: ``d = 2**j`` (``x * (4096 - 2**j) =
    (x << 12) - (x << j)``), ``d = 0`` stays 0, and 4096 is clamped to 4095 (``x * 1``)."""
    d = np.asarray(d, dtype=np.float64)
    j = np.rint(np.log2(np.where(d > 0, d, 1.0)))
    return np.where(d > 0, np.minimum(2.0**j, bits.DECAY_MAX), 0.0)


def vth_limit(step_bound: float) -> int:
    """Largest threshold mantissa with ``(vth << 6) + step_bound <= 2**23 - 1`` (a spiking v never
    exceeds its threshold by more than one step's input) and ``vth <= 2**17 - 1``."""
    room = (bits.V_MAX - step_bound) / (1 << bits.VTH_SHIFT)
    return int(min(bits.VTH_MAX, math.floor(room)))


# ---------------------------------------------------------------------------------------------- weights


# Lava's sign mode and weight clip/truncation live in the emulator (one implementation, tested against
# lava.utils.weightutils): ``lava_weights(w, num_weight_bits)`` is what Lava's Dense uses.
sign_mode = kernels.sign_mode
lava_weights = kernels.effective_weights


def weight_grid(mode: str, num_weight_bits: int) -> tuple[int, int, int]:
    """``(step, lo, hi)``: the mantissas Lava keeps unchanged are the multiples of ``step`` in
    ``[lo, hi]``, ``step = 2**(8 - num_weight_bits + (1 if mixed))``."""
    step = 1 << (bits.WEIGHT_BITS_MAX - num_weight_bits + (1 if mode == "mixed" else 0))
    top = (1 << bits.WEIGHT_BITS_MAX) - 1
    hi = (top // step) * step
    if mode == "mixed":
        return step, -(1 << bits.WEIGHT_BITS_MAX), hi
    if mode == "inhibitory":
        return step, -hi, 0
    return step, 0, hi


@dataclass(frozen=True, kw_only=True)
class QuantizedWeights:
    """Integer mantissas and one exponent: the weight applied is ``mant * 2**exp`` (a_in units)."""

    mant: np.ndarray
    exp: int
    saturated: int  # how many weights were clipped to the largest mantissa
    sign_mode: str


def _exp_bounds(w: np.ndarray, lo: int, hi: int) -> int:
    """Smallest exponent with every ``w / 2**e`` inside ``[lo, hi]`` (ignoring rounding)."""
    need = 0.0
    if np.max(w, initial=0) > 0:
        need = max(need, float(np.max(w)) / hi)
    if np.min(w, initial=0) < 0:
        need = max(need, float(np.min(w)) / lo)
    if need == 0:
        return bits.WEIGHT_EXP_MIN
    return math.ceil(math.log2(need))


def quantize_weights(w: np.ndarray, num_weight_bits: int = 8) -> QuantizedWeights:
    """Round real weights (a_in units) to ``mant * 2**exp`` with mantissas Lava keeps unchanged.

    ``exp`` is the smallest exponent in ``[-8, 7]`` that fits the largest weight, so the mantissas use
    their full range; ``mant = clip(round(w / 2**exp / step) * step, lo, hi)`` on the grid of
    :func:`weight_grid` (mixed signs with 8 bits: even values only, since Lava drops the LSB).
    """
    w = np.asarray(w, dtype=np.float64)
    nonzero = w != 0  # zeros stay 0 and decide nothing: a lowered convolution is mostly zeros
    vals = w[nonzero]
    mode = sign_mode(vals)
    step, lo, hi = weight_grid(mode, num_weight_bits)
    exp = int(np.clip(_exp_bounds(vals, lo, hi), bits.WEIGHT_EXP_MIN, bits.WEIGHT_EXP_MAX))
    ideal = np.rint(vals / (2.0**exp) / step) * step
    # rounding up at the top of the range can overflow it: take one more exponent if it helps
    if exp < bits.WEIGHT_EXP_MAX and (np.any(ideal > hi) or np.any(ideal < lo)):
        exp += 1
        ideal = np.rint(vals / (2.0**exp) / step) * step
    clipped = np.clip(ideal, lo, hi)
    mant = np.zeros(w.shape, np.int64)
    mant[nonzero] = clipped
    return QuantizedWeights(
        mant=mant,
        exp=exp,
        saturated=int(np.count_nonzero(clipped != ideal)),
        sign_mode=mode,
    )


def pow2_round(w: np.ndarray) -> np.ndarray:
    """``Q(w) = sign(w) * 2**round(log2|w|)`` (Xue et al. 2025); 0 stays 0."""
    w = np.asarray(w, dtype=np.float64)
    mag = np.abs(w)
    k = np.rint(np.log2(np.where(mag > 0, mag, 1.0)))
    return np.where(mag > 0, np.sign(w) * 2.0**k, 0.0)


def quantize_weights_pow2(w: np.ndarray, num_weight_bits: int = 8) -> QuantizedWeights:
    """Power-of-two weights: every mantissa is 0 or ``+-2**k`` on Lava's grid.

    ``exp`` puts the largest ``|Q(w)|`` at the top power of two the grid holds; powers below the grid's
    smallest non-zero step round (in log2) to that step or to 0 (below ``step / sqrt(2)``).
    """
    w = np.asarray(w, dtype=np.float64)
    mode = sign_mode(w)
    step, lo, hi = weight_grid(mode, num_weight_bits)
    q = pow2_round(w)
    top = 1 << math.floor(math.log2(hi if mode != "inhibitory" else -lo))
    qmax = float(np.max(np.abs(q), initial=0))
    exp = bits.WEIGHT_EXP_MIN if qmax == 0 else int(math.log2(qmax)) - int(math.log2(top))
    exp = int(np.clip(exp, bits.WEIGHT_EXP_MIN, bits.WEIGHT_EXP_MAX))
    m = np.abs(w) / 2.0**exp
    k = np.rint(np.log2(np.where(m > 0, m, 1.0)))
    mag = np.where(m > 0, 2.0 ** np.clip(k, math.log2(step), math.log2(top)), 0.0)
    mag = np.where(m < step / math.sqrt(2), 0.0, mag)
    mant = (np.sign(w) * mag).astype(np.int64)
    saturated = int(np.count_nonzero((m > 0) & (k > math.log2(top))))
    return QuantizedWeights(mant=mant, exp=exp, saturated=saturated, sign_mode=mode)


def quantize_weights_at(w: np.ndarray, exp: int, mode: str, num_weight_bits: int = 8) -> QuantizedWeights:
    """Round ``w`` (a_in units) at a given exponent: ``mode="fixed"`` as :func:`quantize_weights`
    (``clip(round(w / 2**exp / step) * step, lo, hi)``), ``"shift"`` as :func:`quantize_weights_pow2`
    (log2 rounding, clipped to the grid's powers of two, below ``step / sqrt(2)`` to 0)."""
    w = np.asarray(w, dtype=np.float64)
    sign = sign_mode(w)
    step, lo, hi = weight_grid(sign, num_weight_bits)
    m = w / 2.0**exp
    if mode == "shift":
        top = 1 << math.floor(math.log2(hi if sign != "inhibitory" else -lo))
        mag = np.abs(m)
        k = np.rint(np.log2(np.where(mag > 0, mag, 1.0)))
        q = np.where(mag > 0, 2.0 ** np.clip(k, math.log2(step), math.log2(top)), 0.0)
        q = np.where(mag < step / math.sqrt(2), 0.0, q)
        sat = int(np.count_nonzero((mag > 0) & (k > math.log2(top))))
        return QuantizedWeights(
            mant=(np.sign(m) * q).astype(np.int64), exp=int(exp), saturated=sat, sign_mode=sign
        )
    ideal = np.rint(m / step) * step
    mant = np.clip(ideal, lo, hi)
    return QuantizedWeights(
        mant=mant.astype(np.int64),
        exp=int(exp),
        saturated=int(np.count_nonzero(mant != ideal)),
        sign_mode=sign,
    )


# ---------------------------------------------------------------------------------------------- biases


def quantize_bias(b: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Per neuron ``(bias_mant, bias_exp, n_saturated)`` with ``bias_mant << bias_exp ~= b``.

    ``bias_exp = clip(ceil(log2(|b| / 4095)), 0, 10)`` (negative exponents only shift bits away),
    ``bias_mant = clip(round(b / 2**bias_exp), -4096, 4095)``.
    """
    b = np.asarray(b, dtype=np.float64)
    mag = np.abs(b) / bits.BIAS_MANT_MAX
    with np.errstate(divide="ignore"):
        need = np.ceil(np.log2(np.where(mag > 0, mag, 1.0)))
    exp = np.clip(need, 0, bits.BIAS_EXP_MAX)
    ideal = np.rint(b / 2.0**exp)
    mant = np.clip(ideal, bits.BIAS_MANT_MIN, bits.BIAS_MANT_MAX)
    return mant.astype(np.int64), exp.astype(np.int64), int(np.count_nonzero(mant != ideal))


def bias_value(mant: np.ndarray, exp: np.ndarray) -> np.ndarray:
    """``mant << exp`` (arithmetic right shift for negative ``exp``), as Lava applies it: the
    emulator's kernel :func:`spikeport.emulator.kernels.effective_bias` (one formula)."""
    return kernels.effective_bias(mant, exp)


def headroom_bits(bound: float, limit: float) -> float:
    """``log2(limit / bound)``: bits to spare (negative: overflow possible); inf for a zero bound."""
    if bound <= 0:
        return math.inf
    return math.log2(limit / bound)
