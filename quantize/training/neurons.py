"""spikeport's own trainable torch neurons, stepping exactly as the float reference run.

API::

    from spikeport.quantize.training.neurons import LIF, CubaLIF, IF, SNN
    net = SNN(nn.Linear(64, 32), LIF(32, beta=0.9), nn.Linear(32, 10), LIF(10, beta=0.9),
              semantics=semantics("snntorch"))            # any Semantics with integration="euler"
    spikes = net(x)                                       # x: (B, T, *in) -> (B, T, *out) spikes
    net.record                                            # after a forward: {"1/spikes": ..., "1/v": ...}

Neurons are parameterized like snnTorch (``beta = 1 - dt/tau``, ``alpha = 1 - dt/tau_syn``, unit input
gain) but store NIR's ``tau = dt/(1 - beta)`` in float64, and step with the coefficients of
:mod:`spikeport.reference.steppers` (``a = 1 - dt/tau`` in float64 rounded once to float32, ``v = a*v
+ g*x``, ``g = dt/tau * r = 1``), so an exported model runs identically in ``run_nir`` under the same
Semantics (``arithmetic="decay"``). Layers other than neurons (``nn.Linear``, ``nn.Conv2d``,
``nn.Flatten``, ``nn.AvgPool2d``) are plain torch modules applied per step.

Spikes use the fast-sigmoid surrogate gradient ``1 / (slope*|v - thr| + 1)^2`` (Zenke & Ganguli 2018).
The reset is not differentiated through (the spike entering the reset is detached).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from spikeport.emulator.errors import UnsupportedError, field_error
from spikeport.quantize.semantics import Semantics
from spikeport.quantize.semantics import semantics as make_semantics
from torch import nn


class FastSigmoidSpike(torch.autograd.Function):
    """Heaviside forward (``u > 0`` or ``u >= 0``); fast-sigmoid surrogate backward."""

    @staticmethod
    def forward(ctx: Any, u: torch.Tensor, slope: float, inclusive: bool) -> torch.Tensor:
        ctx.save_for_backward(u)
        ctx.slope = slope
        return (u >= 0 if inclusive else u > 0).to(u.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (u,) = ctx.saved_tensors
        return grad / (ctx.slope * u.abs() + 1.0) ** 2, None, None


def _as64(x: float | Sequence[float] | np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return np.broadcast_to(np.asarray(x, np.float64), shape).copy()


class _Neuron(nn.Module):
    """Shared state handling; subclasses define ``nir_params`` and ``_integrate``."""

    spiking = True

    def __init__(self, shape: int | Sequence[int], *, threshold: float, v_reset: float, slope: float) -> None:
        super().__init__()
        self.shape = (shape,) if isinstance(shape, int) else tuple(shape)
        self.threshold = _as64(threshold, self.shape)
        self.v_reset = _as64(v_reset, self.shape)
        self.slope = float(slope)
        self.semantics: Semantics = make_semantics("snntorch")
        self.state: dict[str, torch.Tensor] = {}

    def reset_state(self) -> None:
        self.state = {}

    def _t(self, x: np.ndarray, ref: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(x, dtype=ref.dtype, device=ref.device)

    def _coeff(self, tau: np.ndarray, ref: torch.Tensor) -> torch.Tensor:
        sem = self.semantics
        if sem.integration != "euler" or sem.arithmetic != "decay":
            raise UnsupportedError(
                f"{type(self).__name__}: trains under integration='euler', arithmetic='decay' only "
                f"(got {sem.integration!r}, {sem.arithmetic!r})"
            )
        return self._t(1.0 - sem.dt / tau, ref)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One time step: ``x`` is ``(B, *shape)``; returns the spikes (or ``v`` for non-spiking)."""
        sem = self.semantics
        if sem.reset_timing not in ("same_step", "next_step", "next_step_hold"):
            raise UnsupportedError(f"{type(self).__name__}: reset_timing {sem.reset_timing!r} not supported")
        st = self.state or {"v": torch.zeros_like(x), "s": torch.zeros_like(x), **self._extra_state(x)}
        thr, v_reset = self._t(self.threshold, x), self._t(self.v_reset, x)
        prev = st["s"].detach()
        v = st["v"]
        if sem.reset == "zero" and sem.reset_timing == "next_step":
            v = torch.where(prev > 0, v_reset, v)
        v = self._integrate(x, v, st)
        if sem.reset_timing != "same_step":
            if sem.reset == "subtract":
                v = v - prev * thr
            elif sem.reset == "zero" and sem.reset_timing == "next_step_hold":
                v = torch.where(prev > 0, v_reset, v)
        s = FastSigmoidSpike.apply(v - thr, self.slope, sem.threshold == ">=")
        if sem.multi_spike:
            raise UnsupportedError(f"{type(self).__name__}: multi_spike is not supported for training")
        if sem.reset_timing == "same_step":
            if sem.reset == "zero":
                v = torch.where(s.detach() > 0, v_reset, v)
            elif sem.reset == "subtract":
                v = v - s.detach() * thr
        st["v"], st["s"] = v, s
        self.state = st
        return s

    def _extra_state(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {}

    def _integrate(self, x: torch.Tensor, v: torch.Tensor, st: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError


class LIF(_Neuron):
    """Leaky integrate-and-fire: ``v = beta*v + x``; exports to ``nir.LIF(tau=dt/(1-beta), r=tau/dt)``."""

    def __init__(
        self,
        shape: int | Sequence[int],
        *,
        beta: float | Sequence[float] = 0.9,
        threshold: float = 1.0,
        v_reset: float = 0.0,
        slope: float = 25.0,
        sparse_grad: float | None = None,
    ) -> None:
        super().__init__(shape, threshold=threshold, v_reset=v_reset, slope=slope)
        b = _as64(np.asarray(beta, np.float32), self.shape)
        if np.any((b <= 0) | (b >= 1)):
            raise field_error("LIF", "beta", "must lie in (0, 1)", beta)
        self.beta = b
        if sparse_grad is not None and not float(sparse_grad) >= 0:
            raise field_error("LIF", "sparse_grad", "must be >= 0 (or None for dense)", sparse_grad)
        #: B_th of the sparse backward (:mod:`.sparse_grad`; needs an ``nn.Linear`` just before); None: dense
        self.sparse_grad = None if sparse_grad is None else float(sparse_grad)

    def tau(self, dt: float) -> np.ndarray:
        return dt / (1.0 - self.beta)

    def _integrate(self, x: torch.Tensor, v: torch.Tensor, st: dict[str, torch.Tensor]) -> torch.Tensor:
        return self._coeff(self.tau(self.semantics.dt), x) * v + x


class CubaLIF(LIF):
    """Current-based LIF: ``i = alpha*i + x; v = beta*v + i`` (snnTorch's Synaptic)."""

    def __init__(
        self,
        shape: int | Sequence[int],
        *,
        alpha: float | Sequence[float] = 0.8,
        beta: float | Sequence[float] = 0.9,
        threshold: float = 1.0,
        v_reset: float = 0.0,
        slope: float = 25.0,
    ) -> None:
        super().__init__(shape, beta=beta, threshold=threshold, v_reset=v_reset, slope=slope)
        a = _as64(np.asarray(alpha, np.float32), self.shape)
        if np.any((a <= 0) | (a >= 1)):
            raise field_error("CubaLIF", "alpha", "must lie in (0, 1)", alpha)
        self.alpha = a

    def tau_syn(self, dt: float) -> np.ndarray:
        return dt / (1.0 - self.alpha)

    def _extra_state(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"i": torch.zeros_like(x)}

    def _integrate(self, x: torch.Tensor, v: torch.Tensor, st: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.semantics.synaptic_input != "euler":
            raise UnsupportedError("CubaLIF: trains under synaptic_input='euler' only")
        i = self._coeff(self.tau_syn(self.semantics.dt), x) * st["i"] + x
        st["i"] = i
        return self._coeff(self.tau(self.semantics.dt), x) * v + i


class IF(_Neuron):
    """Integrate-and-fire: ``v = v + x``; exports to ``nir.IF(r=1)``."""

    def __init__(
        self, shape: int | Sequence[int], *, threshold: float = 1.0, v_reset: float = 0.0, slope: float = 25.0
    ) -> None:
        super().__init__(shape, threshold=threshold, v_reset=v_reset, slope=slope)

    def _integrate(self, x: torch.Tensor, v: torch.Tensor, st: dict[str, torch.Tensor]) -> torch.Tensor:
        return v + x


class SNN(nn.Module):
    """A feed-forward stack run over time: ``(B, T, *in) -> (B, T, *out)``."""

    def __init__(self, *layers: nn.Module, semantics: Semantics | str = "snntorch") -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.semantics = make_semantics(semantics) if isinstance(semantics, str) else semantics
        for layer in self.layers:
            if isinstance(layer, _Neuron):
                layer.semantics = self.semantics
        self.record: dict[str, torch.Tensor] = {}

    def reset_state(self) -> None:
        for layer in self.layers:
            if isinstance(layer, _Neuron):
                layer.reset_state()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim < 3:
            raise field_error("SNN", "input", "must have shape (B, T, ...)", tuple(x.shape))
        if any(getattr(layer, "sparse_grad", None) is not None for layer in self.layers):
            from spikeport.quantize.training.sparse_grad import forward_layerwise

            return forward_layerwise(self, x)
        self.reset_state()
        outs: list[torch.Tensor] = []
        traces: dict[str, list[torch.Tensor]] = {}
        for t in range(x.shape[1]):
            h = x[:, t]
            for k, layer in enumerate(self.layers):
                h = layer(h)
                if isinstance(layer, _Neuron):
                    traces.setdefault(f"{k}/spikes", []).append(h)
                    traces.setdefault(f"{k}/v", []).append(layer.state["v"])
            outs.append(h)
        self.record = {k: torch.stack(v, 1) for k, v in traces.items()}
        return torch.stack(outs, 1)
