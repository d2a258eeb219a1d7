"""NIR nodes -> the emulator's records: neuron models and linear maps, each from a registry.

Neuron nodes (LIF, CubaLIF, IF, LI, CubaLI, I) become groups; the linear nodes between them (Affine,
Linear, Conv2d, SumPool2d, AvgPool2d, Flatten, Scale, Delay) are lowered to dense matrices and
composed along every path from a group (or input) to the next group, so each group pair gets one
connection per distinct delay. Convolutions and pools are lowered to (sparse) connectivity because
Lava's fixed-point Conv ignores ``weight_exp`` and ``num_weight_bits`` (REFERENCE §1), which a
per-connection scale needs.

Per step and in float units, a neuron group is (Semantics' Euler or exact step, ``v`` measured from
``v_reset``)::

    u <- (1 - alpha_u) u + u_gain * x           (no u state: u <- u_gain * x)
    v <- (1 - alpha_v) v + u + const + bias_gain * b

with ``x`` the composed linear input, ``b`` the composed Affine/Conv biases reaching the group and

    LIF:     alpha_v = dt/tau,  u_gain = alpha_v r,                    const = alpha_v (v_leak - v_reset)
    CubaLIF: alpha_u = dt/tau_syn, u_gain = alpha_v r alpha_u w_in (synaptic_input="jump": no alpha_u),
             bias_gain = u_gain / alpha_u
    IF, I:   alpha_v = 0, u_gain = r
    LI, CubaLI: as LIF / CubaLIF without spikes (read v).

Biases. Into v (LIF, IF, LI, readouts) a bias is exact: Lava's 13-bit ``bias_mant << bias_exp``.
Lava has no bias on u, so a bias into a synaptic current (CubaLIF/CubaLI) is either
``cuba_bias="unit"`` (default, exact up to weight rounding): a one-neuron group ``~bias`` that fires
every step feeds it through an ordinary connection (8-bit weights ``b``), delayed so that it arrives
from the group's first aligned step; or ``cuba_bias="v"``: put on v at its steady-state value
``u_gain b / alpha_u`` per step, which misses the current's rise during the first ~tau_syn/dt steps
(total excess ``bias_gain * b * (1 - alpha_u) / alpha_u`` in v units; reported as an
``approximation`` warning with that figure relative to the threshold).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from spikeport.emulator import bits
from spikeport.emulator.errors import UnsupportedError, ValidationError
from spikeport.emulator.network import Connection, InputGroup, LIFGroup, Network

from . import fixed
from .calibrate import (
    Bounds,
    Observation,
    Scale,
    choose_scale,
    data_bounds,
    observe,
    refine_scale,
    static_bounds,
)
from .graph import FlatGraph, FlatNode, flatten_graph
from .report import QuantReport, QuantWarning, build_report
from .semantics import Semantics

PathKey = tuple[str, int, bool]  # (source group, path delay in steps, recurrent)


@dataclass(frozen=True, kw_only=True)
class NeuronModel:
    """A neuron node's per-neuron float parameters in the form of the module docstring."""

    kind: str
    spiking: bool
    alpha_v: np.ndarray
    alpha_u: np.ndarray | None
    u_gain: np.ndarray
    bias_gain: np.ndarray
    const: np.ndarray
    threshold: np.ndarray | None  # v_threshold - v_reset
    v_reset: np.ndarray
    v_leak: np.ndarray
    tau_mem: np.ndarray | None
    tau_syn: np.ndarray | None


@dataclass(frozen=True, kw_only=True)
class Lowered:
    """A linear node as ``y = matrix @ x + bias``, channel ``k`` of y delayed by ``delays[k]`` steps."""

    matrix: np.ndarray
    bias: np.ndarray
    delays: np.ndarray | None = None


def per_neuron(name: str, field: str, value: Any, n: int) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64).ravel()
    if arr.size == 1:
        return np.full(n, float(arr[0]))
    if arr.size != n:
        raise ValidationError(f"{name}.{field}: must have 1 or {n} values (got {arr.size})")
    return arr.copy()


# ------------------------------------------------------------------------------------ neuron registry


def _alpha(sem: Semantics, tau: np.ndarray, name: str, field: str) -> np.ndarray:
    if np.any(tau <= 0):
        raise ValidationError(f"{name}.{field}: must be > 0 (got {float(np.min(tau))})")
    return fixed.decay_alpha(sem.dt, tau, sem.integration)


def _lif_like(f: FlatNode, sem: Semantics, *, cuba: bool, spiking: bool) -> NeuronModel:
    nd, n, nm = f.node, f.size, f.name
    tau = per_neuron(nm, "tau_mem" if cuba else "tau", nd.tau_mem if cuba else nd.tau, n)
    av = _alpha(sem, tau, nm, "tau")
    r = per_neuron(nm, "r", nd.r, n)
    v_leak = per_neuron(nm, "v_leak", nd.v_leak, n)
    v_reset = per_neuron(nm, "v_reset", getattr(nd, "v_reset", 0.0), n)
    thr = per_neuron(nm, "v_threshold", nd.v_threshold, n) - v_reset if spiking else None
    if thr is not None and np.any(thr <= 0):
        raise ValidationError(f"{nm}.v_threshold: must exceed v_reset (got {float(np.min(thr))} above)")
    au, tau_syn, bias_gain = None, None, av * r
    u_gain = av * r
    if cuba:
        tau_syn = per_neuron(nm, "tau_syn", nd.tau_syn, n)
        au = _alpha(sem, tau_syn, nm, "tau_syn")
        w_in = per_neuron(nm, "w_in", nd.w_in, n)
        jump = sem.synaptic_input == "jump"  # I <- (1 - au) I + w_in x, else + au w_in x
        u_gain = av * r * w_in * (1.0 if jump else au)
        bias_gain = u_gain / au  # steady state of I for a constant input, onto v
    return NeuronModel(
        kind=f.kind,
        spiking=spiking,
        alpha_v=av,
        alpha_u=au,
        u_gain=u_gain,
        bias_gain=bias_gain,
        const=av * (v_leak - v_reset),
        threshold=thr,
        v_reset=v_reset,
        v_leak=v_leak,
        tau_mem=tau,
        tau_syn=tau_syn,
    )


def _integrator(f: FlatNode, sem: Semantics, *, spiking: bool) -> NeuronModel:
    n, nm = f.size, f.name
    r = per_neuron(nm, "r", f.node.r, n)
    v_reset = per_neuron(nm, "v_reset", getattr(f.node, "v_reset", 0.0), n)
    thr = per_neuron(nm, "v_threshold", f.node.v_threshold, n) - v_reset if spiking else None
    if thr is not None and np.any(thr <= 0):
        raise ValidationError(f"{nm}.v_threshold: must exceed v_reset (got {float(np.min(thr))} above)")
    zero = np.zeros(n)
    return NeuronModel(
        kind=f.kind,
        spiking=spiking,
        alpha_v=zero,
        alpha_u=None,
        u_gain=r,
        bias_gain=r,
        const=zero,
        threshold=thr,
        v_reset=v_reset,
        v_leak=zero,
        tau_mem=None,
        tau_syn=None,
    )


def readout_model(n: int) -> NeuronModel:
    """A pass-through readout for a linear node wired straight to an Output: ``v = x + b`` each step
    (dv = 4095 keeps ``v_prev / 4096`` of the old value: an error of at most 1/4096 of |v|)."""
    one, zero = np.ones(n), np.zeros(n)
    return NeuronModel(
        kind="Readout",
        spiking=False,
        alpha_v=one,
        alpha_u=None,
        u_gain=one,
        bias_gain=one,
        const=zero,
        threshold=None,
        v_reset=zero,
        v_leak=zero,
        tau_mem=None,
        tau_syn=None,
    )


NEURON_MAPPERS: dict[str, Callable[[FlatNode, Semantics], NeuronModel]] = {
    "LIF": lambda f, s: _lif_like(f, s, cuba=False, spiking=True),
    "CubaLIF": lambda f, s: _lif_like(f, s, cuba=True, spiking=True),
    "LI": lambda f, s: _lif_like(f, s, cuba=False, spiking=False),
    "CubaLI": lambda f, s: _lif_like(f, s, cuba=True, spiking=False),
    "IF": lambda f, s: _integrator(f, s, spiking=True),
    "I": lambda f, s: _integrator(f, s, spiking=False),
}


# ------------------------------------------------------------------------------------ linear registry


def _affine(f: FlatNode, sem: Semantics) -> Lowered:
    w = np.asarray(f.node.weight, dtype=np.float64)
    b = np.asarray(getattr(f.node, "bias", np.zeros(w.shape[0])), dtype=np.float64)
    return Lowered(matrix=w.reshape(w.shape[0], -1).copy(), bias=np.broadcast_to(b, (w.shape[0],)).copy())


def _by_torch(f: FlatNode, apply: Callable[[Any], Any]) -> np.ndarray:
    """The matrix of a linear torch op: apply it to every basis vector of the input."""
    import torch

    n_in = f.in_size
    eye = torch.eye(n_in, dtype=torch.float64).reshape(n_in, *f.in_shape)
    with torch.no_grad():
        out = apply(eye).reshape(n_in, -1)
    return np.ascontiguousarray(out.numpy().T)


def _conv2d(f: FlatNode, sem: Semantics) -> Lowered:
    import torch

    nd = f.node
    w = torch.as_tensor(np.asarray(nd.weight, dtype=np.float64))
    pad = nd.padding if isinstance(nd.padding, str) else tuple(np.broadcast_to(nd.padding, (2,)).tolist())
    mat = _by_torch(
        f,
        lambda x: torch.nn.functional.conv2d(
            x,
            w,
            stride=tuple(np.broadcast_to(nd.stride, (2,)).tolist()),
            padding=pad,
            dilation=tuple(np.broadcast_to(nd.dilation, (2,)).tolist()),
            groups=int(nd.groups),
        ),
    )
    c_out = w.shape[0]
    bias = np.asarray(nd.bias, dtype=np.float64) * np.ones(c_out)
    return Lowered(matrix=mat, bias=np.repeat(bias, mat.shape[0] // c_out))


def _pool(f: FlatNode, sem: Semantics, *, avg: bool) -> Lowered:
    import torch

    nd = f.node
    k = tuple(int(v) for v in np.broadcast_to(nd.kernel_size, (2,)))
    s = tuple(int(v) for v in np.broadcast_to(nd.stride, (2,)))
    p = tuple(int(v) for v in np.broadcast_to(nd.padding, (2,)))
    scale = 1.0 if avg else float(k[0] * k[1])
    mat = _by_torch(f, lambda x: torch.nn.functional.avg_pool2d(x, k, s, p) * scale)
    return Lowered(matrix=mat, bias=np.zeros(mat.shape[0]))


def _identity(f: FlatNode, sem: Semantics) -> Lowered:
    return Lowered(matrix=np.eye(f.size), bias=np.zeros(f.size))


def _scale(f: FlatNode, sem: Semantics) -> Lowered:
    s = per_neuron(f.name, "scale", f.node.scale, f.size)
    return Lowered(matrix=np.diag(s), bias=np.zeros(f.size))


def _delay(f: FlatNode, sem: Semantics) -> Lowered:
    d = per_neuron(f.name, "delay", f.node.delay, f.size) / sem.dt
    steps = np.rint(d)
    if np.any(steps < 0) or np.any(np.abs(d - steps) > 1e-6):
        raise ValidationError(f"{f.name}.delay: must be a whole number of steps >= 0 (got {d.tolist()})")
    return Lowered(matrix=np.eye(f.size), bias=np.zeros(f.size), delays=steps.astype(np.int64))


LINEAR_LOWERINGS: dict[str, Callable[[FlatNode, Semantics], Lowered]] = {
    "Affine": _affine,
    "Linear": _affine,
    "Conv2d": _conv2d,
    "SumPool2d": lambda f, s: _pool(f, s, avg=False),
    "AvgPool2d": lambda f, s: _pool(f, s, avg=True),
    "Flatten": _identity,
    "Scale": _scale,
    "Delay": _delay,
}

SUPPORTED = (*sorted(NEURON_MAPPERS), *sorted(LINEAR_LOWERINGS), "Input", "Output")


def check_supported(flat: FlatGraph) -> None:
    for f in flat:
        if (
            f.kind not in NEURON_MAPPERS
            and f.kind not in LINEAR_LOWERINGS
            and f.kind not in ("Input", "Output")
        ):
            raise UnsupportedError(
                f"{f.name}: the quantizer does not map node type {f.kind}; supported: {', '.join(SUPPORTED)}"
            )


# ------------------------------------------------------------------------------------ path composition


@dataclass(frozen=True, kw_only=True)
class Composed:
    """What reaches one group: per (source group, delay, recurrent) a matrix, plus a constant bias."""

    paths: dict[PathKey, np.ndarray]
    bias: np.ndarray


def is_group(flat: FlatGraph, name: str) -> bool:
    return flat.nodes[name].kind in NEURON_MAPPERS or flat.nodes[name].kind == "Input"


def compose_inputs(flat: FlatGraph, sem: Semantics, target: str) -> Composed:
    """Compose every linear path that ends at ``target`` (a group, or a linear node for readouts)."""
    memo: dict[str, Composed] = {}
    lowered: dict[str, Lowered] = {}

    def out_of(name: str, stack: tuple[str, ...]) -> Composed:
        if is_group(flat, name):
            n = flat.nodes[name].size
            return Composed(paths={(name, 0, False): np.eye(n)}, bias=np.zeros(n))
        if name in memo:
            return memo[name]
        if name in stack:
            raise UnsupportedError(f"{name}: a cycle through linear nodes only cannot be mapped ({stack})")
        low = lowered.setdefault(name, LINEAR_LOWERINGS[flat.nodes[name].kind](flat.nodes[name], sem))
        inner = into(name, (*stack, name))
        paths: dict[PathKey, np.ndarray] = {}
        for (src, d, rec), m in inner.paths.items():
            mm = low.matrix @ m
            if low.delays is None:
                _add(paths, (src, d, rec), mm)
            else:
                for dd in np.unique(low.delays):
                    _add(paths, (src, d + int(dd), rec), mm * (low.delays == dd)[:, None])
        memo[name] = Composed(paths=paths, bias=low.bias + low.matrix @ inner.bias)
        return memo[name]

    def into(name: str, stack: tuple[str, ...]) -> Composed:
        node = flat.nodes[name]
        paths: dict[PathKey, np.ndarray] = {}
        bias = np.zeros(node.in_size)
        for src in node.sources:
            rec_edge = src in node.recurrent
            c = out_of(src, stack)
            if c.bias.size != bias.size:
                raise ValidationError(f"edge {src} -> {name}: sizes {c.bias.size} and {bias.size} differ")
            bias = bias + c.bias
            for (g, d, rec), m in c.paths.items():
                _add(paths, (g, d, rec or rec_edge), m)
        return Composed(paths=paths, bias=bias)

    if is_group(flat, target):
        return into(target, (target,))
    return out_of(target, ())


def _add(paths: dict[PathKey, np.ndarray], key: PathKey, m: np.ndarray) -> None:
    paths[key] = paths[key] + m if key in paths else m


# ------------------------------------------------------------------------------------ the plan


BIAS_UNIT = "~bias"


@dataclass(frozen=True, kw_only=True)
class GroupPlan:
    name: str  # group name = NIR node name (a readout takes its linear node's name)
    model: NeuronModel
    inputs: Composed
    sem: Semantics
    bias: np.ndarray  # constant added to v per step (float units)
    unit_bias: np.ndarray | None  # bias into the synaptic current, routed through the bias unit


@dataclass(frozen=True, kw_only=True)
class Plan:
    inputs: dict[str, int]  # input group -> n
    groups: tuple[GroupPlan, ...]
    outputs: dict[str, tuple[str, str]]  # Output node -> (group, variable)
    lags: dict[str, int]


def _group_plan(name: str, model: NeuronModel, inputs: Composed, sem: Semantics, cuba_bias: str) -> GroupPlan:
    via_unit = model.alpha_u is not None and cuba_bias == "unit" and bool(np.any(inputs.bias))
    bias = model.const + (0.0 if via_unit else model.bias_gain * inputs.bias)
    return GroupPlan(
        name=name, model=model, inputs=inputs, sem=sem, bias=bias, unit_bias=inputs.bias if via_unit else None
    )


def build_plan(flat: FlatGraph, sem: Semantics, cuba_bias: str = "unit") -> Plan:
    """Neuron models, composed inputs, readouts and per-group lags (see :func:`group_lags`)."""
    check_supported(flat)
    inputs = {name: flat.nodes[name].size for name in flat.inputs}
    readouts = {src for o in flat.outputs for src in flat.nodes[o].sources if not is_group(flat, src)}
    groups = []
    for name in flat.order:
        f = flat.nodes[name]
        if f.kind in NEURON_MAPPERS:
            s = sem.for_node(name)
            groups.append(
                _group_plan(name, NEURON_MAPPERS[f.kind](f, s), compose_inputs(flat, sem, name), s, cuba_bias)
            )
        elif name in readouts:
            groups.append(
                _group_plan(name, readout_model(f.size), compose_inputs(flat, sem, name), sem, cuba_bias)
            )
    outputs: dict[str, tuple[str, str]] = {}
    spiking = {g.name: g.model.spiking for g in groups}
    for o in flat.outputs:
        for src in flat.nodes[o].sources:
            outputs[o if len(flat.nodes[o].sources) == 1 else f"{o}.{src}"] = (
                src,
                "spikes" if spiking.get(src) else "v",
            )
    return Plan(inputs=inputs, groups=tuple(groups), outputs=outputs, lags=group_lags(inputs, groups))


def group_lags(inputs: dict[str, int], groups: Sequence[GroupPlan]) -> dict[str, int]:
    """Steps by which the emulator runs behind the float run, per group.

    The float run lets a feed-forward edge carry this step's output (zero delay); every emulator
    connection delivers one step later (Lava's Dense). So group ``G`` at float step ``t`` appears in
    the emulator at index ``t + lag[G]`` with ``lag[input] = 0`` and
    ``lag[G] = max(0, max over feed-forward paths (lag[src] + 1 - path_delay))``; each connection then
    gets the extra delay ``path_delay + lag[G] - lag[src] - 1`` (>= 0), which keeps skip connections
    aligned. A recurrent path (float: ``recurrent_delay`` steps) gets
    ``path_delay + recurrent_delay + lag[G] - lag[src] - 1``; below 0 it is clamped with a ``timing``
    warning (a cycle through more groups than ``recurrent_delay`` allows).
    """
    lag = dict.fromkeys(inputs, 0)
    for g in groups:
        ff = [lag[src] + 1 - d for (src, d, rec) in g.inputs.paths if not rec and src in lag]
        lag[g.name] = max([0, *ff])
    return lag


# ------------------------------------------------------------------------------------ public API


def quantize(
    graph: Any,
    semantics: Semantics | str = "nir",
    *,
    weight_bits: int = 8,
    mode: str = "fixed",
    calibration: Any = None,
    target: str = "emulator",
    shift_decays: bool = False,
    margin: float = 2.0,
    cuba_bias: str = "unit",
) -> tuple[Network, QuantReport]:
    """Quantize a float NIR graph under ``semantics`` to the emulator's integer :class:`Network`.

    ``mode``: "fixed" (8-bit-style mantissas, one exponent per connection) or "shift" (every weight 0
    or +-2**k). ``calibration``: inputs ``(B, T, n)`` (or a dict per Input node) for a data-driven
    bound and activity warnings. ``target="lava"`` refuses what Lava cannot run (subtract reset,
    refractory hold). ``shift_decays`` rounds du + 1 and dv to powers of two. The input is never
    mutated; see :func:`quantize_pair` for the float twin as well.
    """
    net, _, report = quantize_pair(
        graph,
        semantics,
        weight_bits=weight_bits,
        mode=mode,
        calibration=calibration,
        target=target,
        shift_decays=shift_decays,
        margin=margin,
        cuba_bias=cuba_bias,
    )
    return net, report


def quantize_pair(
    graph: Any,
    semantics: Semantics | str = "nir",
    *,
    weight_bits: int = 8,
    mode: str = "fixed",
    calibration: Any = None,
    target: str = "emulator",
    shift_decays: bool = False,
    margin: float = 2.0,
    cuba_bias: str = "unit",
) -> tuple[Network, Network, QuantReport]:
    """:func:`quantize` plus the float twin: the same description with every value unrounded
    (run it with the emulator's ``mode="float"``: its difference to the integer network is
    quantization only; its difference to the float NIR run is timing and discretization)."""
    from .semantics import semantics as resolve

    if mode not in ("fixed", "shift"):
        raise ValidationError(f"quantize.mode: must be 'fixed' or 'shift' (got {mode!r})")
    if not 1 <= int(weight_bits) <= 8:
        raise ValidationError(f"quantize.weight_bits: must be in [1, 8] (got {weight_bits!r})")
    if target not in ("emulator", "lava"):
        raise ValidationError(f"quantize.target: must be 'emulator' or 'lava' (got {target!r})")
    sem = resolve(semantics)
    flat = graph if isinstance(graph, FlatGraph) else flatten_graph(graph)
    if cuba_bias not in ("unit", "v"):
        raise ValidationError(f"quantize.cuba_bias: must be 'unit' or 'v' (got {cuba_bias!r})")
    plan = build_plan(flat, sem, cuba_bias)
    warns = check_semantics(plan, target)
    enc = input_encoding(flat, plan, calibration)
    conns, timing = connection_plans(plan, enc, sem)
    opts = _Options(weight_bits=int(weight_bits), mode=mode, shift_decays=shift_decays)
    bounds = {g.name: _static(g, conns) for g in plan.groups}
    scales = {g.name: _group_scale(g, bounds[g.name], conns, opts) for g in plan.groups}
    cal_x = None
    if calibration is not None:
        cal_x = encode_inputs(enc, calibration, exact=True)
        _, twin0, _ = _build(plan, conns, scales, enc, opts, sem, target)
        spiking = {g.name: g.model.spiking for g in plan.groups}
        obs = observe(twin0, cal_x, mode="float", spiking=spiking)
        bounds = {g.name: _observed(g, obs[g.name], scales[g.name], margin) for g in plan.groups}
        scales = {g.name: _group_scale(g, bounds[g.name], conns, opts) for g in plan.groups}
    net, twin, parts = _build(plan, conns, scales, enc, opts, sem, target)
    rates = None
    if cal_x is not None:
        spiking = {g.name: g.model.spiking for g in plan.groups}
        rates = (
            observe(twin, cal_x, mode="float", spiking=spiking),
            observe(net, encode_inputs(enc, calibration), mode="fixed", spiking=spiking),
        )
    report = build_report(
        plan=plan,
        conns=conns,
        parts=parts,
        bounds=bounds,
        scales=scales,
        net=net,
        sem=sem,
        mode=mode,
        weight_bits=int(weight_bits),
        target=target,
        warnings=[*warns, *timing],
        rates=rates,
    )
    return net, twin, report


# ------------------------------------------------------------------------------------ assembly


@dataclass(frozen=True, kw_only=True)
class _Options:
    weight_bits: int
    mode: str
    shift_decays: bool


@dataclass(frozen=True, kw_only=True)
class InputEncoding:
    """How float inputs become the integers an InputGroup sends: ``round(x * scale)`` (graded,
    ``num_message_bits`` > 0) or 0/1 spikes (``scale`` 1)."""

    n: int
    scale: float
    num_message_bits: int


@dataclass(frozen=True, kw_only=True)
class ConnPlan:
    name: str
    source: str
    target: str
    m: np.ndarray  # (n_target, n_source): float input x per unit the source emits
    xmax: np.ndarray  # largest unit the source emits, per channel
    delay: int
    recurrent: bool
    num_message_bits: int


_DELAYED = ("next_step", "next_step_hold")


def check_semantics(plan: Plan, target: str) -> list[QuantWarning]:
    """Refuse what cannot be mapped; warn about what maps approximately."""
    warns = []
    for g in plan.groups:
        s, m = g.sem, g.model
        if not m.spiking:
            continue
        if s.reset == "none" or s.multi_spike:
            what = "reset='none'" if s.reset == "none" else "multi_spike=True"
            raise UnsupportedError(
                f"{g.name}: Semantics {what} has no Loihi-style equivalent; supported: reset "
                f"zero/subtract, one spike per step"
            )
        if target == "lava" and s.reset == "subtract":
            raise UnsupportedError(
                f"{g.name}: reset='subtract' is a spikeport emulator extension; Lava's LIF resets to zero "
                f"(quantize with target='emulator')"
            )
        if target == "lava" and s.reset == "zero" and s.reset_timing == "next_step_hold":
            raise UnsupportedError(
                f"{g.name}: reset_timing='next_step_hold' maps to refractory=1, an emulator extension Lava "
                f"cannot run"
            )
        if s.threshold == ">=":
            warns.append(
                QuantWarning(
                    code="approximation",
                    where=g.name,
                    message="threshold '>=' mapped to Lava's '>' "
                    "(differs only when v equals the threshold exactly)",
                )
            )
        if s.reset == "subtract" and s.reset_timing == "same_step_lagged":
            warns.append(
                QuantWarning(
                    code="approximation",
                    where=g.name,
                    message="reset_timing 'same_step_lagged' mapped to 'same_step' "
                    "(differs only while v stays "
                    "above the threshold after a subtraction)",
                )
            )
        if s.reset == "subtract" and s.reset_timing in _DELAYED and m.alpha_u is not None:
            warns.append(
                QuantWarning(
                    code="approximation",
                    where=g.name,
                    message=f"subtract reset with timing {s.reset_timing!r} is applied in the same step: "
                    f"the decay then also shrinks the subtracted threshold (difference alpha_v * "
                    f"threshold per spike, alpha_v = {float(np.mean(m.alpha_v)):.3g})",
                )
            )
    for g in plan.groups:
        m = g.model
        if m.alpha_u is not None and g.unit_bias is None and np.any(g.inputs.bias != 0):
            excess = np.abs(m.bias_gain * g.inputs.bias) * (1 - m.alpha_u) / m.alpha_u
            ref = (
                m.threshold
                if m.threshold is not None
                else np.maximum(np.abs(m.bias_gain * g.inputs.bias) / np.maximum(m.alpha_v, 1e-12), 1e-12)
            )
            warns.append(
                QuantWarning(
                    code="approximation",
                    where=g.name,
                    message=f"bias into a synaptic current put on v at its steady state: misses the "
                    f"current's rise (up to {float(np.max(excess / ref)):.3g} x threshold of extra charge)",
                )
            )
        for field, a in (("tau", m.alpha_v), ("tau_syn", m.alpha_u)):
            if a is not None and a.size and np.ptp(a) > 1e-3 * max(float(np.max(a)), 1e-300):
                warns.append(
                    QuantWarning(
                        code="approximation",
                        where=g.name,
                        message=f"{field} differs across neurons "
                        f"({float(np.min(a)):.4g}..{float(np.max(a)):.4g} per step); one decay "
                        f"constant per group uses the mean",
                    )
                )
    return warns


def _arrays(flat: FlatGraph, x: Any) -> dict[str, np.ndarray]:
    if x is None:
        return {}
    if not isinstance(x, Mapping):
        if len(flat.inputs) != 1:
            raise ValidationError(
                f"inputs: must be a dict Input name -> array for several inputs {list(flat.inputs)}"
            )
        x = {flat.inputs[0]: x}
    out = {}
    for name, a in x.items():
        if name not in flat.nodes:
            raise ValidationError(f"inputs: unknown Input {name!r} (inputs: {list(flat.inputs)})")
        arr = np.asarray(a, dtype=np.float64)
        out[name] = (
            arr.reshape(arr.shape[0], arr.shape[1], -1) if arr.ndim >= 3 else arr.reshape(1, arr.shape[0], -1)
        )
    return out


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


def encode_inputs(
    source: Mapping[str, InputEncoding] | Network, x: Any, *, pad: int = 0, exact: bool = False
) -> dict[str, np.ndarray]:
    """Float inputs ``(B, T, ...)`` (or a dict per Input) -> the integer arrays an emulator run takes.

    ``pad`` appends that many zero steps (to let the last float step reach the deepest group, pad by
    the largest lag). ``exact=True`` leaves graded payloads unrounded (``x * scale``, for the float
    twin in the emulator's float mode)."""
    if isinstance(source, Network):
        meta = source.metadata.get("inputs", {})
        source = {
            k: InputEncoding(
                n=int(v["n"]), scale=float(v["scale"]), num_message_bits=int(v["num_message_bits"])
            )
            for k, v in meta.items()
        }
    if not isinstance(x, Mapping):
        if len(source) != 1:
            raise ValidationError(f"inputs: must be a dict name -> array for several inputs {list(source)}")
        x = {next(iter(source)): x}
    out = {}
    for name, e in source.items():
        if name not in x:
            raise ValidationError(f"inputs: missing input {name!r}")
        arr = np.asarray(x[name], dtype=np.float64)
        arr = (
            arr.reshape(arr.shape[0], arr.shape[1], -1) if arr.ndim >= 3 else arr.reshape(1, arr.shape[0], -1)
        )
        if pad:
            arr = np.concatenate([arr, np.zeros((arr.shape[0], pad, arr.shape[2]))], axis=1)
        if arr.shape[2] != e.n:
            raise ValidationError(f"inputs[{name!r}]: must have {e.n} channels (got shape {arr.shape})")
        if e.num_message_bits == 0:
            bad = (arr != 0) & (arr != 1)
            if np.any(bad):
                raise ValidationError(
                    f"inputs[{name!r}]: binary input must be 0/1 (got {arr[bad].flat[0]!r}); quantize with "
                    f"calibration data holding graded values"
                )
            out[name] = arr.astype(np.int64)
        else:
            lim = (1 << e.num_message_bits) - 1
            y = np.clip(arr * e.scale, -lim, lim)
            out[name] = y if exact else np.rint(y).astype(np.int64)
    return out


def connection_plans(
    plan: Plan, enc: Mapping[str, InputEncoding], sem: Semantics
) -> tuple[list[ConnPlan], list[QuantWarning]]:
    spiking = {g.name: g.model.spiking for g in plan.groups}
    conns, warns = [], []
    for g in plan.groups:
        per_src: dict[str, int] = {}
        for src, _, _ in g.inputs.paths:
            per_src[src] = per_src.get(src, 0) + 1
        for (src, d, rec), m in g.inputs.paths.items():
            if not np.any(m):
                continue
            if src in enc:
                e = enc[src]
                amp, xmax, nmb = (1.0 / e.scale, 127.0, 8) if e.num_message_bits else (1.0, 1.0, 0)
            elif spiking.get(src):
                amp, xmax, nmb = sem.for_node(src).spike_amplitude, 1.0, 0
            else:
                raise UnsupportedError(
                    f"{src} -> {g.name}: a non-spiking node's state cannot feed another node on "
                    f"Loihi-style hardware; only spiking nodes and inputs can be sources"
                )
            delay = d + (sem.recurrent_delay if rec else 0) + plan.lags[g.name] - plan.lags[src] - 1
            if delay < 0:
                warns.append(
                    QuantWarning(
                        code="timing",
                        where=f"{src}->{g.name}",
                        message=f"recurrent path needs delay {delay} < 0 in the emulator; clamped to 0 "
                        f"(the loop runs {-delay} step(s) slower than the float run)",
                    )
                )
                delay = 0
            if delay > bits.DELAY_MAX:
                raise UnsupportedError(
                    f"{src} -> {g.name}: needs a synaptic delay of {delay} steps; "
                    f"the emulator supports 0..{bits.DELAY_MAX}"
                )
            name = f"{src}->{g.name}" + (f"@{d}{'r' if rec else ''}" if per_src[src] > 1 else "")
            conns.append(
                ConnPlan(
                    name=name,
                    source=src,
                    target=g.name,
                    m=m * amp,
                    xmax=np.full(m.shape[1], xmax),
                    delay=delay,
                    recurrent=rec,
                    num_message_bits=nmb,
                )
            )
        if g.unit_bias is not None:
            conns.append(
                ConnPlan(
                    name=f"{BIAS_UNIT}->{g.name}",
                    source=BIAS_UNIT,
                    target=g.name,
                    m=g.unit_bias[:, None],
                    xmax=np.ones(1),
                    delay=max(plan.lags[g.name] - 1, 0),
                    recurrent=False,
                    num_message_bits=0,
                )
            )
        if (
            g.model.spiking
            and g.sem.reset == "subtract"
            and g.sem.reset_timing in _DELAYED
            and g.model.alpha_u is None
            and np.any(g.model.alpha_v > 0)
        ):
            conns.append(_reset_correction(g))
    return conns, warns


def _reset_correction(g: GroupPlan) -> ConnPlan:
    """snnTorch's delayed subtract reset, ``v[t+1] = (1 - a) v[t] + x - thr s[t]``, made exact for a
    group without current state: the emulator subtracts at once, so the decay also shrinks the
    subtracted threshold, ``(1 - a)(v[t] - thr s[t]) + x``; a one-step self-connection adds the
    missing ``-a thr s[t]`` (a = alpha_v)."""
    m = g.model
    assert m.threshold is not None
    corr = np.diag(-m.alpha_v * m.threshold / m.u_gain)
    n = len(m.u_gain)
    return ConnPlan(
        name=f"{g.name}->{g.name}~reset",
        source=g.name,
        target=g.name,
        m=corr,
        xmax=np.ones(n),
        delay=0,
        recurrent=True,
        num_message_bits=0,
    )


def _bias(g: GroupPlan) -> np.ndarray:
    return g.bias


def _static(g: GroupPlan, conns: Sequence[ConnPlan]) -> Bounds:
    m = g.model
    return static_bounds(
        u_gain=m.u_gain,
        alpha_u=m.alpha_u,
        alpha_v=m.alpha_v,
        threshold=m.threshold,
        bias=_bias(g),
        inputs=[(c.m, c.xmax) for c in conns if c.target == g.name],
    )


def _observed(g: GroupPlan, obs: Observation, scale: Scale, margin: float) -> Bounds:
    s = scale.scale
    return data_bounds(
        a_obs=obs.a_in / s,
        u_obs=obs.u / s,
        v_obs=obs.v / s,
        threshold=g.model.threshold,
        bias=_bias(g),
        margin=margin,
    )


def _top(w: np.ndarray, opts: _Options) -> float:
    if opts.mode == "shift":
        return 128.0
    _, lo, hi = fixed.weight_grid(fixed.sign_mode(w), opts.weight_bits)
    return float(hi if hi > 0 else -lo)


def _group_scale(g: GroupPlan, bounds: Bounds, conns: Sequence[ConnPlan], opts: _Options) -> Scale:
    ws = [g.model.u_gain[:, None] * c.m / 64.0 for c in conns if c.target == g.name]
    peaks = [(np.max(np.abs(w), axis=1), _top(w, opts)) for w in ws]
    sc = choose_scale(threshold=g.model.threshold, bounds=bounds, weight_peaks=peaks, bias=_bias(g))
    return refine_scale(
        sc, spiking=g.model.threshold is not None, weights=ws, quantize=lambda w: _dequant(w, opts)
    )


def _dequant(w: np.ndarray, opts: _Options) -> np.ndarray:
    q = (
        fixed.quantize_weights_pow2(w, opts.weight_bits)
        if opts.mode == "shift"
        else fixed.quantize_weights(w, opts.weight_bits)
    )
    return q.mant * 2.0**q.exp


def _decays(m: NeuronModel, opts: _Options) -> tuple[float, float, float, float]:
    """(du, dv) integer and (du, dv) real for the twin."""
    if m.alpha_u is None:
        du, du_real = float(bits.DECAY_MAX), float(bits.DECAY_MAX)
    else:
        a = float(np.mean(m.alpha_u))
        du = float(fixed.du_from_alpha(a))
        if opts.shift_decays:
            du = float(np.clip(fixed.decay_to_shift(du + 1) - 1, 0, bits.DECAY_MAX))
        du_real = float(np.clip(a * bits.DECAY_UNITY - 1, 0, bits.DECAY_MAX))
    a = float(np.mean(m.alpha_v))
    dv = float(fixed.dv_from_alpha(a))
    if opts.shift_decays:
        dv = float(fixed.decay_to_shift(dv))
    return du, dv, du_real, float(np.clip(a * bits.DECAY_UNITY, 0, bits.DECAY_MAX))


@dataclass(frozen=True, kw_only=True)
class Parts:
    """What the report needs besides the records: float weights/biases next to quantized ones."""

    weights: dict[str, tuple[np.ndarray, fixed.QuantizedWeights]]
    biases: dict[str, tuple[np.ndarray, np.ndarray, int]]  # group -> (float, quantized, n saturated)


def _build(
    plan: Plan,
    conns: Sequence[ConnPlan],
    scales: Mapping[str, Scale],
    enc: Mapping[str, InputEncoding],
    opts: _Options,
    sem: Semantics,
    target: str,
) -> tuple[Network, Network, Parts]:
    inputs = tuple(InputGroup(name=k, n=e.n, num_message_bits=e.num_message_bits) for k, e in enc.items())
    groups, twins, biases = [], [], {}
    for g in plan.groups:
        sc, m = scales[g.name], g.model
        du, dv, du_r, dv_r = _decays(m, opts)
        b = sc.scale * _bias(g)
        mant, exp, nsat = fixed.quantize_bias(b)
        biases[g.name] = (b, fixed.bias_value(mant, exp).astype(np.float64), nsat)
        v_start = sc.scale * ((m.v_leak if g.sem.initial_v == "leak" else 0.0) - m.v_reset)
        v0 = _initial_v(v_start, b, dv, plan.lags[g.name])
        v0_r = _initial_v(v_start, b, dv_r, plan.lags[g.name])
        hold = m.spiking and g.sem.reset == "zero" and g.sem.reset_timing == "next_step_hold"
        common = dict(
            name=g.name,
            n=len(m.u_gain),
            vth=sc.vth,
            bias_exp=exp,
            u0=np.zeros(len(v0)),
            reset="subtract" if m.spiking and g.sem.reset == "subtract" else "zero",
            refractory=int(hold),
        )
        groups.append(LIFGroup(du=du, dv=dv, bias_mant=mant, v0=np.rint(v0), **common))
        real_mant = np.clip(b / 2.0**exp, bits.BIAS_MANT_MIN, bits.BIAS_MANT_MAX)
        twins.append(LIFGroup(du=du_r, dv=dv_r, bias_mant=real_mant, v0=v0_r, **common))
    if any(c.source == BIAS_UNIT for c in conns):
        unit = LIFGroup(name=BIAS_UNIT, n=1, du=4095, dv=4095, vth=0, bias_mant=1, bias_exp=0, u0=0, v0=0)
        groups.insert(0, unit)
        twins.insert(0, unit)
    cs, ts, weights = [], [], {}
    for c in conns:
        sc, m = scales[c.target], next(g.model for g in plan.groups if g.name == c.target)
        w = sc.scale[:, None] * m.u_gain[:, None] * c.m / 64.0
        q = (
            fixed.quantize_weights_pow2(w, opts.weight_bits)
            if opts.mode == "shift"
            else fixed.quantize_weights(w, opts.weight_bits)
        )
        weights[c.name] = (w, q)
        delays = np.full(w.shape, c.delay) if c.delay else None
        sparse = bool(w.size >= 4096 and np.count_nonzero(c.m) < 0.2 * w.size)
        common_c = dict(
            name=c.name,
            source=c.source,
            target=c.target,
            weight_exp=q.exp,
            num_weight_bits=opts.weight_bits,
            num_message_bits=c.num_message_bits,
            delays=delays,
            sparse=sparse,
        )
        cs.append(Connection(weights=q.mant, shift=opts.mode == "shift", **common_c))
        ts.append(Connection(weights=np.clip(w / 2.0**q.exp, bits.WEIGHT_MIN, bits.WEIGHT_MAX), **common_c))
    meta = _metadata(plan, scales, enc, opts, sem, target)
    net = Network(inputs=inputs, groups=tuple(groups), connections=tuple(cs), metadata=meta)
    twin = Network(inputs=inputs, groups=tuple(twins), connections=tuple(ts), metadata={**meta, "twin": True})
    return net, twin, Parts(weights=weights, biases=biases)


def _initial_v(v_start: np.ndarray, bias: np.ndarray, dv: float, lag: int) -> np.ndarray:
    """The v0 that bias-only steps during the ``lag`` leading steps (before any input arrives) turn
    into ``v_start`` (the float run's initial value): ``v0 = (...((v_start - b) / k - b) / k ...)``,
    ``k = 1 - dv/4096`` applied ``lag`` times; clipped to the 24-bit range."""
    k = 1.0 - dv / bits.DECAY_UNITY
    v = np.asarray(v_start, dtype=np.float64)
    for _ in range(lag):
        v = (v - bias) / k
    return np.clip(v, bits.V_MIN, bits.V_MAX)


def _metadata(
    plan: Plan,
    scales: Mapping[str, Scale],
    enc: Mapping[str, InputEncoding],
    opts: _Options,
    sem: Semantics,
    target: str,
) -> dict[str, Any]:
    """Provenance and what compare needs: per group the NIR node, kind, lag, scale and v offset."""
    return {
        "producer": "spikeport.quantize",
        "semantics": sem.to_dict(),
        "quantizer": {
            "mode": opts.mode,
            "weight_bits": opts.weight_bits,
            "shift_decays": opts.shift_decays,
            "target": target,
        },
        "timing": "group G at float step t is emulator index t + lag[G] (one step per connection)",
        "inputs": {
            k: {"n": e.n, "scale": e.scale, "num_message_bits": e.num_message_bits} for k, e in enc.items()
        },
        "groups": {
            g.name: {
                "node": g.name,
                "kind": g.model.kind,
                "spiking": g.model.spiking,
                "lag": plan.lags[g.name],
                "scale": scales[g.name].scale.tolist(),
                "v_reset": g.model.v_reset.tolist(),
            }
            for g in plan.groups
        },
        "outputs": {k: {"group": gname, "variable": var} for k, (gname, var) in plan.outputs.items()},
    }
