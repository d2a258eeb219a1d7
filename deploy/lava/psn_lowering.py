"""Lava mapping of PSN groups: delayed Dense taps into a memoryless LIF, where that is exact.

Lava (lava-nc 0.10.0) has no neuron that keeps a history of its inputs, so a
:class:`~spikeport.emulator.psn.PSNGroup` ``g`` fed by connection ``c`` (weights ``W``) is rewritten
into stock processes (:func:`lower_psn`):

- one ``DelayDense`` per tap ``i`` and distinct shift ``s`` of that tap: weights ``sign[:, i] * W`` on
  the rows whose ``shift[:, i] == s`` (0 elsewhere), ``weight_exp = s``, every delay ``(k-1-i) d``;
  its output at step ``t`` is ``sign_i (X[t - (k-1-i) d] << s)`` for those rows, so the summed
  ``a_in`` is the PSN's ``H[t]``;
- a LIF ``g`` with ``du = 4095`` and ``dv = 4096`` (no memory: ``u = a_in << 6``, ``v = u + bias``) and
  ``vth = 0`` and ``bias = -vth_psn << 6`` (per neuron): it spikes exactly when ``H > vth_psn``.

Exact only while nothing wraps or clips, which :func:`lower_psn` proves from the weights before it
lowers: ``|H| <= sum_i (sum_j |W[c, j]|) << shift_i < 2**17`` (``u = a_in << 6`` lives in Lava's 24-bit
``u``), ``shift <= 7`` (Lava's ``weight_exp``), mantissas ``sign * W`` inside [-256, 255] and
``-vth`` inside the 13-bit bias mantissa. Otherwise it raises :class:`UnsupportedError` naming the group,
the bound and what Lava lacks. Inputs must be binary (``num_message_bits = 0``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from spikeport.emulator import bits
from spikeport.emulator.errors import UnsupportedError
from spikeport.emulator.network import Connection, LIFGroup, Network
from spikeport.emulator.psn import PSNGroup

#: |H| must stay below this: Lava's LIF holds ``a_in << 6`` in a 24-bit ``u``
H_LIMIT = 1 << (bits.STATE_BITS - 1 - bits.ACT_SHIFT)
_LACKS = "Lava has no neuron with an input history (PSN), and its DelayDense + memoryless-LIF mapping"


def _conn_refusals(g: PSNGroup, c: Connection) -> list[str]:
    obj = f"PSNGroup({g.name!r})"
    if c.num_message_bits or c.weight_exp or c.delays is not None:
        return [f"{obj}: {_LACKS} needs plain binary input connections (got {c.name!r})"]
    if np.any(np.asarray(c.weight_values) == bits.WEIGHT_MIN):
        return [f"{obj}: {_LACKS} negates weights, and -256 of {c.name!r} has no 8-bit negation"]
    return []


def _group_refusals(g: PSNGroup, incoming: tuple[Connection, ...]) -> list[str]:
    obj = f"PSNGroup({g.name!r})"
    out = [p for c in incoming for p in _conn_refusals(g, c)]
    fan = np.zeros(int(g.n), np.int64)  # max |X| per row (binary inputs)
    for c in incoming:
        fan += np.abs(np.asarray(c.dense_weights(), np.int64)).sum(axis=1)
    bound = int(np.max(np.sum(np.left_shift(fan[:, None], g.shift) * (g.sign != 0), axis=1)))
    if bound >= H_LIMIT:
        out.append(
            f"{obj}: {_LACKS} holds H << 6 in Lava's 24-bit u (|H| can reach {bound}, must stay below 2**17)"
        )
    if int(np.max(g.shift)) > bits.WEIGHT_EXP_MAX:
        out.append(f"{obj}.shift: {_LACKS} puts shifts in weight_exp <= {bits.WEIGHT_EXP_MAX}")
    vth = np.asarray(g.vth, np.int64)
    if np.any(-vth < bits.BIAS_MANT_MIN) or np.any(-vth > bits.BIAS_MANT_MAX):
        out.append(f"{obj}.vth: {_LACKS} puts -vth in Lava's 13-bit bias mantissa")
    return out


def _tap_connections(g: PSNGroup, c: Connection) -> list[Connection]:
    w = np.asarray(c.dense_weights(), np.int64)
    out = []
    for i, lag in enumerate(g.tap_delays()):
        for s in np.unique(g.shift[:, i]):
            rows = (g.shift[:, i] == s) & (g.sign[:, i] != 0)
            if not rows.any():
                continue
            wi = np.where(rows[:, None], g.sign[:, i, None] * w, 0)
            out.append(
                Connection(
                    name=f"{c.name}.tap{i}.shift{int(s)}",
                    source=c.source,
                    target=g.name,
                    weights=wi,
                    weight_exp=int(s),
                    delays=np.full(w.shape, int(lag)),
                )
            )
    return out


def _memoryless_lif(g: PSNGroup) -> LIFGroup:
    """``u = a_in << 6`` (du = 4095), ``v = u + (-vth << 6)`` (dv = 4096), spike if ``v > 0``."""
    n = int(g.n)
    return LIFGroup(
        name=g.name,
        n=n,
        du=bits.DECAY_MAX,
        dv=bits.DECAY_UNITY,
        vth=0,
        bias_mant=-np.asarray(g.vth, np.int64),
        bias_exp=np.full(n, bits.ACT_SHIFT),
        u0=np.zeros(n, np.int64),
        v0=np.zeros(n, np.int64),
    )


def lower_psn(net: Network) -> Network:
    """``net`` with every PSN group replaced by delayed taps into a memoryless LIF (module docstring)."""
    groups: tuple[Any, ...] = net.groups
    psn: dict[str, PSNGroup] = {g.name: g for g in groups if isinstance(g, PSNGroup)}
    problems = [p for g in psn.values() for p in _group_refusals(g, net.incoming(g.name))]
    if problems:
        raise UnsupportedError("cannot map to Lava: " + "; ".join(problems))
    conns = []
    for c in net.connections:
        conns += _tap_connections(psn[c.target], c) if c.target in psn else [c]
    lowered = tuple(_memoryless_lif(g) if isinstance(g, PSNGroup) else g for g in groups)
    return Network(inputs=net.inputs, groups=lowered, connections=tuple(conns), metadata=net.metadata)
