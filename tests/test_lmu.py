"""The hybrid-spiking LMU: Legendre (A, B) and their zero-order hold, the integer deployment onto
SigmaDelta groups and graded connections, and its bit-exactness (emulator and Lava against the
analytic integer oracle :func:`~spikeport.quantize.lmu_deploy.integer_forward`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from spikeport.emulator.engines.dispatch import run
from spikeport.emulator.errors import ValidationError
from spikeport.quantize import lmu_deploy as D
from spikeport.quantize.training.lmu import LMU, legendre_ab, zoh
from spikeport.quantize.training.sigma_delta import SigmaDeltaActivation

STEPS = 5


def test_legendre_matrices_follow_the_formula() -> None:
    A, B = legendre_ab(3)
    np.testing.assert_array_equal(A, [[-1, -1, -1], [3, -3, -3], [-5, 5, -5]])
    np.testing.assert_array_equal(B, [1, -3, 5])


def test_zoh_of_order_one_is_the_exponential() -> None:
    Abar, Bbar = zoh(*legendre_ab(1), theta=4.0)
    np.testing.assert_allclose(Abar, [[np.exp(-0.25)]], rtol=1e-12)
    np.testing.assert_allclose(Bbar, [1 - np.exp(-0.25)], rtol=1e-12)


def test_zoh_matches_many_euler_substeps() -> None:
    A, B = legendre_ab(4)
    Abar, Bbar = zoh(A, B, theta=10.0)
    k = 20000
    Ae = np.linalg.matrix_power(np.eye(4) + A / (10.0 * k), k)
    np.testing.assert_allclose(Abar, Ae, atol=1e-3)
    np.testing.assert_allclose(Bbar, np.linalg.solve(A, (Abar - np.eye(4)) @ B), atol=1e-9)
    assert np.all(np.abs(np.linalg.eigvals(Abar)) < 1)


def _small(seed: int = 1, dt: float = 7.0) -> tuple[LMU, np.ndarray]:
    torch.manual_seed(seed)
    model = LMU(5, 4, 6.0, 6, 3, act=SigmaDeltaActivation(dt=dt), seed=seed)
    with torch.no_grad():
        model.b.fill_(0.3)
    x = np.random.default_rng(seed).integers(0, 256, (4, STEPS, 5))
    return model, x


def test_forward_shapes_and_quantizer_counts() -> None:
    model, x = _small()
    model.act.keep_counts = True
    logits = model(torch.tensor(x / 255.0, dtype=torch.float32))
    assert logits.shape == (4, 3)
    counts = torch.stack(model.act.counts, 1)
    assert counts.shape == (4, STEPS + 1, 6)
    assert int(counts.min()) >= 0 and int(counts.max()) <= 7


def _feedback_free_pair(readout_steps: int = 0) -> tuple[LMU, LMU]:
    """The FFT-memory model and the step-by-step model with the same weights and ``e_h = e_m = 0``."""
    kw = dict(memory_grid_exp=None, readout_steps=readout_steps, seed=4)
    fast = LMU(3, 6, 12.0, 5, 4, memory_feedback=False, **kw)  # type: ignore[arg-type]
    slow = LMU(3, 6, 12.0, 5, 4, **kw)  # type: ignore[arg-type]
    with torch.no_grad():
        for name in ("e_x", "W_x", "W_h", "W_m", "b", "W_o", "b_o"):
            getattr(slow, name).copy_(getattr(fast, name))
        slow.e_h.zero_()
        slow.e_m.zero_()
    return fast, slow


@pytest.mark.parametrize("readout_steps", [0, 3])
def test_feedback_free_memory_by_fft_equals_the_recurrence(readout_steps: int) -> None:
    """Float equivalence of two formulas (FFT convolution vs recurrence), not a bit-exactness claim."""
    fast, slow = _feedback_free_pair(readout_steps)
    assert "e_h" not in dict(fast.named_parameters())
    x = torch.rand(4, 17, 3, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = fast(x), slow(x)
    assert float((a - b).abs().max()) < 1e-5 and float(a.std()) > 1e-3


def test_readout_over_the_last_steps_only_and_not_deployed() -> None:
    fast, _ = _feedback_free_pair(readout_steps=2)
    x = torch.rand(3, 9, 3, generator=torch.Generator().manual_seed(1))
    y = x.clone()
    y[:, :2] = 0.0  # a change early on moves the memory, hence the last steps too ...
    with torch.no_grad():
        fast.W_m.zero_()  # ... unless the memory is not read: then only the last 2 steps count
        fast.W_h.zero_()
        torch.testing.assert_close(fast(x), fast(y), rtol=0, atol=0)
        z = x.clone()
        z[:, -1] = 1.0 - z[:, -1]
        assert not torch.equal(fast(x), fast(z))
    with pytest.raises(ValidationError, match=r"LMU\.readout_steps: must be 0 to deploy"):
        fast.deploy_params()
    with pytest.raises(ValidationError, match=r"LMU\.readout_steps: must be >= 0"):
        LMU(3, 6, 12.0, 5, 4, readout_steps=-1)


def test_split_weight_parts_are_single_signed_representable_and_exact_on_grid() -> None:
    w = np.random.default_rng(0).normal(size=(5, 7)) * 3
    parts, err = D.split_weight(w, 16, "w")
    total = sum(m * 2.0**e for m, e in parts)
    assert err == np.max(np.abs(total - w)) and err <= 2.0 ** (parts[0][1] - 1)
    for m, e in parts:
        assert m.min() >= 0 or m.max() <= 0
        assert np.abs(m).max() <= 255 and -8 <= e <= 7
    with pytest.raises(ValidationError, match="weight_exp"):
        D.split_weight(np.array([[1e9]]), 16, "w")


@pytest.mark.parametrize("variant", D.VARIANTS)
def test_emulator_runs_the_deployed_network_bit_exact(variant: str) -> None:
    model, x = _small()
    il = D.quantize_lmu(model.deploy_params(), steps=STEPS)
    want = D.integer_forward(il, x, variant)
    net = D.build_network(il, variant)
    got = D.decode(il, run(net, D.encode_inputs(il, x), record=("spikes", "act")).outputs, STEPS)
    assert int(want["n"].sum()) > 0
    np.testing.assert_array_equal(got["n"], want["n"])
    np.testing.assert_array_equal(got["logits"], want["logits"])


def test_corrected_sigma_delta_equals_the_error_carry_pair_and_naive_drops_it() -> None:
    model, x = _small(seed=3, dt=3.0)
    il = D.quantize_lmu(model.deploy_params(), steps=STEPS)
    lava, corrected, naive = (D.integer_forward(il, x, v) for v in D.VARIANTS)
    np.testing.assert_array_equal(lava["n"], corrected["n"])
    np.testing.assert_array_equal(naive["n"], naive["q"] >> il.scales.q_exp)
    assert not np.array_equal(lava["n"], naive["n"])


def test_integer_quantizer_telescopes() -> None:
    """S sum_t n_t = sum_t q_t - v_T, 0 <= v_T < S: the deployed quantizer loses nothing."""
    model, x = _small(seed=2)
    il = D.quantize_lmu(model.deploy_params(), steps=STEPS)
    out = D.integer_forward(il, x, "lava")
    s = 1 << il.scales.q_exp
    vT = out["v"][:, -1]
    np.testing.assert_array_equal(s * out["n"].sum(1), out["q"].sum(1) - vT)
    assert vT.min() >= 0 and vT.max() < s


def test_quantize_refuses_fractional_dt_and_reports_memory_error() -> None:
    model, x = _small()
    params = model.deploy_params()
    with pytest.raises(ValidationError, match="dt"):
        D.quantize_lmu({**params, "dt": 2.5}, steps=STEPS)
    il = D.quantize_lmu(params, steps=STEPS)
    err = D.memory_error(params, il, x, D.integer_forward(il, x))
    assert 0 < err["relative_to_peak"] < 0.05
    assert set(il.report["weights"]) == {"M", "B_x", "B_h", "W_m", "W_x", "W_h", "W_o"}
    # the memory matrix is trained on Lava's 2**-8 weight grid, so it deploys without weight error
    assert il.report["weights"]["M"]["max_abs_error"] == 0.0
    assert 0 < model.memory_grid_error() <= 2.0**-9


@pytest.mark.lava
@pytest.mark.parametrize("variant", ["lava", "naive", "corrected"])
def test_deployed_lmu_is_bit_exact_on_lava(variant: str) -> None:
    from spikeport.lava.backend import run_lava

    model, x = _small()
    il = D.quantize_lmu(model.deploy_params(), D.Scales(precision_bits=8), steps=3)
    net, xs = D.build_network(il, variant), D.encode_inputs(il, x[:2, :3])
    rec = ("spikes", "act", "sigma")
    lava = run_lava(net, xs, record=rec)
    emu = run(net, xs, record=rec)
    assert sorted(lava.outputs) == sorted(emu.outputs)
    for key in sorted(lava.outputs):
        np.testing.assert_array_equal(emu.outputs[key], lava.outputs[key], err_msg=key)
    np.testing.assert_array_equal(
        D.decode(il, lava.outputs, 3)["n"], D.integer_forward(il, x[:2, :3], variant)["n"]
    )
