"""Compiled CPU kernels (numba) of the sparse backward of a Linear -> LIF layer (docs/seed-methods.md).

Method after Perez-Nieves & Goodman, "Sparse Spiking Gradient Descent" (NeurIPS 2021); the code here is
written from the equations. Layer: ``I[t] = x[t] W^T + b``, ``v[t] = a v[t-1] + I[t] - (reset, not
differentiated)``, ``s[t] = H(v[t] - theta)``. With ``g[b,t,j] = dL/ds * f'(v - theta)`` non-zero only
on the active set ``A = {|v - theta| < B_th}`` (flat indices ``idx`` into ``(B, T, n_out)``, sorted):

* traces ``e[t] = a e[t-1] + x[t]``, ``c[t] = a c[t-1] + 1``;
  ``dW[j, :] = sum_A g e[b, t, :]``, ``db[j] = sum_A g c[t]`` (:func:`weight_grad`);
* ``delta[t] = g[t] + a delta[t+1]`` (= dL/dI[t]); ``dx[b, t, i] = sum_j W[j, i] delta[b, t, j]``, only
  at the entries ``lidx`` where the layer below is active (:func:`input_grad`).

Both walk each sample's active entries once. ``weight_grad`` / ``input_grad`` run samples in parallel
(``prange``; the weight gradient with one accumulator per chunk of samples, summed by the caller); the
``*_serial`` twins run on the calling thread, for layers too small to pay for a thread launch (with
numba's OpenMP layer on a busy machine a launch can cost tens of milliseconds).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

#: sums may be reassociated (vectorized) and multiply-adds fused; no other fast-math liberty
_REASSOC = {"reassoc", "contract"}


@numba.njit(cache=True, nogil=True)
def sample_bounds(flat: np.ndarray, n_samples: int, per_sample: int) -> np.ndarray:
    """``bounds[b] .. bounds[b + 1]``: the entries of sorted flat indices ``flat`` that lie in sample ``b``."""
    bounds = np.empty(n_samples + 1, np.int64)
    p = 0
    for b in range(n_samples + 1):
        lim = b * per_sample
        while p < flat.size and flat[p] < lim:
            p += 1
        bounds[b] = p
    return bounds


@numba.njit(cache=True, nogil=True, fastmath=_REASSOC)
def _weight_grad_samples(x, idx, g, a, n_out, b0, b1, bounds, dw, db, e):
    """Accumulate the weight and bias gradients of samples ``b0 .. b1 - 1`` into ``dw`` / ``db``."""
    n_t, n_in = x.shape[1], x.shape[2]
    a_e = e[:1].copy()
    a_e[0] = a
    a_t = a_e[0]  # the decay in the traces' own type (a float64 factor would not vectorize as well)
    for b in range(b0, b1):
        p, end = bounds[b], bounds[b + 1]
        if p == end:
            continue
        e[:] = 0.0
        c = 0.0
        done = -1  # last step integrated into the traces
        while p < end:
            rest = idx[p] - b * n_t * n_out
            t, j = rest // n_out, rest % n_out
            while done < t:
                done += 1
                row = x[b, done]
                for i in range(n_in):
                    e[i] = a_t * e[i] + row[i]
                c = a * c + 1.0
            gp = g[p]
            dw_j = dw[j]
            for i in range(n_in):
                dw_j[i] += gp * e[i]
            db[j] += gp * c
            p += 1


@numba.njit(cache=True, nogil=True)
def _weight_grad_chunk(k, x, idx, g, a, n_out, bounds, dw_parts, db_parts):
    """The ``k``-th of ``len(dw_parts)`` equal chunks of samples, into ``dw_parts[k]``, ``db_parts[k]``."""
    n_b, n_chunks = x.shape[0], dw_parts.shape[0]
    e = np.zeros(x.shape[2], dw_parts.dtype)
    b0, b1 = k * n_b // n_chunks, (k + 1) * n_b // n_chunks
    _weight_grad_samples(x, idx, g, a, n_out, b0, b1, bounds, dw_parts[k], db_parts[k], e)


@numba.njit(cache=True, parallel=True, nogil=True)
def weight_grad(x, idx, g, a, n_out, dw_parts, db_parts):
    """``dw_parts[k]``, ``db_parts[k]`` = weight and bias gradient of the k-th chunk of samples.

    ``x``: layer input ``(B, T, n_in)`` (bool or float); ``idx``: sorted flat active indices into
    ``(B, T, n_out)``; ``g``: the gradient at each active entry; ``a``: the decay.
    Formula: ``dW[j, i] = sum_A g * e_i[b, t]``, ``e[t] = a e[t-1] + x[t]``.
    """
    bounds = sample_bounds(idx, x.shape[0], x.shape[1] * n_out)
    for k in prange(dw_parts.shape[0]):
        _weight_grad_chunk(k, x, idx, g, a, n_out, bounds, dw_parts, db_parts)


@numba.njit(cache=True, nogil=True)
def weight_grad_serial(x, idx, g, a, n_out, dw_parts, db_parts):
    """:func:`weight_grad` on the calling thread (small layers: no thread launch)."""
    bounds = sample_bounds(idx, x.shape[0], x.shape[1] * n_out)
    for k in range(dw_parts.shape[0]):
        _weight_grad_chunk(k, x, idx, g, a, n_out, bounds, dw_parts, db_parts)


@numba.njit(cache=True, nogil=True, fastmath=_REASSOC)
def _input_grad_sample(b, idx, g, a, wt, lidx, bounds, lbounds, n_t, n_out, dx):
    """``dx[q]`` for the lower layer's active entries ``q`` of sample ``b`` (walking time backwards)."""
    n_in = wt.shape[0]
    q0, q = lbounds[b], lbounds[b + 1] - 1
    p0, p = bounds[b], bounds[b + 1] - 1
    if q < q0 or p < p0:
        return
    delta = np.zeros(n_out, wt.dtype)
    zero = delta[0]  # the accumulator in the arrays' own type (a float64 one would not vectorize as well)
    t = (idx[p] - b * n_t * n_out) // n_out  # the last step with an active entry
    t_low = (lidx[q0] - b * n_t * n_in) // n_in  # the first step the layer below needs
    while t >= t_low:
        for j in range(n_out):
            delta[j] *= a
        while p >= p0 and idx[p] - b * n_t * n_out >= t * n_out:
            delta[(idx[p] - b * n_t * n_out) % n_out] += g[p]
            p -= 1
        while q >= q0 and lidx[q] - b * n_t * n_in >= t * n_in:
            rest = lidx[q] - b * n_t * n_in
            if rest < (t + 1) * n_in:
                i = rest % n_in
                acc = zero
                for j in range(n_out):
                    acc += wt[i, j] * delta[j]
                dx[q] = acc
            q -= 1
        t -= 1


@numba.njit(cache=True, parallel=True, nogil=True, fastmath=_REASSOC)
def input_grad(idx, g, a, wt, lidx, n_b, n_t, dx):
    """``dx[q] = sum_j W[j, i] delta[b, t, j]`` at each lower-active entry ``lidx[q] = (b, t, i)``.

    ``wt``: ``W^T`` ``(n_in, n_out)`` contiguous; ``delta[t] = g[t] + a delta[t+1]`` per sample.
    """
    n_in, n_out = wt.shape
    bounds = sample_bounds(idx, n_b, n_t * n_out)
    lbounds = sample_bounds(lidx, n_b, n_t * n_in)
    for b in prange(n_b):
        _input_grad_sample(b, idx, g, a, wt, lidx, bounds, lbounds, n_t, n_out, dx)


@numba.njit(cache=True, nogil=True, fastmath=_REASSOC)
def input_grad_serial(idx, g, a, wt, lidx, n_b, n_t, dx):
    """:func:`input_grad` on the calling thread."""
    n_in, n_out = wt.shape
    bounds = sample_bounds(idx, n_b, n_t * n_out)
    lbounds = sample_bounds(lidx, n_b, n_t * n_in)
    for b in range(n_b):
        _input_grad_sample(b, idx, g, a, wt, lidx, bounds, lbounds, n_t, n_out, dx)
