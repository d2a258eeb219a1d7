"""Sparse spiking gradient descent as the backward of quantization-aware fine-tuning (issue 16, item 3).

Oracle: the dense :class:`IntegerSNN` graph (torch autograd through every step of the integer model) with
its spike function's surrogate truncated to ``|v - th| < B_th th`` in the hidden group, whole in the
readout group (the two thresholds differ, which is how the oracle tells them apart). The sparse
backward must give the same shadow-mantissa gradients to float rounding (float64: relative 1e-10, the
differences are ~1e-15; a wrong term would be of the gradient's own size), the same forward spikes, and
fine-tuning with it must still write back a network whose emulator spikes equal the training forward.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from spikeport.emulator.engines.dispatch import run
from spikeport.emulator.errors import UnsupportedError, ValidationError
from spikeport.nir.export import export_nir
from spikeport.quantize import encode_inputs, quantize_pair
from spikeport.quantize.training import neurons as snn
from spikeport.quantize.training import qat
from spikeport.quantize.training.finetune import FineTuneConfig, fine_tune, readout
from spikeport.quantize.training.qat import IntegerSNN
from torch import nn

T = 12


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _quantized(mode: str = "fixed"):
    torch.manual_seed(0)
    model = snn.SNN(nn.Linear(12, 16), snn.LIF(16, beta=0.9), nn.Linear(16, 4), snn.LIF(4, beta=0.8))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(2.0)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 48)
    rates = 0.15 + 0.5 * (np.arange(12)[None, :] % 4 == y[:, None])
    x = (rng.random((48, T, 12)) < rates[:, None, :]).astype(np.float64)
    net, twin, _ = quantize_pair(export_nir(model, input_shape=(12,)), "snntorch", mode=mode, calibration=x)
    return net, twin, x, y


def _truncating_spike(b_th_by_threshold: dict[float, float]) -> type:
    class Truncated(torch.autograd.Function):
        @staticmethod
        def forward(ctx, v, th, slope):
            ctx.save_for_backward(v)
            ctx.th, ctx.slope = th, slope
            return (v > th).to(v.dtype)

        @staticmethod
        def backward(ctx, grad):
            (v,) = ctx.saved_tensors
            unit = max(ctx.th, 1.0)
            keep = ((v - ctx.th).abs() < b_th_by_threshold[ctx.th] * unit).to(v.dtype)
            return grad / (ctx.slope * (v - ctx.th).abs() / unit + 1.0) ** 2 / unit * keep, None, None

    return Truncated


def _loss_grads(model: IntegerSNN, xi: dict, y: np.ndarray) -> tuple[dict, list[torch.Tensor]]:
    group, lag, _ = readout(model.net)
    out = model(xi)
    counts = out[f"{group}/spikes"][:, lag : lag + T].sum(1)
    nn.functional.cross_entropy(counts, torch.as_tensor(y)).backward()
    return out, [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("b_th", [0.0, 0.05, 0.3, math.inf])
def test_sparse_qat_gradients_equal_truncated_dense(b_th: float, monkeypatch) -> None:
    net, twin, x, y = _quantized()
    xi = encode_inputs(net, x, pad=readout(net)[2])
    out, got = _loss_grads(IntegerSNN(net, twin=twin, sparse_grad=b_th), xi, y)
    group = readout(net)[0]
    ths = {g.name: float(int(g.vth) << 6) for g in net.groups}
    assert len(set(ths.values())) == len(ths)
    trunc = {th: (math.inf if name == group else b_th) for name, th in ths.items()}
    monkeypatch.setattr(qat, "_Spike", _truncating_spike(trunc))
    want_out, want = _loss_grads(IntegerSNN(net, twin=twin), xi, y)
    for key, value in want_out.items():
        np.testing.assert_array_equal(out[key].detach().numpy(), value.detach().numpy(), err_msg=key)
    for g_got, g_want in zip(got, want, strict=True):
        scale = float(g_want.abs().max())
        np.testing.assert_allclose(g_got.numpy(), g_want.numpy(), rtol=1e-10, atol=1e-10 * max(scale, 1e-300))
    first = got[0]  # the input -> hidden weights: reached only through the hidden layer's spikes
    assert bool(first.any()) == (b_th > 0)
    if 0 < b_th < math.inf:
        hidden = out[f"{next(name for name in ths if name != group)}/spikes"]
        assert 0 < hidden.grad_fn.active.numel() < hidden.numel()


def test_torch_fallback_equals_numba_path() -> None:
    """The device-agnostic torch backend (what CUDA tensors take) against the numba kernels, on CPU."""
    net, twin, x, y = _quantized()
    xi = encode_inputs(net, x, pad=readout(net)[2])
    grads = {}
    for backend in ("numba", "torch"):
        model = IntegerSNN(net, twin=twin, sparse_grad=0.3)
        model.sparse_backend = backend
        grads[backend] = _loss_grads(model, xi, y)[1]
    for a, b in zip(grads["numba"], grads["torch"], strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-10 * float(a.abs().max()))
    assert all(bool(g.any()) for g in grads["torch"])


@pytest.mark.parametrize("mode", ["fixed", "shift"])
def test_sparse_fine_tune_runs_to_the_emulator(mode: str) -> None:
    """Fine-tuning with the sparse backward changes the weights, and the written-back network's emulator
    spikes equal the training model's forward spikes, every group and step."""
    net, twin, x, y = _quantized(mode)
    cfg = FineTuneConfig(epochs=2, batch=16, lr=1.0, sparse_grad=0.3)
    tuned, log = fine_tune(net, x, y, twin=twin, mode=mode, config=cfg)
    assert len(log.accuracy) == 3 and log.accuracy[log.best_epoch] == max(log.accuracy)
    model = IntegerSNN(net, twin=twin, mode=mode, sparse_grad=0.3)
    xi = encode_inputs(net, x, pad=readout(net)[2])
    opt = torch.optim.Adam(model.parameters(), lr=1.0)
    for _ in range(2):
        opt.zero_grad()
        _loss_grads(model, xi, y)
        opt.step()
    trained = model.to_network()
    assert any(not np.array_equal(a.weights, b.weights) for a, b in zip(net.connections, trained.connections))
    for network, trainer in ((trained, model), (tuned, IntegerSNN(tuned, mode=mode, sparse_grad=0.3))):
        emu = run(network, xi, record=("spikes", "v"))
        out = trainer(xi, record_v=True)  # with gradients: the sparse path's own forward
        for key, value in out.items():
            np.testing.assert_array_equal(emu[key], value.detach().numpy(), err_msg=key)


def test_sparse_qat_refusals() -> None:
    net, _, _, _ = _quantized()
    hidden = net.groups[0]
    for change, match in (
        ({"reset": "zero"}, "reset"),
        ({"refractory": 2}, "refractory"),
        ({"du": 100.0}, "du"),
    ):
        groups = (dataclasses.replace(hidden, **change), *net.groups[1:])
        with pytest.raises(UnsupportedError, match=rf"IntegerSNN\.groups\['1'\]\.{match}"):
            IntegerSNN(dataclasses.replace(net, groups=groups), sparse_grad=0.1)
    back = dataclasses.replace(
        net.connections[2], name="3->1", source="3", target="1", weights=np.ones((16, 4))
    )
    with pytest.raises(UnsupportedError, match="cycle"):
        IntegerSNN(dataclasses.replace(net, connections=(*net.connections, back)), sparse_grad=0.1)
    with pytest.raises(ValidationError, match=r"IntegerSNN\.sparse_grad"):
        IntegerSNN(net, sparse_grad=-1.0)
    model = IntegerSNN(net, sparse_grad=0.1)
    model.sparse_backend = "cuda"
    with pytest.raises(ValidationError, match=r"IntegerSNN\.sparse_backend"):
        model(np.zeros((1, T, 12), np.int64))
