"""Compiled (numba) kernels of the event-driven engine: the exact LIF step, the exact fast-forward of a
neuron driven by its bias alone, a lazy-deletion heap of predicted spikes, and the event loop.

Arithmetic is Lava's ``PyLifModelBitAcc`` as in :mod:`.kernels` (docs/lava-arithmetic.md, "LIF update"),
on int64 scalars::

    decay(x, d) = sign(x (4096 - d)) * (|x (4096 - d)| >> 12)
    u' = qwrap24(wrap32(decay(u, du + 1) + wrap32(a_in << 6)))
    v' = clip(wrap32(decay(v, dv) + u' + bias), -(2**23 - 1), 2**23 - 1)

:func:`lif_step` composes the scalar functions of :mod:`.numba_kernels` (shared with the compiled
dense loop). Fast-forward (:func:`ff`), valid while ``u = 0`` and no input arrives. For ``x > 0``,
``decay(x, d) = x - ceil(x d / 4096)``, and for ``x < 0``, ``decay(x, d) = x + ceil(|x| d / 4096)``. On
a *band* of ``|v|`` where ``c = ceil(|v| dv / 4096)`` is constant the step is the affine map
``v <- v + (b - sign(v) c)`` (no clip, no wrap and no spike while ``v`` stays inside the band and the
thresholds), so ``j`` steps are one multiplication. :func:`ff` jumps to the last step before the
band edge, the threshold or the clip, then takes one exact step; it stops after a spike or at a
fixed point (``v' = v``). Its cost is the number of bands crossed, not the number of steps.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from spikeport.emulator import bits
from spikeport.emulator.engines.numba_kernels import keep_u, keep_v, lif_current, lif_fire, lif_voltage

_VMAX = bits.V_MAX
_UNITY = bits.DECAY_UNITY
_DECAY_BITS = bits.DECAY_BITS
_BIG = 1 << 62


@intrinsic
def _prefetch(typingctx, arr, idx):  # type: ignore[no-untyped-def]
    """``prefetch(a, i)`` / ``prefetch(a, (i, j, ...))``: hint the CPU to load that element into cache
    (LLVM ``llvm.prefetch``: read, high locality); no effect on values. Issued for many independent
    addresses before they are used, it overlaps their memory latencies."""
    sig = types.void(arr, idx)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        aryty, idxty = signature.args
        ary = context.make_array(aryty)(context, builder, args[0])
        if isinstance(idxty, types.BaseTuple):
            inds = cgutils.unpack_tuple(builder, args[1], len(idxty))
        else:
            inds = [args[1]]
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, inds, wraparound=False)
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


prefetch: Any = _prefetch  # the intrinsic itself (numba resolves it); typed loosely for mypy


@numba.njit(cache=True)
def lif_step(
    u: int, v: int, a_in: int, du: int, dv: int, bias: int, th: int, tl: int, ternary: bool, sub: bool
) -> tuple[int, int, int]:
    """One exact step; returns ``(u, v, spike)`` with spike in {-1, 0, 1}."""
    u = lif_current(u, a_in, keep_u(du))
    v, s = lif_fire(lif_voltage(v, u, bias, keep_v(dv)), th, tl, ternary, sub)
    return u, v, s


@numba.njit(cache=True)
def ff(
    v: int, bias: int, dv: int, th: int, tl: int, ternary: bool, sub: bool, rem: int
) -> tuple[int, int, int]:
    """Advance ``v`` (with ``u = 0``, no input) by up to ``rem`` steps, stopping right after a spike.

    Returns ``(steps, v, spike)``: ``steps`` taken (``rem`` when a fixed point is reached or no spike
    happens), ``v`` after them, and the spike of the last step (0 if none).
    """
    k = 0
    while k < rem:
        if v != 0 and v <= th and (not ternary or v >= tl):
            a = abs(v)
            c = (a * dv + _UNITY - 1) >> _DECAY_BITS
            if dv == 0:
                lo, hi = 1, _BIG
            else:
                lo, hi = ((c - 1) * _UNITY) // dv + 1, (c * _UNITY) // dv
            step = bias - c if v > 0 else bias + c
            if v < 0:
                lo, hi = -hi, -lo
            if step == 0:
                return rem, v, 0
            if step > 0:
                m = min((hi - v) // step + 1, (th - v) // step + 1)
            else:
                m = (v - lo) // (-step) + 1
                m = min(m, (v + _VMAX) // (-step) + 1)
                if ternary:
                    m = min(m, (v - tl) // (-step) + 1)
            j = min(m, rem - k) - 1
            v += j * step
            k += j
        _, nv, s = lif_step(0, v, 0, 0, dv, bias, th, tl, ternary, sub)
        k += 1
        if s != 0:
            return k, nv, s
        if nv == v:
            return rem, v, 0
        v = nv
    return k, v, 0


@numba.njit(cache=True)
def heap_push(ht: np.ndarray, hn: np.ndarray, hv: np.ndarray, size: int, t: int, n: int, ver: int) -> int:
    p = size
    while p > 0:
        q = (p - 1) >> 1
        if ht[q] <= t:
            break
        ht[p], hn[p], hv[p] = ht[q], hn[q], hv[q]
        p = q
    ht[p], hn[p], hv[p] = t, n, ver
    return size + 1


@numba.njit(cache=True)
def heap_pop(ht: np.ndarray, hn: np.ndarray, hv: np.ndarray, size: int) -> int:
    """Remove the root; returns the new size."""
    size -= 1
    t, n, ver = ht[size], hn[size], hv[size]
    p = 0
    while True:
        a = 2 * p + 1
        if a >= size:
            break
        if a + 1 < size and ht[a + 1] < ht[a]:
            a += 1
        if ht[a] >= t:
            break
        ht[p], hn[p], hv[p] = ht[a], hn[a], hv[a]
        p = a
    if size > 0:
        ht[p], hn[p], hv[p] = t, n, ver
    return size
