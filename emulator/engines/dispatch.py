"""``run()``: the emulator's front door, and the engine registry.

``ENGINES`` maps an engine name to a function ``(net, inputs, *, record, mode, overflow, state,
counters, progress) -> RunResult`` that receives validated inputs (name -> (B, T, n) arrays: int8
for binary and int32 for graded groups in fixed mode, float64 in float mode) and a validated record
spec (group name -> variable names). Another module registers itself with :func:`register_engine`
(e.g. the event-driven engine).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from spikeport.emulator.engines.dense import run_dense
from spikeport.emulator.engines.event import run_event
from spikeport.emulator.engines.group_models import group_model
from spikeport.emulator.errors import UnsupportedError, field_error
from spikeport.emulator.inputs import network_inputs
from spikeport.emulator.network import Network
from spikeport.emulator.result import RunResult

EngineFn = Callable[..., RunResult]
ENGINES: dict[str, EngineFn] = {"dense": run_dense, "event": run_event}
#: engines loaded on first use ("module:function"), so that importing the emulator stays torch-free
LAZY_ENGINES: dict[str, str] = {"torch": "spikeport.emulator.engines.torch_engine:run_torch"}
#: engines that take ``device=`` (the others run on the CPU only)
DEVICE_ENGINES: set[str] = {"torch"}
MODES = ("fixed", "float")
OVERFLOW = ("wrap", "strict")


def register_engine(name: str, fn: EngineFn) -> None:
    """Make ``run(..., engine=name)`` call ``fn`` (same keyword arguments as :func:`run_dense`)."""
    ENGINES[name] = fn


def _engine(engine: str) -> EngineFn | None:
    if engine not in ENGINES and engine in LAZY_ENGINES:
        import importlib

        module, attr = LAZY_ENGINES[engine].split(":")
        ENGINES[engine] = getattr(importlib.import_module(module), attr)
    return ENGINES.get(engine)


def _device_option(engine: str, device: str | None) -> dict[str, Any]:
    if device is None:
        return {}
    if engine in DEVICE_ENGINES:
        return {"device": device}
    if device == "cpu":
        return {}
    raise field_error(
        "run",
        "device",
        f"engine {engine!r} runs on the CPU only (device engines: {sorted(DEVICE_ENGINES)})",
        device,
    )


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
    device: str | None = None,
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
    - ``engine``: "dense", "event" or "torch" (loaded on first use); ``device``: for the torch engine,
      "cpu" (default) or "cuda" (other engines take None or "cpu").
    """
    if mode not in MODES:
        raise field_error("run", "mode", f"must be one of {MODES}", mode)
    if overflow not in OVERFLOW:
        raise field_error("run", "overflow", f"must be one of {OVERFLOW}", overflow)
    fn = _engine(engine)
    if fn is None:
        known = sorted({*ENGINES, *LAZY_ENGINES})
        raise UnsupportedError(f"run.engine: unknown engine {engine!r} (available: {known})")
    extra = _device_option(engine, device)
    if not isinstance(net, Network):
        raise field_error("run", "net", "must be a Network", type(net).__name__)
    if mode == "fixed":
        net.require_integer()
    arrays = network_inputs(net, inputs, caller="run", mode=mode)
    shapes = {k: a.shape[:2] for k, a in arrays.items()}
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
        **extra,
    )
    meta = {
        **result.metadata,
        "batch": int(next(iter(shapes.values()))[0]),
        "steps": int(next(iter(shapes.values()))[1]),
    }
    return RunResult(outputs=result.outputs, state=result.state, counters=result.counters, metadata=meta)
