"""Sparse spiking gradient descent (issue 16): the sparse backward equals dense BPTT with the truncated surrogate.

The oracle is written here, independently of ``sparse_grad``: a Linear -> LIF loop differentiated by torch
autograd, whose spike function's backward is ``grad / (slope |u| + 1)^2 * [|u| < B_th]``. Everything runs in
float64, so the only differences are summation order (matmul vs the kernels' sums over active entries):
relative errors ~1e-15, far below the 1e-10 asserted, while any wrong term (a missed entry, an off-by-one
step in a trace) is of the order of the gradient itself.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from spikeport.emulator.errors import ValidationError
from spikeport.quantize.semantics import semantics
from spikeport.quantize.training import neurons as snn
from spikeport.quantize.training import sparse_grad
from spikeport.quantize.training.sparse_grad import BACKENDS, sparse_lif
from torch import nn

RTOL = 1e-10
B_THS = (0.0, 1e-3, 0.05, 0.2, 1.0, math.inf)


class _TruncatedSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, slope, b_th, inclusive):
        ctx.save_for_backward(u)
        ctx.slope, ctx.b_th = slope, b_th
        return (u >= 0 if inclusive else u > 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad):
        (u,) = ctx.saved_tensors
        keep = (u.abs() < ctx.b_th).to(u.dtype)
        return grad / (ctx.slope * u.abs() + 1.0) ** 2 * keep, None, None, None


def dense_layer(x, w, b, beta, b_th, sem, slope=25.0, thr=1.0):
    """Dense BPTT oracle: ``v = beta v + x W^T + b`` with subtractive (or no) reset, not differentiated
    (``beta`` rounded to float32 as :class:`LIF` stores it, then ``a = 1 - dt/tau`` as it steps)."""
    a = 1.0 - sem.dt / (sem.dt / (1.0 - float(np.float32(beta))))
    cur = x @ w.t() + b
    v = torch.zeros_like(cur[:, 0])
    prev = torch.zeros_like(v)
    out = []
    for t in range(cur.shape[1]):
        v = a * v + cur[:, t]
        if sem.reset == "subtract" and sem.reset_timing != "same_step":
            v = v - prev.detach() * thr
        s = _TruncatedSpike.apply(v - thr, slope, b_th, sem.threshold == ">=")
        if sem.reset == "subtract" and sem.reset_timing == "same_step":
            v = v - s.detach() * thr
        out.append(s)
        prev = s
    return torch.stack(out, 1)


def _lif(n: int, b_th: float, sem, beta: float = 0.9):
    lif = snn.LIF(n, beta=beta, sparse_grad=b_th)
    lif.semantics = sem
    return lif


def _layer_data(seed: int, binary: bool, n_b=5, n_t=30, n_in=12, n_out=9):
    g = torch.Generator().manual_seed(seed)
    if binary:
        x = (torch.rand(n_b, n_t, n_in, generator=g, dtype=torch.float64) < 0.3).double()
    else:
        x = torch.rand(n_b, n_t, n_in, generator=g, dtype=torch.float64)
    w = torch.randn(n_out, n_in, generator=g, dtype=torch.float64) * 0.5
    b = torch.randn(n_out, generator=g, dtype=torch.float64) * 0.1
    go = torch.randn(n_b, n_t, n_out, generator=g, dtype=torch.float64)
    return x.requires_grad_(), w.requires_grad_(), b.requires_grad_(), go


def _close(got: torch.Tensor, want: torch.Tensor) -> None:
    scale = float(want.abs().max()) if want.numel() else 0.0
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=RTOL, atol=RTOL * max(scale, 1e-300))


@pytest.mark.parametrize("backend", sorted(BACKENDS))
@pytest.mark.parametrize("b_th", B_THS)
@pytest.mark.parametrize("binary", [True, False])
def test_layer_gradients_equal_truncated_dense(backend: str, b_th: float, binary: bool) -> None:
    sem = semantics("snntorch")
    x, w, b, go = _layer_data(1, binary)
    want_s = dense_layer(x, w, b, 0.9, b_th, sem)
    want = torch.autograd.grad(want_s, (x, w, b), go)
    s, _, active = sparse_lif(x, w, b, _lif(9, b_th, sem), backend=backend)
    got = torch.autograd.grad(s, (x, w, b), go)
    torch.testing.assert_close(s, want_s, rtol=0, atol=0)
    for g_got, g_want in zip(got, want, strict=True):
        _close(g_got, g_want)
    if b_th == 0.0:
        assert active.numel() == 0 and not any(bool(g.any()) for g in got)
    if b_th == math.inf:
        assert active.numel() == s.numel()
    if b_th == 0.2:  # the case the test is about: some but not all entries active, gradients non-zero
        assert 0 < active.numel() < s.numel() and bool(got[1].any())


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_input_gradient_only_where_layer_below_is_active(backend: str) -> None:
    sem = semantics("snntorch")
    x, w, b, go = _layer_data(2, True)
    lower = torch.randperm(x.numel(), generator=torch.Generator().manual_seed(3))[: x.numel() // 7].sort()[0]
    want = torch.autograd.grad(dense_layer(x, w, b, 0.9, 0.3, sem), x, go)[0]
    s, _, _ = sparse_lif(x, w, b, _lif(9, 0.3, sem), lower=lower, backend=backend)
    got = torch.autograd.grad(s, x, go)[0]
    assert got.layout == torch.sparse_coo
    got = got.to_dense()
    mask = torch.zeros(x.numel(), dtype=torch.float64)
    mask[lower] = 1.0
    _close(got, want * mask.view(x.shape))
    assert bool(got.flatten()[lower].any()) and not bool(got.flatten()[mask == 0].any())


@pytest.mark.parametrize(
    "sem",
    [
        semantics("snntorch", reset_timing="same_step"),
        semantics("snntorch", threshold=">="),
        semantics("snntorch", reset="none"),
        semantics("snntorch", reset_timing="next_step_hold"),
    ],
    ids=["same_step", "ge", "no_reset", "hold"],
)
def test_semantics_variants(sem) -> None:
    x, w, b, go = _layer_data(4, False)
    want = torch.autograd.grad(dense_layer(x, w, b, 0.8, 0.2, sem), (x, w, b), go)
    s, _, _ = sparse_lif(x, w, b, _lif(9, 0.2, sem, beta=0.8))
    for g_got, g_want in zip(torch.autograd.grad(s, (x, w, b), go), want, strict=True):
        _close(g_got, g_want)


def _stack(b_th: float | None, seed: int = 5) -> snn.SNN:
    torch.manual_seed(seed)
    model = snn.SNN(
        nn.Linear(10, 16), snn.LIF(16, beta=0.9, sparse_grad=b_th),
        nn.Linear(16, 12), snn.LIF(12, beta=0.85, sparse_grad=b_th),
        nn.Linear(12, 4), snn.LIF(4, beta=0.9), semantics="snntorch",
    ).double()  # fmt: skip
    with torch.no_grad():
        for layer in model.layers:
            if isinstance(layer, nn.Linear):
                layer.weight.mul_(2.5)
    return model


def _stack_oracle(model: snn.SNN, x: torch.Tensor, b_th: float) -> torch.Tensor:
    sem = model.semantics
    l0, n1, l2, n3, l4, n5 = model.layers
    h = dense_layer(x, l0.weight, l0.bias, float(n1.beta[0]), b_th, sem)
    h = dense_layer(h, l2.weight, l2.bias, float(n3.beta[0]), b_th, sem)
    return dense_layer(h, l4.weight, l4.bias, float(n5.beta[0]), math.inf, sem)


@pytest.mark.parametrize("b_th", [0.05, 0.3, math.inf])
def test_stacked_snn_gradients_equal_truncated_dense(b_th: float) -> None:
    model = _stack(b_th)
    x = (
        torch.rand(6, 40, 10, generator=torch.Generator().manual_seed(6), dtype=torch.float64) < 0.3
    ).double()
    target = torch.randn(6, 4, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    ((model(x).sum(1) - target) ** 2).sum().backward()
    got = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    ((_stack_oracle(model, x, b_th).sum(1) - target) ** 2).sum().backward()
    for g_got, p in zip(got, model.parameters(), strict=True):
        _close(g_got, p.grad)
    assert all(bool(g.any()) for g in got)
    assert set(model.record) == {"1/spikes", "1/v", "3/spikes", "3/v", "5/spikes", "5/v"}


def test_infinite_b_th_equals_spikeports_dense_snn() -> None:
    """B_th = inf truncates nothing: the same spikes and gradients as the unchanged step-by-step SNN."""
    sparse, dense = _stack(math.inf), _stack(None)
    x = (
        torch.rand(4, 25, 10, generator=torch.Generator().manual_seed(8), dtype=torch.float64) < 0.3
    ).double()
    out_s, out_d = sparse(x), dense(x)
    torch.testing.assert_close(out_s, out_d, rtol=0, atol=0)
    out_s.sum(1).pow(2).sum().backward()
    out_d.sum(1).pow(2).sum().backward()
    for ps, pd in zip(sparse.parameters(), dense.parameters(), strict=True):
        _close(ps.grad, pd.grad)
    torch.testing.assert_close(sparse.record["3/v"], dense.record["3/v"], rtol=1e-12, atol=1e-12)


def test_refusals() -> None:
    x, w, b, _ = _layer_data(9, True)
    with pytest.raises(ValidationError, match="reset"):
        sparse_lif(x, w, b, _lif(9, 0.2, semantics("snntorch", reset="zero")))
    per_neuron = _lif(9, 0.2, semantics("snntorch"))
    per_neuron.beta = np.linspace(0.5, 0.9, 9)
    with pytest.raises(ValidationError, match="beta"):
        sparse_lif(x, w, b, per_neuron)
    with pytest.raises(ValidationError, match="sparse_grad"):
        snn.LIF(4, sparse_grad=-1.0)
    bad = snn.SNN(nn.Flatten(), snn.LIF(12, sparse_grad=0.1), semantics="snntorch")
    with pytest.raises(ValidationError, match=r"nn\.Linear"):
        bad(torch.zeros(2, 3, 12))
    with pytest.raises(ValidationError, match="backend"):
        s, _, _ = sparse_lif(x, w, b, _lif(9, 0.2, semantics("snntorch")), backend="cuda")
        s.sum().backward()


def test_trained_sparse_model_exports_quantizes_and_emulates() -> None:
    """Train a few sparse steps, then the usual path: export NIR, quantize, emulate. The float twin (the
    integer description unrounded, emulator ``mode="float"``) replays the float64 NIR run spike for spike;
    the 8-bit network agrees with it on most spikes."""
    import spikeport as sp

    model = _stack(0.2)
    x = (
        torch.rand(16, 30, 10, generator=torch.Generator().manual_seed(10), dtype=torch.float64) < 0.3
    ).double()
    y = torch.arange(16) % 4
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(3):
        loss = nn.functional.cross_entropy(model(x).sum(1), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert all(bool(p.grad.any()) for p in model.parameters())
    graph, sem = sp.export(model.float(), input_shape=(10,))
    xn = x.numpy()
    net, twin, _ = sp.quantize_pair(graph, sem, calibration=xn)
    ref = sp.run_nir(graph, xn, sem, record=("spikes",), dtype="float64")
    pad = max(g["lag"] for g in net.metadata["groups"].values())
    tw = sp.run(twin, sp.encode_inputs(net, xn, pad=pad, exact=True), mode="float")
    fx = sp.run(net, sp.encode_inputs(net, xn, pad=pad))
    for k in ("1", "3", "5"):
        lag = net.metadata["groups"][k]["lag"]
        np.testing.assert_array_equal(tw[f"{k}/spikes"][:, lag : lag + 30], ref[f"{k}/spikes"])
    lag = net.metadata["groups"]["3"]["lag"]
    agree = np.mean(fx["3/spikes"][:, lag : lag + 30] == ref["3/spikes"])
    assert ref["3/spikes"].any() and agree > 0.9


@pytest.mark.slow
def test_example_07_trains_sparse_and_runs_on_the_emulator(tmp_path) -> None:
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "examples" / "07_sparse_backprop.py"
    cmd = [
        sys.executable,
        str(script),
        "--epochs",
        "1",
        "--steps",
        "10",
        "--hidden",
        "48",
        "--out",
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "sparse_backprop.json").read_text())
    assert summary["hidden_spike_agreement"] > 0.9 and summary["output_spike_agreement"] > 0.9
    assert summary["hidden_spike_rate"] > 1e-3  # the hidden layer fires: the agreement means something
    assert abs(summary["accuracy_emulator"] - summary["accuracy_float_nir"]) <= 0.05
    assert summary["finetune_emulator_equals_training_forward"] is True  # sparse QAT: trained == run


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_tensors_take_the_torch_backend() -> None:
    sem = semantics("snntorch")
    x, w, b, go = _layer_data(11, True)
    want = torch.autograd.grad(dense_layer(x, w, b, 0.9, 0.2, sem), (w, b), go)
    xc, wc, bc = (t.detach().cuda().requires_grad_() for t in (x, w, b))
    s, _, _ = sparse_lif(xc, wc, bc, _lif(9, 0.2, sem))
    for g_got, g_want in zip(torch.autograd.grad(s, (wc, bc), go.cuda()), want, strict=True):
        _close(g_got.cpu(), g_want)


def test_chunked_backward_on_two_threads_is_exact_and_thread_independent(monkeypatch) -> None:
    """The numba backend's split into chunks of samples (forced here: layers this small run as one)
    on 1 and 2 threads: both equal the oracle, and each other bit for bit."""
    monkeypatch.setattr(sparse_grad, "PARALLEL_MIN_WORK", 0)
    sem = semantics("snntorch")
    x, w, b, go = _layer_data(8, True, n_b=7)
    lower = torch.randperm(x.numel(), generator=torch.Generator().manual_seed(9))[: x.numel() // 5].sort()[0]
    mask = torch.zeros(x.numel(), dtype=torch.float64)
    mask[lower] = 1.0
    want = torch.autograd.grad(dense_layer(x, w, b, 0.9, 0.3, sem), (x, w, b), go)
    want = (want[0] * mask.view(x.shape), *want[1:])
    got = {}
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            s, _, active = sparse_lif(x, w, b, _lif(9, 0.3, sem), lower=lower, backend="numba")
            dx, dw, db = torch.autograd.grad(s, (x, w, b), go)
            got[threads] = (dx.to_dense(), dw, db)
    finally:
        torch.set_num_threads(before)
    assert 0 < active.numel() < s.numel()
    for g_got, g_want in zip(got[2], want, strict=True):
        _close(g_got, g_want)
    for one, two in zip(got[1], got[2], strict=True):
        np.testing.assert_array_equal(one.numpy(), two.numpy())
