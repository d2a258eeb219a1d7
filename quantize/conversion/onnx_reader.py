"""Read a feed-forward ReLU network from an ONNX file into torch layers, with the ``onnx`` package only
(protobuf parsing: no pickle, no code from the file is run). The layers then go to
:func:`spikeport.quantize.conversion.convert.convert` (docs/seed-methods.md, "Hybrid conversion and
STDB (Rathi et al. 2020)").

API::

    ann, input_shape = read_onnx("ann.onnx")     # nn.Sequential, per-sample input shape

Operators (a single chain, each node fed by the previous one; weights from initializers or Constant
nodes): ``Gemm`` (any ``alpha``/``beta``/``transB``; no ``transA``), ``MatMul`` (+ ``Add`` bias),
``Conv`` (2-d), ``AveragePool`` (2-d), ``Flatten``, ``Reshape`` to ``(N, -1)``, ``Relu``,
``BatchNormalization`` (inference), ``Dropout`` and ``Identity`` (dropped). Anything else (``MaxPool``,
``Sigmoid``, branches) is refused with an :class:`UnsupportedError` naming the node.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from spikeport.emulator.errors import MissingDependencyError, UnsupportedError, ValidationError
from torch import nn

SUPPORTED_OPS = "Gemm, MatMul, Add (bias), Conv, AveragePool, Flatten, Reshape, Relu, BatchNormalization, Dropout, Identity"


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise MissingDependencyError("reading ONNX needs the 'onnx' package: pip install onnx") from None
    return onnx


class _Ctx:
    """Constants (initializers, Constant nodes) and node attributes of one ONNX graph."""

    def __init__(self, graph: Any) -> None:
        from onnx import numpy_helper

        self.nh = numpy_helper
        self.consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}

    def attrs(self, node: Any) -> dict[str, Any]:
        from onnx import helper

        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def const(self, node: Any, i: int) -> np.ndarray:
        name = node.input[i]
        if name not in self.consts:
            raise UnsupportedError(
                f"ONNX node {node.name!r} ({node.op_type}): input {name!r} must be a constant (initializer)"
            )
        return np.asarray(self.consts[name])


def _param(a: np.ndarray) -> nn.Parameter:
    return nn.Parameter(torch.tensor(np.array(a, np.float32)))


def _gemm(node: Any, ctx: _Ctx) -> nn.Module:
    at = ctx.attrs(node)
    if at.get("transA", 0):
        raise UnsupportedError(f"ONNX node {node.name!r} (Gemm): transA=1 is not a layer")
    w = ctx.const(node, 1) * at.get("alpha", 1.0)
    w = w if at.get("transB", 0) else w.T
    lin = nn.Linear(w.shape[1], w.shape[0], bias=len(node.input) > 2)
    lin.weight = _param(w)
    if len(node.input) > 2:
        lin.bias = _param(np.broadcast_to(ctx.const(node, 2) * at.get("beta", 1.0), (w.shape[0],)))
    return lin


def _matmul(node: Any, ctx: _Ctx) -> nn.Module:
    w = ctx.const(node, 1).T
    lin = nn.Linear(w.shape[1], w.shape[0], bias=False)
    lin.weight = _param(w)
    return lin


def _add(node: Any, ctx: _Ctx, prev: nn.Module | None, i: int) -> None:
    """Fold ``Add`` (the constant is input ``i``) into the bias of the layer before it."""
    if not isinstance(prev, nn.Linear | nn.Conv2d):
        raise UnsupportedError(f"ONNX node {node.name!r} (Add): only a bias after MatMul/Gemm/Conv")
    b = ctx.const(node, i).reshape(-1)
    n = prev.weight.shape[0]
    old = prev.bias.detach().numpy() if prev.bias is not None else np.zeros(n, np.float32)
    prev.bias = _param(old + np.broadcast_to(b, (n,)))


def _conv(node: Any, ctx: _Ctx) -> nn.Module:
    at = ctx.attrs(node)
    w = ctx.const(node, 1)
    if w.ndim != 4 or at.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise UnsupportedError(f"ONNX node {node.name!r} (Conv): 2-d convolutions with explicit pads only")
    pads = list(at.get("pads", [0, 0, 0, 0]))
    if pads[:2] != pads[2:]:
        raise UnsupportedError(f"ONNX node {node.name!r} (Conv): asymmetric pads {pads}")
    groups = int(at.get("group", 1))
    conv = nn.Conv2d(
        w.shape[1] * groups, w.shape[0], (int(w.shape[2]), int(w.shape[3])), stride=tuple(at.get("strides", [1, 1])),
        padding=tuple(pads[:2]), dilation=tuple(at.get("dilations", [1, 1])), groups=groups,
        bias=len(node.input) > 2,
    )  # fmt: skip
    conv.weight = _param(w)
    if len(node.input) > 2:
        conv.bias = _param(ctx.const(node, 2))
    return conv


def _avgpool(node: Any, ctx: _Ctx) -> nn.Module:
    at = ctx.attrs(node)
    pads = list(at.get("pads", [0, 0, 0, 0]))
    if at.get("ceil_mode", 0) or pads[:2] != pads[2:] or (any(pads) and not at.get("count_include_pad", 0)):
        raise UnsupportedError(
            f"ONNX node {node.name!r} (AveragePool): needs ceil_mode=0, symmetric pads, count_include_pad=1 "
            f"when padded"
        )
    k = tuple(at["kernel_shape"])
    return nn.AvgPool2d(k, stride=tuple(at.get("strides", k)), padding=tuple(pads[:2]))


def _flatten(node: Any, ctx: _Ctx) -> nn.Module:
    if int(ctx.attrs(node).get("axis", 1)) != 1:
        raise UnsupportedError(f"ONNX node {node.name!r} (Flatten): only axis=1")
    return nn.Flatten()


def _reshape(node: Any, ctx: _Ctx) -> nn.Module:
    shape = ctx.const(node, 1).tolist()
    if len(shape) != 2 or shape[1] != -1:
        raise UnsupportedError(f"ONNX node {node.name!r} (Reshape): only a flattening reshape (N, -1)")
    return nn.Flatten()


def _batchnorm(node: Any, ctx: _Ctx) -> nn.Module:
    scale, bias, mean, var = (ctx.const(node, i) for i in range(1, 5))
    bn: Any = nn.BatchNorm1d(len(scale), eps=float(ctx.attrs(node).get("epsilon", 1e-5)))
    with torch.no_grad():
        for t, a in ((bn.weight, scale), (bn.bias, bias), (bn.running_mean, mean), (bn.running_var, var)):
            t.copy_(torch.as_tensor(np.asarray(a, np.float32)))
    return bn.eval()


_BUILDERS: dict[str, Callable[[Any, _Ctx], nn.Module]] = {
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Conv": _conv,
    "AveragePool": _avgpool,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "BatchNormalization": _batchnorm,
    "Relu": lambda node, ctx: nn.ReLU(),
}
_DROPPED = ("Dropout", "Identity")


def _input(graph: Any, consts: dict[str, Any]) -> tuple[str, tuple[int, ...]]:
    inputs = [i for i in graph.input if i.name not in consts]
    if len(inputs) != 1:
        raise UnsupportedError(f"ONNX graph: needs exactly one data input (got {[i.name for i in inputs]})")
    dims = inputs[0].type.tensor_type.shape.dim[1:]
    if not dims or any(not d.HasField("dim_value") for d in dims):
        raise ValidationError(
            f"ONNX graph input {inputs[0].name!r}: the per-sample dimensions must be fixed numbers"
        )
    return inputs[0].name, tuple(int(d.dim_value) for d in dims)


def _data_input(node: Any, ctx: _Ctx, current: str) -> None:
    """Refuse a node that does not continue the chain (a branch or a second data input)."""
    data = [i for i in node.input if i and i not in ctx.consts]
    if data != [current]:
        raise UnsupportedError(
            f"ONNX node {node.name!r} ({node.op_type}): the graph must be one chain of layers "
            f"(expected input {current!r}, got {data})"
        )


def _layer(node: Any, ctx: _Ctx, layers: list[nn.Module]) -> None:
    """Append the layer of ``node`` (or fold it into the last one, or drop it)."""
    if node.op_type in _DROPPED:
        return
    if node.op_type == "Add":
        _add(node, ctx, layers[-1] if layers else None, 0 if node.input[0] in ctx.consts else 1)
        return
    builder = _BUILDERS.get(node.op_type)
    if builder is None:
        hint = (
            " (max pooling has no rate-coded equivalent: use AveragePool)"
            if node.op_type == "MaxPool"
            else ""
        )
        raise UnsupportedError(
            f"ONNX node {node.name!r} ({node.op_type}): cannot be converted to a spiking layer{hint}; "
            f"supported: {SUPPORTED_OPS}"
        )
    layers.append(builder(node, ctx))


def read_onnx(path: str | Path) -> tuple[nn.Sequential, tuple[int, ...]]:
    """The ANN of an ONNX file as an ``nn.Sequential`` (evaluation mode) and its per-sample input shape."""
    onnx = _onnx()
    model = onnx.load(str(path), load_external_data=False)
    graph = model.graph
    ctx = _Ctx(graph)
    current, shape = _input(graph, ctx.consts)
    layers: list[nn.Module] = []
    for node in graph.node:
        if node.op_type == "Constant":
            ctx.consts[node.output[0]] = ctx.nh.to_array(ctx.attrs(node)["value"])
            continue
        _data_input(node, ctx, current)
        _layer(node, ctx, layers)
        current = node.output[0]
    outputs = [o.name for o in graph.output]
    if outputs != [current]:
        raise UnsupportedError(
            f"ONNX graph: the last layer's output {current!r} must be the only output {outputs}"
        )
    return nn.Sequential(*layers).eval(), shape
