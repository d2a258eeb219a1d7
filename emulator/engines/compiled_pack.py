"""Packing a network for the compiled loop of :mod:`.engine_fast_kernel`, and back.

Used by the dense engine for fixed-point runs with ``overflow="wrap"`` when every group is a
LIF-family group and every connection's arithmetic is provably exact in the int32 ring (see the kernel
module docstring); :func:`fast_plan` returns ``None`` otherwise and the numpy path runs instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from spikeport.emulator import bits, kernels
from spikeport.emulator.engines.synapses import SynapsePlan
from spikeport.emulator.network import LIFGroup, Network, TernaryLIFGroup

_I32_LIM = 1 << 31


@dataclass(frozen=True, kw_only=True, eq=False)
class FastPlan:
    offsets: dict[str, tuple[int, int]]  # neuron group -> [start, stop) in 0..Nn
    in_offsets: dict[str, tuple[int, int]]  # input group -> [start, stop) in Nn..Nn+Nin
    n_neurons: int
    n_inputs: int
    ring_len: int
    nparams: np.ndarray
    slots: np.ndarray
    weights: np.ndarray
    max_out: int


def _slot_exact(net: Network, p: SynapsePlan, w: np.ndarray) -> bool:
    if p.weight_exp >= 0:
        return True
    if not p.graded:
        return bool(np.max(np.abs(w).sum(axis=1), initial=0) < _I32_LIM)
    if not p.per_product_wrap:
        return True
    src = net.group(p.source)
    payload = (1 << int(src.num_message_bits)) if hasattr(src, "num_message_bits") else 1
    return bool(np.max(np.abs(w), initial=0) * payload * w.shape[1] < _I32_LIM)


def fast_plan(net: Network, plans: list[SynapsePlan]) -> FastPlan | None:
    if not all(isinstance(g, LIFGroup) for g in net.groups):
        return None
    for p in plans:
        if not all(_slot_exact(net, p, w) for _, w in p.slots):
            return None
    offsets, pos = {}, 0
    for g in net.groups:
        offsets[g.name] = (pos, pos + int(g.n))
        pos += int(g.n)
    nn = pos
    in_offsets = {}
    for ig in net.inputs:
        in_offsets[ig.name] = (pos, pos + int(ig.n))
        pos += int(ig.n)
    units = {**offsets, **in_offsets}
    nparams = np.zeros((10, nn), np.int64)
    for g in net.groups:
        assert isinstance(g, LIFGroup)
        a, z = offsets[g.name]
        tern = isinstance(g, TernaryLIFGroup)
        nparams[0, a:z] = bits.DECAY_UNITY - (int(g.du) + bits.DU_OFFSET)
        nparams[1, a:z] = bits.DECAY_UNITY - (int(g.dv) + bits.DV_OFFSET)
        nparams[2, a:z] = kernels.effective_bias(g.bias_mant, g.bias_exp)
        nparams[3, a:z] = int(g.vth) << bits.VTH_SHIFT
        nparams[4, a:z] = (int(g.vth_lo) << bits.VTH_SHIFT) if isinstance(g, TernaryLIFGroup) else 0
        nparams[5, a:z] = int(tern)
        nparams[6, a:z] = int(g.reset == "subtract")
        nparams[7, a:z] = int(g.refractory)
        nparams[8, a:z] = int(g.reset_interval)
        nparams[9, a:z] = int(g.reset_offset)
    rows, chunks, woff = [], [], 0
    for p in plans:
        s0, s1 = units[p.source]
        t0, t1 = offsets[p.target]
        for d, w in p.slots:
            wt = np.asarray(w, np.int64).T
            if p.weight_exp > 0:
                wt = wt << p.weight_exp
            chunks.append(kernels.wrap32(wt).astype(np.int32))
            rows.append((s0, s1, t0, t1 - t0, p.weight_exp, int(p.graded), d, woff))
            woff += wt.size
    max_out = max((r[3] for r in rows), default=1)
    # pre-shifted 8-bit weights (|w << e| <= 2**15) fit int16: half the memory traffic per row.
    # One flat array: slot q's (n_src, n_out) block starts at element slots[q, 7], row-major, so the
    # memory is the sum of the connections' sizes (no padding to the widest target).
    narrow = all(c.size == 0 or (c.min() >= -(2**15) and c.max() < 2**15) for c in chunks)
    wmat = np.zeros(max(woff, 1), np.int16 if narrow else np.int32)
    for r, c in zip(rows, chunks, strict=True):
        wmat[r[7] : r[7] + c.size] = c.ravel()
    ring_len = 1 + max((p.max_delay for p in plans), default=0)
    return FastPlan(
        offsets=offsets,
        in_offsets=in_offsets,
        n_neurons=nn,
        n_inputs=pos - nn,
        ring_len=ring_len,
        nparams=nparams,
        slots=np.array(rows, np.int64).reshape(-1, 8),
        weights=wmat,
        max_out=max_out,
    )


def pack_state(
    fp: FastPlan, groups: Mapping[str, Any], rings: Mapping[str, np.ndarray], t_now: int, batch: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Dense-engine state (per-group dicts and rings) -> the kernel's concatenated arrays."""
    u = np.zeros((batch, fp.n_neurons), np.int64)
    v = np.zeros_like(u)
    ref = np.zeros_like(u)
    ring = np.zeros((batch, fp.ring_len, fp.n_neurons), np.int32)
    for name, (a, z) in fp.offsets.items():
        u[:, a:z], v[:, a:z], ref[:, a:z] = groups[name]["u"], groups[name]["v"], groups[name]["refractory"]
        gr = rings[name]
        for due in range(t_now + 1, t_now + 1 + gr.shape[0]):
            ring[:, due % fp.ring_len, a:z] = kernels.wrap32(gr[due % gr.shape[0]])
    return u, v, ref, ring


def unpack_state(
    fp: FastPlan,
    u: np.ndarray,
    v: np.ndarray,
    ref: np.ndarray,
    ring: np.ndarray,
    sizes: Mapping[str, int],
    t_now: int,
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, np.ndarray]]:
    groups, rings = {}, {}
    for name, (a, z) in fp.offsets.items():
        groups[name] = {"u": u[:, a:z].copy(), "v": v[:, a:z].copy(), "refractory": ref[:, a:z].copy()}
        rlen = sizes[name]
        gr = np.zeros((rlen, u.shape[0], z - a), np.int64)
        for due in range(t_now + 1, t_now + 1 + rlen):
            gr[due % rlen] = ring[:, due % fp.ring_len, a:z]
        rings[name] = gr
    return groups, rings


def run_fast(
    net: Network,
    fp: FastPlan,
    inputs: Mapping[str, np.ndarray],
    *,
    record: Mapping[str, tuple[str, ...]],
    groups: Mapping[str, Any],
    rings: Mapping[str, np.ndarray],
    t_now: int,
    counters: bool,
) -> tuple[
    dict[str, np.ndarray],
    dict[str, dict[str, np.ndarray]],
    dict[str, np.ndarray],
    dict[str, dict[str, np.ndarray]] | None,
]:
    """Run the compiled loop; returns outputs, group states, rings and raw counters (or None)."""
    from spikeport.emulator.engines.compiled_loop import run_lif_network_parallel, run_lif_network_serial

    first = next(iter(inputs.values()))
    batch, steps = int(first.shape[0]), int(first.shape[1])
    if len(inputs) == 1:
        only = next(iter(inputs.values()))
        x = np.ascontiguousarray(only, dtype=only.dtype if only.dtype == np.int8 else np.int32)
    else:
        x = np.zeros((batch, steps, fp.n_inputs), np.int32)
        for name, (a, z) in fp.in_offsets.items():
            x[:, :, a - fp.n_neurons : z - fp.n_neurons] = inputs[name]
    u, v, ref, ring = pack_state(fp, groups, rings, t_now, batch)
    wanted = {var for vars_ in record.values() for var in vars_}
    full = (batch, steps, fp.n_neurons)
    dummy = (1, 1, 1)
    rec: dict[str, np.ndarray] = {
        "spikes": np.zeros(full if "spikes" in wanted else dummy, np.int8),
        "u": np.zeros(full if "u" in wanted else dummy, np.int32),
        "v": np.zeros(full if "v" in wanted else dummy, np.int32),
        "a_in": np.zeros(full if "a_in" in wanted else dummy, np.int32),
    }
    flags = np.array([*(int(k in wanted) for k in ("spikes", "u", "v", "a_in")), int(counters)], np.int64)
    width = fp.n_neurons + fp.n_inputs
    cshape = (batch, width) if counters else (1, 1)
    cnt_spk = np.zeros(cshape, np.int64)
    cnt_pay = np.zeros(cshape, np.int64)
    cnt_ev = np.zeros((batch, fp.n_neurons) if counters else (1, 1), np.int64)
    kernel = run_lif_network_parallel if batch > 1 else run_lif_network_serial
    kernel(
        x, t_now, u, v, ref, ring, fp.nparams, fp.slots, fp.weights,
        rec["spikes"], rec["u"], rec["v"], rec["a_in"], flags, cnt_spk, cnt_pay, cnt_ev, fp.max_out,
    )  # fmt: skip
    outputs: dict[str, np.ndarray] = {}
    for name, vars_ in record.items():
        a, z = fp.offsets[name]
        for var in vars_:
            outputs[f"{name}/{var}"] = rec[var][:, :, a:z]  # a view: no copy of the recording
    sizes = {name: rings[name].shape[0] for name in fp.offsets}
    gstate, grings = unpack_state(fp, u, v, ref, ring, sizes, t_now + steps)
    raw: dict[str, dict[str, np.ndarray]] | None = None
    if counters:
        units = {**fp.offsets, **fp.in_offsets}
        raw = {
            "spikes": {k: cnt_spk[:, a:z] for k, (a, z) in units.items()},
            "payload": {k: cnt_pay[:, a:z] for k, (a, z) in units.items()},
            "events": {k: cnt_ev[:, a:z].sum(axis=1) for k, (a, z) in fp.offsets.items()},
        }
    return outputs, gstate, grings, raw
