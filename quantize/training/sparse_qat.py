"""Sparse spiking gradient descent as the backward of the integer model (:class:`.qat.IntegerSNN`).

``IntegerSNN(net, sparse_grad=B_th)`` (and ``FineTuneConfig(sparse_grad=B_th)``) trains with this
backward: the forward is the exact integer run (what the emulator computes, unchanged); the gradient is
that of the dense :class:`~.qat.IntegerSNN` graph with the spike surrogate truncated to the active set
``A = {|v - th| < B_th th}`` of every hidden group (``B_th`` in units of the group's threshold, as the
surrogate's own scale; the readout groups named in ``net.metadata["outputs"]`` keep the whole surrogate),
computed only on ``A`` by the kernels of :mod:`.sparse_grad` (Perez-Nieves & Goodman 2021).

The gradient model of one group (the dense graph's linear path; every wrap, clip and rounding straight
through): ``I[t] = 64 sum_c 2**exp_c W_c x_c[t - 1 - d_c]``, ``u[t] = k_u u[t-1] + I[t]``,
``v[t] = k_v v[t-1] + u[t] + bias`` with the subtractive reset not differentiated, ``s = H(v - th)``.
That is the Linear -> LIF layer of :mod:`.sparse_grad` with decay ``k_v`` and input ``x_c`` (delayed by
``1 + d_c`` steps) when ``k_u = 0`` (``du = 4095``: no current state, as snnTorch / Norse LIF exports).

What the structure rules out (refused with :class:`~spikeport.emulator.errors.UnsupportedError`):

* ``k_u != 0`` (a current state): ``dL/dx[t] = W^T sum_{t' >= t} k_u**(t'-t) dL/dI'[t']`` needs the
  gradient at the later, inactive entries too, so no input gradient restricted to the layer below's
  active entries exists;
* the zero reset and refractory periods: they cut ``dv[t+1]/dv[t]`` per neuron at its own spike times,
  which a per-input trace (shared by every neuron) cannot express;
* ``reset_interval`` (LIFReset) likewise; ``max_spikes > 1`` (no 0/1 spike surrogate);
* recurrent connections other than the quantizer's reset correction (``~reset``, not differentiated):
  the method is for feed-forward layers (a group's input must be known before its backward).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from spikeport.emulator import bits
from spikeport.emulator.errors import UnsupportedError, field_error
from spikeport.emulator.network import LIFGroup, Network
from spikeport.quantize.training.sparse_grad import BACKENDS, compact_input, gather_grad, sparse_at

__all__ = ["GroupSpec", "check_b_th", "check_sparse_network", "sparse_forward"]


@dataclass(frozen=True, kw_only=True)
class GroupSpec:
    """One group's backward: its incoming connections (indices), their delays ``1 + d`` and scales
    ``64 * 2**exp``, the decay ``k_v``, threshold, surrogate slope and unit, ``B_th`` (absolute)."""

    name: str
    conns: tuple[int, ...]
    lags: tuple[int, ...]
    scales: tuple[float, ...]
    kv: float
    th: float
    unit: float
    slope: float
    b_th: float
    backend: str | None


def _refuse(group: str, field: str, rule: str, got: Any) -> None:
    raise UnsupportedError(f"IntegerSNN.groups[{group!r}].{field}: sparse_grad {rule} (got {got!r})")


def _check_group(g: LIFGroup) -> None:
    if g.reset != "subtract":
        _refuse(
            g.name,
            "reset",
            "needs the subtractive reset (the zero reset cuts the gradient per neuron)",
            g.reset,
        )
    if g.refractory:
        _refuse(g.name, "refractory", "needs no refractory period", g.refractory)
    if g.reset_interval:
        _refuse(g.name, "reset_interval", "needs no periodic reset", g.reset_interval)
    if int(getattr(g, "max_spikes", 1)) != 1:
        _refuse(g.name, "max_spikes", "needs one spike per step", getattr(g, "max_spikes", 1))
    du = np.unique(np.asarray(g.du, np.float64))
    if du.size != 1 or du[0] + bits.DU_OFFSET != bits.DECAY_UNITY:
        _refuse(g.name, "du", f"needs du = {bits.DECAY_UNITY - bits.DU_OFFSET} (no current state)", g.du)
    for name in ("dv", "vth"):
        if np.unique(np.asarray(getattr(g, name))).size != 1:
            _refuse(g.name, name, "needs one value for the whole group", getattr(g, name))


def _topological(net: Network) -> list[LIFGroup]:
    """The LIF groups, every group after the groups feeding it; refuses cycles (bar ``~reset``)."""
    groups = {g.name: g for g in net.groups if isinstance(g, LIFGroup)}
    feeds = {
        name: {c.source for c in net.connections if c.target == name and c.source in groups}
        for name in groups
    }
    for c in net.connections:
        if c.source == c.target and not c.name.endswith("~reset"):
            _refuse(c.target, "connections", "needs feed-forward connections", c.name)
        if c.source == c.target:
            feeds[c.target].discard(c.source)
    order: list[LIFGroup] = []
    while len(order) < len(groups):
        ready = [n for n in groups if groups[n] not in order and feeds[n] <= {g.name for g in order}]
        if not ready:
            _refuse(
                sorted(set(groups) - {g.name for g in order})[0], "connections", "needs no cycle", "cycle"
            )
        order.extend(groups[n] for n in ready)
    return order


def check_sparse_network(net: Network) -> list[LIFGroup]:
    """The LIF groups in feed-forward order; refuses what the sparse backward cannot express."""
    order = _topological(net)
    for g in order:
        _check_group(g)
    return order


def _spec(model: Any, g: LIFGroup, b_th: float) -> GroupSpec:
    backend = getattr(model, "sparse_backend", None)
    if backend is not None and backend not in BACKENDS:
        raise field_error("IntegerSNN", "sparse_backend", f"one of {sorted(BACKENDS)} or None", backend)
    idx = [i for i, c in enumerate(model.net.connections) if c.target == g.name]
    conns = [model.net.connections[i] for i in idx]
    th = float(int(np.asarray(g.vth).flat[0]) << bits.VTH_SHIFT)
    unit = max(th, 1.0)
    return GroupSpec(
        name=g.name,
        conns=tuple(idx),
        lags=tuple(1 + int(c.max_delay) for c in conns),
        scales=tuple(64.0 * 2.0 ** int(c.weight_exp) for c in conns),
        kv=(bits.DECAY_UNITY - float(np.asarray(g.dv).flat[0])) / bits.DECAY_UNITY,
        th=th,
        unit=unit,
        slope=float(model.slope),
        b_th=b_th * unit,
        backend=backend,
    )


def _delayed(x: torch.Tensor, lag: int) -> torch.Tensor:
    """``x`` moved ``lag`` steps later (zeros first)."""
    out = torch.zeros_like(x)
    if lag < x.shape[1]:
        out[:, lag:] = x[:, : x.shape[1] - lag]
    return out


def _shifted_active(
    flat: torch.Tensor, lag: int, shape: tuple[int, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The source's active flat indices that still fall inside the window after ``lag`` steps, and
    the same entries' flat indices in the delayed input."""
    n_t, n = shape[1], shape[2]
    keep = flat[(flat // n) % n_t + lag < n_t]
    return keep, keep + lag * n


class _GroupFunction(torch.autograd.Function):
    """``(sources' spikes..., effective weights...) -> the group's exact spikes``; sparse backward."""

    @staticmethod
    def forward(ctx: Any, spec: GroupSpec, run: Any, *tensors: torch.Tensor) -> torch.Tensor:
        n_c = len(spec.conns)
        srcs, weights = tensors[:n_c], tensors[n_c:]
        v_pre, spikes = run.v_pre[spec.name], run.spikes[spec.name]
        u = (v_pre - spec.th).flatten()
        flat = (u.abs() < spec.b_th).nonzero().flatten()
        xs = [compact_input(_delayed(s.detach(), lag)) for s, lag in zip(srcs, spec.lags, strict=True)]
        ctx.spec, ctx.lowers = spec, [run.active.get(src) for src in run.sources[spec.name]]
        ctx.src_shapes, ctx.shape_out = [tuple(s.shape) for s in srcs], tuple(spikes.shape)
        ctx.save_for_backward(flat, u[flat], *xs, *weights)
        ctx.active = flat
        return spikes.clone()

    @staticmethod
    def backward(ctx: Any, grad_s: torch.Tensor) -> tuple[Any, ...]:
        spec = ctx.spec
        n_c = len(spec.conns)
        flat, u_act, *rest = ctx.saved_tensors
        xs, weights = rest[:n_c], rest[n_c:]
        g = gather_grad(grad_s, flat) / (spec.slope * u_act.abs() / spec.unit + 1.0) ** 2 / spec.unit
        dsrc: list[Any] = []
        dws: list[Any] = []
        for k in range(n_c):
            need_x = ctx.needs_input_grad[2 + k] and ctx.lowers[k] is not None
            keep = lower = None
            if need_x:
                keep, lower = _shifted_active(ctx.lowers[k], spec.lags[k], ctx.src_shapes[k])
            backend = spec.backend or ("numba" if weights[k].device.type == "cpu" else "torch")
            kernel = BACKENDS[backend]
            dx, dw, _ = kernel(xs[k], weights[k], flat, g, spec.kv, lower, need_x, ctx.shape_out)
            dws.append(dw * spec.scales[k])
            dsrc.append(None if keep is None else sparse_at(keep, dx * spec.scales[k], ctx.src_shapes[k]))
        return (None, None, *dsrc, *dws)


@dataclass(frozen=True, kw_only=True)
class _ExactRun:
    """The exact forward's spikes and pre-reset ``v`` per group, each group's sources (in connection
    order) and the active sets of the groups built so far."""

    spikes: dict[str, torch.Tensor]
    v_pre: dict[str, torch.Tensor]
    sources: dict[str, list[str]]
    active: dict[str, torch.Tensor | None]


def _exact_run(model: Any, inputs: Mapping[str, Any] | Any, order: list[LIFGroup]) -> _ExactRun:
    with torch.no_grad():
        out = model(inputs, record_v=True)
    spikes = {g.name: out[f"{g.name}/spikes"] for g in order}
    th = {g.name: float(int(np.asarray(g.vth).flat[0]) << bits.VTH_SHIFT) for g in order}
    v_pre = {g.name: out[f"{g.name}/v"] + spikes[g.name] * th[g.name] for g in order}  # undo the subtraction
    sources = {g.name: [c.source for c in model.net.connections if c.target == g.name] for g in order}
    return _ExactRun(spikes=spikes, v_pre=v_pre, sources=sources, active={})


def _message(
    model: Any, xs: dict[str, torch.Tensor], out: dict[str, torch.Tensor], run: _ExactRun, i: int
) -> torch.Tensor:
    """What connection ``i`` multiplies by its weights over all steps (undelayed)."""
    c = model.net.connections[i]
    if c.source in xs:
        x = xs[c.source]
        return x if c.num_message_bits else (x != 0).to(x.dtype)
    if c.source == c.target:  # the reset correction: its own exact spikes, not differentiated
        return run.spikes[c.source]
    return out[f"{c.source}/spikes"]


def sparse_forward(
    model: Any, inputs: Mapping[str, Any] | Any, xs: dict[str, torch.Tensor], record_v: bool
) -> dict[str, torch.Tensor]:
    """:meth:`IntegerSNN.forward` with the sparse backward (``model.sparse_grad`` set): the exact run,
    then one :class:`_GroupFunction` per group in feed-forward order."""
    order = check_sparse_network(model.net)
    run = _exact_run(model, inputs, order)
    readouts = {str(spec["group"]) for spec in model.net.metadata.get("outputs", {}).values()}
    weights = [model.effective(i) for i in range(len(model.net.connections))]
    out: dict[str, torch.Tensor] = {}
    for g in order:
        spec = _spec(model, g, math.inf if g.name in readouts else float(model.sparse_grad))
        srcs = [_message(model, xs, out, run, i) for i in spec.conns]
        s = _GroupFunction.apply(spec, run, *srcs, *(weights[i] for i in spec.conns))
        run.active[g.name] = s.grad_fn.active if s.grad_fn is not None else None
        out[f"{g.name}/spikes"] = s
    if record_v:
        out.update(
            {f"{g.name}/v": run.v_pre[g.name] - run.spikes[g.name] * _spec(model, g, 0.0).th for g in order}
        )
    return out


def check_b_th(b_th: float | None, obj: str = "IntegerSNN") -> float | None:
    """``None`` (dense) or a ``B_th >= 0`` in units of the threshold."""
    if b_th is None:
        return None
    if not float(b_th) >= 0:
        raise field_error(obj, "sparse_grad", "must be >= 0 (in units of the threshold) or None", b_th)
    return float(b_th)
