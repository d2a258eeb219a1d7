"""The diffused quantizer (Voelker et al. 2020), its annealing schedule and its metrics.

Every verdict is exact: rates are dyadic rationals, so float64 sums are exact and the telescoping
identity is checked with ``assert_array_equal``."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from spikeport.emulator.errors import ValidationError
from spikeport.quantize.training.sigma_delta import (
    SigmaDeltaActivation,
    activity_bits,
    anneal_dt,
    quantize_sequence,
    rounding_step,
    sigma_delta_step,
    significant_bits,
    telescoping_gap,
)


def _dyadic(shape: tuple[int, ...], seed: int, denom: int = 64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, denom, shape, generator=g).double() / denom


@pytest.mark.parametrize(("dt", "seed"), [(1.0, 0), (4.0, 1), (0.5, 2), (32.0, 3)])
def test_telescoping_identity_sum_n_equals_sum_r_dt_plus_v0_minus_vT(dt: float, seed: int) -> None:
    r = _dyadic((3, 50, 7), seed)
    v0 = _dyadic((3, 7), seed + 100)
    _, n, vT = quantize_sequence(r, dt, v0)
    np.testing.assert_array_equal(n.sum(1).numpy(), ((r * dt).sum(1) + v0 - vT).numpy())
    np.testing.assert_array_equal(telescoping_gap(n, r, dt, v0, vT).numpy(), np.zeros((3, 7)))
    assert bool(((vT >= 0) & (vT < 1)).all())


def test_constant_rate_gives_the_analytic_integer_series() -> None:
    """r dt = p / q from zero phase: n_t = floor(t p / q) - floor((t - 1) p / q)."""
    p, q, steps = 3, 8, 24
    r = torch.full((1, steps, 1), p / q, dtype=torch.float64)
    _, n, _ = quantize_sequence(r, 1.0)
    t = np.arange(1, steps + 1)
    want = (t * p) // q - ((t - 1) * p) // q
    np.testing.assert_array_equal(n[0, :, 0].numpy().astype(np.int64), want)


def test_rounding_loses_what_diffusion_keeps() -> None:
    r = torch.full((1, 40, 1), 0.25, dtype=torch.float64)
    _, n_round = rounding_step(r, 1.0)
    _, n_diff, _ = quantize_sequence(r, 1.0)
    assert int(n_round.sum()) == 0
    assert int(n_diff.sum()) == 10


def test_spikes_per_step_are_bounded_by_dt_for_rates_in_unit_interval() -> None:
    r = _dyadic((4, 30, 5), 7)
    for dt in (1.0, 3.0, 7.0):
        _, n, _ = quantize_sequence(r, dt, _dyadic((4, 5), 8))
        assert int(n.min()) >= 0 and int(n.max()) <= dt


def test_gradient_is_straight_through_to_the_rate() -> None:
    r = torch.rand(2, 6, dtype=torch.float64, requires_grad=True)
    out, _, _ = sigma_delta_step(r, torch.zeros(2, 6, dtype=torch.float64), 3.0)
    out.sum().backward()
    np.testing.assert_array_equal(r.grad.numpy(), np.ones((2, 6)))


def test_activation_module_modes_and_validation() -> None:
    act = SigmaDeltaActivation(dt=2.0, mode="diffuse")
    act.reset(1, 1)
    outs = [float(act(torch.tensor([[0.25]]))) for _ in range(4)]
    assert outs == [0.0, 0.5, 0.0, 0.5]
    act.set(mode="none")
    assert float(act(torch.tensor([[0.3]]))) == pytest.approx(0.3)
    with pytest.raises(ValidationError, match="mode"):
        act.set(mode="bogus")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="dt"):
        act.set(dt=0.0)


def test_anneal_dt_is_geometric_from_start_to_end() -> None:
    assert anneal_dt(0.0, 64.0, 1.0) == 64.0
    assert anneal_dt(0.5, 64.0, 1.0) == 8.0
    assert anneal_dt(1.0, 64.0, 1.0) == 1.0
    assert anneal_dt(2.0, 64.0, 1.0) == 1.0
    seq = [anneal_dt(p / 10, 100.0, 3.0) for p in range(11)]
    assert all(a > b for a, b in itertools.pairwise(seq))
    with pytest.raises(ValidationError):
        anneal_dt(0.5, 0.0, 1.0)


def test_anneal_dt_holds_the_final_dt_for_the_last_fraction() -> None:
    # hold = 0.5: the geometric path is covered in the first half, then dt stays at the end value
    assert anneal_dt(0.25, 64.0, 1.0, hold=0.5) == 8.0
    assert anneal_dt(0.5, 64.0, 1.0, hold=0.5) == 1.0
    assert anneal_dt(0.75, 64.0, 1.0, hold=0.5) == 1.0
    assert anneal_dt(0.0, 64.0, 1.0, hold=0.5) == 64.0
    with pytest.raises(ValidationError, match=r"anneal_dt\.hold: must be in \[0, 1\)"):
        anneal_dt(0.5, 64.0, 1.0, hold=1.0)


def test_activity_and_significant_bits() -> None:
    counts = torch.tensor([[[0, 1, 7], [0, 3, 8]], [[0, 2, 0], [0, 0, 1]]])
    np.testing.assert_array_equal(activity_bits(counts).numpy(), [0, 2, 4])
    # nonzero events 1, 7, 3, 8, 2, 1 -> bit lengths 1, 3, 2, 4, 2, 1
    assert significant_bits(counts) == pytest.approx(13 / 6)


def test_initial_phases() -> None:
    from spikeport.quantize.training.sigma_delta import initial_phase

    np.testing.assert_array_equal(initial_phase((2, 3), "zero").numpy(), np.zeros((2, 3)))
    np.testing.assert_array_equal(initial_phase((2, 3), "half").numpy(), np.full((2, 3), 0.5))
    v = initial_phase((50, 4), "random", torch.Generator().manual_seed(0))
    assert bool(((v >= 0) & (v < 1)).all())
    with pytest.raises(ValidationError, match="phase"):
        initial_phase((1,), "bogus")  # type: ignore[arg-type]


@pytest.mark.parametrize("dt", [1.0, 2.0, 4.0])
def test_diffusion_keeps_the_mean_rate_where_rounding_has_a_dead_zone(dt: float) -> None:
    """Rates below ``0.5 / dt`` never fire under per-step rounding; the diffused count stays within
    one spike of ``sum r dt`` (zero phase: ``sum n = sum r dt - v_T``, ``v_T`` in [0, 1))."""
    steps = 256
    r = _dyadic((2, steps, 3), 11) / (2 * dt)  # every rate in [0, 0.5 / dt), dyadic
    _, n_round = rounding_step(r, dt)
    _, n_diff, vT = quantize_sequence(r, dt)
    assert int(n_round.abs().sum()) == 0
    want = (r * dt).sum(1)
    np.testing.assert_array_equal(n_diff.sum(1).numpy(), (want - vT).numpy())
    assert bool(((want - n_diff.sum(1) >= 0) & (want - n_diff.sum(1) < 1)).all())
    assert float(want.min()) > 10  # the rounding error grows with the sequence: here > 10 spikes
