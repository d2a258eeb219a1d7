"""NIR graph + Semantics -> the emulator's integer records: the quantizer's public entry points.

:func:`quantize` / :func:`quantize_pair` run the stages, each in its own module:

* :mod:`.neuron_models`: neuron nodes (LIF, CubaLIF, IF, LI, CubaLI, I) -> float neuron models (from
  the node spec's traits, :mod:`.node_specs`);
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
from spikeport.quantize.build_network import (
    BuildOptions,
    build_records,
    group_scale,
    observed_group_bounds,
    static_group_bounds,
)
from spikeport.quantize.build_network import Parts as Parts
from spikeport.quantize.calibrate import Scale, observe
from spikeport.quantize.drift import DEFAULT_STEPS, MAX_STEPS, ROUNDINGS
from spikeport.quantize.fixed_scales import QuantScales, as_scales, check_scales
from spikeport.quantize.fixed_scales import scales_of as scales_of
from spikeport.quantize.graph.connection_plans import ConnPlan as ConnPlan
from spikeport.quantize.graph.connection_plans import connection_plans as connection_plans
from spikeport.quantize.graph.flatten import FlatGraph, flatten_graph
from spikeport.quantize.graph.group_plan import BIAS_UNIT as BIAS_UNIT
from spikeport.quantize.graph.group_plan import GroupPlan as GroupPlan
from spikeport.quantize.graph.group_plan import Plan as Plan
from spikeport.quantize.graph.group_plan import build_plan as build_plan
from spikeport.quantize.graph.group_plan import check_semantics as check_semantics
from spikeport.quantize.graph.group_plan import group_lags as group_lags
from spikeport.quantize.graph.inputs import graph_inputs
from spikeport.quantize.graph.lowering import LINEAR_LOWERINGS as LINEAR_LOWERINGS
from spikeport.quantize.graph.lowering import SUPPORTED as SUPPORTED
from spikeport.quantize.graph.lowering import Composed as Composed
from spikeport.quantize.graph.lowering import Lowered as Lowered
from spikeport.quantize.graph.lowering import PathKey as PathKey
from spikeport.quantize.graph.lowering import check_supported as check_supported
from spikeport.quantize.graph.lowering import compose_inputs as compose_inputs
from spikeport.quantize.graph.lowering import is_group as is_group
from spikeport.quantize.graph.neuron_models import NeuronModel as NeuronModel
from spikeport.quantize.graph.neuron_models import neuron_model as neuron_model
from spikeport.quantize.graph.neuron_models import per_neuron as per_neuron
from spikeport.quantize.graph.neuron_models import readout_model as readout_model
from spikeport.quantize.input_encoding import InputEncoding as InputEncoding
from spikeport.quantize.input_encoding import graded_scale as graded_scale
from spikeport.quantize.input_encoding import input_encoding as input_encoding
from spikeport.quantize.report import QuantReport, build_report
from spikeport.quantize.semantics import Semantics

#: the rounding of decays and biases when none is given (decided by benchmarks/quantized_accuracy.py)
DEFAULT_ROUNDING = "nearest"


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
    search: str | None = None,
    split: bool = False,
    rounding: str | None = None,
    scales: Any = None,
) -> tuple[Network, QuantReport]:
    """Quantize a float NIR graph under ``semantics`` to the emulator's integer :class:`Network`.

    ``mode``: "fixed" (8-bit-style mantissas, one exponent per connection) or "shift" (every weight 0
    or +-2**k). ``calibration``: inputs ``(B, T, n)`` (or a dict per Input node) for a data-driven
    bound and activity warnings. ``target="lava"`` refuses what Lava cannot run (subtract reset
    and refractory hold run there as spikeport's own process, :mod:`spikeport.lava.lif_processes`). ``shift_decays`` rounds du + 1 and dv to powers of two. The input is never
    mutated; see :func:`quantize_pair` for the float twin as well. ``search`` ("weight" or "output",
    the latter needs ``calibration``) re-chooses each connection's exponent and clipping by least
    error (:mod:`.search`); ``split=True`` splits connections whose weights exceed the mantissa's range
    into several with different exponents (:mod:`.weight_split`); both are reported in
    ``report.choices``. ``rounding``: decays and biases rounded to ``"nearest"`` or by least drift
    (``"min_drift"``, :mod:`.drift`; each group's choice and its error in ``report.groups[i].drift``);
    None: :data:`DEFAULT_ROUNDING`, or the rounding of ``scales``. ``scales``: a quantized
    :class:`Network` or its :func:`~.fixed_scales.scales_of` record, whose group scales, thresholds,
    weight exponents, decays, bias exponents and input scales are taken instead of chosen
    (:mod:`.fixed_scales`; e.g. to requantize a fine-tuned network's written-back graph exactly).
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
        search=search,
        split=split,
        rounding=rounding,
        scales=scales,
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
    search: str | None = None,
    split: bool = False,
    rounding: str | None = None,
    scales: Any = None,
) -> tuple[Network, Network, QuantReport]:
    """:func:`quantize` plus the float twin: the same description with every value unrounded
    (run it with the emulator's ``mode="float"``: its difference to the integer network is
    quantization only; its difference to the float NIR run is timing and discretization)."""
    from spikeport.quantize.semantics import semantics as resolve

    _check_options(mode, weight_bits, target, cuba_bias, search)
    fixed_sc = None if scales is None else as_scales(scales)
    rounding = _rounding(rounding, fixed_sc, search)
    sem = resolve(semantics)
    flat = graph if isinstance(graph, FlatGraph) else flatten_graph(graph)
    plan = build_plan(flat, sem, cuba_bias)
    warns = check_semantics(plan, target)
    enc = input_encoding(flat, plan, calibration) if fixed_sc is None else _fixed_encoding(fixed_sc)
    conns, timing = connection_plans(plan, enc, sem)
    opts = BuildOptions(
        weight_bits=int(weight_bits),
        mode=mode,
        shift_decays=shift_decays,
        rounding=rounding,
        drift_steps=_run_length(flat, calibration) if fixed_sc is None else fixed_sc.drift_steps,
        fixed=fixed_sc,
    )
    bounds = {g.name: static_group_bounds(g, conns) for g in plan.groups}
    if fixed_sc is not None:
        check_scales(
            fixed_sc,
            mode=mode,
            groups={g.name: len(g.model.u_gain) for g in plan.groups},
            inputs=dict(plan.inputs),
            connections=[c.name for c in conns],
        )
        scales = {
            k: Scale(scale=v.scale, vth=v.vth, ideal=float(v.vth), clamped=False)
            for k, v in fixed_sc.groups.items()
        }
    else:
        scales = {g.name: group_scale(g, bounds[g.name], conns, opts) for g in plan.groups}
    spiking = {g.name: g.model.spiking for g in plan.groups}
    rates = None
    if calibration is not None and fixed_sc is None:
        cal_x = encode_inputs(enc, calibration, exact=True)
        _, twin0, _ = build_records(plan, conns, scales, enc, opts, sem, target)
        obs = observe(twin0, cal_x, mode="float", spiking=spiking)
        bounds = {g.name: observed_group_bounds(g, obs[g.name], scales[g.name], margin) for g in plan.groups}
        scales = {g.name: group_scale(g, bounds[g.name], conns, opts) for g in plan.groups}
    net, twin, parts = build_records(plan, conns, scales, enc, opts, sem, target)
    if calibration is not None:
        cal_x = encode_inputs(enc, calibration, exact=True)
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
    if search is not None or split:
        net, report = _choices(net, twin, report, search, split, enc, calibration)
    return net, twin, report


def _choices(
    net: Network,
    twin: Network,
    report: QuantReport,
    search: str | None,
    split: bool,
    enc: Any,
    calibration: Any,
) -> tuple[Network, QuantReport]:
    """The optional post-training choices (exponent search, then weight splitting), in ``report.choices``."""
    import dataclasses

    from spikeport.quantize.search import search_network
    from spikeport.quantize.weight_split import split_network

    choices: dict[str, Any] = {}
    if search is not None:
        pad = max((int(g["lag"]) for g in net.metadata["groups"].values()), default=0)
        cal = None if calibration is None else encode_inputs(enc, calibration, pad=pad)
        net, infos = search_network(net, twin, objective=search, calibration=cal)
        choices["exponent_search"] = [i.to_dict() for i in infos]
    if split:
        net, sinfos = split_network(net, twin)
        choices["weight_split"] = [i.to_dict() for i in sinfos]
    return net, dataclasses.replace(report, choices=choices)


def _rounding(rounding: str | None, fixed_sc: QuantScales | None, search: str | None) -> str:
    """The rounding rule: given, else the fixed scales' one, else :data:`DEFAULT_ROUNDING`."""
    if rounding is None:
        rounding = fixed_sc.rounding if fixed_sc is not None else DEFAULT_ROUNDING
    if rounding not in ROUNDINGS:
        raise ValidationError(f"quantize.rounding: must be one of {ROUNDINGS} (got {rounding!r})")
    if fixed_sc is not None and search is not None:
        raise ValidationError(
            f"quantize.search: the fixed scales give every exponent; use search without scales (got {search!r})"
        )
    return rounding


def _fixed_encoding(sc: QuantScales) -> dict[str, InputEncoding]:
    return {
        k: InputEncoding(n=v.n, scale=v.scale, num_message_bits=v.num_message_bits)
        for k, v in sc.inputs.items()
    }


def _run_length(flat: FlatGraph, calibration: Any) -> int:
    """``T`` of the drift measures: the calibration data's steps (at most :data:`~.drift.MAX_STEPS`),
    else :data:`~.drift.DEFAULT_STEPS`."""
    if calibration is None:
        return DEFAULT_STEPS
    shapes = {name: flat.nodes[name].out_shape for name in flat.inputs}
    xs = graph_inputs(shapes, calibration, caller="calibration", require_all=False)
    return min(max((int(a.shape[1]) for a in xs.values()), default=DEFAULT_STEPS), MAX_STEPS)


def _check_options(
    mode: str, weight_bits: int, target: str, cuba_bias: str = "unit", search: Any = None
) -> None:
    if cuba_bias not in ("unit", "v"):
        raise ValidationError(f"quantize.cuba_bias: must be 'unit' or 'v' (got {cuba_bias!r})")
    if search not in (None, "weight", "output"):
        raise ValidationError(f"quantize.search: must be None, 'weight' or 'output' (got {search!r})")
    if mode not in ("fixed", "shift"):
        raise ValidationError(f"quantize.mode: must be 'fixed' or 'shift' (got {mode!r})")
    if not 1 <= int(weight_bits) <= 8:
        raise ValidationError(f"quantize.weight_bits: must be in [1, 8] (got {weight_bits!r})")
    if target not in ("emulator", "lava"):
        raise ValidationError(f"quantize.target: must be 'emulator' or 'lava' (got {target!r})")


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
    xs = graph_inputs({k: (e.n,) for k, e in source.items()}, x, caller="encode_inputs")
    out = {}
    for name, e in source.items():
        arr = xs[name].astype(np.float64)
        if pad:
            arr = np.concatenate([arr, np.zeros((arr.shape[0], pad, arr.shape[2]))], axis=1)
        out[name] = _encode(name, e, arr, exact)
    return out


def _encode(name: str, e: InputEncoding, arr: np.ndarray, exact: bool) -> np.ndarray:
    """0/1 spikes (binary) or ``x * scale`` clipped to the payload range, rounded unless ``exact``."""
    if e.num_message_bits == 0:
        bad = (arr != 0) & (arr != 1)
        if np.any(bad):
            raise ValidationError(
                f"encode_inputs.inputs[{name!r}]: binary input must be 0/1 (got {arr[bad].flat[0]!r}); "
                f"quantize with calibration data holding graded values"
            )
        return arr.astype(np.int64)
    lim = (1 << e.num_message_bits) - 1
    y = np.clip(arr * e.scale, -lim, lim)
    return y if exact else np.rint(y).astype(np.int64)
