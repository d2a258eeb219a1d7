"""Drift-minimising rounding of decays and biases (``rounding="min_drift"``), and the drift measures.

Nearest rounding takes each value on its own: ``dv = round(4096 alpha)``, ``bias_mant = round(b /
2**bias_exp)``. But Lava's decay rounds ``v * (4096 - dv) / 4096`` toward zero, so an integer state decays
faster than its constant says, and a bias rounded on its own ignores what the decay does to it. Here each
choice is the candidate whose integer run (the emulator's kernels) is closest to the float run over ``T``
steps, by these measures (the report gives both, for the chosen and the nearest value):

* **decay** (``dv``; ``du`` through its decay ``du + 1``): impulse responses from the amplitudes
  ``A_k = A / 4**k`` (``k = 0..3``, at least 1; ``A = vth << 6``, the threshold in integer units), no
  input::

      error(d) = mean_k mean_{t=1..T} |x_k(t) - A_k (1 - alpha)**t| / A_k,   x_k(t) = decay(x_k(t-1), d)

  candidates: ``round(4096 alpha)`` and its two neighbours (so floor and ceil), clipped to 0..4095; with
  ``shift_decays`` the powers of two below and above instead. Ties keep the nearest.
* **bias**, jointly with the threshold and the chosen ``dv``, per neuron: constant drive by the bias
  alone from rest (``v = 0``), with the group's threshold and reset, ``T`` steps::

      integer  v <- decay(v, dv) + (mant << bias_exp);  spike when v > vth << 6, then reset
      float    v <- (1 - alpha_v) v + b;                spike when v > S threshold (= vth << 6)

  ``rate error = |n_int - n_float| / T`` (spike counts), ``v error = mean_t |v_int - v_float| / ref``
  (``ref``: the threshold; a non-spiking group: the float run's largest ``|v|``). The chosen mantissa
  (among ``round(b / 2**bias_exp) + {0, -1, +1}``) has the least rate error, then the least v error.
  The threshold itself is exact (each neuron's scale makes ``vth << 6`` its float threshold), so the
  joint choice is the bias at that threshold.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
from spikeport.emulator import bits, kernels

ROUNDINGS = ("nearest", "min_drift")
#: steps of the drift measures when no calibration data gives the run length
DEFAULT_STEPS = 100
#: the longest run the measures simulate (a longer calibration run is measured over its first MAX_STEPS)
MAX_STEPS = 256
AMPLITUDE_LEVELS = 4


@dataclass(frozen=True, kw_only=True)
class DecayChoice:
    """One decay field (``dv``, or ``du``): the value kept, the nearest one, and their errors."""

    value: int
    nearest: int
    error: float
    error_nearest: float


@dataclass(frozen=True, kw_only=True)
class BiasChoice:
    """Per-neuron bias mantissas and the drift figures (means over neurons) for chosen and nearest."""

    mant: np.ndarray
    changed: int  # neurons whose mantissa differs from the nearest one
    rate_error: float
    rate_error_nearest: float
    v_error: float
    v_error_nearest: float


@dataclass(frozen=True, kw_only=True)
class GroupDrift:
    """What the quantization report shows per group (scalars only)."""

    rounding: str
    steps: int
    dv: int
    dv_nearest: int
    dv_error: float
    dv_error_nearest: float
    du: int | None
    du_nearest: int | None
    du_error: float | None
    du_error_nearest: float | None
    bias_changed: int
    bias_rate_error: float
    bias_rate_error_nearest: float
    bias_v_error: float
    bias_v_error_nearest: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def group_drift(
    rounding: str, steps: int, dv: DecayChoice, du: DecayChoice | None, b: BiasChoice
) -> GroupDrift:
    return GroupDrift(
        rounding=rounding,
        steps=steps,
        dv=dv.value,
        dv_nearest=dv.nearest,
        dv_error=dv.error,
        dv_error_nearest=dv.error_nearest,
        du=None if du is None else du.value,
        du_nearest=None if du is None else du.nearest,
        du_error=None if du is None else du.error,
        du_error_nearest=None if du is None else du.error_nearest,
        bias_changed=b.changed,
        bias_rate_error=b.rate_error,
        bias_rate_error_nearest=b.rate_error_nearest,
        bias_v_error=b.v_error,
        bias_v_error_nearest=b.v_error_nearest,
    )


# ---------------------------------------------------------------------------------------------- decays


def decay_error(d: int, alpha: float, amplitude: float, steps: int) -> float:
    """The decay measure of the module docstring for the decay constant ``d`` (``dv``, or ``du + 1``)."""
    amps = np.unique(np.maximum(np.rint(amplitude / 4.0 ** np.arange(AMPLITUDE_LEVELS)), 1.0))
    x = amps.astype(np.int64)
    ref = amps.copy()
    total = np.zeros(len(amps))
    for _ in range(steps):
        x = kernels.decay(x, int(d))
        ref = ref * (1.0 - alpha)
        total += np.abs(x - ref) / amps
    return float(np.mean(total / max(steps, 1)))


def _candidates(nearest: int, ideal: float, shift: bool, hi: int) -> list[int]:
    """``nearest`` first, then its neighbours (floor and ceil of ``ideal`` among them; the powers of two
    below and above ``ideal`` with ``shift``), clipped to ``0..hi``."""
    if shift:
        j = np.log2(max(ideal, 1.0))
        cands = [nearest, *(int(2.0**k) for k in (np.floor(j), np.ceil(j)))] if ideal > 0 else [nearest]
    else:
        cands = [nearest, nearest - 1, nearest + 1]
    return list(dict.fromkeys(int(np.clip(c, 0, hi)) for c in cands))


def choose_decay(
    alpha: float, nearest: int, *, field: str, amplitude: float, steps: int, shift: bool, rounding: str
) -> DecayChoice:
    """``dv`` (``field="v"``) or ``du`` (``"u"``: its decay is ``du + 1``) for the float fraction
    ``alpha``; ``nearest`` is the quantizer's rule (:func:`~.fixed_point.dv_from_alpha`,
    :func:`~.fixed_point.du_from_alpha`, nearest power of two with ``shift``). ``rounding="min_drift"``
    keeps the candidate with the least :func:`decay_error` (ties: the nearest)."""
    off = bits.DU_OFFSET if field == "u" else 0
    cands = _candidates(nearest + off, alpha * bits.DECAY_UNITY, shift, bits.DECAY_MAX + off)
    cands = [c for c in cands if c >= off] or [nearest + off]
    errs = [decay_error(c, alpha, amplitude, steps) for c in cands]
    k = int(np.argmin(errs)) if rounding == "min_drift" else 0
    return DecayChoice(value=cands[k] - off, nearest=cands[0] - off, error=errs[k], error_nearest=errs[0])


# ---------------------------------------------------------------------------------------------- biases


def bias_drift(
    mant: np.ndarray,
    exp: np.ndarray,
    b: np.ndarray,
    *,
    dv: int,
    alpha: float,
    thr: float | None,
    reset: str,
    steps: int,
    max_spikes: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Per neuron ``(|n_int - n_float|, v error)`` of the bias measure (module docstring); ``thr``
    None: a non-spiking group (no spikes, v error relative to the float run's largest ``|v|``).
    ``max_spikes > 1``: a multi-spike neuron sends ``k = min(max_spikes, v // thr)`` spikes when
    ``v > thr`` (counted as ``k``; subtract reset removes ``k thr``)."""
    bi = kernels.effective_bias(mant, exp)
    b = np.asarray(b, np.float64)
    vi, vf = np.zeros(len(bi), np.int64), np.zeros(len(bi))
    ni, nf = np.zeros(len(bi)), np.zeros(len(bi))
    dev, peak = np.zeros(len(bi)), np.zeros(len(bi))
    for _ in range(steps):
        vi = np.clip(kernels.decay(vi, dv) + bi, bits.V_MIN, bits.V_MAX)
        vf = (1.0 - alpha) * vf + b
        if thr is not None:
            ki = np.where(vi > thr, np.minimum(max_spikes, vi // int(thr)), 0)
            kf = np.where(vf > thr, np.minimum(max_spikes, np.floor(vf / thr)), 0.0)
            ni, nf = ni + ki, nf + kf
            vi = np.where(ki > 0, vi - ki * int(thr) if reset == "subtract" else 0, vi)
            vf = np.where(kf > 0, vf - kf * thr if reset == "subtract" else 0.0, vf)
        dev += np.abs(vi - vf)
        peak = np.maximum(peak, np.abs(vf))
    ref = np.full(len(bi), float(thr)) if thr is not None else np.where(peak > 0, peak, 1.0)
    return np.abs(ni - nf), dev / max(steps, 1) / ref


def choose_bias(
    b: np.ndarray,
    mant0: np.ndarray,
    exp: np.ndarray,
    *,
    dv: int,
    alpha: float,
    thr: float | None,
    reset: str,
    steps: int,
    rounding: str,
    max_spikes: int = 1,
) -> BiasChoice:
    """The bias mantissas (``mant0``: nearest rounding at ``exp``) under ``rounding``, with the
    drift figures of the chosen and the nearest mantissas."""
    mant0 = np.asarray(mant0, np.int64)
    kw: dict[str, Any] = dict(dv=dv, alpha=alpha, thr=thr, reset=reset, steps=steps, max_spikes=max_spikes)
    if not np.any(b) or len(mant0) == 0:  # no constant drive: nothing drifts
        return BiasChoice(
            mant=mant0, changed=0, rate_error=0.0, rate_error_nearest=0.0, v_error=0.0, v_error_nearest=0.0
        )
    offsets = (0, -1, 1) if rounding == "min_drift" else (0,)
    cands = [np.clip(mant0 + k, bits.BIAS_MANT_MIN, bits.BIAS_MANT_MAX) for k in offsets]
    figs = [bias_drift(c, exp, b, **kw) for c in cands]
    n_diff = np.stack([f[0] for f in figs])
    v_err = np.stack([f[1] for f in figs])
    key = n_diff * (1.0 + float(np.max(v_err))) + v_err  # rate error first, then v error
    k = np.argmin(key, axis=0)  # first minimum: ties keep the nearest
    cols = np.arange(len(mant0))
    mant = np.stack(cands)[k, cols]
    return BiasChoice(
        mant=mant,
        changed=int(np.count_nonzero(mant != mant0)),
        rate_error=float(np.mean(n_diff[k, cols])) / steps,
        rate_error_nearest=float(np.mean(n_diff[0])) / steps,
        v_error=float(np.mean(v_err[k, cols])),
        v_error_nearest=float(np.mean(v_err[0])),
    )
