"""The one validator of float inputs to a NIR graph (reference run, calibration, input encoding).

:func:`graph_inputs` turns an array (one Input node) or a mapping Input name -> array into
``{Input name: (B, T, n) array}``, ``n`` the Input's flattened size. An array is ``(B, T, *shape)``
(the Input node's shape), ``(B, T, n)``, or (``unbatched=True``) ``(T, n)`` for one sample. Values must
be finite real numbers (:func:`spikeport.emulator.inputs.real_array`), ``B, T >= 1``, every array with
the same ``(B, T)``; unknown Input names are refused. Values and dtype are kept: callers cast (the
reference run straight to its torch dtype, the encoders to float64).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from spikeport.emulator.errors import ValidationError, field_error
from spikeport.emulator.inputs import check_steps, real_array

Shape = tuple[int, ...]


def _by_name(shapes: Mapping[str, Shape], x: Any, caller: str, require_all: bool) -> dict[str, Any]:
    names = list(shapes)
    if not isinstance(x, Mapping):
        if len(names) != 1:
            rule = f"must be a dict Input name -> array for several inputs {names}"
            raise field_error(caller, "inputs", rule, type(x).__name__)
        return {names[0]: x}
    unknown = sorted(set(x) - set(names), key=str)
    if unknown:
        raise field_error(caller, "inputs", f"unknown Input node(s); the graph's inputs are {names}", unknown)
    missing = sorted(set(names) - set(x))
    if missing and require_all:
        raise field_error(caller, "inputs", f"missing arrays for inputs {missing}", sorted(x, key=str))
    return dict(x)


def input_array(name: str, shape: Shape, x: Any, *, caller: str, unbatched: bool = True) -> np.ndarray:
    """One Input node's array as ``(B, T, n)`` (see the module docstring)."""
    where = f"{caller}.inputs[{name!r}]"
    arr = real_array(where, x)
    n = int(np.prod(shape, dtype=np.int64))
    given = arr.shape
    if unbatched and arr.ndim == 2:
        arr = arr[None]
    if arr.ndim < 3 or int(np.prod(arr.shape[2:], dtype=np.int64)) != n:
        natural = ", ".join(str(int(d)) for d in shape)
        forms = f"(B, T, {natural})" + (f" or (B, T, {n})" if len(shape) > 1 else "")
        forms += f" or (T, {n})" if unbatched else ""
        raise ValidationError(f"{where}: must have shape {forms} (got {given})")
    check_steps(where, arr.shape)
    return arr.reshape(arr.shape[0], arr.shape[1], n)


def graph_inputs(
    shapes: Mapping[str, Shape],
    x: Any,
    *,
    caller: str,
    require_all: bool = True,
    unbatched: bool = True,
) -> dict[str, np.ndarray]:
    """``{Input name: (B, T, n)}`` for the Input nodes ``shapes`` (name -> unbatched shape).

    ``require_all=False`` lets a mapping omit Inputs (calibration data for some of them)."""
    raw = _by_name(shapes, x, caller, require_all)
    out = {k: input_array(k, shapes[k], a, caller=caller, unbatched=unbatched) for k, a in raw.items()}
    bt = {k: a.shape[:2] for k, a in out.items()}
    if len(set(bt.values())) > 1:
        raise field_error(caller, "inputs", "all inputs must have the same (B, T)", bt)
    return out
