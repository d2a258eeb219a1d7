"""The dense time-stepped engine (``engine="dense"``): numpy over the batch, one step at a time.

Per time step ``t`` (1-based, Lava's), in this order:

1. every neuron group takes ``a_in`` = the int32-wrapped sum of everything due at ``t`` from its ring
   buffer, updates its state and computes the message it sends;
2. every input group sends ``x[:, t - 1]``;
3. every connection turns its source's message into activations due at ``t + 1 + delay``.

Because every connection delays by at least one step, group order within a step does not matter.
Fixed-point runs with ``overflow="wrap"`` use the compiled kernels of :mod:`.engine_fast` where they
apply; everything else runs the numpy kernels of :mod:`.engine_groups` / :mod:`.engine_synapses`.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from spikeport.emulator import kernels
from spikeport.emulator.energy.counters import CounterAccumulator, make_counters
from spikeport.emulator.engines.compiled_pack import FastPlan, fast_plan, run_fast
from spikeport.emulator.engines.group_models import GroupModel, group_model
from spikeport.emulator.engines.synapses import SynapsePlan, deliver, plan_connection
from spikeport.emulator.errors import FixedPointOverflowError, ValidationError
from spikeport.emulator.kernels import Guard
from spikeport.emulator.network import Network
from spikeport.emulator.result import RunResult

#: set to False to force the numpy path (tests compare the two paths)
USE_COMPILED = True


@dataclass(frozen=True, kw_only=True, eq=False)
class DenseState:
    """Where a dense run stopped: steps done, per-group state arrays, and undelivered activations
    (``rings[target]`` of shape (R, B, n), slot ``t % R`` due at step ``t``)."""

    time_step: int
    batch: int
    mode: str
    groups: Mapping[str, Mapping[str, np.ndarray]]
    rings: Mapping[str, np.ndarray]


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


def _ring_sizes(net: Network, plans: list[SynapsePlan]) -> dict[str, int]:
    sizes = {g.name: 1 for g in net.groups}
    for p in plans:
        sizes[p.target] = max(sizes[p.target], p.max_delay + 1)
    return sizes


def _initial_state(
    net: Network, models: dict[str, GroupModel], batch: int, mode: str, ring_sizes: dict[str, int]
) -> DenseState:
    dtype = np.int64 if mode == "fixed" else np.float64
    return DenseState(
        time_step=0,
        batch=batch,
        mode=mode,
        groups={g.name: models[g.name].init(g, batch) for g in net.groups},
        rings={g.name: np.zeros((ring_sizes[g.name], batch, int(g.n)), dtype) for g in net.groups},
    )


def _check_state(state: Any, net: Network, batch: int, mode: str, ring_sizes: dict[str, int]) -> None:
    if not isinstance(state, DenseState):
        raise ValidationError(f"run.state: must be the state of a dense run (got {type(state).__name__})")
    if state.batch != batch or state.mode != mode:
        raise ValidationError(
            f"run.state: was saved for batch {state.batch}, mode {state.mode!r} "
            f"(got batch {batch}, mode {mode!r})"
        )
    for g in net.groups:
        ring = state.rings.get(g.name)
        if ring is None or ring.shape != (ring_sizes[g.name], batch, int(g.n)):
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


def _run_compiled(
    net: Network,
    fp: FastPlan,
    inputs: Mapping[str, np.ndarray],
    record: Mapping[str, tuple[str, ...]],
    state: DenseState,
    counters: bool,
    progress: bool,
    meta: dict[str, Any],
) -> RunResult:
    """The compiled loop, in one call (or in chunks of 250 steps when a progress bar is shown)."""
    steps = int(next(iter(inputs.values())).shape[1])
    show = progress and sys.stderr.isatty()
    chunk = min(steps, 250) if show else steps
    bar = None
    if show:
        from tqdm import tqdm

        bar = tqdm(total=steps, desc="emulator", unit="step", leave=False)
    groups, rings, t_now = state.groups, state.rings, state.time_step
    pieces, raws = [], []
    for start in range(0, max(steps, 1), max(chunk, 1)):
        sub = {k: v[:, start : start + chunk] for k, v in inputs.items()}
        outputs, groups, rings, raw = run_fast(
            net, fp, sub, record=record, groups=groups, rings=rings, t_now=t_now, counters=counters
        )
        n = int(next(iter(sub.values())).shape[1])
        t_now += n
        pieces.append(outputs)
        raws.append(raw)
        if bar is not None:
            bar.update(n)
    if bar is not None:
        bar.close()
    if len(pieces) > 1:
        outputs = {k: np.concatenate([p[k] for p in pieces], axis=1) for k in pieces[0]}
    else:
        outputs = pieces[0]
    cnt = None
    if counters:
        done = [r for r in raws if r is not None]
        tot: dict[str, dict[str, np.ndarray]] = {
            part: {k: np.sum([r[part][k] for r in done], axis=0) for k in done[0][part]}
            for part in ("spikes", "payload", "events")
        }
        cnt = make_counters(steps, tot["spikes"], tot["payload"], tot["events"])
    batch = state.batch
    final = DenseState(time_step=t_now, batch=batch, mode=state.mode, groups=groups, rings=rings)
    return RunResult(outputs=outputs, state=final, counters=cnt, metadata={**meta, "path": "compiled"})


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
    first = next(iter(inputs.values()))
    batch, steps = int(first.shape[0]), int(first.shape[1])
    fixed, strict = mode == "fixed", overflow == "strict" and mode == "fixed"
    models = {g.name: group_model(g, mode) for g in net.groups}
    plans, fp = _plans(net, fixed, strict)
    ring_sizes = _ring_sizes(net, plans)
    if state is None:
        state = _initial_state(net, models, batch, mode, ring_sizes)
    else:
        _check_state(state, net, batch, mode, ring_sizes)
    meta = {"backend": "emulator", "engine": "dense", "mode": mode, "overflow": overflow}
    fp = fp if USE_COMPILED else None
    if fp is not None:
        return _run_compiled(net, fp, inputs, record, state, counters, progress, meta)
    gstate = {k: {n: a.copy() for n, a in v.items()} for k, v in state.groups.items()}
    rings = {k: r.copy() for k, r in state.rings.items()}
    kinds = {g.name: ("sd" if "sigma" in models[g.name].variables else "lif") for g in net.groups}
    out: dict[tuple[str, str], np.ndarray] = {
        (name, var): np.zeros((batch, steps, int(net.group(name).n)), _record_dtype(var, mode, kinds[name]))
        for name, vars_ in record.items()
        for var in vars_
    }
    acc = None
    if counters:
        senders = {g.name: int(g.n) for g in (*net.inputs, *net.groups)}
        acc = CounterAccumulator(batch, senders, [g.name for g in net.groups], not fixed)
    t0 = state.time_step
    for i in _steps(steps, progress):
        t = t0 + i + 1
        msgs: dict[str, np.ndarray] = {}
        for g in net.groups:
            ring = rings[g.name]
            slot = t % ring.shape[0]
            a_in = ring[slot].copy()
            ring[slot] = 0
            guard = _guard(f"{type(g).__name__}({g.name!r})", t, strict)
            if fixed:
                wrapped = kernels.wrap32(a_in)
                if guard is not None:
                    guard("a_in", a_in, wrapped)
                a_in = wrapped
            new, msg = models[g.name].step(g, gstate[g.name], a_in, t, guard)
            gstate[g.name] = new
            msgs[g.name] = msg
            for var in record.get(g.name, ()):
                out[(g.name, var)][:, i] = msg if var == "spikes" else (a_in if var == "a_in" else new[var])
            if acc is not None:
                acc.add_input(g.name, a_in)
        for ig in net.inputs:
            msgs[ig.name] = inputs[ig.name][:, i]
        for p in plans:
            ring = rings[p.target]
            for d, a in deliver(p, msgs[p.source], _guard(f"Connection({p.name!r})", t, strict)):
                ring[(t + 1 + d) % ring.shape[0]] += a
        if acc is not None:
            acc.steps += 1
            for name, msg in msgs.items():
                acc.add_message(name, msg)
    final = DenseState(time_step=t0 + steps, batch=batch, mode=mode, groups=gstate, rings=rings)
    return RunResult(
        outputs={f"{k[0]}/{k[1]}": v for k, v in out.items()},
        state=final,
        counters=None if acc is None else acc.freeze(),
        metadata={**meta, "path": "numpy"},
    )
