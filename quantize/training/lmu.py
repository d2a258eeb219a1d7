"""The Legendre Memory Unit (Voelker et al. 2019) with spiking hidden units: the hybrid LMU of
Voelker, Rasmussen and Eliasmith 2020.

Source: docs/seed-methods.md, "Temporally diffused quantization (Voelker et al. 2020)".

Per time step (memory dimension 1)::

    u_t = e_x . x_t + e_h . h_{t-1} + e_m . m_{t-1}
    m_t = Abar m_{t-1} + Bbar u_t
    h_t = Q(clip(W_x x_t + W_h h_{t-1} + W_m m_t + b, 0, 1))

``A_ij = (2i + 1) * (-1 if i < j else (-1)^(i - j + 1))``, ``B_i = (2i + 1) (-1)^i``, and
``(Abar, Bbar)`` is their zero-order hold at ``dt = 1`` with ``A / theta, B / theta`` (:func:`zoh`).
``Q`` is a :class:`~.sigma_delta.SigmaDeltaActivation` (diffused quantizer, per-step rounding, or
none: the non-spiking LMU). The rate is a ReLU clipped at 1, so ``Q`` sends at most ``dt`` spikes per
step: ``ceil(log2(dt + 1))`` bits of activity at most. The memory stays linear (the hybrid model).

The readout is linear on the mean hidden output over time, ``logits = W_o mean_t h_t + b_o``; a
deployed network sums the integer spikes ``n_t`` instead (:mod:`spikeport.quantize.lmu_deploy`).
Every sequence starts with ``blank_steps`` all-zero steps: on Lava the first step of a SigmaDelta
neuron sends its bias-only activation, which the deployed network reads as that blank step.

Folding ``u`` into the memory gives the three matrices the deployment uses (:meth:`LMU.memory_matrices`):
``m_t = M m_{t-1} + B_x x_t + B_h h_{t-1}`` with ``M = Abar + Bbar e_m^T``, ``B_x = Bbar e_x^T``,
``B_h = Bbar e_h^T``. The recurrent memory weights are dimensionless, and Lava's finest weight step
is ``2**-8`` (``weight_exp >= -8``), so ``M`` is trained on that grid (``memory_grid_exp``, the
arithmetic that will run); :meth:`LMU.memory_grid_error` gives its distance from the exact ZOH.

``memory_feedback=False`` is keras-lmu's psMNIST setting (no hidden-to-memory, no memory-to-memory
encoders: ``e_h = e_m = 0``, fixed): the memory is then a linear filter of ``u = e_x . x`` alone,
``m_t = sum_k M^k Bbar u_{t-k}``, computed for every step at once by FFT convolution, and only the
hidden recurrence runs step by step (long sequences such as T = 784). ``readout_steps = k > 0``
reads the mean hidden output over the last ``k`` steps only (the deployment sums every step and
refuses it).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.linalg
import torch
from spikeport.emulator.errors import field_error
from spikeport.quantize.training.sigma_delta import SigmaDeltaActivation
from torch import nn


def legendre_ab(order: int) -> tuple[np.ndarray, np.ndarray]:
    """Continuous-time ``(A, B)`` of the LMU, float64, shapes (order, order) and (order,)."""
    if int(order) < 1:
        raise field_error("legendre_ab", "order", "must be >= 1", order)
    i = np.arange(order)[:, None]
    j = np.arange(order)[None, :]
    sign = np.where(i < j, -1.0, (-1.0) ** (i - j + 1))
    A = (2 * i + 1) * sign
    B = (2 * np.arange(order) + 1) * (-1.0) ** np.arange(order)
    return A.astype(np.float64), B.astype(np.float64)


def zoh(A: np.ndarray, B: np.ndarray, theta: float, dt: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Zero-order hold of ``x' = (A x + B u) / theta``: ``expm([[A, B], [0, 0]] dt / theta)`` holds
    ``Abar`` and ``Bbar`` in its first rows."""
    if not theta > 0:
        raise field_error("zoh", "theta", "must be > 0", theta)
    d = A.shape[0]
    big = np.zeros((d + 1, d + 1))
    big[:d, :d] = A
    big[:d, d] = B
    e = scipy.linalg.expm(big * (dt / theta))
    return e[:d, :d], e[:d, d]


class LMU(nn.Module):
    """Hybrid-spiking LMU classifier over (B, T, n_in) sequences (see the module docstring)."""

    Abar: torch.Tensor
    Bbar: torch.Tensor

    def __init__(
        self,
        n_in: int,
        order: int,
        theta: float,
        n_hidden: int,
        n_out: int,
        *,
        act: SigmaDeltaActivation | None = None,
        blank_steps: int = 1,
        memory_grid_exp: int | None = -8,
        memory_feedback: bool = True,
        readout_steps: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if int(readout_steps) < 0:
            raise field_error("LMU", "readout_steps", "must be >= 0 (0: every step)", readout_steps)
        self.memory_feedback, self.readout_steps = bool(memory_feedback), int(readout_steps)
        g = torch.Generator().manual_seed(seed)
        self.order, self.theta, self.blank_steps = int(order), float(theta), int(blank_steps)
        self.memory_grid_exp = memory_grid_exp
        Abar, Bbar = zoh(*legendre_ab(order), theta)
        self.register_buffer("Abar", torch.tensor(Abar, dtype=torch.float32))
        self.register_buffer("Bbar", torch.tensor(Bbar, dtype=torch.float32))

        def p(*shape: int, scale: float) -> nn.Parameter:
            return nn.Parameter(torch.randn(*shape, generator=g) * scale)

        self.e_x = p(n_in, scale=1.0 / np.sqrt(n_in))
        if memory_feedback:
            self.e_h = p(n_hidden, scale=1.0 / np.sqrt(n_hidden))
            self.e_m = nn.Parameter(torch.zeros(order))
        else:
            _ = torch.randn(n_hidden, generator=g)  # same draws for the other weights
            self.register_buffer("e_h", torch.zeros(n_hidden))
            self.register_buffer("e_m", torch.zeros(order))
        self.W_x = p(n_hidden, n_in, scale=1.0 / np.sqrt(n_in))
        self.W_h = p(n_hidden, n_hidden, scale=0.5 / np.sqrt(n_hidden))
        self.W_m = p(n_hidden, order, scale=1.0 / np.sqrt(order))
        self.b = nn.Parameter(torch.full((n_hidden,), 0.1))
        self.W_o = p(n_out, n_hidden, scale=1.0 / np.sqrt(n_hidden))
        self.b_o = nn.Parameter(torch.zeros(n_out))
        self.act = act if act is not None else SigmaDeltaActivation(mode="none")

    def memory_matrices(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(M, B_x, B_h)`` of ``m_t = M m_{t-1} + B_x x_t + B_h h_{t-1}``; ``M`` rounded to the grid
        ``2**memory_grid_exp`` (straight-through) unless that is None."""
        Bb = self.Bbar[:, None]
        M = self.Abar + Bb * self.e_m[None, :]
        if self.memory_grid_exp is not None:
            g = 2.0**self.memory_grid_exp
            M = M + (torch.round(M / g) * g - M).detach()
        return M, Bb * self.e_x[None, :], Bb * self.e_h[None, :]

    def memory_grid_error(self) -> float:
        """Largest ``|M_grid - (Abar + Bbar e_m^T)|``: what the weight grid changes in the memory."""
        exact = self.Abar + self.Bbar[:, None] * self.e_m[None, :]
        return float((self.memory_matrices()[0] - exact).abs().max().detach())

    def _memory_filter(self, steps: int) -> torch.Tensor:
        """``(order, steps)`` impulse response ``M^k Bbar`` (float64 powers; ``e_m = 0`` here)."""
        M = self.memory_matrices()[0].detach().double()
        h = torch.empty(steps, self.order, dtype=torch.float64)
        h[0] = self.Bbar.double()
        for k in range(1, steps):
            h[k] = M @ h[k - 1]
        return h.T.float().contiguous()

    def _parallel_memory(self, x: torch.Tensor) -> torch.Tensor:
        """``m`` (B, T, order) of the feedback-free memory by FFT convolution of ``u = x . e_x``."""
        steps = x.shape[1]
        cached = getattr(self, "_filter_cache", None)
        if cached is None or cached.shape[1] != steps:
            cached = self._memory_filter(steps)
            self._filter_cache = cached
        u = x @ self.e_x  # (B, T)
        n = 2 * steps
        m = torch.fft.irfft(torch.fft.rfft(u, n)[:, None, :] * torch.fft.rfft(cached, n)[None], n)
        return m[..., :steps].transpose(1, 2)

    def _forward_parallel(self, x: torch.Tensor) -> torch.Tensor:
        """The ``memory_feedback=False`` path: memory and input drive precomputed for every step."""
        m = self._parallel_memory(x)
        drive = x @ self.W_x.T + m @ self.W_m.T + self.b  # (B, T, H)
        h = x.new_zeros(x.shape[0], self.b.shape[0])
        self.act.reset(x.shape[0], self.b.shape[0])
        keep = min(self.readout_steps or x.shape[1], x.shape[1])
        total = torch.zeros_like(h)
        for t, d in enumerate(drive.unbind(1)):  # unbind: one gradient stack, not T full-size adds
            h = self.act(torch.clamp(d + h @ self.W_h.T, 0.0, 1.0))
            if t >= x.shape[1] - keep:
                total = total + h
        return (total / keep) @ self.W_o.T + self.b_o

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (B, T, n_in) -> logits (B, n_out)."""
        batch = x.shape[0]
        if self.blank_steps:
            x = torch.cat([x.new_zeros(batch, self.blank_steps, x.shape[2]), x], 1)
        if not self.memory_feedback:
            return self._forward_parallel(x)
        M, Bx, Bh = self.memory_matrices()
        n_h = self.b.shape[0]
        m = x.new_zeros(batch, self.order)
        h = x.new_zeros(batch, n_h)
        total = x.new_zeros(batch, n_h)
        self.act.reset(batch, n_h)
        keep = min(self.readout_steps or x.shape[1], x.shape[1])
        for t in range(x.shape[1]):
            xt = x[:, t]
            m = m @ M.T + xt @ Bx.T + h @ Bh.T
            z = xt @ self.W_x.T + h @ self.W_h.T + m @ self.W_m.T + self.b
            h = self.act(torch.clamp(z, 0.0, 1.0))
            if t >= x.shape[1] - keep:
                total = total + h
        return (total / keep) @ self.W_o.T + self.b_o

    def deploy_params(self) -> dict[str, np.ndarray | float]:
        """The float64 parameters the integer deployment quantizes (and ``dt``, ``blank_steps``)."""
        if self.readout_steps:
            raise field_error(
                "LMU",
                "readout_steps",
                "must be 0 to deploy (the readout sums every step)",
                self.readout_steps,
            )
        M, Bx, Bh = (t.detach().double().numpy() for t in self.memory_matrices())
        d = {k: getattr(self, k).detach().double().numpy() for k in ("W_x", "W_h", "W_m", "b", "W_o", "b_o")}
        return {**d, "M": M, "B_x": Bx, "B_h": Bh, "dt": float(self.act.dt), "blank_steps": self.blank_steps}


def batches(n: int, size: int, generator: torch.Generator | None = None) -> list[torch.Tensor]:
    idx = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    return [idx[i : i + size] for i in range(0, n, size)]


def fit(
    model: LMU,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    lr: float = 2e-3,
    batch: int = 100,
    seed: int = 0,
    dt_schedule: Callable[[float], float] | None = None,
) -> list[float]:
    """Adam on cross-entropy; ``dt_schedule(progress in [0, 1])`` sets the quantizer's ``dt`` before
    every batch (annealing). Returns the mean loss per epoch."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    parts = batches(len(y), batch)
    total = max(epochs * len(parts), 1)
    step = 0
    for _ in range(epochs):
        run = 0.0
        for idx in batches(len(y), batch, g):
            if dt_schedule is not None:
                model.act.set(dt=dt_schedule(step / max(total - 1, 1)))
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            run += float(loss.detach()) * len(idx)
            step += 1
        losses.append(run / len(y))
    return losses


@torch.no_grad()
def evaluate(
    model: LMU, x: torch.Tensor, y: torch.Tensor, batch: int = 500
) -> tuple[float, torch.Tensor | None]:
    """Accuracy, and the spike counts (B, T, n_hidden) when the activation quantizes."""
    model.act.keep_counts = model.act.mode != "none"
    correct, counts = 0, []
    for idx in batches(len(y), batch):
        correct += int((model(x[idx]).argmax(1) == y[idx]).sum())
        if model.act.keep_counts:
            counts.append(torch.stack(model.act.counts, 1))
    model.act.keep_counts = False
    return correct / len(y), (torch.cat(counts) if counts else None)
