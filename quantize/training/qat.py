"""Quantization-aware fine-tuning on the exact integer model: what you train is what runs.

:class:`IntegerSNN` wraps a quantized :class:`~spikeport.emulator.network.Network` (LIF groups and
connections from :func:`spikeport.quantize.quantize`) as a torch module whose forward pass computes what
the emulator's fixed-point engine computes, bit for bit (docs/lava-arithmetic.md), in float64 tensors
that hold exact integers (every value stays far below 2**53, so sums are exact in any order)::

    a     = wrap32(shift(sum_i W_eff[j, i] s_i, weight_exp))     per connection (graded: wrap32 first)
    a_in  = wrap32(sum over connections due at t)
    u    <- wrap24(wrap32(decay(u, du + 1) + wrap32(a_in * 64)))
    v    <- clip24(wrap32(decay(v, dv) + u + bias))
    s     = v > vth * 64;   v <- 0 (zero reset) or v - vth * 64 (subtract); refractory hold
    (multi-spike groups, ``max_spikes > 1``: s = k = min(max_spikes, v // (vth * 64)), v - k vth * 64)

with ``decay(x, d) = trunc(x (4096 - d) / 4096)`` (Lava's rounding toward zero). The trainable
parameters are real "shadow" mantissas per connection (``w / 2**weight_exp``, initialized from the float
twin when given); the forward rounds them onto Lava's weight grid (``mode="fixed"``: round to the grid of
the connection's sign mode and clip; ``mode="shift"``: ``sign(w) 2**round(log2|w|)`` clipped to the grid's
powers of two, Xue et al. 2025) and applies Lava's clip/truncation, so :meth:`IntegerSNN.to_network`
writes back exactly the mantissas the forward used.

Gradients: the spike uses the fast-sigmoid surrogate ``1 / (slope |v - th| / th + 1)**2``; every
rounding, wrap, clip and floor passes the gradient straight through (STE); for power-of-two weights the
straight-through estimator spans the whole quantizer (``Q'(w) := 1``, Xue et al.: the round-only STE
diverges); the reset is not differentiated. Exponents, thresholds, decays and biases stay as quantized.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from spikeport.emulator import bits, kernels
from spikeport.emulator.errors import field_error
from spikeport.emulator.network import Connection, LIFGroup, Network, SigmaDeltaGroup, TernaryLIFGroup
from spikeport.emulator.sparse_weights import SparseWeights
from spikeport.quantize import fixed_point as fixed
from spikeport.quantize.training.sparse_qat import check_b_th, check_sparse_network, sparse_forward
from torch import nn

_TWO32 = float(1 << 32)
_TWO31 = float(1 << 31)
_LIM24 = float(bits.STATE_LIMIT)
MODES = ("fixed", "shift")


class _Exact(torch.autograd.Function):
    """Forward: ``y`` (the exact value computed from ``x`` without gradient); backward: identity."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return y.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad, None


def ste(x: torch.Tensor, fn: Any) -> torch.Tensor:
    """``fn(x)`` in the forward pass, identity gradient (straight-through estimator)."""
    with torch.no_grad():
        y = fn(x.detach())
    return _Exact.apply(x, y) if x.requires_grad else y


class _Spike(torch.autograd.Function):
    """``v > th`` (exact comparison of integers); fast-sigmoid surrogate in units of ``th``."""

    @staticmethod
    def forward(ctx: Any, v: torch.Tensor, th: float, slope: float) -> torch.Tensor:
        ctx.save_for_backward(v)
        ctx.th, ctx.slope = th, slope
        return (v > th).to(v.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (v,) = ctx.saved_tensors
        unit = max(ctx.th, 1.0)
        return grad / (ctx.slope * (v - ctx.th).abs() / unit + 1.0) ** 2 / unit, None, None


# ---------------------------------------------------------------- exact integer operations (no grad)


def multi_spikes(v: torch.Tensor, th: float, max_spikes: int) -> torch.Tensor:
    """``k = min(max_spikes, floor(v / th)) if v > th else 0`` (``th = 0``: ``max_spikes`` if ``v > 0``),
    :func:`spikeport.emulator.kernels.lif_multi_spikes` on integer-valued float64."""
    k = torch.full_like(v, float(max_spikes)) if th == 0 else torch.clamp(torch.floor(v / th), max=max_spikes)
    return torch.where(v > th, k, torch.zeros_like(v))


def wrap32(x: torch.Tensor) -> torch.Tensor:
    """Two's-complement int32 wrap of integer-valued float64: ``x - 2**32 floor((x + 2**31) / 2**32)``."""
    return x - _TWO32 * torch.floor((x + _TWO31) / _TWO32)


def wrap24(x: torch.Tensor) -> torch.Tensor:
    """Lava's one-shot u wrap (:func:`spikeport.emulator.kernels.quirky_wrap24`)."""
    hi = torch.where(x > _LIM24, x - 2 * _LIM24, x)
    return torch.where(hi <= -_LIM24, x + 2 * _LIM24, hi)


def decay(x: torch.Tensor, d: float) -> torch.Tensor:
    """``trunc(x (4096 - d) / 4096)``: Lava's decay, rounding toward zero (exact in float64)."""
    return torch.trunc(x * (bits.DECAY_UNITY - d) / bits.DECAY_UNITY)


def shift(acc: torch.Tensor, weight_exp: int) -> torch.Tensor:
    """``acc << e`` or the floor shift ``acc >> -e``, then the int32 wrap."""
    if weight_exp >= 0:
        return wrap32(acc * float(1 << weight_exp))
    return wrap32(torch.floor(acc / float(1 << -weight_exp)))


# ---------------------------------------------------------------- weight quantizers (torch)


def _grid(mode: str, nbits: int) -> tuple[int, int, int]:
    return fixed.weight_grid(mode, nbits)


def quantize_fixed(w: torch.Tensor, sign: str, nbits: int) -> torch.Tensor:
    """Mantissas on Lava's grid for ``sign``: ``clip(round(w / step) * step, lo, hi)``."""
    step, lo, hi = _grid(sign, nbits)
    return torch.clamp(torch.round(w / step) * step, lo, hi)


def quantize_pow2(w: torch.Tensor, sign: str, nbits: int) -> torch.Tensor:
    """``sign(w) 2**clip(round(log2|w|))`` on the grid's powers of two; 0 below ``step / sqrt(2)``
    (as :func:`spikeport.quantize.fixed_point.quantize_weights_pow2` with the exponent kept)."""
    step, lo, hi = _grid(sign, nbits)
    top = 1 << math.floor(math.log2(hi if sign != "inhibitory" else -lo))
    m = w.abs()
    k = torch.round(torch.log2(torch.where(m > 0, m, torch.ones_like(m))))
    mag = torch.exp2(torch.clamp(k, math.log2(step), math.log2(top)))
    mag = torch.where(m < step / math.sqrt(2), torch.zeros_like(m), mag)
    q = torch.sign(w) * mag
    if sign == "excitatory":
        q = torch.clamp(q, min=0)
    elif sign == "inhibitory":
        q = torch.clamp(q, max=0)
    return q


def lava_effective(q: torch.Tensor, nbits: int) -> torch.Tensor:
    """Lava's clip and truncation of integer mantissas (:func:`.kernels.effective_weights`)."""
    return torch.as_tensor(kernels.effective_weights(q.numpy(), nbits), dtype=q.dtype)


# ---------------------------------------------------------------- the module


def _check_supported(net: Network) -> None:
    for g in net.groups:
        if isinstance(g, SigmaDeltaGroup | TernaryLIFGroup) or not isinstance(g, LIFGroup):
            raise field_error(
                "IntegerSNN", "groups", "supports LIF groups only (no sigma-delta, ternary)", g.name
            )
    if not net.is_integer:
        raise field_error("IntegerSNN", "network", "must hold integers (a quantized network)", "float")
    for c in net.connections:
        obj = f"IntegerSNN.connections[{c.name!r}]"
        if c.delays is not None and np.unique(c.delays).size > 1:
            raise field_error(obj, "delays", "must be uniform (one delay per connection)", "mixed")
        wide = float(np.max(np.abs(c.weight_values), initial=0)) * float((1 << c.num_message_bits) - 1)
        if c.num_message_bits and c.delays is not None and not c.sparse and wide >= _TWO31:
            raise field_error(obj, "num_message_bits", "graded DelayDense products must fit int32", wide)


class IntegerSNN(nn.Module):
    """A quantized :class:`Network` as a trainable torch module with the emulator's exact forward.

    ``mode``: "fixed" (8-bit-style mantissas) or "shift" (powers of two); default "shift" when every
    connection of ``net`` is a shift connection, else "fixed". ``twin``: the float twin of
    :func:`spikeport.quantize.quantize_pair`, whose unrounded weights initialize the shadow mantissas
    (else the network's mantissas do). ``slope``: surrogate sharpness. ``sparse_grad``: ``B_th`` (in
    units of the threshold) for the sparse backward of :mod:`.sparse_qat` (None: dense).
    """

    def __init__(
        self,
        net: Network,
        *,
        mode: str | None = None,
        twin: Network | None = None,
        slope: float = 5.0,
        sparse_grad: float | None = None,
    ) -> None:
        super().__init__()
        if mode is None:
            mode = "shift" if net.connections and all(c.shift for c in net.connections) else "fixed"
        if mode not in MODES:
            raise field_error("IntegerSNN", "mode", f"must be one of {MODES}", mode)
        _check_supported(net)
        self.net, self.mode, self.slope = net, mode, float(slope)
        self.sparse_grad = check_b_th(sparse_grad)
        self.sparse_backend: str | None = None  # sparse kernels: None (by device), "numba", "torch"
        if self.sparse_grad is not None:
            check_sparse_network(net)
        init = _initial_shadow(net, twin)
        self.signs = {c.name: kernels.sign_mode(c.weight_values) for c in net.connections}
        self.shadow = nn.ParameterDict(
            {
                _key(i): nn.Parameter(torch.tensor(np.array(init[c.name], np.float64)))
                for i, c in enumerate(net.connections)
            }
        )

    def mantissas(self, i: int) -> torch.Tensor:
        """Connection ``i``'s stored mantissas: the shadow weights rounded onto the grid of the
        connection's sign mode (as the network was built), with the straight-through gradient."""
        c = self.net.connections[i]
        nbits, sign = int(c.num_weight_bits), self.signs[c.name]
        quant = quantize_pow2 if self.mode == "shift" else quantize_fixed
        return ste(self.shadow[_key(i)], lambda w: quant(w, sign, nbits))

    def effective(self, i: int) -> torch.Tensor:
        """What Lava's Dense uses: its clip and truncation of :meth:`mantissas` (identity gradient)."""
        nbits = int(self.net.connections[i].num_weight_bits)
        return ste(self.mantissas(i), lambda q: lava_effective(q, nbits))

    def to_network(self) -> Network:
        """The network with the trained mantissas (everything else unchanged)."""
        conns = []
        for i, c in enumerate(self.net.connections):
            with torch.no_grad():
                m = self.mantissas(i).numpy().astype(np.int64)
            w = SparseWeights.from_dense(m) if c.is_sparse else m
            conns.append(dataclasses.replace(c, weights=w, shift=self.mode == "shift"))
        return dataclasses.replace(self.net, connections=tuple(conns))

    def forward(self, inputs: Mapping[str, Any] | Any, record_v: bool = False) -> dict[str, torch.Tensor]:
        """Inputs as the emulator takes them (integer arrays ``(B, T, n)``, or a mapping per input
        group) -> ``{"<group>/spikes": (B, T, n)}`` (and ``"/v"`` when ``record_v``), step for step
        what :func:`spikeport.emulator.engines.dispatch.run` records."""
        xs = _inputs(self.net, inputs)
        if self.sparse_grad is not None and torch.is_grad_enabled():
            return sparse_forward(self, inputs, xs, record_v)
        steps = next(iter(xs.values())).shape[1]
        weights = [self.effective(i) for i in range(len(self.net.connections))]
        sim = _Sim(self.net, xs, weights, self.slope)
        for t in range(1, steps + 1):
            sim.step(t)
        out = {f"{g}/spikes": torch.stack(s, 1) for g, s in sim.spikes.items()}
        if record_v:
            out.update({f"{g}/v": torch.stack(v, 1) for g, v in sim.volts.items()})
        return out


def _initial_shadow(net: Network, twin: Network | None) -> dict[str, np.ndarray]:
    """Shadow mantissas: the twin's unrounded weights rescaled to each connection's exponent, or the
    network's mantissas (no twin, a connection the twin lacks, or one split into several parts)."""
    # training runs on dense torch matrices: a sparse connection is made dense here (refused above
    # spikeport.emulator.sparse_weights.DENSE_LIMIT entries) and written back sparse by to_network
    init = {c.name: np.asarray(c.dense_weights(), np.float64) for c in net.connections}
    floats = {c.name: c for c in twin.connections} if twin is not None else {}
    names = set(init)
    for c in net.connections:
        tc = floats.get(c.name)
        if tc is None or f"{c.name}.split1" in names or tc.weights.shape != c.weights.shape:
            continue
        init[c.name] = np.asarray(tc.dense_weights(), np.float64) * 2.0 ** (
            int(tc.weight_exp) - int(c.weight_exp)
        )
    return init


def _key(i: int) -> str:
    return f"c{i}"


def _inputs(net: Network, inputs: Any) -> dict[str, torch.Tensor]:
    if not isinstance(inputs, Mapping):
        if len(net.inputs) != 1:
            raise field_error(
                "IntegerSNN", "inputs", "must be a mapping for several input groups", type(inputs)
            )
        inputs = {net.inputs[0].name: inputs}
    out = {}
    for g in net.inputs:
        if g.name not in inputs:
            raise field_error("IntegerSNN", "inputs", "misses an input group", g.name)
        x = torch.tensor(np.array(inputs[g.name], np.float64))
        if x.ndim == 2:
            x = x[None]
        if x.ndim != 3 or x.shape[2] != g.n:
            raise field_error("IntegerSNN", f"inputs[{g.name!r}]", f"must be (B, T, {g.n})", tuple(x.shape))
        out[g.name] = x
    return out


class _Sim:
    """One forward run: states, per-step messages and the exact update (see the module docstring)."""

    def __init__(self, net: Network, xs: dict[str, torch.Tensor], weights: list[torch.Tensor], slope: float):
        self.net, self.xs, self.weights, self.slope = net, xs, weights, slope
        #: the LIF groups (checked when the model was built: IntegerSNN holds no other kind)
        self.groups = [g for g in net.groups if isinstance(g, LIFGroup)]
        batch = next(iter(xs.values())).shape[0]
        self.u = {g.name: _row(g.u0, batch) for g in self.groups}
        self.v = {g.name: _row(g.v0, batch) for g in self.groups}
        self.ref = {g.name: torch.zeros(batch, int(g.n), dtype=torch.float64) for g in self.groups}
        self.bias = {g.name: _row(kernels.effective_bias(g.bias_mant, g.bias_exp), 1) for g in self.groups}
        self.spikes: dict[str, list[torch.Tensor]] = {g.name: [] for g in self.groups}
        self.volts: dict[str, list[torch.Tensor]] = {g.name: [] for g in self.groups}

    def message(self, source: str, t: int) -> torch.Tensor | None:
        """What ``source`` sent at step ``t`` (None before step 1)."""
        if t < 1:
            return None
        if source in self.xs:
            return self.xs[source][:, t - 1]
        return self.spikes[source][t - 1]

    def a_in(self, target: str, t: int, batch: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(linear, exact)``: the sum of the connections' real activations ``acc * 2**exp`` (the
        gradient path) and the exact, int32-wrapped ``a_in`` (no gradient)."""
        lin = torch.zeros(batch, n, dtype=torch.float64)
        exact = torch.zeros(batch, n, dtype=torch.float64)
        for c, w in zip(self.net.connections, self.weights, strict=True):
            if c.target != target:
                continue
            msg = self.message(c.source, t - 1 - c.max_delay)
            if msg is not None:
                acc = _binary_or_graded(c, msg) @ w.T
                lin = lin + acc * 2.0**c.weight_exp
                exact = exact + _exact_activation(c, acc.detach())
        return lin, wrap32(exact)

    def step(self, t: int) -> None:
        """One step of every group: exact values forward, the Euler-like linear map backward."""
        for g in self.groups:
            batch, n = self.v[g.name].shape
            lin, a = self.a_in(g.name, t, batch, n)
            u, v = self.u[g.name], self.v[g.name]
            if kernels.lif_reset_due(t, int(g.reset_interval), int(g.reset_offset)):
                u, v = torch.zeros_like(u), torch.zeros_like(v)
            bias = self.bias[g.name]
            with torch.no_grad():
                u_ex = wrap24(wrap32(decay(u, g.du + bits.DU_OFFSET) + wrap32(a * 64.0)))
                v_ex = torch.clamp(wrap32(decay(v, g.dv) + u_ex + bias), bits.V_MIN, bits.V_MAX)
            ku = (bits.DECAY_UNITY - g.du - bits.DU_OFFSET) / bits.DECAY_UNITY
            u_new = _Exact.apply(u * ku + lin * 64.0, u_ex)
            v_new = _Exact.apply(v * ((bits.DECAY_UNITY - g.dv) / bits.DECAY_UNITY) + u_new + bias, v_ex)
            self.u[g.name] = u_new
            self._finish(g, v, v_new)

    def _finish(self, g: LIFGroup, v_old: torch.Tensor, v: torch.Tensor) -> None:
        th = float(int(g.vth) << bits.VTH_SHIFT)
        frozen = self.ref[g.name] > 0
        if g.refractory:
            v = torch.where(frozen, v_old, v)
        s = _Spike.apply(v, th, self.slope)
        if g.max_spikes > 1:  # k spikes (LIFGroup.max_spikes); the gradient is the binary surrogate's
            s = _Exact.apply(s, multi_spikes(v.detach(), th, int(g.max_spikes)))
        if g.refractory:
            s = torch.where(frozen, torch.zeros_like(s), s)
        fired = s.detach()
        v = v - fired * th if g.reset == "subtract" else v * (1.0 - (fired > 0).to(v.dtype))
        if g.refractory:
            r = self.ref[g.name]
            self.ref[g.name] = torch.where(fired > 0, float(g.refractory), torch.where(frozen, r - 1, 0.0))
        self.v[g.name] = v
        self.spikes[g.name].append(s)
        self.volts[g.name].append(v)


def _row(a: np.ndarray, batch: int) -> torch.Tensor:
    t = torch.tensor(np.array(a, np.float64))
    return t.expand(batch, -1).clone()


def _binary_or_graded(c: Connection, msg: torch.Tensor) -> torch.Tensor:
    """What connection ``c`` multiplies by its weights: graded payloads as sent; on a binary connection
    ``msg != 0``, except a group's spikes (0/1 already), which stay as they are so that the surrogate
    gradient flows to the layer below; a reset-correction self-connection (``~reset``) is not
    differentiated (the reset is not)."""
    if c.num_message_bits:
        return msg
    if msg.requires_grad:
        return msg.detach() if c.name.endswith("~reset") else msg
    return (msg != 0).to(msg.dtype)


def _exact_activation(c: Connection, acc: torch.Tensor) -> torch.Tensor:
    """One connection's exact activation from its integer sum ``acc`` (see :mod:`.kernels`): graded
    Dense/Sparse sums wrap to int32 before the exponent's shift; then shift and wrap."""
    if c.num_message_bits and (c.delays is None or c.sparse):
        acc = wrap32(acc)
    return shift(acc, int(c.weight_exp))
