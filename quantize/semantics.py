"""Semantics: what a NIR graph leaves unsaid, made explicit.

NIR nodes are continuous-time ODEs; a graph records no dt, reset mode or timing, threshold rule or
spike amplitude (docs/nir-conventions.md, "What a graph leaves unsaid"). A :class:`Semantics` fixes
all of them, so that a NIR file plus a Semantics determines a discrete-time run completely.
Named conventions reproduce each framework; every field can be overridden
(``semantics("snntorch", reset="zero")``).

Discretization (``integration="euler"``, input held over the step), per step ``t``::

    LIF:     v[t] = v[t-1] + dt/tau * (v_leak - v[t-1] + r * x[t])
    CubaLIF: I[t] = I[t-1] + dt/tau_syn * (-I[t-1] + w_in * x[t]);  v as LIF with x = I[t]
    IF:      v[t] = v[t-1] + r * x[t]   (all frameworks; docs/nir-conventions.md, "Framework conventions")
             v[t] = v[t-1] + (dt*r) * x[t]  with integrator_input="dt_r" (NIR's dv/dt = r*I taken
             literally; SpikingJelly exports IF with r = 1/dt), dt*r computed in float64

``synaptic_input="jump"`` adds the input to the current undamped (Norse's and Lava's synapse):
``I[t] = (1 - dt/tau_syn) * I[t-1] + w_in * x[t]``.

``integration="exp"`` uses ``exp(-dt/tau)`` for the decay factor instead of ``1 - dt/tau``.

``arithmetic`` fixes the float evaluation order (the results are the same real numbers; the order
decides the last bit, and so whether a neuron sitting on its threshold spikes). ``"decay"``
(snnTorch): ``v = a*v + g*x_1 + g*x_2 + ... + c`` with ``a = 1 - dt/tau``, ``g = dt/tau * r``,
``c = dt/tau * v_leak`` computed in float64 and rounded once to the run's dtype; ``"increment"``
(Norse): ``v = v + k*((v_leak - v) + r*x)`` with ``k = dt * (1/tau)`` computed in the run's dtype.
Several edges into one node are added one at a time, feed-forward edges first, in edge order.
``"alpha"`` (Sinabs, with ``integration="exp"``): ``v = a*v + (1 - a)*(x_1 + x_2 + ...)`` with
``a = exp(-dt / tau)`` evaluated in the run's dtype from the dtype's ``tau`` (torch's order: ``-dt/tau``
as a reciprocal times ``-dt``, then ``exp``), ``1 - a`` in the dtype too (``r`` multiplies the summed
input where it is not 1). ``"rockpool"`` (Rockpool's ``LIFTorch``/``LIFNeuronTorch``, with
``integration="exp"``): ``I = (I + w_in*(x_1 + ...)) * b`` and ``v = a*v + G*I`` (LIF: ``G*(x_1 + ...)``)
with ``a = exp(-dt/tau_mem)``, ``b = exp(-dt/tau_syn)`` evaluated in the dtype as for ``"alpha"`` and
``G = r*dt / (tau*exp(-dt/tau))``, which is 1 for Rockpool's export ``r = tau*exp(-dt/tau)/dt`` (taken as
exactly 1 within 1e-6, the float32 rounding of the file's r).
A spike is emitted when ``v > v_threshold`` (``threshold=">"``) or ``>=``; then ``v <- v_reset``
(``reset="zero"``: reset to the node's v_reset), ``v <- v - v_threshold`` (``"subtract"``) or nothing
(``"none"``). ``reset_timing="next_step"`` applies the reset of a spike at step t at the start of step
t+1 before integrating (snnTorch ``Leaky``'s ``reset_delay=True``); ``"next_step_hold"`` sets
``v[t+1] = v_reset`` after integrating, discarding step t+1's input (snnTorch ``RLeaky``, ``Synaptic``
and ``RSynaptic`` with ``reset_mechanism="zero"``; with ``"subtract"`` it equals ``"next_step"``);
``"same_step"`` applies it at once. ``"same_step_lagged"`` is snnTorch's ``reset_delay=False``: the
spike at step t is tested on ``v - q*v_threshold`` where ``q = 1`` if ``v[t-1]`` (after its reset)
was still above threshold, and ``v[t] = v - s*v_threshold`` as with ``"same_step"`` (subtract reset; a
zero reset behaves as ``"same_step"``). So a potential left above threshold by a subtraction fires on
the next step only if it exceeds twice the threshold. ``multi_spike`` lets a neuron
emit ``floor(v / v_threshold)`` spikes per step where the threshold rule fires
(``multi_spike_rule="threshold"``, Rockpool: ``(v >= thr) * floor(v / thr)``) or
``max(floor(v / v_threshold), 0)``, the quotient deciding (``"quotient"``, Sinabs' ``MultiSpike``:
``(v > 0) * trunc(v / thr)``; a ``v`` a hair below a threshold that is not a power of two can fire). ``recurrent_delay`` is the number of steps
a recurrent (cycle-closing) edge delays its signal; the delay sits on the spikes leaving the neuron:
before step 0 the network is at rest, so during the first steps a loop delivers the response of its
stateless nodes to silence (an Affine's bias, as snnTorch's ``RLeaky`` computes ``recurrent(0)``);
``recurrent_rest="zero"`` delivers zeros instead (nirtorch's interpreter, so snnTorch's ``import_from_nir``).
``per_node`` overrides fields for single nodes (``{"lif1": {"reset_timing": "next_step_hold"}}``);
:meth:`Semantics.for_node` applies them.
Spikes leave a node as ``spike_amplitude`` times the spike count. ``initial_v`` is the membrane
potential at t = 0: ``"zero"``, or ``"leak"`` (``v_leak``, Norse's initial state); currents start at 0.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from spikeport.emulator.errors import UnsupportedError, field_error

Integration = Literal["euler", "exp"]
Reset = Literal["zero", "subtract", "none"]
ResetTiming = Literal["same_step", "next_step", "next_step_hold", "same_step_lagged"]
SynapticInput = Literal["euler", "jump"]
Arithmetic = Literal["decay", "increment", "alpha", "rockpool"]
InitialV = Literal["zero", "leak"]
IntegratorInput = Literal["r", "dt_r"]
MultiSpikeRule = Literal["threshold", "quotient"]
RecurrentRest = Literal["response", "zero"]
ThresholdRule = Literal[">", ">="]

_CHOICES: dict[str, tuple[Any, ...]] = {
    "integration": ("euler", "exp"),
    "reset": ("zero", "subtract", "none"),
    "reset_timing": ("same_step", "next_step", "next_step_hold", "same_step_lagged"),
    "synaptic_input": ("euler", "jump"),
    "arithmetic": ("decay", "increment", "alpha", "rockpool"),
    "initial_v": ("zero", "leak"),
    "integrator_input": ("r", "dt_r"),
    "multi_spike_rule": ("threshold", "quotient"),
    "recurrent_rest": ("response", "zero"),
    "threshold": (">", ">="),
}


@dataclass(frozen=True, kw_only=True)
class Semantics:
    """The discretization of a NIR graph (see the module docstring for the exact update rules)."""

    convention: str = "nir"
    dt: float = 1e-3
    integration: Integration = "euler"
    reset: Reset = "zero"
    reset_timing: ResetTiming = "same_step"
    threshold: ThresholdRule = ">"
    multi_spike: bool = False
    spike_amplitude: float = 1.0
    recurrent_delay: int = 1
    synaptic_input: SynapticInput = "euler"
    arithmetic: Arithmetic = "decay"
    initial_v: InitialV = "zero"
    integrator_input: IntegratorInput = "r"
    multi_spike_rule: MultiSpikeRule = "threshold"
    recurrent_rest: RecurrentRest = "response"
    per_node: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        obj = f"Semantics({self.convention!r})"
        if not (isinstance(self.dt, int | float) and self.dt > 0):
            raise field_error(obj, "dt", "must be a positive number", self.dt)
        for name, allowed in _CHOICES.items():
            if getattr(self, name) not in allowed:
                raise field_error(obj, name, f"must be one of {allowed}", getattr(self, name))
        if not isinstance(self.recurrent_delay, int) or self.recurrent_delay < 1:
            raise field_error(obj, "recurrent_delay", "must be an integer >= 1", self.recurrent_delay)
        if not isinstance(self.per_node, Mapping):
            raise field_error(obj, "per_node", "must map node names to field overrides", self.per_node)
        for node, fields in self.per_node.items():
            bad = sorted(set(fields) - set(_CHOICES) - {"multi_spike", "spike_amplitude"})
            if bad:
                raise field_error(obj, f"per_node[{node!r}]", "cannot override these fields", bad)
            dataclasses.replace(self, per_node={}, **fields)  # validates the values

    def __hash__(self) -> int:  # per_node is a dict: hash the canonical JSON form instead
        import json

        return hash(json.dumps(self.to_dict(), sort_keys=True, default=str))

    def for_node(self, name: str) -> Semantics:
        """This Semantics with the ``per_node`` overrides of node ``name`` applied."""
        fields = self.per_node.get(name)
        return dataclasses.replace(self, **fields) if fields else self

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["per_node"] = {k: dict(v) for k, v in self.per_node.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Semantics:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise field_error("Semantics", "fields", f"unknown fields; known: {sorted(known)}", unknown)
        return cls(**d)

    def replace(self, **changes: Any) -> Semantics:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


#: Named conventions (docs/nir-conventions.md, "Framework conventions").
#: dt is each framework's export/import default.
CONVENTIONS: dict[str, Semantics] = {
    "nir": Semantics(convention="nir", dt=1e-3),
    # snnTorch: dt hard-coded 1e-4 in its NIR export (r = tau/dt), beta = 1 - dt/tau, subtract reset
    # applied on the next step (reset_delay=True), spike when mem - threshold > 0.
    "snntorch": Semantics(
        convention="snntorch",
        dt=1e-4,
        reset="subtract",
        reset_timing="next_step",
        threshold=">",
        arithmetic="decay",
    ),
    # snnTorch 1.0.0's import_from_nir: Leaky/Synaptic/RLeaky built with reset_mechanism="zero" and
    # reset_delay=False (dt = 1e-4, beta = 1 - dt/tau): the reset to zero applies in the same step;
    # nirtorch runs the RLeaky subgraph with its back-edge starting from zeros (no recurrent bias at t = 0).
    "snntorch_import": Semantics(
        convention="snntorch_import",
        dt=1e-4,
        reset="zero",
        reset_timing="same_step",
        threshold=">",
        arithmetic="decay",
        recurrent_rest="zero",
    ),
    # Norse: r = 1, dt = 1e-3, reset to v_reset in the same step, spike when v - v_th > 0; the
    # synaptic current jumps by the input (LIFCell), float order v + dt*tau_inv*((v_leak - v) + i).
    "norse": Semantics(
        convention="norse",
        dt=1e-3,
        reset="zero",
        reset_timing="same_step",
        synaptic_input="jump",
        arithmetic="increment",
        initial_v="leak",
    ),
    # Sinabs 3.1.3: tau in steps (dt = 1), v = a*v + (1 - a)*x with a = exp(-1/tau) in float32
    # (norm_input=True), subtract reset, floor(v/theta) spikes per step (MultiSpike).
    "sinabs": Semantics(
        convention="sinabs",
        dt=1.0,
        integration="exp",
        arithmetic="alpha",
        reset="subtract",
        threshold=">=",
        multi_spike=True,
        multi_spike_rule="quotient",
    ),
    # SpikingJelly 2.0.0 export_to_nir: dt = 1e-4, LIF tau = tau_steps*dt (r = 1, v_leak = v_reset),
    # IF r = 1/dt (NIR's dv/dt = r*I), hard reset to v_reset in the same step, spike when v >= v_th.
    "spikingjelly": Semantics(
        convention="spikingjelly",
        dt=1e-4,
        reset="zero",
        reset_timing="same_step",
        threshold=">=",
        integrator_input="dt_r",
    ),
    # Rockpool 3.1.0 LIFTorch / LIFNeuronTorch: dt = 1e-3, r = tau*exp(-dt/tau)/dt, isyn jumps by the
    # input then decays, v = alpha*v + isyn, subtract reset, (v >= thr) * floor(v/thr) spikes per step.
    "rockpool": Semantics(
        convention="rockpool",
        dt=1e-3,
        integration="exp",
        arithmetic="rockpool",
        reset="subtract",
        threshold=">=",
        multi_spike=True,
    ),
    # Lava LIF: dt = 1, zero reset in the same step, v > vth; u[t] = (1 - du) u[t-1] + a_in (jump).
    "lava": Semantics(
        convention="lava",
        dt=1.0,
        reset="zero",
        reset_timing="same_step",
        threshold=">",
        synaptic_input="jump",
    ),
}


def semantics(convention: str | Semantics = "nir", **overrides: Any) -> Semantics:
    """The named convention with ``overrides`` applied (``None`` values are ignored)."""
    if isinstance(convention, Semantics):
        base = convention
    else:
        try:
            base = CONVENTIONS[convention]
        except KeyError:
            raise UnsupportedError(
                f"Semantics.convention: unknown convention (got {convention!r}); "
                f"supported: {', '.join(sorted(CONVENTIONS))}"
            ) from None
    return base.replace(**overrides)
