"""Packing a network for the compiled loop of :mod:`.compiled_loop`, and back.

Used by the dense engine for fixed-point runs with ``overflow="wrap"`` when every group is a
LIF-family group and every connection's arithmetic is provably exact in the int32 ring (see the kernel
module docstring); :func:`fast_plan` returns ``None`` otherwise and the numpy path runs instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from spikeport.emulator import bits, kernels
from spikeport.emulator.engines.compiled_loop import (
    N_PARAMS,
    N_SLOT_COLUMNS,
    P_BIAS,
    P_HI,
    P_INTERVAL,
    P_KEEP_U,
    P_KEEP_V,
    P_LO,
    P_MAX_SPIKES,
    P_OFFSET,
    P_REFRACTORY,
    P_SUBTRACT,
    P_TERNARY,
    S_NOUT,
    LoopCounters,
    LoopNet,
    LoopRecord,
    LoopState,
    run_lif_network_parallel,
    run_lif_network_serial,
)
from spikeport.emulator.engines.group_models import LIFState
from spikeport.emulator.engines.synapses import SynapsePlan
from spikeport.emulator.network import LIFGroup, Network, TernaryLIFGroup
from spikeport.emulator.sparse_weights import SparseWeights

_I32_LIM = 1 << 31
_I16_LIM = 1 << 15
RECORDABLE = ("spikes", "u", "v", "a_in")
_RECORD_DTYPES = {"spikes": np.int8, "u": np.int32, "v": np.int32, "a_in": np.int32}


@dataclass(frozen=True, kw_only=True, eq=False)
class FastPlan:
    offsets: dict[str, tuple[int, int]]  # neuron group -> [start, stop) in 0..Nn
    in_offsets: dict[str, tuple[int, int]]  # input group -> [start, stop) in Nn..Nn+Nin
    n_neurons: int
    n_inputs: int
    ring_len: int
    loop: LoopNet


class SparseStore(NamedTuple):
    """The sparse slots' arrays of :class:`~.compiled_loop.LoopNet` (``sp_ptr``, ``sp_tgt``, ``sp_w``)."""

    ptr: np.ndarray
    tgt: np.ndarray
    w: np.ndarray


class RawCounters(NamedTuple):
    """Per-sample counters of a compiled run: ``spikes``/``payload`` per sender (B, n), ``events``
    per neuron group (B,)."""

    spikes: Mapping[str, np.ndarray]
    payload: Mapping[str, np.ndarray]
    events: Mapping[str, np.ndarray]


class FastResult(NamedTuple):
    """What :func:`finish_fast` returns: recordings, group states, rings, counters (or None)."""

    outputs: dict[str, np.ndarray]
    groups: dict[str, LIFState]
    rings: dict[str, np.ndarray]
    counters: RawCounters | None


def _slot_exact(net: Network, p: SynapsePlan, w: np.ndarray | SparseWeights) -> bool:
    if p.weight_exp >= 0:
        return True
    if not p.graded:
        if isinstance(w, SparseWeights):
            return bool(np.max(w.row_sums(np.abs(w.data).astype(np.int64)), initial=0) < _I32_LIM)
        return bool(np.max(np.abs(w).sum(axis=1), initial=0) < _I32_LIM)
    if not p.per_product_wrap:
        return True
    assert isinstance(w, np.ndarray)  # per-product wrap: delays, which sparse weights do not take
    src = net.group(p.source)
    payload = (1 << int(src.num_message_bits)) if hasattr(src, "num_message_bits") else 1
    return bool(np.max(np.abs(w), initial=0) * payload * w.shape[1] < _I32_LIM)


def _offsets(groups: tuple, start: int) -> tuple[dict[str, tuple[int, int]], int]:
    """Consecutive index ranges ``[a, z)`` of ``groups`` from ``start``, and the end."""
    out, pos = {}, start
    for g in groups:
        out[g.name] = (pos, pos + int(g.n))
        pos += int(g.n)
    return out, pos


def _neuron_params(net: Network, offsets: Mapping[str, tuple[int, int]], nn: int) -> np.ndarray:
    """The ``(N_PARAMS, Nn)`` parameter rows ``P_*`` of every neuron."""
    nparams = np.zeros((N_PARAMS, nn), np.int64)
    for g in net.groups:
        assert isinstance(g, LIFGroup)
        a, z = offsets[g.name]
        tern = isinstance(g, TernaryLIFGroup)
        nparams[P_KEEP_U, a:z] = bits.DECAY_UNITY - (int(g.du) + bits.DU_OFFSET)
        nparams[P_KEEP_V, a:z] = bits.DECAY_UNITY - (int(g.dv) + bits.DV_OFFSET)
        nparams[P_BIAS, a:z] = kernels.effective_bias(g.bias_mant, g.bias_exp)
        nparams[P_HI, a:z] = int(g.vth) << bits.VTH_SHIFT
        nparams[P_LO, a:z] = (int(g.vth_lo) << bits.VTH_SHIFT) if isinstance(g, TernaryLIFGroup) else 0
        nparams[P_TERNARY, a:z] = int(tern)
        nparams[P_SUBTRACT, a:z] = int(g.reset == "subtract")
        nparams[P_REFRACTORY, a:z] = int(g.refractory)
        nparams[P_INTERVAL, a:z] = int(g.reset_interval)
        nparams[P_OFFSET, a:z] = int(g.reset_offset)
        nparams[P_MAX_SPIKES, a:z] = int(g.max_spikes)
    return nparams


def _weight_slots(
    plans: list[SynapsePlan], units: Mapping[str, tuple[int, int]], offsets: Mapping[str, tuple[int, int]]
) -> tuple[np.ndarray, np.ndarray]:
    """The slot rows ``S_*`` (one per connection x delay value) and the flat weight store.

    Pre-shifted 8-bit weights (``|w << e| <= 2**15``) fit int16: half the memory traffic per row. One
    flat array: slot q's (n_src, n_out) block starts at element ``slots[q, S_BASE]``, row-major, so the
    memory is the sum of the connections' sizes (no padding to the widest target).
    """
    rows, chunks, woff = [], [], 0
    for p in plans:
        s0, s1 = units[p.source]
        t0, t1 = offsets[p.target]
        for d, w in p.slots:
            if isinstance(w, SparseWeights):
                continue
            wt = np.asarray(w, np.int64).T
            if p.weight_exp > 0:
                wt = wt << p.weight_exp
            chunks.append(kernels.wrap32(wt).astype(np.int32))
            rows.append((s0, s1, t0, t1 - t0, p.weight_exp, int(p.graded), d, woff, 0))
            woff += wt.size
    narrow = all(c.size == 0 or (c.min() >= -_I16_LIM and c.max() < _I16_LIM) for c in chunks)
    wmat = np.zeros(max(woff, 1), np.int16 if narrow else np.int32)
    for r, c in zip(rows, chunks, strict=True):
        wmat[r[7] : r[7] + c.size] = c.ravel()
    return np.array(rows, np.int64).reshape(-1, N_SLOT_COLUMNS), wmat


def _sparse_slots(
    plans: list[SynapsePlan], units: Mapping[str, tuple[int, int]], offsets: Mapping[str, tuple[int, int]]
) -> tuple[np.ndarray, SparseStore]:
    """The slot rows of sparse connections (``S_SPARSE = 1``, ``S_BASE`` into ``sp_ptr``) and the
    store: per slot, the source-major entry pointers (absolute), target offsets and weights."""
    rows, ptrs, tgts, ws = [], [], [], []
    pbase = ebase = 0
    for p in plans:
        s0, s1 = units[p.source]
        t0, t1 = offsets[p.target]
        for d, w in p.slots:
            if not isinstance(w, SparseWeights):
                continue
            colptr, tgt, vals = w.by_source()
            v = vals.astype(np.int64)
            if p.weight_exp > 0:
                v = v << p.weight_exp
            ptrs.append(colptr + ebase)
            tgts.append(tgt.astype(np.int32))
            ws.append(kernels.wrap32(v).astype(np.int32))
            rows.append((s0, s1, t0, t1 - t0, p.weight_exp, int(p.graded), d, pbase, 1))
            pbase += colptr.size
            ebase += v.size
    narrow = all(c.size == 0 or (c.min() >= -_I16_LIM and c.max() < _I16_LIM) for c in ws)
    store = SparseStore(
        ptr=np.concatenate(ptrs) if ptrs else np.zeros(1, np.int64),
        tgt=np.concatenate(tgts) if tgts else np.zeros(1, np.int32),
        w=(np.concatenate(ws) if ws else np.zeros(1, np.int32)).astype(np.int16 if narrow else np.int32),
    )
    return np.array(rows, np.int64).reshape(-1, N_SLOT_COLUMNS), store


def fast_plan(net: Network, plans: list[SynapsePlan]) -> FastPlan | None:
    """The packing of ``net`` for the compiled loop, or None where the loop does not apply."""
    if not all(isinstance(g, LIFGroup) for g in net.groups):
        return None
    if not all(_slot_exact(net, p, w) for p in plans for _, w in p.slots):
        return None
    offsets, nn = _offsets(net.groups, 0)
    in_offsets, end = _offsets(net.inputs, nn)
    dense_slots, weights = _weight_slots(plans, {**offsets, **in_offsets}, offsets)
    sparse_slots, store = _sparse_slots(plans, {**offsets, **in_offsets}, offsets)
    slots = np.concatenate([dense_slots, sparse_slots])
    loop = LoopNet(
        nparams=_neuron_params(net, offsets, nn),
        slots=slots,
        weights=weights,
        max_out=int(max(slots[:, S_NOUT], default=1)),
        sp_ptr=store.ptr,
        sp_tgt=store.tgt,
        sp_w=store.w,
    )
    return FastPlan(
        offsets=offsets,
        in_offsets=in_offsets,
        n_neurons=nn,
        n_inputs=end - nn,
        ring_len=1 + max((p.max_delay for p in plans), default=0),
        loop=loop,
    )


def pack_state(
    fp: FastPlan, groups: Mapping[str, LIFState], rings: Mapping[str, np.ndarray], t_now: int, batch: int
) -> LoopState:
    """Dense-engine state (per-group states and rings) -> the kernel's concatenated arrays."""
    u = np.zeros((batch, fp.n_neurons), np.int64)
    v = np.zeros_like(u)
    ref = np.zeros_like(u)
    ring = np.zeros((batch, fp.ring_len, fp.n_neurons), np.int32)
    for name, (a, z) in fp.offsets.items():
        st = groups[name]
        u[:, a:z], v[:, a:z], ref[:, a:z] = st.u, st.v, st.refractory
        gr = rings[name]
        for due in range(t_now + 1, t_now + 1 + gr.shape[0]):
            ring[:, due % fp.ring_len, a:z] = kernels.wrap32(gr[due % gr.shape[0]])
    return LoopState(u=u, v=v, ref=ref, ring=ring)


def unpack_state(
    fp: FastPlan, st: LoopState, sizes: Mapping[str, int], t_now: int
) -> tuple[dict[str, LIFState], dict[str, np.ndarray]]:
    """The kernel's arrays -> per-group states and rings (``sizes[g]`` slots each)."""
    groups, rings = {}, {}
    for name, (a, z) in fp.offsets.items():
        groups[name] = LIFState(
            u=st.u[:, a:z].copy(), v=st.v[:, a:z].copy(), refractory=st.ref[:, a:z].copy()
        )
        rlen = sizes[name]
        gr = np.zeros((rlen, st.u.shape[0], z - a), np.int64)
        for due in range(t_now + 1, t_now + 1 + rlen):
            gr[due % rlen] = st.ring[:, due % fp.ring_len, a:z]
        rings[name] = gr
    return groups, rings


def _input_array(fp: FastPlan, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
    """All input groups side by side, (B, T, Nin) int8 (one binary input group) or int32."""
    if len(inputs) == 1:
        only = next(iter(inputs.values()))
        return np.ascontiguousarray(only, dtype=only.dtype if only.dtype == np.int8 else np.int32)
    first = next(iter(inputs.values()))
    x = np.zeros((first.shape[0], first.shape[1], fp.n_inputs), np.int32)
    for name, (a, z) in fp.in_offsets.items():
        x[:, :, a - fp.n_neurons : z - fp.n_neurons] = inputs[name]
    return x


def _record_buffers(
    fp: FastPlan, record: Mapping[str, tuple[str, ...]], counters: bool, batch: int, steps: int
) -> LoopRecord:
    """Buffers over the span of neurons of the groups recording each variable (a variable recorded by
    the output group alone costs that group's width per step, not the network's)."""
    spans = np.zeros((len(RECORDABLE), 2), np.int64)
    buf = {}
    for k, var in enumerate(RECORDABLE):
        ranges = [fp.offsets[name] for name, vars_ in record.items() if var in vars_]
        if ranges:
            spans[k] = min(a for a, _ in ranges), max(z for _, z in ranges)
        width = int(spans[k, 1] - spans[k, 0])
        buf[var] = np.zeros((batch, steps, width) if ranges else (1, 1, 1), _RECORD_DTYPES[var])
    flags = np.array(
        [*(int(spans[k, 1] > spans[k, 0]) for k in range(len(RECORDABLE))), int(counters)], np.int64
    )
    return LoopRecord(
        spikes=buf["spikes"], u=buf["u"], v=buf["v"], a_in=buf["a_in"], flags=flags, spans=spans
    )


def _counter_arrays(fp: FastPlan, counters: bool, batch: int) -> LoopCounters:
    width = fp.n_neurons + fp.n_inputs
    cshape = (batch, width) if counters else (1, 1)
    return LoopCounters(
        spikes=np.zeros(cshape, np.int64),
        payload=np.zeros(cshape, np.int64),
        events=np.zeros((batch, fp.n_neurons) if counters else (1, 1), np.int64),
    )


def _raw_counters(fp: FastPlan, cnt: LoopCounters) -> RawCounters:
    units = {**fp.offsets, **fp.in_offsets}
    return RawCounters(
        spikes={k: cnt.spikes[:, a:z] for k, (a, z) in units.items()},
        payload={k: cnt.payload[:, a:z] for k, (a, z) in units.items()},
        events={k: cnt.events[:, a:z].sum(axis=1) for k, (a, z) in fp.offsets.items()},
    )


class FastRun(NamedTuple):
    """A compiled run in progress (:func:`start_fast`): the whole input, the kernel's packed state and
    the full-length recordings and counters, which :func:`advance_fast` fills window by window in place
    (nothing is copied or repacked between windows)."""

    fp: FastPlan
    x: np.ndarray
    t_now: int
    record: Mapping[str, tuple[str, ...]]
    state: LoopState
    rec: LoopRecord
    cnt: LoopCounters
    sizes: Mapping[str, int]
    counting: bool


def start_fast(
    fp: FastPlan,
    inputs: Mapping[str, np.ndarray],
    *,
    record: Mapping[str, tuple[str, ...]],
    groups: Mapping[str, LIFState],
    rings: Mapping[str, np.ndarray],
    t_now: int,
    counters: bool,
) -> FastRun:
    """Pack the state after step ``t_now`` and allocate the recordings for all steps of ``inputs``."""
    x = _input_array(fp, inputs)  # no copy for one contiguous int8 input group
    batch, steps = int(x.shape[0]), int(x.shape[1])
    return FastRun(
        fp=fp,
        x=x,
        t_now=t_now,
        record=record,
        state=pack_state(fp, groups, rings, t_now, batch),
        rec=_record_buffers(fp, record, counters, batch, steps),
        cnt=_counter_arrays(fp, counters, batch),
        sizes={name: rings[name].shape[0] for name in fp.offsets},
        counting=counters,
    )


def advance_fast(run: FastRun, start: int, stop: int) -> None:
    """Run input indices ``start .. stop - 1`` (steps ``t_now + start + 1 .. t_now + stop``); windows
    must follow each other from 0."""
    kernel = run_lif_network_parallel if run.x.shape[0] > 1 else run_lif_network_serial
    kernel(run.x, start, stop - start, run.t_now + start, run.fp.loop, run.state, run.rec, run.cnt)


def finish_fast(run: FastRun) -> FastResult:
    """The recordings (views of the buffers: no copy) and the state after the last step."""
    fp = run.fp
    outputs: dict[str, np.ndarray] = {}
    for name, vars_ in run.record.items():
        a, z = fp.offsets[name]
        for var in vars_:
            lo = int(run.rec.spans[RECORDABLE.index(var), 0])
            outputs[f"{name}/{var}"] = getattr(run.rec, var)[:, :, a - lo : z - lo]
    gstate, grings = unpack_state(fp, run.state, run.sizes, run.t_now + int(run.x.shape[1]))
    return FastResult(outputs, gstate, grings, _raw_counters(fp, run.cnt) if run.counting else None)
