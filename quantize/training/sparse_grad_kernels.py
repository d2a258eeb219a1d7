"""Compiled CPU kernels (numba) of the sparse backward of a Linear -> LIF layer (docs/seed-methods.md).

Method after Perez-Nieves & Goodman, "Sparse Spiking Gradient Descent" (NeurIPS 2021); the code here is
written from the equations. Layer: ``I[t] = x[t] W^T + b``, ``v[t] = a v[t-1] + I[t] - (reset, not
differentiated)``, ``s[t] = H(v[t] - theta)``. With ``g[b,t,j] = dL/ds * f'(v - theta)`` non-zero only
on the active set ``A = {|v - theta| < B_th}`` (flat indices ``idx`` into ``(B, T, n_out)``, sorted):

* traces ``e[t] = a e[t-1] + x[t]``, ``c[t] = a c[t-1] + 1``;
  ``dW[j, :] = sum_A g e[b, t, :]``, ``db[j] = sum_A g c[t]`` (forward walk, :func:`_weight_grad_samples`);
* ``delta[t] = g[t] + a delta[t+1]`` (= dL/dI[t]); ``dx[b, t, i] = sum_j W[j, i] delta[b, t, j]``, only
  at the entries ``lidx`` where the layer below is active (backward walk, :func:`_input_grad_sample`).

Both walk each sample's entries once, with no division per entry. :func:`backward_chunks` does both
for some chunks of samples in one call, each chunk with its own ``dW`` / ``db`` accumulator; the caller
splits the batch into a number of chunks fixed by the work (not by the thread count, so the sums are
the same on any number of threads) and may run the chunks on several threads (the kernels release the
GIL); they form ``g`` from a dense incoming gradient on the way. :func:`coo_indices` gives the
``(b, t, i)`` rows of the sparse input gradient.
"""

from __future__ import annotations

import numba
import numpy as np

#: sums may be reassociated (vectorized) and multiply-adds fused; no other fast-math liberty
_REASSOC = {"reassoc", "contract"}


@numba.njit(cache=True, nogil=True)
def coo_indices(flat: np.ndarray, n_t: int, n: int, out: np.ndarray) -> None:
    """``out[:, p] = (b, t, i)`` of the sorted flat index ``flat[p]`` into ``(B, n_t, n)`` (a walk over
    the steps: no division per entry)."""
    b, t, start = 0, 0, 0  # start: the flat index of (b, t, 0)
    for p in range(flat.size):
        f = flat[p]
        if f >= start + n:
            q = f // n  # jump to the entry's step (one division per step that has entries)
            b, t, start = q // n_t, q % n_t, q * n
        out[0, p], out[1, p], out[2, p] = b, t, f - start


@numba.njit(cache=True, nogil=True, fastmath=_REASSOC)
def _weight_grad_sample(x, idx, g, a, b, p, end, dw, db, e):
    """Add the weight and bias gradients of sample ``b`` (its active entries ``p .. end - 1``)."""
    n_t, n_in, n_out = x.shape[1], x.shape[2], dw.shape[0]
    a_e = e[:1].copy()
    a_e[0] = a
    a_t = a_e[0]  # the decay in the traces' own type (a float64 factor would not vectorize as well)
    e[:] = 0.0
    c = 0.0
    base = b * n_t * n_out  # the flat index of (b, t, 0)
    for t in range(n_t):
        if p == end:
            return
        row = x[b, t]
        for i in range(n_in):
            e[i] = a_t * e[i] + row[i]
        c = a * c + 1.0
        base_next = base + n_out
        while p < end and idx[p] < base_next:
            j = idx[p] - base
            gp = g[p]
            dw_j = dw[j]
            for i in range(n_in):
                dw_j[i] += gp * e[i]
            db[j] += gp * c
            p += 1
        base = base_next


@numba.njit(cache=True, nogil=True, fastmath=_REASSOC)
def _input_grad_sample(b, idx, g, a, wt, lidx, p0, p, q0, q, n_t, dx, delta):
    """``dx[q]`` for the lower layer's active entries ``q0 .. q`` of sample ``b`` (walking time
    backwards from its last active entry ``p``; ``p0``: its first)."""
    n_in, n_out = wt.shape
    delta[:] = 0.0
    a_d = delta[:1].copy()
    a_d[0] = a
    a_t, zero = a_d[0], delta[0]  # in the arrays' own type (float64 ones would not vectorize as well)
    t = (idx[p] - b * n_t * n_out) // n_out  # the last step with an active entry
    t_low = (lidx[q0] - b * n_t * n_in) // n_in  # the first step the layer below needs
    base_o, base_i = (b * n_t + t) * n_out, (b * n_t + t) * n_in  # flat indices of (b, t, 0)
    while t >= t_low:
        for j in range(n_out):
            delta[j] *= a_t
        while p >= p0 and idx[p] >= base_o:
            delta[idx[p] - base_o] += g[p]
            p -= 1
        while q >= q0 and lidx[q] >= base_i:
            i = lidx[q] - base_i
            if i < n_in:  # (entries after the last active step keep their 0)
                w_i = wt[i]
                acc = zero
                for j in range(n_out):
                    acc += w_i[j] * delta[j]
                dx[q] = acc
            q -= 1
        t -= 1
        base_o -= n_out
        base_i -= n_in


@numba.njit(cache=True, nogil=True, fastmath=_REASSOC)
def _surrogate_grad(grad, idx, u, slope, p, end, g):
    """``g[p] = grad[idx[p]] / (slope |u[p]| + 1)^2`` for the entries ``p .. end - 1``."""
    for q in range(p, end):
        d = slope * abs(u[q]) + 1.0
        g[q] = grad[idx[q]] * (1.0 / (d * d))


@numba.njit(cache=True, nogil=True)
def backward_chunks(x, idx, grad, u, slope, g, a, wt, lidx, chunks, dw_parts, db_parts, dx):
    """Weight, bias and (when ``lidx`` is not empty) input gradients of the chunks of samples ``chunks``.

    The batch is split into ``len(dw_parts)`` equal chunks of samples; chunk ``k`` writes
    ``dw_parts[k]`` ``(n_out, n_in)``, ``db_parts[k]`` and ``dx[q]`` for its samples' entries (the
    outputs need no initialization).
    ``x``: layer input ``(B, T, n_in)`` (bool or float); ``idx``: sorted flat active indices into
    ``(B, T, n_out)``; ``g``: the gradient at each active entry, or (``grad`` not empty) where it is
    written first, from the flat incoming gradient ``grad``, ``u = v - theta`` at the active entries
    and the surrogate's ``slope``; ``a``: the decay; ``wt``: ``W^T`` ``(n_in, n_out)`` contiguous;
    ``lidx``: sorted flat indices into ``(B, T, n_in)`` where the input gradient is wanted.
    """
    n_b, n_t, n_in = x.shape
    n_out, n_chunks = dw_parts.shape[1], dw_parts.shape[0]
    steps = np.arange(n_b + 1) * n_t
    bounds = np.searchsorted(idx, steps * n_out)
    lbounds = np.searchsorted(lidx, steps * n_in)
    e = np.zeros(n_in, dw_parts.dtype)
    delta = np.zeros(n_out, wt.dtype)
    for k in chunks:
        b0, b1 = k * n_b // n_chunks, (k + 1) * n_b // n_chunks
        dw_parts[k] = 0.0
        db_parts[k] = 0.0
        dx[lbounds[b0] : lbounds[b1]] = 0.0
        if grad.size:  # (in one pass: a long stream of reads that the prefetcher follows)
            _surrogate_grad(grad, idx, u, slope, bounds[b0], bounds[b1], g)
        for b in range(b0, b1):
            p, end = bounds[b], bounds[b + 1]
            if p == end:
                continue
            _weight_grad_sample(x, idx, g, a, b, p, end, dw_parts[k], db_parts[k], e)
            if lbounds[b] < lbounds[b + 1]:
                q0, q1 = lbounds[b], lbounds[b + 1] - 1
                _input_grad_sample(b, idx, g, a, wt, lidx, p, end - 1, q0, q1, n_t, dx, delta)


@numba.njit(cache=True, nogil=True)
def transpose(w: np.ndarray, out: np.ndarray) -> None:
    """``out = w.T`` (``out`` contiguous)."""
    for j in range(w.shape[0]):
        for i in range(w.shape[1]):
            out[i, j] = w[j, i]


@numba.njit(cache=True, nogil=True)
def reduce_parts(dw_parts: np.ndarray, db_parts: np.ndarray) -> None:
    """``dw_parts[0] += dw_parts[1] + ...`` (in this order) and the same for ``db_parts``."""
    for k in range(1, dw_parts.shape[0]):
        dw_parts[0] += dw_parts[k]
        db_parts[0] += db_parts[k]
