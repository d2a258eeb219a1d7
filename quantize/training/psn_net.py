"""A small sequential classifier around :mod:`.psn` neurons (and a LIF baseline), deployable as is.

``SeqNet`` maps ``(B, T, n_in)`` 0/1 spikes to ``(B, classes)`` logits through ``layers`` stages of
``QuantLinear -> neuron`` and a readout ``logits = mean_t W_out S_L[t]``. Every stage delays its input
by one step, as a Loihi synapse does (the emulator's connection delivers at ``t + 1``), and the input
is padded with ``layers`` zero steps so the last stage sees the whole sequence: the float model, the
integer inference and the emulator then share one time axis (``T + layers`` steps).

``QuantLinear`` optionally fake-quantizes its weights to ``s * round(w / s)``, ``s = max|w| / 127``
(straight-through gradient), the values the integer network holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import torch
from spikeport.emulator.errors import field_error
from spikeport.quantize.training.neurons import FastSigmoidSpike
from spikeport.quantize.training.psn import PSN
from torch import nn
from torch.nn import functional as F

NEURONS = ("lif", "sliding_psn", "chw_psn", "mulfree_chw_psn")
WEIGHT_LEVELS = 127


class _RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return torch.round(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return grad


class QuantLinear(nn.Linear):
    """``nn.Linear`` without bias; ``quant=True`` uses ``s * round(w / s)``, ``s = max|w| / 127``."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__(n_in, n_out, bias=False)
        self.quant = False

    def scale(self) -> torch.Tensor:
        return self.weight.detach().abs().max().clamp_min(1e-12) / WEIGHT_LEVELS

    def effective_weight(self) -> torch.Tensor:
        if not self.quant:
            return self.weight
        s = self.scale()
        return _RoundSTE.apply(self.weight / s) * s  # type: ignore[no-any-return]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.effective_weight())


class LIF(nn.Module):
    """Baseline: batch norm, then ``v <- beta v + x``, spike if ``v > 1``, subtract reset (stepped)."""

    def __init__(self, channels: int, beta: float = 0.9, slope: float = 5.0) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(channels)
        self.beta, self.slope = beta, slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        cur = self.bn(x.reshape(b * t, c)).reshape(b, t, c)
        v = torch.zeros(b, c, dtype=x.dtype)
        out = []
        for i in range(t):
            v = self.beta * v + cur[:, i]
            s = FastSigmoidSpike.apply(v - 1.0, self.slope, False)
            v = v - s.detach()
            out.append(s)
        return torch.stack(out, dim=1)


def shift_time(x: torch.Tensor, steps: int = 1) -> torch.Tensor:
    """``y[:, t] = x[:, t - steps]`` (zeros first): the one-step synaptic delay."""
    return F.pad(x, (0, 0, steps, 0))[:, : x.shape[1]]


class SeqNet(nn.Module):
    """``layers`` stages of ``QuantLinear -> neuron`` and a ``QuantLinear`` readout (see the module)."""

    def __init__(
        self,
        n_in: int,
        hidden: int,
        classes: int,
        *,
        neuron: str,
        k: int = 4,
        dilations: Sequence[int] = (1, 2),
    ) -> None:
        super().__init__()
        if neuron not in NEURONS:
            raise field_error("SeqNet", "neuron", f"must be one of {NEURONS}", neuron)
        self.neuron = neuron
        sizes = [n_in] + [hidden] * len(dilations)
        self.linears = nn.ModuleList(QuantLinear(a, b) for a, b in pairwise(sizes))
        self.neurons = nn.ModuleList(self._neuron(hidden, k, d) for d in dilations)
        self.readout = QuantLinear(hidden, classes)

    def _neuron(self, hidden: int, k: int, d: int) -> nn.Module:
        if self.neuron == "lif":
            return LIF(hidden)
        if self.neuron == "sliding_psn":
            return PSN(hidden, k, dilation=1, shared=True)
        return PSN(hidden, k, dilation=d)

    def spikes(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Spikes of every stage, each ``(B, T + layers, hidden)``."""
        s = F.pad(x, (0, 0, 0, len(self.linears)))
        out = []
        for lin, neu in zip(self.linears, self.neurons, strict=True):
            s = neu(lin(shift_time(s)))
            out.append(s)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(self.spikes(x)[-1]).mean(dim=1)

    def make_mulfree(self) -> None:
        """Fold every PSN's batch norm, switch to power-of-two kernels and quantized linear weights."""
        for neu in self.neurons:
            if not isinstance(neu, PSN):
                raise field_error("SeqNet", "neuron", "make_mulfree needs PSN neurons", self.neuron)
            neu.fold_bn()
        for lin in (*self.linears, self.readout):
            lin.quant = True
        self.neuron = "mulfree_chw_psn"
