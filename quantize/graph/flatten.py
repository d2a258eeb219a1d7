"""A NIR graph made flat, validated and ordered: what the float run and the quantizer walk.

API::

    from spikeport.quantize.graph.flatten import flatten_graph, FlatGraph, FlatNode, SUPPORTED_TYPES

    flat = flatten_graph(nir_graph)        # nir.NIRGraph, nested graphs allowed
    flat.order                             # node names, topologically ordered (recurrent edges ignored)
    flat.inputs, flat.outputs              # names of the top-level nir.Input / nir.Output nodes
    node = flat.nodes["enc.lif"]           # FlatNode; nested names are "outer.inner"
    node.node                              # the nir node object itself (never copied or modified)
    node.kind                              # its type name: "LIF", "Affine", ...
    node.sources                           # incoming edges (one entry per edge; their signals are SUMMED,
                                           # feed-forward ones first, then recurrent, each in edge order)
    node.recurrent                         # the subset of ``sources`` whose edge closes a cycle: such an
                                           # edge delivers the source's output Semantics.recurrent_delay
                                           # steps later (a one-step delay by default)
    node.in_shape, node.out_shape          # shapes without the batch dimension (Input: in == out)
    node.size                              # prod(out_shape): n in the (B, T, n) outputs
    flat.edges                             # all (src, dst) edges after flattening, in source order
    flat.recurrent_edges                   # the cycle-closing ones
    flat.metadata                          # the top-level graph's metadata dict

Flattening: a nested ``NIRGraph`` node ``g`` is replaced by its nodes, named ``g.<inner>``; its inner
``Input``/``Output`` nodes disappear (they are identities): an edge into ``g`` (or into ``g.<input
name>``) feeds what the inner Input fed, an edge out of ``g`` (or ``g.<output name>``) comes from what
fed the inner Output. Edges are a multiset: a source that reaches a node twice is summed twice.

Recurrent edges: a depth-first search from the inputs (then from any node not yet reached), visiting
successors in edge order, marks every edge that reaches a node still on the search stack.

Errors (all ``spikeport.emulator.errors`` subclasses): :class:`DanglingEdgeError` (edge naming a node
that does not exist), :class:`UnsupportedNodeError` (node type outside :data:`SUPPORTED_TYPES`; the
message lists them), :class:`ShapeError` (shapes that do not fit along an edge), :class:`NonFiniteError`
(NaN/inf parameter), :class:`GraphError` (any other structural problem: no input, empty graph).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import nir
import numpy as np
from spikeport.quantize.graph.node_specs import (
    NEURON_TYPES,
    NODE_SPECS,
    SPIKING_TYPES,
    SUPPORTED_TYPES,
    NodeSpec,
    node_shapes,
)
from spikeport.quantize.graph.shapes import (
    DanglingEdgeError,
    GraphError,
    NonFiniteError,
    ShapeError,
    UnsupportedNodeError,
    check_fits,
    conv_output,
    flatten_dims,
    pair_ints,
    scalar_int,
)

Shape = tuple[int, ...]
__all__ = [
    "NEURON_TYPES",
    "NODE_SPECS",
    "SPIKING_TYPES",
    "SUPPORTED_TYPES",
    "DanglingEdgeError",
    "FlatGraph",
    "FlatNode",
    "GraphError",
    "NonFiniteError",
    "ShapeError",
    "UnsupportedNodeError",
    "check_fits",
    "conv_output",
    "flatten_dims",
    "flatten_graph",
    "node_shapes",
    "pair_ints",
    "scalar_int",
]  # fmt: skip
Edge = tuple[str, str]


@dataclass(frozen=True, kw_only=True)
class FlatNode:
    name: str
    node: Any
    kind: str
    sources: tuple[str, ...]
    recurrent: tuple[str, ...]
    in_shape: Shape
    out_shape: Shape

    @property
    def size(self) -> int:
        return int(np.prod(self.out_shape, dtype=np.int64))

    @property
    def in_size(self) -> int:
        return int(np.prod(self.in_shape, dtype=np.int64))

    @property
    def spec(self) -> NodeSpec:
        """Its entry in :data:`~spikeport.quantize.graph.node_specs.NODE_SPECS`."""
        return NODE_SPECS.lookup(self.kind, self.name)


@dataclass(frozen=True, kw_only=True)
class FlatGraph:
    nodes: Mapping[str, FlatNode]
    order: tuple[str, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    edges: tuple[Edge, ...]
    recurrent_edges: tuple[Edge, ...]
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return (self.nodes[n] for n in self.order)

    def successors(self, name: str) -> tuple[str, ...]:
        return tuple(d for s, d in self.edges if s == name)


def flatten_graph(graph: nir.NIRGraph) -> FlatGraph:
    """Flatten, validate and order ``graph`` (see the module docstring)."""
    if not isinstance(graph, nir.NIRGraph):
        raise GraphError(f"graph: must be a nir.NIRGraph (got {type(graph).__name__})")
    nodes, edges = _expand(graph, prefix="")
    inputs = tuple(n for n, v in nodes.items() if isinstance(v, nir.Input))
    outputs = tuple(n for n, v in nodes.items() if isinstance(v, nir.Output))
    if not inputs:
        raise GraphError("graph: has no nir.Input node")
    for name, node in nodes.items():
        _check_finite(name, node)
    recurrent = _recurrent_edges(nodes, edges, inputs)
    order = _topological(nodes, [e for e in edges if e not in recurrent])
    sources: dict[str, list[str]] = {n: [] for n in nodes}
    rec_sources: dict[str, list[str]] = {n: [] for n in nodes}
    for s, d in edges:  # feed-forward sources first, then recurrent ones, each in edge order
        if (s, d) in recurrent:
            rec_sources[d].append(s)
        else:
            sources[d].append(s)
    shapes: dict[str, tuple[Shape, Shape]] = {}
    for name in order:
        ff = [shapes[s][1] for s in sources[name] if (s, name) not in recurrent]
        shapes[name] = node_shapes(name, nodes[name], ff)
    for s, d in recurrent:
        check_fits(d, shapes[d][0], shapes[s][1], s)
    flat = {
        n: FlatNode(
            name=n,
            node=nodes[n],
            kind=type(nodes[n]).__name__,
            sources=tuple(sources[n] + rec_sources[n]),
            recurrent=tuple(rec_sources[n]),
            in_shape=shapes[n][0],
            out_shape=shapes[n][1],
        )
        for n in order
    }
    return FlatGraph(
        nodes=flat,
        order=tuple(order),
        inputs=inputs,
        outputs=outputs,
        edges=tuple(edges),
        recurrent_edges=tuple(e for e in edges if e in recurrent),
        metadata=dict(graph.metadata or {}),
    )


def _expand(graph: nir.NIRGraph, prefix: str) -> tuple[dict[str, Any], list[Edge]]:
    """Nodes and edges of ``graph`` with nested graphs inlined (inner Input/Output removed)."""
    nodes: dict[str, Any] = {}
    entry: dict[str, list[str]] = {}  # name (or name.port) in this graph -> flat names it stands for
    exit_: dict[str, list[str]] = {}
    inner_edges: list[Edge] = []
    for key, node in graph.nodes.items():
        name = f"{prefix}{key}"
        kind = type(node).__name__
        if isinstance(node, nir.NIRGraph):
            sub_nodes, sub_edges, sub_entry, sub_exit = _expand_nested(node, f"{name}.")
            nodes.update(sub_nodes)
            inner_edges += sub_edges
            for port, targets in sub_entry.items():
                entry[f"{key}.{port}"] = targets
            for port, srcs in sub_exit.items():
                exit_[f"{key}.{port}"] = srcs
            entry[key] = [t for ts in sub_entry.values() for t in ts]
            exit_[key] = [s for ss in sub_exit.values() for s in ss]
        else:
            NODE_SPECS.lookup(kind, name)  # refuses a type outside the table
            nodes[name] = node
            entry[key], exit_[key] = [name], [name]
    edges = list(inner_edges)
    for raw in graph.edges:
        src, dst = str(raw[0]), str(raw[1])
        for end, table in ((src, exit_), (dst, entry)):
            if end not in table:
                raise DanglingEdgeError(
                    f"edge ({prefix}{src} -> {prefix}{dst}): node {prefix}{end!s} does not exist "
                    f"(nodes: {', '.join(sorted(graph.nodes))})"
                )
        edges += [(s, d) for s in exit_[src] for d in entry[dst]]
    return nodes, edges


def _expand_nested(
    graph: nir.NIRGraph, prefix: str
) -> tuple[dict[str, Any], list[Edge], dict[str, list[str]], dict[str, list[str]]]:
    """Inline a nested graph; return its nodes, edges and port maps with Input/Output removed."""
    nodes, edges = _expand(graph, prefix)
    ins = [n for n, v in nodes.items() if isinstance(v, nir.Input)]
    outs = [n for n, v in nodes.items() if isinstance(v, nir.Output)]
    entry = {n[len(prefix) :]: [d for s, d in edges if s == n] for n in ins}
    exit_ = {n[len(prefix) :]: [s for s, d in edges if d == n] for n in outs}
    for i, o in [(i, o) for i in ins for o in outs if (i, o) in edges]:
        raise GraphError(f"{prefix[:-1]}: nested graph wires Input {i} straight to Output {o}")
    gone = set(ins) | set(outs)
    kept = {n: v for n, v in nodes.items() if n not in gone}
    kept_edges = [(s, d) for s, d in edges if s not in gone and d not in gone]
    return kept, kept_edges, entry, exit_


def _check_finite(name: str, node: Any) -> None:
    for attr, value in vars(node).items():
        if attr in ("input_type", "output_type", "metadata"):
            continue
        arr = np.asarray(value) if not isinstance(value, str) else None
        if arr is None or arr.dtype.kind not in "fiuc":
            continue
        if not np.all(np.isfinite(arr)):
            raise NonFiniteError(f"{name}.{attr}: must be finite (got NaN or inf)")


def _recurrent_edges(nodes: Mapping[str, Any], edges: list[Edge], inputs: tuple[str, ...]) -> set[Edge]:
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for s, d in edges:
        succ[s].append(d)
    state: dict[str, int] = {}  # 1 on stack, 2 done
    back: set[Edge] = set()
    for root in list(inputs) + list(nodes):
        if root in state:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        state[root] = 1
        while stack:
            node, i = stack[-1]
            if i < len(succ[node]):
                stack[-1] = (node, i + 1)
                nxt = succ[node][i]
                if state.get(nxt) == 1:
                    back.add((node, nxt))
                elif nxt not in state:
                    state[nxt] = 1
                    stack.append((nxt, 0))
            else:
                state[node] = 2
                stack.pop()
    return back


def _topological(nodes: Mapping[str, Any], edges: list[Edge]) -> list[str]:
    indeg = {n: 0 for n in nodes}
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for s, d in edges:
        indeg[d] += 1
        succ[s].append(d)
    ready = [n for n in nodes if indeg[n] == 0]
    order: list[str] = []
    while ready:
        n = ready.pop(0)
        order.append(n)
        for d in succ[n]:
            indeg[d] -= 1
            if indeg[d] == 0:
                ready.append(d)
    if len(order) != len(nodes):  # pragma: no cover - recurrent edges removed every cycle
        raise GraphError("graph: cycle left after removing recurrent edges")
    return order
