"""The files every command reads and writes: one loading path for input arrays, one check of outputs.

Not a command module (nothing registers here); numpy, h5py and the loaders are imported inside the
functions. Every failure is a :class:`ValidationError` worded ``object.field: rule (got value)`` in the
user's terms: the object is the option or file the user typed (``--input``, ``x.npy``), never a temporary
file or an internal function.

- :func:`read_arrays`: a ``.npy`` array or an ``.npz`` of named arrays, read without pickle; refuses
  missing files, folders, files that are not NumPy files, truncated files and object arrays before
  loading them (the header says the size), and turns ``(T, B, ...)`` into ``(B, T, ...)`` under
  ``--time-first``.
- :func:`float_inputs` (NIR models: float run, calibration, compare) and :func:`network_inputs`
  (integer networks: run, energy) validate the values with the one validator of each layer
  (:func:`spikeport.quantize.graph.inputs.graph_inputs`, :func:`spikeport.emulator.inputs.network_inputs`),
  naming the file; an integer network also takes the model's natural shape ``(B, T, C, H, W)``.
- :func:`check_outputs`: every output's folder exists, no output is a folder, and no output is one of
  the command's inputs (or another output), before any work is done.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from spikeport.emulator.errors import ValidationError

_OBJECT_RULE = "must hold numbers, not Python objects (object arrays are never unpickled)"


def _same(a: str | Path, b: str | Path) -> bool:
    pa, pb = Path(a), Path(b)
    try:
        if pa.exists() and pb.exists():
            return os.path.samefile(pa, pb)
    except OSError:
        return False
    return pa.resolve() == pb.resolve()


def check_outputs(outputs: Mapping[str, str | None], inputs: Sequence[str | None]) -> None:
    """Refuse, before any work: an output that is a folder or lies in a missing folder, an output that
    is one of ``inputs`` (it would be destroyed), two options naming one file."""
    from spikeport.emulator.atomic import check_target

    given = [(opt, p) for opt, p in outputs.items() if p and p != "-"]
    for i, (opt, path) in enumerate(given):
        check_target(path, obj=opt, field="path")
        for src in inputs:
            if src and _same(path, src):
                raise ValidationError(f"{opt}.path: must not be one of the inputs (got {path!r})")
        for other, path2 in given[i + 1 :]:
            if _same(path, path2):
                raise ValidationError(f"{other}.path: must differ from {opt} (got {path2!r})")


def _npy_header(path: Path, option: str) -> None:
    """Refuse object dtypes and truncated files from the ``.npy`` header, before reading the data."""
    import numpy as np

    fmt = np.lib.format
    size = path.stat().st_size
    try:
        with open(path, "rb") as f:
            version = fmt.read_magic(f)
            read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, _fortran, dtype = read(f)  # type: ignore[operator]
            offset = f.tell()
    except (ValueError, OSError, EOFError, SyntaxError, TypeError) as exc:
        raise ValidationError(
            f"{option}: must be a .npy or .npz file ({_reason(exc)}) (got {str(path)!r})"
        ) from None
    if dtype.hasobject:
        raise ValidationError(f"{option}: {_OBJECT_RULE} (got {str(path)!r})")
    need = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    if need > size - offset:
        raise ValidationError(
            f"{option}: file is truncated: header says {shape} {dtype} ({need} bytes), "
            f"{size - offset} bytes follow (got {str(path)!r})"
        )


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:120]


def _load(path: Path, option: str) -> Any:
    import numpy as np

    with open(path, "rb") as f:
        magic = f.read(6)
    if magic == b"\x93NUMPY":
        _npy_header(path, option)
    elif not magic.startswith(b"PK"):
        raise ValidationError(f"{option}: must be a .npy or .npz file (got {str(path)!r})")
    with open(path, "rb") as f:  # our handle: numpy leaves its own open when a .npz is corrupt
        loaded = np.load(f, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return loaded
        with loaded:
            if not loaded.files:
                raise ValidationError(f"{option}: the .npz file holds no arrays (got {str(path)!r})")
            return {k: loaded[k] for k in loaded.files}


def read_arrays(path: str, *, option: str = "--input", time_first: bool = False) -> Any:
    """An array from ``.npy`` or ``{name: array}`` from ``.npz`` (see the module docstring)."""
    p = Path(path)
    if not p.is_file():
        rule = "must be a file, not a folder" if p.is_dir() else "no such file"
        raise ValidationError(f"{option}: {rule} (got {path!r})")
    try:
        data = _load(p, option)
    except ValidationError:
        raise
    except MemoryError:
        raise ValidationError(f"{option}: the array does not fit in memory (got {path!r})") from None
    except Exception as exc:  # numpy/zipfile raise assorted errors on corrupt files
        rule = (
            _OBJECT_RULE if "Object arrays" in str(exc) else f"must be a .npy or .npz file ({_reason(exc)})"
        )
        raise ValidationError(f"{option}: {rule} (got {path!r})") from None
    return swap_time_first(data) if time_first else data


class ArrayRows:
    """A ``.npy`` input read a few samples at a time (``spikeport run --stream``): the header is checked
    as :func:`read_arrays` does; :meth:`rows` maps the file, copies samples ``start:stop`` (axis 1 of the
    file under ``--time-first``) and unmaps it, so memory holds one chunk whatever the file's size."""

    def __init__(self, path: str, *, option: str = "--input", time_first: bool = False) -> None:
        p = Path(path)
        if not p.is_file():
            rule = "must be a file, not a folder" if p.is_dir() else "no such file"
            raise ValidationError(f"{option}: {rule} (got {path!r})")
        with open(p, "rb") as f:
            magic = f.read(6)
        if magic != b"\x93NUMPY":
            raise ValidationError(f"{option}: streaming reads one .npy array, not a .npz (got {path!r})")
        _npy_header(p, option)
        self.path, self.time_first = p, time_first
        self.shape = self._map().shape
        if time_first and len(self.shape) >= 3:
            self.shape = (self.shape[1], self.shape[0], *self.shape[2:])

    def _map(self) -> Any:
        import numpy as np

        return np.load(self.path, mmap_mode="r", allow_pickle=False)

    def rows(self, start: int, stop: int) -> Any:
        import numpy as np

        mapped = self._map()
        view = swap_time_first(mapped) if self.time_first else mapped
        out = np.array(view[start:stop])
        del view, mapped  # unmapped: the pages read leave the process
        return out


def swap_time_first(data: Any) -> Any:
    """``(T, B, ...)`` -> ``(B, T, ...)`` for every array of three or more dimensions."""
    import numpy as np

    if isinstance(data, Mapping):
        return {k: swap_time_first(v) for k, v in data.items()}
    arr = np.asarray(data)
    return np.swapaxes(arr, 0, 1) if arr.ndim >= 3 else arr


def float_inputs(graph: Any, data: Any, *, path: str, require_all: bool = True) -> dict[str, Any]:
    """``{Input: (B, T, n)}`` for a NIR graph, validated by :func:`graph_inputs`, errors naming ``path``."""
    from spikeport.quantize.graph.flatten import FlatGraph, flatten_graph
    from spikeport.quantize.graph.inputs import graph_inputs

    flat = graph if isinstance(graph, FlatGraph) else flatten_graph(graph)
    shapes = {name: flat.nodes[name].out_shape for name in flat.inputs}
    return graph_inputs(shapes, data, caller=path, require_all=require_all)


def _natural(arr: Any, n: int) -> Any:
    """``(B, T, *shape)`` or ``(T, *shape)`` with ``prod(shape) == n`` -> ``(B, T, n)`` / ``(T, n)``."""
    import numpy as np

    a = np.asarray(arr)
    if a.ndim > 3 and int(np.prod(a.shape[2:])) == n:
        return a.reshape(*a.shape[:2], n)
    if a.ndim >= 3 and a.shape[-1] != n and int(np.prod(a.shape[1:])) == n:
        return a.reshape(a.shape[0], n)
    return a


def network_inputs(net: Any, data: Any, *, path: str, mode: str = "fixed") -> dict[str, Any]:
    """``{input group: (B, T, n)}`` for an integer network, validated by the emulator's
    :func:`~spikeport.emulator.inputs.network_inputs`, errors naming ``path``."""
    from spikeport.emulator.inputs import network_inputs as validate

    sizes = {g.name: int(g.n) for g in net.inputs}
    if isinstance(data, Mapping):
        data = {k: _natural(v, sizes[k]) if k in sizes else v for k, v in data.items()}
    elif len(sizes) == 1:
        data = _natural(data, next(iter(sizes.values())))
    return validate(net, data, caller=path, mode=mode, cast=False)


def load_network(path: str, *, option: str = "NET") -> Any:
    """The integer network in ``path``; a NIR model given instead is named as such."""
    from spikeport.emulator.io import load_network as _load_network

    if not Path(path).is_file():
        raise ValidationError(f"{option}: no such file (got {path!r})")
    from spikeport.netx.summary import is_netx

    if is_netx(path):  # a lava-dl netx file, read as netx loads it by default
        from spikeport.netx.read import read_netx

        return read_netx(path)
    try:
        return _load_network(path)
    except ValidationError:
        if is_nir(path):
            raise ValidationError(
                f"{option}: must be an integer network (.h5 from spikeport quantize), "
                f"not a NIR model (got {path!r})"
            ) from None
        raise


def is_nir(path: str) -> bool:
    """``path`` is an HDF5 file laid out as NIR (a ``node`` group, no spikeport network format)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return "node" in f and "format" not in f.attrs
    except (OSError, ValueError):
        return False


def load_model(path: str, *, option: str = "MODEL") -> Any:
    """``(graph, stored semantics)`` from a NIR file."""
    from spikeport.nir.io import read_nir

    if not Path(path).is_file():
        raise ValidationError(f"{option}: no such file (got {path!r})")
    return read_nir(path)


def model_semantics(args: Any, graph: Any, stored: Any) -> tuple[Any, dict[str, str]]:
    """The Semantics a command runs a NIR model under, and where they came from.

    ``--semantics NAME`` wins (source ``given``); without it the file's stored semantics (``stored``),
    else :func:`spikeport.nir.io.suggest_convention` (``suggested``), with any per-field option applied
    on top. The second value is ``{"source", "convention", "reason"}``, for the metadata and for
    :func:`semantics_line`.
    """
    from spikeport.nir.semantics_args import semantics_from_args
    from spikeport.quantize.semantics import semantics

    if getattr(args, "semantics", None):
        sem = semantics_from_args(args) or semantics(args.semantics)
        return sem, {"source": "given", "convention": sem.convention, "reason": "--semantics"}
    if stored is not None:
        why = "stored in the file's metadata (spikeport.semantics)"
        return semantics_from_args(args, default=stored), {
            "source": "stored", "convention": stored.convention, "reason": why,
        }  # fmt: skip
    from spikeport.nir.io import suggest_convention

    name, why = suggest_convention(graph)
    sem = semantics_from_args(args, default=semantics(name)) or semantics(name)
    return sem, {"source": "suggested", "convention": name, "reason": why}


def semantics_line(origin: dict[str, str], args: Any) -> str | None:
    """The one stderr line naming the semantics used and why (``None`` when ``--semantics`` was given)."""
    from spikeport.nir.semantics_args import FIELDS

    if origin["source"] == "given":
        return None
    label = "stored in the file" if origin["source"] == "stored" else f"suggested: {origin['reason']}"
    over = [f"--{k.replace('_', '-')}" for k in FIELDS if getattr(args, k, None) is not None]
    extra = f"; with {' '.join(over)}" if over else ""
    return f"semantics: {origin['convention']} ({label}{extra}; override with --semantics)"
