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
    alpha (Sinabs):                  v = a*v + (1 - a)*(x_1 + ...), a = exp(-dt/tau) in the dtype
    spike:                           s = (v > thr) or (v >= thr); multi_spike: floor(v/thr) where it
                                     fires, or max(floor(v/thr), 0) (multi_spike_rule="quotient")
    same_step reset:                 v = v_reset where s (zero) or v - s*thr (subtract)
    same_step_lagged (subtract):     before the spike test v = v - q*thr, after it v = v - (s - q)*thr,
                                     q = [v[t-1] above threshold] (snnTorch reset_delay=False order)

with (euler) ``a = 1 - dt/tau``, ``g = dt/tau*r``, ``c = dt/tau*v_leak``, ``a_s = 1 - dt/tau_syn``,
``g_s = dt/tau_syn*w_in`` (``synaptic_input="euler"``) or ``w_in`` (``"jump"``); (exp) ``1 - dt/tau``
becomes ``exp(-dt/tau)`` and ``dt/tau`` becomes ``1 - exp(-dt/tau)``. ``a, g, c`` are computed in float64
and rounded once to the run's dtype; ``k = dt * (1/tau)`` is a dtype product (Norse's order).
IF and I: ``v = v + r*x_1 + r*x_2 ...`` (``integrator_input="dt_r"``: ``dt*r`` in place of ``r``,
computed in float64 and rounded once).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from spikeport.quantize.graph.flatten import NEURON_TYPES, FlatNode, scalar_int
from spikeport.quantize.graph.node_specs import Registry
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
        node, traits = fn.node, fn.spec.neuron
        assert traits is not None  # registered for neuron types only
        shape = fn.out_shape
        self.sem = sem
        self.spiking = traits.spiking
        self.cuba = traits.current
        self.integrator = not traits.leaky
        get = lambda name, default=0.0: np.broadcast_to(  # noqa: E731
            np.asarray(default if getattr(node, name, None) is None else getattr(node, name), np.float64),
            shape,
        )
        r = get("r", 1.0)
        if self.integrator:
            self.g = _t(sem.dt * r if sem.integrator_input == "dt_r" else r, dtype)
        else:
            tau = get("tau_mem" if self.cuba else "tau", 1.0)
            self.a, self.g, frac, self.k = _coeffs(tau, sem, dtype, r)
            leak = frac * get("v_leak")
            self.c = _t(leak, dtype) if np.any(leak) else None
            self.r, self.v_leak = _t(r, dtype), _t(get("v_leak"), dtype)
            self.r_is_one = bool(np.all(r == 1.0))
            if sem.arithmetic in ("alpha", "rockpool"):  # exp(-dt/tau) from the dtype's tau (torch order)
                self.a = torch.exp(-sem.dt / _t(tau, dtype))
                self.one_minus_a = 1 - self.a
                self.gain = _rockpool_gain(r, tau, sem.dt, dtype)
        if self.cuba:
            w_in = get("w_in", 1.0)
            self.a_s, g_s, _, k_s = _coeffs(get("tau_syn", 1.0), sem, dtype, w_in)
            self.g_s = _t(w_in, dtype) if sem.synaptic_input == "jump" else g_s
            self.neg_k_s = -k_s
            if sem.arithmetic == "rockpool":
                self.b_s = torch.exp(-sem.dt / _t(get("tau_syn", 1.0), dtype))
                self.w_in = None if np.all(w_in == 1.0) else _t(w_in, dtype)
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
        if not self.spiking:
            return self.v
        self._delayed_reset(prev, fired_before)
        self._fire_and_reset()
        return self.s if self.amp == 1.0 else self.s * self.amp

    def _above(self, v: Tensor) -> Tensor:
        return v > self.thr if self.sem.threshold == ">" else v >= self.thr

    def _delayed_reset(self, prev: Tensor, fired_before: Tensor) -> None:
        """``next_step`` / ``next_step_hold``: the previous step's spikes reset v after integration."""
        sem = self.sem
        if sem.reset_timing not in ("next_step", "next_step_hold"):
            return
        if sem.reset == "subtract":
            self.v = self.v - prev * self.thr
        elif sem.reset == "zero" and sem.reset_timing == "next_step_hold":
            self.v = torch.where(fired_before, self.v_reset, self.v)

    def _fire_and_reset(self) -> None:
        """Spikes of this step (``multi_spike``: floor(v / thr) of them), and the same-step resets."""
        sem = self.sem
        lagged = sem.reset == "subtract" and sem.reset_timing == "same_step_lagged"
        if lagged:
            self.v = self.v - self.armed * self.thr
        if sem.multi_spike and sem.multi_spike_rule == "quotient":  # Sinabs: (v > 0) * trunc(v / thr)
            self.s = torch.clamp(torch.floor(self.v / self.thr), min=0.0)
            fire = self.s > 0
        elif sem.multi_spike:  # Rockpool: (v >= thr) * floor(v / thr)
            fire = self._above(self.v)
            self.s = torch.where(fire, torch.floor(self.v / self.thr), 0.0)
        else:
            fire = self._above(self.v)
            self.s = fire.to(self.v.dtype)
        if lagged:
            self.v = self.v - (self.s - self.armed) * self.thr
            self.armed = self._above(self.v).to(self.v.dtype)
        elif sem.reset_timing in ("same_step", "same_step_lagged"):
            if sem.reset == "zero":
                self.v = torch.where(fire, self.v_reset, self.v)
            elif sem.reset == "subtract":
                self.v = self.v - self.s * self.thr

    def _synapse(self, contribs: Sequence[Tensor]) -> Tensor:
        if self.sem.arithmetic == "rockpool":  # isyn + x, then * beta
            x = _sum(contribs)
            self.i = (self.i + (x if self.w_in is None else self.w_in * x)) * self.b_s
            return self.i
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
        if self.sem.arithmetic == "rockpool":  # r is folded into the gain G
            v = self.a * self.v + (x if self.gain is None else self.gain * x)
            return v if self.c is None else v + self.c
        if not self.r_is_one:
            x = self.r * x
        if self.sem.arithmetic == "alpha":
            v = self.a * self.v + self.one_minus_a * x
            return v if self.c is None else v + self.c
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


def _rockpool_gain(r: np.ndarray, tau: np.ndarray, dt: float, dtype: torch.dtype) -> Tensor | None:
    """``G = r*dt / (tau*exp(-dt/tau))`` (``"rockpool"`` arithmetic); ``None`` where it is 1 within 1e-6."""
    gain = np.asarray(r, np.float64) * dt / (tau * np.exp(-dt / tau))
    return None if np.allclose(gain, 1.0, rtol=0, atol=1e-6) else _t(gain, dtype)


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


#: node type -> ``(FlatNode, Semantics, dtype, batch) -> stepper``
STEPPERS: Registry[Callable[[FlatNode, Semantics, torch.dtype, int], Any]] = Registry(
    "{name}: the reference run has no kernel for {kind}; supported: {supported}"
)


def _neuron_builder(fn: FlatNode, sem: Semantics, dtype: torch.dtype, batch: int) -> Any:
    return _Neuron(fn, sem, dtype, batch)


@STEPPERS.register("Affine", "Linear")
def _affine(fn: FlatNode, sem: Semantics, dtype: torch.dtype, batch: int) -> Any:
    w = _t(fn.node.weight, dtype)
    b = _t(fn.node.bias, dtype).reshape(-1) if fn.kind == "Affine" else None
    if b is not None and b.numel() == 1:
        b = b.expand(w.shape[0]).clone()
    return Stateless(lambda x: F.linear(x.reshape(batch, -1), w, b))


@STEPPERS.register("Conv1d", "Conv2d")
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


@STEPPERS.register("SumPool2d", "AvgPool2d")
def _pool(fn: FlatNode, sem: Semantics, dtype: torch.dtype, batch: int) -> Any:
    node = fn.node
    k, s, p = _ints(node.kernel_size, 2), _ints(node.stride, 2), _ints(node.padding, 2)
    if fn.kind == "SumPool2d":
        return Stateless(lambda x: F.avg_pool2d(x, k, s, p, divisor_override=1))
    return Stateless(lambda x: F.avg_pool2d(x, k, s, p))


@STEPPERS.register("Flatten")
def _flatten(fn: FlatNode, sem: Semantics, dtype: torch.dtype, batch: int) -> Any:
    out = fn.out_shape
    return Stateless(lambda x: x.reshape(batch, *out))


@STEPPERS.register("Scale")
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


@STEPPERS.register("Threshold")
def _threshold_node(fn: FlatNode, sem: Semantics, dtype: torch.dtype, batch: int) -> Any:
    return _ThresholdKernel(_threshold(fn, sem, dtype, batch).fn)


STEPPERS.add("Output", lambda fn, sem, dtype, batch: Stateless(lambda x: x))
STEPPERS.add("Delay", lambda fn, sem, dtype, batch: _Delay(fn, sem, dtype))
for _kind in NEURON_TYPES:
    STEPPERS.add(_kind, _neuron_builder)


def build(fn: FlatNode, sem: Semantics, dtype: torch.dtype, batch: int) -> Any:
    """The step kernel of node ``fn`` under ``sem``."""
    return STEPPERS.lookup(fn.kind, fn.name)(fn, sem, dtype, batch)
