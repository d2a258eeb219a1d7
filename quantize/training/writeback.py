"""Write fine-tuned integer weights back into the float NIR graph they were quantized from.

API::

    tuned, report, log = fine_tune_graph(graph, sem, x, y, mode="fixed")
    new_graph = finetuned_graph(graph, sem, tuned)      # a copy; ``graph`` is not changed
    again, _ = sp.quantize(new_graph, sem, scales=tuned)  # == tuned, field by field (.fixed_scales)

Each connection of the network came from ``w = scale[:, None] * u_gain[:, None] * m / 64`` with
``m`` the path matrix times the source's amplitude (see ``build_network._connection_records``);
writing back inverts it: ``W = mant * 2**weight_exp * 64 / (scale * u_gain) / amplitude``, with
the scales read from the network's metadata. Only a connection that is exactly one NIR ``Affine``
or ``Linear`` node between its source and target (a recurrent one included) is written; a lowered
convolution, a composed path or a connection without such a node raises :class:`UnsupportedError`.
Bias-unit and reset-correction connections are not NIR weights and are left as they were; a network
whose connection was split (``split=True``) is refused too.

A fresh ``sp.quantize(new_graph, sem)`` re-chooses the scales from the changed weights, so its mantissas
match the tuned ones only within half a grid step; with ``scales=tuned`` it reuses the tuned network's
scales, exponents and decays and gives back the tuned network exactly (:mod:`..fixed_scales`).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from spikeport.emulator.errors import UnsupportedError
from spikeport.emulator.network import Connection, Network
from spikeport.quantize.graph.connection_plans import ConnPlan, connection_plans
from spikeport.quantize.graph.flatten import FlatGraph, flatten_graph
from spikeport.quantize.graph.group_plan import BIAS_UNIT, Plan, build_plan
from spikeport.quantize.input_encoding import InputEncoding
from spikeport.quantize.semantics import Semantics
from spikeport.quantize.semantics import semantics as resolve

WEIGHT_NODES = ("Affine", "Linear")


def finetuned_graph(graph: Any, semantics: Semantics | str, net: Network, *, cuba_bias: str = "unit") -> Any:
    """A deep copy of the float NIR ``graph`` whose weight nodes hold ``net``'s connection weights
    (in float units); ``net`` is the (fine-tuned) network :func:`quantize` built from ``graph``."""
    sem = resolve(semantics)
    flat = flatten_graph(graph)
    plan = build_plan(flat, sem, cuba_bias)
    conns, _ = connection_plans(plan, _encodings(net), sem)
    out = copy.deepcopy(graph)
    by_name = {c.name: c for c in net.connections}
    for cp in conns:
        if cp.source == BIAS_UNIT or "~" in cp.name:  # bias unit, reset correction: not NIR weights
            continue
        if cp.name not in by_name:
            raise UnsupportedError(f"{cp.name}: not one connection of the network (a split weight?)")
        node_name = _weight_node(flat, cp)
        amp = _amplitude(cp, flat.nodes[node_name].node.weight)
        w = _float_weights(plan, cp, by_name[cp.name], net) / amp
        node = out.nodes[node_name]
        node.weight = w.reshape(np.shape(node.weight))  # float64: float32 could move a mantissa
    return out


def _encodings(net: Network) -> dict[str, InputEncoding]:
    ins = net.metadata.get("inputs", {})
    return {
        k: InputEncoding(n=int(v["n"]), scale=float(v["scale"]), num_message_bits=int(v["num_message_bits"]))
        for k, v in ins.items()
    }


def _weight_node(flat: FlatGraph, cp: ConnPlan) -> str:
    """The single Affine/Linear node between ``cp.source`` and ``cp.target``, else UnsupportedError."""
    edges = set(flat.edges) | set(flat.recurrent_edges)
    mids = [n for n in flat.order if (cp.source, n) in edges and (n, cp.target) in edges]
    weights = [n for n in mids if flat.nodes[n].kind in WEIGHT_NODES]
    if "@" in cp.name or len(weights) != 1 or len(mids) != 1 or weights[0] not in flat.nodes:
        raise UnsupportedError(
            f"{cp.name}: not exactly one Affine/Linear node between {cp.source} and {cp.target} "
            f"(found {mids or 'none'}); only such connections can be written back to NIR"
        )
    if "." in weights[0]:
        raise UnsupportedError(f"{cp.name}: weight node {weights[0]} is inside a subgraph")
    return weights[0]


def _amplitude(cp: ConnPlan, weight: Any) -> float:
    """The scalar ``a`` with ``cp.m == a * weight`` (the source's unit), else UnsupportedError."""
    w = np.asarray(weight, dtype=np.float64)
    if w.shape != cp.m.shape:
        raise UnsupportedError(f"{cp.name}: its weight node is lowered (shape {w.shape} -> {cp.m.shape})")
    k = int(np.argmax(np.abs(w)))
    amp = float(cp.m.flat[k] / w.flat[k]) if w.flat[k] else 1.0
    if not np.allclose(cp.m, amp * w, rtol=1e-12, atol=0.0):
        raise UnsupportedError(f"{cp.name}: the connection is not its weight node's matrix times a scalar")
    return amp


def _float_weights(plan: Plan, cp: ConnPlan, conn: Connection, net: Network) -> np.ndarray:
    """Invert ``w = scale * u_gain * m / 64``: the path matrix ``m`` that ``conn`` stands for."""
    scale = np.asarray(net.metadata["groups"][cp.target]["scale"], dtype=np.float64)
    u_gain = next(g.model.u_gain for g in plan.groups if g.name == cp.target)
    value = np.asarray(conn.dense_weights(), dtype=np.float64) * 2.0 ** np.asarray(
        conn.weight_exp, dtype=np.float64
    )
    denom = scale[:, None] * np.asarray(u_gain, dtype=np.float64)[:, None]
    return np.where(denom != 0, value * 64.0 / np.where(denom != 0, denom, 1.0), 0.0)
