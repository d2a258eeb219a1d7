"""``run()``: the emulator's front door, and the engine registry.

``ENGINES`` maps an engine name to a function ``(net, inputs, *, record, mode, overflow, state,
counters, progress) -> RunResult`` that receives validated inputs (name -> (B, T, n) arrays: int8
for binary and int32 for graded groups in fixed mode, float64 in float mode) and a validated record
spec (group name -> variable names). Another module registers itself with :func:`register_engine`
(e.g. the event-driven engine).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
from spikeport.emulator.engines.dense import run_dense
from spikeport.emulator.engines.event import run_event
from spikeport.emulator.engines.group_models import group_model
from spikeport.emulator.errors import UnsupportedError, ValidationError, field_error
from spikeport.emulator.network import InputGroup, Network
from spikeport.emulator.result import RunResult

EngineFn = Callable[..., RunResult]
ENGINES: dict[str, EngineFn] = {"dense": run_dense, "event": run_event}
MODES = ("fixed", "float")
OVERFLOW = ("wrap", "strict")


def register_engine(name: str, fn: EngineFn) -> None:
    """Make ``run(..., engine=name)`` call ``fn`` (same keyword arguments as :func:`run_dense`)."""
    ENGINES[name] = fn


def _as_mapping(net: Network, inputs: Any) -> dict[str, Any]:
    if isinstance(inputs, Mapping):
        known = {g.name for g in net.inputs}
        unknown = sorted(set(inputs) - known)
        if unknown:
            raise field_error(
                "run", "inputs", f"unknown input group(s); the network has {sorted(known)}", unknown
            )
        missing = sorted(known - set(inputs))
        if missing:
            raise field_error("run", "inputs", "missing input group(s)", missing)
        return dict(inputs)
    if len(net.inputs) != 1:
        names = [g.name for g in net.inputs]
        raise field_error(
            "run",
            "inputs",
            f"must be a mapping name -> array for several input groups {names}",
            type(inputs).__name__,
        )
    return {net.inputs[0].name: inputs}


def _check_input(g: InputGroup, x: Any, mode: str) -> np.ndarray:
    obj = f"run.inputs[{g.name!r}]"
    arr = np.asarray(x)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[2] != int(g.n):
        raise ValidationError(f"{obj}: must have shape (T, {g.n}) or (B, T, {g.n}) (got {arr.shape})")
    if arr.shape[0] < 1:
        raise ValidationError(f"{obj}: batch must be >= 1 (got {arr.shape})")
    if arr.dtype.kind not in "biuf":
        raise ValidationError(f"{obj}: must be numeric (got dtype {arr.dtype})")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValidationError(f"{obj}: must be finite (got nan/inf)")
    # Float arrays are welcome (spike trains often come as float32 0/1) as long as they hold integers;
    # only graded inputs in float mode may carry fractions.
    if arr.dtype.kind == "f" and not (mode == "float" and g.num_message_bits > 0) and np.any(arr % 1):
        bad = arr[(arr % 1) != 0].flat[0]
        rule = "must hold integer values" + (
            " (fractions only for graded inputs in float mode)" if mode == "float" else ""
        )
        raise ValidationError(f"{obj}: {rule} (got {bad!r})")
    fixed_type = np.int8 if g.num_message_bits == 0 else np.int32
    if arr.size == 0:
        return arr.astype(fixed_type if mode == "fixed" else np.float64)
    lo, hi = arr.min(), arr.max()
    if g.num_message_bits == 0:
        if arr.dtype.kind != "b" and (lo < 0 or hi > 1 or (arr.dtype.kind == "f" and np.any(arr % 1))):
            bad = arr[(arr != 0) & (arr != 1)]
            raise ValidationError(
                f"{obj}: binary input (num_message_bits=0) must be 0/1 (got {bad.flat[0]!r})"
            )
    else:
        lim = 1 << int(g.num_message_bits)
        peak = max(abs(float(lo)), abs(float(hi)))
        if peak >= lim:
            raise ValidationError(
                f"{obj}: graded payloads must satisfy |x| < 2**num_message_bits = {lim} (got {peak!r})"
            )
    return arr.astype(fixed_type if mode == "fixed" else np.float64, copy=False)


def _record_spec(net: Network, record: Iterable[str], mode: str) -> dict[str, tuple[str, ...]]:
    if isinstance(record, str):
        record = (record,)
    models = {g.name: group_model(g, mode) for g in net.groups}
    spec: dict[str, list[str]] = {g.name: [] for g in net.groups}
    for item in record:
        if not isinstance(item, str):
            raise field_error("run", "record", "entries must be strings 'var' or 'group/var'", item)
        group, _, var = item.rpartition("/")
        if group:
            if group not in models:
                raise field_error("run", "record", f"unknown group; neuron groups are {sorted(models)}", item)
            valid = models[group].variables
            if var not in valid:
                raise field_error("run", "record", f"group {group!r} records {list(valid)}", item)
            targets = [group]
        else:
            targets = [g for g, m in models.items() if var in m.variables]
            if not targets:
                valid_all = sorted({v for m in models.values() for v in m.variables})
                raise field_error("run", "record", f"unknown variable; valid variables are {valid_all}", item)
        for g in targets:
            if var not in spec[g]:
                spec[g].append(var)
    return {g: tuple(v) for g, v in spec.items() if v}


def run(
    net: Network,
    inputs: Any,
    *,
    record: Iterable[str] = ("spikes",),
    mode: str = "fixed",
    overflow: str = "wrap",
    state: Any = None,
    counters: bool = False,
    engine: str = "dense",
    progress: bool = False,
) -> RunResult:
    """Run ``net`` on ``inputs`` and return the recorded variables as ``"<group>/<var>"`` -> (B, T, n).

    - ``inputs``: an array (T, n) or (B, T, n) for a network with one input group, or a mapping
      input-group name -> array. Binary input groups take 0/1 values; graded ones (num_message_bits
      > 0) take integers with ``|x| < 2**num_message_bits``. ``x[:, i]`` is sent at step ``i + 1``.
    - ``record``: variable names (recorded for every group that has them) or ``"group/var"``.
      LIF/TernaryLIF: spikes, u, v, a_in; SigmaDelta: spikes (the sent payload), sigma, act,
      residue, error, a_in.
    - ``mode``: "fixed" (Lava's bit-exact integer arithmetic; needs integer parameters) or "float"
      (same steps in real arithmetic). ``overflow``: "wrap" (Lava) or "strict" (raise
      ``FixedPointOverflowError`` on any wrap or clip that changes a value).
    - ``state``: a previous result's ``state`` to continue that run (same batch size and mode).
    - ``counters``: attach :class:`~spikeport.emulator.energy.counters.Counters` to the result.
    """
    if mode not in MODES:
        raise field_error("run", "mode", f"must be one of {MODES}", mode)
    if overflow not in OVERFLOW:
        raise field_error("run", "overflow", f"must be one of {OVERFLOW}", overflow)
    fn = ENGINES.get(engine)
    if fn is None:
        raise UnsupportedError(f"run.engine: unknown engine {engine!r} (available: {sorted(ENGINES)})")
    if not isinstance(net, Network):
        raise field_error("run", "net", "must be a Network", type(net).__name__)
    if mode == "fixed":
        net.require_integer()
    raw = _as_mapping(net, inputs)
    arrays = {g.name: _check_input(g, raw[g.name], mode) for g in net.inputs}
    shapes = {k: a.shape[:2] for k, a in arrays.items()}
    if len(set(shapes.values())) > 1:
        raise field_error("run", "inputs", "all input groups must have the same (B, T)", shapes)
    spec = _record_spec(net, record, mode)
    result = fn(
        net,
        arrays,
        record=spec,
        mode=mode,
        overflow=overflow,
        state=state,
        counters=counters,
        progress=progress,
    )
    meta = {
        **result.metadata,
        "batch": int(next(iter(shapes.values()))[0]),
        "steps": int(next(iter(shapes.values()))[1]),
    }
    return RunResult(outputs=result.outputs, state=result.state, counters=result.counters, metadata=meta)
