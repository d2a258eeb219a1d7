"""PSN networks as NIR graphs of standard nodes (Delay, Scale, Threshold), and back, exactly.

A :class:`~spikeport.emulator.psn.PSNGroup` ``g`` fed by connection ``c`` becomes::

    c: Linear(weight)  ->  g.tap{i}.delay: Delay((k-1-i) d)  ->  g.tap{i}.scale: Scale(sign 2**shift)  --+
                          (one Delay -> Scale chain per tap i = 0..k-1; NIR sums the edges into a node)   |
                                                               g: Threshold(vth + 0.5)  <------------------+

so any NIR reader computes ``H = sum_i sign_i 2**shift_i x[t - (k-1-i) d]`` and spikes where
``H - (vth + 0.5) > 0``, i.e. ``H > vth`` for integer ``H`` (the half step keeps the Heaviside at 0
out of the question). Delays are in time steps (``dt = 1``); as on Loihi, every Linear edge delivers
one step after its source fired (graph metadata ``synapse_delay_steps = 1``). Node names carry the group
and connection names; :func:`read_psn_graph` rebuilds the records from the structure alone (node order
is not kept by ``nir.read``) and refuses, with :class:`UnsupportedError`, what is not such a subgraph.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import nir
import numpy as np
from spikeport.emulator.errors import UnsupportedError, field_error
from spikeport.emulator.network import Connection, InputGroup, Network
from spikeport.emulator.psn import PSNGroup

METADATA = {"spikeport": "psn-subgraph", "dt": 1, "synapse_delay_steps": 1, "threshold": "x > vth + 0.5"}


def _check_connection(c: Connection) -> None:
    obj = f"Connection({c.name!r})"
    plain = {"weight_exp": 0, "num_weight_bits": 8, "num_message_bits": 0, "sparse": False}
    for field, want in plain.items():
        if getattr(c, field) != want:
            raise UnsupportedError(f"{obj}.{field}: the PSN subgraph writes plain Linear edges ({want!r})")
    if c.delays is not None:
        raise UnsupportedError(f"{obj}.delays: the PSN subgraph writes undelayed Linear edges")
    w = np.asarray(c.dense_weights(), np.int64)
    if np.any(w < 0) and np.any(w > 0) and np.any(w % 2):
        raise UnsupportedError(
            f"{obj}.weights: odd mixed-sign mantissas are floored by Lava; store even ones"
        )


def _psn_nodes(g: PSNGroup) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    nodes: dict[str, Any] = {}
    edges = []
    n = int(g.n)
    scale = np.asarray(g.sign, np.float64) * np.exp2(np.asarray(g.shift, np.float64))
    for i, lag in enumerate(g.tap_delays()):
        d, s = f"{g.name}.tap{i}.delay", f"{g.name}.tap{i}.scale"
        nodes[d] = nir.Delay(delay=np.full(n, float(lag)))
        nodes[s] = nir.Scale(scale=scale[:, i].copy())
        edges += [(d, s), (s, g.name)]
    nodes[g.name] = nir.Threshold(
        threshold=np.asarray(g.vth, np.float64) + 0.5, metadata={"k": int(g.k), "dilation": int(g.dilation)}
    )
    return nodes, edges


def psn_graph(net: Network) -> nir.NIRGraph:
    """The NIR graph of a network of input groups, PSN groups and plain connections."""
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    for ig in net.inputs:
        nodes[ig.name] = nir.Input(input_type={"input": np.array([int(ig.n)])})
    psn: dict[str, PSNGroup] = {}
    groups: tuple[Any, ...] = net.groups
    for g in groups:
        if not isinstance(g, PSNGroup):
            raise UnsupportedError(
                f"{type(g).__name__}({g.name!r}): the PSN subgraph writer takes PSNGroup only"
            )
        psn[g.name] = g
        more, more_edges = _psn_nodes(g)
        nodes.update(more)
        edges += more_edges
    for c in net.connections:
        _check_connection(c)
        nodes[c.name] = nir.Linear(weight=np.asarray(c.dense_weights(), np.float64))
        edges.append((c.source, c.name))
        edges += [(c.name, f"{c.target}.tap{i}.delay") for i in range(int(psn[c.target].k))]
    for g in net.groups:
        if not net.outgoing(g.name):
            out = f"output.{g.name}"
            nodes[out] = nir.Output(output_type={"output": np.array([int(g.n)])})
            edges.append((g.name, out))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=dict(METADATA), type_check=False)


def write_psn_nir(path: str | Path, net: Network) -> None:
    """Write :func:`psn_graph` of ``net`` to ``path`` (NIR HDF5)."""
    nir.write(str(path), psn_graph(net))


def read_psn_nir(path: str | Path) -> Network:
    """Read a file written by :func:`write_psn_nir` (or any graph of the same shape)."""
    return read_psn_graph(nir.read(str(path)))


# ---------------------------------------------------------------- reading


def _integral(obj: str, field: str, values: np.ndarray) -> np.ndarray:
    if not np.all(np.isfinite(values)) or np.any(np.floor(values) != values):
        raise UnsupportedError(f"{obj}.{field}: must hold integers (got {values!r})")
    return values.astype(np.int64)


def _tap(node_name: str, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``scale = sign * 2**shift`` -> (sign, shift); 0 -> (0, 0)."""
    mag = np.abs(scale)
    shift = np.log2(np.where(mag > 0, mag, 1.0))
    shift = _integral(f"Scale({node_name!r})", "scale (log2 |scale|)", shift)
    return np.sign(scale).astype(np.int64), shift


def _dilation(obj: str, lags: list[int], meta: dict[str, Any]) -> int:
    k = len(lags)
    if k == 1:
        return int(meta.get("dilation", 1))
    d = lags[0] // (k - 1)
    if d < 1 or lags != [(k - 1 - i) * d for i in range(k)]:
        raise UnsupportedError(f"{obj}: tap delays {lags} are not (k-1-i)*d for one dilation d")
    return d


def _read_group(graph: nir.NIRGraph, name: str, preds: dict[str, list[str]]) -> tuple[PSNGroup, str]:
    """The PSN group behind Threshold ``name`` and the name of the Linear node feeding it."""
    obj = f"Threshold({name!r})"
    taps, linears = [], set()
    for s in preds[name]:
        delays = preds.get(s, [])
        if not isinstance(graph.nodes[s], nir.Scale) or len(delays) != 1:
            raise UnsupportedError(f"{obj}: every input must be a Scale fed by one Delay (got {s!r})")
        dnode = graph.nodes[delays[0]]
        if not isinstance(dnode, nir.Delay) or len(preds.get(delays[0], [])) != 1:
            raise UnsupportedError(f"{obj}: Scale {s!r} must be fed by a Delay fed by one Linear")
        lag = np.unique(_integral(f"Delay({delays[0]!r})", "delay", np.asarray(dnode.delay, np.float64)))
        if lag.size != 1:
            raise UnsupportedError(f"Delay({delays[0]!r}).delay: must be one value for all channels")
        linears.add(preds[delays[0]][0])
        taps.append((int(lag[0]), _tap(s, np.asarray(graph.nodes[s].scale, np.float64))))
    if len(linears) != 1:
        raise UnsupportedError(f"{obj}: taps must share one Linear input (got {sorted(linears)})")
    taps.sort(key=lambda tap: -tap[0])
    vth = _integral(obj, "threshold - 0.5", np.asarray(graph.nodes[name].threshold, np.float64) - 0.5)
    meta = dict(getattr(graph.nodes[name], "metadata", {}) or {})
    g = PSNGroup(
        name=name,
        n=int(vth.size),
        k=len(taps),
        dilation=_dilation(obj, [lag for lag, _ in taps], meta),
        sign=np.stack([t[1][0] for t in taps], axis=1),
        shift=np.stack([t[1][1] for t in taps], axis=1),
        vth=vth,
    )
    return g, linears.pop()


def _predecessors(graph: nir.NIRGraph) -> dict[str, list[str]]:
    preds: dict[str, list[str]] = defaultdict(list)
    for src, dst in graph.edges:
        preds[dst].append(src)
    return {k: sorted(v) for k, v in preds.items()}


def _order(groups: dict[str, PSNGroup], sources: dict[str, str]) -> list[str]:
    """Group names, each after the group that feeds it (inputs first)."""
    done: list[str] = []
    while len(done) < len(groups):
        ready = [
            g for g in sorted(groups) if g not in done and (sources[g] not in groups or sources[g] in done)
        ]
        if not ready:
            raise UnsupportedError(
                f"PSN graph: recurrent groups {sorted(set(groups) - set(done))} are not supported"
            )
        done += ready
    return done


def _plain(v: Any) -> str | int | float | None:
    v = v.item() if isinstance(v, np.generic | np.ndarray) and np.size(v) == 1 else v
    v = v.decode() if isinstance(v, bytes) else v
    return v if isinstance(v, str | int | float) else None


def read_psn_graph(graph: nir.NIRGraph) -> Network:
    """Rebuild the emulator network from a graph of the shape :func:`psn_graph` writes."""
    preds = _predecessors(graph)
    inputs = []
    for name, node in sorted(graph.nodes.items()):
        if isinstance(node, nir.Input):
            inputs.append(InputGroup(name=name, n=int(np.prod(node.input_type["input"]))))
        elif not isinstance(node, nir.Output | nir.Linear | nir.Delay | nir.Scale | nir.Threshold):
            raise UnsupportedError(f"PSN graph: node {name!r} of type {type(node).__name__} is not supported")
    groups: dict[str, Any] = {}
    conns: dict[str, Connection] = {}
    for name, node in graph.nodes.items():
        if isinstance(node, nir.Threshold):
            groups[name], lin = _read_group(graph, name, preds)
            src = preds.get(lin, [])
            if len(src) != 1:
                raise field_error(f"Linear({lin!r})", "inputs", "must have exactly one source", src)
            w = _integral(f"Linear({lin!r})", "weight", np.asarray(graph.nodes[lin].weight, np.float64))
            conns[name] = Connection(name=lin, source=src[0], target=name, weights=w)
    order = _order(groups, {g: c.source for g, c in conns.items()})
    return Network(
        inputs=tuple(inputs),
        groups=tuple(groups[g] for g in order),
        connections=tuple(conns[g] for g in order),
        metadata={k: _plain(v) for k, v in (graph.metadata or {}).items() if _plain(v) is not None},
    )
