"""The dense time-stepped engine (``engine="dense"``): numpy over the batch, one step at a time.

Per time step ``t`` (1-based, Lava's), in this order:

1. every neuron group takes ``a_in`` = the int32-wrapped sum of everything due at ``t`` from its ring
   buffer, updates its state and computes the message it sends;
2. every input group sends ``x[:, t - 1]``;
3. every connection turns its source's message into activations due at ``t + 1 + delay``.

Because every connection delays by at least one step, group order within a step does not matter.
Fixed-point runs with ``overflow="wrap"`` use the compiled loop of :mod:`.compiled_pack` / :mod:`.compiled_loop` where it
applies; everything else runs the numpy kernels of :mod:`.group_models` / :mod:`.synapses`.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from spikeport.emulator import kernels
from spikeport.emulator.energy.counters import CounterAccumulator, make_counters
from spikeport.emulator.engines.chunking import timed_chunks
from spikeport.emulator.engines.compiled_pack import (
    FastPlan,
    FastResult,
    advance_fast,
    fast_plan,
    finish_fast,
    start_fast,
)
from spikeport.emulator.engines.group_models import GroupModel, State, group_model
from spikeport.emulator.engines.synapses import SynapsePlan, deliver, plan_connection
from spikeport.emulator.errors import FixedPointOverflowError, ValidationError
from spikeport.emulator.kernels import Guard
from spikeport.emulator.network import Network
from spikeport.emulator.result import RunResult

#: set to False to force the numpy path (tests compare the two paths)
USE_COMPILED = True


@dataclass(frozen=True, kw_only=True, eq=False)
class DenseState:
    """Where a dense run stopped: steps done, per-group states (:class:`~.group_models.LIFState` or
    :class:`~spikeport.emulator.kernels.SigmaDeltaState` of (B, n) arrays), and undelivered
    activations (``rings[target]`` of shape (R, B, n), slot ``t % R`` due at step ``t``)."""

    time_step: int
    batch: int
    mode: str
    groups: Mapping[str, State]
    rings: Mapping[str, np.ndarray]


class _Setup(NamedTuple):
    """What a numpy-path run needs besides the network: group models, connection plans, flags."""

    models: dict[str, GroupModel]
    plans: list[SynapsePlan]
    fixed: bool
    strict: bool


def _guard(obj: str, t: int, strict: bool) -> Guard:
    if not strict:
        return None

    def check(variable: str, raw: np.ndarray, kept: np.ndarray) -> None:
        raw, kept = np.broadcast_arrays(np.asarray(raw), np.asarray(kept))
        bad = np.argwhere(raw != kept)
        if bad.size:
            idx = tuple(int(i) for i in bad[0])
            where = f"sample {idx[0]}, index {idx[1]}" if len(idx) == 2 else f"index {idx}"
            raise FixedPointOverflowError(
                f"{obj}.{variable}: overflow at time step {t} ({where}): "
                f"exact value {raw[idx]!r} became {kept[idx]!r}"
            )

    return check


_PLANS: weakref.WeakKeyDictionary[Network, dict[tuple[bool, bool], Any]] = weakref.WeakKeyDictionary()


def _plans(net: Network, fixed: bool, strict: bool) -> tuple[list[SynapsePlan], FastPlan | None]:
    """Connection plans (and the compiled-loop packing) of ``net``, cached per network object
    (records are frozen, so a network's plans never change)."""
    per_net = _PLANS.setdefault(net, {})
    key = (fixed, strict)
    if key not in per_net:
        plans = [plan_connection(c, fixed, strict) for c in net.connections]
        per_net[key] = (plans, fast_plan(net, plans) if fixed and not strict else None)
    return per_net[key]  # type: ignore[no-any-return]


def ring_sizes(net: Network) -> dict[str, int]:
    """Ring slots per neuron group of :class:`DenseState`: 1 + the largest delay into the group."""
    sizes = {g.name: 1 for g in net.groups}
    for c in net.connections:
        sizes[c.target] = max(sizes[c.target], c.max_delay + 1)
    return sizes


def _initial_state(
    net: Network, models: dict[str, GroupModel], batch: int, mode: str, sizes: dict[str, int]
) -> DenseState:
    dtype = np.int64 if mode == "fixed" else np.float64
    return DenseState(
        time_step=0,
        batch=batch,
        mode=mode,
        groups={g.name: models[g.name].init(g, batch) for g in net.groups},
        rings={g.name: np.zeros((sizes[g.name], batch, int(g.n)), dtype) for g in net.groups},
    )


def _check_state(state: Any, net: Network, batch: int, mode: str, sizes: dict[str, int]) -> None:
    if not isinstance(state, DenseState):
        raise ValidationError(f"run.state: must be the state of a dense run (got {type(state).__name__})")
    if state.batch != batch or state.mode != mode:
        raise ValidationError(
            f"run.state: was saved for batch {state.batch}, mode {state.mode!r} "
            f"(got batch {batch}, mode {mode!r})"
        )
    for g in net.groups:
        ring = state.rings.get(g.name)
        if ring is None or ring.shape != (sizes[g.name], batch, int(g.n)):
            raise ValidationError(f"run.state: does not match group {g.name!r} of this network")


def _steps(total: int, progress: bool) -> Iterator[int]:
    if progress and sys.stderr.isatty():
        from tqdm import tqdm

        yield from tqdm(range(total), desc="emulator", unit="step", leave=False)
    else:
        yield from range(total)


def _record_dtype(var: str, mode: str, kind: str) -> type:
    if var == "spikes" and kind == "lif":
        return np.int8
    return np.int32 if mode == "fixed" else np.float64


# ---------------------------------------------------------------- compiled path


def _compiled_run(
    fp: FastPlan,
    inputs: Mapping[str, np.ndarray],
    record: Mapping[str, tuple[str, ...]],
    state: DenseState,
    counters: bool,
    progress: bool,
) -> FastResult:
    """The compiled loop in windows of about :data:`.chunking.TARGET_S` seconds (so that Ctrl-C is
    answered between windows); the kernel's state stays packed and the recordings are written in
    place across windows."""
    steps = int(next(iter(inputs.values())).shape[1])
    bar = None
    if progress and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=steps, desc="emulator", unit="step", leave=False)
    run = start_fast(
        fp,
        inputs,
        record=record,
        groups=state.groups,  # type: ignore[arg-type]
        rings=state.rings,
        t_now=state.time_step,
        counters=counters,
    )
    for start, stop in timed_chunks(steps, fp, state.batch):
        advance_fast(run, start, stop)
        if bar is not None:
            bar.update(stop - start)
    if bar is not None:
        bar.close()
    return finish_fast(run)


def _run_compiled(
    fp: FastPlan,
    inputs: Mapping[str, np.ndarray],
    record: Mapping[str, tuple[str, ...]],
    state: DenseState,
    counters: bool,
    progress: bool,
    meta: dict[str, Any],
) -> RunResult:
    """Run the compiled loop and assemble its pieces into one result."""
    steps = int(next(iter(inputs.values())).shape[1])
    res = _compiled_run(fp, inputs, record, state, counters, progress)
    final = DenseState(
        time_step=state.time_step + steps,
        batch=state.batch,
        mode=state.mode,
        groups=res.groups,
        rings=res.rings,
    )
    raw = res.counters
    cnt = make_counters(steps, raw.spikes, raw.payload, raw.events) if raw is not None else None
    return RunResult(outputs=res.outputs, state=final, counters=cnt, metadata={**meta, "path": "compiled"})


# ---------------------------------------------------------------- numpy path


def _step_groups(
    net: Network,
    setup: _Setup,
    gstate: dict[str, State],
    rings: dict[str, np.ndarray],
    t: int,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Step 1 of the module docstring: every group takes ``a_in`` from its ring and steps; returns
    the messages and the ``a_in`` of every group (``gstate`` is updated)."""
    msgs, a_ins = {}, {}
    for g in net.groups:
        ring = rings[g.name]
        slot = t % ring.shape[0]
        a_in = ring[slot].copy()
        ring[slot] = 0
        guard = _guard(f"{type(g).__name__}({g.name!r})", t, setup.strict)
        if setup.fixed:
            wrapped = kernels.wrap32(a_in)
            if guard is not None:
                guard("a_in", a_in, wrapped)
            a_in = wrapped
        gstate[g.name], msgs[g.name] = setup.models[g.name].step(g, gstate[g.name], a_in, t, guard)
        a_ins[g.name] = a_in
    return msgs, a_ins


def _deliver_all(setup: _Setup, msgs: Mapping[str, np.ndarray], rings: dict[str, np.ndarray], t: int) -> None:
    """Step 3: every connection adds what its source sent into its target's ring."""
    for p in setup.plans:
        ring = rings[p.target]
        for d, a in deliver(p, msgs[p.source], _guard(f"Connection({p.name!r})", t, setup.strict)):
            ring[(t + 1 + d) % ring.shape[0]] += a


def _record_step(
    out: dict[tuple[str, str], np.ndarray],
    i: int,
    gstate: Mapping[str, State],
    msgs: Mapping[str, np.ndarray],
    a_ins: Mapping[str, np.ndarray],
) -> None:
    for (name, var), buf in out.items():
        if var == "spikes":
            buf[:, i] = msgs[name]
        elif var == "a_in":
            buf[:, i] = a_ins[name]
        else:
            buf[:, i] = getattr(gstate[name], var)


def _count_step(
    acc: CounterAccumulator, msgs: Mapping[str, np.ndarray], a_ins: Mapping[str, np.ndarray]
) -> None:
    for name, a_in in a_ins.items():
        acc.add_input(name, a_in)
    acc.steps += 1
    for name, msg in msgs.items():
        acc.add_message(name, msg)


def _record_buffers(
    net: Network, setup: _Setup, record: Mapping[str, tuple[str, ...]], mode: str, batch: int, steps: int
) -> dict[tuple[str, str], np.ndarray]:
    kinds = {g.name: ("sd" if "sigma" in setup.models[g.name].variables else "lif") for g in net.groups}
    return {
        (name, var): np.zeros((batch, steps, int(net.group(name).n)), _record_dtype(var, mode, kinds[name]))
        for name, vars_ in record.items()
        for var in vars_
    }


def _run_numpy(
    net: Network,
    inputs: Mapping[str, np.ndarray],
    record: Mapping[str, tuple[str, ...]],
    state: DenseState,
    setup: _Setup,
    counters: bool,
    progress: bool,
    meta: dict[str, Any],
) -> RunResult:
    """The numpy loop over time steps (float mode, strict overflow, sigma-delta, ...)."""
    batch, steps = state.batch, int(next(iter(inputs.values())).shape[1])
    gstate: dict[str, State] = {k: type(v)(*(a.copy() for a in v)) for k, v in state.groups.items()}
    rings = {k: r.copy() for k, r in state.rings.items()}
    out = _record_buffers(net, setup, record, state.mode, batch, steps)
    acc = None
    if counters:
        senders = {g.name: int(g.n) for g in (*net.inputs, *net.groups)}
        acc = CounterAccumulator(batch, senders, [g.name for g in net.groups], not setup.fixed)
    for i in _steps(steps, progress):
        t = state.time_step + i + 1
        msgs, a_ins = _step_groups(net, setup, gstate, rings, t)
        _record_step(out, i, gstate, msgs, a_ins)
        msgs.update({ig.name: inputs[ig.name][:, i] for ig in net.inputs})
        _deliver_all(setup, msgs, rings, t)
        if acc is not None:
            _count_step(acc, msgs, a_ins)
    final = DenseState(
        time_step=state.time_step + steps, batch=batch, mode=state.mode, groups=gstate, rings=rings
    )
    return RunResult(
        outputs={f"{k[0]}/{k[1]}": v for k, v in out.items()},
        state=final,
        counters=None if acc is None else acc.freeze(),
        metadata={**meta, "path": "numpy"},
    )


def run_dense(
    net: Network,
    inputs: Mapping[str, np.ndarray],
    *,
    record: Mapping[str, tuple[str, ...]],
    mode: str,
    overflow: str,
    state: Any,
    counters: bool,
    progress: bool,
) -> RunResult:
    """Run ``net`` on validated ``inputs`` (name -> (B, T, n)); see :func:`spikeport.emulator.run`."""
    batch = int(next(iter(inputs.values())).shape[0])
    fixed, strict = mode == "fixed", overflow == "strict" and mode == "fixed"
    models = {g.name: group_model(g, mode) for g in net.groups}
    plans, fp = _plans(net, fixed, strict)
    sizes = ring_sizes(net)
    if state is None:
        state = _initial_state(net, models, batch, mode, sizes)
    else:
        _check_state(state, net, batch, mode, sizes)
    meta = {"backend": "emulator", "engine": "dense", "mode": mode, "overflow": overflow}
    if fp is not None and USE_COMPILED:
        return _run_compiled(fp, inputs, record, state, counters, progress, meta)
    setup = _Setup(models=models, plans=plans, fixed=fixed, strict=strict)
    return _run_numpy(net, inputs, record, state, setup, counters, progress, meta)
