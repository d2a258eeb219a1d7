"""Reading and writing NIR files, with spikeport's Semantics stored in the graph metadata.

API::

    read_nir(path) -> (nir.NIRGraph, Semantics | None)   # None: the file stores no spikeport semantics
    write_nir(path, graph, semantics) -> None            # graph.metadata["spikeport.semantics"] = JSON
    semantics_from_metadata(metadata) -> Semantics | None
    suggest_convention(graph) -> (name, reason)          # stored semantics win, else parameter patterns
    add_semantics_args(parser); semantics_from_args(args, default=None) -> Semantics | None

Reading never lets an h5py/numpy/nir error escape: a file that is not HDF5, truncated, or lacks a
dataset raises :class:`NIRFileError` naming the node and the field; graph problems raise the errors of
:mod:`spikeport.quantize.graph.flatten` (dangling edge, unsupported type, shapes, NaN/inf). Files that nir 1.0.8
itself refuses but that have one clear meaning load with a :class:`NIRRepairWarning` that lists what was
repaired: a missing ``v_reset`` (-> 0), ``w_in`` (-> 1), conv ``stride``/``padding``/``dilation``/
``groups``/``bias`` (-> PyTorch defaults), pool ``padding`` (-> 0), Flatten dims (-> 1, -1), and
graphs (nested ones included) that fail nir's own type inference.
"""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nir
import numpy as np
from spikeport.emulator.errors import SpikeportError, ValidationError
from spikeport.nir.semantics_args import add_semantics_args as add_semantics_args  # the CLI's options
from spikeport.nir.semantics_args import semantics_from_args as semantics_from_args
from spikeport.quantize.graph.flatten import NODE_SPECS, flatten_graph, scalar_int
from spikeport.quantize.semantics import Semantics

METADATA_KEY = "spikeport.semantics"


class NIRFileError(SpikeportError, ValueError):
    """A NIR file cannot be read: not HDF5, truncated, or missing/malformed datasets."""


class NIRRepairWarning(UserWarning):
    """A NIR file loaded only after a repair (the message says which)."""


# ---- reading ----------------------------------------------------------------------------------------
_OPTIONAL = {"input_shape", "input_type", "metadata"}


def read_nir(path: str | Path) -> tuple[nir.NIRGraph, Semantics | None]:
    """Load ``path``; return the graph and the spikeport semantics stored in it (or ``None``)."""
    import h5py

    if not Path(path).is_file():
        raise NIRFileError(f"{path}: no such file")
    try:
        with h5py.File(path, "r") as f:
            if "node" not in f:
                raise NIRFileError(f"{path}: no 'node' group (not a NIR file)")
            tree = _to_dict(f["node"], "graph")
    except (OSError, KeyError, RuntimeError, ValueError, TypeError) as exc:
        if isinstance(exc, SpikeportError):
            raise
        raise NIRFileError(f"{path}: cannot be read as HDF5 ({type(exc).__name__}: {exc})") from None
    repairs: list[str] = []
    graph = _build(tree, "graph", repairs)
    try:
        flatten_graph(graph)  # validates: dangling edges, shapes, NaN/inf
    except SpikeportError:
        raise
    except (ValueError, TypeError, IndexError, OverflowError, AttributeError) as exc:  # safety net
        raise NIRFileError(f"{path}: malformed graph ({type(exc).__name__}: {exc})") from None
    _nir_type_check(graph, "graph", repairs)
    if semantics_from_metadata(graph.metadata) is None:
        graph = repair_norse_tau(graph, repairs)
    if repairs:
        warnings.warn(f"{path}: repaired on load: " + "; ".join(repairs), NIRRepairWarning, stacklevel=2)
    return graph, semantics_from_metadata(graph.metadata)


def _to_dict(group: Any, where: str) -> dict[str, Any]:
    import h5py

    out: dict[str, Any] = {}
    for key in group:
        item = group[key]
        if isinstance(item, h5py.Group):
            out[key] = _to_dict(item, f"{where}.{key}")
        else:
            value = item[()]
            out[key] = value.decode("utf8") if isinstance(value, bytes) else value
    return out


def _build(d: Mapping[str, Any], name: str, repairs: list[str]) -> Any:
    kind = d.get("type")
    if not isinstance(kind, str):
        raise NIRFileError(f"{name}: missing or malformed 'type' dataset")
    if kind == "NIRGraph":
        return _build_graph(d, name, repairs)
    spec = NODE_SPECS.lookup(kind, name)  # refuses a type outside the table, listing the supported
    fields = {k: v for k, v in d.items() if k != "type"}
    for req in spec.required:
        if req not in fields:
            raise NIRFileError(f"{name} ({kind}): missing dataset {req!r}")
    for key, default in spec.defaults:
        if key not in fields:
            fields[key] = default(fields)
            repairs.append(f"{name}: no {key}, set to {_short(fields[key])}")
    try:
        return _construct(kind, fields, name)
    except Exception as exc:  # nir's constructors raise assorted errors on malformed values
        raise NIRFileError(f"{name} ({kind}): malformed parameters ({type(exc).__name__}: {exc})") from None


class _Obj:
    def __init__(self, d: Mapping[str, Any]) -> None:
        self.__dict__.update(d)


def _construct(kind: str, f: dict[str, Any], name: str) -> Any:
    meta = {"metadata": dict(f.pop("metadata"))} if isinstance(f.get("metadata"), dict) else {}
    f.pop("metadata", None)
    if kind == "Input":
        return nir.Input(input_type={"input": np.asarray(f["shape"])}, **meta)
    if kind == "Output":
        return nir.Output(output_type={"output": np.asarray(f["shape"])}, **meta)
    if kind == "Flatten":
        it = f.get("input_type")
        return nir.Flatten(
            input_type={"input": None if it is None else np.asarray(it)},
            start_dim=scalar_int(f"{name}", _Obj(f), "start_dim", 0),
            end_dim=scalar_int(f"{name}", _Obj(f), "end_dim", -1),
            **meta,
        )
    if kind in ("Conv1d", "Conv2d"):
        f.setdefault("input_shape", None)
        f["groups"] = scalar_int(name, _Obj(f), "groups", 1)
    cls = getattr(nir, kind)
    known = set(cls.__dataclass_fields__) - {"input_type", "output_type", "metadata"}
    extra = sorted(set(f) - known)
    if extra:
        raise ValueError(f"unknown datasets {extra}")
    return cls(**f, **meta)


def _build_graph(d: Mapping[str, Any], name: str, repairs: list[str]) -> nir.NIRGraph:
    nodes_d = d.get("nodes")
    if not isinstance(nodes_d, Mapping) or "edges" not in d:
        raise NIRFileError(f"{name}: a NIRGraph needs 'nodes' and 'edges'")
    nodes = {k: _build(v, k if name == "graph" else f"{name}.{k}", repairs) for k, v in nodes_d.items()}
    raw = np.asarray(d["edges"])
    if raw.size == 0:
        raw = raw.reshape(0, 2)
    if raw.ndim != 2 or raw.shape[1] != 2:
        raise NIRFileError(f"{name}.edges: must be a list of (source, target) pairs (got shape {raw.shape})")
    edges = [(_text(a), _text(b)) for a, b in raw]
    meta = dict(d["metadata"]) if isinstance(d.get("metadata"), Mapping) else {}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta, type_check=False)


def _text(x: Any) -> str:
    return x.decode("utf8") if isinstance(x, bytes) else str(x)


def _short(x: Any) -> str:
    a = np.asarray(x)
    return repr(a.item()) if a.size == 1 else f"array of {a.size} x {a.flat[0]!r}"


def _nir_type_check(graph: nir.NIRGraph, name: str, repairs: list[str]) -> None:
    """Run nir's own type inference on a copy; record a repair where it fails."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trial = copy.deepcopy(graph)
            trial.infer_types()
            trial.check_types()
    except Exception as exc:  # nir raises assorted errors from its inference
        repairs.append(
            f"nir {nir.version} type inference failed ({type(exc).__name__}: {exc}); loaded without it"
        )


# ---- Norse's exporter: tau scaled by dt -------------------------------------------------------------
#: ``norse.torch.to_nir``'s default dt: it writes ``tau = dt / tau_mem_inv`` (``dt * tau``, not ``tau``)
NORSE_EXPORT_DT = 1e-3
_TAU_FIELDS = {
    "LIF": ("tau",),
    "LI": ("tau",),
    "CubaLIF": ("tau_mem", "tau_syn"),
    "CubaLI": ("tau_mem", "tau_syn"),
}


def _leaky_nodes(graph: nir.NIRGraph, prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for name, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            out += _leaky_nodes(node, f"{prefix}{name}.")
        elif type(node).__name__ in _TAU_FIELDS:
            out.append((prefix + name, node))
    return out


def norse_scaled_tau(graph: nir.NIRGraph) -> bool:
    """True where ``graph`` has the parameter pattern of ``norse.torch.to_nir`` (Norse 1.1.0): every
    leaky neuron has ``r == 1`` (and ``w_in`` 1 or absent) and every time constant is below 1e-4 s,
    that is ``tau = dt * tau_true`` with Norse's ``dt = 1e-3`` (a real 0.01 s becomes 1e-5)."""
    nodes = _leaky_nodes(graph)
    if not nodes:
        return False
    for _, node in nodes:
        if not np.all(np.asarray(node.r) == 1.0):
            return False
        if getattr(node, "w_in", None) is not None and not np.all(np.asarray(node.w_in) == 1.0):
            return False
        taus = [np.asarray(getattr(node, f), np.float64) for f in _TAU_FIELDS[type(node).__name__]]
        if not all(t.size and np.all((t > 0) & (t < 1e-4)) for t in taus):
            return False
    return True


def _norse_inverse(tau_w: np.ndarray) -> np.ndarray:
    """Norse's float32 ``tau_inv`` from its export ``tau_w = float32(1/tau_inv) * float32(dt)`` (torch's
    ``dt / tensor``): of the float32 values within 4 ulps that reproduce ``tau_w``, the one with the most
    trailing zero bits (a user's round number); returned as ``tau = 1 / tau_inv`` in float64."""
    w = np.asarray(tau_w, np.float32)
    c = (np.float32(NORSE_EXPORT_DT) / w).astype(np.float32)
    cands = [c]
    up, dn = c, c
    for _ in range(4):
        up, dn = np.nextafter(up, np.float32(np.inf)), np.nextafter(dn, np.float32(0))
        cands += [up, dn]
    C = np.stack(cands)
    with np.errstate(divide="ignore", over="ignore"):
        ok = ((np.float32(1) / C) * np.float32(NORSE_EXPORT_DT)).astype(np.float32) == w
    bits = C.view(np.uint32) & np.uint32(0x7FFFFF)
    zeros = np.where(bits == 0, 32, _trailing_zeros(bits))
    score = np.where(ok, zeros, -1)
    best = np.take_along_axis(C, np.argmax(score, axis=0)[None], axis=0)[0]
    best = np.where(np.any(ok, axis=0), best, c)
    return 1.0 / best.astype(np.float64)


def _trailing_zeros(bits: np.ndarray) -> np.ndarray:
    b = bits.astype(np.int64)
    return np.log2((b & -b).astype(np.float64)).astype(np.int64)


def repair_norse_tau(graph: nir.NIRGraph, repairs: list[str]) -> nir.NIRGraph:
    """Undo Norse's exporter tau scaling (:func:`norse_scaled_tau`) in place; record the repair."""
    if not norse_scaled_tau(graph):
        return graph
    names = []
    for name, node in _leaky_nodes(graph):
        for f in _TAU_FIELDS[type(node).__name__]:
            setattr(node, f, _norse_inverse(np.asarray(getattr(node, f))))
        names.append(name)
    repairs.append(
        f"{', '.join(names)}: tau < 1e-4 s with r = 1 is norse.torch.to_nir's tau = dt*tau (dt = "
        f"{NORSE_EXPORT_DT}); divided by dt (run it with the 'norse' convention)"
    )
    return graph


def repair_nir(graph: nir.NIRGraph) -> nir.NIRGraph:
    """A repaired copy of an in-memory ``graph`` from a framework's exporter, with a
    :class:`NIRRepairWarning` listing the repairs: neuron parameters of another shape than the node
    (0-d ones, which ``nir.write`` refuses, or 1-element ones that nir's reader refuses) broadcast, ``Conv1d/Conv2d.input_shape`` and ``Flatten.input_type`` left
    ``None`` filled in from the inferred shapes, and Norse's tau scaling (:func:`repair_norse_tau`)."""
    graph = copy.deepcopy(graph)
    repairs: list[str] = []
    for fn in flatten_graph(graph).nodes.values():
        _repair_node(fn, repairs)
    _repair_batch_dim(graph, repairs)
    if semantics_from_metadata(graph.metadata) is None:
        graph = repair_norse_tau(graph, repairs)
    if repairs:
        warnings.warn("repaired: " + "; ".join(repairs), NIRRepairWarning, stacklevel=2)
    return graph


def _repair_batch_dim(graph: nir.NIRGraph, repairs: list[str]) -> None:
    """Inputs whose shape includes the exporter's sample batch of 1 (nirtorch's sample data), where
    dropping it makes nir's type inference pass."""
    fails: list[str] = []
    _nir_type_check(graph, "graph", fails)
    if not fails:
        return
    ends = {n: x for n, x in graph.nodes.items() if isinstance(x, nir.Input | nir.Output)}
    batched = {n: np.asarray(x.input_type["input"]) for n, x in ends.items()}
    batched = {n: shape for n, shape in batched.items() if shape.size >= 2 and shape[0] == 1}
    if not batched:
        return
    old = {n: (ends[n].input_type, ends[n].output_type) for n in batched}
    for n, shape in batched.items():
        ends[n].input_type, ends[n].output_type = {"input": shape[1:]}, {"output": shape[1:]}
    trial: list[str] = []
    _nir_type_check(graph, "graph", trial)
    if trial:  # not the cause: leave them as they were
        for n, (it, ot) in old.items():
            ends[n].input_type, ends[n].output_type = it, ot
        return
    for n, shape in batched.items():
        repairs.append(f"{n}: shape {tuple(shape)} includes a batch of 1; set to {tuple(shape[1:])}")


def _repair_node(fn: Any, repairs: list[str]) -> None:
    node, kind = fn.node, fn.kind
    spec = fn.spec.neuron
    if spec is not None:
        params = set(type(node).__dataclass_fields__) - {"input_type", "output_type", "metadata"}
        uneven = [f for f in sorted(params) if np.shape(getattr(node, f)) != tuple(fn.out_shape)]
        for f in uneven:
            value = np.asarray(getattr(node, f), np.float64)
            setattr(node, f, np.broadcast_to(value, fn.out_shape).copy())
        if uneven:
            repairs.append(f"{fn.name}: {', '.join(uneven)} broadcast to shape {tuple(fn.out_shape)}")
            node.input_type = {"input": np.asarray(fn.out_shape)}
            node.output_type = {"output": np.asarray(fn.out_shape)}
    if kind in ("Conv1d", "Conv2d") and getattr(node, "input_shape", None) is None:
        node.input_shape = np.asarray(fn.in_shape[1:])
        repairs.append(f"{fn.name}: no input_shape, set to {tuple(fn.in_shape[1:])}")
    if kind == "Flatten" and (node.input_type or {}).get("input") is None:
        node.input_type = {"input": np.asarray(fn.in_shape)}
        repairs.append(f"{fn.name}: no input_type, set to {tuple(fn.in_shape)}")


# ---- writing ----------------------------------------------------------------------------------------
def write_nir(path: str | Path, graph: nir.NIRGraph, semantics: Semantics | None = None) -> None:
    """Write ``graph`` to ``path`` with ``semantics`` stored under metadata key ``spikeport.semantics``,
    atomically (temporary file in the folder, fsync, rename; :mod:`spikeport.emulator.atomic`)."""
    meta = dict(graph.metadata or {})
    if semantics is not None:
        meta[METADATA_KEY] = json.dumps(semantics.to_dict(), sort_keys=True)
    out = nir.NIRGraph(nodes=graph.nodes, edges=list(graph.edges), metadata=meta, type_check=False)
    from spikeport.emulator.atomic import atomic_path

    with atomic_path(path, obj="write_nir", field="path") as tmp:  # a failed write leaves ``path`` as it was
        nir.write(str(tmp), out)


def semantics_from_metadata(metadata: Mapping[str, Any] | None) -> Semantics | None:
    """The Semantics stored by :func:`write_nir`, or ``None``."""
    raw = (metadata or {}).get(METADATA_KEY)
    if raw is None:
        return None
    try:
        return Semantics.from_dict(json.loads(_text(raw)))
    except (json.JSONDecodeError, TypeError) as exc:
        raise ValidationError(f"metadata.{METADATA_KEY}: not a Semantics record ({exc})") from None


def suggest_convention(graph: nir.NIRGraph) -> tuple[str, str]:
    """Best guess of the convention of ``graph`` and why (stored semantics win). The patterns, in order:
    SpikingJelly (IF ``r = 1/dt``; LIF ``r = 1``, ``1e-4 < tau < 1e-3``), Sinabs (``r = 1``, tau in steps
    >= 1; IF-only ``r = 1``), snnTorch (``r = tau/1e-4``), Norse (``r = 1``; ``tau < 1e-4``: its
    exporter's scaling), Rockpool (``r = tau*exp(-dt/tau)/dt``)."""
    stored = semantics_from_metadata(graph.metadata)
    if stored is not None:
        return stored.convention, "stored in the file's metadata (spikeport.semantics)"
    flat = flatten_graph(graph)
    pairs = []
    for fn in flat:
        if fn.spec.neuron is not None and fn.spec.neuron.leaky:
            tau = np.asarray(fn.node.tau_mem if fn.spec.neuron.current else fn.node.tau, np.float64)
            pairs.append((tau, np.asarray(fn.node.r, np.float64)))
    for name, pattern in (("spikingjelly", _spikingjelly_pattern), ("sinabs", _sinabs_pattern)):
        why = pattern(flat, pairs)
        if why:
            return name, why
    if not pairs:
        return "nir", "no leaky neurons to read a time step from; plain NIR semantics"
    if all(np.allclose(r, tau / 1e-4, rtol=1e-5) for tau, r in pairs):
        return (
            "snntorch",
            "r = tau/dt with dt = 1e-4 on every neuron: snnTorch's export (reset mode not stored; "
            "'snntorch_import' for the model snnTorch's import_from_nir builds from it)",
        )
    if norse_scaled_tau(graph):
        return "norse", (
            "r == 1 and tau < 1e-4 s on every neuron: norse.torch.to_nir's tau = dt*tau "
            "(read_nir repairs it, with a warning)"
        )
    if all(np.all(r == 1.0) for _, r in pairs):
        return "norse", "r == 1 on every neuron: Norse's export (dt = 1e-3)"
    rockpool = _rockpool_pattern(pairs)
    if rockpool:
        return "rockpool", rockpool
    return "nir", "no framework's parameter pattern recognized; plain NIR semantics"


_SJ_DT = 1e-4  # SpikingJelly 2.0.0 export_to_nir's default dt


def _spikingjelly_pattern(flat: Any, pairs: list[tuple[np.ndarray, np.ndarray]]) -> str:
    """Why ``flat`` looks like SpikingJelly's export, or '' (IF ``r = 1/dt``; LIF ``r = 1`` with
    ``tau`` a number of steps > 1 times dt = 1e-4 and below Norse's 1e-3)."""
    ifs = [np.asarray(fn.node.r, np.float64) for fn in flat if fn.kind == "IF"]
    if ifs and all(np.allclose(r, 1.0 / _SJ_DT, rtol=1e-6) for r in ifs):
        return "r = 1/dt = 1e4 on IF neurons: SpikingJelly's export (dv/dt = r*I, dt = 1e-4)"
    if pairs and all(np.all(r == 1.0) and np.all((t > _SJ_DT) & (t < 1e-3)) for t, r in pairs):
        return (
            "r == 1 and 1e-4 < tau < 1e-3 on every neuron: SpikingJelly's export (tau = steps*dt, dt = 1e-4)"
        )
    return ""


def _sinabs_pattern(flat: Any, pairs: list[tuple[np.ndarray, np.ndarray]]) -> str:
    """Why ``flat`` looks like Sinabs' export, or '' (tau counted in steps, r = 1; SumPool2d; IF r = 1)."""
    if pairs and all(np.all(r == 1.0) and np.all(t >= 1.0) for t, r in pairs):
        return "r == 1 and tau >= 1 on every neuron: Sinabs' export (tau in steps, dt = 1)"
    if pairs:
        return ""
    ifs = [np.asarray(fn.node.r, np.float64) for fn in flat if fn.kind == "IF"]
    if ifs and all(np.all(r == 1.0) for r in ifs):
        pool = any(fn.kind == "SumPool2d" for fn in flat)
        return (
            "IF neurons with r == 1"
            + (" and SumPool2d" if pool else "")
            + (
                ": Sinabs' IAF export (subtract reset, several spikes per step); a Norse IAFCell would be 'norse'"
            )
        )
    return ""


_ROCKPOOL_DT = 1e-3  # Rockpool's default dt


def _rockpool_pattern(pairs: list[tuple[np.ndarray, np.ndarray]]) -> str:
    """Why the neurons look like Rockpool's export (``r = tau*exp(-dt/tau)/dt``), or ''. Where the
    pattern holds for another dt than 1e-3, the reason names it (run with ``semantics("rockpool", dt=...)``)."""
    if not pairs:
        return ""
    tau0, r0 = float(np.ravel(pairs[0][0])[0]), float(np.ravel(pairs[0][1])[0])
    dt = _solve_rockpool_dt(tau0, r0)
    if dt is None or not all(np.allclose(r, t * np.exp(-dt / t) / dt, rtol=1e-5) for t, r in pairs):
        return ""
    if np.isclose(dt, _ROCKPOOL_DT, rtol=1e-5):
        return "r = tau*exp(-dt/tau)/dt with dt = 1e-3 on every neuron: Rockpool's export"
    return f"r = tau*exp(-dt/tau)/dt with dt = {dt:.6g} on every neuron: Rockpool's export (pass that dt)"


def _solve_rockpool_dt(tau: float, r: float) -> float | None:
    """The dt with ``tau*exp(-dt/tau)/dt == r`` (decreasing in dt), by bisection on log(dt)."""
    if not (tau > 0 and r > 0):
        return None
    lo, hi = np.log(tau) - 40.0, np.log(tau) + 5.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        dt = np.exp(mid)
        lo, hi = (mid, hi) if tau * np.exp(-dt / tau) / dt > r else (lo, mid)
    dt = float(np.exp(0.5 * (lo + hi)))
    return dt if np.isclose(tau * np.exp(-dt / tau) / dt, r, rtol=1e-6) else None
