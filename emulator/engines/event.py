"""The event-driven engine (``engine="event"``): bit-exact with the dense engine, touching only neurons
that receive input or must change.

Per neuron the state is advanced lazily: a neuron with ``u = 0`` and no input follows
``v <- clip(decay(v, dv) + bias)``, which :func:`~.event_kernels.ff` fast-forwards exactly (by
bands on which the rounded decay is affine; proven equal to step-by-step rounding in
``tests/test_event_engine.py``). After each update the engine either keeps the neuron *active*
(``u != 0``: its current still decays, so it is stepped every step) or predicts its next bias-driven
spike with ``ff`` and pushes it on a heap (or nothing, if it settles below threshold); it is touched
again when that spike is due or when input arrives. "Active" precisely: the next ``u`` without input,
``decay(u, du + 1)``, is nonzero (so with du = 4095 a neuron is dormant right after its input step).
Synaptic work is per emitted spike (CSR rows of nonzero weights; ``weight_exp >= 0`` adds straight
into the ring, ``weight_exp < 0`` through per-step scratch sums so the floor shift matches Lava).
Cost per step: O(active neurons + spikes x fan-out + due heap entries x log N), nothing for a step
without events (inputs are passed as their nonzero entries, :func:`~.event_loop.sparse_inputs`); a
neuron without bias that goes dormant within its thresholds is not predicted at all (it cannot spike
before its next input) and its decay over a long gap is set to 0 in O(1) where that is proven
(``event_loop._decays_to_zero``). Per sample, a fresh run (no ``state``) starts from the plan's list
of non-quiescent neurons and catches up only the neurons it touched, so the O(N) work left is copying
the parameter rows and allocating the outputs. Each touched neuron is a random memory access, so the
engine pays off below roughly 1% activity (see ``benchmarks/event_scaling.py``). Pending activations in a returned state equal the dense engine's
modulo 2**32 (only their int32 wrap reaches a neuron).

Recording and laziness: recording ``spikes`` only is fully lazy. Recording ``u``, ``v`` or ``a_in`` of a
group needs its values at every step, so that group's neurons are kept active (stepped every step,
as in the dense engine); other groups stay lazy. LIFReset groups (``reset_interval > 0``) are also
kept active. Supported: LIFGroup / TernaryLIFGroup in fixed mode, zero or subtract reset, bias,
delays, recurrence, graded payloads, every du/dv; ``overflow="wrap"``; resuming a dense run's state
and returning one (:class:`~.dense.DenseState`), so the two engines can hand over mid-run.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any

import numpy as np
from spikeport.emulator import bits, kernels
from spikeport.emulator.energy.counters import CounterAccumulator
from spikeport.emulator.engines import event_loop as L
from spikeport.emulator.engines.chunking import timed_chunks
from spikeport.emulator.engines.dense import DenseState, ring_sizes
from spikeport.emulator.engines.event_loop import (
    BINARY,
    GRADED_PRODUCT,
    GRADED_SUM,
    run_sample,
    sparse_inputs,
)
from spikeport.emulator.engines.group_models import LIFState
from spikeport.emulator.errors import UnsupportedError, ValidationError
from spikeport.emulator.network import Connection, LIFGroup, Network, TernaryLIFGroup
from spikeport.emulator.result import RunResult

DENSE_VARIABLES = ("u", "v", "a_in")


def _lif_rows(g: LIFGroup, always: bool) -> np.ndarray:
    if g.refractory:
        raise UnsupportedError(
            f"event engine: {type(g).__name__}({g.name!r}).refractory > 0 is not supported "
            "(supported: refractory = 0; use engine='dense')"
        )
    if g.max_spikes > 1:
        raise UnsupportedError(
            f"event engine: {type(g).__name__}({g.name!r}).max_spikes > 1 is not supported "
            "(supported: max_spikes = 1; use engine='dense')"
        )
    n = int(g.n)
    rows = np.zeros((n, L.NRN_COLUMNS), L.ROW_DTYPE)
    rows[:, L.U], rows[:, L.V] = np.asarray(g.u0, np.int64), np.asarray(g.v0, np.int64)
    rows[:, L.DUDV] = (int(g.du) + 1) | (int(g.dv) << 16)  # see event_loop.DUDV
    rows[:, L.BIAS] = kernels.effective_bias(g.bias_mant, g.bias_exp)
    rows[:, L.TH] = int(g.vth) << bits.VTH_SHIFT
    flags = L.SUBTRACT if g.reset == "subtract" else 0
    if isinstance(g, TernaryLIFGroup):
        rows[:, L.TL], flags = int(g.vth_lo) << bits.VTH_SHIFT, flags | L.TERNARY
    interval = int(g.reset_interval)
    rows[:, L.FLAGS] = flags | (L.ALWAYS if always or interval > 0 else 0)
    rows[:, L.IVL] = interval
    rows[:, L.OFS] = int(g.reset_offset) % interval if interval else 0
    return rows


#: group type -> parameter-row builder (the supported types)
GROUP_ROWS = {LIFGroup: _lif_rows, TernaryLIFGroup: _lif_rows}


def _group_rows(g: Any, always: bool) -> np.ndarray:
    build = GROUP_ROWS.get(type(g))
    if build is None:
        names = ", ".join(t.__name__ for t in GROUP_ROWS)
        raise UnsupportedError(
            f"event engine: unsupported group type {type(g).__name__!r} ({g.name!r}); supported: {names}"
        )
    return build(g, always)


def _synapses(c: Connection, src0: int, tgt0: int, base: int) -> tuple[np.ndarray, np.ndarray]:
    """Synapse entries (source id, then the columns of :data:`.event_loop.E_COLUMNS`) and the
    scratch cells (``MODE, WEXP, DELAY, TARGET``) of the connection.

    ``weight_exp >= 0``: every activation path is linear modulo 2**32
    (docs/lava-arithmetic.md, "Activation and weight exponent"), so each
    synapse adds ``(w << weight_exp) * payload`` straight into the target's ring slot (scratch -1).
    ``weight_exp < 0``: the floor shift needs the per-step sum of the connection for each delay value,
    so synapses add into a scratch cell (connection x delay value x target) flushed after the step.
    """
    tgt, src, vals = c.nonzero()  # dense or sparse weights: only the non-zero entries
    eff = kernels.effective_weights(vals, int(c.num_weight_bits))  # zeros do not change the sign mode
    keep = eff != 0
    tgt, src, w_nz = tgt[keep], src[keep], eff[keep].astype(np.int64)
    n_t = int(c.weights.shape[0])
    if c.delays is None:
        values, which = np.zeros(1, np.int64), np.zeros(tgt.size, np.int64)
    else:
        d = np.asarray(c.delays).astype(np.int64)[tgt, src]
        values, which = np.unique(d, return_inverse=True)
    if c.num_message_bits == 0:
        mode = BINARY
    else:
        mode = GRADED_PRODUCT if c.delays is not None and not c.sparse else GRADED_SUM
    e = int(c.weight_exp)
    entries = np.zeros((tgt.size, 1 + len(L.E_COLUMNS)), np.int64)
    entries[:, 0] = src + src0
    entries[:, 1 + L.E_TARGET] = tgt + tgt0
    entries[:, 1 + L.E_DELAY] = values[which]
    entries[:, 1 + L.E_MODE] = mode
    if e >= 0:
        entries[:, 1 + L.E_SCR] = -1
        entries[:, 1 + L.E_W] = w_nz << e
        return entries, np.zeros((0, 4), np.int64)
    entries[:, 1 + L.E_SCR] = base + which * n_t + tgt
    entries[:, 1 + L.E_W] = w_nz
    k = values.size * n_t
    cells = np.stack(
        [
            np.full(k, mode),
            np.full(k, e),
            np.repeat(values, n_t),
            np.tile(np.arange(n_t) + tgt0, values.size),
        ],
        axis=1,
    ).astype(np.int64)  # columns MODE, WEXP, DELAY, TARGET
    return entries, cells


class _Plan:
    """Flat arrays of a network for :func:`run_sample`: neuron rows, CSR synapses, scratch cells."""

    def __init__(self, net: Network, record: Mapping[str, tuple[str, ...]]) -> None:
        self.offset: dict[str, int] = {}
        rows = []
        n = 0
        for g in net.groups:
            always = any(v in DENSE_VARIABLES for v in record.get(g.name, ()))
            rows.append(_group_rows(g, always))
            self.offset[g.name] = n
            n += int(g.n)
        self.n = n
        for k, ig in enumerate(net.inputs):
            self.offset[ig.name] = n + sum(int(h.n) for h in net.inputs[:k])
        self.rows = np.concatenate(rows)
        self.rows[:, L.SPK] = _columns(net, self, record, False)
        self.rows[:, L.REC] = _columns(net, self, record, True)
        self.n_spk = int(self.rows[:, L.SPK].max(initial=-1)) + 1  # recorded spike columns
        self.n_rec = int(self.rows[:, L.REC].max(initial=-1)) + 1  # recorded u / v / a_in columns
        self.act0 = _non_quiescent(self.rows)
        syn, cells, base = [], [], 0
        for c in net.connections:
            entries, cell = _synapses(c, self.offset[c.source], self.offset[c.target], base)
            syn.append(entries)
            cells.append(cell)
            base += cell.shape[0]
        n_src = n + sum(int(g.n) for g in net.inputs)
        ent = np.concatenate([*syn, np.zeros((0, 1 + len(L.E_COLUMNS)), np.int64)])
        ent = ent[np.argsort(ent[:, 0], kind="stable")]
        self.src_ptr = np.concatenate([[0], np.cumsum(np.bincount(ent[:, 0], minlength=n_src))]).astype(
            np.int64
        )
        self.syn = np.ascontiguousarray(ent[:, 1:])
        self.scr = np.zeros((base, 6), np.int64)
        if base:
            self.scr[:, L.MODE :] = np.concatenate(cells)
        self.ring_size = max((c.max_delay for c in net.connections), default=0) + 2
        self.sizes = ring_sizes(net)  # the dense engine's ring slots per group (its state's layout)


def _non_quiescent(rows: np.ndarray) -> np.ndarray:
    """The rows a fresh run steps at its first step (``event_loop._quiescent`` is false for them)."""
    f = rows[:, L.FLAGS]
    rest = (rows[:, L.U] == 0) & (rows[:, L.V] == 0) & (rows[:, L.BIAS] == 0) & ((f & L.ALWAYS) == 0)
    rest &= ((f & L.TERNARY) == 0) | (rows[:, L.TL] <= 0)
    return np.flatnonzero(~rest).astype(np.int64)


_PLANS: weakref.WeakKeyDictionary[Network, dict[Any, _Plan]] = weakref.WeakKeyDictionary()


def _plan(net: Network, record: Mapping[str, tuple[str, ...]]) -> _Plan:
    """The plan of ``net`` for ``record``, built once per network object (records are immutable)."""
    key = tuple(sorted((k, tuple(v)) for k, v in record.items()))
    per_net = _PLANS.setdefault(net, {})
    if key not in per_net:
        per_net[key] = _Plan(net, record)
    return per_net[key]


def _columns(net: Network, plan: _Plan, record: Mapping[str, tuple[str, ...]], dense: bool) -> np.ndarray:
    col = np.full(plan.n, -1, np.int64)
    k = 0
    for g in net.groups:
        vars_ = record.get(g.name, ())
        if (dense and any(v in DENSE_VARIABLES for v in vars_)) or (not dense and "spikes" in vars_):
            o = plan.offset[g.name]
            col[o : o + int(g.n)] = np.arange(k, k + int(g.n))
            k += int(g.n)
    return col


def _load_state(net: Network, plan: _Plan, state: Any, batch: int) -> tuple[int, np.ndarray, np.ndarray]:
    """Start step, per-sample neuron rows (B, N, 16) and rings (B, R, N, 2) from ``state`` or the
    initial values (a dense run's ring slot ``t % R_g`` moves to ``t % R`` with its due step)."""
    nrn = np.repeat(plan.rows[None], batch, axis=0)
    ring = np.zeros((batch, plan.ring_size, plan.n, 2), np.int64)
    if state is None:
        return 0, nrn, ring
    sizes = plan.sizes
    if not isinstance(state, DenseState) or state.batch != batch or state.mode != "fixed":
        raise ValidationError("run.state: must be the fixed-mode state of a run with the same batch size")
    t0 = int(state.time_step)
    for g in net.groups:
        o, m = plan.offset[g.name], int(g.n)
        gs, gr = state.groups[g.name], state.rings[g.name]
        if (
            not isinstance(gs, LIFState)
            or gr.shape != (sizes[g.name], batch, m)
            or np.any(gs.refractory != 0)
        ):
            raise ValidationError(f"run.state: does not match group {g.name!r} of this network")
        nrn[:, o : o + m, L.U], nrn[:, o : o + m, L.V] = gs.u, gs.v
        for k in range(1, sizes[g.name] + 1):
            due = t0 + k
            val = gr[due % sizes[g.name]]
            ring[:, due % plan.ring_size, o : o + m, 0] = val
            ring[:, due % plan.ring_size, o : o + m, 1] = np.where(val != 0, due, 0)
    return t0, nrn, ring


def _save_state(net: Network, plan: _Plan, t_end: int, nrn: np.ndarray, ring: np.ndarray) -> DenseState:
    sizes = plan.sizes
    groups, rings = {}, {}
    for g in net.groups:
        o, m = plan.offset[g.name], int(g.n)
        sl = slice(o, o + m)
        u = nrn[:, sl, L.U].astype(np.int64)
        groups[g.name] = LIFState(u=u, v=nrn[:, sl, L.V].astype(np.int64), refractory=np.zeros_like(u))
        r = np.zeros((sizes[g.name], nrn.shape[0], m), np.int64)
        for k in range(1, sizes[g.name] + 1):
            r[(t_end + k) % sizes[g.name]] = kernels.wrap32(ring[:, (t_end + k) % plan.ring_size, sl, 0])
        rings[g.name] = r
    return DenseState(time_step=t_end, batch=nrn.shape[0], mode="fixed", groups=groups, rings=rings)


def _counters(net: Network, plan: _Plan, inputs: Mapping[str, np.ndarray], nrn: np.ndarray) -> Any:
    batch, steps = next(iter(inputs.values())).shape[:2]
    senders = {g.name: int(g.n) for g in (*net.inputs, *net.groups)}
    acc = CounterAccumulator(batch, senders, [g.name for g in net.groups], False)
    acc.steps = steps
    for ig in net.inputs:
        x = inputs[ig.name]
        acc.spikes[ig.name] += np.count_nonzero(x, axis=1)
        acc.payload[ig.name] += np.abs(x).sum(axis=1)
    for g in net.groups:
        sl = slice(plan.offset[g.name], plan.offset[g.name] + int(g.n))
        acc.spikes[g.name] += nrn[:, sl, L.CNT_SPK]
        acc.payload[g.name] += nrn[:, sl, L.CNT_SPK]
        acc.events[g.name] += nrn[:, sl, L.CNT_AIN].sum(axis=1)
    return acc.freeze()


def run_event(
    net: Network,
    inputs: Mapping[str, np.ndarray],
    *,
    record: Mapping[str, tuple[str, ...]],
    mode: str,
    overflow: str,
    state: Any,
    counters: bool,
    progress: bool = False,
) -> RunResult:
    """Run ``net`` event-driven on validated inputs; same contract as :func:`~.dense.run_dense`."""
    if mode != "fixed" or overflow != "wrap":
        raise UnsupportedError(
            "event engine: supports mode='fixed' with overflow='wrap' only "
            f"(got mode={mode!r}, overflow={overflow!r})"
        )
    plan = _plan(net, record)
    first = next(iter(inputs.values()))
    batch, steps = int(first.shape[0]), int(first.shape[1])
    xs = [np.asarray(inputs[g.name]) for g in net.inputs]
    x_ptr, x_ch, x_val = sparse_inputs(xs[0] if len(xs) == 1 else np.concatenate(xs, axis=2))
    t0, nrn, ring = _load_state(net, plan, state, batch)
    if t0 + steps > L.MAX_STEP:
        raise UnsupportedError(
            f"event engine: runs up to step {L.MAX_STEP} (got state.time_step {t0} + {steps} steps); "
            "use engine='dense'"
        )
    out_spk = np.zeros((batch, steps, plan.n_spk), np.int8)
    out_uva = np.zeros((3, batch, steps, plan.n_rec), np.int32)
    work = np.zeros((batch, 2), np.int64)
    for b in range(batch):
        for s, e in timed_chunks(steps, plan, "event"):  # return to Python often: Ctrl-C within ~0.25 s
            work[b] += run_sample(
                t0 + s, x_ptr[b][s : e + 1], x_ch, x_val, nrn[b], ring[b], plan.src_ptr, plan.syn,
                plan.scr.copy(), out_spk[b][s:e], out_uva[0, b][s:e], out_uva[1, b][s:e], out_uva[2, b][s:e],
                plan.act0, state is None and s == 0,
            )  # fmt: skip
    outputs = {}
    for g in net.groups:
        o = plan.offset[g.name]
        for var in record.get(g.name, ()):
            cols = plan.rows[o : o + int(g.n), L.SPK if var == "spikes" else L.REC]
            src = out_spk if var == "spikes" else out_uva[("u", "v", "a_in").index(var)]
            outputs[f"{g.name}/{var}"] = src[:, :, cols[0] : cols[-1] + 1]
    meta = {
        "backend": "emulator",
        "engine": "event",
        "mode": mode,
        "overflow": overflow,
        "neuron_updates": int(work[:, 0].sum()),
        "fast_forwards": int(work[:, 1].sum()),
    }
    return RunResult(
        outputs=outputs,
        state=_save_state(net, plan, t0 + steps, nrn, ring),
        counters=_counters(net, plan, inputs, nrn) if counters else None,
        metadata=meta,
    )
