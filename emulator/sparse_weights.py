"""A mostly-zero weight matrix held sparse: :class:`SparseWeights`, compressed rows (CSR).

Lowered convolutions and pools are (target.n, source.n) matrices of which a few percent are non-zero
(the NIR paper's N-MNIST CNN: 3 %). :class:`~spikeport.emulator.network.Connection` accepts one of
these records in place of a dense array; the HDF5 file stores its three arrays, the engines run from
them (the dense engine's numpy path through ``scipy.sparse`` products, the compiled loop through a
per-source index list, the event engine from its per-source structures), and what needs a dense
matrix asks :meth:`Connection.dense_weights`, which refuses to build one above :data:`DENSE_LIMIT`
entries.

Row ``j`` (a target neuron) holds ``data[indptr[j]:indptr[j + 1]]`` at the source columns
``indices[indptr[j]:indptr[j + 1]]`` (strictly increasing within a row). Entries are the matrix's
values; a stored zero is allowed and means the same as an absent entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from spikeport.emulator.errors import field_error

#: the most entries (target.n * source.n) :meth:`SparseWeights.to_dense` builds unasked-for
DENSE_LIMIT = 1 << 24


def _frozen(value: Any, dtype: Any = None) -> np.ndarray:
    arr = np.array(value, dtype=dtype, copy=True)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, kw_only=True, eq=False)
class SparseWeights:
    """A (rows, cols) matrix in compressed sparse rows; see the module docstring."""

    shape: tuple[int, int]
    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray

    def __post_init__(self) -> None:
        obj = "SparseWeights"
        shape = tuple(int(s) for s in self.shape)
        if len(shape) != 2 or min(shape) < 0:
            raise field_error(obj, "shape", "must be (rows, cols) with sizes >= 0", self.shape)
        object.__setattr__(self, "shape", shape)
        ptr, idx = _frozen(self.indptr, np.int64), _frozen(self.indices, np.int64)
        data = _frozen(self.data)
        if data.dtype.kind not in "iuf" or data.ndim != 1:
            raise field_error(obj, "data", "must be a 1-D numeric array", data.dtype)
        if ptr.shape != (shape[0] + 1,) or ptr[0] != 0 or np.any(np.diff(ptr) < 0):
            raise field_error(obj, "indptr", f"must rise from 0 with {shape[0] + 1} entries", ptr.shape)
        if idx.shape != data.shape or ptr[-1] != data.size:
            raise field_error(obj, "indices", "must hold one column per entry of data", idx.shape)
        if idx.size and (idx.min() < 0 or idx.max() >= shape[1]):
            raise field_error(obj, "indices", f"must be in [0, {shape[1]})", int(idx.max()))
        rows = np.repeat(np.arange(shape[0], dtype=np.int64), np.diff(ptr))
        if np.any((np.diff(rows) == 0) & (np.diff(idx) <= 0)):
            raise field_error(obj, "indices", "must increase strictly within each row", "repeats")
        object.__setattr__(self, "indptr", ptr)
        object.__setattr__(self, "indices", idx)
        object.__setattr__(self, "data", data)

    # ---------------------------------------------------------------- construction

    @classmethod
    def from_dense(cls, w: Any) -> SparseWeights:
        """The non-zero entries of a dense 2-D array."""
        arr = np.asarray(w)
        if arr.ndim != 2:
            raise field_error("SparseWeights", "from_dense", "needs a 2-D array", arr.shape)
        rows, cols = np.nonzero(arr)
        ptr = np.zeros(arr.shape[0] + 1, np.int64)
        np.cumsum(np.bincount(rows, minlength=arr.shape[0]), out=ptr[1:])
        return cls(
            shape=(int(arr.shape[0]), int(arr.shape[1])), indptr=ptr, indices=cols, data=arr[rows, cols]
        )

    @classmethod
    def from_coo(cls, rows: Any, cols: Any, values: Any, shape: tuple[int, int]) -> SparseWeights:
        """From (row, column, value) triples without repeats (any order)."""
        r, c, v = np.asarray(rows, np.int64), np.asarray(cols, np.int64), np.asarray(values)
        dr = np.diff(r)
        if np.any(dr < 0) or np.any((dr == 0) & (np.diff(c) <= 0)):  # not already by row, then column
            order = np.lexsort((c, r))
            r, c, v = r[order], c[order], v[order]
        if r.size and np.any((np.diff(r) == 0) & (np.diff(c) == 0)):
            raise field_error("SparseWeights", "from_coo", "entries must not repeat", "repeats")
        if r.size and (r.min() < 0 or r.max() >= shape[0]):
            raise field_error("SparseWeights", "rows", f"must be in [0, {shape[0]})", int(r.max()))
        ptr = np.zeros(int(shape[0]) + 1, np.int64)
        np.cumsum(np.bincount(r, minlength=int(shape[0])), out=ptr[1:])
        return cls(shape=shape, indptr=ptr, indices=c, data=v)

    def with_data(self, data: Any) -> SparseWeights:
        """The same pattern with other values (one per stored entry)."""
        return SparseWeights(shape=self.shape, indptr=self.indptr, indices=self.indices, data=data)

    # ---------------------------------------------------------------- queries

    @property
    def ndim(self) -> int:
        return 2

    @property
    def nnz(self) -> int:
        """Stored entries (stored zeros included)."""
        return int(self.data.size)

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    def rows(self) -> np.ndarray:
        """The row of every stored entry."""
        return np.repeat(np.arange(self.shape[0], dtype=np.int64), np.diff(self.indptr))

    def row_sums(self, values: np.ndarray | None = None) -> np.ndarray:
        """Per row, the sum of ``values`` (default: the entries), as float64 or int64."""
        v = self.data if values is None else values
        out = np.bincount(self.rows(), weights=v, minlength=self.shape[0])
        return out.astype(np.int64) if np.asarray(v).dtype.kind in "iub" else out

    def col_counts(self) -> np.ndarray:
        """Per column, the number of non-zero entries (a source's fan-out)."""
        nz = self.data != 0
        return np.bincount(self.indices[nz], minlength=self.shape[1]).astype(np.int64)

    def to_dense(self, *, limit: int = DENSE_LIMIT, where: str = "SparseWeights") -> np.ndarray:
        """The dense matrix; raises :class:`~spikeport.emulator.errors.UnsupportedError` above
        ``limit`` entries (call with a larger ``limit`` where a dense matrix is really wanted)."""
        from spikeport.emulator.errors import UnsupportedError

        size = self.shape[0] * self.shape[1]
        if size > limit:
            raise UnsupportedError(
                f"{where}: a sparse {self.shape} matrix ({self.nnz} non-zero) is too big to make dense "
                f"here (got {size} entries, limit {limit})"
            )
        out = np.zeros(self.shape, self.data.dtype)
        out[self.rows(), self.indices] = self.data
        return out

    def by_source(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Compressed columns: ``(colptr, rows, values)``, column ``i``'s entries at
        ``colptr[i]:colptr[i + 1]``, rows increasing."""
        order = np.argsort(self.indices, kind="stable")  # rows are already increasing
        ptr = np.zeros(self.shape[1] + 1, np.int64)
        np.cumsum(np.bincount(self.indices, minlength=self.shape[1]), out=ptr[1:])
        return ptr, self.rows()[order], self.data[order]

    def to_scipy(self, dtype: Any = None) -> Any:
        """A ``scipy.sparse.csr_matrix`` of the same entries (``dtype``: of its values)."""
        from scipy import sparse

        data = self.data if dtype is None else self.data.astype(dtype)
        return sparse.csr_matrix((data, self.indices, self.indptr), shape=self.shape)
