"""Linear NIR nodes -> matrices, composed along every path into a group.

The linear nodes between neuron groups (Affine, Linear, Conv2d, SumPool2d, AvgPool2d, Flatten, Scale,
Delay) are lowered to matrices (:data:`LINEAR_LOWERINGS`) and composed along every path from a
group (or input) to the next group (:func:`compose_inputs`), so each group pair gets one connection per
distinct delay. Convolutions and pools are lowered to (sparse) connectivity because Lava's fixed-point
Conv ignores ``weight_exp`` and ``num_weight_bits`` (docs/lava-arithmetic.md, "Sparse, Delay and Conv"),
which a per-connection scale needs. Large mostly-zero matrices (convolutions, pools, identities) are
``scipy.sparse`` CSR matrices, built without a dense intermediate (:mod:`.sparse_linear`); Affine
weights stay dense arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from spikeport.emulator.errors import UnsupportedError, ValidationError
from spikeport.quantize.graph import sparse_linear as sl
from spikeport.quantize.graph.flatten import NEURON_TYPES, NODE_SPECS, FlatGraph, FlatNode
from spikeport.quantize.graph.neuron_models import per_neuron
from spikeport.quantize.graph.node_specs import Registry
from spikeport.quantize.semantics import Semantics

PathKey = tuple[str, int, bool]  # (source group, path delay in steps, recurrent)


@dataclass(frozen=True, kw_only=True)
class Lowered:
    """A linear node as ``y = matrix @ x + bias``, channel ``k`` of y delayed by ``delays[k]`` steps;
    ``matrix`` is a dense array or a ``scipy.sparse`` CSR matrix (:func:`.sparse_linear.normalize`)."""

    matrix: Any
    bias: np.ndarray
    delays: np.ndarray | None = None


# ------------------------------------------------------------------------------------ linear registry

#: linear node type -> ``(FlatNode, Semantics) -> Lowered``; what is not here (and not a neuron, Input
#: or Output) the quantizer refuses
LINEAR_LOWERINGS: Registry[Callable[[FlatNode, Semantics], Lowered]] = Registry(
    "{name}: the quantizer does not lower node type {kind}; supported: {supported}"
)


@LINEAR_LOWERINGS.register("Affine", "Linear")
def _affine(f: FlatNode, sem: Semantics) -> Lowered:
    w = np.asarray(f.node.weight, dtype=np.float64)
    b = np.asarray(getattr(f.node, "bias", np.zeros(w.shape[0])), dtype=np.float64)
    return Lowered(matrix=w.reshape(w.shape[0], -1).copy(), bias=np.broadcast_to(b, (w.shape[0],)).copy())


def _by_torch(f: FlatNode, apply: Callable[[Any], Any]) -> np.ndarray:
    """The matrix of a linear torch op: apply it to every basis vector of the input."""
    import torch

    n_in = f.in_size
    eye = torch.eye(n_in, dtype=torch.float64).reshape(n_in, *f.in_shape)
    with torch.no_grad():
        out = apply(eye).reshape(n_in, -1)
    return np.ascontiguousarray(out.numpy().T)


@LINEAR_LOWERINGS.register("Conv2d")
def _conv2d(f: FlatNode, sem: Semantics) -> Lowered:
    import torch

    nd = f.node
    c_out = int(np.asarray(nd.weight).shape[0])
    if not isinstance(nd.padding, str) and len(f.in_shape) == 3:
        mat = sl.conv_matrix(
            tuple(f.in_shape),  # type: ignore[arg-type]
            np.asarray(nd.weight, dtype=np.float64),
            stride=nd.stride,
            padding=nd.padding,
            dilation=nd.dilation,
            groups=int(nd.groups),
        )
        bias = np.asarray(nd.bias, dtype=np.float64) * np.ones(c_out)
        return Lowered(matrix=mat, bias=np.repeat(bias, mat.shape[0] // c_out))
    w = torch.as_tensor(np.asarray(nd.weight, dtype=np.float64))
    pad = nd.padding if isinstance(nd.padding, str) else tuple(np.broadcast_to(nd.padding, (2,)).tolist())
    mat = _by_torch(
        f,
        lambda x: torch.nn.functional.conv2d(
            x,
            w,
            stride=tuple(np.broadcast_to(nd.stride, (2,)).tolist()),
            padding=pad,
            dilation=tuple(np.broadcast_to(nd.dilation, (2,)).tolist()),
            groups=int(nd.groups),
        ),
    )
    bias = np.asarray(nd.bias, dtype=np.float64) * np.ones(c_out)
    return Lowered(matrix=sl.normalize(mat), bias=np.repeat(bias, mat.shape[0] // c_out))


def _pool(f: FlatNode, sem: Semantics, *, avg: bool) -> Lowered:
    import torch

    nd = f.node
    k = tuple(int(v) for v in np.broadcast_to(nd.kernel_size, (2,)))
    s = tuple(int(v) for v in np.broadcast_to(nd.stride, (2,)))
    p = tuple(int(v) for v in np.broadcast_to(nd.padding, (2,)))
    if len(f.in_shape) == 3:
        mat = sl.pool_matrix(tuple(f.in_shape), k, s, p, avg=avg)  # type: ignore[arg-type]
        return Lowered(matrix=mat, bias=np.zeros(mat.shape[0]))
    scale = 1.0 if avg else float(k[0] * k[1])
    mat = _by_torch(f, lambda x: torch.nn.functional.avg_pool2d(x, k, s, p) * scale)
    return Lowered(matrix=mat, bias=np.zeros(mat.shape[0]))


@LINEAR_LOWERINGS.register("Flatten")
def _identity(f: FlatNode, sem: Semantics) -> Lowered:
    return Lowered(matrix=sl.identity(f.size), bias=np.zeros(f.size))


@LINEAR_LOWERINGS.register("Scale")
def _scale(f: FlatNode, sem: Semantics) -> Lowered:
    s = per_neuron(f.name, "scale", f.node.scale, f.size)
    return Lowered(matrix=sl.diagonal(s), bias=np.zeros(f.size))


@LINEAR_LOWERINGS.register("Delay")
def _delay(f: FlatNode, sem: Semantics) -> Lowered:
    d = per_neuron(f.name, "delay", f.node.delay, f.size) / sem.dt
    steps = np.rint(d)
    if np.any(steps < 0) or np.any(np.abs(d - steps) > 1e-6):
        raise ValidationError(f"{f.name}.delay: must be a whole number of steps >= 0 (got {d.tolist()})")
    return Lowered(matrix=sl.identity(f.size), bias=np.zeros(f.size), delays=steps.astype(np.int64))


LINEAR_LOWERINGS.add("SumPool2d", lambda f, s: _pool(f, s, avg=False))
LINEAR_LOWERINGS.add("AvgPool2d", lambda f, s: _pool(f, s, avg=True))

SUPPORTED = (*sorted(NEURON_TYPES), *sorted(LINEAR_LOWERINGS), "Input", "Output")


def quantizable(kind: str) -> bool:
    """Whether the quantizer maps node type ``kind`` (a neuron, Input/Output, or a lowered linear node)."""
    role = NODE_SPECS.lookup(kind, kind).role if kind in NODE_SPECS else None
    return role in ("neuron", "input", "output") or kind in LINEAR_LOWERINGS


def check_supported(flat: FlatGraph) -> None:
    for f in flat:
        if not quantizable(f.kind):
            raise UnsupportedError(
                f"{f.name}: the quantizer does not map node type {f.kind}; supported: {', '.join(SUPPORTED)}"
            )


# ------------------------------------------------------------------------------------ path composition


@dataclass(frozen=True, kw_only=True)
class Composed:
    """What reaches one group: per (source group, delay, recurrent) a matrix (dense or CSR), plus a
    constant bias."""

    paths: dict[PathKey, Any]
    bias: np.ndarray


def is_group(flat: FlatGraph, name: str) -> bool:
    """Neurons and inputs are groups of the integer network; linear nodes are composed away."""
    return flat.nodes[name].spec.role in ("neuron", "input")


def compose_inputs(flat: FlatGraph, sem: Semantics, target: str) -> Composed:
    """Compose every linear path that ends at ``target`` (a group, or a linear node for readouts)."""
    memo: dict[str, Composed] = {}
    lowered: dict[str, Lowered] = {}
    eyes: dict[int, Any] = {}  # a group's own output: ``low.matrix @ eye`` is skipped in _through

    def out_of(name: str, stack: tuple[str, ...]) -> Composed:
        if is_group(flat, name):
            n = flat.nodes[name].size
            return Composed(paths={(name, 0, False): eyes.setdefault(n, _eye(n))}, bias=np.zeros(n))
        if name in memo:
            return memo[name]
        if name in stack:
            raise UnsupportedError(f"{name}: a cycle through linear nodes only cannot be mapped ({stack})")
        low = lowered.setdefault(
            name, LINEAR_LOWERINGS.lookup(flat.nodes[name].kind, name)(flat.nodes[name], sem)
        )
        inner = into(name, (*stack, name))
        memo[name] = Composed(paths=_through(low, inner, eyes), bias=low.bias + low.matrix @ inner.bias)
        return memo[name]

    def into(name: str, stack: tuple[str, ...]) -> Composed:
        node = flat.nodes[name]
        paths: dict[PathKey, Any] = {}
        bias = np.zeros(node.in_size)
        for src in node.sources:
            rec_edge = src in node.recurrent
            c = out_of(src, stack)
            if c.bias.size != bias.size:
                raise ValidationError(f"edge {src} -> {name}: sizes {c.bias.size} and {bias.size} differ")
            bias = bias + c.bias
            for (g, d, rec), m in c.paths.items():
                _add(paths, (g, d, rec or rec_edge), m)
        return Composed(paths=paths, bias=bias)

    if is_group(flat, target):
        return into(target, (target,))
    return out_of(target, ())


def _through(low: Lowered, inner: Composed, eyes: dict[int, Any]) -> dict[PathKey, Any]:
    """``inner``'s paths carried through one lowered linear node (one path per distinct delay);
    ``eyes`` are the identity matrices of groups' own outputs (no product needed)."""
    paths: dict[PathKey, Any] = {}
    for (src, d, rec), m in inner.paths.items():
        mm = low.matrix.copy() if m is eyes.get(m.shape[0]) else sl.matmul(low.matrix, m)
        if low.delays is None:
            _add(paths, (src, d, rec), mm)
            continue
        for dd in np.unique(low.delays):
            _add(paths, (src, d + int(dd), rec), sl.rows_where(mm, low.delays == dd))
    return paths


def _add(paths: dict[PathKey, Any], key: PathKey, m: Any) -> None:
    paths[key] = sl.add(paths[key], m) if key in paths else m


def _eye(n: int) -> Any:
    """An identity (shared by the paths of one composition: never modified in place)."""
    eye = sl.identity(n)
    if isinstance(eye, np.ndarray):
        eye.setflags(write=False)
    return eye
