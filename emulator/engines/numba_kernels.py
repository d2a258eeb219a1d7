"""Scalar numba twins of :mod:`spikeport.emulator.kernels`, shared by the compiled engines.

The compiled dense loop (:mod:`.compiled_loop`) and the event-driven engine (:mod:`.event_kernels`,
:mod:`.event_loop`) step one neuron at a time on int64 scalars. These are the same formulas as the
numpy kernels (whose docstrings are the reference), for one value; the constants come from
:mod:`spikeport.emulator.bits` (module globals, frozen by numba at compile time).
``tests/test_numba_kernels.py`` checks every function here equal to its numpy kernel over the bit
boundaries. Decay factors are passed as ``keep = 4096 - d`` (see :func:`keep_u`, :func:`keep_v`), so
that a loop can precompute them per neuron.
"""

from __future__ import annotations

from numba import njit
from spikeport.emulator import bits

_HALF32 = 1 << 31
_MASK32 = (1 << 32) - 1
_LIM = bits.STATE_LIMIT
_DECAY_BITS = bits.DECAY_BITS
_UNITY = bits.DECAY_UNITY
_ACT_SHIFT = bits.ACT_SHIFT
_DU_OFFSET = bits.DU_OFFSET
_DV_OFFSET = bits.DV_OFFSET
_V_MIN = bits.V_MIN
_V_MAX = bits.V_MAX


@njit(cache=True, inline="always")
def wrap32(x: int) -> int:
    """:func:`~spikeport.emulator.kernels.wrap32`: ``((x + 2**31) mod 2**32) - 2**31``."""
    return ((x + _HALF32) & _MASK32) - _HALF32


@njit(cache=True, inline="always")
def keep_u(du: int) -> int:
    """The factor ``4096 - (du + 1)`` that decays u (Lava's +1 on du)."""
    return _UNITY - (du + _DU_OFFSET)


@njit(cache=True, inline="always")
def keep_v(dv: int) -> int:
    """The factor ``4096 - dv`` that decays v."""
    return _UNITY - (dv + _DV_OFFSET)


@njit(cache=True, inline="always")
def decay_keep(x: int, keep: int) -> int:
    """:func:`~spikeport.emulator.kernels.decay` with ``keep = 4096 - d``:
    ``sign(p) * (|p| >> 12)``, ``p = x * keep``."""
    p = x * keep
    return (p >> _DECAY_BITS) if p >= 0 else -((-p) >> _DECAY_BITS)


@njit(cache=True, inline="always")
def decay(x: int, d: int) -> int:
    """:func:`~spikeport.emulator.kernels.decay`: ``sign(p) * (|p| >> 12)``, ``p = x * (4096 - d)``."""
    return decay_keep(x, _UNITY - d)


@njit(cache=True, inline="always")
def quirky_wrap24(x: int) -> int:
    """:func:`~spikeport.emulator.kernels.quirky_wrap24`: ``x - 2**24 if x > 2**23``, else
    ``x + 2**24 if x <= -2**23``, else ``x``."""
    hi = x - 2 * _LIM if x > _LIM else x
    return x + 2 * _LIM if hi <= -_LIM else hi


@njit(cache=True, inline="always")
def lif_current(u: int, a_in: int, keep: int) -> int:
    """:func:`~spikeport.emulator.kernels.lif_current`:
    ``quirky_wrap24(wrap32(decay(u, du + 1) + wrap32(a_in << 6)))``, ``keep = keep_u(du)``."""
    return quirky_wrap24(wrap32(decay_keep(u, keep) + wrap32(a_in << _ACT_SHIFT)))


@njit(cache=True, inline="always")
def lif_voltage(v: int, u: int, bias: int, keep: int) -> int:
    """:func:`~spikeport.emulator.kernels.lif_voltage`:
    ``clip(wrap32(decay(v, dv) + u + bias), -(2**23 - 1), 2**23 - 1)``, ``keep = keep_v(dv)``."""
    return min(max(wrap32(decay_keep(v, keep) + u + bias), _V_MIN), _V_MAX)


@njit(cache=True, inline="always")
def lif_fire(v: int, th: int, tl: int, ternary: bool, subtract: bool) -> tuple[int, int]:
    """Spike and reset, ``th = vth << 6``, ``tl = vth_lo << 6``: ``s = +1 if v > th``, else
    ``-1 if ternary and v < tl``, else 0 (:func:`~spikeport.emulator.kernels.lif_spikes`,
    :func:`~spikeport.emulator.kernels.ternary_spikes`); on a spike ``v <- v - th`` (subtract)
    or 0. Returns ``(v, s)``."""
    s = 1 if v > th else (-1 if ternary and v < tl else 0)
    if s == 0:
        return v, 0
    return (v - th if subtract else 0), s


@njit(cache=True, inline="always")
def lif_fire_binary(v: int, th: int, subtract: bool) -> tuple[int, int]:
    """:func:`lif_fire` without ternary spikes, as selects only (so that a loop over it vectorizes)."""
    spk = v > th
    reset = v - th if subtract else 0
    return (reset if spk else v), (1 if spk else 0)


@njit(cache=True, inline="always")
def lif_fire_multi(v: int, th: int, max_spikes: int, subtract: bool) -> tuple[int, int]:
    """Multi-spike fire and reset (:func:`~spikeport.emulator.kernels.lif_multi_spikes`):
    ``k = min(max_spikes, v // th) if v > th else 0`` (``th = 0``: ``max_spikes`` if ``v > 0``);
    on ``k > 0`` ``v <- v - k * th`` (subtract) or 0. Returns ``(v, k)``."""
    if v <= th:
        return v, 0
    k = max_spikes if th == 0 else min(v // th, max_spikes)
    return (v - k * th if subtract else 0), k
