"""How float inputs become the integers an input group sends: binary spikes or graded payloads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from spikeport.quantize.graph.flatten import FlatGraph
from spikeport.quantize.graph.group_plan import Plan
from spikeport.quantize.graph.inputs import graph_inputs


@dataclass(frozen=True, kw_only=True)
class InputEncoding:
    """How float inputs become the integers an InputGroup sends: ``round(x * scale)`` (graded,
    ``num_message_bits`` > 0) or 0/1 spikes (``scale`` 1)."""

    n: int
    scale: float
    num_message_bits: int


def _arrays(flat: FlatGraph, x: Any) -> dict[str, np.ndarray]:
    if x is None:
        return {}
    shapes = {name: flat.nodes[name].out_shape for name in flat.inputs}
    xs = graph_inputs(shapes, x, caller="calibration", require_all=False)
    return {k: a.astype(np.float64) for k, a in xs.items()}


def input_encoding(flat: FlatGraph, plan: Plan, calibration: Any) -> dict[str, InputEncoding]:
    """Binary spikes unless the calibration data holds other values: then 8-bit graded payloads,
    ``scale = 127 / max|x|``."""
    data = _arrays(flat, calibration)
    enc = {}
    for name, n in plan.inputs.items():
        x = data.get(name)
        if x is not None and np.any((x != 0) & (x != 1)):
            enc[name] = InputEncoding(n=n, scale=graded_scale(x), num_message_bits=8)
        else:
            enc[name] = InputEncoding(n=n, scale=1.0, num_message_bits=0)
    return enc


def graded_scale(x: np.ndarray, top: int = 127) -> float:
    """``scale`` with ``|x| * scale <= top``: the largest multiple of ``d`` that fits when every value
    is a multiple of ``1/d`` for some ``d <= top`` (e.g. pixels k/16: scale 112, exact), else
    ``top / max|x|``."""
    peak = float(np.max(np.abs(x)))
    if peak == 0:
        return 1.0
    for d in range(1, top + 1):
        k = int(top / (d * peak))
        if k < 1:
            break
        y = x * d
        if np.all(np.abs(y - np.rint(y)) < 1e-6):
            return float(d * k)
    return top / peak
