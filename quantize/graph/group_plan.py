"""The quantizer's plan: one float neuron model and composed inputs per group, output wiring, lags,
and the semantic checks (what is refused, what maps approximately).

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

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from spikeport.emulator.errors import UnsupportedError
from spikeport.quantize.graph.flatten import FlatGraph
from spikeport.quantize.graph.lowering import Composed, check_supported, compose_inputs, is_group
from spikeport.quantize.graph.neuron_models import NeuronModel, neuron_model, readout_model
from spikeport.quantize.quant_warnings import QuantWarning
from spikeport.quantize.semantics import Semantics

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
        if f.spec.role == "neuron":
            s = sem.for_node(name)
            groups.append(
                _group_plan(name, neuron_model(f, s), compose_inputs(flat, sem, name), s, cuba_bias)
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


DELAYED_RESET_TIMINGS = ("next_step", "next_step_hold")
#: a multi-spike group (``Semantics.multi_spike``) sends at most this many spikes per step, as a graded
#: payload of MULTI_SPIKE_BITS bits (``LIFGroup.max_spikes``); the float rules have no bound (Sinabs) or
#: 2**16 (Rockpool), so steps that would send more are capped (see :func:`multi_spike_warning`)
MULTI_SPIKE_MAX = 15
MULTI_SPIKE_BITS = MULTI_SPIKE_MAX.bit_length()


def max_spikes(sem: Semantics) -> int:
    """``LIFGroup.max_spikes`` of a spiking group under ``sem``: MULTI_SPIKE_MAX or 1."""
    return MULTI_SPIKE_MAX if sem.multi_spike else 1


def _approx(where: str, message: str) -> QuantWarning:
    return QuantWarning(code="approximation", where=where, message=message)


def _refuse(g: GroupPlan, target: str) -> None:
    """Raise what a spiking group's Semantics cannot map to (on ``target``)."""
    s = g.sem
    if s.reset == "none":
        raise UnsupportedError(
            f"{g.name}: Semantics reset='none' has no Loihi-style equivalent; supported: reset zero/subtract"
        )
    # target "lava" refuses nothing more: subtract reset and refractory periods run there as
    # spikeport's own Lava process (spikeport.lava.lif_processes)


def _refuse_recurrent_rest(g: GroupPlan) -> None:
    """``recurrent_rest="zero"`` where it changes the answer: a group fed through a recurrent path with a
    constant bias. The integer network adds that bias from step 0 (``recurrent_rest="response"``)."""
    if g.sem.recurrent_rest != "zero" or not np.any(g.inputs.bias != 0):
        return
    if any(rec for (_src, _delay, rec) in g.inputs.paths):
        raise UnsupportedError(
            f"{g.name}: Semantics recurrent_rest='zero' cannot be quantized: the integer network adds the "
            f"bias of a recurrent path from step 0 (recurrent_rest='response'); supported: "
            f"recurrent_rest='response', or a recurrent path without bias"
        )


def _spike_warnings(g: GroupPlan) -> list[QuantWarning]:
    """Threshold and reset rules of a spiking group that map approximately."""
    s, m = g.sem, g.model
    warns = []
    if s.multi_spike:  # its message covers the threshold test too
        warns.append(multi_spike_warning(g.name, s))
    elif s.threshold == ">=":
        warns.append(
            _approx(
                g.name,
                "threshold '>=' mapped to Lava's '>' (differs only when v equals the threshold exactly)",
            )
        )
    if s.reset == "subtract" and s.reset_timing == "same_step_lagged":
        warns.append(
            _approx(
                g.name,
                "reset_timing 'same_step_lagged' mapped to 'same_step' (differs only while v stays "
                "above the threshold after a subtraction)",
            )
        )
    if s.reset == "subtract" and s.reset_timing in DELAYED_RESET_TIMINGS and m.alpha_u is not None:
        warns.append(
            _approx(
                g.name,
                f"subtract reset with timing {s.reset_timing!r} is applied in the same step: the decay "
                f"then also shrinks the subtracted threshold (difference alpha_v * threshold per spike, "
                f"alpha_v = {float(np.mean(m.alpha_v)):.3g})",
            )
        )
    return warns


def multi_spike_warning(where: str, s: Semantics) -> QuantWarning:
    """The integer multi-spike rule ``k = min(M, v // th) if v > th`` vs the float rule."""
    rule = (
        "Sinabs' (v > 0) * trunc(v / thr)"
        if s.multi_spike_rule == "quotient"
        else "Rockpool's (v >= thr) * floor(v / thr)"
    )
    return _approx(
        where,
        f"multi_spike rule {s.multi_spike_rule!r} ({rule}) mapped to k = min({MULTI_SPIKE_MAX}, v // thr) "
        f"where v > thr, sent as a {MULTI_SPIKE_BITS}-bit graded payload: differs when v equals the "
        f"threshold exactly (float 1 spike, integer 0) and in steps due more than {MULTI_SPIKE_MAX} spikes",
    )


def _bias_warning(g: GroupPlan) -> list[QuantWarning]:
    """A bias into a synaptic current put on v (``cuba_bias="v"``): its missed rise, vs threshold."""
    m = g.model
    if m.alpha_u is None or g.unit_bias is not None or not np.any(g.inputs.bias != 0):
        return []
    excess = np.abs(m.bias_gain * g.inputs.bias) * (1 - m.alpha_u) / m.alpha_u
    ref = (
        m.threshold
        if m.threshold is not None
        else np.maximum(np.abs(m.bias_gain * g.inputs.bias) / np.maximum(m.alpha_v, 1e-12), 1e-12)
    )
    return [
        _approx(
            g.name,
            f"bias into a synaptic current put on v at its steady state: misses the current's rise "
            f"(up to {float(np.max(excess / ref)):.3g} x threshold of extra charge)",
        )
    ]


def _decay_warnings(g: GroupPlan) -> list[QuantWarning]:
    """Time constants that differ across a group's neurons (one decay per group: the mean)."""
    m = g.model
    warns = []
    for field, a in (("tau", m.alpha_v), ("tau_syn", m.alpha_u)):
        if a is not None and a.size and np.ptp(a) > 1e-3 * max(float(np.max(a)), 1e-300):
            warns.append(
                _approx(
                    g.name,
                    f"{field} differs across neurons ({float(np.min(a)):.4g}..{float(np.max(a)):.4g} per "
                    f"step); one decay constant per group uses the mean",
                )
            )
    return warns


def check_semantics(plan: Plan, target: str) -> list[QuantWarning]:
    """Refuse what cannot be mapped; warn about what maps approximately."""
    warns: list[QuantWarning] = []
    for g in plan.groups:
        _refuse_recurrent_rest(g)
        if g.model.spiking:
            _refuse(g, target)
            warns += _spike_warnings(g)
    for g in plan.groups:
        warns += _bias_warning(g) + _decay_warnings(g)
    return warns
