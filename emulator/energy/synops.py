"""Activity counters of a run: synaptic operations, neuron updates, spikes, messages.

Definitions (per sample; a run of ``T`` steps; step ``t = i + 1`` for array index ``i``):

- **spikes sent** by a group: the number of (step, neuron) pairs with a nonzero output message
  (binary spike, ternary +-1, or a nonzero graded payload). Input groups count too.
- **synaptic operation (synop)** of a connection: one per (message, nonzero synapse) pair, i.e.
  ``sum_j spikes_j * fanout_j`` with ``fanout_j`` the number of nonzero *effective* weights in column
  ``j`` (after Lava's sign-mode clip and LSB truncation, :func:`effective_weights`; a weight that
  truncates to 0 is no synapse). This is the hardware-event convention of Loihi, Sinabs and Norse.
- **graded spikes**: a graded message still costs one synop per nonzero synapse, but the synapse
  multiplies the payload by the weight. ``synop_bits`` books each synop with the message width
  (``num_message_bits``; 1 for binary spikes), and the op kind follows the message and weight type:
  binary messages -> accumulate only; graded messages -> a multiply (``multiplies``), or a shift when
  the connection is power-of-two (``Connection.shift``; ``shifts``). ``accumulates`` equals ``synops``.
- **timing**: every message sent at steps ``1..T`` is counted, including those sent at the last step
  whose delivery (``1 + delay`` steps later) falls after the run. On Loihi (and in Lava's Dense) the
  synaptic accumulation is done in the step the message is sent; the delay only postpones when the
  sum reaches the neuron. NeuroBench, snnTorch and SANA-FE count the same way.
- **dense synapses** of a connection: ``target.n * source.n`` for a dense connection, the number of
  nonzero stored weights for ``sparse=True`` (the lowered conv's edges; zero kernel taps vanish
  when a conv is lowered, so they cannot be told apart from absent edges).
- **neuron updates**: every neuron of a neuron group is updated every step (``n * T`` updates).
  An update is **active** when the neuron has work: a message arrives on one of its nonzero synapses
  (even if the inputs cancel to ``a_in = 0``), or it enters the
  step with a state that must decay (``v != 0``, or ``u != 0`` when ``du < 4095`` so that ``u``
  carries over), or has a nonzero bias. Otherwise it is **inactive**. This is the rule of SANA-FE's
  Loihi LIF model (a compartment is "updated" when its potential is nonzero, it received a spike, or
  its bias is nonzero). ``Activity.active_rule`` says which evidence was available: ``"state"`` (``v``
  and ``u`` recorded) or ``"input"`` (no states; engine counters give only ``a_in != 0`` events, so
  the state term is missing and the count is approximate, usually low).
- **input events** (``Activity.input_events``): neuron-steps with ``a_in != 0`` (the engine's counter).
- **messages**: a spike of neuron ``j`` is sent once to each destination core that holds one of
  its nonzero synapses, with each neuron group placed alone on ``ceil(n / neurons_per_core)``
  consecutive cores (a mapping-free placement; mesh hops are not modelled). ``count_synops`` takes
  other per-neuron destination-core counts through ``destinations`` (e.g. those of a chip placement,
  :func:`spikeport.chip.resource_map.destination_cores`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from spikeport.emulator import bits, kernels
from spikeport.emulator.errors import field_error
from spikeport.emulator.network import Connection, InputGroup, LIFGroup, Network

#: neurons per core used for message counts (Loihi 1: 1024 compartments per core)
NEURONS_PER_CORE = 1024


@dataclass(frozen=True, kw_only=True, eq=False)
class Activity:
    """What a run did, per sample: the raw counters every synop/energy count is derived from.

    ``spike_counts[g]`` (B, n): steps on which each neuron / input channel sent a nonzero message;
    ``payload_sums[g]`` (B, n): sum of |payload|; ``input_events[g]`` (B,): neuron-steps with
    ``a_in != 0``; ``active_updates[g]`` (B,): neuron-steps with an active update (module docstring).
    """

    steps: int
    spike_counts: Mapping[str, np.ndarray]
    payload_sums: Mapping[str, np.ndarray]
    input_events: Mapping[str, np.ndarray]
    active_updates: Mapping[str, np.ndarray]
    active_rule: str = "input"

    @property
    def batch(self) -> int:
        return int(next(iter(self.spike_counts.values())).shape[0])


def _effective(w: np.ndarray, num_weight_bits: int) -> np.ndarray:
    if w.dtype.kind == "f" and not np.all(np.floor(w) == w):
        return w.astype(np.float64)
    return kernels.effective_weights(w, num_weight_bits)


def effective_weights(conn: Connection) -> np.ndarray:
    """The weights a connection really applies, as int64 (float64 when the weights are not integers):
    :func:`spikeport.emulator.kernels.effective_weights` (Lava's sign-mode clip and LSB truncation)
    for integer weights; non-integer (float twin) weights are returned unchanged. A dense matrix:
    sparse connections are counted through :func:`effective_entries` instead."""
    return _effective(conn.dense_weights(), int(conn.num_weight_bits))


def effective_entries(conn: Connection) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(targets, sources, values)`` of the non-zero effective weights (dense or sparse
    connections; zeros do not change Lava's sign mode, so the entries alone give the same values)."""
    rows, cols, vals = conn.nonzero()
    eff = _effective(np.asarray(vals), int(conn.num_weight_bits))
    keep = eff != 0
    return rows[keep], cols[keep], eff[keep]


def _sparse_input(conn: Connection, x: np.ndarray, arrivals: bool, n: int) -> np.ndarray:
    """:func:`synaptic_input`'s share of a sparse connection (no delays: arrives one step later)."""
    from scipy import sparse

    b, t = x.shape[0], x.shape[1]
    out = np.zeros((b, t, n))
    if t <= 1:
        return out
    rows, cols, vals = effective_entries(conn)
    if arrivals:
        vals, x = np.ones(vals.size), (x != 0).astype(np.float64)
    w = sparse.csr_matrix((vals.astype(np.float64), (rows, cols)), shape=conn.weights.shape)
    acc = np.asarray(w @ x[:, : t - 1].reshape(-1, x.shape[2]).T).T.reshape(b, t - 1, n)
    if not arrivals:
        acc = acc * 2.0 ** int(conn.weight_exp)
        if int(conn.weight_exp) < 0 and conn.weight_values.dtype.kind in "iu":
            acc = np.floor(acc)
    out[:, 1:] = acc
    return out


def _delays(conn: Connection) -> np.ndarray:  # dense connections only
    if conn.delays is None:
        return np.zeros(conn.weights.shape, dtype=np.int64)
    return conn.delays.astype(np.int64)


def synaptic_input(
    net: Network, spikes: Mapping[str, np.ndarray], target: str, *, arrivals: bool = False
) -> np.ndarray:
    """``a_in`` of ``target`` (B, T, n) rebuilt from the messages of its sources, without int32 wrap.

    ``a_in[:, i] = sum_c shift(W_c[d] @ x_src[:, i - 1 - d], weight_exp_c)`` over connections ``c``
    into ``target`` and delays ``d`` (``shift``: ``<< e``, or floor ``>> -e``; float weights: ``* 2**e``).
    ``arrivals=True`` counts instead the messages arriving on nonzero synapses (no cancellation).
    """
    n = int(net.group(target).n)
    some = next(iter(spikes.values()))
    b, t = some.shape[0], some.shape[1]
    a = np.zeros((b, t, n), dtype=np.float64)
    for conn in net.incoming(target):
        x = np.asarray(spikes[conn.source], dtype=np.float64)
        if conn.is_sparse:
            a += _sparse_input(conn, x, arrivals, n)
            continue
        w = effective_weights(conn).astype(np.float64)
        if arrivals:
            w, x = (w != 0).astype(np.float64), (x != 0).astype(np.float64)
        d_all = _delays(conn)
        for d in np.unique(d_all):
            lag = 1 + int(d)
            if lag >= t:
                continue
            acc = x[:, : t - lag] @ np.where(d_all == d, w, 0.0).T
            acc = acc if arrivals else acc * 2.0 ** int(conn.weight_exp)
            if not arrivals and int(conn.weight_exp) < 0 and conn.weights.dtype.kind in "iu":
                acc = np.floor(acc)
            a[:, lag:] += acc
    return a


def _state_active(group: LIFGroup, states: Mapping[str, np.ndarray]) -> np.ndarray | None:
    """(B, T, n) True where the neuron enters the step with a state that must decay, or None."""
    v = states.get(f"{group.name}/v")
    if v is None:
        return None
    v_in = np.concatenate([np.broadcast_to(group.v0, (v.shape[0], 1, v.shape[2])), v[:, :-1]], axis=1)
    live = v_in != 0
    u = states.get(f"{group.name}/u")
    if u is not None and group.du < bits.DECAY_MAX:
        u_in = np.concatenate([np.broadcast_to(group.u0, (u.shape[0], 1, u.shape[2])), u[:, :-1]], axis=1)
        live |= u_in != 0
    return live


def activity_from_spikes(
    net: Network, spikes: Mapping[str, np.ndarray], *, states: Mapping[str, np.ndarray] | None = None
) -> Activity:
    """Count a run from its recorded messages ``spikes[group]`` (B, T, n), inputs included.

    ``states`` may hold recorded ``"<group>/v"`` and ``"<group>/u"`` (B, T, n); with them the active
    update rule is complete (``active_rule="state"``), without them it uses input and bias only.
    Works for integer runs and float runs alike (a float NIR run's spikes, named after the groups).
    """
    names = [g.name for g in (*net.inputs, *net.groups)]
    missing = [n for n in names if n not in spikes]
    if missing:
        raise field_error("activity_from_spikes", "spikes", f"needs every group {names}", missing)
    arrs = {k: np.asarray(spikes[k]) for k in names}
    shapes = {k: a.shape for k, a in arrs.items()}
    steps = arrs[names[0]].shape[1]
    for k, a in arrs.items():
        want = (arrs[names[0]].shape[0], steps, int(net.group(k).n))
        if a.shape != want:
            raise field_error("activity_from_spikes", f"spikes[{k!r}]", f"must have shape {want}", shapes[k])
    counts = {k: np.count_nonzero(a, axis=1).astype(np.int64) for k, a in arrs.items()}
    payload = {k: np.abs(a).sum(axis=1) for k, a in arrs.items()}
    events: dict[str, np.ndarray] = {}
    active: dict[str, np.ndarray] = {}
    full = states is not None
    for g in net.groups:
        events[g.name] = np.count_nonzero(synaptic_input(net, arrs, g.name), axis=(1, 2)).astype(np.int64)
        work = synaptic_input(net, arrs, g.name, arrivals=True) != 0
        bias = _bias_nonzero(g)
        if bias is not None:
            work = work | bias
        live = _state_active(g, states) if (states is not None and isinstance(g, LIFGroup)) else None
        if live is not None:
            work = work | live
        else:
            full = False
        active[g.name] = work.sum(axis=(1, 2)).astype(np.int64)
    return Activity(
        steps=int(steps),
        spike_counts=counts,
        payload_sums=payload,
        input_events=events,
        active_updates=active,
        active_rule="state" if full and net.groups else "input",
    )


def _bias_nonzero(group: LIFGroup | object) -> np.ndarray | None:
    if isinstance(group, LIFGroup):
        return np.asarray(group.bias_mant) != 0
    bias = getattr(group, "bias", None)
    return None if bias is None else np.asarray(bias) != 0


def activity_from_counters(net: Network, counters: object) -> Activity:
    """Adapt an engine's ``RunResult.counters`` (``spike_counts``, ``payload_sums``, ``input_events``,
    ``steps``; mapping or attributes) to :class:`Activity`. Active updates use input and bias only."""

    def get(key: str) -> object:
        if isinstance(counters, Mapping):
            return counters[key]
        return getattr(counters, key)

    spikes = dict(get("spike_counts"))  # type: ignore[call-overload]
    events = {k: np.asarray(v, dtype=np.int64) for k, v in dict(get("input_events")).items()}  # type: ignore[call-overload]
    steps = int(get("steps"))  # type: ignore[call-overload]
    active = {}
    for g in net.groups:
        bias = _bias_nonzero(g)
        nb = 0 if bias is None else int(bias.sum())
        # biased neurons are active on every step: an approximate count (their input events overlap)
        cap = int(g.n) * steps
        active[g.name] = np.minimum(events[g.name] + nb * steps, cap) if nb else events[g.name]
    return Activity(
        steps=steps,
        spike_counts={k: np.asarray(v, dtype=np.int64) for k, v in spikes.items()},
        payload_sums={k: np.asarray(v) for k, v in dict(get("payload_sums")).items()},  # type: ignore[call-overload]
        input_events=events,
        active_updates=active,
        active_rule="input",
    )


@dataclass(frozen=True, kw_only=True, eq=False)
class ConnectionCounts:
    """Per-sample counts of one connection (arrays of shape (B,), int64)."""

    name: str
    source: str
    target: str
    sparse: bool
    dense_synapses: int
    nonzero_synapses: int
    messages_in: np.ndarray
    synops: np.ndarray
    synop_bits: np.ndarray
    accumulates: np.ndarray
    multiplies: np.ndarray
    shifts: np.ndarray


@dataclass(frozen=True, kw_only=True, eq=False)
class GroupCounts:
    """Per-sample counts of one group (arrays (B,), int64). Input groups have no updates."""

    name: str
    n: int
    is_input: bool
    spikes: np.ndarray
    messages_out: np.ndarray
    input_events: np.ndarray
    updates: np.ndarray
    active_updates: np.ndarray
    inactive_updates: np.ndarray


@dataclass(frozen=True, kw_only=True, eq=False)
class SynOpsCounts:
    steps: int
    batch: int
    active_rule: str
    groups: tuple[GroupCounts, ...]
    connections: tuple[ConnectionCounts, ...]

    def total(self, field: str) -> np.ndarray:
        """Sum of a per-sample field over connections (synops, ...) or groups (spikes, ...)."""
        recs = self.connections if field in ConnectionCounts.__dataclass_fields__ else self.groups
        return np.sum([getattr(r, field) for r in recs] or [np.zeros(self.batch, np.int64)], axis=0)


def fanout(conn: Connection) -> np.ndarray:
    """Nonzero effective synapses per source neuron, (source.n,) int64."""
    _, cols, _ = effective_entries(conn)
    return np.bincount(cols, minlength=int(conn.weights.shape[1])).astype(np.int64)


def dense_synapses(conn: Connection) -> int:
    """``target.n * source.n`` (dense) or the stored nonzero weights (``sparse=True``)."""
    shape = conn.weights.shape
    return int(np.count_nonzero(conn.weight_values)) if conn.sparse else int(shape[0] * shape[1])


def destination_cores(net: Network, source: str, neurons_per_core: int = NEURONS_PER_CORE) -> np.ndarray:
    """Per source neuron, the number of distinct cores holding one of its nonzero synapses, (n,)."""
    n = int(net.group(source).n)
    total = np.zeros(n, dtype=np.int64)
    for target in dict.fromkeys(c.target for c in net.outgoing(source)):
        hit = np.zeros((-(-int(net.group(target).n) // neurons_per_core), n), dtype=bool)
        for conn in (c for c in net.outgoing(source) if c.target == target):
            rows, cols, _ = effective_entries(conn)
            hit[rows // neurons_per_core, cols] = True
        total += hit.sum(axis=0)
    return total


def _destinations(
    net: Network, name: str, neurons_per_core: int, destinations: Mapping[str, np.ndarray] | None
) -> np.ndarray:
    """Destination cores per neuron of group ``name``: ``destinations[name]`` when given, else
    :func:`destination_cores` with ``neurons_per_core``."""
    if destinations is None or name not in destinations:
        return destination_cores(net, name, neurons_per_core)
    d = np.asarray(destinations[name])
    n = int(net.group(name).n)
    if d.shape != (n,) or d.dtype.kind not in "iu" or (d.size and int(d.min()) < 0):
        raise field_error(
            "count_synops", f"destinations[{name!r}]", f"must be {n} integers >= 0", (d.shape, str(d.dtype))
        )
    return d.astype(np.int64)


def count_synops(
    net: Network,
    activity: Activity,
    *,
    neurons_per_core: int = NEURONS_PER_CORE,
    destinations: Mapping[str, np.ndarray] | None = None,
) -> SynOpsCounts:
    """Per group and connection counts of a run (definitions in the module docstring).

    ``destinations`` maps group name -> destination cores per neuron, (n,) integers (the cores one
    spike is sent to); groups it lacks use ``ceil(n / neurons_per_core)`` cores per target group."""
    b, steps = activity.batch, activity.steps
    zeros = np.zeros(b, dtype=np.int64)
    conns = []
    for c in net.connections:
        sent = activity.spike_counts[c.source]
        ops = sent @ fanout(c)
        graded = int(c.num_message_bits) > 0
        conns.append(
            ConnectionCounts(
                name=c.name,
                source=c.source,
                target=c.target,
                sparse=bool(c.sparse),
                dense_synapses=dense_synapses(c),
                nonzero_synapses=int(effective_entries(c)[0].size),
                messages_in=sent.sum(axis=1),
                synops=ops,
                synop_bits=ops * (int(c.num_message_bits) if graded else 1),
                accumulates=ops,
                multiplies=ops if graded and not c.shift else zeros,
                shifts=ops if graded and c.shift else zeros,
            )
        )
    groups = []
    for g in (*net.inputs, *net.groups):
        sent = activity.spike_counts[g.name]
        inp = isinstance(g, InputGroup)
        upd = zeros if inp else np.full(b, int(g.n) * steps, dtype=np.int64)
        act = zeros if inp else np.asarray(activity.active_updates[g.name], dtype=np.int64)
        groups.append(
            GroupCounts(
                name=g.name,
                n=int(g.n),
                is_input=inp,
                spikes=sent.sum(axis=1),
                messages_out=sent @ _destinations(net, g.name, neurons_per_core, destinations),
                input_events=zeros if inp else np.asarray(activity.input_events[g.name], dtype=np.int64),
                updates=upd,
                active_updates=act,
                inactive_updates=upd - act,
            )
        )
    return SynOpsCounts(
        steps=steps,
        batch=b,
        active_rule=activity.active_rule,
        groups=tuple(groups),
        connections=tuple(conns),
    )
