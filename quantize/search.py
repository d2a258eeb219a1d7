"""Exponent and clipping chosen by minimising weight or output error, not only from the largest weight.

The default quantizer picks the smallest exponent that fits the largest weight, so one outlier sets the
step of every other weight. Here each connection tries that exponent and up to ``max_clip`` smaller ones
(each smaller exponent clips the largest weights to the top mantissa and halves the step of the rest)
and keeps the one with the least error:

* ``objective="weight"``: ``sum (Wq - W)**2``;
* ``objective="output"``: the squared error of the connection's activation on calibration data,
  ``sum_j (Wq - W)_j C (Wq - W)_j^T`` with ``C = E[m m^T]`` the second moment of the source's messages
  (input payloads or the integer network's own spikes on the calibration inputs).

In shift mode the candidates are powers of two (:func:`~.fixed_point.quantize_weights_pow2`'s rounding
with the exponent given). :func:`search_network` returns the new network and one :class:`SearchInfo`
per connection (error before and after, the exponents, how many weights were clipped).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from spikeport.emulator import bits
from spikeport.emulator.errors import field_error
from spikeport.emulator.network import Connection, Network
from spikeport.emulator.sparse_weights import SparseWeights
from spikeport.quantize import fixed_point as fixed

OBJECTIVES = ("weight", "output")


@dataclass(frozen=True, kw_only=True)
class SearchInfo:
    connection: str
    objective: str
    weight_exp_before: int
    weight_exp_after: int
    error_before: float  # relative: objective(Wq) / objective(0)
    error_after: float
    clipped: int  # weights clipped to the largest mantissa by the chosen exponent

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def mantissas_at(w: np.ndarray, exp: int, mode: str, nbits: int) -> tuple[np.ndarray, int]:
    """``(mant, n_clipped)`` of ``w`` (a_in units) at exponent ``exp`` on the grid of ``w``'s sign mode
    (:func:`~.fixed_point.quantize_weights_at`)."""
    q = fixed.quantize_weights_at(w, exp, mode, nbits)
    return q.mant, q.saturated


def _error(dw: np.ndarray, second: np.ndarray | None) -> float:
    if second is None:
        return float(np.sum(dw**2))
    return float(np.einsum("ji,ik,jk->", dw, second, dw))


def best_exponent(
    w: np.ndarray, exp0: int, *, mode: str, nbits: int, second: np.ndarray | None, max_clip: int = 3
) -> tuple[int, np.ndarray, int, float, float]:
    """``(exp, mant, clipped, err_before, err_after)``: the best of ``exp0, exp0 - 1, ..., exp0 -
    max_clip`` (relative errors; ties keep the larger exponent)."""
    base = _error(w, second) or 1.0
    mant0, clip0 = mantissas_at(w, exp0, mode, nbits)
    before = _error(mant0 * 2.0**exp0 - w, second) / base
    best = (exp0, mant0, clip0, before)
    for e in range(exp0 - 1, max(exp0 - max_clip, bits.WEIGHT_EXP_MIN) - 1, -1):
        mant, clipped = mantissas_at(w, e, mode, nbits)
        err = _error(mant * 2.0**e - w, second) / base
        if err < best[3]:
            best = (e, mant, clipped, err)
    return best[0], best[1], best[2], before, best[3]


def message_moments(net: Network, calibration: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``E[m m^T]`` over samples and steps, per source group, from the integer inputs
    ``calibration`` (:func:`~.quantize_nir.encode_inputs`) and the network's own spikes on them."""
    from spikeport.emulator.engines.dispatch import run

    res = run(net, dict(calibration), record=("spikes",))
    msgs = {k: np.asarray(v, np.float64) for k, v in calibration.items()}
    msgs.update({g.name: np.asarray(res[f"{g.name}/spikes"], np.float64) for g in net.groups})
    out = {}
    for name, m in msgs.items():
        flat = m.reshape(-1, m.shape[-1])
        out[name] = flat.T @ flat / max(len(flat), 1)
    return out


def search_network(
    net: Network,
    twin: Network,
    *,
    objective: str = "output",
    calibration: Mapping[str, np.ndarray] | None = None,
    max_clip: int = 3,
) -> tuple[Network, list[SearchInfo]]:
    """Re-choose every connection's exponent (and so its clipping) of a quantized ``net`` (float
    weights from its ``twin``). ``calibration``: the integer inputs, needed for ``"output"``."""
    if objective not in OBJECTIVES:
        raise field_error("search_network", "objective", f"must be one of {OBJECTIVES}", objective)
    if objective == "output" and calibration is None:
        raise field_error("search_network", "calibration", "is needed for objective='output'", None)
    mode = str(net.metadata.get("quantizer", {}).get("mode", "fixed"))
    moments = message_moments(net, calibration) if calibration is not None and objective == "output" else {}
    floats = {c.name: c for c in twin.connections}
    conns: list[Connection] = []
    infos = []
    for c in net.connections:
        if c.name not in floats:
            raise field_error("search_network", "twin", "must hold every connection", c.name)
        # dense float weights (a sparse connection is made dense here, refused above DENSE_LIMIT)
        w = np.asarray(floats[c.name].dense_weights(), np.float64) * 2.0 ** floats[c.name].weight_exp
        second = moments.get(c.source) if objective == "output" else None
        e, mant, clipped, before, after = best_exponent(
            w, int(c.weight_exp), mode=mode, nbits=int(c.num_weight_bits), second=second, max_clip=max_clip
        )
        new_w = SparseWeights.from_dense(mant) if c.is_sparse else mant
        conns.append(dataclasses.replace(c, weights=new_w, weight_exp=e) if e != c.weight_exp else c)
        infos.append(
            SearchInfo(
                connection=c.name,
                objective=objective,
                weight_exp_before=int(c.weight_exp),
                weight_exp_after=e,
                error_before=before,
                error_after=after,
                clipped=clipped,
            )
        )
    meta = {**net.metadata, "exponent_search": [i.to_dict() for i in infos]}
    return dataclasses.replace(net, connections=tuple(conns), metadata=meta), infos
