"""Quantized activations with temporally diffused error (Voelker, Rasmussen and Eliasmith 2020).

Source: docs/seed-methods.md, "Temporally diffused quantization (Voelker et al. 2020)".
Per time step, for a rate ``r = f(x)``::

    v <- v + r * dt;   n = floor(v);   v <- v - n;   out = n / dt

``n`` is the integer number of spikes sent this step (a graded payload on hardware); the remainder
``v`` carries the quantization error to the next step, so nothing is lost:
``sum_t n_t = sum_t r_t dt + v_0 - v_T`` (:func:`telescoping_gap` checks it). ``v_0`` is 0 or uniform
in [0, 1). The backward pass is straight-through: ``d out / d r = 1``.

``dt`` is the per-step scale: ``r * dt >> 1`` sends many spikes per step (the non-spiking limit),
``r * dt <= 1`` at most one. :func:`anneal_dt` moves it geometrically from the first regime to the
second during training. ``mode="round"`` is the per-step rounding baseline (``n = round(r dt)``, no
carried error); ``mode="none"`` passes ``r`` through (the non-spiking network).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from spikeport.emulator.errors import field_error

Mode = Literal["diffuse", "round", "floor", "none"]
MODES: tuple[str, ...] = ("diffuse", "round", "floor", "none")
Phase = Literal["zero", "half", "random"]


def _straight_through(r: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``out`` in the forward pass, gradient 1 to ``r`` in the backward pass."""
    return r + (out - r).detach()


def sigma_delta_step(
    r: torch.Tensor, v: torch.Tensor, dt: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step of the diffused quantizer: returns ``(out, n, v_new)``.

    ``v_new = v + r dt - n`` with ``n = floor(v + r dt)``; ``out = n / dt`` with a straight-through
    gradient to ``r``."""
    acc = v + r.detach() * dt
    n = torch.floor(acc)
    return _straight_through(r, n / dt), n, acc - n


def rounding_step(r: torch.Tensor, dt: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The baseline: ``n = round(r dt)`` per step (half to even), no carried error; ``(out, n)``."""
    n = torch.round(r.detach() * dt)
    return _straight_through(r, n / dt), n


def floor_step(r: torch.Tensor, dt: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``n = floor(r dt)`` per step: what Lava 0.10.0's SigmaDelta computes in place of the
    diffused quantizer (the LSBs shifted out of ``s_out`` are dropped, docs/lava-arithmetic.md)."""
    n = torch.floor(r.detach() * dt)
    return _straight_through(r, n / dt), n


def initial_phase(
    shape: tuple[int, ...], phase: Phase, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``v_0``: zeros, one half everywhere (the accumulated count is then ``round`` instead of
    ``floor`` of the accumulated ``r dt``), or uniform in [0, 1)."""
    if phase == "zero":
        return torch.zeros(shape)
    if phase == "half":
        return torch.full(shape, 0.5)
    if phase == "random":
        return torch.rand(shape, generator=generator)
    raise field_error("initial_phase", "phase", "must be 'zero', 'half' or 'random'", phase)


class SigmaDeltaActivation(torch.nn.Module):
    """A stateful quantized activation: call :meth:`reset` at the start of a sequence, then
    :meth:`forward` once per time step with the rate ``r`` (B, N).

    ``counts`` collects the spikes ``n`` of every step (for the activity metrics) when
    ``keep_counts`` is set."""

    def __init__(self, dt: float = 1.0, mode: Mode = "diffuse", phase: Phase = "zero") -> None:
        super().__init__()
        self.dt = float(dt)
        self.mode = mode
        self.phase = phase
        self.v: torch.Tensor | None = None
        self.keep_counts = False
        self.counts: list[torch.Tensor] = []
        self.set(dt=dt, mode=mode)

    def set(self, *, dt: float | None = None, mode: Mode | None = None) -> None:
        """Change the per-step scale and/or the mode (the annealing schedule calls this)."""
        if mode is not None:
            if mode not in MODES:
                raise field_error("SigmaDeltaActivation", "mode", f"must be one of {MODES}", mode)
            self.mode = mode
        if dt is not None:
            if not (math.isfinite(dt) and dt > 0):
                raise field_error("SigmaDeltaActivation", "dt", "must be finite and > 0", dt)
            self.dt = float(dt)

    def reset(self, batch: int, n: int, generator: torch.Generator | None = None) -> None:
        self.v = initial_phase((batch, n), self.phase, generator)
        self.counts = []

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        if self.mode == "none":
            return r
        if self.mode == "round":
            out, n = rounding_step(r, self.dt)
        elif self.mode == "floor":
            out, n = floor_step(r, self.dt)
        else:
            if self.v is None:
                raise field_error("SigmaDeltaActivation", "v", "call reset() before the first step", None)
            out, n, self.v = sigma_delta_step(r, self.v, self.dt)
        if self.keep_counts:
            self.counts.append(n)
        return out


def quantize_sequence(
    r: torch.Tensor, dt: float, v0: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run the diffused quantizer over a (B, T, N) rate sequence: ``(out, n, v_T)`` with out, n of
    shape (B, T, N)."""
    v = torch.zeros_like(r[:, 0]) if v0 is None else v0
    outs, ns = [], []
    for t in range(r.shape[1]):
        o, n, v = sigma_delta_step(r[:, t], v, dt)
        outs.append(o)
        ns.append(n)
    return torch.stack(outs, 1), torch.stack(ns, 1), v


def telescoping_gap(
    n: torch.Tensor, r: torch.Tensor, dt: float, v0: torch.Tensor, vT: torch.Tensor
) -> torch.Tensor:
    """``sum_t n_t - (sum_t r_t dt + v_0 - v_T)`` over the time axis 1 (zero up to float rounding)."""
    return n.sum(1) - ((r * dt).sum(1) + v0 - vT)


def anneal_dt(progress: float, dt_start: float, dt_end: float, hold: float = 0.0) -> float:
    """Geometric schedule: ``dt_start`` at ``progress = 0`` (many spikes per step), ``dt_end`` from
    ``progress >= 1 - hold`` on (e.g. 1: at most one spike per step for rates in [0, 1]). ``hold`` is
    the final fraction of training spent at ``dt_end`` (0: only the last batch trains there)."""
    if dt_start <= 0 or dt_end <= 0:
        raise field_error("anneal_dt", "dt_start/dt_end", "must be > 0", (dt_start, dt_end))
    if not 0.0 <= hold < 1.0:
        raise field_error("anneal_dt", "hold", "must be in [0, 1)", hold)
    p = min(max(float(progress) / (1.0 - hold), 0.0), 1.0)
    return float(dt_start * (dt_end / dt_start) ** p)


def activity_bits(counts: torch.Tensor) -> torch.Tensor:
    """Per neuron (last axis): ``ceil(log2(max |n| + 1))`` over every other axis (the bits a graded
    payload needs)."""
    m = counts.abs().reshape(-1, counts.shape[-1]).amax(0).to(torch.int64)
    return _bit_length(m)


def significant_bits(counts: torch.Tensor) -> float:
    """Mean ``bit_length(|n|)`` over the nonzero events: the shift-and-add steps of ``w * n``."""
    nz = counts.abs()[counts != 0].to(torch.int64)
    return float(_bit_length(nz).double().mean()) if nz.numel() else 0.0


def _bit_length(m: torch.Tensor) -> torch.Tensor:
    """``int.bit_length`` elementwise for non-negative int64 (= ceil(log2(m + 1)))."""
    out = torch.zeros_like(m)
    x = m.clone()
    while bool((x > 0).any()):
        out += (x > 0).to(out.dtype)
        x = x >> 1
    return out
