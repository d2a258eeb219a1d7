"""A run's arrays written a chunk of samples at a time (``spikeport run --stream B``), atomically.

::

    with streamed_arrays("OUT", fmt="npy-dir", batch=100_000, casts={"h/spikes": np.int32}) as sink:
        for start, stop in chunks:
            sink.write(start, {"h/spikes": spikes_of_chunk, ...})   # arrays (stop - start, T, n)
        sink.metadata = {...}

The first :meth:`ChunkSink.write` fixes each array's shape ``(batch, T, n)`` and dtype and preallocates
it: an ``npy-dir`` file (``np.lib.format.open_memmap`` writes the header and sizes the file, then each
chunk is written at its offset with plain file writes: no mapping stays open, so written pages count
as page cache, not as the process's memory) or an ``h5`` dataset written by slices. Memory stays that
of one chunk whatever the batch. All or nothing, as :mod:`spikeport.emulator.result_files`: everything
goes to a temporary next to the target, renamed into place only when every sample was written (an
error or Ctrl-C leaves the target as it was). Read back with ``load_result``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from spikeport.emulator.errors import UnsupportedError, field_error
from spikeport.emulator.result_files import DIR_MARKER, METADATA_KEY, Casts, atomic_folder

STREAM_FORMATS = ("h5", "npy-dir")


class ChunkSink:
    """The open outputs of a streamed run (see the module docstring); made by :func:`streamed_arrays`."""

    def __init__(self, tmp: Path, fmt: str, batch: int, casts: Casts, obj: str) -> None:
        self._tmp, self._fmt, self._batch, self._casts, self._obj = tmp, fmt, batch, dict(casts), obj
        self._files: dict[str, Any] = {}  # name -> (open file, data offset, row bytes, dtype, row shape)
        self._h5: Any = None
        self._written = 0
        self.metadata: Mapping[str, Any] = {}

    def _open(self, arrays: Mapping[str, np.ndarray]) -> None:
        if self._fmt == "h5":
            import h5py

            self._h5 = h5py.File(self._tmp, "w")
        for name, arr in arrays.items():
            parts = name.split("/")
            if METADATA_KEY in parts or any(p in ("", ".", "..") or "\\" in p for p in parts):
                raise field_error(self._obj, "outputs", "array names must be plain 'group/variable'", name)
            dtype = np.dtype(self._casts.get(name, arr.dtype))
            shape = (self._batch, *arr.shape[1:])
            if self._h5 is not None:
                self._h5.create_dataset(name, shape=shape, dtype=dtype)
                self._files[name] = (None, 0, 0, dtype, arr.shape[1:])
                continue
            target = self._tmp.joinpath(*parts[:-1], f"{parts[-1]}.npy")
            target.parent.mkdir(parents=True, exist_ok=True)
            mm = np.lib.format.open_memmap(target, mode="w+", dtype=dtype, shape=shape)
            offset = int(mm.offset)
            del mm  # header written, file sized (sparse); chunks are written at their offsets
            row = int(np.prod(arr.shape[1:], dtype=np.int64)) * dtype.itemsize
            fp = open(target, "r+b")  # noqa: SIM115 - kept open across chunks, closed by close()
            self._files[name] = (fp, offset, row, dtype, arr.shape[1:])

    def write(self, start: int, arrays: Mapping[str, np.ndarray], casts: Casts | None = None) -> None:
        """Samples ``start : start + len`` of every array (the same names and per-sample shapes in every
        chunk; chunks in any order, each sample once). ``casts`` (array name -> dtype written), given
        with the first chunk, adds to those of :func:`streamed_arrays`."""
        if not self._files:
            self._casts.update(casts or {})
            self._open(arrays)
        if set(arrays) != set(self._files):
            raise field_error(self._obj, "outputs", "every chunk must hold the same arrays", sorted(arrays))
        count = 0
        for name, arr in arrays.items():
            fp, offset, row, dtype, shape = self._files[name]
            if arr.shape[1:] != shape or start < 0 or start + arr.shape[0] > self._batch:
                raise field_error(self._obj, name, f"chunk does not fit ({self._batch}, *{shape})", arr.shape)
            data = np.ascontiguousarray(arr, dtype=dtype)
            count = arr.shape[0]
            if fp is None:
                self._h5[name][start : start + count] = data
            else:
                fp.seek(offset + start * row)
                fp.write(data.data.cast("B"))
        self._written += count

    def close(self, complete: bool) -> None:
        """Close every file; with ``complete``, check that every sample was written, write the metadata."""
        meta = json.dumps(dict(self.metadata), default=str)
        try:
            if complete and self._written != self._batch:
                raise field_error(self._obj, "outputs", f"{self._batch} samples expected", self._written)
            if complete and self._h5 is not None:
                self._h5.attrs[METADATA_KEY] = meta
            elif complete:
                (self._tmp / DIR_MARKER).write_text(meta)
        finally:
            for fp, *_ in self._files.values():
                if fp is not None:
                    fp.close()
            if self._h5 is not None:
                self._h5.close()


@contextmanager
def streamed_arrays(
    path: str | Path, *, fmt: str, batch: int, casts: Casts | None = None, obj: str = "--output"
) -> Iterator[ChunkSink]:
    """A :class:`ChunkSink` writing ``batch`` samples to ``path`` in format ``fmt`` (``h5`` or
    ``npy-dir``), renamed into place when the block ends without error (module docstring)."""
    from spikeport.emulator.atomic import atomic_path

    if fmt not in STREAM_FORMATS:
        raise UnsupportedError(
            f"{obj}.format: streaming writes {' or '.join(STREAM_FORMATS)} (a .npz is written whole) (got {fmt!r})"
        )
    if fmt == "npy-dir":
        with atomic_folder(path, obj=obj, field="path") as tmp:
            yield from _sink(tmp, fmt, batch, casts or {}, obj)
        return
    with atomic_path(path, obj=obj, field="path") as tmp:
        yield from _sink(tmp, fmt, batch, casts or {}, obj)


def _sink(tmp: Path, fmt: str, batch: int, casts: Casts, obj: str) -> Iterator[ChunkSink]:
    sink = ChunkSink(tmp, fmt, batch, casts, obj)
    try:
        yield sink
    except BaseException:
        sink.close(complete=False)
        raise
    sink.close(complete=True)
