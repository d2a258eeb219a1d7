"""Shape rules of NIR nodes and the graph errors (the rules per type: :mod:`.node_specs`).

Every rule maps (node name, node, input shape without batch) to the output shape, or raises a
:class:`ShapeError` naming the node. nir.Flatten's ``start_dim``/``end_dim`` index the unbatched shape,
as nir's own type inference reads them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from spikeport.emulator.errors import UnsupportedError, ValidationError

Shape = tuple[int, ...]


class GraphError(ValidationError):
    """A NIR graph breaks a structural rule."""


class DanglingEdgeError(GraphError):
    """An edge names a node that is not in the graph."""


class ShapeError(GraphError):
    """Shapes do not fit along an edge or within a node."""


class NonFiniteError(GraphError):
    """A node parameter holds NaN or infinity."""


class UnsupportedNodeError(UnsupportedError):
    """A node type spikeport does not handle."""


def _arr(x: Any) -> np.ndarray:
    return np.asarray(x)


def scalar_int(name: str, node: Any, attr: str, default: int) -> int:
    """``node.attr`` as an int (a single integer value), else a ShapeError naming it."""
    value = getattr(node, attr, default)
    a = np.asarray(default if value is None else value)
    if (
        a.size != 1
        or a.dtype.kind not in "iuf"
        or not np.isfinite(a).all()
        or a.ravel()[0] != int(a.ravel()[0])
    ):
        raise ShapeError(f"{name}.{attr}: must be one integer (got {value!r})")
    return int(a.ravel()[0])


def pair_ints(x: Any, n: int) -> tuple[int, ...]:
    a = np.atleast_1d(np.asarray(x)).ravel()
    if a.size not in (1, n) or a.dtype.kind not in "iuf" or not np.isfinite(a).all():
        raise ShapeError(f"expected 1 or {n} integers (got {x!r})")
    a = a.astype(np.int64)
    return tuple(int(v) for v in (np.repeat(a, n) if a.size == 1 else a))


def declared(node: Any, key: str) -> Shape | None:
    t = getattr(node, key, None) or {}
    for v in t.values() if isinstance(t, dict) else ():
        a = np.asarray(v) if v is not None else np.zeros(0)
        if a.size == 0:
            continue
        if (
            a.ndim > 1
            or a.dtype.kind not in "iuf"
            or not np.isfinite(a).all()
            or np.any(a < 1)
            or np.any(a != np.floor(a))
        ):
            raise ShapeError(f"{type(node).__name__}.{key}: a shape must be positive integers (got {v!r})")
        return tuple(int(s) for s in a.ravel())
    return None


def _param_shape(name: str, node: Any, params: tuple[str, ...]) -> Shape:
    shapes = [_arr(getattr(node, p)).shape for p in params if getattr(node, p, None) is not None]
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ShapeError(f"{name}: parameters {params} have inconsistent shapes {shapes}") from None


def elementwise(params: tuple[str, ...]):  # type: ignore[no-untyped-def]
    def rule(name: str, node: Any, x: Shape) -> Shape:
        p = _param_shape(name, node, params)
        size = int(np.prod(p, dtype=np.int64))
        if x == p or size == 1 or size == int(np.prod(x, dtype=np.int64)):
            return x if x else p
        try:
            if np.broadcast_shapes(p, x) == x:
                return x
        except ValueError:
            pass
        raise ShapeError(f"{name}: parameter shape {p} does not fit input shape {x}")

    return rule


def dense(name: str, node: Any, x: Shape) -> Shape:
    w = _arr(node.weight)
    if w.ndim != 2:
        raise ShapeError(f"{name}.weight: must be 2-D (out, in) (got shape {w.shape})")
    if int(np.prod(x, dtype=np.int64)) != w.shape[1]:
        raise ShapeError(f"{name}: input of shape {x} does not fit weight {w.shape}")
    bias = getattr(node, "bias", None)
    if bias is not None and _arr(bias).size not in (1, w.shape[0]):
        raise ShapeError(f"{name}.bias: must have {w.shape[0]} entries (got shape {_arr(bias).shape})")
    return (int(w.shape[0]),)


def _conv_in(name: str, node: Any, x: Shape, nd: int) -> Shape:
    w = _arr(node.weight)
    if w.ndim != nd + 2:
        raise ShapeError(f"{name}.weight: must be {nd + 2}-D (got shape {w.shape})")
    c_in = w.shape[1] * scalar_int(name, node, "groups", 1)
    if len(x) == nd + 1 and x[0] == c_in:
        return x
    declared = getattr(node, "input_shape", None)
    if declared is not None:
        spatial = pair_ints(declared, nd)
        if int(np.prod(x, dtype=np.int64)) == c_in * int(np.prod(spatial)):
            return (c_in, *spatial)
    raise ShapeError(f"{name}: input of shape {x} does not fit weight {w.shape}")


def conv_output(
    spatial: Shape, kernel: Shape, stride: Any, padding: Any, dilation: Any
) -> tuple[Shape, tuple[int, ...]]:
    """Output spatial shape and the (symmetric) padding per dimension, PyTorch's rule."""
    nd = len(spatial)
    s, d = pair_ints(stride, nd), pair_ints(dilation, nd)
    if isinstance(padding, str):
        if padding == "same":
            pads = tuple(d[i] * (kernel[i] - 1) // 2 for i in range(nd))
        else:
            pads = (0,) * nd
    else:
        pads = pair_ints(padding, nd)
    out = tuple((spatial[i] + 2 * pads[i] - d[i] * (kernel[i] - 1) - 1) // s[i] + 1 for i in range(nd))
    return out, pads


def conv_in(nd: int):  # type: ignore[no-untyped-def]
    """The rule for the (C, *spatial) input shape a convolution reads (a flat input is unflattened)."""

    def rule(name: str, node: Any, x: Shape) -> Shape:
        return _conv_in(name, node, x, nd)

    return rule


def conv(nd: int):  # type: ignore[no-untyped-def]
    def rule(name: str, node: Any, x: Shape) -> Shape:
        x = _conv_in(name, node, x, nd)
        w = _arr(node.weight)
        out, _ = conv_output(x[1:], w.shape[2:], node.stride, node.padding, node.dilation)
        if min(out) < 1:
            raise ShapeError(f"{name}: input of shape {x} gives an empty output {out}")
        return (int(w.shape[0]), *out)

    return rule


def pool(name: str, node: Any, x: Shape) -> Shape:
    if len(x) != 3:
        raise ShapeError(f"{name}: input must be (C, H, W) (got shape {x})")
    out, _ = conv_output(x[1:], pair_ints(node.kernel_size, 2), node.stride, node.padding, 1)
    if min(out) < 1:
        raise ShapeError(f"{name}: input of shape {x} gives an empty output {out}")
    return (x[0], *out)


def flatten_dims(node: Any, ndim: int) -> tuple[int, int]:
    """Dims [first, last] a nir.Flatten merges; start_dim/end_dim index the unbatched shape, as nir's
    own type inference reads them (``nn.Flatten(start_dim=1)`` is ``nir.Flatten(start_dim=0)``)."""
    start, end = scalar_int("Flatten", node, "start_dim", 0), scalar_int("Flatten", node, "end_dim", -1)
    first = start + ndim if start < 0 else start
    last = end + ndim if end < 0 else end
    return max(first, 0), min(last, ndim - 1)


def flatten(name: str, node: Any, x: Shape) -> Shape:
    first, last = flatten_dims(node, len(x))
    if first > last:
        return x
    return (*x[:first], int(np.prod(x[first : last + 1], dtype=np.int64)), *x[last + 1 :])


def identity(name: str, node: Any, x: Shape) -> Shape:
    return x


def check_fits(name: str, want: Shape, got: Shape, src: str) -> None:
    if int(np.prod(want, dtype=np.int64)) != int(np.prod(got, dtype=np.int64)):
        raise ShapeError(f"{name}: input from {src} has shape {got}, expected {want}")
