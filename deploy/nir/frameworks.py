"""snnTorch and Norse models -> NIR, with each framework's semantics recorded.

API::

    snntorch_to_nir(layers, input_shape, *, dt=1e-4) -> (nir.NIRGraph, Semantics)
    norse_to_nir(layers, input_shape) -> (nir.NIRGraph, Semantics)

``layers``: an ``nn.Sequential`` or list applied in order, one time step at a time. The graph's
metadata holds the Semantics (key ``spikeport.semantics``); ``run_nir(graph, x)`` then reproduces the
framework's own forward pass spike for spike.

snnTorch 1.0.0 (its ``export_to_nir`` fails type inference under nir 1.0.8;
docs/nir-conventions.md, "snnTorch and NIR"; this is an
independent mapping): ``Leaky`` -> ``LIF(tau = dt/(1-beta), r = tau/dt)``; ``Synaptic`` -> ``CubaLIF``
(``tau_syn = dt/(1-alpha)``, ``w_in = tau_syn/dt``); ``RLeaky``/``RSynaptic`` -> a nested graph
``{lif, rec}`` with the recurrent layer (``Affine``, ``Conv2d`` or one-to-one ``Scale``) on a cycle.
Parameters are computed in float64 so that ``1 - dt/tau`` rounds back to snnTorch's float32 beta and the
input gain to exactly 1. Semantics: ``reset_mechanism`` -> ``reset``; ``reset_delay=True`` ->
``reset_timing="next_step"`` (``False`` -> ``"same_step_lagged"``), except that
``RLeaky``/``Synaptic``/``RSynaptic`` with zero reset discard
the step after a spike entirely (``"next_step_hold"``, recorded per node).

Norse 1.1.0 (its exporter writes ``tau = dt * tau_inv``-style constants that its importer inverts
differently, so this mapping is independent too): ``LIFBoxCell`` -> ``LIF(tau = 1/tau_mem_inv, r = 1)``;
``LIFCell`` -> ``CubaLIF(w_in = 1)`` with ``synaptic_input="jump"``; ``IAFCell`` -> ``IF(r = 1)``;
``LIFRecurrentCell`` -> nested ``{w_in: Linear, lif: CubaLIF, rec: Linear}``. ``reset_subtract`` ->
``reset="subtract"``. LIFBoxCell computes ``(x + v_leak) - v`` where LIFCell computes ``(v_leak - v) +
i``; the two agree bit for bit when ``v_leak = 0``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import nir
import numpy as np
import torch
from spikeport.emulator.errors import UnsupportedError, ValidationError
from spikeport.nir.export import TORCH_RULES, Rule, Shape, sequential_to_nir
from spikeport.nir.io import METADATA_KEY
from spikeport.quantize.semantics import Semantics
from spikeport.quantize.semantics import semantics as make_semantics
from torch import nn

_BASE_RULES = {k: v for k, v in TORCH_RULES.items() if k.__module__.startswith("torch")}


def _f64(t: Any, shape: Shape) -> np.ndarray:
    a = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    return np.broadcast_to(a.astype(np.float64), shape).copy()


def _f32(t: Any, shape: Shape) -> np.ndarray:
    a = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t, np.float32)
    return np.broadcast_to(a, shape).copy()


def _nested(cell: Any, rec: Any, x: Shape, w_in: Any = None) -> nir.NIRGraph:
    nodes = {"input": nir.Input(input_type={"input": np.asarray(x)})}
    first = "lif"
    edges = []
    if w_in is not None:
        nodes["w_in"], first = w_in, "w_in"
        edges.append(("w_in", "lif"))
    out_shape = x if w_in is None else (int(np.asarray(w_in.weight).shape[0]),)
    nodes.update(lif=cell, rec=rec, output=nir.Output(output_type={"output": np.asarray(out_shape)}))
    edges = [("input", first), *edges, ("lif", "rec"), ("rec", "lif"), ("lif", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


# ---- snnTorch ---------------------------------------------------------------------------------------
def _snn_lif(m: Any, x: Shape, dt: float) -> Any:
    beta = _f64(m.beta.clamp(0, 1), x)
    thr = _f32(m.threshold, x).astype(np.float64)
    if np.any(beta >= 1.0):
        raise UnsupportedError(f"{type(m).__name__}: beta = 1 (no leak) is an IF neuron; use beta < 1")
    tau = dt / (1.0 - beta)
    common = {"r": tau / dt, "v_leak": np.zeros(x), "v_threshold": thr, "v_reset": np.zeros(x)}
    if hasattr(m, "alpha"):
        alpha = _f64(m.alpha.clamp(0, 1), x)
        tau_syn = dt / (1.0 - alpha)
        return nir.CubaLIF(tau_mem=tau, tau_syn=tau_syn, w_in=tau_syn / dt, **common)
    return nir.LIF(tau=tau, **common)


def _snn_feedforward(m: Any, x: Shape, dt: float) -> tuple[Any, Shape]:
    return _snn_lif(m, x, dt), x


def _snn_recurrent(m: Any, x: Shape, dt: float) -> tuple[Any, Shape]:
    rec_layer = m.recurrent
    if isinstance(rec_layer, nn.Linear):
        rec, _ = TORCH_RULES[nn.Linear](rec_layer, x, dt)
    elif isinstance(rec_layer, nn.Conv2d):
        rec, _ = TORCH_RULES[nn.Conv2d](rec_layer, x, dt)
    elif hasattr(rec_layer, "V"):
        rec = nir.Scale(scale=_f32(rec_layer.V, x))
    else:
        raise UnsupportedError(f"{type(m).__name__}: recurrent layer {type(rec_layer).__name__} unsupported")
    return _nested(_snn_lif(m, x, dt), rec, x), x


def _snntorch_rules() -> dict[type, Rule]:
    import snntorch as snn

    return {
        **_BASE_RULES,
        snn.Leaky: _snn_feedforward,
        snn.Synaptic: _snn_feedforward,
        snn.RLeaky: _snn_recurrent,
        snn.RSynaptic: _snn_recurrent,
    }


def _snntorch_semantics(layers: Sequence[nn.Module], dt: float) -> Semantics:
    import snntorch as snn

    neurons = [(str(k), m) for k, m in enumerate(layers) if isinstance(m, snn.SpikingNeuron)]
    modes = {m.reset_mechanism for _, m in neurons} or {"subtract"}
    delays = {bool(m.reset_delay) for _, m in neurons} or {True}
    if len(modes) > 1 or len(delays) > 1:
        raise UnsupportedError(f"snnTorch layers mix reset mechanisms {modes} / reset_delay {delays}")
    for _, m in neurons:
        if float(getattr(m, "graded_spikes_factor", 1.0)) != 1.0 or getattr(m, "inhibition", False):
            raise UnsupportedError(f"{type(m).__name__}: graded spikes and inhibition are not supported")
    mode, delay = modes.pop(), delays.pop()
    if not delay and any(type(m) is snn.RSynaptic for _, m in neurons):
        raise UnsupportedError(
            "RSynaptic with reset_delay=False: snnTorch 1.0.0 never applies that reset (its forward "
            "assigns a local variable); use reset_delay=True"
        )
    per_node: dict[str, dict[str, Any]] = {}
    if mode == "zero" and delay:
        for k, m in neurons:
            if type(m) in (snn.RLeaky, snn.Synaptic, snn.RSynaptic):
                name = f"{k}.lif" if type(m) in (snn.RLeaky, snn.RSynaptic) else k
                per_node[name] = {"reset_timing": "next_step_hold"}
    return make_semantics(
        "snntorch",
        dt=dt,
        reset=mode,
        reset_timing="next_step" if delay else "same_step_lagged",
        per_node=per_node,
    )


def snntorch_to_nir(
    layers: Sequence[nn.Module], input_shape: Sequence[int], *, dt: float = 1e-4
) -> tuple[nir.NIRGraph, Semantics]:
    """NIR graph and Semantics of a sequential snnTorch model (see the module docstring)."""
    layers = list(layers)
    sem = _snntorch_semantics(layers, dt)
    meta = {METADATA_KEY: json.dumps(sem.to_dict(), sort_keys=True), "source": "snntorch"}
    return sequential_to_nir(layers, input_shape, _snntorch_rules(), dt, meta), sem


# ---- Norse ------------------------------------------------------------------------------------------
def _norse_neuron(m: Any, x: Shape) -> Any:
    p = m.p
    common = {
        "v_threshold": _f32(p.v_th, x),
        "v_reset": _f32(p.v_reset, x),
    }
    if hasattr(p, "tau_syn_inv"):
        return nir.CubaLIF(
            tau_mem=1.0 / _f64(p.tau_mem_inv, x),
            tau_syn=1.0 / _f64(p.tau_syn_inv, x),
            r=np.ones(x),
            w_in=np.ones(x),
            v_leak=_f32(p.v_leak, x),
            **common,
        )
    if hasattr(p, "tau_mem_inv"):
        return nir.LIF(tau=1.0 / _f64(p.tau_mem_inv, x), r=np.ones(x), v_leak=_f32(p.v_leak, x), **common)
    return nir.IF(r=np.ones(x), **common)


def _norse_cell(m: Any, x: Shape, dt: float) -> tuple[Any, Shape]:
    return _norse_neuron(m, x), x


def _norse_recurrent(m: Any, x: Shape, dt: float) -> tuple[Any, Shape]:
    w_in = nir.Linear(weight=m.input_weights.detach().cpu().numpy().copy())
    n = (int(m.hidden_size),)
    rec = nir.Linear(weight=m.recurrent_weights.detach().cpu().numpy().copy())
    return _nested(_norse_neuron(m, n), rec, x, w_in=w_in), n


def _norse_rules() -> dict[type, Rule]:
    from norse.torch import IAFCell, LIFBoxCell, LIFCell, LIFRecurrentCell

    return {
        **_BASE_RULES,
        LIFBoxCell: _norse_cell,
        LIFCell: _norse_cell,
        IAFCell: _norse_cell,
        LIFRecurrentCell: _norse_recurrent,
    }


def _norse_semantics(layers: Sequence[nn.Module]) -> Semantics:
    from norse.torch.functional.reset import reset_subtract, reset_value

    cells: list[Any] = [m for m in layers if hasattr(m, "p") and hasattr(m, "dt")]
    dts = {float(m.dt) for m in cells} or {1e-3}
    if len(dts) > 1:
        raise ValidationError(f"Norse cells use different dt values {sorted(dts)}")
    modes = set()
    for m in cells:
        method = getattr(m.p, "reset_method", reset_value)
        if method not in (reset_value, reset_subtract):
            raise UnsupportedError(f"{type(m).__name__}: reset method {method} unsupported")
        modes.add("subtract" if method is reset_subtract else "zero")
    if len(modes) > 1:
        raise UnsupportedError(f"Norse cells mix reset methods {modes}")
    return make_semantics("norse", dt=dts.pop(), reset=modes.pop() if modes else "zero")


def norse_to_nir(layers: Sequence[nn.Module], input_shape: Sequence[int]) -> tuple[nir.NIRGraph, Semantics]:
    """NIR graph and Semantics of a sequential Norse model (cells stepped one time step at a time)."""
    layers = list(layers)
    sem = _norse_semantics(layers)
    meta = {METADATA_KEY: json.dumps(sem.to_dict(), sort_keys=True), "source": "norse"}
    return sequential_to_nir(layers, input_shape, _norse_rules(), sem.dt, meta), sem
