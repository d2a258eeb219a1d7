"""The converted spiking network in torch: the float run of a converted ANN, trainable with STDB.

Per step ``t`` and spiking stage ``l`` (docs/seed-methods.md, "Hybrid conversion and STDB (Rathi et al. 2020)";
the same rules as :mod:`spikeport.quantize.semantics` with ``reset_timing="same_step"``, ``threshold=">"``)::

    c_l[t] = f_l(s_{l-1}[t])                 f_l: the stage's linear layers (biases already divided by
                                             rho_{l-1}, the activation one spike of layer l-1 stands for)
    v_l    = beta * v_l + c_l[t]             (IF: beta = 1)
    s_l[t] = H(v_l - theta_l)                (v > theta)
    v_l    = v_l - theta_l s_l[t]            (reset "subtract"; "zero": v_l = 0 where s_l[t] = 1)

``s_0[t]`` is the input (constant current: the ANN input itself; or signed Poisson spikes). The readout
(the last stage) is a non-spiking integrator ``v_L = v_L + c_L[t]`` whose ``v`` at the last step is the
class score. The reset is not differentiated (the spike entering it is detached).

:class:`ConvertedSNN` is that network; ``surrogate`` picks the spike's backward pass
(:mod:`spikeport.quantize.training.stdb`); :func:`to_nir` writes it as a NIR graph (linear layers as
``Affine``/``Conv2d``/``AvgPool2d``/``Flatten``, spiking layers as ``IF``/``LIF``, the readout as ``I``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import nir
import numpy as np
import torch
from spikeport.emulator.errors import UnsupportedError, field_error
from spikeport.quantize.conversion.layers import Stage
from spikeport.quantize.semantics import Semantics
from torch import nn

#: graph metadata key of the conversion record (thresholds, rho, neuron, input encoding)
CONVERSION_KEY = "spikeport.conversion"
#: the semantics metadata key that spikeport's NIR reader looks for (docs/nir-conventions.md)
SEMANTICS_KEY = "spikeport.semantics"
READOUT = "readout"


def heaviside(v: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Forward of every spike function here: ``1`` where ``v > theta``; the backward is a straight 0."""
    return (v > theta).to(v.dtype)


class ConvertedSNN(nn.Module):
    """A converted network (see the module docstring); ``forward(x)`` with ``x`` ``(B, T, *in_shape)``
    returns the readout's ``v`` ``(B, T, n_classes)``; ``self.record`` then holds each spiking stage's
    spikes ``(B, T, ...)`` under ``"spike<k>"`` when ``record=True``."""

    thresholds: torch.Tensor
    blocks: nn.ModuleList
    surrogate: Any

    def __init__(
        self,
        stages: Sequence[Stage],
        thresholds: Sequence[float],
        *,
        input_shape: Sequence[int],
        neuron: str = "IF",
        beta: float = 1.0,
        reset: str = "subtract",
    ) -> None:
        super().__init__()
        spiking = [s.spiking for s in stages]
        if spiking != [True] * (len(stages) - 1) + [False]:
            raise field_error("ConvertedSNN", "stages", "spiking stages then one readout", spiking)
        if len(thresholds) != len(stages) - 1:
            raise field_error(
                "ConvertedSNN", "thresholds", f"one per spiking stage ({len(stages) - 1})", thresholds
            )
        if neuron not in ("IF", "LIF") or reset not in ("subtract", "zero"):
            raise UnsupportedError(
                f"ConvertedSNN: neuron IF/LIF, reset subtract/zero (got {neuron!r}, {reset!r})"
            )
        if neuron == "LIF" and not 0 < beta < 1:
            raise field_error("ConvertedSNN", "beta", "must lie in (0, 1) for LIF", beta)
        self.blocks = nn.ModuleList(nn.Sequential(*s.ops) for s in stages)
        self.names = [s.name for s in stages]
        self.register_buffer("thresholds", torch.tensor([float(t) for t in thresholds], dtype=torch.float64))
        self.input_shape = tuple(int(d) for d in input_shape)
        self.neuron, self.beta, self.reset = neuron, float(beta if neuron == "LIF" else 1.0), reset
        self.surrogate: Any = None  # a training.stdb surrogate; None: no gradient through spikes
        self.record: dict[str, torch.Tensor] = {}
        self.out_scale = 1.0  # rho of the last spiking stage: readout v / steps * out_scale ~ ANN logits

    def semantics(self) -> Semantics:
        """The discretization this network runs under (dt = 1 step)."""
        return Semantics(
            convention="conversion",
            dt=1.0,
            reset="subtract" if self.reset == "subtract" else "zero",
            reset_timing="same_step",
            threshold=">",
        )

    def _spike(self, v: torch.Tensor, theta: torch.Tensor, last: torch.Tensor, t: int) -> torch.Tensor:
        if self.surrogate is None or not torch.is_grad_enabled():
            return heaviside(v, theta)
        return self.surrogate(v, theta, last, t)

    def step_layer(self, k: int, c: torch.Tensor, state: dict[str, torch.Tensor], t: int) -> torch.Tensor:
        """One step of spiking stage ``k`` fed current ``c``: updates ``state`` (v, last spike), returns spikes."""
        theta = self.thresholds[k].to(c.dtype)
        v = state.get("v", torch.zeros_like(c))
        last = state.get("last", torch.full_like(c, -1000.0))
        v = v + c if self.neuron == "IF" else self.beta * v + c
        s = self._spike(v, theta, last, t)
        fired = s.detach() > 0
        v = v - theta * s.detach() if self.reset == "subtract" else torch.where(fired, torch.zeros_like(v), v)
        state["v"], state["last"] = v, torch.where(fired, torch.full_like(last, float(t)), last)
        return s

    def forward(self, x: torch.Tensor, *, record: bool = False) -> torch.Tensor:
        if x.ndim != 2 + len(self.input_shape) or tuple(x.shape[2:]) != self.input_shape:
            raise field_error("ConvertedSNN", "input", f"shape (B, T, {self.input_shape})", tuple(x.shape))
        x = x.to(next(self.parameters()).dtype)
        states: list[dict[str, torch.Tensor]] = [{} for _ in self.blocks[:-1]]
        readout = None
        vs: list[torch.Tensor] = []
        spikes: list[list[torch.Tensor]] = [[] for _ in states]
        for t in range(x.shape[1]):
            h = x[:, t]
            for k, st in enumerate(states):
                h = self.step_layer(k, self.blocks[k](h), st, t)
                if record:
                    spikes[k].append(h.detach())
            c = self.blocks[-1](h)
            readout = c if readout is None else readout + c
            vs.append(readout)
        self.record = {f"spike{k}": torch.stack(s, 1) for k, s in enumerate(spikes)} if record else {}
        return torch.stack(vs, 1)


# ---------------------------------------------------------------- NIR


def _np(t: torch.Tensor | None) -> np.ndarray | None:
    return None if t is None else t.detach().cpu().numpy().copy()


def _linear(m: nn.Linear, x: tuple[int, ...]) -> Any:
    w = m.weight.detach().cpu().numpy().copy()
    b = _np(m.bias) if m.bias is not None else np.zeros(w.shape[0], w.dtype)
    return nir.Affine(weight=w, bias=b)


def _conv(m: nn.Conv2d, x: tuple[int, ...]) -> Any:
    if isinstance(m.padding, str):
        raise UnsupportedError(f"Conv2d: padding={m.padding!r}; give the padding as numbers")
    w = m.weight.detach().cpu().numpy().copy()
    b = _np(m.bias) if m.bias is not None else np.zeros(w.shape[0], w.dtype)
    return nir.Conv2d(
        input_shape=np.asarray(x[1:]),
        weight=w,
        stride=np.asarray(m.stride),
        padding=np.asarray(m.padding),
        dilation=np.asarray(m.dilation),
        groups=int(m.groups),
        bias=b,
    )


def _pool(m: nn.AvgPool2d, x: tuple[int, ...]) -> Any:
    if not m.count_include_pad or m.ceil_mode or m.divisor_override:
        raise UnsupportedError("AvgPool2d: only count_include_pad=True, ceil_mode=False, no divisor_override")
    two = lambda v: np.broadcast_to(np.asarray(v), 2).copy()  # noqa: E731
    stride = m.stride if m.stride is not None else m.kernel_size
    return nir.AvgPool2d(kernel_size=two(m.kernel_size), stride=two(stride), padding=two(m.padding))


def _flatten(m: nn.Flatten, x: tuple[int, ...]) -> Any:
    start = m.start_dim - 1 if m.start_dim > 0 else m.start_dim
    end = m.end_dim - 1 if m.end_dim > 0 else m.end_dim
    return nir.Flatten(input_type={"input": np.asarray(x)}, start_dim=start, end_dim=end)


_RULES = {nn.Linear: _linear, nn.Conv2d: _conv, nn.AvgPool2d: _pool, nn.Flatten: _flatten}


def _neuron_node(snn: ConvertedSNN, k: int, shape: tuple[int, ...]) -> Any:
    theta = np.full(shape, float(snn.thresholds[k]))
    zeros = np.zeros(shape)
    if snn.neuron == "IF":
        return nir.IF(r=np.ones(shape), v_threshold=theta, v_reset=zeros)
    tau = np.full(shape, 1.0 / (1.0 - snn.beta))  # dt = 1: beta = 1 - dt/tau, r = tau/dt (unit gain)
    return nir.LIF(tau=tau, r=tau.copy(), v_leak=zeros, v_threshold=theta, v_reset=zeros.copy())


def to_nir(snn: ConvertedSNN, info: dict[str, Any] | None = None) -> nir.NIRGraph:
    """The NIR graph of ``snn``: ``input -> layer<k>_<j> ... -> spike<k> -> ... -> readout -> output``,
    with its Semantics and the conversion record (``info``) in the metadata."""
    shape = snn.input_shape
    nodes: dict[str, Any] = {"input": nir.Input(input_type={"input": np.asarray(shape)})}
    edges: list[tuple[str, str]] = []
    prev = "input"
    for k, block in enumerate(snn.blocks):
        ops: list[nn.Module] = list(block.children())
        for j, op in enumerate(ops):
            name = f"layer{k}_{j}"
            nodes[name] = _RULES[type(op)](op, shape)  # type: ignore[operator]
            with torch.no_grad():
                shape = tuple(op(torch.zeros(1, *shape, dtype=op_dtype(snn))).shape[1:])
            edges.append((prev, name))
            prev = name
        last = k == len(snn.blocks) - 1
        name = READOUT if last else f"spike{k}"
        nodes[name] = nir.I(r=np.ones(shape)) if last else _neuron_node(snn, k, shape)
        edges.append((prev, name))
        prev = name
    nodes["output"] = nir.Output(output_type={"output": np.asarray(shape)})
    edges.append((prev, "output"))
    meta = {
        SEMANTICS_KEY: json.dumps(snn.semantics().to_dict(), sort_keys=True),
        CONVERSION_KEY: json.dumps(info or {}, sort_keys=True),
    }
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta, type_check=False)


def op_dtype(snn: ConvertedSNN) -> torch.dtype:
    return next(snn.parameters()).dtype
