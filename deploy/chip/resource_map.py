"""Map an integer network onto Loihi 1 or Loihi 2 cores: what each core holds and what does not fit.

Placement (a first-fit partition, one neuron group per core as Lava and nengo-loihi place them):
every neuron group is cut into slices of consecutive neurons; each slice is the largest that fits one
core's neuron count, input axons (distinct presynaptic neurons with a nonzero synapse into the slice)
and memory (synapses in nengo-loihi's encoding, :mod:`.limits`; on Loihi 2 plus neuron state), and
the slices are then evened out over the same number of cores when that fits too. Then
each core's output axons (per neuron, the number of distinct destination cores it reaches) are
counted; a group whose core sends too many is cut finer and placed again. Cores fill chips in order.
Input groups are fed from outside the neuromorphic cores and take no core.

Synapses are counted as the network holds them: a convolution (a matrix here) costs its expanded
synapses; the weight sharing of Loihi convolution compilers (NxTF; Lava's Loihi 2 conv) is not
modelled, so conv layers get an upper bound. Cores are not merged (one group per core) and mesh
placement (hops) is not modelled.

``violations`` lists what no partition fixes (one neuron that alone exceeds a core, a delay or a
graded payload the chip lacks); ``partitioned`` lists the groups that exceed one core and how many
they took, with the reasons.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from spikeport.chip.limits import (
    BLOCK_HEADER_BITS,
    CHIPS,
    INDEX_BITS,
    SYNAPSES_PER_BLOCK,
    WORD_BITS,
    ChipLimits,
)
from spikeport.emulator.errors import field_error
from spikeport.emulator.network import Connection, Network


def _words(bits: np.ndarray) -> np.ndarray:
    return -(-bits // WORD_BITS) * WORD_BITS


def axon_bits(n: np.ndarray, bits_per_synapse: int) -> np.ndarray:
    """Synaptic memory of axons with ``n`` synapses each: blocks of up to 64 synapses, each
    ``k * bits_per_synapse + 10`` bits rounded up to 64-bit words (nengo-loihi's Loihi 1 model)."""
    n = np.asarray(n, np.int64)
    full, rest = n // SYNAPSES_PER_BLOCK, n % SYNAPSES_PER_BLOCK
    block = int(_words(np.array(SYNAPSES_PER_BLOCK * bits_per_synapse + BLOCK_HEADER_BITS)))
    tail = np.where(rest > 0, _words(rest * bits_per_synapse + BLOCK_HEADER_BITS), 0)
    return full * block + tail


def _index_bits(n_targets: int) -> int | None:
    need = max(int(np.ceil(np.log2(max(n_targets, 2)))), 1)
    return next((b for b in INDEX_BITS if b >= need), None)


def nonzero_mask(c: Connection) -> Any:
    """(target.n, source.n): True at nonzero weights; a ``scipy.sparse`` matrix of ones for sparse
    weights (never made dense), a bool array otherwise."""
    if c.is_sparse:
        from scipy.sparse import csr_matrix

        rows, cols, _ = c.nonzero()
        return csr_matrix((np.ones(rows.size, np.int32), (rows, cols)), shape=c.weights.shape)
    return np.asarray(c.weights) != 0


def col_nnz(mask: Any, a: int, b: int) -> np.ndarray:
    """Nonzero entries per column in rows ``a:b`` of a :func:`nonzero_mask`, (source.n,) int64."""
    return np.asarray(mask[a:b].sum(axis=0), np.int64).ravel()


@dataclass
class _Conn:
    """A connection as the map needs it: nonzero mask and bits per stored synapse."""

    source: str
    mask: Any  # (target.n, source.n) :func:`nonzero_mask`
    weight_bits: int
    delay_bits: int

    @classmethod
    def of(cls, c: Connection) -> _Conn:
        d = 0 if c.delays is None else int(np.ceil(np.log2(c.max_delay + 1)))
        return cls(c.source, nonzero_mask(c), min(int(c.num_weight_bits), 8), d)

    def slice_bits(self, a: int, b: int) -> tuple[np.ndarray, int]:
        """Used source axons (bool per source neuron) and synapse bits for target rows ``a:b``: per
        axon the smaller of the dense (every target, no index) and sparse (nonzero ones, indexed)
        encodings."""
        nnz = col_nnz(self.mask, a, b)
        used = nnz > 0
        bps = self.weight_bits + self.delay_bits
        dense = axon_bits(np.full(int(used.sum()), b - a), bps)
        ib = _index_bits(b - a)
        best = dense if ib is None else np.minimum(dense, axon_bits(nnz[used], bps + ib))
        return used, int(best.sum())


@dataclass
class _Group:
    name: str
    n: int
    incoming: list[_Conn] = field(default_factory=list)


def _slice_usage(g: _Group, a: int, b: int, state_bits: int) -> tuple[int, int]:
    """(input axons, memory bits) of neurons ``a:b`` of ``g``."""
    axons: dict[str, np.ndarray] = {}
    bits = (b - a) * state_bits
    for c in g.incoming:
        used, nbits = c.slice_bits(a, b)
        axons[c.source] = axons[c.source] | used if c.source in axons else used
        bits += nbits
    return sum(int(u.sum()) for u in axons.values()), bits


def _fits(lim: ChipLimits, g: _Group, a: int, b: int, cap: int) -> bool:
    if b - a > cap:
        return False
    fan_in, bits = _slice_usage(g, a, b, int(lim.neuron_state_bits.value or 0))
    max_in = lim.fan_in_axons_per_core.value
    return (max_in is None or fan_in <= max_in) and bits <= int(lim.synapse_bits_per_core.value or 0)


def _slices(lim: ChipLimits, g: _Group, cap: int) -> list[tuple[int, int]]:
    """First-fit slices: from each start, the longest run that fits (at least one neuron)."""
    cap = min(cap, int(lim.neurons_per_core.value or g.n))
    out, a = [], 0
    while a < g.n:
        lo, hi = a + 1, min(g.n, a + cap)
        if _fits(lim, g, a, hi, cap):
            lo = hi
        else:
            while lo < hi:  # largest b in [lo, hi] that fits (lo itself is taken even if it does not)
                mid = (lo + hi + 1) // 2
                if _fits(lim, g, a, mid, cap):
                    lo = mid
                else:
                    hi = mid - 1
        out.append((a, lo))
        a = lo
    return _balanced(lim, g, cap, out)


def _balanced(
    lim: ChipLimits, g: _Group, cap: int, first_fit: list[tuple[int, int]]
) -> list[tuple[int, int]]:
    """The same number of cores with near-equal slices, when those fit too (first fit leaves a
    small remainder on the last core)."""
    k = len(first_fit)
    if k < 2:
        return first_fit
    edges = [round(i * g.n / k) for i in range(k + 1)]
    even = list(itertools.pairwise(edges))
    return even if all(_fits(lim, g, a, b, cap) for a, b in even) else first_fit


Placement = dict[str, list[tuple[int, int]]]


def _core_ids(place: Placement) -> dict[str, list[int]]:
    ids, k = {}, 0
    for name, slices in place.items():
        ids[name] = list(range(k, k + len(slices)))
        k += len(slices)
    return ids


def _fan_out(net: Network, place: Placement) -> dict[str, list[int]]:
    """Per group, per core: output axons = sum over its neurons of the distinct cores they reach."""
    ids = _core_ids(place)
    out: dict[str, list[int]] = {}
    for g in net.groups:
        hits: dict[int, np.ndarray] = {}
        for c in net.outgoing(g.name):
            mask = nonzero_mask(c)
            for core, (a, b) in zip(ids[c.target], place[c.target], strict=True):
                hit = col_nnz(mask, a, b) > 0
                hits[core] = hits[core] | hit if core in hits else hit
        per_neuron = sum(hits.values(), np.zeros(int(g.n), np.int64))
        out[g.name] = [int(np.asarray(per_neuron)[a:b].sum()) for a, b in place[g.name]]
    return out


def _place(net: Network, lim: ChipLimits) -> tuple[Placement, dict[str, list[int]], dict[str, _Group]]:
    groups = {
        g.name: _Group(g.name, int(g.n), [_Conn.of(c) for c in net.incoming(g.name)]) for g in net.groups
    }
    caps = {name: g.n for name, g in groups.items()}
    max_out = lim.fan_out_axons_per_core.value
    for _ in range(32):
        place = {name: _slices(lim, g, caps[name]) for name, g in groups.items()}
        fan_out = _fan_out(net, place)
        changed = False
        for name, per_core in fan_out.items():
            for (a, b), fo in zip(place[name], per_core, strict=True):
                if max_out is not None and fo > max_out and b - a > 1 and caps[name] > (b - a) // 2:
                    caps[name], changed = max(1, (b - a) // 2), True
        if not changed:
            return place, fan_out, groups
    return place, fan_out, groups


def _core_row(
    lim: ChipLimits, g: _Group, a: int, b: int, fan_out: int, core: int, conns: list[Connection]
) -> dict[str, Any]:
    state = int(lim.neuron_state_bits.value or 0)
    fan_in, mem = _slice_usage(g, a, b, state)
    return {
        "core": core,
        "chip": core // int(lim.cores_per_chip.value or 1),
        "group": g.name,
        "neurons": [a, b],
        "n_neurons": b - a,
        "fan_in_axons": fan_in,
        "fan_out_axons": fan_out,
        "synapses": int(sum(int(c.mask[a:b].sum()) for c in g.incoming)),
        "synapse_bits": mem - (b - a) * state,
        "state_bits": (b - a) * state,
        "memory_bits": mem,
        "max_delay": max((c.max_delay for c in conns), default=0),
        "message_bits": max((int(c.num_message_bits) for c in conns), default=0),
    }


_CHECKS = (
    ("n_neurons", "neurons_per_core", "neurons"),
    ("fan_in_axons", "fan_in_axons_per_core", "input axons"),
    ("fan_out_axons", "fan_out_axons_per_core", "output axons"),
    ("memory_bits", "synapse_bits_per_core", "memory bits"),
)


def _over(lim: ChipLimits, row: dict[str, Any]) -> list[tuple[str, int, int, str]]:
    out = []
    for key, limit_name, what in _CHECKS:
        limit = getattr(lim, limit_name).value
        if limit is not None and row[key] > limit:
            out.append((key, int(row[key]), int(limit), what))
    return out


def _connection_violations(net: Network, lim: ChipLimits) -> list[dict[str, Any]]:
    out = []
    for c in net.connections:
        checks = (
            ("max_delay", c.max_delay, lim.max_delay),
            ("message_bits", int(c.num_message_bits), lim.message_bits),
        )
        for key, value, limit in checks:
            if limit.value is not None and value > limit.value:
                out.append(
                    {
                        "connection": c.name,
                        "resource": key,
                        "value": value,
                        "limit": limit.value,
                        "message": f"Connection({c.name!r}).{key} = {value} > {limit.value} on {lim.name} ({limit.note or limit.source})",
                    }
                )
    return out


def _whole_group_reasons(lim: ChipLimits, g: _Group, fan_out: int, conns: list[Connection]) -> list[str]:
    row = _core_row(lim, g, 0, g.n, fan_out, 0, conns)
    return [f"{what} {value} > {limit}" for _, value, limit, what in _over(lim, row)]


def resource_map(net: Network, chip: str = "loihi2") -> dict[str, Any]:
    """Partition ``net`` over ``chip``'s cores (see the module docstring); JSON-able.

    Keys: ``chip``; ``cores`` and ``chips`` used; ``per_core`` (group, neuron range, input/output
    axons, synapses, memory bits, max delay, message bits per core); ``violations`` (what no
    partition fixes, each with a message); ``partitioned`` (groups that exceed one core: cores taken
    and why); ``limits`` (every limit with its source and whether it is published).
    """
    lim = CHIPS.get(chip)
    if lim is None:
        raise field_error("resource_map", "chip", f"must be one of {sorted(CHIPS)}", chip)
    if not isinstance(net, Network):
        raise field_error("resource_map", "net", "must be a Network", type(net).__name__)
    place, fan_out, groups = _place(net, lim)
    rows, violations, partitioned, core = [], [], [], 0
    for name, slices in place.items():
        g, conns = groups[name], list(net.incoming(name))
        for (a, b), fo in zip(slices, fan_out[name], strict=True):
            row = _core_row(lim, g, a, b, fo, core, conns)
            rows.append(row)
            for key, value, limit, what in _over(lim, row):
                violations.append(
                    {
                        "core": core,
                        "group": name,
                        "resource": key,
                        "value": value,
                        "limit": limit,
                        "message": f"core {core} ({name} neurons {a}:{b}): {what} {value} > {limit} "
                        f"(cannot be split further)",
                    }
                )
            core += 1
        if len(slices) > 1:
            reasons = _whole_group_reasons(lim, g, sum(fan_out[name]), conns)
            partitioned.append({"group": name, "neurons": g.n, "cores": len(slices), "reasons": reasons})
    per_chip = int(lim.cores_per_chip.value or 1)
    return {
        "chip": lim.name,
        "cores": core,
        "chips": -(-core // per_chip),
        "per_core": rows,
        "violations": violations + _connection_violations(net, lim),
        "partitioned": partitioned,
        "limits": lim.as_dict(),
    }


def format_map(m: dict[str, Any]) -> str:
    """A short text table of :func:`resource_map`'s result."""
    lines = [f"{m['chip']}: {m['cores']} cores on {m['chips']} chip(s)"]
    lines.append(
        f"{'core':>5} {'group':<16} {'neurons':>13} {'in-axons':>9} {'out-axons':>9} {'synapses':>9} {'mem KB':>8}"
    )
    for r in m["per_core"]:
        rng = f"{r['neurons'][0]}:{r['neurons'][1]}"
        lines.append(
            f"{r['core']:>5} {r['group']:<16} {rng:>13} {r['fan_in_axons']:>9} {r['fan_out_axons']:>9} "
            f"{r['synapses']:>9} {r['memory_bits'] / 8192:>8.1f}"
        )
    for p in m["partitioned"]:
        lines.append(
            f"partitioned: {p['group']} ({p['neurons']} neurons) over {p['cores']} cores: {'; '.join(p['reasons'])}"
        )
    for v in m["violations"]:
        lines.append(f"VIOLATION: {v['message']}")
    unpublished = [k for k, v in m["limits"].items() if not v["published"]]
    lines.append(
        f"limits not published by Intel (from software or assumed): {', '.join(unpublished) or 'none'}"
    )
    return "\n".join(lines)


def placement(net: Network, chip: str = "loihi2") -> Placement:
    """Per neuron group, the ``(start, stop)`` neuron range of each of its cores (in core order)."""
    lim = CHIPS.get(chip)
    if lim is None:
        raise field_error("placement", "chip", f"must be one of {sorted(CHIPS)}", chip)
    return _place(net, lim)[0]


def destination_cores(net: Network, source: str, place: Placement) -> np.ndarray:
    """Per neuron of ``source``, the number of distinct cores of ``place`` holding one of its nonzero
    synapses: the messages one spike costs on the mapped chip (what the energy model's per-spike
    message cost multiplies; :func:`spikeport.emulator.energy.synops.destination_cores` assumes
    ``ceil(n / neurons_per_core)`` equal cores per group instead)."""
    n = int(net.group(source).n)
    hits: dict[tuple[str, int], np.ndarray] = {}
    for c in net.outgoing(source):
        mask = nonzero_mask(c)
        for k, (a, b) in enumerate(place[c.target]):
            hit = col_nnz(mask, a, b) > 0
            key = (c.target, k)
            hits[key] = hits[key] | hit if key in hits else hit
    return np.asarray(sum(hits.values(), np.zeros(n, np.int64)), np.int64)
