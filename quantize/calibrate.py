"""Bounds on a_in, u and v, and the scale that uses the bits without overflowing them.

All bounds are per neuron in float v units (v measured from v_reset), for the neuron form of
:mod:`spikeport.quantize.quantize_nir`. Two sources:

- static (worst case): every source at its largest output at once,
  ``a = sum_j |u_gain_i M_ij| x_max_j``; ``u = a`` (no current state) or ``a / alpha_u``;
  a spiking v never exceeds ``threshold + u + |bias|`` (it resets above the threshold); a
  non-spiking v stays within ``(u + |bias|) / alpha_v`` (``HORIZON`` steps of it when it does not leak).
- data (calibration): the peaks a float run of the same integer description (the emulator's float
  mode, no rounding) reaches on calibration inputs, times ``margin``.

The scale: neuron ``i`` of a spiking group gets ``S_i = 64 vth / threshold_i`` (so ``vth << 6`` is its
threshold exactly) and ``vth`` is the largest integer for which, for every neuron,
``S_i v_i <= 2**23 - 1``, ``S_i u_i <= 2**23 - 1``, the largest weight in a_in units
``S_i |u_gain_i M_ij| / 64 <= w_top * 2**7`` and ``S_i |bias_i| <= 4095 * 2**10``, with
``vth <= 2**17 - 1``. A non-spiking group gets one real scale ``S`` under the same limits (v below
its unreachable threshold ``(2**17 - 1) << 6``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from spikeport.emulator import bits
from spikeport.quantize.graph import sparse_linear as sl

#: steps a non-leaky, non-spiking state is assumed to integrate for its static bound
HORIZON = 256
#: a_in << 6 and u must stay inside the 24-bit state
STATE_LIM = float(bits.STATE_LIMIT - 1)
V_LIM_SPIKING = float(bits.V_MAX)
V_LIM_READOUT = float((bits.VTH_MAX << bits.VTH_SHIFT) - 1)
BIAS_LIM = float(bits.BIAS_MANT_MAX << bits.BIAS_EXP_MAX)
WEIGHT_TOP = 2.0**bits.WEIGHT_EXP_MAX


@dataclass(frozen=True, kw_only=True)
class Bounds:
    a_in: np.ndarray
    u: np.ndarray
    v: np.ndarray
    source: str  # "static" or "calibration"


def static_bounds(
    *,
    u_gain: np.ndarray,
    alpha_u: np.ndarray | None,
    alpha_v: np.ndarray,
    threshold: np.ndarray | None,
    bias: np.ndarray,
    inputs: Sequence[tuple[np.ndarray, np.ndarray]],
) -> Bounds:
    """Worst-case bounds; ``inputs`` holds ``(M, x_max)`` per incoming path (M: (n, n_src))."""
    a = np.zeros_like(u_gain)
    for m, xmax in inputs:
        x = np.asarray(xmax, dtype=np.float64)
        if sl.is_sparse(m):  # |u_gain * m| @ x row by row, without a dense matrix
            a = a + np.asarray(abs(sl.scale_rows(m, u_gain)) @ x).ravel()
        else:
            a = a + np.abs(u_gain[:, None] * m) @ x
    u = a if alpha_u is None else a / alpha_u
    step = u + np.abs(bias)
    if threshold is not None:
        v = threshold + step
    else:
        v = np.where(alpha_v > 0, step / np.where(alpha_v > 0, alpha_v, 1.0), step * HORIZON)
    return Bounds(a_in=a, u=u, v=v, source="static")


def data_bounds(
    *,
    a_obs: np.ndarray,
    u_obs: np.ndarray,
    v_obs: np.ndarray,
    threshold: np.ndarray | None,
    bias: np.ndarray,
    margin: float,
) -> Bounds:
    """Bounds from observed peaks (float units) times ``margin``; a spiking v still gets room for
    one step above its threshold."""
    a, u = margin * a_obs, margin * u_obs
    v = margin * v_obs
    if threshold is not None:
        v = np.maximum(v, threshold + u + np.abs(bias))
    return Bounds(a_in=a, u=u, v=v, source="calibration")


@dataclass(frozen=True, kw_only=True)
class Scale:
    scale: np.ndarray  # S_i, integer units per float v unit
    vth: int  # threshold mantissa (non-spiking: VTH_MAX, unreachable)
    ideal: float  # the unclamped c (spiking: ideal vth)
    clamped: bool  # vth had to be raised to 1 (threshold saturates)


def choose_scale(
    *,
    threshold: np.ndarray | None,
    bounds: Bounds,
    weight_peaks: Sequence[tuple[np.ndarray, float]],
    bias: np.ndarray,
) -> Scale:
    """The scale of the module docstring. ``weight_peaks``: per connection, each neuron's largest
    ``|u_gain_i M_ij| / 64`` (float units) and the connection's top mantissa."""
    v_lim = V_LIM_SPIKING if threshold is not None else V_LIM_READOUT
    lim = np.full(bounds.v.shape, np.inf)
    with np.errstate(divide="ignore"):
        for bound, top in (
            (bounds.v, v_lim),
            (bounds.u, STATE_LIM),
            (bounds.a_in, STATE_LIM),
            (np.abs(bias), BIAS_LIM),
        ):
            lim = np.minimum(lim, np.where(bound > 0, top / np.where(bound > 0, bound, 1.0), np.inf))
        for peak, mant_top in weight_peaks:
            lim = np.minimum(
                lim, np.where(peak > 0, mant_top * WEIGHT_TOP / np.where(peak > 0, peak, 1.0), np.inf)
            )
    k = 64.0 / threshold if threshold is not None else np.ones_like(lim)
    c = float(np.min(lim / k)) if lim.size else math.inf
    if threshold is None:
        c = c if math.isfinite(c) else 1.0
        return Scale(scale=k * c, vth=bits.VTH_MAX, ideal=c, clamped=False)
    vth = int(min(math.floor(c), bits.VTH_MAX)) if math.isfinite(c) else bits.VTH_MAX
    clamped = vth < 1
    vth = max(vth, 1)
    return Scale(scale=k * vth, vth=vth, ideal=c, clamped=clamped)


def refine_scale(
    sc: Scale,
    *,
    spiking: bool,
    weights: Sequence[np.ndarray],
    quantize: Callable[[np.ndarray], np.ndarray],
    steps: int = 16,
) -> Scale:
    """Lower the scale by up to a factor 2 where that rounds the weights better.

    The scale of :func:`choose_scale` is the largest that fits; the weights (a_in units, ``S_i w``)
    then land anywhere within their exponent's range. Trying ``c * 2**(-j/steps)``, ``j = 0..steps``
    (integer ``vth`` for spiking groups), it keeps the one with the least summed relative squared
    rounding error ``sum_w |Q(S w) - S w|^2 / |S w|^2``. Smaller scales never break a bound.
    """
    if sc.clamped or not weights or not math.isfinite(sc.ideal):
        return sc
    c0 = float(sc.vth) if spiking else sc.ideal
    base = sc.scale / c0
    cands = {c0 * 2.0 ** (-j / steps) for j in range(steps + 1)}
    if spiking:
        cands = {float(max(1, math.floor(c))) for c in cands}

    # only the nonzero weights: zeros round to zero, and the exponent and sign mode of a quantizer
    # depend on the largest and smallest values only (a lowered convolution is ~97% zeros)
    nonzero = [(rows, vals) for w in weights for rows, _, vals in [sl.entries(w)]]

    def err(c: float) -> float:
        total = 0.0
        for rows, vals in nonzero:
            sw = (base * c)[rows] * vals
            norm = float(np.sum(sw**2))
            if norm > 0:
                total += float(np.sum((quantize(sw) - sw) ** 2)) / norm
        return total

    best = min(sorted(cands, reverse=True), key=err)
    vth = int(best) if spiking else sc.vth
    return Scale(scale=base * best, vth=vth, ideal=sc.ideal, clamped=False)


# ------------------------------------------------------------------------------------ calibration runs


@dataclass(frozen=True, kw_only=True)
class Observation:
    """Peaks (integer units of the run) and spike rates of one group in one run."""

    a_in: np.ndarray
    u: np.ndarray
    v: np.ndarray
    rate: float | None
    rate_per_neuron: np.ndarray | None


def observe(
    net: Any, inputs: Mapping[str, np.ndarray], *, mode: str, spiking: Mapping[str, bool]
) -> dict[str, Observation]:
    """Run ``net`` in the emulator (``mode`` "float" or "fixed") and collect per-group peaks and rates."""
    from spikeport.emulator.engines.dispatch import run

    res = run(net, dict(inputs), record=("spikes", "u", "v", "a_in"), mode=mode)
    out: dict[str, Observation] = {}
    for g in net.groups:

        def peak(var: str, name: str = g.name) -> np.ndarray:
            return np.max(np.abs(res[f"{name}/{var}"]), axis=(0, 1)).astype(np.float64)

        s = res[f"{g.name}/spikes"] if spiking.get(g.name) else None
        out[g.name] = Observation(
            a_in=peak("a_in") * 64.0,
            u=peak("u"),
            v=peak("v"),
            rate=None if s is None else float(np.mean(s != 0)),
            rate_per_neuron=None if s is None else np.mean(s != 0, axis=(0, 1)),
        )
    return out
