"""Quantization-aware training on the exact integer model: the forward pass equals the emulator.

Every verdict here is an exact equality of integer arrays (no accuracy threshold): whatever weights
training produces on this machine, the emulator's spikes must equal the training model's forward spikes.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from spikeport.emulator import kernels
from spikeport.emulator.engines.dispatch import run
from spikeport.emulator.errors import ValidationError
from spikeport.emulator.network import Connection, InputGroup, LIFGroup, Network, SigmaDeltaGroup
from spikeport.emulator.randnet import random_inputs, random_network
from spikeport.nir.export import export_nir
from spikeport.quantize import encode_inputs, quantize_pair
from spikeport.quantize.training import neurons as snn
from spikeport.quantize.training.finetune import FineTuneConfig, fine_tune, fine_tune_graph, readout
from spikeport.quantize.training.qat import IntegerSNN, quantize_pow2, ste
from torch import nn

T = 10


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _canonical(net: Network) -> Network:
    """Uniform delays per connection (what IntegerSNN supports) and stored weights = Lava's effective
    weights (so that the rounding onto the sign mode's grid keeps them)."""
    conns = []
    for c in net.connections:
        kw: dict = {"weights": kernels.effective_weights(c.weights, c.num_weight_bits)}
        if c.delays is not None:
            kw["delays"] = np.full(c.weights.shape, int(c.delays.max()))
            kw["sparse"] = c.sparse or c.num_message_bits > 0
        conns.append(dataclasses.replace(c, **kw))
    return dataclasses.replace(net, connections=tuple(conns))


def _assert_same(net: Network, model: IntegerSNN, x: dict) -> None:
    emu = run(net, x, record=("spikes", "v"))
    with torch.no_grad():
        out = model(x, record_v=True)
    for key, value in out.items():
        np.testing.assert_array_equal(emu[key], value.numpy(), err_msg=key)


@pytest.mark.parametrize("seed", range(60))
def test_forward_equals_emulator_on_random_networks(seed: int) -> None:
    """Wraps, clips, every exponent and sign mode, delays, graded inputs, recurrence, LIFReset."""
    rng = np.random.default_rng(seed)
    net = _canonical(random_network(rng, kinds=("lif", "lif_reset"), steps=20))
    _assert_same(net, IntegerSNN(net), random_inputs(rng, net, 20, batch=3))


def test_forward_equals_emulator_on_multi_spike_networks() -> None:
    """Multi-spike groups (max_spikes > 1, graded payload k, zero/subtract reset, refractory)."""
    most = 0
    for seed in range(12):
        rng = np.random.default_rng(7000 + seed)
        net = _canonical(random_network(rng, kinds=("multi_spike", "multi_spike", "lif"), steps=20))
        x = random_inputs(rng, net, 20, batch=2)
        _assert_same(net, IntegerSNN(net), x)
        spikes = run(net, x)
        most = max([most, *(int(spikes[f"{g.name}/spikes"].max()) for g in net.groups if g.max_spikes > 1)])
    assert most > 1  # several spikes in one step did occur


def _small_model() -> snn.SNN:
    torch.manual_seed(0)
    model = snn.SNN(nn.Linear(12, 16), snn.LIF(16, beta=0.9), nn.Linear(16, 4), snn.LIF(4, beta=0.8))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(2.0)
    return model


def _task(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    rates = 0.15 + 0.5 * (np.arange(12)[None, :] % 4 == y[:, None])
    return (rng.random((n, T, 12)) < rates[:, None, :]).astype(np.float64), y


@pytest.mark.parametrize("mode", ["fixed", "shift"])
def test_trained_model_spikes_equal_emulator(mode: str) -> None:
    """What you train is what runs: after optimizer steps, the written-back network's emulator spikes
    equal the training model's forward spikes, for every group and step."""
    graph = export_nir(_small_model(), input_shape=(12,))
    x, y = _task(48)
    net, twin, _ = quantize_pair(graph, "snntorch", mode=mode, calibration=x)
    model = IntegerSNN(net, mode=mode, twin=twin)
    group, lag, pad = readout(net)
    xi = encode_inputs(net, x, pad=pad)
    opt = torch.optim.Adam(model.parameters(), lr=1.0)
    for _ in range(3):
        counts = model(xi)[f"{group}/spikes"][:, lag : lag + T].sum(1)
        loss = nn.functional.cross_entropy(counts, torch.as_tensor(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
    tuned = model.to_network()
    assert any(not np.array_equal(a.weights, b.weights) for a, b in zip(net.connections, tuned.connections))
    _assert_same(tuned, model, xi)
    if mode == "shift":
        for c in tuned.connections:
            mag = np.abs(c.weights[c.weights != 0])
            assert c.shift and np.all(mag & (mag - 1) == 0)


def test_fine_tune_keeps_best_and_round_trips() -> None:
    graph = export_nir(_small_model(), input_shape=(12,))
    x, y = _task(64)
    net, twin, _ = quantize_pair(graph, "snntorch", mode="fixed", calibration=x)
    tuned, log = fine_tune(net, x, y, twin=twin, config=FineTuneConfig(epochs=2, batch=32))
    assert len(log.accuracy) == 3 and log.accuracy[log.best_epoch] == max(log.accuracy)
    assert tuned.metadata["fine_tune"]["best_epoch"] == log.best_epoch
    again = IntegerSNN(tuned).to_network()  # the stored mantissas are fixed points of the quantizer
    for a, b in zip(tuned.connections, again.connections, strict=True):
        np.testing.assert_array_equal(a.weights, b.weights)
    _assert_same(tuned, IntegerSNN(tuned), encode_inputs(tuned, x, pad=readout(tuned)[2]))


def test_fine_tune_validation_split_and_config_errors() -> None:
    graph = export_nir(_small_model(), input_shape=(12,))
    x, y = _task(40)
    net, twin, _ = quantize_pair(graph, "snntorch", mode="shift", calibration=x)
    cfg = FineTuneConfig(epochs=1, batch=16, validation=0.25)
    tuned, log = fine_tune(net, x, y, twin=twin, config=cfg)
    assert len(log.loss) == 2 and all(a in np.arange(11) / 10 for a in log.accuracy)  # 10 held out
    assert tuned.metadata["fine_tune"]["mode"] == "shift"
    for bad in ({"validation": 1.0}, {"epochs": 0}, {"lr": 0.0}):
        with pytest.raises(ValidationError, match="FineTuneConfig"):
            FineTuneConfig(**bad)


def test_snntorch_graph_fine_tunes_exactly() -> None:
    """A model exported from snnTorch through NIR (subtract reset) fine-tunes on its integer model."""
    snt = pytest.importorskip("snntorch")
    from spikeport.nir.frameworks import snntorch_to_nir

    torch.manual_seed(0)
    layers = [nn.Linear(12, 16), snt.Leaky(beta=0.9, init_hidden=True), nn.Linear(16, 4)]
    layers.append(snt.Leaky(beta=0.85, init_hidden=True))
    with torch.no_grad():
        for layer in layers:
            if isinstance(layer, nn.Linear):
                layer.weight.mul_(2.0)
    graph, sem = snntorch_to_nir(layers, (12,))
    x, y = _task(48)
    tuned, report, log = fine_tune_graph(graph, sem, x, y, mode="shift", config=FineTuneConfig(epochs=1))
    assert report.mode == "shift" and len(log.accuracy) == 2
    _assert_same(tuned, IntegerSNN(tuned, mode="shift"), encode_inputs(tuned, x, pad=readout(tuned)[2]))


def test_whole_quantizer_ste_passes_gradient() -> None:
    """Xue et al.'s STE: dQ(w)/dw := 1, also where the power of two saturates or rounds to 0."""
    w = torch.tensor([0.3, 1.6, -3.0, 300.0, -0.1], dtype=torch.float64, requires_grad=True)
    q = ste(w, lambda v: quantize_pow2(v, "mixed", 8))
    np.testing.assert_array_equal(q.detach().numpy(), [0.0, 2.0, -4.0, 128.0, 0.0])
    q.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), np.ones(5))


def test_unsupported_groups_raise_field_errors() -> None:
    inp = InputGroup(name="in", n=2)
    sd = SigmaDeltaGroup(name="g", n=2, vth=1, bias=np.zeros(2))
    conn = Connection(name="c", source="in", target="g", weights=np.ones((2, 2)))
    with pytest.raises(ValidationError, match=r"IntegerSNN\.groups"):
        IntegerSNN(Network(inputs=(inp,), groups=(sd,), connections=(conn,)))
    lif = LIFGroup(name="g", n=2, du=0, dv=0, vth=1, bias_mant=0, bias_exp=0, u0=0, v0=0)
    mixed = dataclasses.replace(conn, delays=np.array([[0, 1], [1, 1]]))
    with pytest.raises(ValidationError, match="delays"):
        IntegerSNN(Network(inputs=(inp,), groups=(lif,), connections=(mixed,)))
    with pytest.raises(ValidationError, match="mode"):
        IntegerSNN(Network(inputs=(inp,), groups=(lif,), connections=(conn,)), mode="ternary")
