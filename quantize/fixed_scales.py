"""Fixed scales: quantize a graph with the scales, exponents and decays of an earlier quantized network.

``sp.quantize(graph, sem, scales=net)`` (or ``scales=scales_of(net)``) skips every data-dependent choice
(group scales and thresholds, weight exponents, decays, bias exponents, input payload scales) and takes
them from ``net``; what is left is rounding each value at the given scale. So the NIR graph that
:func:`~.training.writeback.finetuned_graph` writes from a fine-tuned network quantizes back to exactly
that network (its mantissas are ``mant * 2**exp`` divided by the same factors they are multiplied by
here). A record that does not fit the graph (other group or connection names, other sizes) is refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from spikeport.emulator.errors import field_error
from spikeport.emulator.network import LIFGroup, Network
from spikeport.quantize.drift import DEFAULT_STEPS


@dataclass(frozen=True, kw_only=True)
class GroupScales:
    """One neuron group's fixed choices: per-neuron scale (integer v units per float v unit), threshold
    mantissa, decays and per-neuron bias exponents."""

    scale: np.ndarray
    vth: int
    du: int
    dv: int
    bias_exp: np.ndarray


@dataclass(frozen=True, kw_only=True)
class InputScale:
    n: int
    scale: float
    num_message_bits: int


@dataclass(frozen=True, kw_only=True)
class QuantScales:
    """Every choice of a quantized network that is not a rounding (see the module docstring)."""

    mode: str
    rounding: str
    drift_steps: int  # the run length of the drift measures that chose the biases (``rounding``)
    groups: Mapping[str, GroupScales]
    weight_exps: Mapping[str, int]
    inputs: Mapping[str, InputScale]


def scales_of(net: Network) -> QuantScales:
    """The :class:`QuantScales` of a network that :func:`spikeport.quantize` built (fine-tuned or not)."""
    meta = net.metadata.get("groups")
    if not isinstance(meta, Mapping) or not meta:
        raise field_error(
            "QuantScales", "net", "a network built by spikeport.quantize (metadata groups)", meta
        )
    recs = {g.name: g for g in net.groups if isinstance(g, LIFGroup)}
    groups = {}
    for name, m in meta.items():
        if name not in recs:
            raise field_error(
                "QuantScales", "groups", "every metadata group must be a LIF group of the network", name
            )
        g = recs[name]
        groups[name] = GroupScales(
            scale=np.asarray(m["scale"], np.float64),
            vth=int(g.vth),
            du=int(g.du),
            dv=int(g.dv),
            bias_exp=np.broadcast_to(np.asarray(g.bias_exp, np.int64), (int(g.n),)).copy(),
        )
    quant = net.metadata.get("quantizer", {})
    inputs = {
        k: InputScale(n=int(v["n"]), scale=float(v["scale"]), num_message_bits=int(v["num_message_bits"]))
        for k, v in net.metadata.get("inputs", {}).items()
    }
    return QuantScales(
        mode=str(quant.get("mode", "fixed")),
        rounding=str(quant.get("rounding", "nearest")),
        drift_steps=int(quant.get("drift_steps", DEFAULT_STEPS)),
        groups=groups,
        weight_exps={c.name: int(c.weight_exp) for c in net.connections},
        inputs=inputs,
    )


def as_scales(x: Any) -> QuantScales:
    """``x`` as a :class:`QuantScales`: a record, or a quantized :class:`Network` (via :func:`scales_of`)."""
    if isinstance(x, QuantScales):
        return x
    if isinstance(x, Network):
        return scales_of(x)
    raise field_error("quantize", "scales", "a quantized Network or a QuantScales record", type(x).__name__)


def check_scales(
    sc: QuantScales,
    *,
    mode: str,
    groups: Mapping[str, int],
    inputs: Mapping[str, int],
    connections: Sequence[str],
) -> None:
    """Refuse a record that does not fit the graph: ``groups`` and ``inputs`` map names to sizes,
    ``connections`` are the names of the connections the graph quantizes to."""
    if sc.mode != mode:
        raise field_error("QuantScales", "mode", f"must be the mode quantized now ({mode!r})", sc.mode)
    _same_names("groups", set(sc.groups), set(groups))
    _same_names("inputs", set(sc.inputs), set(inputs))
    _same_names("weight_exps", set(sc.weight_exps), set(connections))
    for name, n in groups.items():
        g = sc.groups[name]
        for field, arr in (("scale", g.scale), ("bias_exp", g.bias_exp)):
            if np.shape(arr) != (n,):
                raise field_error(
                    f"QuantScales.groups[{name!r}]", field, f"must have shape ({n},)", np.shape(arr)
                )
        if not np.all(np.isfinite(g.scale)) or np.any(g.scale <= 0):
            raise field_error(
                f"QuantScales.groups[{name!r}]", "scale", "must be finite and > 0", float(np.min(g.scale))
            )
    for name, n in inputs.items():
        if sc.inputs[name].n != n:
            raise field_error(f"QuantScales.inputs[{name!r}]", "n", f"must be {n}", sc.inputs[name].n)


def _same_names(field: str, have: set[str], want: set[str]) -> None:
    if have != want:
        missing, extra = sorted(want - have), sorted(have - want)
        raise field_error(
            "QuantScales",
            field,
            f"must name exactly the graph's {field} (missing {missing}, unknown {extra})",
            sorted(have),
        )
