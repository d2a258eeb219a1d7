"""Weight splitting: several connections with different ``weight_exp`` into the same neurons."""

from __future__ import annotations

import numpy as np
import pytest
import spikeport as sp
import torch
from spikeport.emulator.engines.dispatch import run
from spikeport.emulator.errors import ValidationError
from spikeport.nir.export import export_nir
from spikeport.quantize import encode_inputs, quantize_pair
from spikeport.quantize.training import neurons as snn
from spikeport.quantize.weight_split import split_network, split_weights
from torch import nn

T = 8


def _wide_model() -> snn.SNN:
    """Weights spanning ~10 bits: a few large ones, most small (the Braille RNN's readout shape)."""
    torch.manual_seed(0)
    model = snn.SNN(
        nn.Linear(10, 12), snn.LIF(12, beta=0.9), nn.Linear(12, 4), snn.LIF(4, beta=0.8), semantics="nir"
    )
    with torch.no_grad():
        for layer in model.layers:
            if isinstance(layer, nn.Linear):
                layer.weight.mul_(2.0)
                layer.weight[0, 0] = 40.0
    return model


def _quantized(mode: str):
    graph = export_nir(_wide_model(), input_shape=(10,))
    x = (np.random.default_rng(0).random((16, T, 10)) < 0.4).astype(np.float64)
    net, twin, _ = quantize_pair(graph, "nir", mode=mode, calibration=x, target="lava")
    return net, twin, encode_inputs(net, x, pad=2)


def test_split_weights_reduce_error_and_decrease_exponents() -> None:
    w = np.array([[100.0, 0.3, -0.05], [1.7, -2.2, 0.01]])
    qs = split_weights(w, parts=3)
    assert [q.exp for q in qs] == sorted({q.exp for q in qs}, reverse=True) and len(qs) >= 2
    errs = [np.abs(w - sum(q.mant * 2.0**q.exp for q in qs[: k + 1])).max() for k in range(len(qs))]
    assert errs == sorted(errs, reverse=True) and errs[-1] < errs[0] / 8
    for q in split_weights(w, mode="shift", parts=3):
        mag = np.abs(q.mant[q.mant != 0])
        assert np.all(mag & (mag - 1) == 0)


@pytest.mark.parametrize("mode", ["fixed", "shift"])
def test_split_network_reports_gain_and_cost(mode: str) -> None:
    net, twin, _ = _quantized(mode)
    split, infos = split_network(net, twin)
    assert infos, "the wide weights should pay for a split"
    for info in infos:
        assert info.rms_rel_error_after * 2 <= info.rms_rel_error_before
        assert info.zeroed_after <= info.zeroed_before
        assert info.synapses_after >= info.synapses_before and info.synops_factor >= 1
        exps = [c.weight_exp for c in split.connections if c.name in info.parts]
        assert exps == list(info.weight_exps) and exps == sorted(exps, reverse=True)
    assert len(split.connections) == len(net.connections) + sum(len(i.parts) - 1 for i in infos)
    assert split.metadata["weight_split"][0]["connection"] == infos[0].connection


def test_split_network_rejects_unknown_connection() -> None:
    net, twin, _ = _quantized("fixed")
    with pytest.raises(ValidationError, match="connections"):
        split_network(net, twin, connections=["nope"])


@pytest.mark.lava
@pytest.mark.parametrize("mode", ["fixed", "shift"])
def test_split_network_is_bit_exact_on_lava(mode: str) -> None:
    """Lava sums the parts' activations as the emulator does: every spike, u and v equal."""
    net, twin, x = _quantized(mode)
    split, infos = split_network(net, twin, connections=[c.name for c in net.connections], parts=3)
    assert any(len(i.parts) > 1 for i in infos)
    x = {k: v[:2] for k, v in x.items()}
    record = ("spikes", "u", "v")
    lava = sp.run(split, x, backend="lava", record=record)
    emu = run(split, x, record=record)
    assert sorted(lava.outputs) == sorted(emu.outputs)
    for key in sorted(emu.outputs):
        np.testing.assert_array_equal(emu[key], lava[key], err_msg=key)
    assert sum(int(np.sum(emu[k])) for k in emu.outputs if k.endswith("/spikes")) > 0


def test_quantize_reports_search_and_split_choices() -> None:
    graph = export_nir(_wide_model(), input_shape=(10,))
    x = (np.random.default_rng(1).random((16, T, 10)) < 0.4).astype(np.float64)
    net, rep = sp.quantize(graph, "nir", mode="fixed", calibration=x, search="output", split=True)
    assert set(rep.choices) == {"exponent_search", "weight_split"}
    assert len(rep.choices["exponent_search"]) == len(rep.connections)
    for info in rep.choices["exponent_search"]:
        assert info["error_after"] <= info["error_before"]
    names = {c.name for c in net.connections}
    for info in rep.choices["weight_split"]:
        assert set(info["parts"]) <= names
    assert '"choices"' in rep.to_json() and "choice" in rep.summary()
    with pytest.raises(ValidationError, match="calibration"):
        sp.quantize(graph, "nir", search="output")
