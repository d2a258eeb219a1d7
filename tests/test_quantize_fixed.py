"""quantize/fixed.py: decays, weights, biases against independent oracles (Lava's own weightutils)."""

from __future__ import annotations

import numpy as np
import pytest
from spikeport.quantize import fixed_point as fixed


def test_dv_du_lava_plus_one_quirk():
    # alpha = dt/tau = 0.1 -> 409.6 -> dv 410; du gets one less because Lava decays u by du + 1
    assert fixed.dv_from_alpha(0.1) == 410
    assert fixed.du_from_alpha(0.1) == 409
    assert fixed.alpha_from_du(409) == 410 / 4096
    # no synaptic state: alpha 1 -> du 4095, u decays by (4096 - 4096)/4096 = 0
    assert fixed.du_from_alpha(1.0) == 4095
    assert fixed.dv_from_alpha(1.0) == 4095  # clamped: v keeps 1/4096 at most
    # tiny decays round to no leak
    assert fixed.dv_from_alpha(1e-5) == 0
    assert fixed.du_from_alpha(1e-5) == 0


def test_effective_tau_inverts_alpha():
    dt = 1e-3
    assert fixed.effective_tau(dt, fixed.alpha_from_dv(410)) == pytest.approx(dt * 4096 / 410)
    assert np.isinf(fixed.effective_tau(dt, 0.0))
    a = fixed.decay_alpha(dt, 5e-3, "exp")
    assert fixed.effective_tau(dt, a, "exp") == pytest.approx(5e-3)


def test_decay_to_shift_gives_powers_of_two():
    d = fixed.decay_to_shift(np.array([0, 1, 3, 410, 700, 4095]))
    np.testing.assert_array_equal(d, [0, 1, 4, 512, 512, 4095])


def _lava_truncate(w, bits_=8):
    from spikeport.lava.compat import import_lava

    wu = import_lava("lava.utils.weightutils")
    mode = wu.determine_sign_mode(w)
    w = wu.clip_weights(w, mode, num_bits=8)
    return wu.truncate_weights(w, mode, bits_)


@pytest.mark.lava
@pytest.mark.parametrize("nbits", [8, 6, 3])
def test_lava_weights_replica_matches_lava(nbits):
    rng = np.random.default_rng(0)
    for w in (rng.integers(-300, 300, (7, 9)), rng.integers(0, 300, (4, 5)), -rng.integers(0, 300, (3, 3))):
        np.testing.assert_array_equal(fixed.lava_weights(w, nbits), _lava_truncate(w, nbits))


@pytest.mark.lava
@pytest.mark.parametrize("nbits", [8, 5])
def test_quantized_weights_survive_lava_unchanged(nbits):
    rng = np.random.default_rng(1)
    for w in (
        rng.normal(0, 3, (20, 30)),
        np.abs(rng.normal(0, 1, (5, 6))),
        -np.abs(rng.normal(0, 1, (5, 6))),
    ):
        q = fixed.quantize_weights(w, nbits)
        np.testing.assert_array_equal(_lava_truncate(q.mant, nbits), q.mant)
        qs = fixed.quantize_weights_pow2(w, nbits)
        np.testing.assert_array_equal(_lava_truncate(qs.mant, nbits), qs.mant)


def test_mixed_sign_8bit_emits_even_mantissas_only():
    w = np.array([[0.9, -0.3, 0.01, 0.77]])
    q = fixed.quantize_weights(w)
    assert q.sign_mode == "mixed"
    assert np.all(q.mant % 2 == 0)
    # the largest weight fills the range: 0.9 * 2**8 = 230.4 -> 230
    assert q.exp == -8 and q.mant[0, 0] == 230
    assert np.max(np.abs(q.mant * 2.0**q.exp - w)) <= 2.0**q.exp  # half a step of 2 mantissa LSBs


def test_excitatory_weights_use_all_8_bits():
    w = np.array([[255.0, 1.0, 3.0]])
    q = fixed.quantize_weights(w)
    assert q.exp == 0
    np.testing.assert_array_equal(q.mant, [[255, 1, 3]])


def test_weight_exponent_saturates_at_7():
    q = fixed.quantize_weights(np.array([[1e6, 1.0]]))
    assert q.exp == 7 and q.saturated == 1 and q.mant[0, 0] == 255


def test_pow2_round_formula():
    w = np.array([0.0, 0.3, -0.7, 2.5, -5.0, 6.0])
    # log2: 0.3 -> -1.74 -> 2**-2; 0.7 -> -0.51 -> 2**-1; 2.5 -> 1.32 -> 2; 5 -> 2.32 -> 4; 6 -> 2.58 -> 8
    np.testing.assert_array_equal(fixed.pow2_round(w), [0, 0.25, -0.5, 2, -4, 8])


def test_pow2_weights_are_powers_of_two():
    rng = np.random.default_rng(2)
    w = rng.normal(0, 1, (10, 10))
    q = fixed.quantize_weights_pow2(w)
    mag = np.abs(q.mant[q.mant != 0])
    assert np.all(mag & (mag - 1) == 0)
    assert np.all(mag >= 2)  # mixed 8-bit: Lava drops the LSB, so 1 is not representable
    assert mag.max() == 128
    big = np.abs(w) * 2.0**-q.exp >= 2
    np.testing.assert_array_equal(
        np.abs(q.mant[big]) * 2.0**q.exp, np.abs(fixed.pow2_round(w[big])).clip(max=128 * 2.0**q.exp)
    )


def test_bias_quantization():
    mant, exp, sat = fixed.quantize_bias(np.array([0.0, 100.4, -4095.0, 10000.0, 1e9]))
    np.testing.assert_array_equal(exp, [0, 0, 0, 2, 10])
    np.testing.assert_array_equal(mant[:4], [0, 100, -4095, 2500])
    assert mant[4] == 4095 and sat == 1
    np.testing.assert_array_equal(fixed.bias_value(np.array([5, -5]), np.array([2, -1])), [20, -3])


def test_vth_limit_and_headroom():
    assert fixed.vth_limit(0) == 2**17 - 1
    assert fixed.vth_limit(2**22) == (2**23 - 1 - 2**22) // 64
    assert fixed.headroom_bits(2**20, 2**23) == pytest.approx(3.0)
    assert fixed.headroom_bits(0, 2**23) == float("inf")
