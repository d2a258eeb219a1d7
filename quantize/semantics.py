"""Semantics: what a NIR graph leaves unsaid, made explicit.

NIR nodes are continuous-time ODEs; a graph records no dt, reset mode or timing, threshold rule or
spike amplitude (REFERENCE.md §2). A :class:`Semantics` fixes all of them, so that a NIR file plus a
Semantics determines a discrete-time run completely. Named conventions reproduce each framework;
every field can be overridden (``semantics("snntorch", reset="zero")``).

Discretization (``integration="euler"``, input held over the step), per step ``t``::

    LIF:     v[t] = v[t-1] + dt/tau * (v_leak - v[t-1] + r * x[t])
    CubaLIF: I[t] = I[t-1] + dt/tau_syn * (-I[t-1] + w_in * x[t]);  v as LIF with x = I[t]
    IF:      v[t] = v[t-1] + r * x[t]   (every framework's IF; REFERENCE §2)

``integration="exp"`` uses ``exp(-dt/tau)`` for the decay factor instead of ``1 - dt/tau``.
A spike is emitted when ``v > v_threshold`` (``threshold=">"``) or ``>=``; then ``v <- v_reset``
(``reset="zero"``: reset to the node's v_reset), ``v <- v - v_threshold`` (``"subtract"``) or nothing
(``"none"``). ``reset_timing="next_step"`` applies the reset of a spike at step t at the start of step
t+1 (snnTorch's ``reset_delay=True``); ``"same_step"`` applies it at once. ``multi_spike`` lets a neuron
emit ``floor(v / v_threshold)`` spikes per step (Sinabs). ``recurrent_delay`` is the number of steps
a recurrent (cycle-closing) edge delays its signal.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from spikeport.emulator.errors import UnsupportedError, field_error

Integration = Literal["euler", "exp"]
Reset = Literal["zero", "subtract", "none"]
ResetTiming = Literal["same_step", "next_step"]
ThresholdRule = Literal[">", ">="]

_CHOICES: dict[str, tuple[Any, ...]] = {
    "integration": ("euler", "exp"),
    "reset": ("zero", "subtract", "none"),
    "reset_timing": ("same_step", "next_step"),
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

    def __post_init__(self) -> None:
        obj = f"Semantics({self.convention!r})"
        if not (isinstance(self.dt, int | float) and self.dt > 0):
            raise field_error(obj, "dt", "must be a positive number", self.dt)
        for name, allowed in _CHOICES.items():
            if getattr(self, name) not in allowed:
                raise field_error(obj, name, f"must be one of {allowed}", getattr(self, name))
        if not isinstance(self.recurrent_delay, int) or self.recurrent_delay < 1:
            raise field_error(obj, "recurrent_delay", "must be an integer >= 1", self.recurrent_delay)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Semantics:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise field_error("Semantics", "fields", f"unknown fields; known: {sorted(known)}", unknown)
        return cls(**d)

    def replace(self, **changes: Any) -> Semantics:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


#: Named conventions (REFERENCE.md §2). dt is each framework's export/import default.
CONVENTIONS: dict[str, Semantics] = {
    "nir": Semantics(convention="nir", dt=1e-3),
    # snnTorch: dt hard-coded 1e-4 in its NIR export (r = tau/dt), beta = 1 - dt/tau, subtract reset
    # applied on the next step (reset_delay=True), spike when mem - threshold > 0.
    "snntorch": Semantics(
        convention="snntorch", dt=1e-4, reset="subtract", reset_timing="next_step", threshold=">"
    ),
    # Norse: r = 1, dt = 1e-3, reset to v_reset in the same step, spike when v - v_th > 0.
    "norse": Semantics(convention="norse", dt=1e-3, reset="zero", reset_timing="same_step"),
    # Sinabs: tau in steps (dt = 1), subtract reset, v >= theta, several spikes per step.
    "sinabs": Semantics(convention="sinabs", dt=1.0, reset="subtract", threshold=">=", multi_spike=True),
    # Lava LIF: dt = 1, zero reset in the same step, v > vth.
    "lava": Semantics(convention="lava", dt=1.0, reset="zero", reset_timing="same_step", threshold=">"),
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
