"""The compiled event loop of the event-driven engine (one batch sample per call).

Neurons share one index space ``0..N-1``; sources are the neurons then the input channels
(``N..N+M-1``). A source's synapses are a CSR row of (scratch cell, weight); a scratch cell is one
(connection, delay value, target) accumulator, so the floor shift of ``weight_exp < 0`` is applied to
each connection's per-step sum exactly as Lava (and the dense engine) do. Flushed activations go to a
ring ``ring[t % R, n]`` due at step ``t``, with the list of neurons that have something due.

A neuron is processed at step ``t`` only if it is *active* (``u != 0``, or it spikes again at the
next step, or its group records u/v/a_in), has input due, or its predicted spike (heap) is due.
Otherwise it is dormant: ``u = 0`` and its ``v`` is valid at step ``last[n]``; it is brought up to
``t - 1`` by the exact fast-forward :func:`~.event_kernels.ff` when next touched.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from spikeport.emulator.engines.event_kernels import ff, heap_pop, heap_push, lif_step, prefetch
from spikeport.emulator.engines.numba_kernels import decay_keep, keep_u, wrap32

BINARY, GRADED_SUM, GRADED_PRODUCT = 0, 1, 2

# columns of the per-neuron row ``nrn[n]`` (state, parameters and counters side by side, int32: 64 bytes,
# so one update touches one cache line instead of a dozen arrays; every value fits: u is 24-bit, v, th,
# tl and the effective bias at most 2**23, steps below 2**31 (checked by the engine); arithmetic on
# them is int64, numba widens int32 operands);
# DUDV = (du + 1) | dv << 16 (du + 1 in 0..4096: LIFGroup allows du = -1; dv in 0..4096)
U, V, LAST, VER, MARK, DUDV, BIAS, TH, TL, FLAGS, IVL, OFS, SPK, REC, CNT_SPK, CNT_AIN = range(16)
NRN_COLUMNS = 16
ROW_DTYPE = np.int32
MAX_STEP = (1 << 31) - 1  # LAST, MARK hold step numbers
TERNARY, SUBTRACT, ALWAYS = 1, 2, 4
# columns of a synapse entry (CSR rows by source): scratch cell (-1: add straight into the ring),
# weight (pre-shifted by weight_exp when direct), target neuron, delay, arithmetic mode
E_SCR, E_W, E_TARGET, E_DELAY, E_MODE = range(5)
E_COLUMNS = ("scr", "w", "target", "delay", "mode")
# columns of a scratch cell ``scr[q]`` (one connection x delay value x target accumulator)
ACC, DIRTY, MODE, WEXP, DELAY, TARGET = range(6)


@numba.njit(cache=True, inline="always")
def _due(ring, due_list, due_cnt, due, tg, val):  # type: ignore[no-untyped-def]
    rs = due % ring.shape[0]
    ring[rs, tg, 0] += val
    if ring[rs, tg, 1] != due:
        ring[rs, tg, 1] = due
        due_list[rs, due_cnt[rs]] = tg
        due_cnt[rs] += 1


@numba.njit(cache=True)
def _emit(t, src, pay, src_ptr, syn, scr, dirty, n_dirty, ring, due_list, due_cnt):  # type: ignore[no-untyped-def]
    """Send ``pay`` from source ``src`` at step ``t`` through its synapses."""
    lo, hi = src_ptr[src], src_ptr[src + 1]
    r = ring.shape[0]
    for e in range(lo, hi):  # prefetch first; the memory system overlaps the misses
        prefetch(ring, ((t + 1 + syn[e, E_DELAY]) % r, syn[e, E_TARGET], 0))
    for e in range(lo, hi):
        mode = syn[e, E_MODE]
        if mode == BINARY:
            w = syn[e, E_W]
        elif mode == GRADED_SUM:
            w = syn[e, E_W] * pay
        else:
            w = wrap32(syn[e, E_W] * pay) if syn[e, E_SCR] >= 0 else syn[e, E_W] * pay
        q = syn[e, E_SCR]
        if q < 0:
            _due(ring, due_list, due_cnt, t + 1 + syn[e, E_DELAY], syn[e, E_TARGET], w)
            continue
        scr[q, ACC] += w
        if scr[q, DIRTY] == 0:
            scr[q, DIRTY] = 1
            dirty[n_dirty] = q
            n_dirty += 1
    return n_dirty


@numba.njit(cache=True)
def _flush(t, n_dirty, dirty, scr, ring, due_list, due_cnt):  # type: ignore[no-untyped-def]
    """Shift the per-step sums of the scratch cells (floor for weight_exp < 0) into the ring."""
    for a in range(n_dirty):
        q = dirty[a]
        val = scr[q, ACC]
        scr[q, ACC] = 0
        scr[q, DIRTY] = 0
        if scr[q, MODE] == GRADED_SUM:
            val = wrap32(val)
        e = scr[q, WEXP]
        val = wrap32(val << e) if e > 0 else wrap32(val >> -e)
        _due(ring, due_list, due_cnt, t + 1 + scr[q, DELAY], scr[q, TARGET], val)


@numba.njit(cache=True, inline="always")
def _ff(nrn, q, rem):  # type: ignore[no-untyped-def]
    """Fast-forward a dormant row by ``rem`` steps (its u is 0 after its first lazy step)."""
    f = nrn[q, FLAGS]
    out = ff(
        nrn[q, V],
        nrn[q, BIAS],
        nrn[q, DUDV] >> 16,
        nrn[q, TH],
        nrn[q, TL],
        (f & TERNARY) != 0,
        (f & SUBTRACT) != 0,
        rem,
    )
    return out


@numba.njit(cache=True, inline="always")
def _decays_to_zero(v, dv, k):  # type: ignore[no-untyped-def]
    """Whether ``k`` steps of ``v <- decay(v, dv)`` (u = 0, no bias, no input) surely end at 0.

    Rounding toward zero keeps the sign and gives ``|v'| = floor(|v| (4096 - dv) / 4096)``, so with
    ``dv >= 1``: ``|v'| <= |v| - 1`` (0 after ``|v|`` steps) and ``|v_k| <= |v| r**k``,
    ``r = (4096 - dv) / 4096``, an integer below 1 when ``k > ln|v| / -ln r``; the float quotient is
    given a margin of one whole step. ``False`` means "not proven", not "nonzero"."""
    a = abs(v)
    if a == 0:
        return True
    if dv <= 0:
        return False
    if k >= a:
        return True
    if dv >= 4096:
        return k >= 1
    return k >= int(math.log(a) / -math.log1p(-dv / 4096.0)) + 2


@numba.njit(cache=True, inline="always")
def _silent(nrn, q):  # type: ignore[no-untyped-def]
    """A dormant neuron (u = 0 from the next step) without bias never spikes again without input if
    its ``v`` and 0 lie within its thresholds: ``|v|`` then only shrinks and keeps its sign (see
    :func:`_decays_to_zero`), no clip or wrap can happen, and ``s = 1`` needs ``v > th``, ``s = -1``
    needs ``v < tl``. Equivalent to :func:`~.event_kernels.ff` returning no spike, in O(1)."""
    if nrn[q, BIAS] != 0:
        return False
    v = nrn[q, V]
    if max(v, 0) > nrn[q, TH]:
        return False
    return (nrn[q, FLAGS] & TERNARY) == 0 or min(v, 0) >= nrn[q, TL]


@numba.njit(cache=True, inline="always")
def _catch_up(nrn, q, t):  # type: ignore[no-untyped-def]
    """Bring a dormant row from its last update to step ``t`` (no spike can happen on the way).
    ``v = 0`` with no bias stays 0 (``decay(0) = 0``): no fast-forward needed; without bias, a ``v``
    proven to reach 0 within the gap is set to 0 directly (O(1) instead of a walk over the bands)."""
    if nrn[q, LAST] < t:
        if nrn[q, BIAS] == 0 and _decays_to_zero(nrn[q, V], nrn[q, DUDV] >> 16, t - nrn[q, LAST]):
            nrn[q, V] = 0
        elif nrn[q, V] != 0 or nrn[q, BIAS] != 0:
            _, nrn[q, V], _ = _ff(nrn, q, t - nrn[q, LAST])
        nrn[q, U] = 0
        nrn[q, LAST] = t


@numba.njit(cache=True, inline="always")
def _quiescent(nrn, q):  # type: ignore[no-untyped-def]
    """``u = v = bias = 0``, not kept active and no spike at ``v = 0`` (a ternary lower threshold above
    0 would fire): stepping it without input changes nothing (``decay(0) = 0``, ``0 > th >= 0`` is false)."""
    f = nrn[q, FLAGS]
    if nrn[q, U] != 0 or nrn[q, V] != 0 or nrn[q, BIAS] != 0 or (f & ALWAYS) != 0:
        return False
    return (f & TERNARY) == 0 or nrn[q, TL] <= 0


@numba.njit(cache=True)
def _initial_active(nrn, t0, act):  # type: ignore[no-untyped-def]
    """Reset the bookkeeping columns; list in ``act`` the neurons to step at the first step: all but the
    quiescent ones, which wait (dormant at ``v = 0``) until input arrives. Returns their number."""
    n_act = 0
    for q in range(nrn.shape[0]):
        nrn[q, LAST] = t0
        nrn[q, VER] = 0
        nrn[q, MARK] = -1
        if not _quiescent(nrn, q):
            act[n_act] = q
            n_act += 1
    return n_act


@numba.njit(cache=True)
def _collect(t, slot, act, n_act, due_list, due_cnt, ht, hn, hv, hsize, nrn, todo):  # type: ignore[no-untyped-def]
    """The neurons to update at step ``t``: active ones, those with input due, due predictions.
    The rows with input due are prefetched first, so that their cache misses overlap."""
    for a in range(due_cnt[slot]):
        prefetch(nrn, (due_list[slot, a], 0))
        prefetch(nrn, (due_list[slot, a], NRN_COLUMNS - 1))
    n_todo = 0
    for a in range(n_act):
        q = act[a]
        if nrn[q, MARK] != t:
            nrn[q, MARK] = t
            todo[n_todo] = q
            n_todo += 1
    for a in range(due_cnt[slot]):
        q = due_list[slot, a]
        if nrn[q, MARK] != t:
            nrn[q, MARK] = t
            todo[n_todo] = q
            n_todo += 1
    while hsize > 0 and ht[0] <= t:
        q, qv = hn[0], hv[0]
        hsize = heap_pop(ht, hn, hv, hsize)
        if qv == nrn[q, VER] and nrn[q, MARK] != t:
            nrn[q, MARK] = t
            todo[n_todo] = q
            n_todo += 1
    return n_todo, hsize


@numba.njit(cache=True)
def _due_lists(ring, t0):  # type: ignore[no-untyped-def]
    """The due lists (``lst[slot, :cnt[slot]]``: neurons with an activation due in ring slot ``slot``)
    of a ring loaded from a state (entries due after ``t0``)."""
    r, n = ring.shape[0], ring.shape[1]
    lst = np.empty((r, n), np.int64)
    cnt = np.zeros(r, np.int64)
    for s in range(r):
        for q in range(n):
            if ring[s, q, 1] > t0:
                lst[s, cnt[s]] = q
                cnt[s] += 1
    return lst, cnt


@numba.njit(cache=True)
def _send_inputs(t, x_ch, x_val, first, src_ptr, syn, scr, dirty, n_dirty, ring, due_list, due_cnt):  # type: ignore[no-untyped-def]
    """Send the nonzero input messages of step ``t`` (channel ``x_ch[k]`` is source ``first + x_ch[k]``)."""
    for k in range(x_ch.shape[0]):
        n_dirty = _emit(
            t, first + x_ch[k], x_val[k], src_ptr, syn, scr, dirty, n_dirty, ring, due_list, due_cnt
        )
    return n_dirty


@numba.njit(cache=True, inline="always")
def _take_input(ring, slot, q, t):  # type: ignore[no-untyped-def]
    """The int32-wrapped activation due for neuron ``q`` at step ``t`` (0 if none); clears it."""
    if ring[slot, q, 1] != t:
        return 0
    a_in = wrap32(ring[slot, q, 0])
    ring[slot, q, 0] = 0
    ring[slot, q, 1] = 0
    return a_in


@numba.njit(cache=True)
def _prefetch_rows(nrn, ring, slot, todo, n_todo):  # type: ignore[no-untyped-def]
    """Ask for the rows and ring cells of the neurons about to be updated: the memory system then
    overlaps the misses."""
    for a in range(n_todo):
        prefetch(nrn, (todo[a], 0))
        prefetch(nrn, (todo[a], NRN_COLUMNS - 1))
        prefetch(ring, (slot, todo[a], 0))


@numba.njit(cache=True)
def _push(ht, hn, hv, hsize, t, q, ver, nrn):  # type: ignore[no-untyped-def]
    """Push the prediction (step ``t``, neuron ``q``, version ``ver``), dropping stale entries first
    when the heap is full; returns the new size."""
    if hsize == ht.shape[0]:
        hsize = _compact(ht, hn, hv, hsize, nrn)
    return heap_push(ht, hn, hv, hsize, t, q, ver)


@numba.njit(cache=True, inline="always")
def _note_update(nrn, q, t, touched, n_touched):  # type: ignore[no-untyped-def]
    """Row ``q`` was updated at step ``t``: its last step and version; listed in ``touched`` the first
    time in this call. Returns the number of touched rows."""
    nrn[q, LAST] = t
    nrn[q, VER] += 1
    if nrn[q, VER] == 1:
        touched[n_touched] = q
        n_touched += 1
    return n_touched


@numba.njit(cache=True)
def _step(t, i, t_end, todo, n_todo, nxt, nrn, ring, src_ptr, syn, scr, dirty, due_list, due_cnt,
          ht, hn, hv, hsize, out_spk, out_u, out_v, out_a, touched, n_touched):  # type: ignore[no-untyped-def]  # fmt: skip
    """Update the neurons ``todo[:n_todo]`` at step ``t`` (output index ``i``) and send their spikes;
    a neuron updated for the first time in this call is listed in ``touched``.
    Returns (neurons kept active in ``nxt``, heap size, scratch cells dirtied, fast-forwards, touched)."""
    slot = t % ring.shape[0]
    _prefetch_rows(nrn, ring, slot, todo, n_todo)
    n_next, n_dirty, ffs = 0, 0, 0
    for a in range(n_todo):
        q = todo[a]
        if nrn[q, LAST] < t - 1:
            _catch_up(nrn, q, t - 1)
            ffs += 1
        a_in = _take_input(ring, slot, q, t)
        if nrn[q, IVL] > 0 and t % nrn[q, IVL] == nrn[q, OFS]:
            nrn[q, U], nrn[q, V] = 0, 0
        f = nrn[q, FLAGS]
        nrn[q, U], nrn[q, V], s = lif_step(
            nrn[q, U], nrn[q, V], a_in, (nrn[q, DUDV] & 0xFFFF) - 1, nrn[q, DUDV] >> 16, nrn[q, BIAS], nrn[q, TH], nrn[q, TL],
            (f & TERNARY) != 0, (f & SUBTRACT) != 0,
        )  # fmt: skip
        nrn[q, CNT_AIN] += a_in != 0
        n_touched = _note_update(nrn, q, t, touched, n_touched)
        if nrn[q, REC] >= 0:
            out_u[i, nrn[q, REC]], out_v[i, nrn[q, REC]], out_a[i, nrn[q, REC]] = nrn[q, U], nrn[q, V], a_in
        if s != 0:
            nrn[q, CNT_SPK] += 1
            if nrn[q, SPK] >= 0:
                out_spk[i, nrn[q, SPK]] = s
            if src_ptr[q + 1] > src_ptr[q]:  # (a call per spike costs even without synapses)
                n_dirty = _emit(t, q, s, src_ptr, syn, scr, dirty, n_dirty, ring, due_list, due_cnt)
        if (f & ALWAYS) != 0 or decay_keep(nrn[q, U], keep_u((nrn[q, DUDV] & 0xFFFF) - 1)) != 0:
            nxt[n_next] = q  # still active
            n_next += 1
            continue
        if _silent(nrn, q):
            continue  # dormant for good until input arrives
        k, _, s2 = _ff(nrn, q, t_end - t)  # dormant: predict its next spike
        ffs += 1
        if s2 != 0 and k == 1:
            nxt[n_next] = q
            n_next += 1
        elif s2 != 0:
            hsize = _push(ht, hn, hv, hsize, t + k, q, nrn[q, VER], nrn)
    return n_next, hsize, n_dirty, ffs, n_touched


@numba.njit(cache=True)
def run_sample(
    t0, x_ptr, x_ch, x_val, nrn, ring, src_ptr, syn, scr, out_spk, out_u, out_v, out_a, act0, fresh
):  # type: ignore[no-untyped-def]
    """Run ``x_ptr.shape[0] - 1`` steps after step ``t0``; ``nrn`` and ``ring`` are updated in place.

    Inputs, sparse: the nonzero messages of output step ``i`` are channels ``x_ch[x_ptr[i]:x_ptr[i + 1]]``
    with values ``x_val[...]`` (see :func:`sparse_inputs`), so a step without input costs nothing.

    ``nrn`` (N, 16): see the column names above (``LAST``, ``VER``, ``MARK`` are overwritten).
    ``ring`` (R, N, 2): activation due at step t in ``ring[t % R, n, 0]``; ``ring[.., 1]`` is the
    step it is due at when it is listed (values loaded from a state must carry it).
    ``fresh``: the rows are a network's initial rows (``LAST = VER = 0``, ``MARK < 1``), ``t0 = 0``,
    the ring is empty and ``act0`` lists the non-quiescent rows, so nothing is scanned: the set-up
    and the final catch-up cost O(touched neurons), not O(N). Otherwise ``act0`` is ignored.
    A neuron goes dormant when its next ``u`` is 0 without input (``decay(u, du + 1) == 0``); it is
    then predicted (heap) or left alone until input arrives. Returns (neuron updates, fast-forwards).
    (The helpers take plain arrays: passing them grouped in named tuples, or inlining the helpers at
    numba level, halved the speed of this loop.)
    """
    steps = x_ptr.shape[0] - 1
    n = nrn.shape[0]
    r = ring.shape[0]
    t_end = t0 + steps
    act = np.empty(n, np.int64)
    if fresh:
        n_act = act0.shape[0]
        act[:n_act] = act0
        due_list, due_cnt = np.empty((r, n), np.int64), np.zeros(r, np.int64)
    else:
        n_act = _initial_active(nrn, t0, act)
        due_list, due_cnt = _due_lists(ring, t0)
    nxt = np.empty(n, np.int64)
    todo = np.empty(n, np.int64)
    touched = np.empty(n, np.int64)
    n_touched = 0
    cap = 4 * n + 64
    ht = np.empty(cap, np.int64)
    hn = np.empty(cap, np.int64)
    hv = np.empty(cap, np.int64)
    hsize = 0
    dirty = np.empty(scr.shape[0], np.int64)
    updates = 0
    ffs = 0
    for i in range(steps):
        t = t0 + i + 1
        slot = t % r
        n_dirty = 0
        if n_act > 0 or due_cnt[slot] > 0 or (hsize > 0 and ht[0] <= t):  # else: nothing to update
            n_todo, hsize = _collect(t, slot, act, n_act, due_list, due_cnt, ht, hn, hv, hsize, nrn, todo)
            n_act, hsize, n_dirty, f, n_touched = _step(
                t, i, t_end, todo, n_todo, nxt, nrn, ring, src_ptr, syn, scr, dirty, due_list, due_cnt,
                ht, hn, hv, hsize, out_spk, out_u, out_v, out_a, touched, n_touched,
            )  # fmt: skip
            ffs += f
            updates += n_todo
            due_cnt[slot] = 0
            act, nxt = nxt, act
        lo, hi = x_ptr[i], x_ptr[i + 1]
        if hi > lo:
            n_dirty = _send_inputs(
                t, x_ch[lo:hi], x_val[lo:hi], n, src_ptr, syn, scr, dirty, n_dirty, ring, due_list, due_cnt
            )
        if n_dirty > 0:
            _flush(t, n_dirty, dirty, scr, ring, due_list, due_cnt)
    for a in range(n_touched):  # untouched rows are quiescent (u = v = bias = 0) or not stepped yet
        _catch_up(nrn, touched[a], t_end)
    return updates, ffs


@numba.njit(cache=True)
def _compact(ht, hn, hv, size, nrn):  # type: ignore[no-untyped-def]
    """Drop stale heap entries (version changed) and rebuild the heap."""
    keep_t = np.empty(size, np.int64)
    keep_n = np.empty(size, np.int64)
    keep_v = np.empty(size, np.int64)
    m = 0
    for a in range(size):
        if hv[a] == nrn[hn[a], VER]:
            keep_t[m], keep_n[m], keep_v[m] = ht[a], hn[a], hv[a]
            m += 1
    size = 0
    for a in range(m):
        size = heap_push(ht, hn, hv, size, keep_t[a], keep_n[a], keep_v[a])
    return size


def sparse_inputs(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The nonzero messages of inputs ``x`` (batch, steps, channels) for :func:`run_sample`: per sample
    ``b``, ``ptr[b]`` (steps + 1 offsets into the flat ``ch`` / ``val`` arrays, sorted by step)."""
    batch, steps, chans = x.shape
    flat = np.ascontiguousarray(x).reshape(-1)
    nz = np.flatnonzero(flat != 0)
    counts = np.bincount(nz // max(chans, 1), minlength=batch * steps)
    ptr = np.zeros(batch * steps + 1, np.int64)
    np.cumsum(counts, out=ptr[1:])
    rows = np.arange(batch)[:, None] * steps + np.arange(steps + 1)[None, :]
    return ptr[rows], (nz % max(chans, 1)).astype(np.int64), flat[nz].astype(np.int64)
