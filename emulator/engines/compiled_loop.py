"""The compiled (numba) time loop of the dense engine for networks of LIF-family groups.

One call runs ``T`` steps of a whole network. Samples are independent, so each sample runs its whole
time loop with no Python in between: ``run_lif_network_parallel`` spreads the batch over threads
(``prange``), ``run_lif_network_serial`` is used for batch 1 (numba's thread launch costs milliseconds
per call on a loaded machine). Neurons of all groups share one index space ``0..Nn-1``; message slots
``Nn..Nn+Nin-1`` hold the input channels.

Arithmetic (why it is exact; kernels.py gives each formula):

- Activations live in int32 ring buffers ``ring[b, t % R, j]``. Every Lava activation path is int32
  arithmetic modulo 2**32 (Dense's graded int32 dot product, the int32 ``a_buff``/``a_in`` sums, the
  int32 ``<< weight_exp``), so adding weights into int32 with wrap-around gives Lava's value exactly.
  For ``weight_exp > 0`` the weights are pre-shifted (``w << e``), the same modulo 2**32; they still
  fit int16 (``|w << e| <= 2**15``), which halves the memory read per weight row.
- ``weight_exp < 0`` needs the sum before the floor shift: every connection accumulates into an int32
  scratch row that is shifted, then added. That equals Lava when Lava's sum is the int32-wrapped one
  (Dense/Sparse graded), or when the exact sum fits in int32 (binary spikes: the caller checks
  ``max_j sum_i |w| < 2**31``; DelayDense graded: ``max|w| * max|payload| * n_in < 2**31``).
- Synaptic work touches only the weight rows of sources whose message is nonzero: nonzero messages are
  compacted branch-free into an index list, then whole weight rows are added (vectorized int16->int32
  adds). Why not BLAS: on this 2-core AVX2 machine a float32 ``(64, 700) @ (700, 256)`` takes ~200 us
  per step (~3 us per sample-step for the first layer alone), while adding the ~70 active rows of a
  10%-rate input costs well under 1 us per sample-step; float BLAS would only win at high spike rates.
- LIF dynamics as ``kernels.lif_current`` / ``kernels.lif_voltage`` in int64 scalars; groups without
  ternary spikes, refractoriness or LIFReset use a branch-free loop that LLVM vectorizes (~4x faster).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_LIM = 1 << 23
_TWO32 = 1 << 32
_HALF32 = 1 << 31


@njit(cache=True, inline="always")
def _wrap32(x: int) -> int:
    return ((x + _HALF32) & (_TWO32 - 1)) - _HALF32


@njit(cache=True, inline="always")
def _decay(x: int, keep: int) -> int:
    p = x * keep
    if p >= 0:
        return p >> 12
    return -((-p) >> 12)


@njit(cache=True, nogil=True)
def _neurons(
    t: int,
    u: np.ndarray,
    v: np.ndarray,
    ref: np.ndarray,
    a_row: np.ndarray,
    nparams: np.ndarray,
    msg: np.ndarray,
    a_out: np.ndarray,
) -> None:
    """One step of every neuron of one sample (1-D views); ``a_row`` is zeroed after reading."""
    for j in range(u.shape[0]):
        a = np.int64(a_row[j])
        a_row[j] = 0
        a_out[j] = a
        uu = u[j]
        vv = v[j]
        rint = nparams[8, j]
        if rint > 0 and t % rint == nparams[9, j]:
            uu = 0
            vv = 0
        s = _wrap32(_decay(uu, nparams[0, j]) + _wrap32(a << 6))  # type: ignore[arg-type]
        uq = s - 2 * _LIM if s > _LIM else s
        if uq <= -_LIM:
            uq = s + 2 * _LIM
        nv = _wrap32(_decay(vv, nparams[1, j]) + uq + nparams[2, j])
        if nv > _LIM - 1:
            nv = _LIM - 1
        elif nv < 1 - _LIM:
            nv = 1 - _LIM
        spk = 0
        if nparams[7, j] > 0 and ref[j] > 0:
            nv = vv
            ref[j] -= 1
        else:
            if nv > nparams[3, j]:
                spk = 1
            elif nparams[5, j] != 0 and nv < nparams[4, j]:
                spk = -1
            if spk != 0:
                nv = nv - nparams[3, j] if nparams[6, j] != 0 else 0
                if nparams[7, j] > 0:
                    ref[j] = nparams[7, j]
        u[j] = uq
        v[j] = nv
        msg[j] = spk


@njit(cache=True, nogil=True)
def _neurons_plain(
    u: np.ndarray,
    v: np.ndarray,
    a_row: np.ndarray,
    keep_u: np.ndarray,
    keep_v: np.ndarray,
    bias: np.ndarray,
    hi: np.ndarray,
    subtract: np.ndarray,
    msg: np.ndarray,
    a_out: np.ndarray,
) -> None:
    """:func:`_neurons` for groups without ternary spikes, refractoriness or LIFReset, written
    branch-free (selects only) so that LLVM vectorizes it."""
    for j in range(u.shape[0]):
        a = np.int64(a_row[j])
        a_row[j] = 0
        a_out[j] = a
        pu = u[j] * keep_u[j]
        du = (pu >> 12) if pu >= 0 else -((-pu) >> 12)
        s = ((du + (((a << 6) + _HALF32) & (_TWO32 - 1)) - _HALF32 + _HALF32) & (_TWO32 - 1)) - _HALF32
        uq = s - 2 * _LIM if s > _LIM else s
        uq = s + 2 * _LIM if uq <= -_LIM else uq
        pv = v[j] * keep_v[j]
        dv = (pv >> 12) if pv >= 0 else -((-pv) >> 12)
        nv = ((dv + uq + bias[j] + _HALF32) & (_TWO32 - 1)) - _HALF32
        nv = min(max(nv, 1 - _LIM), _LIM - 1)
        spk = nv > hi[j]
        reset = nv - hi[j] if subtract[j] != 0 else 0
        v[j] = reset if spk else nv
        u[j] = uq
        msg[j] = 1 if spk else 0


@njit(cache=True, nogil=True)
def _compact(msg: np.ndarray, nz: np.ndarray) -> int:
    """Write the indices of nonzero messages to ``nz`` (sorted, branch-free); return their count."""
    count = 0
    for k in range(msg.shape[0]):
        nz[count] = k
        count += msg[k] != 0
    return count


@njit(cache=True, nogil=True)
def _count(
    msg: np.ndarray,
    nz: np.ndarray,
    count: int,
    a_in: np.ndarray,
    spk: np.ndarray,
    pay: np.ndarray,
    ev: np.ndarray,
) -> None:
    """Counters of one sample and step: only the senders listed in ``nz`` are touched."""
    for j in range(a_in.shape[0]):
        ev[j] += a_in[j] != 0
    for p in range(count):
        k = nz[p]
        spk[k] += 1
        pay[k] += abs(np.int64(msg[k]))


@njit(cache=True, nogil=True)
def _synapses(
    t: int,
    ring_b: np.ndarray,
    msg: np.ndarray,
    slots: np.ndarray,
    weights: np.ndarray,
    acc: np.ndarray,
    nz: np.ndarray,
    count: int,
) -> None:
    """Add the activations caused by ``msg`` (one sample) into its ring ``ring_b`` (R, Nn); ``nz[:count]``
    lists the nonzero messages (:func:`_compact`), so each connection visits only its active sources."""
    R = ring_b.shape[0]
    for q in range(slots.shape[0]):
        src0 = slots[q, 0]
        src1 = slots[q, 1]
        tgt0 = slots[q, 2]
        n_out = slots[q, 3]
        e = slots[q, 4]
        graded = slots[q, 5] != 0
        base = slots[q, 7]
        for o in range(n_out):
            acc[o] = 0
        lo = np.searchsorted(nz[:count], src0)
        for p in range(lo, count):
            k = nz[p]
            if k >= src1:
                break
            start = base + (k - src0) * n_out
            wrow = weights[start : start + n_out]
            if graded:
                m = msg[k]
                for o in range(n_out):
                    acc[o] += wrow[o] * m
            else:
                for o in range(n_out):
                    acc[o] += wrow[o]
        dst = ring_b[(t + 1 + slots[q, 6]) % R]
        if e < 0:
            for o in range(n_out):
                dst[tgt0 + o] += acc[o] >> (-e)
        else:
            for o in range(n_out):
                dst[tgt0 + o] += acc[o]


@njit(cache=True, nogil=True)
def _sample(
    b: int,
    x: np.ndarray,  # (B, T, Nin) int32
    t0: int,
    u: np.ndarray,  # (B, Nn) int64, updated in place
    v: np.ndarray,  # (B, Nn) int64
    ref: np.ndarray,  # (B, Nn) int64
    ring: np.ndarray,  # (B, R, Nn) int32
    nparams: np.ndarray,  # (10, Nn) int64: keep_u, keep_v, bias, hi, lo, ternary, subtract, refr, rint, roff
    slots: np.ndarray,  # (S, 8) int64: src0, src1, tgt0, n_out, exp, graded, delay, first weight element (flat store)
    weights: np.ndarray,  # flat int16|int32: slot q's (n_in, n_out) block from element slots[q, 7]
    rec_s: np.ndarray,  # (B, T, Nn) int8 or (1, 1, 1)
    rec_u: np.ndarray,  # (B, T, Nn) int32 or (1, 1, 1)
    rec_v: np.ndarray,
    rec_a: np.ndarray,
    flags: np.ndarray,  # (5,) int64: record s, u, v, a_in, counters
    cnt_spk: np.ndarray,  # (B, Nn + Nin) int64
    cnt_pay: np.ndarray,  # (B, Nn + Nin) int64
    cnt_ev: np.ndarray,  # (B, Nn) int64
    max_out: int,
    plain: bool,
) -> None:
    """The whole time loop of sample ``b``."""
    T, Nin = x.shape[1], x.shape[2]
    Nn = u.shape[1]
    R = ring.shape[1]
    rs, ru, rv, ra, cnt = flags[0] != 0, flags[1] != 0, flags[2] != 0, flags[3] != 0, flags[4] != 0
    msg = np.zeros(Nn + Nin, np.int32)
    acc = np.zeros(max_out, np.int32)
    a_in = np.zeros(Nn, np.int64)
    nz = np.zeros(Nn + Nin, np.int64)
    ub, vb, refb, ringb = u[b], v[b], ref[b], ring[b]
    for i in range(T):
        t = t0 + i + 1
        if plain:
            _neurons_plain(
                ub,
                vb,
                ringb[t % R],
                nparams[0],
                nparams[1],
                nparams[2],
                nparams[3],
                nparams[6],
                msg,
                a_in,
            )
        else:
            _neurons(t, ub, vb, refb, ringb[t % R], nparams, msg, a_in)
        msg[Nn:] = x[b, i]
        if rs:
            rec_s[b, i] = msg[:Nn]
        if ru:
            rec_u[b, i] = ub
        if rv:
            rec_v[b, i] = vb
        if ra:
            rec_a[b, i] = a_in
        count = _compact(msg, nz)
        if cnt:
            _count(msg, nz, count, a_in, cnt_spk[b], cnt_pay[b], cnt_ev[b])
        _synapses(t, ringb, msg, slots, weights, acc, nz, count)


@njit(cache=True, parallel=True, nogil=True)
def run_lif_network_parallel(
    x: np.ndarray,  # (B, T, Nin) int32
    t0: int,
    u: np.ndarray,  # (B, Nn) int64, updated in place
    v: np.ndarray,  # (B, Nn) int64
    ref: np.ndarray,  # (B, Nn) int64
    ring: np.ndarray,  # (B, R, Nn) int32
    nparams: np.ndarray,  # (10, Nn) int64: keep_u, keep_v, bias, hi, lo, ternary, subtract, refr, rint, roff
    slots: np.ndarray,  # (S, 8) int64: src0, src1, tgt0, n_out, exp, graded, delay, first weight element (flat store)
    weights: np.ndarray,  # flat int16|int32: slot q's (n_in, n_out) block from element slots[q, 7]
    rec_s: np.ndarray,  # (B, T, Nn) int8 or (1, 1, 1)
    rec_u: np.ndarray,  # (B, T, Nn) int32 or (1, 1, 1)
    rec_v: np.ndarray,
    rec_a: np.ndarray,
    flags: np.ndarray,  # (5,) int64: record s, u, v, a_in, counters
    cnt_spk: np.ndarray,  # (B, Nn + Nin) int64
    cnt_pay: np.ndarray,  # (B, Nn + Nin) int64
    cnt_ev: np.ndarray,  # (B, Nn) int64
    max_out: int,
) -> None:
    """All samples, in parallel over the batch (``prange``)."""
    plain = not (nparams[5].any() or nparams[7].any() or nparams[8].any())
    for b in prange(x.shape[0]):
        _sample(b, x, t0, u, v, ref, ring, nparams, slots, weights, rec_s, rec_u, rec_v, rec_a, flags,
                cnt_spk, cnt_pay, cnt_ev, max_out, plain)  # fmt: skip


@njit(cache=True, nogil=True)
def run_lif_network_serial(
    x: np.ndarray,  # (B, T, Nin) int32
    t0: int,
    u: np.ndarray,  # (B, Nn) int64, updated in place
    v: np.ndarray,  # (B, Nn) int64
    ref: np.ndarray,  # (B, Nn) int64
    ring: np.ndarray,  # (B, R, Nn) int32
    nparams: np.ndarray,  # (10, Nn) int64: keep_u, keep_v, bias, hi, lo, ternary, subtract, refr, rint, roff
    slots: np.ndarray,  # (S, 8) int64: src0, src1, tgt0, n_out, exp, graded, delay, first weight element (flat store)
    weights: np.ndarray,  # flat int16|int32: slot q's (n_in, n_out) block from element slots[q, 7]
    rec_s: np.ndarray,  # (B, T, Nn) int8 or (1, 1, 1)
    rec_u: np.ndarray,  # (B, T, Nn) int32 or (1, 1, 1)
    rec_v: np.ndarray,
    rec_a: np.ndarray,
    flags: np.ndarray,  # (5,) int64: record s, u, v, a_in, counters
    cnt_spk: np.ndarray,  # (B, Nn + Nin) int64
    cnt_pay: np.ndarray,  # (B, Nn + Nin) int64
    cnt_ev: np.ndarray,  # (B, Nn) int64
    max_out: int,
) -> None:
    """All samples one after the other: no thread start-up cost (numba's parallel launch costs
    milliseconds per call on a loaded machine), used for batch 1."""
    plain = not (nparams[5].any() or nparams[7].any() or nparams[8].any())
    for b in range(x.shape[0]):
        _sample(b, x, t0, u, v, ref, ring, nparams, slots, weights, rec_s, rec_u, rec_v, rec_a, flags,
                cnt_spk, cnt_pay, cnt_ev, max_out, plain)  # fmt: skip
