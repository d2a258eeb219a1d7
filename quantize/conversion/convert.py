"""ANN -> SNN conversion with threshold balancing (docs/seed-methods.md, "Hybrid conversion and STDB
(Rathi et al. 2020)").

API::

    graph, sem = convert(ann, calibration, steps=32)          # NIR graph + its Semantics
    snn, info = convert_module(ann, calibration, steps=32)    # the torch ConvertedSNN (for STDB) + record
    x_seq = constant_current(x, steps) | poisson_spikes(x, steps, seed=0)

Weights are copied; a spiking stage ``l`` gets the threshold ``theta_l`` and its biases are divided by
``rho_{l-1}``, the ANN activation that one spike of layer ``l-1`` stands for (``rho_0 = 1``: the input
is the ANN's own input, as a constant current or as signed Poisson spikes of expected value ``x``), so
that ``v_l`` integrates ``z_l / rho_{l-1}`` per step (``z_l`` the ANN's pre-activation) and the spike
rate approximates ``a_l / rho_l`` with ``rho_l = theta_l rho_{l-1}``. Thresholds (``threshold=``):

- ``"spike"`` (Sengupta et al.; Rathi et al.): layer by layer, run the SNN (earlier thresholds set) on
  the calibration inputs for ``balance_steps`` steps (default ``steps``) and take the maximum over time,
  samples and neurons of the layer's input current ``c_l[t]``; ``theta_l = scale * max``;
- ``"max"`` / ``"percentile"`` (Diehl et al.; Rueckauer et al.): ``rho_l = scale * `` the maximum / the
  ``percentile``-th percentile of the positive ANN activations ``a_l`` on the calibration inputs;
  ``theta_l = rho_l / rho_{l-1}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import nir
import numpy as np
import torch
from spikeport.emulator.errors import ValidationError, field_error
from spikeport.quantize.conversion.layers import Stage, ann_stages
from spikeport.quantize.conversion.snn import ConvertedSNN, op_dtype, to_nir
from spikeport.quantize.semantics import Semantics
from torch import nn

THRESHOLDS = ("spike", "max", "percentile")
INPUTS = ("current", "poisson")


def constant_current(x: Any, steps: int) -> np.ndarray:
    """``(N, *shape)`` -> ``(N, steps, *shape)``: the ANN input repeated at every step."""
    a = np.asarray(x, np.float32)
    return np.repeat(a[:, None], int(steps), axis=1)


def poisson_spikes(x: Any, steps: int, *, seed: int = 0) -> np.ndarray:
    """Signed Poisson (Bernoulli per step) spikes: ``sign(x)`` with probability ``min(|x|, 1)`` per step,
    so a spike's expected value is ``x`` for ``|x| <= 1`` (Rathi et al.'s input encoding)."""
    a = np.asarray(x, np.float32)
    rng = np.random.default_rng(seed)
    p = np.minimum(np.abs(a), 1.0)
    draw = rng.random((a.shape[0], int(steps), *a.shape[1:])) < p[:, None]
    return (np.sign(a)[:, None] * draw).astype(np.float32)


def encode(x: Any, steps: int, input: str = "current", seed: int = 0, *, pad: int = 0) -> np.ndarray:
    """The SNN input for the ANN input ``x``: :func:`constant_current` or :func:`poisson_spikes`, then
    ``pad`` zero steps. Calibrate ``sp.quantize`` with ``pad`` = the number of converted layers
    (:func:`depth`): the integer network runs one step behind per layer, and a calibration run of only
    ``steps`` steps would leave the deepest groups (the readout, at ``steps <= depth``) unobserved."""
    if input not in INPUTS:
        raise field_error("convert", "input", f"one of {INPUTS}", input)
    seq = constant_current(x, steps) if input == "current" else poisson_spikes(x, steps, seed=seed)
    if pad:
        seq = np.concatenate([seq, np.zeros((seq.shape[0], int(pad), *seq.shape[2:]), seq.dtype)], axis=1)
    return seq


def depth(graph: nir.NIRGraph) -> int:
    """Neuron layers of a converted graph (spiking layers and the readout): its integer network's lag."""
    return sum(isinstance(node, nir.IF | nir.LIF | nir.I) for node in graph.nodes.values())


def _scale_biases(block: nn.Module, rho: float) -> None:
    with torch.no_grad():
        for op in block.children():
            bias = getattr(op, "bias", None)
            if bias is not None:
                bias.div_(rho)


@torch.no_grad()
def _ann_activations(stages: Sequence[Stage], x: torch.Tensor, chunk: int = 256) -> list[np.ndarray]:
    """Positive ReLU outputs of every spiking stage on ``x`` (a sample of at most 2**20 per layer)."""
    acts: list[list[np.ndarray]] = [[] for s in stages if s.spiking]
    for i in range(0, x.shape[0], chunk):
        h = x[i : i + chunk]
        for k, stage in enumerate(stages[:-1]):
            h = torch.relu(nn.Sequential(*stage.ops)(h))
            a = h[h > 0].double().numpy()
            acts[k].append(a)
    out = []
    rng = np.random.default_rng(0)
    for parts in acts:
        a = np.concatenate(parts) if parts else np.zeros(0)
        out.append(rng.choice(a, 1 << 20, replace=False) if a.size > 1 << 20 else a)
    return out


@torch.no_grad()
def _max_current(snn: ConvertedSNN, k: int, x_seq: torch.Tensor, chunk: int = 64) -> float:
    """Maximum over steps, samples and neurons of stage ``k``'s input current (stages < k spiking)."""
    peak = -np.inf
    for i in range(0, x_seq.shape[0], chunk):
        xs = x_seq[i : i + chunk].to(op_dtype(snn))
        states: list[dict[str, torch.Tensor]] = [{} for _ in range(k)]
        for t in range(xs.shape[1]):
            h = xs[:, t]
            for j, st in enumerate(states):
                h = snn.step_layer(j, snn.blocks[j](h), st, t)
            peak = max(peak, float(snn.blocks[k](h).max()))
    return peak


def _check(threshold: str, scale: float, steps: int, percentile: float, input: str) -> None:
    if input not in INPUTS:
        raise field_error("convert", "input", f"one of {INPUTS}", input)
    if threshold not in THRESHOLDS:
        raise field_error("convert", "threshold", f"one of {THRESHOLDS}", threshold)
    if not scale > 0:
        raise field_error("convert", "scale", "must be > 0", scale)
    if int(steps) < 1:
        raise field_error("convert", "steps", "must be >= 1", steps)
    if not 0 < percentile <= 100:
        raise field_error("convert", "percentile", "must lie in (0, 100]", percentile)


def _balance_spike(snn: ConvertedSNN, x_seq: torch.Tensor, scale: float) -> list[float]:
    """Spike-driven balancing, layer by layer; returns rho per spiking stage (and sets the thresholds)."""
    rho, rhos = 1.0, []
    for k in range(len(snn.blocks) - 1):
        _scale_biases(snn.blocks[k], rho)
        peak = _max_current(snn, k, x_seq)
        if not peak > 0:
            raise ValidationError(
                f"convert: layer {snn.names[k]!r} receives no positive current on the calibration data "
                f"(threshold balancing needs activity; got max {peak!r})"
            )
        snn.thresholds[k] = scale * peak
        rho *= scale * peak
        rhos.append(rho)
    _scale_biases(snn.blocks[-1], rho)
    snn.out_scale = rho
    return rhos


def _balance_ann(
    snn: ConvertedSNN, stages: Sequence[Stage], x: torch.Tensor, q: float, scale: float
) -> list[float]:
    """Thresholds from the ANN's activations (maximum: ``q = 100``); returns rho per spiking stage."""
    rho, rhos = 1.0, []
    for k, a in enumerate(_ann_activations(stages, x)):
        if a.size == 0:
            raise ValidationError(f"convert: ANN layer {snn.names[k]!r} is silent on the calibration data")
        new = scale * float(np.percentile(a, q))
        _scale_biases(snn.blocks[k], rho)
        snn.thresholds[k] = new / rho
        rho = new
        rhos.append(rho)
    _scale_biases(snn.blocks[-1], rho)
    snn.out_scale = rho
    return rhos


def convert_module(
    ann: nn.Module,
    calibration: Any,
    steps: int = 32,
    *,
    threshold: str = "spike",
    scale: float = 1.0,
    percentile: float = 99.9,
    neuron: str = "IF",
    beta: float = 0.99,
    reset: str = "subtract",
    input: str = "current",
    balance_steps: int | None = None,
    seed: int = 0,
) -> tuple[ConvertedSNN, dict[str, Any]]:
    """The converted torch network (thresholds balanced on ``calibration``, ANN inputs ``(N, *shape)``)
    and the conversion record; see :func:`convert` for the arguments."""
    _check(threshold, scale, steps, percentile, input)
    x = torch.as_tensor(np.asarray(calibration), dtype=torch.float32)
    if x.ndim < 2 or x.shape[0] < 1:
        raise field_error("convert", "calibration", "ANN inputs (N, *input_shape), N >= 1", tuple(x.shape))
    stages = ann_stages(ann)
    dtype = next(p for st in stages for op in st.ops for p in op.parameters()).dtype
    snn = ConvertedSNN(
        stages, [1.0] * (len(stages) - 1), input_shape=x.shape[1:], neuron=neuron, beta=beta, reset=reset
    )
    if threshold == "spike":
        x_seq = torch.as_tensor(encode(x.numpy(), balance_steps or steps, input, seed))
        rhos = _balance_spike(snn, x_seq, scale)
    else:
        rhos = _balance_ann(snn, stages, x.to(dtype), 100.0 if threshold == "max" else percentile, scale)
    info = {
        "threshold": threshold,
        "scale": float(scale),
        "percentile": float(percentile) if threshold == "percentile" else None,
        "steps": int(steps),
        "balance_steps": int(balance_steps or steps) if threshold == "spike" else None,
        "neuron": neuron,
        "beta": snn.beta,
        "reset": reset,
        "input": input,
        "thresholds": [float(t) for t in snn.thresholds],
        "rho": rhos,
        "layers": snn.names,
        "calibration_samples": int(x.shape[0]),
    }
    return snn, info


def convert(
    ann: nn.Module,
    calibration: Any,
    steps: int = 32,
    *,
    threshold: str = "spike",
    scale: float = 1.0,
    percentile: float = 99.9,
    neuron: str = "IF",
    beta: float = 0.99,
    reset: str = "subtract",
    input: str = "current",
    balance_steps: int | None = None,
    seed: int = 0,
) -> tuple[nir.NIRGraph, Semantics]:
    """Convert a trained feed-forward ReLU ``ann`` (torch) to a spiking NIR graph and its Semantics.

    ``calibration``: ANN inputs ``(N, *input_shape)``. ``steps``: the time steps the SNN will run (the
    spike-driven balancing runs ``balance_steps``, default ``steps``). ``threshold``: ``"spike"``,
    ``"max"`` or ``"percentile"`` (of the ANN activations, ``percentile``), times ``scale``.
    ``neuron``: ``"IF"`` or ``"LIF"`` (``v = beta v + c``); ``reset``: ``"subtract"`` (the conversion's
    natural choice; emulator) or ``"zero"`` (Lava's stock LIF); ``input``: ``"current"`` or
    ``"poisson"`` (the encoding the balancing assumes; :func:`encode` makes the run's input). The
    readout node ``"readout"`` (NIR ``I``) integrates the class scores: its ``v`` at the last step.
    """
    snn, info = convert_module(
        ann,
        calibration,
        steps,
        threshold=threshold,
        scale=scale,
        percentile=percentile,
        neuron=neuron,
        beta=beta,
        reset=reset,
        input=input,
        balance_steps=balance_steps,
        seed=seed,
    )
    return to_nir(snn, info), snn.semantics()
