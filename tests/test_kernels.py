"""Kernels vs plainly written Python-int oracles, at every bit boundary (docs/lava-arithmetic.md)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from spikeport.emulator import kernels

# ------------------------------------------------------------------ oracles (Python ints only)


def o_wrap32(x: int) -> int:
    x %= 2**32
    return x - 2**32 if x >= 2**31 else x


def o_decay(x: int, d: int) -> int:
    p = x * (4096 - d)
    mag = abs(p) // 4096
    return mag if p > 0 else -mag


def o_current(u: int, a: int, du: int) -> int:
    s = o_wrap32(o_decay(u, du + 1) + o_wrap32(a * 64))
    if s > 2**23:
        return s - 2**24
    if s <= -(2**23):
        return s + 2**24
    return s


def o_voltage(v: int, u: int, bias: int, dv: int) -> int:
    s = o_wrap32(o_decay(v, dv) + u + bias)
    return max(-(2**23 - 1), min(2**23 - 1, s))


def o_bias(m: int, e: int) -> int:
    return m * 2**e if e >= 0 else m // 2 ** (-e)


def o_weight(w: int, mode: str, nbits: int) -> int:
    if mode == "mixed":
        w = max(-256, min(255, w))
        q = 2 ** (8 - nbits + 1)
        return (w // q) * q
    if mode == "excitatory":
        w = max(0, min(255, w))
        q = 2 ** (8 - nbits)
        return (w // q) * q
    w = max(-255, min(0, w))
    q = 2 ** (8 - nbits)
    return -((-w // q) * q)


def o_shift(a: int, e: int) -> int:
    return o_wrap32(a * 2**e if e > 0 else a // 2 ** (-e))


def arr(*xs: int) -> np.ndarray:
    return np.array(xs, dtype=np.int64)


# ------------------------------------------------------------------ tests

EDGE = [0, 1, -1, 63, -64, 4095, -4096, 2**17, -(2**17), 2**23 - 1, -(2**23 - 1), 2**23, -(2**23)]
EDGE += [2**23 + 1, -(2**23) - 1, 2**24, -(2**24), 2**31 - 1, -(2**31), 2**30, -(2**30), 2**25, -(2**25)]


def test_wrap32_boundaries() -> None:
    xs = [0, 1, -1, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**32, 2**40 + 5, -(2**40) - 7]
    np.testing.assert_array_equal(kernels.wrap32(arr(*xs)), [o_wrap32(x) for x in xs])


@pytest.mark.parametrize("d", [0, 1, 2, 2047, 4094, 4095, 4096])
def test_decay_rounds_toward_zero(d: int) -> None:
    xs = [0, 1, -1, 4095, -4095, 4097, -4097, 2**23 - 1, -(2**23 - 1), 2**31 - 1, -(2**31), 12345, -12345]
    np.testing.assert_array_equal(kernels.decay(arr(*xs), d), [o_decay(x, d) for x in xs])


def test_decay_identity_and_full() -> None:
    np.testing.assert_array_equal(kernels.decay(arr(-5, 7, 2**23), 0), [-5, 7, 2**23])
    np.testing.assert_array_equal(kernels.decay(arr(-4095, 4095), 4095), [0, 0])  # |x * 1| >> 12
    np.testing.assert_array_equal(kernels.decay(arr(-4096, 4096), 4095), [-1, 1])


def test_quirky_wrap_keeps_plus_2_23() -> None:
    xs = [2**23, -(2**23), 2**23 + 1, -(2**23) - 1, 2**23 - 1, -(2**23 - 1), 2**24 + 2**23 + 5]
    want = [2**23, 2**23, -(2**23) + 1, 2**23 - 1, 2**23 - 1, -(2**23 - 1), 2**23 + 5]
    np.testing.assert_array_equal(kernels.quirky_wrap24(arr(*xs)), want)


@pytest.mark.parametrize("du", [0, 1, 2047, 4094, 4095])
def test_lif_current_grid(du: int) -> None:
    us = [0, 1, -1, 2**23, -(2**23), 2**23 - 1, -(2**23 - 1), 2**30, -(2**31), 2**31 - 1, 977]
    As = [0, 1, -1, 2**17, -(2**17), 2**17 - 1, 2**24, 2**25, -(2**25), 2**31 - 1, -(2**31), 33]
    pairs = list(itertools.product(us, As))
    u = arr(*[p[0] for p in pairs])
    a = arr(*[p[1] for p in pairs])
    np.testing.assert_array_equal(kernels.lif_current(u, a, du), [o_current(x, y, du) for x, y in pairs])


def test_lif_current_exact_boundaries() -> None:
    # a_in << 6 of 2**17 is exactly 2**23: survives; -2**23 flips to +2**23
    np.testing.assert_array_equal(kernels.lif_current(arr(0, 0), arr(2**17, -(2**17)), 4095), [2**23, 2**23])
    # a_in << 6 wraps in int32: 2**25 << 6 = 2**31 -> -2**31, then +2**24 once
    np.testing.assert_array_equal(kernels.lif_current(arr(0), arr(2**25), 4095), [-(2**31) + 2**24])


@pytest.mark.parametrize("dv", [0, 1, 4095])
def test_lif_voltage_grid(dv: int) -> None:
    vs = [0, 1, -1, 2**23 - 1, -(2**23 - 1), 5000, -5000]
    us = [0, 1, -1, 2**23, -(2**23), 2**31 - 1, -(2**31), 2**24 + 3]
    bs = [0, 4095 * 2**10, -4096 * 2**10, -1]
    trip = list(itertools.product(vs, us, bs))
    got = kernels.lif_voltage(
        arr(*[t[0] for t in trip]), arr(*[t[1] for t in trip]), arr(*[t[2] for t in trip]), dv
    )
    np.testing.assert_array_equal(got, [o_voltage(v, u, b, dv) for v, u, b in trip])


def test_lif_voltage_clip_limits() -> None:
    got = kernels.lif_voltage(arr(2**23 - 1, -(2**23 - 1)), arr(1, -1), arr(0, 0), 0)
    np.testing.assert_array_equal(got, [2**23 - 1, -(2**23 - 1)])
    # int32 wrap before the clip: a large positive sum wraps negative and is clipped low
    got = kernels.lif_voltage(arr(2**23 - 1), arr(2**31 - 1), arr(0), 0)
    np.testing.assert_array_equal(got, [-(2**23 - 1)])


def test_effective_bias_negative_exp() -> None:
    cases = [(m, e) for m in (-4096, -4095, -1, 0, 1, 7, 4095) for e in range(-12, 11)]
    got = kernels.effective_bias(arr(*[c[0] for c in cases]), arr(*[c[1] for c in cases]))
    np.testing.assert_array_equal(got, [o_bias(m, e) for m, e in cases])


def test_spikes_strict_threshold_and_ternary() -> None:
    np.testing.assert_array_equal(kernels.lif_spikes(arr(6400, 6401, -7), 100), [0, 1, 0])
    got = kernels.ternary_spikes(arr(6401, 6400, -6400, -6401, 0), 100, -100)
    np.testing.assert_array_equal(got, [1, 0, 0, -1, 0])


def test_lif_reset_due() -> None:
    assert [t for t in range(1, 12) if kernels.lif_reset_due(t, 4, 1)] == [1, 5, 9]
    assert [t for t in range(1, 12) if kernels.lif_reset_due(t, 5, 0)] == [5, 10]
    assert not any(kernels.lif_reset_due(t, 0, 0) for t in range(1, 5))


def test_sign_mode() -> None:
    assert kernels.sign_mode(np.array([[0, 3]])) == "excitatory"
    assert kernels.sign_mode(np.zeros((2, 2))) == "excitatory"
    assert kernels.sign_mode(np.array([[0, -3]])) == "inhibitory"
    assert kernels.sign_mode(np.array([[1, -3]])) == "mixed"


@pytest.mark.parametrize("nbits", range(1, 9))
@pytest.mark.parametrize("mode", ["mixed", "excitatory", "inhibitory"])
def test_effective_weights_every_mode_and_width(mode: str, nbits: int) -> None:
    base = list(range(-256, 256))
    if mode == "excitatory":
        w = [x for x in base if x >= 0]
    elif mode == "inhibitory":
        w = [x for x in base if x <= 0]
    else:
        w = base
    got = kernels.effective_weights(np.array([w]), nbits)
    assert kernels.sign_mode(np.array([w])) == mode
    np.testing.assert_array_equal(got[0], [o_weight(x, mode, nbits) for x in w])


def test_effective_weights_lsb_examples() -> None:
    # docs/lava-arithmetic.md, "Dense weights: sign modes and truncation": mixed 8-bit drops the LSB:
    # 1 -> 0, 3 -> 2, -1 -> -2, 127 -> 126
    np.testing.assert_array_equal(kernels.effective_weights(np.array([[1, 3, -1, 127]])), [[0, 2, -2, 126]])
    # inhibitory clips -256 to -255 and truncates toward zero
    np.testing.assert_array_equal(kernels.effective_weights(np.array([[-256, -3]]), 7), [[-254, -2]])


@pytest.mark.parametrize("e", range(-8, 8))
def test_shift_activation_every_exponent(e: int) -> None:
    xs = [0, 1, -1, 3, -3, 255, -256, 2**23, -(2**23) - 5, 2**31 - 1, -(2**31), 2**28 + 7, -(2**28) - 7]
    np.testing.assert_array_equal(kernels.shift_activation(arr(*xs), e), [o_shift(x, e) for x in xs])


def test_dense_activation_binary_and_graded() -> None:
    rng = np.random.default_rng(1)
    w = rng.integers(-256, 256, size=(5, 7))
    msg = np.array([[1, 0, 1, 1, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0]])
    got = kernels.dense_activation(w, msg, -3, graded=False)
    for b in range(2):
        want = [o_shift(sum(int(w[j, i]) for i in range(7) if msg[b, i]), -3) for j in range(5)]
        np.testing.assert_array_equal(got[b], want)
    # graded: the int32 dot product wraps before the shift
    big = np.array([[2**23 - 1] * 7])
    got = kernels.dense_activation(w, big, -2, graded=True)
    want = [o_shift(o_wrap32(sum(int(w[j, i]) * (2**23 - 1) for i in range(7))), -2) for j in range(5)]
    np.testing.assert_array_equal(got[0], want)
    # binary connections treat any nonzero message (e.g. a ternary -1) as a 1
    np.testing.assert_array_equal(
        kernels.dense_activation(w, np.array([[-1, 0, 0, 0, 0, 0, 0]]), 0, graded=False)[0], w[:, 0]
    )


def test_delay_dense_wraps_products_not_sum() -> None:
    w = np.array([[255, 255]])
    msg = np.array([[2**23, 2**23]])
    got = kernels.delay_dense_activation(w, msg, -1, graded=True)
    prod = o_wrap32(255 * 2**23)
    assert got[0, 0] == o_shift(prod + prod, -1)


def _o_sigma_delta(seq: list[int], vth: int, bias: int, state_exp: int, cum: bool, relu: bool) -> list[tuple]:
    sigma = act = residue = error = 0
    out = []
    for a in seq:
        sigma = o_wrap32(sigma + a)
        new = o_wrap32(sigma + bias)
        if relu and new < 0:
            new = 0
        delta = o_wrap32(new - act + residue)
        if cum:
            error = o_wrap32(error + delta)
            s = delta if abs(error) >= vth else 0
            if s != 0:
                error = 0
        else:
            s = delta if abs(delta) >= vth else 0
        residue = delta - s
        act = new
        out.append((s // 2**state_exp, sigma, act, residue, error))
    return out


@pytest.mark.parametrize(("cum", "relu", "state_exp"), [(False, True, 0), (True, True, 3), (False, False, 2)])
def test_sigma_delta_step(cum: bool, relu: bool, state_exp: int) -> None:
    rng = np.random.default_rng(7)
    seq = [int(x) for x in rng.integers(-300, 400, size=60)]
    vth, bias = 40 * 2**state_exp, 5 * 2**state_exp
    st = kernels.SigmaDeltaState(*(np.zeros(1, np.int64) for _ in range(4)))
    got = []
    for a in seq:
        st, s = kernels.sigma_delta_step(
            st, np.array([a]), vth=vth, bias=np.array([bias]), relu=relu, cum_error=cum, state_exp=state_exp
        )
        got.append((int(s[0]), *(int(getattr(st, k)[0]) for k in ("sigma", "act", "residue", "error"))))
    assert got == _o_sigma_delta(seq, vth, bias, state_exp, cum, relu)


def test_sigma_delta_corrected_matches_oracle_and_does_not_drift() -> None:
    rng = np.random.default_rng(3)
    seq = [int(x) for x in rng.integers(-50, 80, size=200)]
    vth, state_exp = 4, 2
    st = kernels.SigmaDeltaState(*(np.zeros(1, np.int64) for _ in range(4)))
    old = kernels.SigmaDeltaState(*(np.zeros(1, np.int64) for _ in range(4)))
    sigma = act = 0
    recv_new = recv_old = 0
    worst_new = worst_old = 0
    for a in seq:
        st, s = kernels.sigma_delta_corrected_step(
            st, np.array([a]), vth=vth, bias=np.zeros(1), relu=True, state_exp=state_exp
        )
        old, s_old = kernels.sigma_delta_step(
            old, np.array([a]), vth=vth, bias=np.zeros(1), relu=True, cum_error=False, state_exp=state_exp
        )
        # oracle of PR #875's model
        sigma += a
        target = max(sigma, 0)
        delta = target - act
        sent = (delta if abs(delta) >= vth else 0) // 2**state_exp
        act += sent * 2**state_exp
        assert int(s[0]) == sent and int(st.act[0]) == act and int(st.sigma[0]) == sigma
        assert int(st.residue[0]) == 0 and int(st.error[0]) == 0
        recv_new += int(s[0]) * 2**state_exp
        recv_old += int(s_old[0]) * 2**state_exp
        worst_new = max(worst_new, abs(target - recv_new))
        worst_old = max(worst_old, abs(target - recv_old))
    assert worst_new < vth + 2**state_exp  # the receiver never drifts further than one step
    assert worst_old > worst_new  # 0.10.0 loses the shifted-out LSBs
