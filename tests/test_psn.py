"""Parallel spiking neurons (Xue et al. 2025): torch modules, the emulator's PSNGroup, NIR subgraph,
Lava refusal, energy counts. Bit-exactness is checked with equal arrays against independent
implementations (torch int64 inference; the NIR round trip); no verdict depends on training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from spikeport.emulator import run
from spikeport.emulator.errors import UnsupportedError, ValidationError
from spikeport.emulator.network import Connection, InputGroup, Network
from spikeport.emulator.psn import PSNGroup
from spikeport.quantize.psn_integer import (
    IntegerSeqNet,
    IntegerStage,
    emulator_inputs,
    integer_forward,
    integer_model,
    to_network,
)
from spikeport.quantize.training.psn import (
    KERNELS,
    PSN,
    autoselect,
    causal_conv1d,
    causal_toeplitz,
    pow2,
    receptive_field,
    sawtooth,
)
from spikeport.quantize.training.psn_net import SeqNet

torch.set_num_threads(1)


def _stack(k: int, dilations: list[int]) -> torch.nn.Sequential:
    layers = [PSN(1, k, dilation=d) for d in dilations]
    for layer in layers:
        layer.weight.data.fill_(1.0)
        layer.eval()
    return torch.nn.Sequential(*layers)


@pytest.mark.parametrize(("k", "period", "layers"), [(2, 3, 3), (3, 3, 4), (4, 2, 2)])
def test_receptive_field(k: int, period: int, layers: int) -> None:
    dil = sawtooth(layers, period)
    steps = 40
    x = torch.zeros(1, steps, 1, requires_grad=True)
    _stack(k, dil)(x)[0, -1, 0].backward()
    assert x.grad is not None
    reached = torch.nonzero(x.grad[0, :, 0]).flatten().tolist()
    rf = receptive_field(k, dil)
    assert reached == list(range(steps - rf, steps))


def test_receptive_field_of_the_paper() -> None:
    assert sawtooth(5) == [1, 2, 3, 1, 2]
    assert receptive_field(2, sawtooth(3)) == 7


@pytest.mark.parametrize("dilation", [1, 3])
def test_conv1d_and_toeplitz_agree(dilation: int) -> None:
    g = torch.Generator().manual_seed(1)
    w = torch.sign(torch.randn(5, 4, generator=g)) * torch.exp2(torch.randint(-3, 3, (5, 4), generator=g))
    x = (torch.rand(3, 17, 5, generator=g) < 0.5).float()
    a, b = causal_conv1d(x, w, dilation), causal_toeplitz(x, w, dilation)
    np.testing.assert_array_equal(a.numpy(), b.numpy())  # powers of two and 0/1: exact in float
    ref = np.zeros((3, 17, 5))
    for i in range(4):
        lag = (3 - i) * dilation
        ref[:, lag:] += w[:, i].numpy() * x[:, : 17 - lag].numpy()
    np.testing.assert_array_equal(a.numpy(), ref)


def test_autoselect_keeps_the_fastest() -> None:
    layer = PSN(8, 3, dilation=2)
    times = autoselect(layer, torch.rand(4, 12, 8), repeats=1)
    assert set(times) == set(KERNELS)
    assert layer.kernel == min(times, key=lambda k: times[k])


def test_pow2_quantizer_and_ste() -> None:
    w = torch.tensor([0.3, -3.0, 0.0, 1e-4, 1.0], requires_grad=True)
    q = pow2(w, span=8)
    np.testing.assert_array_equal(q.detach().numpy(), np.array([0.25, -4.0, 0.0, 0.0, 1.0], np.float32))
    q.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), np.ones(5, np.float32))  # whole-quantizer STE


def test_fold_bn_keeps_the_membrane() -> None:
    layer = PSN(6, 3, dilation=2)
    layer.bn.momentum = 1.0
    x = torch.rand(4, 10, 6)
    layer(x)  # batch statistics
    layer.eval()
    before = layer.membrane(x).detach()
    layer.fold_bn()
    layer.mulfree = False  # the folding alone, before quantization
    np.testing.assert_allclose(layer.membrane(x).detach().numpy(), before.numpy(), rtol=1e-5, atol=1e-5)


def test_sliding_psn_is_shared_and_undilated() -> None:
    assert PSN(5, 3, shared=True).weight.shape == (1, 3)
    with pytest.raises(ValidationError, match="dilation"):
        PSN(5, 3, dilation=2, shared=True)


# ---------------------------------------------------------------- emulator


def _mulfree_model(seed: int = 0) -> tuple[SeqNet, torch.Tensor]:
    torch.manual_seed(seed)
    m = SeqNet(12, 16, 4, neuron="chw_psn", k=3, dilations=(1, 2, 3))
    x = (torch.rand(8, 10, 12) < 0.4).float()
    for neu in m.neurons:
        neu.bn.momentum = 1.0
        neu.bn.bias.data.fill_(0.2)  # active neurons in every stage
    m.train()
    m(x)
    m.eval()
    m.make_mulfree()
    return m, x


N_IN_WRAP = 100


def _random_integer_net(seed: int, wrap: bool) -> IntegerSeqNet:
    """Two stages over ``n_in`` inputs; ``wrap=True``: large positive weights, signs and shifts, so the
    first stage's H = 4 taps of (2 * 100 * (100..127)) << 15 > 2**31 wraps for all-one input."""
    rng = np.random.default_rng(seed)
    stages, n_in = [], N_IN_WRAP if wrap else 10
    for d in (1, 2):
        w = 2 * (rng.integers(100, 128, (9, n_in)) if wrap else rng.integers(-127, 128, (9, n_in)))
        sign = np.ones((9, 4), int) if wrap else rng.integers(-1, 2, (9, 4))
        shift = np.full((9, 4), 15) if wrap else rng.integers(0, 5, (9, 4))
        vth = rng.integers(-200, 200, 9) * (1 << 22 if wrap else 1)
        stages.append(IntegerStage(weights=w, sign=sign, shift=shift, vth=vth, dilation=d))
        n_in = 9
    return IntegerSeqNet(stages=tuple(stages), readout=2 * rng.integers(-127, 128, (3, 9)))


def _emulate(net: Network, x: np.ndarray, layers: int, **kw: object) -> dict[str, np.ndarray]:
    res = run(net, emulator_inputs(x, layers), record=("spikes", "h"), **kw)
    return dict(res.outputs)


def test_emulator_equals_torch_integer_inference_of_a_model() -> None:
    m, x = _mulfree_model()
    im = integer_model(m)
    spikes, _ = integer_forward(im, x.numpy().astype(np.int64))
    out = _emulate(to_network(im), x.numpy(), 3)
    for i, s in enumerate(spikes):
        assert 0 < s.mean() < 1, "the check needs active and silent neurons"
        np.testing.assert_array_equal(out[f"psn{i}/spikes"], s)
    # the float QAT forward agrees up to float rounding at the threshold: compared in benchmarks/psn.py


@pytest.mark.parametrize("wrap", [False, True])
def test_emulator_equals_torch_integer_inference_random(wrap: bool) -> None:
    im = _random_integer_net(3, wrap)
    x = np.random.default_rng(4).integers(0, 2, (5, 13, N_IN_WRAP if wrap else 10))
    if wrap:
        x[:, 4:, :] = 1
    spikes, _ = integer_forward(im, x)
    out = _emulate(to_network(im), x, 2)
    for i, s in enumerate(spikes):
        assert 0 < s.mean() < 1
        np.testing.assert_array_equal(out[f"psn{i}/spikes"], s)
    if wrap:
        with pytest.raises(OverflowError, match="h"):
            _emulate(to_network(im), x, 2, overflow="strict")


def test_float_mode_equals_fixed_mode_without_wrap() -> None:
    im = _random_integer_net(5, False)
    x = np.random.default_rng(6).integers(0, 2, (3, 9, 10))
    net = to_network(im)
    fixed = _emulate(net, x, 2)
    flt = _emulate(net, x, 2, mode="float")
    for k, v in fixed.items():
        np.testing.assert_array_equal(flt[k], v)


def _single(k: int, d: int, sign: np.ndarray) -> Network:
    g = PSNGroup(name="p", n=2, k=k, dilation=d, sign=sign, shift=np.zeros((2, k), int), vth=[0, 0])
    c = Connection(name="c", source="in", target="p", weights=[[2], [2]])
    return Network(inputs=(InputGroup(name="in", n=1),), groups=(g,), connections=(c,))


@pytest.mark.parametrize(("k", "d"), [(4, 1), (3, 2)])
def test_shift_and_add_counts(k: int, d: int) -> None:
    sign = np.ones((2, k), int)
    sign[1, 0] = 0  # one tap pruned
    steps = 11
    res = run(_single(k, d, sign), np.zeros((1, steps, 1), np.int8), record=("shifts", "adds"))
    lags = (k - 1 - np.arange(k)) * d
    full = sum(max(0, steps - lag) for lag in lags)
    if d == 1:
        assert full == steps * k - k * (k - 1) // 2  # the paper's (T + (1 - k)/2) k
    np.testing.assert_array_equal(res["p/shifts"][0, -1], [full, full - max(0, steps - lags[0])])
    np.testing.assert_array_equal(res["p/adds"][0, -1], res["p/shifts"][0, -1] + steps)


def test_psn_group_validation() -> None:
    kw = {"name": "p", "n": 1, "k": 2, "dilation": 1, "vth": [0]}
    with pytest.raises(ValidationError, match=r"PSNGroup\('p'\)\.shift"):
        PSNGroup(**kw, sign=[[1, 1]], shift=[[0, 16]])
    with pytest.raises(ValidationError, match=r"PSNGroup\('p'\)\.sign"):
        PSNGroup(**kw, sign=[[2, 1]], shift=[[0, 0]])
    with pytest.raises(ValidationError, match="dilation"):
        PSNGroup(**{**kw, "dilation": 0}, sign=[[1, 1]], shift=[[0, 0]])


def test_hdf5_round_trip(tmp_path: object) -> None:
    from spikeport.emulator.io import load_network, save_network

    net = to_network(_random_integer_net(7, False))
    path = tmp_path / "psn.h5"  # type: ignore[operator]
    save_network(path, net)
    back = load_network(path)
    for a, b in zip(net.groups, back.groups, strict=True):
        assert isinstance(b, PSNGroup) and (a.k, a.dilation) == (b.k, b.dilation)
        for f in ("sign", "shift", "vth"):
            np.testing.assert_array_equal(getattr(a, f), getattr(b, f))


def test_event_engine_refuses_psn() -> None:
    net = to_network(_random_integer_net(8, False))
    with pytest.raises(UnsupportedError, match="PSNGroup"):
        run(net, np.zeros((1, 3, 10), np.int8), engine="event")


# ---------------------------------------------------------------- NIR and Lava


def test_nir_round_trip_is_exact(tmp_path: object) -> None:
    from spikeport.nir.psn_subgraph import read_psn_nir, write_psn_nir

    m, x = _mulfree_model(1)
    net = to_network(integer_model(m))
    path = tmp_path / "psn.nir"  # type: ignore[operator]
    write_psn_nir(path, net)
    back = read_psn_nir(path)
    assert [g.name for g in back.groups] == [g.name for g in net.groups]
    for a, b in zip(net.groups, back.groups, strict=True):
        assert (a.k, a.dilation) == (b.k, b.dilation)
        for f in ("sign", "shift", "vth"):
            np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    for a, b in zip(net.connections, back.connections, strict=True):
        assert (a.source, a.target) == (b.source, b.target)
        np.testing.assert_array_equal(a.weights, b.weights)
    ref, got = _emulate(net, x.numpy(), 3), _emulate(back, x.numpy(), 3)
    for k, v in ref.items():
        np.testing.assert_array_equal(got[k], v)


def test_nir_graph_uses_standard_nodes_and_refuses_others() -> None:
    import nir
    from spikeport.nir.psn_subgraph import psn_graph, read_psn_graph

    graph = psn_graph(to_network(_random_integer_net(9, False)))
    kinds = {type(n).__name__ for n in graph.nodes.values()}
    assert kinds == {"Input", "Output", "Linear", "Delay", "Scale", "Threshold"}
    scale = graph.nodes["psn0.tap1.scale"]
    graph.nodes["psn0.tap1.scale"] = nir.Scale(scale=np.where(scale.scale != 0, 3.0, 0.0))
    with pytest.raises(UnsupportedError, match=r"psn0\.tap1\.scale"):
        read_psn_graph(graph)


def test_lava_refuses_psn_naming_the_group() -> None:
    pytest.importorskip("lava")
    from spikeport.lava.backend import check_supported

    with pytest.raises(UnsupportedError, match=r"PSNGroup\('psn0'\)"):
        check_supported(to_network(_random_integer_net(10, False)))


def _small_psn_net(seed: int) -> Network:
    """Two PSN stages small enough for the Lava lowering (|H| < 2**17, shifts <= 7)."""
    rng = np.random.default_rng(seed)
    g0 = PSNGroup(
        name="p0",
        n=6,
        k=3,
        dilation=2,
        sign=rng.integers(-1, 2, (6, 3)),
        shift=rng.integers(0, 4, (6, 3)),
        vth=rng.integers(-30, 30, 6),
    )
    g1 = PSNGroup(
        name="p1",
        n=4,
        k=2,
        dilation=1,
        sign=rng.integers(-1, 2, (4, 2)),
        shift=rng.integers(0, 3, (4, 2)),
        vth=rng.integers(-10, 10, 4),
    )
    c0 = Connection(name="c0", source="in", target="p0", weights=2 * rng.integers(-20, 20, (6, 5)))
    c1 = Connection(name="c1", source="p0", target="p1", weights=2 * rng.integers(-20, 20, (4, 6)))
    return Network(inputs=(InputGroup(name="in", n=5),), groups=(g0, g1), connections=(c0, c1))


def test_lowering_to_delayed_taps_and_memoryless_lif_is_exact() -> None:
    from spikeport.lava.psn_lowering import lower_psn

    net = _small_psn_net(1)
    low = lower_psn(net)
    assert {type(g).__name__ for g in low.groups} == {"LIFGroup"}
    assert all(c.delays is not None for c in low.connections)
    x = np.random.default_rng(2).integers(0, 2, (3, 15, 5)).astype(np.int8)
    a, b = run(net, x), run(low, x)
    for k, v in a.outputs.items():
        assert 0 < v.mean() < 1
        np.testing.assert_array_equal(b[k], v)


def test_lowering_refuses_what_lava_cannot_hold() -> None:
    from spikeport.lava.psn_lowering import lower_psn

    m, _ = _mulfree_model(2)
    with pytest.raises(
        UnsupportedError, match=r"PSNGroup\('psn0'\).*no neuron with an input history.*2\*\*17"
    ):
        lower_psn(to_network(integer_model(m)))


def test_lava_runs_the_lowered_psn_bit_exactly() -> None:
    pytest.importorskip("lava")
    from spikeport.lava.backend import run_lava
    from spikeport.lava.psn_lowering import lower_psn

    net = _small_psn_net(3)
    x = np.random.default_rng(4).integers(0, 2, (1, 12, 5)).astype(np.int8)
    ref = run(net, x)
    got = run_lava(lower_psn(net), x)
    for k, v in ref.outputs.items():
        np.testing.assert_array_equal(got[k], v)


# ---------------------------------------------------------------- energy


def test_neuron_energy_from_counters() -> None:
    from spikeport.emulator.energy.neuron_ops import neuron_ops

    k, steps = 3, 10
    res = run(_single(k, 1, np.ones((2, k), int)), np.ones((1, steps, 1), np.int8), record=("shifts", "adds"))
    taps = int(res["p/shifts"][0, -1].sum())
    adds = int(res["p/adds"][0, -1].sum())
    free = neuron_ops("mulfree_psn", neuron_steps=2 * steps, taps=taps)
    assert (free.multiplications, free.shifts, free.additions) == (0, taps, adds)
    assert free.energy_pj == pytest.approx(taps * 0.13 + adds * 0.1)
    psn = neuron_ops("psn", neuron_steps=2 * steps, taps=taps)
    assert (psn.multiplications, psn.additions) == (taps, adds)
    assert psn.energy_pj == pytest.approx(taps * 3.7 + adds * 0.9)
    lif = neuron_ops("lif", neuron_steps=2 * steps)
    assert lif.pj_per_neuron_step == pytest.approx(3.7 + 2 * 0.9)
    with pytest.raises(ValidationError, match="kind"):
        neuron_ops("rnn", neuron_steps=1)
