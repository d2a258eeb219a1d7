"""torch -> NIR for spikeport's own modules (:mod:`spikeport.quantize.training.neurons`).

API::

    export_nir(module, semantics=None, *, input_shape) -> nir.NIRGraph   # semantics stored in metadata
    write_nir(path, graph, semantics)                                   # re-exported from nir_io
    sequential_to_nir(layers, input_shape, rules, dt) -> nir.NIRGraph   # the walker adapters reuse

Nodes are named after the layer index (``"0"``, ``"1"``, ...; the same keys as ``SNN.record``), chained
``input -> 0 -> 1 -> ... -> output``. A rule returns either one NIR node or a nested ``nir.NIRGraph``
(recurrent layers) plus the output shape. Linear layers always map to ``nir.Affine`` with their bias
(zeros where the layer has none): nirtorch 2.6's default Affine mapping drops the bias
(docs/nir-conventions.md, "nirtorch 2.6").
:func:`export_nir` traces the per-step layer stack with ``nirtorch.torch_to_nir`` and spikeport's own
module map (nirtorch's fx tracer cannot follow the time loop of ``SNN.forward``, but one step of the
stack traces fine); the adapters for snnTorch and Norse use the walker :func:`sequential_to_nir`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import nir
import numpy as np
import torch
from spikeport.emulator.errors import UnsupportedError
from spikeport.nir.io import METADATA_KEY, write_nir
from spikeport.quantize.semantics import Semantics
from spikeport.quantize.training import neurons as snn
from torch import nn

__all__ = ["METADATA_KEY", "TORCH_RULES", "export_nir", "sequential_to_nir", "write_nir"]

Shape = tuple[int, ...]
Rule = Callable[[Any, Shape, float], tuple[Any, Shape]]


def _np(t: torch.Tensor | None) -> np.ndarray | None:
    return None if t is None else t.detach().cpu().numpy().copy()


def _probe(layer: nn.Module, in_shape: Shape) -> Shape:
    with torch.no_grad():
        return tuple(layer(torch.zeros(1, *in_shape)).shape[1:])


def _linear(m: nn.Linear, x: Shape, dt: float) -> tuple[Any, Shape]:
    w = _np(m.weight)
    assert w is not None
    b = _np(m.bias) if m.bias is not None else np.zeros(w.shape[0], w.dtype)
    return nir.Affine(weight=w, bias=b), (w.shape[0],)


def _conv(m: nn.Conv1d | nn.Conv2d, x: Shape, dt: float) -> tuple[Any, Shape]:
    w = _np(m.weight)
    assert w is not None
    b = _np(m.bias) if m.bias is not None else np.zeros(w.shape[0], w.dtype)
    nd = w.ndim - 2
    cls = nir.Conv1d if nd == 1 else nir.Conv2d
    pad = m.padding if isinstance(m.padding, str) else np.asarray(m.padding)
    node = cls(
        input_shape=x[1] if nd == 1 else np.asarray(x[1:]),
        weight=w,
        stride=np.asarray(m.stride),
        padding=pad,
        dilation=np.asarray(m.dilation),
        groups=int(m.groups),
        bias=b,
    )
    return node, _probe(m, x)


def _pool(m: nn.AvgPool2d, x: Shape, dt: float) -> tuple[Any, Shape]:
    if not m.count_include_pad or m.ceil_mode or m.divisor_override:
        raise UnsupportedError("AvgPool2d: only count_include_pad=True, ceil_mode=False, no divisor_override")
    k = np.broadcast_to(np.asarray(m.kernel_size), 2).copy()
    s = np.broadcast_to(np.asarray(m.stride if m.stride is not None else m.kernel_size), 2).copy()
    p = np.broadcast_to(np.asarray(m.padding), 2).copy()
    return nir.AvgPool2d(kernel_size=k, stride=s, padding=p), _probe(m, x)


def _flatten(m: nn.Flatten, x: Shape, dt: float) -> tuple[Any, Shape]:
    # nir indexes the unbatched shape; torch's dims count the batch
    start = m.start_dim - 1 if m.start_dim > 0 else m.start_dim
    end = m.end_dim - 1 if m.end_dim > 0 else m.end_dim
    node = nir.Flatten(input_type={"input": np.asarray(x)}, start_dim=start, end_dim=end)
    return node, _probe(m, x)


def _refuse_maxpool(m: nn.Module, x: Shape, dt: float) -> tuple[Any, Shape]:
    raise UnsupportedError(
        f"{type(m).__name__}: NIR has no max pooling (summing spikes is not the same); use nn.AvgPool2d"
    )


def _lif(m: snn.LIF, x: Shape, dt: float) -> tuple[Any, Shape]:
    tau = np.broadcast_to(m.tau(dt), x).copy()
    common = {
        "r": tau / dt,
        "v_leak": np.zeros(x),
        "v_threshold": np.broadcast_to(m.threshold, x).copy(),
        "v_reset": np.broadcast_to(m.v_reset, x).copy(),
    }
    if isinstance(m, snn.CubaLIF):
        tau_syn = np.broadcast_to(m.tau_syn(dt), x).copy()
        return nir.CubaLIF(tau_mem=tau, tau_syn=tau_syn, w_in=tau_syn / dt, **common), x
    return nir.LIF(tau=tau, **common), x


def _if(m: snn.IF, x: Shape, dt: float) -> tuple[Any, Shape]:
    th = np.broadcast_to(m.threshold, x).copy()
    return nir.IF(r=np.ones(x), v_threshold=th, v_reset=np.broadcast_to(m.v_reset, x).copy()), x


TORCH_RULES: dict[type, Rule] = {
    nn.Linear: _linear,
    nn.Conv1d: _conv,
    nn.Conv2d: _conv,
    nn.AvgPool2d: _pool,
    nn.MaxPool2d: _refuse_maxpool,
    nn.Flatten: _flatten,
    snn.LIF: _lif,
    snn.CubaLIF: _lif,
    snn.IF: _if,
}


def sequential_to_nir(
    layers: Sequence[nn.Module],
    input_shape: Sequence[int],
    rules: Mapping[type, Rule],
    dt: float,
    metadata: Mapping[str, Any] | None = None,
) -> nir.NIRGraph:
    """Chain ``layers`` into a NIR graph ``input -> "0" -> "1" -> ... -> output``."""
    x: Shape = tuple(int(s) for s in input_shape)
    nodes: dict[str, Any] = {"input": nir.Input(input_type={"input": np.asarray(x)})}
    prev = "input"
    edges: list[tuple[str, str]] = []
    for k, layer in enumerate(layers):
        rule = rules.get(type(layer))
        if rule is None:
            raise UnsupportedError(
                f"layer {k} ({type(layer).__name__}): no NIR mapping; supported: "
                + ", ".join(sorted(t.__name__ for t in rules))
            )
        node, x = rule(layer, x, dt)
        nodes[str(k)] = node
        edges.append((prev, str(k)))
        prev = str(k)
    nodes["output"] = nir.Output(output_type={"output": np.asarray(x)})
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=dict(metadata or {}), type_check=False)


def _input_shapes(seq: nn.Sequential, input_shape: Shape) -> dict[int, Shape]:
    """Each layer's per-sample input shape (by module identity), from one zero step."""
    shapes: dict[int, Shape] = {}

    def hook(mod: nn.Module, args: tuple[Any, ...]) -> None:
        shapes[id(mod)] = tuple(int(d) for d in args[0].shape[1:])

    handles = [layer.register_forward_pre_hook(hook) for layer in seq]
    saved = [dict(getattr(layer, "state", {}) or {}) for layer in seq]
    try:
        with torch.no_grad():
            for layer in seq:
                if isinstance(layer, snn._Neuron):
                    layer.reset_state()
            seq(torch.zeros(1, *input_shape))
    finally:
        for h in handles:
            h.remove()
        for layer, st in zip(seq, saved, strict=True):
            if isinstance(layer, snn._Neuron):
                layer.state = st
    return shapes


def _traced(layers: Sequence[nn.Module], input_shape: Shape, dt: float) -> nir.NIRGraph:
    """``nirtorch.torch_to_nir`` over the per-step layer stack, with spikeport's own module map
    (:data:`TORCH_RULES`; nirtorch's defaults are not used: its Affine drops the bias)."""
    import nirtorch

    for k, layer in enumerate(layers):
        if type(layer) not in TORCH_RULES:
            raise UnsupportedError(
                f"layer {k} ({type(layer).__name__}): no NIR mapping; supported: "
                + ", ".join(sorted(t.__name__ for t in TORCH_RULES))
            )
    seq = nn.Sequential(*layers)
    shapes = _input_shapes(seq, input_shape)

    def mapper(rule: Rule) -> Callable[[nn.Module], Any]:
        return lambda mod: rule(mod, shapes[id(mod)], dt)[0]

    module_map = {t: mapper(rule) for t, rule in TORCH_RULES.items()}
    return nirtorch.torch_to_nir(seq, module_map, default_dict={}, type_check=False)


def export_nir(
    module: snn.SNN | Sequence[nn.Module], semantics: Semantics | None = None, *, input_shape: Sequence[int]
) -> nir.NIRGraph:
    """NIR graph of a :class:`~spikeport.quantize.training.neurons.SNN` (semantics: the module's own if not given).

    The per-step layer stack is traced by ``nirtorch.torch_to_nir`` with spikeport's module map; the
    graph is then given the walker's names (``input``, ``"0"``, ``"1"``, ..., ``output``) and typed
    Input/Output nodes, so it equals :func:`sequential_to_nir`'s (a test checks it node by node)."""
    import json

    layers = list(module.layers) if isinstance(module, snn.SNN) else list(module)
    sem = semantics or (module.semantics if isinstance(module, snn.SNN) else None)
    if sem is None:
        raise UnsupportedError("export_nir: pass semantics= for a plain list of layers")
    x: Shape = tuple(int(d) for d in input_shape)
    traced = _traced(layers, x, sem.dt)
    out_shape = x
    for layer in layers:
        out_shape = TORCH_RULES[type(layer)](layer, out_shape, sem.dt)[1]
    rename = {}
    for name, node in traced.nodes.items():
        if isinstance(node, nir.Input):
            rename[name] = "input"
        elif isinstance(node, nir.Output):
            rename[name] = "output"
        else:
            rename[name] = name.lstrip("_")
    nodes = {rename[k]: v for k, v in traced.nodes.items()}
    nodes["input"] = nir.Input(input_type={"input": np.asarray(x)})
    nodes["output"] = nir.Output(output_type={"output": np.asarray(out_shape)})
    edges = [(rename[a], rename[b]) for a, b in traced.edges]
    meta = {METADATA_KEY: json.dumps(sem.to_dict(), sort_keys=True)}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta, type_check=False)
