"""Exponent and clipping chosen by least weight or output error (spikeport.quantize.search)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from spikeport.emulator.errors import ValidationError
from spikeport.nir.export import export_nir
from spikeport.quantize import encode_inputs, quantize_pair
from spikeport.quantize.fixed_point import quantize_weights
from spikeport.quantize.search import best_exponent, mantissas_at, search_network
from spikeport.quantize.training import neurons as snn
from torch import nn


def _quantized(mode: str):
    torch.manual_seed(0)
    model = snn.SNN(nn.Linear(10, 12), snn.LIF(12, beta=0.9), nn.Linear(12, 4), snn.LIF(4, beta=0.8))
    with torch.no_grad():
        model.layers[0].weight[0, 0] = 40.0
    x = (np.random.default_rng(0).random((16, 8, 10)) < 0.4).astype(np.float64)
    net, twin, _ = quantize_pair(export_nir(model, input_shape=(10,)), "snntorch", mode=mode, calibration=x)
    return net, twin, encode_inputs(net, x, pad=2)


def test_an_outlier_makes_clipping_pay() -> None:
    """One weight just above the bulk's range: clipping it halves the step of 2000 others."""
    w = np.concatenate([[2.2], np.linspace(-1.0, 1.0, 2000)])[None, :]
    exp0 = quantize_weights(w).exp
    exp, mant, clipped, before, after = best_exponent(w, exp0, mode="fixed", nbits=8, second=None)
    assert exp < exp0 and clipped == 1 and after < before
    np.testing.assert_array_equal(mant, mantissas_at(w, exp, "fixed", 8)[0])


def test_weights_without_outliers_keep_their_exponent() -> None:
    w = np.linspace(-200.0, 200.0, 41)[None, :]
    assert quantize_weights(w).exp == 0
    exp, _, clipped, before, after = best_exponent(w, 0, mode="fixed", nbits=8, second=None)
    assert (exp, clipped) == (0, 0) and after == before


@pytest.mark.parametrize("objective", ["weight", "output"])
def test_search_network_never_increases_its_error(objective: str) -> None:
    net, twin, x = _quantized("shift")
    searched, infos = search_network(net, twin, objective=objective, calibration=x)
    assert len(infos) == len(net.connections)
    for info, c in zip(infos, searched.connections, strict=True):
        assert info.error_after <= info.error_before and c.weight_exp == info.weight_exp_after
        mag = np.abs(c.weights[c.weights != 0])
        assert np.all(mag & (mag - 1) == 0)
    with pytest.raises(ValidationError, match="objective"):
        search_network(net, twin, objective="max")
    with pytest.raises(ValidationError, match="calibration"):
        search_network(net, twin, objective="output")
