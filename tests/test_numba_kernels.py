"""The numba scalar kernels (engines/numba_kernels.py) and the compiled LIF steps built on them equal
the numpy kernels of emulator/kernels.py over the bit boundaries."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from spikeport.emulator import bits, kernels
from spikeport.emulator.engines import compiled_loop as C
from spikeport.emulator.engines import numba_kernels as nk
from spikeport.emulator.engines.event_kernels import lif_step

L = bits.STATE_LIMIT  # 2**23
I32 = 1 << 31


def _around(*centers: int) -> list[int]:
    return sorted({c + k for c in centers for k in (-2, -1, 0, 1, 2)})


WRAP_X = _around(0, I32, -I32, 2 * I32, -2 * I32, L, -L)
STATE_X = [*_around(0, L, -L, 2 * L, -2 * L, 3 * L, -3 * L), 12345, -98765]
A_IN = [*_around(0, 1 << 25, -(1 << 25), I32 - 1, -I32), 7, -7]
DECAYS = [0, 1, 2, 2047, 4094, 4095]


def test_wrap32_and_quirky_wrap24() -> None:
    xs = np.array(WRAP_X, np.int64)
    np.testing.assert_array_equal([nk.wrap32(int(x)) for x in xs], kernels.wrap32(xs))
    np.testing.assert_array_equal([nk.quirky_wrap24(int(x)) for x in xs], kernels.quirky_wrap24(xs))


@pytest.mark.parametrize("d", [*DECAYS, 4096])
def test_decay(d: int) -> None:
    xs = np.array(STATE_X + WRAP_X, np.int64)
    np.testing.assert_array_equal([nk.decay(int(x), d) for x in xs], kernels.decay(xs, d))
    np.testing.assert_array_equal(
        [nk.decay_keep(int(x), bits.DECAY_UNITY - d) for x in xs], kernels.decay(xs, d)
    )


@pytest.mark.parametrize("du", [-1, *DECAYS])  # LIFGroup allows du = -1
def test_lif_current(du: int) -> None:
    u, a = (np.array(c, np.int64) for c in zip(*itertools.product(STATE_X, A_IN), strict=True))
    got = [nk.lif_current(int(x), int(y), nk.keep_u(du)) for x, y in zip(u, a, strict=True)]
    np.testing.assert_array_equal(got, kernels.lif_current(u, a, du))


@pytest.mark.parametrize("dv", [*DECAYS, 4096])  # and dv = 4096
def test_lif_voltage(dv: int) -> None:
    vals = [*_around(0, L, -L), I32 - 1, -I32]
    v, u, b = (
        np.array(c, np.int64)
        for c in zip(*itertools.product(vals, vals, [0, 1, -1, 4095 << 10]), strict=True)
    )
    got = [nk.lif_voltage(int(x), int(y), int(z), nk.keep_v(dv)) for x, y, z in zip(v, u, b, strict=True)]
    np.testing.assert_array_equal(got, kernels.lif_voltage(v, u, b, dv))


@pytest.mark.parametrize(
    ("ternary", "subtract"), [(False, False), (False, True), (True, False), (True, True)]
)
def test_lif_fire(ternary: bool, subtract: bool) -> None:
    vth, vth_lo = 100, -50
    th, tl = vth << bits.VTH_SHIFT, vth_lo << bits.VTH_SHIFT
    v = np.array(_around(0, th, tl, L - 1, 1 - L), np.int64)
    s_ref = kernels.ternary_spikes(v, vth, vth_lo) if ternary else kernels.lif_spikes(v, vth)
    v_ref = np.where(s_ref != 0, v - th if subtract else 0, v)
    got = np.array([nk.lif_fire(int(x), th, tl, ternary, subtract) for x in v])
    np.testing.assert_array_equal(got[:, 1], s_ref)
    np.testing.assert_array_equal(got[:, 0], v_ref)
    if not ternary:
        binary = np.array([nk.lif_fire_binary(int(x), th, subtract) for x in v])
        np.testing.assert_array_equal(binary, got)


@pytest.mark.parametrize(("vth", "most"), [(100, 3), (100, 127), (1, 127), (0, 5), (bits.VTH_MAX, 2)])
@pytest.mark.parametrize("subtract", [False, True])
def test_lif_fire_multi(vth: int, most: int, subtract: bool) -> None:
    th = vth << bits.VTH_SHIFT
    v = np.array(
        sorted({*_around(0, th, 2 * th, 3 * th, most * th, (most + 1) * th, L - 1, 1 - L)}), np.int64
    )
    k_ref = kernels.lif_multi_spikes(v, vth, most)
    # an independent oracle in Python ints: as many whole thresholds as v holds (v > th), at most `most`
    oracle = [0 if x <= th else (most if th == 0 else min(most, x // th)) for x in v.tolist()]
    np.testing.assert_array_equal(k_ref, oracle)
    got = np.array([nk.lif_fire_multi(int(x), th, most, subtract) for x in v])
    np.testing.assert_array_equal(got[:, 1], oracle)
    v_ref = np.where(k_ref > 0, v - k_ref * th if subtract else 0, v)
    np.testing.assert_array_equal(got[:, 0], v_ref)


def _numpy_step(u, v, a, du, dv, bias, vth, vth_lo, ternary, subtract):  # type: ignore[no-untyped-def]
    u2 = kernels.lif_current(u, a, du)
    v2 = kernels.lif_voltage(v, u2, bias, dv)
    s = kernels.ternary_spikes(v2, vth, vth_lo) if ternary else kernels.lif_spikes(v2, vth)
    th = vth << bits.VTH_SHIFT
    return u2, np.where(s != 0, v2 - th if subtract else 0, v2), s


def _grid() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    u, v, a = zip(*itertools.product(STATE_X[::2], _around(0, L, -L, 6400), A_IN[::2]), strict=True)
    return np.array(u, np.int64), np.array(v, np.int64), np.array(a, np.int64)


@pytest.mark.parametrize(("ternary", "subtract"), [(False, False), (False, True), (True, False)])
@pytest.mark.parametrize(("du", "dv"), [(0, 0), (410, 256), (4095, 4095), (-1, 4096)])
def test_compiled_steps_equal_numpy(ternary: bool, subtract: bool, du: int, dv: int) -> None:
    """event_kernels.lif_step and the dense compiled loop's neuron steps (general and plain)."""
    u, v, a = _grid()
    vth, vth_lo, bias = 100, -50, 77
    want = _numpy_step(u, v, a, du, dv, bias, vth, vth_lo, ternary, subtract)
    th, tl = vth << bits.VTH_SHIFT, vth_lo << bits.VTH_SHIFT
    ev = np.array(
        [
            lif_step(int(x), int(y), int(z), du, dv, bias, th, tl, ternary, subtract)
            for x, y, z in zip(u, v, a, strict=True)
        ]
    )
    for k in range(3):
        np.testing.assert_array_equal(ev[:, k], want[k])
    n = u.size
    nparams = np.zeros((C.N_PARAMS, n), np.int64)
    nparams[C.P_KEEP_U], nparams[C.P_KEEP_V], nparams[C.P_BIAS] = nk.keep_u(du), nk.keep_v(dv), bias
    nparams[C.P_HI], nparams[C.P_LO], nparams[C.P_TERNARY], nparams[C.P_SUBTRACT] = th, tl, ternary, subtract
    runs = [lambda *s: C._neurons(1, *s[:2], np.zeros(n, np.int64), *s[2:])]
    if not ternary:
        rows = tuple(nparams[r] for r in (C.P_KEEP_U, C.P_KEEP_V, C.P_BIAS, C.P_HI, C.P_SUBTRACT))
        runs.append(lambda uu, vv, ring, _, *rest: C._neurons_plain(uu, vv, ring, *rows, *rest))
    for step in runs:
        uu, vv, msg, a_out = u.copy(), v.copy(), np.zeros(n, np.int32), np.zeros(n, np.int64)
        ring_row = kernels.wrap32(a).astype(np.int32)  # the ring holds int32 activations
        step(uu, vv, ring_row, nparams, msg, a_out)
        want_ring = _numpy_step(u, v, kernels.wrap32(a), du, dv, bias, vth, vth_lo, ternary, subtract)
        np.testing.assert_array_equal(uu, want_ring[0])
        np.testing.assert_array_equal(vv, want_ring[1])
        np.testing.assert_array_equal(msg, want_ring[2])
        np.testing.assert_array_equal(ring_row, 0)
