"""A run's arrays on disk, in the format the user picks; every write atomic, every format read back.

Formats (:data:`FORMATS`), each holding one array per ``<group>/<variable>`` plus the metadata (JSON):

- ``npz`` (default): a ``.npz`` archive without compression, written at disk speed; ``np.load`` reads it.
- ``npz-compressed``: the same archive, deflated at zlib level 1 (spike trains shrink 10-30x, at a few
  hundred MB/s; level 6, numpy's default, is several times slower for little gain).
- ``h5``: an HDF5 file, one dataset per array (``f["g/spikes"]``), the metadata in the root attribute
  ``__metadata__``; ``h5py`` reads slices without loading the whole array.
- ``npy-dir``: a folder with one ``.npy`` per array (``OUT/g/spikes.npy``) and ``__metadata__.json``;
  ``np.load(..., mmap_mode="r")`` maps an array without reading it.

Atomic: a file is written to a temporary next to it and renamed into place
(:func:`spikeport.emulator.atomic.atomic_path`); a folder is written to a temporary folder, fsynced, and
renamed into place (a previous ``npy-dir`` output there is swapped out, then removed). A folder that is not
a previous ``npy-dir`` output is never replaced. :func:`load_arrays` (and
``spikeport.emulator.result.load_result``) reads any of the formats back.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from spikeport.emulator.errors import ValidationError, field_error

FORMATS = ("npz", "npz-compressed", "h5", "npy-dir")
METADATA_KEY = "__metadata__"
DIR_MARKER = f"{METADATA_KEY}.json"
ZIP_LEVEL = 1
CHUNK_BYTES = 32 << 20  # a cast is written this many bytes at a time (no full-size copy)
Casts = Mapping[str, Any]  # array name -> dtype it is written as


def _slices(arr: np.ndarray, dtype: np.dtype) -> Iterator[slice]:
    """Slices along axis 0 of about :data:`CHUNK_BYTES` each once cast to ``dtype``."""
    row = max(1, int(np.prod(arr.shape[1:], dtype=np.int64)) * dtype.itemsize)
    step = max(1, CHUNK_BYTES // row)
    for start in range(0, arr.shape[0], step):
        yield slice(start, start + step)


def write_npy(fp: Any, arr: np.ndarray, dtype: Any = None) -> None:
    """``np.save``'s format to the open file ``fp``; ``dtype`` casts the values on the way, a chunk at a
    time (the same bytes as ``np.save(fp, arr.astype(dtype))``, without the full-size copy)."""
    arr = np.asanyarray(arr)
    want = np.dtype(dtype) if dtype is not None else arr.dtype
    if want == arr.dtype or arr.ndim == 0 or want.hasobject:
        np.lib.format.write_array(fp, arr, allow_pickle=False)
        return
    header = {"descr": np.lib.format.dtype_to_descr(want), "fortran_order": False, "shape": arr.shape}
    np.lib.format.write_array_header_1_0(fp, header)
    for sl in _slices(arr, want):
        fp.write(np.ascontiguousarray(arr[sl], dtype=want).data.cast("B"))


def _key_parts(key: str) -> list[str]:
    parts = key.split("/")
    if any(p in ("", ".", "..") or "\\" in p or "\0" in p for p in parts):
        raise field_error("RunResult.save", "outputs", "array names must be plain 'group/variable'", key)
    return parts


def write_npz(path: Path, arrays: Mapping[str, np.ndarray], *, compress: bool, casts: Casts) -> None:
    """``np.savez``'s format (deflated at level :data:`ZIP_LEVEL` with ``compress``), written member by
    member inside ``with`` blocks: an interrupt (Ctrl-C) mid-write closes the archive cleanly."""
    import zipfile

    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    level = ZIP_LEVEL if compress else None
    with zipfile.ZipFile(path, "w", compression=method, compresslevel=level, allowZip64=True) as zf:
        for name, arr in arrays.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as member:
                write_npy(member, arr, casts.get(name))


def write_h5(path: Path, arrays: Mapping[str, np.ndarray], metadata: str, casts: Casts) -> None:
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs[METADATA_KEY] = metadata
        for name, arr in arrays.items():
            _key_parts(name)
            a = np.asarray(arr)
            want = np.dtype(casts.get(name, a.dtype))
            if want == a.dtype or a.ndim == 0:
                f.create_dataset(name, data=a)
                continue
            ds = f.create_dataset(name, shape=a.shape, dtype=want)
            for sl in _slices(a, want):
                ds[sl] = a[sl].astype(want)


def write_npy_dir(folder: Path, arrays: Mapping[str, np.ndarray], metadata: str, casts: Casts) -> None:
    for name, arr in arrays.items():
        *parents, last = _key_parts(name)
        target = folder.joinpath(*parents, f"{last}.npy")
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as f:
            write_npy(f, arr, casts.get(name))
    (folder / DIR_MARKER).write_text(metadata)


def check_folder_target(path: str | Path, *, obj: str, field: str) -> Path:
    """``path`` as an ``npy-dir`` output: its parent folder exists and is writable, and it is either
    absent or a previous ``npy-dir`` output (holding ``__metadata__.json``), never a file or another
    folder."""
    target = Path(path)
    if str(path) == "":
        raise field_error(obj, field, "must name a folder", str(path))
    if not target.parent.is_dir():
        raise field_error(obj, field, "the folder must exist", str(target.parent))
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise field_error(obj, field, "the folder must be writable", str(target.parent))
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise field_error(obj, field, "must not be an existing file (npy-dir writes a folder)", str(path))
    if target.is_dir() and not (target / DIR_MARKER).is_file():
        raise field_error(
            obj, field, "must be a new folder or a previous npy-dir output (no __metadata__.json)", str(path)
        )
    return target


def _fsync_tree(folder: Path) -> None:
    for root, _dirs, files in os.walk(folder):
        for name in [*files, "."]:
            fd = os.open(Path(root) / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


@contextmanager
def atomic_folder(path: str | Path, *, obj: str, field: str) -> Iterator[Path]:
    """A temporary folder next to ``path``, renamed onto ``path`` when the block succeeds."""
    from spikeport.emulator.atomic import current_umask

    target = check_folder_target(path, obj=obj, field=field)
    tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp"
    tmp.mkdir(mode=0o777 & ~current_umask())
    try:
        yield tmp
        _fsync_tree(tmp)
        old = target.parent / f".{target.name}.{secrets.token_hex(4)}.old"
        if target.is_dir():
            os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ValidationError(
            f"{obj}.{field}: cannot write ({exc.strerror or exc}) (got {str(path)!r})"
        ) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def save_arrays(
    path: str | Path,
    arrays: Mapping[str, np.ndarray],
    metadata: Mapping[str, Any],
    *,
    fmt: str,
    obj: str = "RunResult.save",
    casts: Casts | None = None,
) -> None:
    """Write ``arrays`` and ``metadata`` to ``path`` in format ``fmt`` (module docstring), atomically;
    ``casts`` maps array names to the dtype they are written as (cast chunk by chunk while writing)."""
    casts = dict(casts or {})
    from spikeport.emulator.atomic import atomic_path

    if fmt not in FORMATS:
        raise field_error(obj, "format", f"must be one of {FORMATS}", fmt)
    meta = json.dumps(dict(metadata), default=str)
    if METADATA_KEY in arrays:
        raise field_error(obj, "outputs", f"{METADATA_KEY!r} is reserved for the metadata", METADATA_KEY)
    if fmt == "npy-dir":
        with atomic_folder(path, obj=obj, field="path") as tmp:
            write_npy_dir(tmp, arrays, meta, casts)
        return
    with atomic_path(path, obj=obj, field="path") as tmp:
        if fmt == "h5":
            write_h5(tmp, arrays, meta, casts)
        else:
            arrays = {**arrays, METADATA_KEY: np.array(meta)}
            write_npz(tmp, arrays, compress=fmt == "npz-compressed", casts=casts)


def _h5_arrays(path: Path) -> tuple[dict[str, np.ndarray], str]:
    import h5py

    out: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.update({name: obj[()]}) if isinstance(obj, h5py.Dataset) else None)
        meta = f.attrs.get(METADATA_KEY, "{}")
    return out, meta.decode() if isinstance(meta, bytes) else str(meta)


def _dir_arrays(folder: Path, mmap: bool) -> tuple[dict[str, np.ndarray], str]:
    out = {
        p.relative_to(folder).with_suffix("").as_posix(): np.load(p, mmap_mode="r" if mmap else None)
        for p in sorted(folder.rglob("*.npy"))
    }
    return out, (folder / DIR_MARKER).read_text()


def load_arrays(path: str | Path, *, mmap: bool = False) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``(arrays, metadata)`` from a file or folder written in any of :data:`FORMATS`; ``mmap`` maps an
    ``npy-dir``'s arrays instead of reading them (``spikeport.emulator.result.load_result`` wraps this)."""
    p = Path(path)
    if p.is_dir():
        arrays, meta = _dir_arrays(p, mmap)
    else:
        with open(p, "rb") as f:
            magic = f.read(8)
        if magic == b"\x89HDF\r\n\x1a\n":
            arrays, meta = _h5_arrays(p)
        else:
            with np.load(p, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files if k != METADATA_KEY}
                meta = str(z[METADATA_KEY]) if METADATA_KEY in z.files else "{}"
    return arrays, json.loads(meta)
