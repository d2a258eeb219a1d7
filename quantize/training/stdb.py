"""Spike-timing-dependent backpropagation (STDB): BPTT fine-tuning of a converted network
(docs/seed-methods.md, "Hybrid conversion and STDB (Rathi et al. 2020)").

API::

    snn, info = convert_module(ann, x_cal, steps=5, scale=0.7)     # spikeport.quantize.conversion.convert
    history = finetune(snn, x_train, y_train, steps=5, epochs=3)   # in place; then to_nir(snn, info)

The spike is ``H(v - theta)`` forward; its backward is a surrogate of ``u = v / theta - 1``:

- ``"stdb"``: ``dO/du = alpha * exp(-beta * dt)``, ``dt = (t - 1) - last_spike`` (``last_spike`` starts
  at ``-1000``, so a neuron that never spiked gets ``alpha * exp(-beta * (t + 999))``, about 1e-5 for the
  defaults ``alpha = 0.3``, ``beta = 0.01``);
- ``"linear"``: ``dO/du = gamma * max(0, 1 - |u|)``, ``gamma = 0.3``.

and ``du/dv = 1 / theta`` (thresholds stay fixed). The reset is not differentiated. The loss is the
cross entropy of the readout's ``v`` at the last step times ``rho_{L-1} / steps`` (the ANN's
logits, in the rate approximation: ``snn.out_scale`` holds ``rho_{L-1}``); Adam updates every weight and
bias (the paper: learning rate 1e-4, at most 20 epochs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from spikeport.emulator.errors import field_error
from torch import nn

if TYPE_CHECKING:
    from spikeport.quantize.conversion.snn import ConvertedSNN

SURROGATES = ("stdb", "linear")


class _STDBSpike(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, v: torch.Tensor, theta: torch.Tensor, dt: torch.Tensor, alpha: float, beta: float
    ) -> torch.Tensor:
        ctx.save_for_backward(dt, theta)
        ctx.alpha, ctx.beta = alpha, beta
        return (v > theta).to(v.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        dt, theta = ctx.saved_tensors
        return grad * ctx.alpha * torch.exp(-ctx.beta * dt) / theta, None, None, None, None


class _LinearSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, v: torch.Tensor, theta: torch.Tensor, gamma: float) -> torch.Tensor:
        ctx.save_for_backward(v, theta)
        ctx.gamma = gamma
        return (v > theta).to(v.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        v, theta = ctx.saved_tensors
        u = v / theta - 1.0
        return grad * ctx.gamma * torch.clamp(1.0 - u.abs(), min=0.0) / theta, None, None


def stdb_surrogate(alpha: float = 0.3, beta: float = 0.01) -> Callable[..., torch.Tensor]:
    """The STDB spike ``(v, theta, last_spike, t) -> spikes`` with the exponential surrogate."""

    def spike(v: torch.Tensor, theta: torch.Tensor, last: torch.Tensor, t: int) -> torch.Tensor:
        return _STDBSpike.apply(v, theta, (t - 1) - last, alpha, beta)

    return spike


def linear_surrogate(gamma: float = 0.3) -> Callable[..., torch.Tensor]:
    """The spike ``(v, theta, last_spike, t) -> spikes`` with the linear surrogate."""

    def spike(v: torch.Tensor, theta: torch.Tensor, last: torch.Tensor, t: int) -> torch.Tensor:
        return _LinearSpike.apply(v, theta, gamma)

    return spike


def make_surrogate(name: str, **params: float) -> Callable[..., torch.Tensor]:
    if name not in SURROGATES:
        raise field_error("finetune", "surrogate", f"one of {SURROGATES}", name)
    return stdb_surrogate(**params) if name == "stdb" else linear_surrogate(**params)


@dataclass
class History:
    """Mean training loss per epoch, and the seconds it took."""

    loss: list[float]
    seconds: float


def finetune(
    snn: ConvertedSNN,
    x: Any,
    y: Any,
    *,
    steps: int,
    epochs: int = 3,
    lr: float = 1e-4,
    batch: int = 64,
    surrogate: str = "stdb",
    input: str = "current",
    seed: int = 0,
    **surrogate_params: float,
) -> History:
    """Fine-tune a :class:`~spikeport.quantize.conversion.snn.ConvertedSNN` in place with BPTT over
    ``steps`` steps on ANN inputs ``x`` ``(N, *shape)`` and labels ``y``; returns the loss history."""
    import time

    from spikeport.quantize.conversion.convert import encode

    if int(epochs) < 0 or int(steps) < 1:
        raise field_error("finetune", "epochs/steps", "epochs >= 0, steps >= 1", (epochs, steps))
    xs, ys = np.asarray(x, np.float32), torch.as_tensor(np.asarray(y), dtype=torch.long)
    if len(xs) != len(ys):
        raise field_error("finetune", "y", f"one label per sample ({len(xs)})", len(ys))
    snn.surrogate = make_surrogate(surrogate, **surrogate_params)
    scale = float(getattr(snn, "out_scale", 1.0))
    opt = torch.optim.Adam(snn.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    losses, t0 = [], time.time()
    try:
        for ep in range(int(epochs)):
            perm, total = torch.randperm(len(xs), generator=gen).numpy(), 0.0
            for i in range(0, len(xs), batch):
                b = perm[i : i + batch]
                xb = torch.as_tensor(encode(xs[b], steps, input, seed=seed + 7919 * ep + i))
                loss = nn.functional.cross_entropy(snn(xb)[:, -1] * (scale / steps), ys[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(b)
            losses.append(total / len(xs))
    finally:
        snn.surrogate = None
    return History(loss=losses, seconds=time.time() - t0)
