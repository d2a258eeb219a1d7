"""The one validator of input arrays: integer network inputs, and the checks float graph inputs share.

:func:`network_inputs` turns what a user passes to a run of an integer :class:`Network` (an array
``(T, n)`` / ``(B, T, n)`` for a network with one input group, or a mapping input-group name -> array)
into ``{group: (B, T, n) array}``; the emulator (:func:`spikeport.emulator.run`), the Lava backend and
the energy report all call it. The rules, in the user's terms:

- every input group named once, no unknown names; all groups with the same ``(B, T)``, ``B, T >= 1``;
- real numbers only (bool, int, float; not complex, strings or objects), finite;
- binary groups (``num_message_bits = 0``) take 0/1; graded ones integers with
  ``|x| < 2**num_message_bits`` (fractions only in the emulator's float mode).

:func:`real_array` is the dtype/finiteness check shared with the float inputs of NIR graphs
(:mod:`spikeport.quantize.graph.inputs`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from spikeport.emulator.errors import ValidationError, field_error
from spikeport.emulator.network import InputGroup, Network

MODES = ("fixed", "float")


def real_array(where: str, x: Any) -> np.ndarray:
    """``x`` as a numpy array of finite real numbers (bool, int or float), else a ValidationError
    worded ``where: rule (got ...)``."""
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as exc:  # ragged nested lists
        raise ValidationError(f"{where}: must be a rectangular numeric array (got {exc})") from None
    if arr.dtype.kind not in "biuf":
        raise ValidationError(f"{where}: must be numeric (got dtype {arr.dtype})")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        bad = arr[~np.isfinite(arr)].flat[0]
        raise ValidationError(f"{where}: must be finite (got {bad!r})")
    return arr


def check_steps(where: str, shape: tuple[int, ...]) -> None:
    """Refuse an empty batch or an empty run: ``B >= 1`` and ``T >= 1``."""
    if shape[0] < 1 or shape[1] < 1:
        raise ValidationError(f"{where}: batch B and steps T must be >= 1 (got shape {shape})")


def _by_group(net: Network, inputs: Any, caller: str) -> dict[str, Any]:
    known = [g.name for g in net.inputs]
    if not isinstance(inputs, Mapping):
        if len(known) != 1:
            rule = f"must be a mapping name -> array for several input groups {known}"
            raise field_error(caller, "inputs", rule, type(inputs).__name__)
        return {known[0]: inputs}
    unknown = sorted(set(inputs) - set(known), key=str)
    if unknown:
        rule = f"unknown input group(s): must name input groups of the network {sorted(known)}"
        raise field_error(caller, "inputs", rule, unknown)
    missing = sorted(set(known) - set(inputs))
    if missing:
        raise field_error(caller, "inputs", "missing input group(s)", missing)
    return dict(inputs)


def _check_values(where: str, g: InputGroup, arr: np.ndarray, mode: str) -> None:
    # Float arrays are welcome (spike trains often come as float32 0/1) as long as they hold integers;
    # only graded inputs in float mode may carry fractions.
    graded = int(g.num_message_bits) > 0
    if arr.dtype.kind == "f" and not (mode == "float" and graded) and np.any(arr % 1):
        bad = arr[(arr % 1) != 0].flat[0]
        note = " (fractions only for graded inputs in float mode)" if mode == "float" else ""
        raise ValidationError(f"{where}: must hold integer values{note} (got {bad!r})")
    if not graded:
        # min/max: two passes without temporaries (an elementwise mask costs 10x on large batches)
        if arr.dtype.kind != "b" and arr.size and not (arr.min() >= 0 and arr.max() <= 1):
            bad = arr[(arr != 0) & (arr != 1)].flat[0]
            raise ValidationError(f"{where}: binary input (num_message_bits=0) must be 0/1 (got {bad!r})")
        return
    lim = 1 << int(g.num_message_bits)
    peak = float(np.max(np.abs(arr.astype(np.float64))))
    if peak >= lim:
        raise ValidationError(
            f"{where}: graded payloads must satisfy |x| < 2**num_message_bits = {lim} (got {peak!r})"
        )


def group_input(g: InputGroup, x: Any, *, caller: str = "run", mode: str = "fixed") -> np.ndarray:
    """One input group's array as ``(B, T, n)``, checked against the rules of the module docstring
    (values unchanged; dtype as given)."""
    where = f"{caller}.inputs.{g.name}"
    arr = real_array(where, x)
    if arr.ndim not in (2, 3) or arr.shape[-1] != int(g.n):
        raise ValidationError(f"{where}: must have shape (T, {g.n}) or (B, T, {g.n}) (got {arr.shape})")
    if arr.ndim == 2:
        arr = arr[None]
    check_steps(where, arr.shape)
    _check_values(where, g, arr, mode)
    return arr


def network_inputs(
    net: Network, inputs: Any, *, caller: str = "run", mode: str = "fixed", cast: bool = True
) -> dict[str, np.ndarray]:
    """``{input group: (B, T, n) array}`` from the ``inputs`` of a run of ``net`` (see the module
    docstring); errors name ``caller`` (e.g. ``run.inputs.x: binary input ... must be 0/1 (got 2)``).

    ``cast``: fixed mode gives int8 (binary) / int32 (graded) arrays, float mode float64; without it
    the arrays keep the dtype they came in."""
    if mode not in MODES:
        raise field_error(caller, "mode", f"must be one of {MODES}", mode)
    raw = _by_group(net, inputs, caller)
    out = {g.name: group_input(g, raw[g.name], caller=caller, mode=mode) for g in net.inputs}
    shapes = {k: a.shape[:2] for k, a in out.items()}
    if len(set(shapes.values())) > 1:
        raise field_error(caller, "inputs", "all input groups must have the same (B, T)", shapes)
    if not cast:
        return out
    if mode == "float":
        return {k: a.astype(np.float64, copy=False) for k, a in out.items()}
    return {
        g.name: out[g.name].astype(np.int8 if g.num_message_bits == 0 else np.int32, copy=False)
        for g in net.inputs
    }
