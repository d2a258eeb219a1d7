"""The float reference run: a NIR graph stepped in discrete time under an explicit Semantics.

API::

    run_nir(graph, inputs, semantics=None, *, record=("spikes", "v"), dtype="float32") -> RunResult

``graph``: a ``nir.NIRGraph`` (nested graphs and cycles allowed) or a
:class:`~spikeport.quantize.graph.flatten.FlatGraph`. ``inputs``: an array ``(B, T, *shape)`` (``shape`` the
Input node's shape, or flattened to ``n``) for a graph with one Input, else a dict Input name -> array.
``semantics``: a :class:`Semantics`, a convention name, or ``None`` (the semantics stored in the graph
metadata, else ``"nir"``). ``record``: any of ``"spikes"`` (spiking nodes: IF, LIF, CubaLIF,
Threshold), ``"v"`` (neuron nodes), ``"i"`` (synaptic current of CubaLI/CubaLIF), ``"out"`` (every
non-neuron node's output). Outputs are ``"<node>/<variable>"`` -> ``(B, T, n)`` numpy arrays, ``n`` the
flattened node size, ``v``/``i``/``out`` in ``dtype``, spikes as int32 counts; ``metadata`` holds
``semantics`` (``Semantics.to_dict()``), ``backend="reference"``, ``dtype``, ``batch``, ``steps``.

Each step visits the nodes in topological order; a node's input is the sum of its incoming edges
(feed-forward edges carry this step's output, recurrent edges the output of ``recurrent_delay`` steps
ago). Before step 0 the network is at rest: inputs and stateful nodes (neurons, Delay) emit zeros,
stateless nodes their response to that (an Affine its bias), and a recurrent edge delivers these rest
values during its first ``recurrent_delay`` steps. So the delay of a loop sits on the spikes leaving the
neuron, as in snnTorch's ``RLeaky`` (``recurrent(spk[t-1])``, the bias included at t = 0). The neuron
rules, float evaluation order included, are those of
:mod:`spikeport.quantize.semantics`; :mod:`spikeport.reference.steppers` implements them.

Why torch rather than numpy: the frameworks this run must reproduce bit for bit (snnTorch, Norse,
spikeport's own modules) compute in torch float32; with numpy the matrix products and convolutions
would round differently (other BLAS blocking, no oneDNN convolution), and a neuron whose potential sits
within one ulp of its threshold would spike in one and not the other. The same torch kernels
(``F.linear``, ``F.conv2d``, ``F.avg_pool2d``) on the same per-step ``(B, ...)`` tensors give the same bits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import nir
import numpy as np
import torch
from spikeport.emulator.errors import field_error
from spikeport.emulator.result import RunResult
from spikeport.quantize.graph.flatten import FlatGraph, FlatNode, flatten_graph
from spikeport.quantize.graph.inputs import graph_inputs
from spikeport.quantize.semantics import Semantics
from spikeport.quantize.semantics import semantics as make_semantics
from spikeport.reference import steppers as K

RECORDABLE = ("spikes", "v", "i", "out")
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def resolve_semantics(graph_metadata: Mapping[str, Any], sem: Semantics | str | None) -> Semantics:
    """``sem`` itself, the named convention, or the one stored in the graph metadata, else ``nir``."""
    if isinstance(sem, Semantics):
        return sem
    if isinstance(sem, str):
        return make_semantics(sem)
    from spikeport.nir.io import semantics_from_metadata

    return semantics_from_metadata(graph_metadata) or make_semantics("nir")


def run_nir(
    graph: nir.NIRGraph | FlatGraph,
    inputs: Any,
    semantics: Semantics | str | None = None,
    *,
    record: Sequence[str] = ("spikes", "v"),
    dtype: str = "float32",
) -> RunResult:
    """Run ``graph`` on ``inputs`` under ``semantics`` (see the module docstring)."""
    flat = graph if isinstance(graph, FlatGraph) else flatten_graph(graph)
    sem = resolve_semantics(flat.metadata, semantics)
    bad = sorted(set(record) - set(RECORDABLE))
    if bad:
        raise field_error("run_nir", "record", f"must be among {RECORDABLE}", bad)
    if dtype not in _DTYPES:
        raise field_error("run_nir", "dtype", f"must be one of {tuple(_DTYPES)}", dtype)
    tdtype = _DTYPES[dtype]
    xs = _inputs(flat, inputs, tdtype)
    batch, steps = next(iter(xs.values())).shape[:2]
    kernels = {
        n: K.build(flat.nodes[n], sem.for_node(n), tdtype, batch) for n in flat.order if n not in flat.inputs
    }
    delay = sem.recurrent_delay
    rec_sources = sorted({s for s, _ in flat.recurrent_edges})
    history: dict[str, list[torch.Tensor]] = {s: [] for s in rec_sources}
    traces: dict[str, list[np.ndarray]] = {}
    with torch.no_grad():
        rest = _rest_outputs(flat, kernels, batch, tdtype)
        if sem.recurrent_rest == "zero":  # back-edges start from zeros (nirtorch's interpreter)
            rest = {k: torch.zeros_like(v) for k, v in rest.items()}
        for t in range(steps):
            outs: dict[str, torch.Tensor] = {}
            for name in flat.order:
                node = flat.nodes[name]
                if name in xs:
                    outs[name] = xs[name][:, t]
                    continue
                shaped = _contribs(node, outs, history, rest, delay, batch, tdtype)
                outs[name] = kernels[name].step(shaped)
                for var, value in kernels[name].recorded(record).items():
                    traces.setdefault(f"{name}/{var}", []).append(value.reshape(batch, -1).numpy().copy())
            for s in rec_sources:
                history[s].append(outs[s])
                del history[s][: -delay - 1]
    outputs = {k: np.stack(v, axis=1) for k, v in traces.items()}
    outputs = {k: (v.astype(np.int32) if k.endswith("/spikes") else v) for k, v in outputs.items()}
    metadata = {
        "backend": "reference",
        "semantics": sem.to_dict(),
        "dtype": dtype,
        "batch": int(batch),
        "steps": int(steps),
    }
    return RunResult(outputs=outputs, metadata=metadata)


def _contribs(
    node: FlatNode,
    outs: Mapping[str, torch.Tensor],
    history: Mapping[str, list[torch.Tensor]],
    rest: Mapping[str, torch.Tensor],
    delay: int,
    batch: int,
    dtype: torch.dtype,
) -> list[torch.Tensor]:
    """A node's incoming signals this step, shaped ``(B, *in_shape)``: feed-forward edges carry this
    step's outputs, recurrent ones the output ``delay`` steps ago (the rest value before that)."""
    contribs = [outs[s] for s in node.sources[: len(node.sources) - len(node.recurrent)]]
    for s in node.recurrent:
        past = history[s]
        contribs.append(past[-delay] if len(past) >= delay else rest[s])
    return [c.reshape(batch, *node.in_shape) for c in contribs] or [
        torch.zeros(batch, *node.in_shape, dtype=dtype)
    ]


def _rest_outputs(
    flat: FlatGraph, kernels: Mapping[str, Any], batch: int, dtype: torch.dtype
) -> dict[str, torch.Tensor]:
    """Outputs before step 0: inputs and stateful nodes emit zeros, stateless ones their response."""
    rest: dict[str, torch.Tensor] = {}
    for name in flat.order:
        node = flat.nodes[name]
        kernel = kernels.get(name)
        if isinstance(kernel, K.Stateless):
            srcs = [rest[s] for s in node.sources if s in rest]
            x = torch.zeros(batch, *node.in_shape, dtype=dtype)
            for c in srcs:
                x = x + c.reshape(batch, *node.in_shape)
            rest[name] = kernel.fn(x)
        else:
            rest[name] = torch.zeros(batch, *node.out_shape, dtype=dtype)
    return rest


def _inputs(flat: FlatGraph, inputs: Any, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Validated inputs (:func:`spikeport.quantize.graph.inputs.graph_inputs`) as ``(B, T, *shape)``
    tensors of the run's dtype."""
    shapes = {name: flat.nodes[name].out_shape for name in flat.inputs}
    xs = graph_inputs(shapes, inputs, caller="run_nir", unbatched=False)
    return {k: torch.as_tensor(x, dtype=dtype).reshape(*x.shape[:2], *shapes[k]) for k, x in xs.items()}
