"""NIR graph + Semantics -> the emulator's integer records: the quantizer's public entry points.

:func:`quantize` / :func:`quantize_pair` run the stages, each in its own module:

* :mod:`.neurons`: neuron nodes (LIF, CubaLIF, IF, LI, CubaLI, I) -> float neuron models (registry);
* :mod:`.lowering`: linear nodes (Affine, Linear, Conv2d, SumPool2d, AvgPool2d, Flatten, Scale, Delay)
  -> matrices, composed along every path into a group (registry);
* :mod:`.plan`: groups, readouts, output wiring, per-group lags, semantic checks (and the bias rules);
* :mod:`.encoding`: binary or graded input encoding; :func:`encode_inputs` applies it;
* :mod:`.connections`: one connection per composed path and delay;
* :mod:`.assemble`: per-group scales (static, then calibrated), decays, the integer network and its
  float twin, and their metadata.

Every name these modules define publicly is importable from here as well.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from spikeport.emulator.errors import ValidationError
from spikeport.emulator.network import Network
from spikeport.quantize.build_network import Parts as Parts
from spikeport.quantize.build_network import _build, _group_scale, _observed, _Options, _static
from spikeport.quantize.calibrate import observe
from spikeport.quantize.graph.connection_plans import ConnPlan as ConnPlan
from spikeport.quantize.graph.connection_plans import connection_plans as connection_plans
from spikeport.quantize.graph.flatten import FlatGraph, flatten_graph
from spikeport.quantize.graph.group_plan import BIAS_UNIT as BIAS_UNIT
from spikeport.quantize.graph.group_plan import GroupPlan as GroupPlan
from spikeport.quantize.graph.group_plan import Plan as Plan
from spikeport.quantize.graph.group_plan import build_plan as build_plan
from spikeport.quantize.graph.group_plan import check_semantics as check_semantics
from spikeport.quantize.graph.group_plan import group_lags as group_lags
from spikeport.quantize.graph.lowering import LINEAR_LOWERINGS as LINEAR_LOWERINGS
from spikeport.quantize.graph.lowering import SUPPORTED as SUPPORTED
from spikeport.quantize.graph.lowering import Composed as Composed
from spikeport.quantize.graph.lowering import Lowered as Lowered
from spikeport.quantize.graph.lowering import PathKey as PathKey
from spikeport.quantize.graph.lowering import check_supported as check_supported
from spikeport.quantize.graph.lowering import compose_inputs as compose_inputs
from spikeport.quantize.graph.lowering import is_group as is_group
from spikeport.quantize.graph.neuron_models import NEURON_MAPPERS as NEURON_MAPPERS
from spikeport.quantize.graph.neuron_models import NeuronModel as NeuronModel
from spikeport.quantize.graph.neuron_models import per_neuron as per_neuron
from spikeport.quantize.graph.neuron_models import readout_model as readout_model
from spikeport.quantize.input_encoding import InputEncoding as InputEncoding
from spikeport.quantize.input_encoding import graded_scale as graded_scale
from spikeport.quantize.input_encoding import input_encoding as input_encoding
from spikeport.quantize.report import QuantReport, build_report
from spikeport.quantize.semantics import Semantics


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
    from spikeport.quantize.semantics import semantics as resolve

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
