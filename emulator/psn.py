"""The multiplication-free channel-wise parallel spiking neuron as an integer neuron group.

Xue et al., "Multiplication-free parallelizable spiking neurons with efficient spatio-temporal
dynamics", NeurIPS 2025 (docs/seed-methods.md, "Mul-free parallel spiking neuron (Xue et al. 2025)"). Each channel ``c``
keeps the last ``(k - 1) * d + 1`` values of its input ``x = a_in`` and, per time step::

    H[t, c] = wrap32( sum_{i=0}^{k-1} sign[c, i] * (x[t - (k - 1 - i) * d, c] << shift[c, i]) )
    spike[t, c] = H[t, c] > vth[c]                       (strict, as Lava's LIF)

with ``x`` zero before the group's first step, ``sign`` in {-1, 0, +1} and ``shift`` in
``0..bits.PSN_SHIFT_MAX``: every tap is a shift and an add, never a multiplication. There is no
membrane state and no reset; the history is the only memory. ``float`` mode computes the same sum with
``x * 2**shift`` in real arithmetic (no wrap).

Counted per neuron step (state fields ``shifts`` and ``adds``, cumulative (B, n)): one shift and one
add per applied tap, i.e. per nonzero ``sign[c, i]`` whose history slot exists
(``t - (k - 1 - i) d >= 0``), the causal count of the paper's ``(T + (1 - k)/2) k`` taps; the
comparison with ``vth`` is one more add per neuron step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from spikeport.emulator import bits, kernels
from spikeport.emulator.errors import field_error
from spikeport.emulator.network import register_group_type

PSN_VARIABLES = ("spikes", "h", "a_in", "shifts", "adds")


def _int_array(obj: str, name: str, value: Any, shape: tuple[int, ...], lo: int, hi: int) -> np.ndarray:
    """A read-only int64 copy of ``value`` with ``shape`` and every entry an integer in [lo, hi]."""
    arr = np.array(value, copy=True)
    if arr.shape != shape:
        raise field_error(obj, name, f"must have shape {shape}", arr.shape)
    if arr.dtype.kind not in "iuf" or (arr.dtype.kind == "f" and not np.all(np.floor(arr) == arr)):
        raise field_error(obj, name, "must hold integers", str(arr.dtype))
    if arr.size and (arr.min() < lo or arr.max() > hi):
        bad = arr.min() if arr.min() < lo else arr.max()
        raise field_error(obj, name, f"must be in [{lo}, {hi}]", bad.item())
    out = arr.astype(np.int64)
    out.setflags(write=False)
    return out


def _int_in(obj: str, name: str, value: Any, lo: int, hi: int) -> None:
    if not isinstance(value, int | np.integer) or not lo <= value <= hi:
        raise field_error(obj, name, f"must be an integer in [{lo}, {hi}]", value)


@register_group_type
@dataclass(frozen=True, kw_only=True, eq=False)
class PSNGroup:
    """``n`` channel-wise parallel spiking neurons of order ``k`` and dilation ``dilation`` (see the
    module docstring). ``sign``/``shift`` have shape (n, k), tap ``i`` reading ``x[t - (k-1-i) d]``;
    ``vth`` has shape (n,) and may be negative (a neuron that fires without input)."""

    name: str
    n: int
    k: int
    dilation: int
    sign: np.ndarray
    shift: np.ndarray
    vth: np.ndarray

    def __post_init__(self) -> None:
        obj = f"PSNGroup({self.name!r})"
        if not isinstance(self.name, str) or not self.name or "/" in self.name:
            raise field_error(obj, "name", "must be a non-empty string without '/'", self.name)
        _int_in(obj, "n", self.n, 1, 1 << 30)
        _int_in(obj, "k", self.k, 1, bits.PSN_ORDER_MAX)
        _int_in(obj, "dilation", self.dilation, 1, bits.PSN_DILATION_MAX)
        shape, lim = (int(self.n), int(self.k)), 1 << (bits.PSN_ACC_BITS - 1)
        checks = (
            ("sign", shape, -1, 1),
            ("shift", shape, 0, bits.PSN_SHIFT_MAX),
            ("vth", (int(self.n),), -lim, lim - 1),
        )
        for name, shp, lo, hi in checks:
            object.__setattr__(self, name, _int_array(obj, name, getattr(self, name), shp, lo, hi))

    @property
    def span(self) -> int:
        """History slots kept per channel: ``(k - 1) * dilation + 1``."""
        return (int(self.k) - 1) * int(self.dilation) + 1

    def tap_delays(self) -> np.ndarray:
        """Steps back read by each tap: ``(k - 1 - i) * dilation`` for ``i = 0..k-1``."""
        return (int(self.k) - 1 - np.arange(int(self.k))) * int(self.dilation)

    def integer_fields(self) -> dict[str, Any]:
        return {"sign": self.sign, "shift": self.shift, "vth": self.vth}


class PSNState(NamedTuple):
    """``hist`` (B, n, span): inputs of the last ``span`` steps, newest last; ``h`` (B, n): the last
    accumulator; ``age`` (B, n): steps done; ``shifts``/``adds`` (B, n): cumulative operation counts."""

    hist: np.ndarray
    h: np.ndarray
    age: np.ndarray
    shifts: np.ndarray
    adds: np.ndarray


def _init(g: PSNGroup, batch: int, dtype: type) -> PSNState:
    n = int(g.n)
    zeros = np.zeros((batch, n), np.int64)
    return PSNState(
        hist=np.zeros((batch, n, g.span), dtype),
        h=np.zeros((batch, n), dtype),
        age=zeros.copy(),
        shifts=zeros.copy(),
        adds=zeros.copy(),
    )


def psn_init_fixed(g: PSNGroup, batch: int) -> PSNState:
    return _init(g, batch, np.int64)


def psn_init_float(g: PSNGroup, batch: int) -> PSNState:
    return _init(g, batch, np.float64)


def _taps_applied(g: PSNGroup, age: np.ndarray) -> np.ndarray:
    """(B, n) number of nonzero taps whose history slot exists at this step (``age`` = steps before)."""
    reach = g.tap_delays()[None, None, :] <= age[:, :, None]  # (B, n, k)
    return np.sum(reach & (np.asarray(g.sign)[None] != 0), axis=2)


def _advance(g: PSNGroup, st: PSNState, a_in: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The history with ``a_in`` appended and the tap values ``x[t - (k-1-i) d]`` (B, n, k)."""
    hist = np.concatenate([st.hist[:, :, 1:], a_in[:, :, None].astype(st.hist.dtype)], axis=2)
    taps = hist[:, :, :: int(g.dilation)]  # slot i * d holds x[t - (k - 1 - i) d]
    return hist, taps


def _finish(g: PSNGroup, st: PSNState, hist: np.ndarray, h: np.ndarray) -> tuple[PSNState, np.ndarray]:
    applied = _taps_applied(g, st.age)
    spikes = (h > np.asarray(g.vth, h.dtype)).astype(np.int64)
    new = PSNState(
        hist=hist,
        h=h,
        age=st.age + 1,
        shifts=st.shifts + applied,
        adds=st.adds + applied + 1,
    )
    return new, spikes


def psn_step_fixed(
    g: PSNGroup, st: PSNState, a_in: np.ndarray, t: int, guard: kernels.Guard = None
) -> tuple[PSNState, np.ndarray]:
    """``H = wrap32(sum_i sign_i * (x[t - (k-1-i) d] << shift_i))``; spike if ``H > vth``."""
    hist, taps = _advance(g, st, a_in)
    shifted = np.left_shift(taps, np.asarray(g.shift, np.int64)[None])
    raw = np.sum(shifted * np.asarray(g.sign, np.int64)[None], axis=2)  # sign is -1/0/+1: a select
    h = kernels.wrap32(raw)
    if guard is not None:
        guard("h", raw, h)
    return _finish(g, st, hist, h)


def psn_step_float(
    g: PSNGroup, st: PSNState, a_in: np.ndarray, t: int, guard: kernels.Guard = None
) -> tuple[PSNState, np.ndarray]:
    """The fixed-point step in real arithmetic: ``H = sum_i sign_i * x * 2**shift_i`` (no wrap)."""
    hist, taps = _advance(g, st, a_in)
    scale = np.asarray(g.sign, np.float64) * np.exp2(np.asarray(g.shift, np.float64))
    h = np.sum(taps * scale[None], axis=2)
    return _finish(g, st, hist, h)
