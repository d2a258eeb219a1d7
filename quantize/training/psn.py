"""Parallel spiking neurons in torch: sliding PSN, channel-wise PSN and the multiplication-free version.

Xue et al., "Multiplication-free parallelizable spiking neurons with efficient spatio-temporal
dynamics", NeurIPS 2025 (docs/seed-methods.md, "Mul-free parallel spiking neuron (Xue et al. 2025)"); the PSN family
follows SpikingJelly's ``neuron/psn.py``. Inputs are ``(B, T, C)``; per channel ``c``::

    H[t, c] = sum_{i=0}^{k-1} W[c, i] X[t - (k - 1 - i) d, c]        (X = 0 before t = 0)
    S[t, c] = Heaviside(BN(H)[t, c])                                 (BN over (B, T); beta starts at -1)

- :class:`PSN` ``shared=True``, ``dilation=1``: the sliding PSN (one kernel for every channel);
  ``shared=False``: the channel-wise PSN (one kernel per channel, any dilation).
- :meth:`PSN.fold_bn` folds the batch norm into the kernel and a per-channel bias
  (``W_f = gamma W / sqrt(var + eps)``, ``b_f = beta - gamma mu / sqrt(var + eps)``) and switches the
  neuron to ``S = Heaviside(H(X; Q(W_f)) + b_f)`` with power-of-two weights
  ``Q(w) = sign(w) 2**round(log2|w|)`` (exponents clamped to ``[e_max - span, e_max]`` of the layer;
  below that range a weight becomes 0) and the whole-quantizer straight-through gradient ``Q' := 1``.
- The causal dilated filter runs as a depthwise ``conv1d`` or as a Toeplitz matrix product
  (:func:`toeplitz`); :func:`autoselect` times both (forward and backward) per layer and keeps the faster.
- :func:`sawtooth` gives the per-layer dilations ``(l mod period) + 1``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch
from spikeport.emulator.errors import field_error
from spikeport.quantize.training.neurons import FastSigmoidSpike
from torch import nn
from torch.nn import functional as F

KERNELS = ("conv1d", "toeplitz")
#: exponents of a layer's power-of-two weights span at most this many octaves below the largest
POW2_SPAN = 8


def sawtooth(layers: int, period: int = 3) -> list[int]:
    """Dilations ``d_l = (l mod period) + 1`` for ``l = 0..layers-1`` (1, 2, 3, 1, 2, 3, ...)."""
    return [(layer % period) + 1 for layer in range(layers)]


def receptive_field(k: int, dilations: Sequence[int]) -> int:
    """Steps of input that reach one output of a stack of PSNs: ``1 + sum_l (k - 1) d_l``."""
    return 1 + sum((k - 1) * int(d) for d in dilations)


def causal_conv1d(x: torch.Tensor, w: torch.Tensor, dilation: int) -> torch.Tensor:
    """``H[b, t, c] = sum_i w[c, i] x[b, t - (k-1-i) d, c]`` via a depthwise, left-padded conv1d."""
    channels, k = x.shape[2], w.shape[1]
    xt = F.pad(x.transpose(1, 2), ((k - 1) * dilation, 0))
    weight = w.expand(channels, k).unsqueeze(1)
    return F.conv1d(xt, weight, dilation=dilation, groups=channels).transpose(1, 2)


def toeplitz(w: torch.Tensor, steps: int, dilation: int) -> torch.Tensor:
    """(C, T, T) lower-triangular band matrices ``M[c, t, s] = w[c, i]`` where ``s = t - (k-1-i) d``."""
    k = w.shape[1]
    t = torch.arange(steps)
    lag = t[:, None] - t[None, :]  # t - s
    mats = torch.zeros(w.shape[0], steps, steps, dtype=w.dtype)
    for i in range(k):
        band = (lag == (k - 1 - i) * dilation).to(w.dtype)
        mats = mats + w[:, i, None, None] * band[None]
    return mats


def causal_toeplitz(x: torch.Tensor, w: torch.Tensor, dilation: int) -> torch.Tensor:
    """The same filter as :func:`causal_conv1d`, as one batched matrix product over time."""
    mats = toeplitz(w.expand(x.shape[2], w.shape[1]), x.shape[1], dilation)
    return torch.einsum("cts,bsc->btc", mats, x)


_FILTERS = {"conv1d": causal_conv1d, "toeplitz": causal_toeplitz}


class _Pow2(torch.autograd.Function):
    """``sign(w) 2**clamp(round(log2|w|))`` (0 below the range) with the whole-quantizer STE."""

    @staticmethod
    def forward(ctx: Any, w: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
        e = torch.round(torch.log2(w.abs().clamp_min(1e-30)))
        q = torch.sign(w) * torch.exp2(e.clamp(max=hi))
        return torch.where(e < lo, torch.zeros_like(w), q)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        return grad, None, None


def pow2_exponent_range(w: torch.Tensor, span: int = POW2_SPAN) -> tuple[int, int]:
    """``(e_max - span, e_max)`` with ``e_max = round(log2 max|w|)`` (integers)."""
    top = float(w.detach().abs().max().clamp_min(1e-30))
    hi = round(float(torch.log2(torch.tensor(top))))
    return hi - span, hi


def pow2(w: torch.Tensor, span: int = POW2_SPAN) -> torch.Tensor:
    """Power-of-two quantization of ``w`` (a layer's exponents within ``span`` octaves), STE gradient."""
    lo, hi = pow2_exponent_range(w, span)
    return _Pow2.apply(w, float(lo), float(hi))  # type: ignore[no-any-return]


class PSN(nn.Module):
    """A parallel spiking neuron layer over ``channels`` (see the module docstring)."""

    def __init__(
        self, channels: int, k: int, *, dilation: int = 1, shared: bool = False, slope: float = 5.0
    ) -> None:
        super().__init__()
        if shared and dilation != 1:
            raise field_error("PSN", "dilation", "the sliding PSN (shared=True) has dilation 1", dilation)
        if k < 1:
            raise field_error("PSN", "k", "must be >= 1", k)
        self.channels, self.k, self.dilation, self.shared, self.slope = channels, k, dilation, shared, slope
        w = torch.zeros(1 if shared else channels, k)
        w[:, -1] = 1.0  # start as a memoryless neuron; the other taps learn
        w[:, :-1] = 0.1 * torch.randn(w.shape[0], k - 1) / max(k - 1, 1) ** 0.5
        self.weight = nn.Parameter(w)
        self.bn: nn.BatchNorm1d | None = nn.BatchNorm1d(channels)
        nn.init.constant_(self.bn.bias, -1.0)
        self.bias: nn.Parameter | None = None
        self.mulfree = False
        self.kernel = "conv1d"

    def kernel_weights(self) -> torch.Tensor:
        """The kernel used in the forward pass: float, or power-of-two after :meth:`fold_bn`."""
        return pow2(self.weight) if self.mulfree else self.weight

    def membrane(self, x: torch.Tensor) -> torch.Tensor:
        """``H`` before the Heaviside: BN(filter(x)) or filter(x; Q(W_f)) + b_f."""
        h = _FILTERS[self.kernel](x, self.kernel_weights(), self.dilation)
        if self.bn is not None:
            b, t, c = h.shape
            return self.bn(h.reshape(b * t, c)).reshape(b, t, c)
        assert self.bias is not None
        return h + self.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return FastSigmoidSpike.apply(self.membrane(x), self.slope, False)  # type: ignore[no-any-return]

    @torch.no_grad()
    def fold_bn(self) -> None:
        """Fold the batch norm (running statistics) into per-channel kernels and a bias; turn on the
        power-of-two quantizer. A shared kernel becomes channel-wise (BN scales each channel)."""
        if self.bn is None:
            return
        bn = self.bn
        assert bn.running_var is not None and bn.running_mean is not None
        inv = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        w = self.weight.expand(self.channels, self.k) * inv[:, None]
        self.weight = nn.Parameter(w.clone())
        self.bias = nn.Parameter((bn.bias - bn.running_mean * inv).clone())
        self.bn = None
        self.shared = False
        self.mulfree = True


def _time_kernel(layer: PSN, x: torch.Tensor, kernel: str, repeats: int) -> float:
    layer.kernel = kernel
    xi = x.detach().requires_grad_(True)
    layer.membrane(xi).sum().backward()  # warm up
    start = time.perf_counter()
    for _ in range(repeats):
        layer.membrane(xi).sum().backward()
    layer.zero_grad(set_to_none=True)
    return (time.perf_counter() - start) / repeats


def autoselect(layer: PSN, x: torch.Tensor, repeats: int = 3) -> dict[str, float]:
    """Time forward + backward of each kernel in :data:`KERNELS` on ``x`` (B, T, C), keep the fastest
    in ``layer.kernel`` and return the seconds per call of each (the paper's per-layer autoselect)."""
    was = layer.training
    layer.eval()  # timing must not move the batch-norm statistics
    times = {kern: _time_kernel(layer, x, kern, repeats) for kern in KERNELS}
    layer.train(was)
    layer.kernel = min(times, key=lambda kern: times[kern])
    return times
