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

import argparse
import copy
import json
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import nir
import numpy as np
from spikeport.emulator.errors import SpikeportError, ValidationError
from spikeport.quantize.graph.flatten import NEURON_TYPES, flatten_graph, scalar_int
from spikeport.quantize.semantics import CONVENTIONS, Semantics
from spikeport.quantize.semantics import semantics as make_semantics

METADATA_KEY = "spikeport.semantics"


class NIRFileError(SpikeportError, ValueError):
    """A NIR file cannot be read: not HDF5, truncated, or missing/malformed datasets."""


class NIRRepairWarning(UserWarning):
    """A NIR file loaded only after a repair (the message says which)."""


# ---- reading ----------------------------------------------------------------------------------------
_REQ: dict[str, tuple[str, ...]] = {
    "Input": ("shape",),
    "Output": ("shape",),
    "Affine": ("weight", "bias"),
    "Linear": ("weight",),
    "Scale": ("scale",),
    "Conv1d": ("weight",),
    "Conv2d": ("weight",),
    "SumPool2d": ("kernel_size", "stride"),
    "AvgPool2d": ("kernel_size", "stride"),
    "Flatten": (),
    "Delay": ("delay",),
    "Threshold": ("threshold",),
    "I": ("r",),
    "IF": ("r", "v_threshold"),
    "LI": ("tau", "r", "v_leak"),
    "LIF": ("tau", "r", "v_leak", "v_threshold"),
    "CubaLI": ("tau_syn", "tau_mem", "r", "v_leak"),
    "CubaLIF": ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold"),
}


def _const(value: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda d: value


_CONV_DEFAULTS = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1}
# field -> default built from the node's other fields (repairs of legacy files)
_DEFAULTS: dict[str, dict[str, Callable[[dict[str, Any]], Any]]] = {
    "IF": {"v_reset": lambda d: np.zeros_like(d["v_threshold"])},
    "LIF": {"v_reset": lambda d: np.zeros_like(d["v_threshold"])},
    "CubaLIF": {
        "v_reset": lambda d: np.zeros_like(d["v_threshold"]),
        "w_in": lambda d: np.ones_like(d["tau_syn"]),
    },
    "CubaLI": {"w_in": lambda d: np.ones_like(d["tau_syn"])},
    "Conv1d": {
        **{k: _const(v) for k, v in _CONV_DEFAULTS.items()},
        "bias": lambda d: np.zeros(np.asarray(d["weight"]).shape[0], np.asarray(d["weight"]).dtype),
    },
    "SumPool2d": {"padding": lambda d: np.zeros(2, np.int64)},
    "AvgPool2d": {"padding": lambda d: np.zeros(2, np.int64)},
    "Flatten": {"start_dim": lambda d: 1, "end_dim": lambda d: -1},
}
_DEFAULTS["Conv2d"] = _DEFAULTS["Conv1d"]
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
    if kind not in _REQ:
        from spikeport.quantize.graph.flatten import SUPPORTED_TYPES, UnsupportedNodeError

        raise UnsupportedNodeError(
            f"{name}: unsupported node type {kind}; supported: {', '.join(SUPPORTED_TYPES)}"
        )
    fields = {k: v for k, v in d.items() if k != "type"}
    for req in _REQ[kind]:
        if req not in fields:
            raise NIRFileError(f"{name} ({kind}): missing dataset {req!r}")
    for key, default in _DEFAULTS.get(kind, {}).items():
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


# ---- writing ----------------------------------------------------------------------------------------
def write_nir(path: str | Path, graph: nir.NIRGraph, semantics: Semantics | None = None) -> None:
    """Write ``graph`` to ``path`` with ``semantics`` stored under metadata key ``spikeport.semantics``."""
    meta = dict(graph.metadata or {})
    if semantics is not None:
        meta[METADATA_KEY] = json.dumps(semantics.to_dict(), sort_keys=True)
    out = nir.NIRGraph(nodes=graph.nodes, edges=list(graph.edges), metadata=meta, type_check=False)
    try:
        nir.write(str(path), out)
    except OSError as exc:
        raise NIRFileError(f"{path}: cannot write ({exc})") from None


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
    """Best guess of the convention of ``graph`` and why (stored semantics win)."""
    stored = semantics_from_metadata(graph.metadata)
    if stored is not None:
        return stored.convention, "stored in the file's metadata (spikeport.semantics)"
    flat = flatten_graph(graph)
    pairs = []
    for fn in flat:
        if fn.kind in NEURON_TYPES and fn.kind not in ("I", "IF"):
            tau = np.asarray(fn.node.tau_mem if fn.kind.startswith("Cuba") else fn.node.tau, np.float64)
            pairs.append((tau, np.asarray(fn.node.r, np.float64)))
    if not pairs:
        return "nir", "no leaky neurons to read a time step from; plain NIR semantics"
    if all(np.allclose(r, tau / 1e-4, rtol=1e-5) for tau, r in pairs):
        return (
            "snntorch",
            "r = tau/dt with dt = 1e-4 on every neuron: snnTorch's export (reset mode not stored)",
        )
    if all(np.all(r == 1.0) for _, r in pairs):
        return "norse", "r == 1 on every neuron: Norse's export (dt = 1e-3)"
    return "nir", "no framework's parameter pattern recognized; plain NIR semantics"


# ---- command line -----------------------------------------------------------------------------------
def add_semantics_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--semantics NAME`` and one option per Semantics field to ``parser``."""
    g = parser.add_argument_group("semantics (override what the NIR file leaves unsaid)")
    g.add_argument("--semantics", choices=sorted(CONVENTIONS), help="named convention")
    g.add_argument("--dt", type=float, help="time step in seconds")
    g.add_argument("--integration", choices=("euler", "exp"))
    g.add_argument("--reset", choices=("zero", "subtract", "none"))
    g.add_argument("--reset-timing", choices=("same_step", "next_step", "next_step_hold", "same_step_lagged"))
    g.add_argument("--threshold", choices=(">", ">="))
    g.add_argument("--multi-spike", action=argparse.BooleanOptionalAction, default=None)
    g.add_argument("--spike-amplitude", type=float)
    g.add_argument("--recurrent-delay", type=int)
    g.add_argument("--synaptic-input", choices=("euler", "jump"))
    g.add_argument("--arithmetic", choices=("decay", "increment"))
    g.add_argument("--initial-v", choices=("zero", "leak"))


_FIELDS = (
    "dt", "integration", "reset", "reset_timing", "threshold", "multi_spike",
    "spike_amplitude", "recurrent_delay", "synaptic_input", "arithmetic", "initial_v",
)  # fmt: skip


def semantics_from_args(args: argparse.Namespace, default: Semantics | None = None) -> Semantics | None:
    """``--semantics`` (else ``default``, e.g. the file's stored semantics) with the overrides applied.

    Returns ``None`` when neither a convention nor a default nor any override was given.
    """
    overrides = {k: getattr(args, k, None) for k in _FIELDS}
    name = getattr(args, "semantics", None)
    base: Semantics | str | None = name or default
    if base is None:
        if all(v is None for v in overrides.values()):
            return None
        base = "nir"
    return make_semantics(base, **overrides)
