"""Per-node step kernels of the float reference run (:mod:`spikeport.reference.run`).

Every kernel is built from a :class:`FlatNode` and its node's :class:`Semantics` and has
``step(contribs) -> output`` (``contribs``: this step's incoming edge signals, already shaped
``(B, *in_shape)``, feed-forward first) and ``recorded(names) -> {variable: tensor}``.

Neuron step (``spikeport.quantize.semantics`` gives the rules), per step::

    next_step reset (zero):          v = v_reset where s[t-1] > 0
    synapse (Cuba):    decay:        I = a_s*I + g_s*x_1 + g_s*x_2 ...
                       increment:    I = I + (-k_s)*I;  I = I + g_s*x_1 + ...
    membrane:          decay:        v = a*v + g*x_1 + ... (+ c if v_leak != 0)
                       increment:    v = v + k*((v_leak - v) + r*(x_1 + ...))
    next_step(_hold) subtract:       v = v - s[t-1]*v_threshold
    next_step_hold zero:             v = v_reset where s[t-1] > 0
    spike:                           s = (v > thr) or (v >= thr); multi_spike: floor(v/thr) where it fires
    same_step reset:                 v = v_reset where s (zero) or v - s*thr (subtract)
    same_step_lagged (subtract):     before the spike test v = v - q*thr, after it v = v - (s - q)*thr,
                                     q = [v[t-1] above threshold] (snnTorch reset_delay=False order)

with (euler) ``a = 1 - dt/tau``, ``g = dt/tau*r``, ``c = dt/tau*v_leak``, ``a_s = 1 - dt/tau_syn``,
``g_s = dt/tau_syn*w_in`` (``synaptic_input="euler"``) or ``w_in`` (``"jump"``); (exp) ``1 - dt/tau``
becomes ``exp(-dt/tau)`` and ``dt/tau`` becomes ``1 - exp(-dt/tau)``. ``a, g, c`` are computed in float64
and rounded once to the run's dtype; ``k = dt * (1/tau)`` is a dtype product (Norse's order).
IF and I: ``v = v + r*x_1 + r*x_2 ...``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from spikeport.emulator.errors import UnsupportedError
from spikeport.quantize.graph.flatten import FlatNode, scalar_int
from spikeport.quantize.semantics import Semantics

Tensor = torch.Tensor


def _t(x: Any, dtype: torch.dtype) -> Tensor:
    return torch.as_tensor(np.array(x, dtype=np.float64), dtype=dtype)


def _sum(contribs: Sequence[Tensor]) -> Tensor:
    x = contribs[0]
    for c in contribs[1:]:
        x = x + c
    return x


class Stateless:
    def __init__(self, fn: Callable[[Tensor], Tensor]) -> None:
        self.fn = fn
        self.out: Tensor | None = None

    def step(self, contribs: Sequence[Tensor]) -> Tensor:
        self.out = self.fn(_sum(contribs))
        return self.out

    def recorded(self, names: Sequence[str]) -> dict[str, Tensor]:
        return {"out": self.out} if "out" in names and self.out is not None else {}


class _Delay:
    """y[t] = x[t - d] per element, d = round(delay / dt) steps."""

    def __init__(self, fn: FlatNode, sem: Semantics, dtype: torch.dtype) -> None:
        d = np.rint(np.broadcast_to(np.asarray(fn.node.delay, np.float64), fn.in_shape) / sem.dt)
        self.steps = torch.as_tensor(d.astype(np.int64))
        self.hist: list[Tensor] = []
        self.out: Tensor | None = None

    def step(self, contribs: Sequence[Tensor]) -> Tensor:
        x = _sum(contribs)
        self.hist.append(x)
        depth = int(self.steps.max()) + 1
        del self.hist[:-depth]
        stack = torch.stack(self.hist[::-1] + [torch.zeros_like(x)] * (depth - len(self.hist)))
        idx = self.steps.expand(1, *x.shape)
        self.out = torch.gather(stack, 0, idx)[0]
        return self.out

    recorded = Stateless.recorded


class _Neuron:
    def __init__(self, fn: FlatNode, sem: Semantics, dtype: torch.dtype, batch: int) -> None:
        node, kind = fn.node, fn.kind
        shape = fn.out_shape
        self.sem = sem
        self.spiking = kind in ("IF", "LIF", "CubaLIF")
        self.cuba = kind in ("CubaLI", "CubaLIF")
        self.integrator = kind in ("I", "IF")
        get = lambda name, default=0.0: np.broadcast_to(  # noqa: E731
            np.asarray(default if getattr(node, name, None) is None else getattr(node, name), np.float64),
            shape,
        )
        r = get("r", 1.0)
        if self.integrator:
            self.g = _t(r, dtype)
        else:
            tau = get("tau_mem" if self.cuba else "tau", 1.0)
            self.a, self.g, frac, self.k = _coeffs(tau, sem, dtype, r)
            leak = frac * get("v_leak")
            self.c = _t(leak, dtype) if np.any(leak) else None
            self.r, self.v_leak = _t(r, dtype), _t(get("v_leak"), dtype)
            self.r_is_one = bool(np.all(r == 1.0))
        if self.cuba:
            w_in = get("w_in", 1.0)
            self.a_s, g_s, _, k_s = _coeffs(get("tau_syn", 1.0), sem, dtype, w_in)
            self.g_s = _t(w_in, dtype) if sem.synaptic_input == "jump" else g_s
            self.neg_k_s = -k_s
            self.i = torch.zeros(batch, *shape, dtype=dtype)
        self.thr = _t(get("v_threshold", 1.0), dtype)
        self.v_reset = _t(get("v_reset"), dtype)
        self.v = torch.zeros(batch, *shape, dtype=dtype)
        if sem.initial_v == "leak" and not self.integrator:
            self.v = self.v + self.v_leak
        self.s = torch.zeros(batch, *shape, dtype=dtype)
        self.armed = torch.zeros(batch, *shape, dtype=dtype)  # same_step_lagged: v[t-1] above threshold
        self.amp = float(sem.spike_amplitude)

    def step(self, contribs: Sequence[Tensor]) -> Tensor:
        sem, prev = self.sem, self.s
        fired_before = prev > 0
        if self.spiking and sem.reset == "zero" and sem.reset_timing == "next_step":
            self.v = torch.where(fired_before, self.v_reset, self.v)
        if self.cuba:
            contribs = [self._synapse(contribs)]
        self.v = self._membrane(contribs)
        if self.spiking and sem.reset_timing in ("next_step", "next_step_hold"):
            if sem.reset == "subtract":
                self.v = self.v - prev * self.thr
            elif sem.reset == "zero" and sem.reset_timing == "next_step_hold":
                self.v = torch.where(fired_before, self.v_reset, self.v)
        if not self.spiking:
            return self.v
        lagged = sem.reset == "subtract" and sem.reset_timing == "same_step_lagged"
        if lagged:
            self.v = self.v - self.armed * self.thr
        fire = self.v > self.thr if sem.threshold == ">" else self.v >= self.thr
        if sem.multi_spike:
            self.s = torch.where(fire, torch.clamp(torch.floor(self.v / self.thr), min=1.0), 0.0)
        else:
            self.s = fire.to(self.v.dtype)
        if lagged:
            self.v = self.v - (self.s - self.armed) * self.thr
            self.armed = (self.v > self.thr if sem.threshold == ">" else self.v >= self.thr).to(self.v.dtype)
        elif sem.reset_timing in ("same_step", "same_step_lagged"):
            if sem.reset == "zero":
                self.v = torch.where(fire, self.v_reset, self.v)
            elif sem.reset == "subtract":
                self.v = self.v - self.s * self.thr
        return self.s if self.amp == 1.0 else self.s * self.amp

    def _synapse(self, contribs: Sequence[Tensor]) -> Tensor:
        if self.sem.arithmetic == "decay":
            i = self.a_s * self.i
        else:
            i = self.i + self.neg_k_s * self.i
        for x in contribs:
            i = i + self.g_s * x
        self.i = i
        return i

    def _membrane(self, contribs: Sequence[Tensor]) -> Tensor:
        if self.integrator:
            v = self.v
            for x in contribs:
                v = v + self.g * x
            return v
        if self.sem.arithmetic == "decay":
            v = self.a * self.v
            for x in contribs:
                v = v + self.g * x
            return v if self.c is None else v + self.c
        x = _sum(contribs)
        if not self.r_is_one:
            x = self.r * x
        return self.v + self.k * ((self.v_leak - self.v) + x)

    def recorded(self, names: Sequence[str]) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        if "spikes" in names and self.spiking:
            out["spikes"] = self.s
        if "v" in names:
            out["v"] = self.v
        if "i" in names and self.cuba:
            out["i"] = self.i
        return out


def _coeffs(
    tau: np.ndarray, sem: Semantics, dtype: torch.dtype, r: Any = 1.0
) -> tuple[Tensor, Tensor, np.ndarray, Tensor]:
    """(a, g, c-factor dt/tau-like, k) for one time constant; see the module docstring."""
    ratio = sem.dt / tau
    frac = ratio if sem.integration == "euler" else -np.expm1(-ratio)
    a = _t(1.0 - frac, dtype)
    g = _t(frac * np.asarray(r, np.float64), dtype)
    if sem.integration == "euler":
        k = sem.dt * _t(1.0 / tau, dtype)
    else:
        k = _t(frac, dtype)
    return a, g, frac, k


def _neuron_builder(fn: FlatNode, sem: Semantics, dtype: torch.dtype, batch: int) -> Any:
    return _Neuron(fn, sem, dtype, batch)


def _affine(fn: FlatNode, sem: Semantics, dtype: torch.dtype, batch: int) -> Any:
    w = _t(fn.node.weight, dtype)
    b = _t(fn.node.bias, dtype).reshape(-1) if fn.kind == "Affine" else None
    if b is not None and b.numel() == 1:
        b = b.expand(w.shape[0]).clone()
    return Stateless(lambda x: F.linear(x.reshape(batch, -1), w, b))


def _conv(fn: FlatNode, sem: Semantics, dtype: torch.dtype, batch: int) -> Any:
    node = fn.node
    w = _t(node.weight, dtype)
    b = _t(node.bias, dtype).reshape(-1) if getattr(node, "bias", None) is not None else None
    if b is not None and b.numel() == 1:
        b = b.expand(w.shape[0]).clone()
    nd = w.ndim - 2
    conv = F.conv1d if nd == 1 else F.conv2d
    pad = node.padding if isinstance(node.padding, str) else _ints(node.padding, nd)
    stride, dil = _ints(node.stride, nd), _ints(node.dilation, nd)
    groups = scalar_int(fn.name, node, "groups", 1)
    return Stateless(lambda x: conv(x, w, b, stride, pad, dil, groups))


def _ints(x: Any, n: int) -> tuple[int, ...]:
    from spikeport.quantize.graph.flatten import pair_ints

    return pair_ints(x, n)


def _pool(fn: FlatNode, sem: Semantics, dtype: torch.dtype, batch: int) -> Any:
    node = fn.node
    k, s, p = _ints(node.kernel_size, 2), _ints(node.stride, 2), _ints(node.padding, 2)
    if fn.kind == "SumPool2d":
        return Stateless(lambda x: F.avg_pool2d(x, k, s, p, divisor_override=1))
    return Stateless(lambda x: F.avg_pool2d(x, k, s, p))


def _flatten(fn: FlatNode, sem: Semantics, dtype: torch.dtype, batch: int) -> Any:
    out = fn.out_shape
    return Stateless(lambda x: x.reshape(batch, *out))


def _scale(fn: FlatNode, sem: Semantics, dtype: torch.dtype, batch: int) -> Any:
    scale = _t(fn.node.scale, dtype)
    if scale.numel() == fn.in_size and scale.numel() > 1:
        scale = scale.reshape(fn.in_shape)
    return Stateless(lambda x: x * scale)


def _threshold(fn: FlatNode, sem: Semantics, dtype: torch.dtype, batch: int) -> Any:
    thr = _t(fn.node.threshold, dtype)
    if thr.numel() == fn.in_size and thr.numel() > 1:
        thr = thr.reshape(fn.in_shape)
    if sem.threshold == ">":
        return Stateless(lambda x: (x > thr).to(dtype))
    return Stateless(lambda x: (x >= thr).to(dtype))


class _ThresholdKernel(Stateless):
    def recorded(self, names: Sequence[str]) -> dict[str, Tensor]:
        out = super().recorded(names)
        if "spikes" in names and self.out is not None:
            out["spikes"] = self.out
        return out


def _threshold_node(fn: FlatNode, sem: Semantics, dtype: torch.dtype, batch: int) -> Any:
    return _ThresholdKernel(_threshold(fn, sem, dtype, batch).fn)


BUILDERS: dict[str, Callable[[FlatNode, Semantics, torch.dtype, int], Any]] = {
    "Output": lambda fn, sem, dtype, batch: Stateless(lambda x: x),
    "Affine": _affine,
    "Linear": _affine,
    "Scale": _scale,
    "Conv1d": _conv,
    "Conv2d": _conv,
    "SumPool2d": _pool,
    "AvgPool2d": _pool,
    "Flatten": _flatten,
    "Delay": lambda fn, sem, dtype, batch: _Delay(fn, sem, dtype),
    "Threshold": _threshold_node,
    **{k: _neuron_builder for k in ("I", "IF", "LI", "LIF", "CubaLI", "CubaLIF")},
}


def build(fn: FlatNode, sem: Semantics, dtype: torch.dtype, batch: int) -> Any:
    """The step kernel of node ``fn`` under ``sem``."""
    try:
        builder = BUILDERS[fn.kind]
    except KeyError:
        raise UnsupportedError(
            f"{fn.name}: the reference run has no kernel for {fn.kind}; supported: {', '.join(BUILDERS)}"
        ) from None
    return builder(fn, sem, dtype, batch)
