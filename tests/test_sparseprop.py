"""SparseProp: heap vs naive O(N) reference, PTCs vs the voltage dynamics, and the exact continuous-time
feed-forward LIF reference vs analytic solutions and vs fine forward-Euler runs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from spikeport.emulator.continuous.exact_lif import (
    LIFLayer,
    Spikes,
    discretization_error,
    euler_run,
    exact_run,
)
from spikeport.emulator.continuous.sparseprop import BalancedNetwork, SpikeRecord, simulate
from spikeport.emulator.continuous.sparseprop_kernels import LIF, QIF, ptc
from spikeport.emulator.errors import ValidationError


def test_lif_heap_matches_naive_spike_for_spike() -> None:
    net = BalancedNetwork(model="lif", n=2000, k=100, seed=5)
    naive = simulate(net, 20_000, method="naive")
    for method in ("heap", "tree"):
        fast = simulate(net, 20_000, method=method)  # type: ignore[arg-type]
        np.testing.assert_array_equal(fast.neurons, naive.neurons)
        np.testing.assert_allclose(fast.times, naive.times, rtol=1e-9, atol=0)
        np.testing.assert_allclose(fast.phases, naive.phases, rtol=0, atol=1e-11)
    heap = fast
    assert heap.times[-1] > 20 * 4 * 0.024  # ran through many offset renormalizations


def test_qif_heap_matches_naive_statistically() -> None:
    net = BalancedNetwork(model="qif", n=2000, k=100, seed=2)
    heap = simulate(net, 30_000, method="tree")
    naive = simulate(net, 30_000, method="naive")
    np.testing.assert_array_equal(heap.neurons[:50], naive.neurons[:50])  # identical until chaos grows
    assert heap.rate == pytest.approx(naive.rate, rel=0.05)
    assert heap.isi_cv() == pytest.approx(naive.isi_cv(), rel=0.1)
    assert 0.3 < heap.isi_cv() < 1.5  # irregular firing of the balanced state


def _lif_voltage(phi: float, drive: float, tau: float) -> float:
    return drive * (1.0 - math.exp(-phi / tau))


@pytest.mark.parametrize("phi", [-0.01, 0.0, 0.003, 0.02])
def test_ptcs_are_voltage_jumps(phi: float) -> None:
    net = BalancedNetwork(model="lif", n=10, k=4)
    i, dv = net.drive, net.pulse
    new = ptc(LIF, phi, -dv / i, net.tau)
    assert _lif_voltage(new, i, net.tau) == pytest.approx(_lif_voltage(phi, i, net.tau) + dv, abs=1e-12)
    q = BalancedNetwork(model="qif", n=10, k=4)
    root = math.sqrt(q.drive)
    theta = math.pi * phi / 0.03
    new_q = ptc(QIF, theta, q.pulse / root, q.tau)
    assert root * math.tan(new_q / 2) == pytest.approx(root * math.tan(theta / 2) + q.pulse, abs=1e-12)


def test_connectivity_is_regenerated_without_self_loops() -> None:
    net = BalancedNetwork(n=500, k=50, seed=9)
    rows = np.array([net.targets(j) for j in range(net.n)])
    assert rows.min() >= 0 and rows.max() < net.n
    assert not np.any(rows == np.arange(net.n)[:, None])
    np.testing.assert_array_equal(rows[17], BalancedNetwork(n=500, k=50, seed=9).targets(17))
    assert not np.array_equal(rows[17], BalancedNetwork(n=500, k=50, seed=10).targets(17))
    indeg = np.bincount(rows.ravel(), minlength=net.n)
    assert indeg.mean() == 50 and indeg.std() < 3 * math.sqrt(50)


def test_isi_cv_of_regular_and_known_trains() -> None:
    times = np.array([1.0, 2.0, 3.0, 4.0, 1.5, 2.0, 4.0, 4.5])
    who = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    order = np.argsort(times, kind="stable")
    rec = SpikeRecord(times=times[order], neurons=who[order], phases=np.zeros(2), n=2)
    isi1 = np.array([0.5, 2.0, 0.5])
    assert rec.isi_cv() == pytest.approx((0.0 + isi1.std() / isi1.mean()) / 2)


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValidationError, match=r"BalancedNetwork.k: must be in \[1, n\)"):
        BalancedNetwork(n=10, k=10)
    with pytest.raises(ValidationError, match="method"):
        simulate(BalancedNetwork(n=10, k=2), 5, method="fast")  # type: ignore[arg-type]


# ------------------------------------------------------------------ feed-forward continuous-time reference


def test_exact_single_neuron_analytic() -> None:
    tau, vl = 0.02, 1.5
    layer = LIFLayer(weights=[[0.0]], tau=tau, r=1.0, v_leak=vl, v_threshold=1.0, v_reset=0.0)
    out = exact_run([layer], Spikes(times=np.zeros(0), index=np.zeros(0, np.int64), n=1), 0.2)[0]
    period = tau * math.log(vl / (vl - 1.0))
    want = period * np.arange(1, int(0.2 / period) + 1)
    np.testing.assert_allclose(out.times, want, rtol=1e-12)
    # a kick: v jumps by r*w/tau at the input; above threshold -> spike at that instant
    kick = LIFLayer(weights=[[0.02]], tau=tau, r=1.0, v_leak=0.0, v_threshold=1.0, v_reset=0.0)
    inp = Spikes(times=np.array([0.01, 0.05, 0.0501]), index=np.zeros(3, np.int64), n=1)
    # 0.01: v = 1.0 (not > 1); 0.05: e^-2 + 1 > 1 -> spike, v = 0; 0.0501: 0 + 1.0, not > 1
    np.testing.assert_array_equal(exact_run([kick], inp, 0.1)[0].times, [0.05])
    kick2 = LIFLayer(weights=[[0.012]], tau=tau, r=1.0, v_leak=0.0, v_threshold=1.0, v_reset=0.0)
    v = 0.6 * math.exp(-0.04 / tau) + 0.6  # at 0.05: 0.68, no spike
    assert v < 1.0 and v * math.exp(-0.0001 / tau) + 0.6 > 1.0
    np.testing.assert_array_equal(exact_run([kick2], inp, 0.1)[0].times, [0.0501])


def _two_layers(rng: np.random.Generator) -> tuple[list[LIFLayer], Spikes]:
    t = np.sort(rng.uniform(0, 0.3, 300))
    inp = Spikes(times=t, index=rng.integers(0, 20, 300), n=20)
    l1 = LIFLayer(
        weights=rng.normal(0.3, 0.3, (30, 20)), tau=0.02, r=0.02, v_leak=0.0, v_threshold=1.0, v_reset=0.0
    )
    l2 = LIFLayer(
        weights=rng.normal(0.4, 0.3, (10, 30)),
        tau=0.01,
        r=0.01,
        v_leak=np.linspace(0, 1.5, 10),
        v_threshold=1.0,
        v_reset=0.0,
    )
    return [l1, l2], inp


def test_euler_converges_to_exact() -> None:
    layers, inp = _two_layers(np.random.default_rng(0))
    rows = discretization_error(layers, inp, 0.3, [1e-3, 1e-4, 1e-5])
    errs = [r["mean_abs_time_error"] for r in rows]
    counts = [r["count_error"] for r in rows]
    assert errs[0] > errs[1] > errs[2] and errs[2] < 2e-3
    assert counts[0] > counts[2] and counts[2] < 0.01
    exact = exact_run(layers, inp, 0.3)
    fine = euler_run(layers, inp, 0.3, 1e-5)
    assert abs(fine[0].times.size - exact[0].times.size) <= 0.01 * exact[0].times.size
