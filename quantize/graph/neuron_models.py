"""Neuron nodes -> float neuron models: the neuron registry of the quantizer.

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

:func:`neuron_model` builds the :class:`NeuronModel` of any neuron type of
:data:`~spikeport.quantize.graph.node_specs.NODE_SPECS` from its traits (leak, synaptic current, spikes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from spikeport.emulator.errors import UnsupportedError, ValidationError
from spikeport.quantize import fixed_point as fixed
from spikeport.quantize.graph.flatten import NEURON_TYPES, FlatNode
from spikeport.quantize.semantics import Semantics


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


def per_neuron(name: str, field: str, value: Any, n: int) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64).ravel()
    if arr.size == 1:
        return np.full(n, float(arr[0]))
    if arr.size != n:
        raise ValidationError(f"{name}.{field}: must have 1 or {n} values (got {arr.size})")
    return arr.copy()


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
    if sem.arithmetic == "rockpool":
        u_gain, bias_gain, au, tau_syn = _rockpool_gains(f, sem, tau, cuba=cuba)
    elif cuba:
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


def _rockpool_gains(
    f: FlatNode, sem: Semantics, tau: np.ndarray, *, cuba: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``(u_gain, bias_gain, alpha_u, tau_syn)`` of Rockpool's update (``arithmetic="rockpool"``).

    Rockpool: ``I <- b (I + w_in x)``, ``v <- a v + G I`` (LIF: ``v <- a v + G x``) with
    ``b = exp(-dt/tau_syn)``, ``G = r dt / (tau exp(-dt/tau))``. With ``u = G I`` this is the module's
    form: ``u <- (1 - alpha_u) u + G b w_in x`` (the input is decayed in its own step), ``alpha_u = 1 - b``;
    a constant input ``c`` settles at ``u = u_gain c / alpha_u`` (the bias gain); LIF: ``u_gain = G``.
    """
    nd, n, nm = f.node, f.size, f.name
    r = per_neuron(nm, "r", nd.r, n)
    gain = r * sem.dt / (tau * np.exp(-sem.dt / tau))
    if not cuba:
        return gain, gain, None, None
    tau_syn = per_neuron(nm, "tau_syn", nd.tau_syn, n)
    au = _alpha(sem, tau_syn, nm, "tau_syn")
    u_gain = gain * (1.0 - au) * per_neuron(nm, "w_in", nd.w_in, n)
    return u_gain, u_gain / au, au, tau_syn


def _integrator(f: FlatNode, sem: Semantics, *, spiking: bool) -> NeuronModel:
    n, nm = f.size, f.name
    r = per_neuron(nm, "r", f.node.r, n)
    if sem.integrator_input == "dt_r":  # NIR's dv/dt = r*I taken literally: v += dt*r*x
        r = sem.dt * r
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


def neuron_model(f: FlatNode, sem: Semantics) -> NeuronModel:
    """The float model of neuron node ``f``, built from its node spec's traits (leak, current, spikes)."""
    t = f.spec.neuron
    if t is None:
        raise UnsupportedError(f"{f.name}: {f.kind} is not a neuron node; neurons: {', '.join(NEURON_TYPES)}")
    if t.leaky:
        return _lif_like(f, sem, cuba=t.current, spiking=t.spiking)
    return _integrator(f, sem, spiking=t.spiking)
