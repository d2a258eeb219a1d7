"""Sparse matrices of the quantizer: convolutions and pools lowered without a dense matrix, and the
few operations path composition needs on a mix of dense arrays and ``scipy.sparse`` CSR matrices.

Why ``scipy.sparse``: composing paths multiplies and adds matrices (a conv after a pool after a
conv); scipy's CSR products are exact for these sizes and keep the NIR paper's N-MNIST CNN (a
2312 x 16384 first convolution, 3 % non-zero) at megabytes instead of the 300 MB of a dense float64
matrix. A matrix stays sparse while at most :data:`DENSE_FRACTION` of its entries are non-zero and it
is large (:data:`SPARSE_MIN_SIZE` entries); otherwise it is a dense ``ndarray`` as before.

:func:`conv_matrix` is the matrix of ``torch.nn.functional.conv2d`` (cross-correlation, NCHW, zero
padding, stride, dilation, groups) on one sample, flattened C-major like the NIR shapes: output
``(co, oy, ox)`` reads input ``(ci, oy*s - p + ky*d, ox*s - p + kx*d)`` with weight ``w[co, ci', ky,
kx]`` (``ci = group * cin_per_group + ci'``). Sum and average pools are depthwise convolutions with
the constant weight 1 (sum) or ``1 / (kh * kw)`` (average; torch's default ``count_include_pad``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: a matrix with more non-zero entries than this fraction is held dense
DENSE_FRACTION = 0.2
#: matrices smaller than this are held dense
SPARSE_MIN_SIZE = 4096

Matrix = Any  # np.ndarray | scipy.sparse.csr_matrix


def _sparse() -> Any:
    """``scipy.sparse``, imported on first use (reading a quantization report needs numpy only)."""
    from scipy import sparse

    return sparse


def is_sparse(m: Matrix) -> bool:
    return type(m).__module__.startswith("scipy.sparse")


def normalize(m: Matrix) -> Matrix:
    """CSR if large and mostly zero, else a dense float64 ``ndarray`` (never ``np.matrix``)."""
    if is_sparse(m):
        size = m.shape[0] * m.shape[1]
        if size >= SPARSE_MIN_SIZE and m.nnz <= DENSE_FRACTION * size:
            out = m.tocsr().astype(np.float64)
            out.eliminate_zeros()
            out.sort_indices()
            return out
        return np.asarray(m.toarray(), np.float64)
    return np.asarray(m, np.float64)


def matmul(a: Matrix, b: Matrix) -> Matrix:
    return normalize(a @ b)


def add(a: Matrix, b: Matrix) -> Matrix:
    if is_sparse(a) and is_sparse(b):
        return normalize(a + b)
    da = a.toarray() if is_sparse(a) else a
    db = b.toarray() if is_sparse(b) else b
    return normalize(np.asarray(da) + np.asarray(db))


def rows_where(m: Matrix, keep: np.ndarray) -> Matrix:
    """``m`` with the rows where ``keep`` is False zeroed."""
    if is_sparse(m):
        return normalize(_sparse().diags(np.asarray(keep, np.float64)) @ m)
    return m * np.asarray(keep)[:, None]


def nnz(m: Matrix) -> int:
    if is_sparse(m):
        return int(m.count_nonzero())
    return int(np.count_nonzero(m))


def scale_rows(m: Matrix, s: np.ndarray) -> Matrix:
    """``s[:, None] * m`` (kept sparse)."""
    if is_sparse(m):
        out = m.tocsr(copy=True)
        out.data = np.repeat(np.asarray(s, np.float64), np.diff(out.indptr)) * out.data
        return normalize(out)
    return np.asarray(s)[:, None] * m


def identity(n: int) -> Matrix:
    return normalize(_sparse().identity(n, dtype=np.float64, format="csr"))


def diagonal(values: np.ndarray) -> Matrix:
    return normalize(_sparse().diags(np.asarray(values, np.float64), format="csr"))


def entries(m: Matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(rows, cols, values)`` of the non-zero entries, by row then column."""
    if is_sparse(m):
        c = m.tocsr()
        c.sort_indices()
        rows = np.repeat(np.arange(c.shape[0]), np.diff(c.indptr))
        keep = c.data != 0
        return rows[keep], c.indices[keep].astype(np.int64), c.data[keep]
    rows, cols = np.nonzero(m)
    return rows, cols, m[rows, cols]


def row_abs_max(m: Matrix) -> np.ndarray:
    """Per row, the largest ``|m[j, i]|`` (0 for an empty row)."""
    if is_sparse(m):
        return np.asarray(abs(m).max(axis=1).toarray(), np.float64).ravel()
    return np.max(np.abs(m), axis=1, initial=0.0)


def _pair(v: Any) -> tuple[int, int]:
    a = np.broadcast_to(np.asarray(v), (2,))
    return int(a[0]), int(a[1])


def conv_matrix(
    in_shape: tuple[int, int, int],
    weight: np.ndarray,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Matrix:
    """The (C_out*H_out*W_out, C*H*W) matrix of ``conv2d(x, weight, ...)`` (module docstring)."""
    c_in, h, w = (int(v) for v in in_shape)
    wt = np.asarray(weight, np.float64)
    c_out, cin_g, kh, kw = wt.shape
    (sy, sx), (py, px), (dy, dx) = _pair(stride), _pair(padding), _pair(dilation)
    ho = (h + 2 * py - dy * (kh - 1) - 1) // sy + 1
    wo = (w + 2 * px - dx * (kw - 1) - 1) // sx + 1
    cout_g = c_out // groups
    co, ci_g, ky, kx, oy, ox = np.meshgrid(
        np.arange(c_out),
        np.arange(cin_g),
        np.arange(kh),
        np.arange(kw),
        np.arange(ho),
        np.arange(wo),
        indexing="ij",
    )
    iy, ix = oy * sy - py + ky * dy, ox * sx - px + kx * dx
    ci = (co // cout_g) * cin_g + ci_g
    vals = wt[co, ci_g, ky, kx]
    keep = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w) & (vals != 0)
    rows = (co * ho + oy) * wo + ox
    cols = (ci * h + iy) * w + ix
    m = (
        _sparse()
        .coo_matrix((vals[keep], (rows[keep], cols[keep])), shape=(c_out * ho * wo, c_in * h * w))
        .tocsr()
    )  # duplicates (none for a convolution) would be summed
    return normalize(m)


def pool_matrix(
    in_shape: tuple[int, int, int], kernel: Any, stride: Any, padding: Any, *, avg: bool
) -> Matrix:
    """Sum (``avg=False``) or average pool as a depthwise :func:`conv_matrix`."""
    c = int(in_shape[0])
    kh, kw = _pair(kernel)
    weight = np.full((c, 1, kh, kw), 1.0 / (kh * kw) if avg else 1.0)
    return conv_matrix(in_shape, weight, stride=stride, padding=padding, groups=c)
