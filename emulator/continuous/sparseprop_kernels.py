"""Compiled kernels of the SparseProp simulation (numba): connectivity hash, heap, tree, naive loop.

Method after Engelken, "SparseProp: Efficient Event-Based Simulation and Training of Sparse Recurrent
Spiking Neural Networks", NeurIPS 2023
(docs/seed-methods.md, "SparseProp (Engelken 2023)"); the code here is written from the equations.

Phase representation: every neuron has a phase ``phi`` that grows at the same constant speed between
network spikes, and spikes when ``phi`` reaches ``phi_th``. A pulse from a presynaptic spike maps the
phase through the phase transition curve (PTC):

* LIF (model 0): ``PTC(phi) = -w * ln(exp(-phi / w) + c)`` (``w`` = tau, phases in seconds)
* QIF (model 1): ``PTC(phi) = 2 * atan(tan(phi / 2) + c)`` (phases in radians, threshold pi)

The heap and tree loops keep ``stored = phi - offset`` with one global ``offset`` (so advancing every
neuron is one addition) and a max-heap (``heap_run``) or a tournament tree (``tree_run``) of stored
phases: O(K log N) per network spike. Before the K pulses of a spike the memory of all K targets is
prefetched, which overlaps the cache misses that dominate at N = 1e6. The naive loop advances every
phase and scans for the maximum: O(N) per network spike.

Connectivity is never stored: the ``k``-th target of presynaptic neuron ``j`` is a hash of
``(seed, j, k)`` (splitmix64) mapped to ``[0, N)`` without self-connections (multapses possible,
expected ``K**2 / (2 N)`` per neuron).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from spikeport.emulator.engines.event_kernels import prefetch

LIF = 0
QIF = 1

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


@numba.njit(cache=True, inline="always")
def _mix(x: np.uint64) -> np.uint64:
    """splitmix64 finalizer."""
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


@numba.njit(cache=True, inline="always")
def _row_seed(seed: int, j: int) -> np.uint64:
    return _mix(np.uint64(seed) + np.uint64(j + 1) * _GOLDEN)


@numba.njit(cache=True, inline="always")
def _target_of(row: np.uint64, j: int, k: int, n: int) -> int:
    h = _mix(row + np.uint64(k + 1) * _GOLDEN)
    i = np.int64(((h >> np.uint64(32)) * np.uint64(n - 1)) >> np.uint64(32))
    return int(i + np.int64(1) if i >= j else i)


@numba.njit(cache=True)
def target(seed: int, j: int, k: int, n: int) -> int:
    """The ``k``-th postsynaptic neuron of ``j``: ``h = mix(mix(seed + (j+1) G) + (k+1) G)``,
    ``i = ((h >> 32) * (n - 1)) >> 32``, then ``i + 1`` if ``i >= j`` (no self-connection)."""
    return _target_of(_row_seed(seed, j), j, k, n)


@numba.njit(cache=True)
def targets_into(seed: int, j: int, n: int, out: np.ndarray) -> None:
    """``out[q] = target(seed, j, q, n)`` for every ``q`` (the row hash computed once)."""
    row = _row_seed(seed, j)
    for q in range(out.size):
        out[q] = _target_of(row, j, q, n)


@numba.njit(cache=True, inline="always")
def ptc(model: int, phi: float, c: float, w: float) -> float:
    if model == LIF:
        return -w * math.log(math.exp(-phi * (1.0 / w)) + c)
    return 2.0 * math.atan(math.tan(0.5 * phi) + c)


@numba.njit(cache=True)
def _sift_up(hk: np.ndarray, hi: np.ndarray, pos: np.ndarray, p: int) -> None:
    k, i = hk[p], hi[p]
    while p > 0:
        q = (p - 1) >> 1
        if hk[q] >= k:
            break
        hk[p], hi[p] = hk[q], hi[q]
        pos[hi[p]] = p
        p = q
    hk[p], hi[p] = k, i
    pos[i] = p


@numba.njit(cache=True)
def _sift_down(hk: np.ndarray, hi: np.ndarray, pos: np.ndarray, p: int) -> None:
    n = hk.size
    k, i = hk[p], hi[p]
    while True:
        a = 2 * p + 1
        if a >= n:
            break
        if a + 1 < n and hk[a + 1] > hk[a]:
            a += 1
        if hk[a] <= k:
            break
        hk[p], hi[p] = hk[a], hi[a]
        pos[hi[p]] = p
        p = a
    hk[p], hi[p] = k, i
    pos[i] = p


@numba.njit(cache=True)
def _heap_build(phases: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The max-heap of ``phases``: stored phases ``hk``, their neurons ``hi``, slots ``pos``."""
    hi = np.argsort(-phases).astype(np.int32)
    hk = phases[hi]
    pos = np.empty(phases.size, np.int32)
    for p in range(phases.size):
        pos[hi[p]] = p
    return hk, hi, pos


@numba.njit(cache=True)
def _heap_pulses(
    model: int,
    hk: np.ndarray,
    hi: np.ndarray,
    pos: np.ndarray,
    tg: np.ndarray,
    offset: float,
    c: float,
    w: float,
) -> None:
    """Apply the PTC to the phases of the neurons ``tg`` and restore the heap. Prefetch first (the
    memory system overlaps the misses), then the dependent updates."""
    for q in range(tg.size):
        prefetch(pos, tg[q])
    for q in range(tg.size):
        p = pos[tg[q]]
        prefetch(hk, p)
        prefetch(hi, p)
    for q in range(tg.size):
        p = pos[tg[q]]
        old = hk[p]
        hk[p] = ptc(model, old + offset, c, w) - offset
        if hk[p] < old:
            _sift_down(hk, hi, pos, p)
        else:
            _sift_up(hk, hi, pos, p)


@numba.njit(cache=True)
def heap_run(
    model: int,
    phases: np.ndarray,
    k: int,
    seed: int,
    c: float,
    w: float,
    phi_th: float,
    phi_reset: float,
    speed: float,
    renorm: float,
    n_spikes: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Heap SparseProp; returns spike times, spiking neurons and the final phases.

    The max-heap holds the stored phases themselves (``hk``, in heap order) next to their neurons
    (``hi``); ``pos[i]`` is neuron ``i``'s slot. A pulse lowers a phase, so it sifts down.
    """
    n = phases.size
    hk, hi, pos = _heap_build(phases)
    times = np.empty(n_spikes)
    who = np.empty(n_spikes, np.int64)
    tg = np.empty(k, np.int64)
    offset = 0.0
    t = 0.0
    for s in range(n_spikes):
        j = hi[0]
        step = phi_th - (hk[0] + offset)
        offset += step
        t += step / speed
        times[s] = t
        who[s] = j
        hk[0] = phi_reset - offset
        _sift_down(hk, hi, pos, 0)
        targets_into(seed, j, n, tg)
        _heap_pulses(model, hk, hi, pos, tg, offset, c, w)
        if offset > renorm:
            for p in range(n):
                hk[p] += offset
            offset = 0.0
    out = np.empty(n)
    for p in range(n):
        out[hi[p]] = hk[p] + offset
    return times, who, out


@numba.njit(cache=True)
def naive_run(
    model: int,
    phases: np.ndarray,
    k: int,
    seed: int,
    c: float,
    w: float,
    phi_th: float,
    phi_reset: float,
    speed: float,
    n_spikes: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plain O(N)-per-spike loop: scan for the largest phase, advance all phases, apply the PTC."""
    n = phases.size
    phi = phases.copy()
    tg = np.empty(k, np.int64)
    times = np.empty(n_spikes)
    who = np.empty(n_spikes, np.int64)
    t = 0.0
    for s in range(n_spikes):
        j = 0
        for i in range(1, n):
            if phi[i] > phi[j]:
                j = i
        step = phi_th - phi[j]
        for i in range(n):
            phi[i] += step
        t += step / speed
        times[s] = t
        who[s] = j
        phi[j] = phi_reset
        targets_into(seed, j, n, tg)
        for q in range(k):
            i = tg[q]
            phi[i] = ptc(model, phi[i], c, w)
    return times, who, phi


@numba.njit(cache=True, inline="always")
def _leaf(win: np.ndarray, node: int, size: int) -> int:
    return node - size if node >= size else win[node]


@numba.njit(cache=True)
def _tree_update(val: np.ndarray, win: np.ndarray, i: int, size: int) -> None:
    """Restore the winners on the path of leaf ``i`` after ``val[i]`` changed (stops early where the
    winner of a node is unchanged and is not ``i``)."""
    m = (i + size) >> 1
    while m >= 1:
        a = _leaf(win, 2 * m, size)
        b = _leaf(win, 2 * m + 1, size)
        w = a if val[a] >= val[b] else b
        if w == win[m] and w != i:
            return
        win[m] = w
        m >>= 1


@numba.njit(cache=True)
def _tree_build(leaves: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """A tournament tree over ``leaves`` (padded with -inf to a power of two ``size``): leaf values
    ``val`` and the winner ``win[m]`` (largest value) below each internal node ``m``."""
    size = 1
    while size < leaves.size:
        size *= 2
    val = np.full(size, -np.inf)
    val[: leaves.size] = leaves
    win = np.zeros(size, np.int32)
    for m in range(size - 1, 0, -1):
        a = _leaf(win, 2 * m, size)
        b = _leaf(win, 2 * m + 1, size)
        win[m] = a if val[a] >= val[b] else b
    return val, win, size


@numba.njit(cache=True)
def tree_run(
    model: int,
    phases: np.ndarray,
    k: int,
    seed: int,
    c: float,
    w: float,
    phi_th: float,
    phi_reset: float,
    speed: float,
    renorm: float,
    n_spikes: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SparseProp on a tournament tree of stored phases (a "tree of next spike times").

    Leaves ``val[i] = phi_i - offset`` are indexed by neuron (padding leaves hold -inf); internal
    node ``m`` holds the neuron ``win[m]`` with the largest phase below it; ``win[1]`` spikes next.
    Updating a leaf re-plays the matches on its path, stopping where the winner is unchanged, so a
    pulse costs O(1) expected and O(log N) at worst; the sibling winners' addresses on the path do
    not depend on each other, so their memory loads overlap.
    """
    n = phases.size
    val, win, size = _tree_build(phases)
    times = np.empty(n_spikes)
    who = np.empty(n_spikes, np.int64)
    tg = np.empty(k, np.int64)
    offset = 0.0
    t = 0.0
    for s in range(n_spikes):
        j = win[1]
        step = phi_th - (val[j] + offset)
        offset += step
        t += step / speed
        times[s] = t
        who[s] = j
        val[j] = phi_reset - offset
        _tree_update(val, win, j, size)
        targets_into(seed, j, n, tg)
        for q in range(k):  # prefetch first; the memory system overlaps the misses
            prefetch(val, tg[q])
            prefetch(win, (tg[q] + size) >> 1)
        for q in range(k):
            i = tg[q]
            val[i] = ptc(model, val[i] + offset, c, w) - offset
            _tree_update(val, win, i, size)
        if offset > renorm:
            for i in range(n):
                val[i] += offset
            offset = 0.0
    return times, who, val[:n] + offset


@numba.njit(cache=True)
def lif_tree_run(
    phases: np.ndarray,
    k: int,
    seed: int,
    c: float,
    w: float,
    phi_th: float,
    renorm: float,
    n_spikes: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LIF SparseProp on the tournament tree, with the PTC applied in exponential coordinates.

    With ``x = exp(-phi / w)`` the LIF PTC ``-w ln(exp(-phi / w) + c)`` is ``x -> x + c`` and
    advancing every phase by ``d`` multiplies every ``x`` by ``exp(-d / w)``. The tree stores
    ``val[i] = -x_i / g`` with one global factor ``g = exp(-offset / w)`` (largest ``val`` = largest
    phase), so a pulse is ``val[i] -= c / g``: no exp or log per pulse, one of each per network
    spike. ``g`` is folded back into ``val`` when it falls below ``exp(-renorm / w)``.
    """
    n = phases.size
    val, win, size = _tree_build(-np.exp(-phases / w))
    times = np.empty(n_spikes)
    who = np.empty(n_spikes, np.int64)
    tg = np.empty(k, np.int64)
    g = 1.0
    g_min = math.exp(-renorm / w)
    t = 0.0
    for s in range(n_spikes):
        j = win[1]
        step = phi_th + w * math.log(-val[j] * g)
        g *= math.exp(-step / w)
        t += step
        times[s] = t
        who[s] = j
        val[j] = -1.0 / g
        _tree_update(val, win, j, size)
        targets_into(seed, j, n, tg)
        for q in range(k):  # prefetch first; the memory system overlaps the misses
            prefetch(val, tg[q])
            prefetch(win, (tg[q] + size) >> 1)
        dv = c / g
        for q in range(k):
            i = tg[q]
            val[i] -= dv
            _tree_update(val, win, i, size)
        if g < g_min:
            for i in range(n):
                val[i] *= g
            g = 1.0
    out = np.empty(n)
    for i in range(n):
        out[i] = -w * math.log(-val[i] * g)
    return times, who, out
