"""The compiled event loop of the event-driven engine (one batch sample per call).

Neurons share one index space ``0..N-1``; sources are the neurons then the input channels
(``N..N+M-1``). A source's synapses are a CSR row of (scratch cell, weight); a scratch cell is one
(connection, delay value, target) accumulator, so the floor shift of ``weight_exp < 0`` is applied to
each connection's per-step sum exactly as Lava (and the dense engine) do. Flushed activations go to a
ring ``ring[t % R, n]`` due at step ``t``, with the list of neurons that have something due.

A neuron is processed at step ``t`` only if it is *active* (``u != 0``, or it spikes again at the
next step, or its group records u/v/a_in), has input due, or its predicted spike (heap) is due.
Otherwise it is dormant: ``u = 0`` and its ``v`` is valid at step ``last[n]``; it is brought up to
``t - 1`` by the exact fast-forward :func:`~.event_engine_kernels.ff` when next touched.
"""

from __future__ import annotations

import numba
import numpy as np
from spikeport.emulator.engines.event_kernels import (
    decay,
    ff,
    heap_pop,
    heap_push,
    lif_step,
    prefetch,
    wrap32,
)

BINARY, GRADED_SUM, GRADED_PRODUCT = 0, 1, 2

# columns of the per-neuron row ``nrn[n]`` (state, parameters and counters side by side: 128 bytes,
# so one update touches two adjacent cache lines instead of a dozen arrays); DUDV = du | dv << 16
U, V, LAST, VER, MARK, DUDV, BIAS, TH, TL, FLAGS, IVL, OFS, SPK, REC, CNT_SPK, CNT_AIN = range(16)
NRN_COLUMNS = 16
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
def _ff(row, rem):  # type: ignore[no-untyped-def]
    """Fast-forward a dormant row by ``rem`` steps (its u is 0 after its first lazy step)."""
    f = row[FLAGS]
    out = ff(
        row[V], row[BIAS], row[DUDV] >> 16, row[TH], row[TL], (f & TERNARY) != 0, (f & SUBTRACT) != 0, rem
    )
    return out


@numba.njit(cache=True)
def _catch_up(row, t):  # type: ignore[no-untyped-def]
    """Bring a dormant row from its last update to step ``t`` (no spike can happen on the way)."""
    if row[LAST] < t:
        _, row[V], _ = _ff(row, t - row[LAST])
        row[U] = 0
        row[LAST] = t


@numba.njit(cache=True)
def _collect(t, slot, act, n_act, due_list, due_cnt, ht, hn, hv, hsize, nrn, todo):  # type: ignore[no-untyped-def]
    """The neurons to update at step ``t``: active ones, those with input due, due predictions."""
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
def run_sample(t0, x, nrn, ring, src_ptr, syn, scr, out_spk, out_u, out_v, out_a):  # type: ignore[no-untyped-def]
    """Run ``x.shape[0]`` steps after step ``t0``; ``nrn`` and ``ring`` are updated in place.

    ``nrn`` (N, 16): see the column names above (``LAST``, ``VER``, ``MARK`` are overwritten).
    ``ring`` (R, N, 2): activation due at step t in ``ring[t % R, n, 0]``; ``ring[.., 1]`` is the
    step it is due at when it is listed (values loaded from a state must carry it).
    A neuron goes dormant when its next ``u`` is 0 without input (``decay(u, du + 1) == 0``); it is
    then predicted (heap) or left alone until input arrives. Returns (neuron updates, fast-forwards).
    """
    steps, n_in = x.shape
    n = nrn.shape[0]
    r = ring.shape[0]
    t_end = t0 + steps
    nrn[:, LAST] = t0
    nrn[:, VER] = 0
    nrn[:, MARK] = -1
    act = np.arange(n)
    n_act = n
    nxt = np.empty(n, np.int64)
    todo = np.empty(n, np.int64)
    due_list = np.empty((r, n), np.int64)
    due_cnt = np.zeros(r, np.int64)
    for s in range(r):
        for i in range(n):
            if ring[s, i, 1] > t0:
                due_list[s, due_cnt[s]] = i
                due_cnt[s] += 1
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
        n_todo, hsize = _collect(t, slot, act, n_act, due_list, due_cnt, ht, hn, hv, hsize, nrn, todo)
        for a in range(n_todo):  # prefetch first
            prefetch(nrn, (todo[a], 0))
            prefetch(nrn, (todo[a], NRN_COLUMNS - 1))
            prefetch(ring, (slot, todo[a], 0))
        n_next = 0
        n_dirty = 0
        for a in range(n_todo):
            q = todo[a]
            row = nrn[q]
            if row[LAST] < t - 1:
                _catch_up(row, t - 1)
                ffs += 1
            a_in = 0
            if ring[slot, q, 1] == t:
                a_in = wrap32(ring[slot, q, 0])
                ring[slot, q, 0] = 0
                ring[slot, q, 1] = 0
            if row[IVL] > 0 and t % row[IVL] == row[OFS]:
                row[U], row[V] = 0, 0
            f = row[FLAGS]
            du = row[DUDV] & 0xFFFF
            row[U], row[V], s = lif_step(
                row[U], row[V], a_in, du, row[DUDV] >> 16, row[BIAS], row[TH], row[TL],
                (f & TERNARY) != 0, (f & SUBTRACT) != 0,
            )  # fmt: skip
            updates += 1
            if a_in != 0:
                row[CNT_AIN] += 1
            row[LAST] = t
            row[VER] += 1
            if row[REC] >= 0:
                out_u[i, row[REC]] = row[U]
                out_v[i, row[REC]] = row[V]
                out_a[i, row[REC]] = a_in
            if s != 0:
                row[CNT_SPK] += 1
                if row[SPK] >= 0:
                    out_spk[i, row[SPK]] = s
                n_dirty = _emit(t, q, s, src_ptr, syn, scr, dirty, n_dirty, ring, due_list, due_cnt)
            if (f & ALWAYS) != 0 or decay(row[U], du + 1) != 0:
                nxt[n_next] = q
                n_next += 1
                continue
            k, _, s2 = _ff(row, t_end - t)
            ffs += 1
            if s2 == 0:
                continue
            if k == 1:
                nxt[n_next] = q
                n_next += 1
                continue
            if hsize == cap:
                hsize = _compact(ht, hn, hv, hsize, nrn)
            hsize = heap_push(ht, hn, hv, hsize, t + k, q, row[VER])
        due_cnt[slot] = 0
        for m in range(n_in):
            if x[i, m] != 0:
                n_dirty = _emit(t, n + m, x[i, m], src_ptr, syn, scr, dirty, n_dirty, ring, due_list, due_cnt)
        _flush(t, n_dirty, dirty, scr, ring, due_list, due_cnt)
        act, nxt = nxt, act
        n_act = n_next
    for q in range(n):
        _catch_up(nrn[q], t_end)
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
