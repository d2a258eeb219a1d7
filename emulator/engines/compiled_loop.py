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
- LIF dynamics by :mod:`.numba_kernels` (the scalar twins of ``kernels.lif_current`` /
  ``kernels.lif_voltage``) in int64 scalars; groups without
  ternary spikes, refractoriness or LIFReset use a branch-free loop that LLVM vectorizes (~4x faster).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange
from spikeport.emulator.engines.numba_kernels import (
    lif_current,
    lif_fire,
    lif_fire_binary,
    lif_fire_multi,
    lif_voltage,
)

# rows of ``LoopNet.nparams`` (one column per neuron)
(P_KEEP_U, P_KEEP_V, P_BIAS, P_HI, P_LO, P_TERNARY, P_SUBTRACT, P_REFRACTORY, P_INTERVAL, P_OFFSET,
 P_MAX_SPIKES) = range(11)  # fmt: skip
N_PARAMS = 11
# columns of ``LoopNet.slots`` (one row per connection x delay value)
# (S_SPARSE = 1: a sparse slot; its S_BASE indexes ``sp_ptr`` instead of ``weights``)
S_SRC0, S_SRC1, S_TGT0, S_NOUT, S_EXP, S_GRADED, S_DELAY, S_BASE, S_SPARSE = range(9)
N_SLOT_COLUMNS = 9


class LoopNet(NamedTuple):
    """The packed network (read-only in the loop)."""

    nparams: np.ndarray  # (N_PARAMS, Nn) int64, rows P_*
    slots: np.ndarray  # (S, N_SLOT_COLUMNS) int64, columns S_*; S_BASE: first weight element in ``weights``
    weights: np.ndarray  # flat int16|int32: slot q's (n_in, n_out) block from element slots[q, S_BASE]
    max_out: int  # widest connection target (scratch row length)
    # sparse slots, by source: source k's entries are sp_tgt/sp_w[sp_ptr[base + k - src0] : ... + 1]
    sp_ptr: np.ndarray  # int64
    sp_tgt: np.ndarray  # int32: target offset within the slot's target group
    sp_w: np.ndarray  # int16|int32: the (pre-shifted) weights


class LoopState(NamedTuple):
    """The state of every sample, updated in place."""

    u: np.ndarray  # (B, Nn) int64
    v: np.ndarray  # (B, Nn) int64
    ref: np.ndarray  # (B, Nn) int64: refractory steps left
    ring: np.ndarray  # (B, R, Nn) int32: activations due at step t in ring[:, t % R]


class LoopRecord(NamedTuple):
    """Recording buffers, (B, T, hi - lo) for neurons ``lo .. hi - 1`` (the span of the recorded groups),
    or (1, 1, 1) when not recorded (``flags`` says which)."""

    spikes: np.ndarray  # int8
    u: np.ndarray  # int32
    v: np.ndarray  # int32
    a_in: np.ndarray  # int32
    flags: np.ndarray  # (5,) int64: record spikes, u, v, a_in; count
    spans: np.ndarray  # (4, 2) int64: [lo, hi) of the recorded neurons of spikes, u, v, a_in


class LoopCounters(NamedTuple):
    """Counters, or (1, 1) arrays when not counted."""

    spikes: np.ndarray  # (B, Nn + Nin) int64: nonzero messages sent
    payload: np.ndarray  # (B, Nn + Nin) int64: sum of |message|
    events: np.ndarray  # (B, Nn) int64: steps with a_in != 0


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
        a = int(a_row[j])
        a_row[j] = 0
        a_out[j] = a
        uu = u[j]
        vv = v[j]
        rint = nparams[P_INTERVAL, j]
        if rint > 0 and t % rint == nparams[P_OFFSET, j]:
            uu = 0
            vv = 0
        u[j] = lif_current(uu, a, nparams[P_KEEP_U, j])
        nv = lif_voltage(vv, u[j], nparams[P_BIAS, j], nparams[P_KEEP_V, j])
        refr = nparams[P_REFRACTORY, j]
        if refr > 0 and ref[j] > 0:
            v[j] = vv
            ref[j] -= 1
            msg[j] = 0
            continue
        if nparams[P_MAX_SPIKES, j] > 1:
            v[j], spk = lif_fire_multi(
                nv, nparams[P_HI, j], nparams[P_MAX_SPIKES, j], nparams[P_SUBTRACT, j] != 0
            )
        else:
            v[j], spk = lif_fire(
                nv,
                nparams[P_HI, j],
                nparams[P_LO, j],
                nparams[P_TERNARY, j] != 0,
                nparams[P_SUBTRACT, j] != 0,
            )
        if spk != 0 and refr > 0:
            ref[j] = refr
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
    branch-free (selects only) so that LLVM vectorizes it; the parameters are rows ``P_*``."""
    for j in range(u.shape[0]):
        a = int(a_row[j])
        a_row[j] = 0
        a_out[j] = a
        uq = lif_current(u[j], a, keep_u[j])
        v[j], msg[j] = lif_fire_binary(lif_voltage(v[j], uq, bias[j], keep_v[j]), hi[j], subtract[j] != 0)
        u[j] = uq


@njit(cache=True, nogil=True)
def is_plain(nparams: np.ndarray) -> bool:
    """No ternary spikes, refractoriness, LIFReset or multi-spike neurons anywhere: :func:`_neurons_plain`
    applies."""
    return not (
        nparams[P_TERNARY].any()
        or nparams[P_REFRACTORY].any()
        or nparams[P_INTERVAL].any()
        or (nparams[P_MAX_SPIKES] > 1).any()
    )


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
def _sparse_rows(
    q: int,
    slots: np.ndarray,
    sp: tuple[np.ndarray, np.ndarray, np.ndarray],
    msg: np.ndarray,
    acc: np.ndarray,
    nz: np.ndarray,
    count: int,
) -> None:
    """A sparse slot's share of :func:`_synapses`: each active source adds its listed entries
    (``sp`` = ``LoopNet``'s ``sp_ptr, sp_tgt, sp_w``)."""
    src0, src1, base = slots[q, S_SRC0], slots[q, S_SRC1], slots[q, S_BASE]
    graded = slots[q, S_GRADED] != 0
    sp_ptr, sp_tgt, sp_w = sp
    lo = np.searchsorted(nz[:count], src0)
    for p in range(lo, count):
        k = nz[p]
        if k >= src1:
            break
        a, z = sp_ptr[base + k - src0], sp_ptr[base + k - src0 + 1]
        if graded:
            m = msg[k]
            for e in range(a, z):
                acc[sp_tgt[e]] += sp_w[e] * m
        else:
            for e in range(a, z):
                acc[sp_tgt[e]] += sp_w[e]


@njit(cache=True, nogil=True)
def _synapses(
    t: int,
    ring_b: np.ndarray,
    msg: np.ndarray,
    slots: np.ndarray,
    weights: np.ndarray,
    sp: tuple[np.ndarray, np.ndarray, np.ndarray],
    acc: np.ndarray,
    nz: np.ndarray,
    count: int,
) -> None:
    """Add the activations caused by ``msg`` (one sample) into its ring ``ring_b`` (R, Nn); ``nz[:count]``
    lists the nonzero messages (:func:`_compact`), so each connection visits only its active sources."""
    R = ring_b.shape[0]
    for q in range(slots.shape[0]):
        src0, src1, tgt0, n_out = slots[q, S_SRC0], slots[q, S_SRC1], slots[q, S_TGT0], slots[q, S_NOUT]
        e, graded, base = slots[q, S_EXP], slots[q, S_GRADED] != 0, slots[q, S_BASE]
        for o in range(n_out):
            acc[o] = 0
        lo = count if slots[q, S_SPARSE] != 0 else np.searchsorted(nz[:count], src0)
        if slots[q, S_SPARSE] != 0:
            _sparse_rows(q, slots, sp, msg, acc, nz, count)
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
        dst = ring_b[(t + 1 + slots[q, S_DELAY]) % R]
        if e < 0:
            for o in range(n_out):
                dst[tgt0 + o] += acc[o] >> (-e)
        else:
            for o in range(n_out):
                dst[tgt0 + o] += acc[o]


@njit(cache=True, nogil=True)
def _sample(
    b: int,
    x: np.ndarray,
    i0: int,
    n: int,
    t0: int,
    net: LoopNet,
    st: LoopState,
    rec: LoopRecord,
    cnt: LoopCounters,
    plain: bool,
) -> None:
    """Steps ``t0 + 1 .. t0 + n`` of sample ``b``: input index ``i0 + k`` of ``x`` (B, T, Nin) int8|int32
    (the input messages) is step ``t0 + 1 + k``, and is recorded at the same index of ``rec``.

    The records' fields are read once, before the loop: reading an array out of a tuple takes a
    reference, and the threads of the parallel driver would all count on the same shared arrays."""
    Nin = x.shape[2]
    Nn = st.u.shape[1]
    R = st.ring.shape[1]
    nparams, slots, weights = net.nparams, net.slots, net.weights
    sp = (net.sp_ptr, net.sp_tgt, net.sp_w)
    keep_u, keep_v, bias, hi, sub = (
        nparams[P_KEEP_U], nparams[P_KEEP_V], nparams[P_BIAS], nparams[P_HI], nparams[P_SUBTRACT]
    )  # fmt: skip
    rec_s, rec_u, rec_v, rec_a = rec.spikes, rec.u, rec.v, rec.a_in
    flags, spans = rec.flags, rec.spans
    s0, s1, u0, u1 = spans[0, 0], spans[0, 1], spans[1, 0], spans[1, 1]
    v0, v1, a0, a1 = spans[2, 0], spans[2, 1], spans[3, 0], spans[3, 1]
    rs, ru, rv, ra, counting = flags[0] != 0, flags[1] != 0, flags[2] != 0, flags[3] != 0, flags[4] != 0
    msg = np.zeros(Nn + Nin, np.int32)
    acc = np.zeros(net.max_out, np.int32)
    a_in = np.zeros(Nn, np.int64)
    nz = np.zeros(Nn + Nin, np.int64)
    ub, vb, refb, ringb = st.u[b], st.v[b], st.ref[b], st.ring[b]
    c_spk, c_pay, c_ev = cnt.spikes, cnt.payload, cnt.events  # (1, 1) when not counting
    for k in range(n):
        i, t = i0 + k, t0 + k + 1
        if plain:
            _neurons_plain(ub, vb, ringb[t % R], keep_u, keep_v, bias, hi, sub, msg, a_in)
        else:
            _neurons(t, ub, vb, refb, ringb[t % R], nparams, msg, a_in)
        msg[Nn:] = x[b, i]
        if rs:
            rec_s[b, i] = msg[s0:s1]
        if ru:
            rec_u[b, i] = ub[u0:u1]
        if rv:
            rec_v[b, i] = vb[v0:v1]
        if ra:
            rec_a[b, i] = a_in[a0:a1]
        count = _compact(msg, nz)
        if counting:
            _count(msg, nz, count, a_in, c_spk[b], c_pay[b], c_ev[b])
        _synapses(t, ringb, msg, slots, weights, sp, acc, nz, count)


@njit(cache=True, parallel=True, nogil=True)
def run_lif_network_parallel(
    x: np.ndarray, i0: int, n: int, t0: int, net: LoopNet, st: LoopState, rec: LoopRecord, cnt: LoopCounters
) -> None:
    """All samples (steps ``t0 + 1 .. t0 + n`` from input index ``i0``), in parallel over the batch
    (``prange``)."""
    plain = is_plain(net.nparams)
    for b in prange(x.shape[0]):
        _sample(b, x, i0, n, t0, net, st, rec, cnt, plain)


@njit(cache=True, nogil=True)
def run_lif_network_serial(
    x: np.ndarray, i0: int, n: int, t0: int, net: LoopNet, st: LoopState, rec: LoopRecord, cnt: LoopCounters
) -> None:
    """:func:`run_lif_network_parallel` one sample after the other: no thread start-up cost (numba's
    parallel launch costs milliseconds per call on a loaded machine), used for batch 1."""
    plain = is_plain(net.nparams)
    for b in range(x.shape[0]):
        _sample(b, x, i0, n, t0, net, st, rec, cnt, plain)
