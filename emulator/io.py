"""One HDF5 file per integer network: ``save_network(path, net)`` / ``load_network(path)``.

Layout (format version 1)::

    /                      attrs: format = "spikeport-network", format_version = 1, metadata = JSON
    /inputs/000, 001, ...  one HDF5 group per InputGroup, in order
    /groups/000, ...       one per neuron group (LIFGroup, TernaryLIFGroup, SigmaDeltaGroup)
    /connections/000, ...  one per Connection

Each record's HDF5 group has attrs ``type`` (the record class name) and ``fields`` (JSON of its scalar
fields, so ints stay ints and floats stay floats), one dataset per array field (dtype kept), and
``none_fields`` (JSON list) for fields that are ``None`` (e.g. ``delays``). Sparse connection weights
(:class:`~spikeport.emulator.sparse_weights.SparseWeights`) are an HDF5 group ``weights`` with attrs
``type = "SparseWeights"`` and ``shape`` (JSON) and datasets ``indptr``, ``indices``, ``data``
(format_version 2; version-1 files, all dense, read unchanged). Loading rebuilds the
records, so every record validates again; a field missing from an older file takes its default (e.g.
``LIFGroup.max_spikes`` = 1). The file is written to a temporary file in the same folder, fsynced
and renamed into place with the user's umask (:mod:`spikeport.emulator.atomic`): a failed save leaves
nothing half-written.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
from spikeport.emulator.atomic import atomic_path
from spikeport.emulator.errors import SpikeportError, ValidationError
from spikeport.emulator.network import (
    Connection,
    InputGroup,
    LIFGroup,
    Network,
    SigmaDeltaGroup,
    TernaryLIFGroup,
)
from spikeport.emulator.psn import PSNGroup
from spikeport.emulator.sparse_weights import SparseWeights

FORMAT = "spikeport-network"
FORMAT_VERSION = 2  # 2: sparse connection weights (a version-1 file reads unchanged)
RECORD_TYPES: dict[str, type] = {
    t.__name__: t for t in (InputGroup, LIFGroup, TernaryLIFGroup, SigmaDeltaGroup, PSNGroup, Connection)
}
_SECTIONS = ("inputs", "groups", "connections")


def _h5py() -> Any:
    import h5py

    return h5py


#: arrays of at least this many entries are stored compressed
COMPRESS_MIN_SIZE = 4096


def _storage(value: np.ndarray) -> dict[str, Any]:
    """HDF5 dataset options: large arrays (lowered convolutions are mostly zeros) gzip-compressed with
    byte shuffling (a 97%-zero int64 weight matrix shrinks ~50x); small ones stored plain."""
    if value.size < COMPRESS_MIN_SIZE or value.dtype.kind not in "biuf":
        return {}
    return {"compression": "gzip", "compression_opts": 1, "shuffle": True}


def _write_sparse(grp: Any, name: str, sw: SparseWeights) -> None:
    sub = grp.create_group(name)
    sub.attrs["type"] = "SparseWeights"
    sub.attrs["shape"] = json.dumps(list(sw.shape))
    small = sw.shape[1] < (1 << 31)
    for key, arr in (
        ("indptr", sw.indptr),
        ("indices", sw.indices.astype(np.int32) if small else sw.indices),
    ):
        sub.create_dataset(key, data=arr, **_storage(arr))
    data = sw.data
    sub.attrs["data_dtype"] = data.dtype.str  # restored on reading
    if data.dtype.kind in "iu" and data.size and data.min() >= -(1 << 15) and data.max() < (1 << 15):
        data = data.astype(np.int16)  # integer mantissas (|w| <= 256): a quarter of int64's bytes
    sub.create_dataset("data", data=data, **_storage(data))


def _read_sparse(node: Any, h5py: Any, where: str) -> SparseWeights:
    shape = _json_attr(node, "shape", where, list)
    arrays = {}
    for key in ("indptr", "indices", "data"):
        if key not in node or not isinstance(node[key], h5py.Dataset):
            raise ValidationError(f"{where}/{key}: missing dataset")
        arrays[key] = node[key][()]
    want = node.attrs.get("data_dtype")
    if want is not None:
        try:
            arrays["data"] = arrays["data"].astype(
                np.dtype(want.decode() if isinstance(want, bytes) else str(want))
            )
        except TypeError:
            raise ValidationError(f"{where}: attribute 'data_dtype' is not a dtype (got {want!r})") from None
    if len(shape) != 2 or not all(isinstance(v, int) for v in shape):
        raise ValidationError(f"{where}: attribute 'shape' must be two integers (got {shape})")
    return SparseWeights(shape=(shape[0], shape[1]), **arrays)


def _write_record(h5: Any, where: str, rec: Any) -> None:
    grp = h5.create_group(where)
    grp.attrs["type"] = type(rec).__name__
    scalars: dict[str, Any] = {}
    nones: list[str] = []
    for f in dataclasses.fields(rec):
        value = getattr(rec, f.name)
        if value is None:
            nones.append(f.name)
        elif isinstance(value, SparseWeights):
            _write_sparse(grp, f.name, value)
        elif isinstance(value, np.ndarray):
            grp.create_dataset(f.name, data=value, **_storage(value))
        elif isinstance(value, np.generic):
            scalars[f.name] = value.item()
        else:
            scalars[f.name] = value
    grp.attrs["fields"] = json.dumps(scalars)
    grp.attrs["none_fields"] = json.dumps(nones)


def save_network(path: str | Path, net: Network) -> None:
    """Write ``net`` to ``path`` (HDF5), atomically (temporary file + rename)."""
    if not isinstance(net, Network):
        raise ValidationError(f"save_network.net: must be a Network (got {type(net).__name__})")
    try:
        meta = json.dumps(dict(net.metadata))
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"Network.metadata: must be JSON-serializable (got error {exc})") from None
    h5py = _h5py()
    with atomic_path(path, obj="save_network", field="path") as tmp, h5py.File(tmp, "w") as h5:
        h5.attrs["format"] = FORMAT
        h5.attrs["format_version"] = FORMAT_VERSION
        h5.attrs["metadata"] = meta
        for section, records in zip(_SECTIONS, (net.inputs, net.groups, net.connections), strict=True):
            h5.create_group(section)
            for i, rec in enumerate(records):
                _write_record(h5, f"{section}/{i:03d}", rec)


def _attr(node: Any, name: str, where: str) -> Any:
    if name not in node.attrs:
        raise ValidationError(f"{where}: missing attribute {name!r}")
    value = node.attrs[name]
    return value.decode() if isinstance(value, bytes) else value


def _json_attr(node: Any, name: str, where: str, kind: type) -> Any:
    raw = _attr(node, name, where)
    try:
        value = json.loads(str(raw))
    except json.JSONDecodeError:
        raise ValidationError(f"{where}: attribute {name!r} is not valid JSON") from None
    if not isinstance(value, kind):
        raise ValidationError(f"{where}: attribute {name!r} must hold a JSON {kind.__name__}")
    return value


def _read_field(ds: Any, h5py: Any, where: str) -> Any:
    """An array field: a dataset, or a sparse matrix's group."""
    if isinstance(ds, h5py.Group) and ds.attrs.get("type") in ("SparseWeights", b"SparseWeights"):
        return _read_sparse(ds, h5py, where)
    if not isinstance(ds, h5py.Dataset):
        raise ValidationError(f"{where}: must be a dataset")
    return ds[()]


def _read_record(h5: Any, h5py: Any, where: str) -> Any:
    node = h5[where]
    if not isinstance(node, h5py.Group):
        raise ValidationError(f"{where}: must be an HDF5 group")
    tname = str(_attr(node, "type", where))
    cls = RECORD_TYPES.get(tname)
    if cls is None:
        raise ValidationError(f"{where}: unknown record type {tname!r} (known: {sorted(RECORD_TYPES)})")
    kwargs: dict[str, Any] = dict(_json_attr(node, "fields", where, dict))
    nones = _json_attr(node, "none_fields", where, list)
    for f in dataclasses.fields(cls):
        if f.name in kwargs or f.name in nones:
            if f.name in nones:
                kwargs[f.name] = None
            continue
        if f.name not in node:
            if f.default is not dataclasses.MISSING:
                continue
            raise ValidationError(f"{where}/{f.name}: missing dataset")
        kwargs[f.name] = _read_field(node[f.name], h5py, f"{where}/{f.name}")
    unknown = sorted(set(kwargs) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ValidationError(f"{where}: unknown field(s) {unknown} for {tname}")
    try:
        return cls(**kwargs)
    except SpikeportError as exc:
        raise ValidationError(f"{where}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{where}: cannot build {tname} ({exc})") from None


def load_network(path: str | Path) -> Network:
    """Read a network written by :func:`save_network`; every record is validated again.

    Raises ``ValidationError`` naming the file and the dataset for a missing, corrupt, truncated or
    malformed file.
    """
    path = Path(path)
    h5py = _h5py()
    if not path.is_file():
        raise ValidationError(f"{path}: no such file")
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise ValidationError(f"{path}: not a readable HDF5 file ({exc})") from None
    try:
        with h5:
            return _read_network(h5, h5py, path)
    except ValidationError as exc:
        msg = str(exc)
        raise ValidationError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None
    except (OSError, KeyError, RuntimeError) as exc:
        raise ValidationError(f"{path}: corrupt or truncated file ({exc})") from None


def _read_network(h5: Any, h5py: Any, path: Path) -> Network:
    if _attr(h5, "format", "/") != FORMAT:
        raise ValidationError(f"/: attribute 'format' must be {FORMAT!r}")
    version = int(_attr(h5, "format_version", "/"))
    if version > FORMAT_VERSION:
        raise ValidationError(f"/: format_version {version} is newer than supported ({FORMAT_VERSION})")
    metadata = _json_attr(h5, "metadata", "/", dict)
    parts: dict[str, list[Any]] = {}
    for section in _SECTIONS:
        if section not in h5 or not isinstance(h5[section], h5py.Group):
            raise ValidationError(f"/{section}: missing group")
        parts[section] = [_read_record(h5, h5py, f"{section}/{k}") for k in sorted(h5[section].keys())]
    try:
        return Network(
            inputs=tuple(parts["inputs"]),
            groups=tuple(parts["groups"]),
            connections=tuple(parts["connections"]),
            metadata=metadata,
        )
    except SpikeportError as exc:
        raise ValidationError(f"/: {exc}") from None
