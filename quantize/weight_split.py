"""Weight splitting: one connection becomes several with different ``weight_exp`` into the same neurons.

A connection's mantissas hold 8 bits under one exponent: weights far below the largest one round to 0
or to a coarse step. Splitting quantizes the weights ``w`` (a_in units) as usual (part 0, the original
exponent), then quantizes the residual ``w - mant_0 2**exp_0`` with its own, smaller exponent (part 1),
and so on. Each part is an ordinary Lava Dense (or Sparse) connection from the same source to the same
target; Lava, like the emulator, adds the activations of every connection into the target's ``a_in``,
so the split network runs bit-exact on both (each part's floor shift acts on that part's own sum).

Cost: every part stores its non-zero synapses (synapse memory) and every source spike costs one
synaptic operation per non-zero synapse of every part (SynOps): :class:`SplitInfo` states both.
In shift mode every part holds powers of two, so each weight becomes a sum of shifts.

API::

    net2, infos = split_network(net, twin)              # twin from quantize_pair; split where it pays
    net2, infos = split_network(net, twin, connections=["1->3"], parts=3)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from spikeport.emulator import bits
from spikeport.emulator.errors import field_error
from spikeport.emulator.network import Connection, Network
from spikeport.quantize import fixed_point as fixed


@dataclass(frozen=True, kw_only=True)
class SplitInfo:
    """One connection's split: part names and exponents, weight error and cost before and after."""

    connection: str
    parts: tuple[str, ...]
    weight_exps: tuple[int, ...]
    rms_rel_error_before: float  # rms(Wq - W) / rms(W)
    rms_rel_error_after: float
    zeroed_before: int  # non-zero float weights quantized to 0
    zeroed_after: int
    synapses_before: int  # non-zero mantissas (synapse memory)
    synapses_after: int
    synops_factor: float  # SynOps per source spike, after / before

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _quantize(w: np.ndarray, mode: str, nbits: int) -> fixed.QuantizedWeights:
    if mode == "shift":
        return fixed.quantize_weights_pow2(w, nbits)
    return fixed.quantize_weights(w, nbits)


def split_weights(
    w: np.ndarray, *, mode: str = "fixed", parts: int = 2, num_weight_bits: int = 8
) -> list[fixed.QuantizedWeights]:
    """Up to ``parts`` quantized matrices whose sum ``sum_k mant_k 2**exp_k`` approximates ``w``: part
    0 as :func:`~.fixed_point.quantize_weights` (or ``_pow2``), each next one the quantized residual; a
    residual that is all zero, or would need an exponent below -8, ends the list early."""
    if int(parts) < 1:
        raise field_error("split_weights", "parts", "must be >= 1", parts)
    w = np.asarray(w, dtype=np.float64)
    out = [_quantize(w, mode, num_weight_bits)]
    resid = w - out[0].mant * 2.0 ** out[0].exp
    for _ in range(int(parts) - 1):
        peak = float(np.max(np.abs(resid), initial=0))
        if peak == 0 or math.log2(peak) < bits.WEIGHT_EXP_MIN - 1:
            break
        q = _quantize(resid, mode, num_weight_bits)
        if not np.any(q.mant) or q.exp >= out[-1].exp:
            break
        out.append(q)
        resid = resid - q.mant * 2.0**q.exp
    return out


def _value(qs: Sequence[fixed.QuantizedWeights]) -> np.ndarray:
    return np.sum([q.mant * 2.0**q.exp for q in qs], axis=0)


def _rms_rel(w: np.ndarray, wq: np.ndarray) -> float:
    ref = float(np.sqrt(np.mean(w**2))) if w.size else 0.0
    return float(np.sqrt(np.mean((wq - w) ** 2))) / ref if ref > 0 else 0.0


def _info(c: Connection, w: np.ndarray, qs: Sequence[fixed.QuantizedWeights]) -> SplitInfo:
    before = c.dense_weights() * 2.0**c.weight_exp
    after = _value(qs)
    nz = w != 0
    syn0 = int(np.count_nonzero(c.weight_values))
    syn1 = int(sum(np.count_nonzero(q.mant) for q in qs))
    return SplitInfo(
        connection=c.name,
        parts=tuple(_part_name(c.name, k) for k in range(len(qs))),
        weight_exps=tuple(int(q.exp) for q in qs),
        rms_rel_error_before=_rms_rel(w, before),
        rms_rel_error_after=_rms_rel(w, after),
        zeroed_before=int(np.count_nonzero(nz & (before == 0))),
        zeroed_after=int(np.count_nonzero(nz & (after == 0))),
        synapses_before=syn0,
        synapses_after=syn1,
        synops_factor=syn1 / syn0 if syn0 else float(len(qs)),
    )


def _part_name(name: str, k: int) -> str:
    return name if k == 0 else f"{name}.split{k}"


def _float_weights(c: Connection, twin: Network) -> np.ndarray:
    tc = next((t for t in twin.connections if t.name == c.name), None)
    if tc is None or tc.weights.shape != c.weights.shape:
        raise field_error("split_network", "twin", "must hold the float twin of every connection", c.name)
    return np.asarray(tc.dense_weights(), np.float64) * 2.0**tc.weight_exp


def split_connection(
    c: Connection, w: np.ndarray, *, parts: int, mode: str
) -> tuple[list[Connection], SplitInfo]:
    """``c`` (float weights ``w``, a_in units) as up to ``parts`` connections: ``c`` itself, then the
    quantized residuals with decreasing exponents; and the split's :class:`SplitInfo`."""
    first = fixed.QuantizedWeights(
        mant=np.asarray(c.dense_weights(), np.int64), exp=int(c.weight_exp), saturated=0, sign_mode=""
    )
    qs = [first]
    if parts > 1:
        resid = w - first.mant * 2.0**first.exp
        more = split_weights(resid, mode=mode, parts=parts - 1, num_weight_bits=int(c.num_weight_bits))
        qs += [q for q in more if np.any(q.mant) and q.exp < first.exp]
    conns = [
        dataclasses.replace(c, name=_part_name(c.name, k), weights=q.mant, weight_exp=int(q.exp))
        for k, q in enumerate(qs)
    ]
    return conns, _info(c, w, qs)


def split_network(
    net: Network,
    twin: Network,
    *,
    parts: int = 2,
    connections: Sequence[str] | None = None,
    min_gain: float = 2.0,
) -> tuple[Network, list[SplitInfo]]:
    """Split connections of a quantized ``net`` (float weights from ``twin``, :func:`quantize_pair`).

    ``connections``: the names to split (default: every connection whose rms weight error drops by
    at least ``min_gain`` times). Returns the new network (``metadata["weight_split"]`` lists the
    splits) and one :class:`SplitInfo` per split connection."""
    mode = str(net.metadata.get("quantizer", {}).get("mode", "fixed"))
    names = {c.name for c in net.connections}
    for n in connections or ():
        if n not in names:
            raise field_error("split_network", "connections", "must name connections of the network", n)
    out: list[Connection] = []
    infos = []
    for c in net.connections:
        conns, info = split_connection(c, _float_weights(c, twin), parts=parts, mode=mode)
        chosen = c.name in connections if connections is not None else _pays(info, min_gain)
        if chosen and len(conns) > 1:
            out.extend(conns)
            infos.append(info)
        else:
            out.append(c)
    meta = {**net.metadata, "weight_split": [i.to_dict() for i in infos]}
    return dataclasses.replace(net, connections=tuple(out), metadata=meta), infos


def _pays(info: SplitInfo, min_gain: float) -> bool:
    return info.rms_rel_error_after * min_gain <= info.rms_rel_error_before
