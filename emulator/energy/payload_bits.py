"""Bits per message: SynOps weighted by graded payload bits, and the shift-and-add cost of ``w * n``.

A graded spike carries an integer ``n``; on a synapse it costs a multiply ``w * n``, which a
shift-and-add multiplier does in ``bit_length(|n|)`` shifts and ``popcount(|n|)`` adds. Sources:
docs/seed-methods.md, "Temporally diffused quantization (Voelker et al. 2020)" (significant bits =
mean ``bit_length(|n|)`` over nonzero events); docs/synops-energy.md, "Hardware-event SynOps"
(messages times nonzero fan-out). Per connection, with ``fan_out[i]`` the nonzero weights leaving
source neuron ``i``::

    synops       = sum_{b,t,i} [n != 0] * fan_out[i]
    bit_synops   = sum_{b,t,i} bit_length(|n|) * fan_out[i]     (payload-bit weighted SynOps)
    add_synops   = sum_{b,t,i} popcount(|n|) * fan_out[i]

``significant_bits = bit_synops / synops``: the mean significant bits per weight multiply.
Binary spikes count 1 bit each, so for a binary network ``bit_synops == synops``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from spikeport.emulator.errors import field_error
from spikeport.emulator.network import Network
from spikeport.emulator.sparse_weights import SparseWeights


def bit_length(x: np.ndarray) -> np.ndarray:
    """``int.bit_length(|x|)`` elementwise (int64): 0 for 0, ``floor(log2|x|) + 1`` otherwise."""
    m = np.abs(np.asarray(x, np.int64))
    out = np.zeros(m.shape, np.int64)
    while np.any(m):
        out += m > 0
        m = m >> 1
    return out


def popcount(x: np.ndarray) -> np.ndarray:
    """Number of set bits of ``|x|`` elementwise (int64)."""
    m = np.abs(np.asarray(x, np.int64))
    out = np.zeros(m.shape, np.int64)
    while np.any(m):
        out += m & 1
        m = m >> 1
    return out


def fan_out(weights: np.ndarray | SparseWeights) -> np.ndarray:
    """Nonzero synapses leaving each source neuron of a (target.n, source.n) weight matrix."""
    if isinstance(weights, SparseWeights):
        return weights.col_counts()
    return np.count_nonzero(np.asarray(weights), axis=0).astype(np.int64)


def payload_synops(net: Network, messages: Mapping[str, np.ndarray]) -> dict[str, object]:
    """Per-sample SynOps, payload-bit weighted SynOps and shift-and-add counts of a run.

    ``messages[name]`` (B, T, n) holds what every input and neuron group sent (a run's
    ``"<group>/spikes"`` and the inputs). Returns totals, ``significant_bits`` and per-connection rows."""
    rows = {}
    batch = None
    for c in net.connections:
        if c.source not in messages:
            raise field_error("payload_synops", "messages", "must hold every connection's source", c.source)
        msg = np.asarray(messages[c.source], np.int64)
        batch = msg.shape[0]
        fo = fan_out(c.weights)
        events = np.count_nonzero(msg, axis=(0, 1)).astype(np.int64)
        rows[c.name] = {
            "synops": int(events @ fo),
            "bit_synops": int(bit_length(msg).sum(axis=(0, 1)) @ fo),
            "add_synops": int(popcount(msg).sum(axis=(0, 1)) @ fo),
        }
    per = max(batch or 1, 1)
    total = {k: sum(r[k] for r in rows.values()) / per for k in ("synops", "bit_synops", "add_synops")}
    sig = total["bit_synops"] / total["synops"] if total["synops"] else 0.0
    return {**total, "significant_bits": sig, "connections": rows}
