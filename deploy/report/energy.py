"""Energy reports: counts, NeuroBench ops and energy per inference for one run, as text, JSON or a PNG.

From Python::

    rep = report_from_run(net, x, run(net, x, record=("spikes", "v", "u")))   # an emulator run
    rep = report_from_float_run(net, x, run_nir(graph, x).outputs)          # the float NIR run
    print(format_text(rep)); to_json(rep); plot_png(rep, "energy.png")

A float NIR run is counted against the quantized network's topology: its ``"<node>/spikes"`` are
matched to the groups of the same name (``names`` maps other node names), so float and quantized
activity are compared on the same synapses. Without recorded states the active-update rule falls back
to input and bias (``active_rule="input"``, see :mod:`spikeport.emulator.energy.synops`).

Messages (one per spike and destination core) assume by default each group alone on
``ceil(n / neurons_per_core)`` cores (each profile's ``neurons_per_core``); ``chip="loihi1"|"loihi2"``
counts them on that chip's placement instead (:func:`spikeport.chip.resource_map.placement`: groups cut
by neurons, input axons and synaptic memory), for every profile. ``EnergyReport.mapping`` (and the JSON's
``"mapping"``) says which was used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from spikeport.emulator.energy.estimate import (
    EnergyEstimate,
    EnergyProfile,
    ann_dense_energy,
    estimate,
    load_profile,
)
from spikeport.emulator.energy.neurobench import NeuroBenchOps, neurobench_ops
from spikeport.emulator.energy.synops import (
    NEURONS_PER_CORE,
    SynOpsCounts,
    activity_from_spikes,
    count_synops,
)
from spikeport.emulator.errors import field_error
from spikeport.emulator.inputs import network_inputs
from spikeport.emulator.network import Network
from spikeport.emulator.result import RunResult

DEFAULT_PROFILES: tuple[str, ...] = (
    "loihi1",
    "sanafe-loihi1",
    "truenorth",
    "ann-fp32",
    "ann-fp16",
    "ann-int8",
)
ANN_BASELINE = "ann-fp32"
DEFAULT_MAPPING: Mapping[str, Any] = {
    "chip": None,
    "rule": "each group alone on ceil(n / neurons_per_core) cores (the profile's neurons_per_core)",
}


@dataclass(frozen=True, kw_only=True, eq=False)
class EnergyReport:
    counts: SynOpsCounts
    ops: NeuroBenchOps
    estimates: tuple[EnergyEstimate, ...]
    baseline: EnergyProfile
    ann_dense_pj: np.ndarray
    source: str
    #: how messages were counted: ``{"chip": None, "rule": ...}`` or ``{"chip": name, "cores": k, ...}``
    mapping: Mapping[str, Any] = field(default_factory=lambda: dict(DEFAULT_MAPPING))


def _profiles(profiles: Sequence[str | Path | EnergyProfile]) -> list[EnergyProfile]:
    return [p if isinstance(p, EnergyProfile) else load_profile(p) for p in profiles]


def _inputs(net: Network, inputs: Any) -> dict[str, np.ndarray]:
    """The run's inputs per input group, (B, T, n), checked by the emulator's rules (graded ones may
    hold the float run's fractions) and kept in their dtype."""
    return network_inputs(net, inputs, caller="energy_report", mode="float", cast=False)


def chip_destinations(net: Network, chip: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Per group (inputs included), destination cores per neuron on ``chip``'s placement, and the
    report's ``mapping`` record (chip, cores used, rule)."""
    from spikeport.chip.resource_map import destination_cores, placement

    place = placement(net, chip)
    dests = {g.name: destination_cores(net, g.name, place) for g in (*net.inputs, *net.groups)}
    mapping = {
        "chip": chip,
        "cores": sum(len(s) for s in place.values()),
        "rule": f"{chip} placement (spikeport.chip.resource_map): groups cut by neurons, axons and memory",
    }
    return dests, mapping


def energy_report(
    net: Network,
    spikes: Mapping[str, np.ndarray],
    *,
    states: Mapping[str, np.ndarray] | None = None,
    profiles: Sequence[str | Path | EnergyProfile] = DEFAULT_PROFILES,
    baseline: str | Path | EnergyProfile = ANN_BASELINE,
    source: str = "emulator",
    chip: str | None = None,
) -> EnergyReport:
    """Count ``spikes[group]`` (B, T, n; inputs included) and estimate energy under each profile.

    ``chip`` (``"loihi1"``/``"loihi2"``): count messages on that chip's placement for every profile
    (module docstring); default: ``ceil(n / neurons_per_core)`` cores per group."""
    activity = activity_from_spikes(net, spikes, states=states)
    profs = _profiles(profiles)
    base = _profiles([baseline])[0]
    dests, mapping = chip_destinations(net, chip) if chip is not None else (None, dict(DEFAULT_MAPPING))
    cache: dict[int, SynOpsCounts] = {}

    def counts_for(npc: int) -> SynOpsCounts:
        npc = NEURONS_PER_CORE if dests is not None else npc  # the placement makes npc moot
        if npc not in cache:
            cache[npc] = count_synops(net, activity, neurons_per_core=npc, destinations=dests)
        return cache[npc]

    ops = neurobench_ops(net, spikes)
    ests = tuple(estimate(counts_for(p.neurons_per_core), ops, p) for p in profs)
    return EnergyReport(
        counts=counts_for(NEURONS_PER_CORE),
        ops=ops,
        estimates=ests,
        baseline=base,
        ann_dense_pj=ann_dense_energy(ops, base),
        source=source,
        mapping=mapping,
    )


def report_from_run(net: Network, inputs: Any, result: RunResult, **kw: Any) -> EnergyReport:
    """Report of an emulator (or Lava) run: ``result`` must hold ``"<group>/spikes"`` for every group;
    recorded ``v``/``u`` make the active-update count exact. ``kw`` go to :func:`energy_report`
    (``profiles``, ``baseline``, ``chip``, ...)."""
    spikes: dict[str, np.ndarray] = dict(_inputs(net, inputs))
    for g in net.groups:
        key = f"{g.name}/spikes"
        if key not in result.outputs:
            raise field_error("report_from_run", "result", "must record spikes of every group", key)
        spikes[g.name] = np.asarray(result.outputs[key])
    states = {k: np.asarray(v) for k, v in result.outputs.items() if k.endswith(("/v", "/u"))}
    return energy_report(net, spikes, states=states or None, **kw)


def report_from_float_run(
    net: Network,
    inputs: Any,
    outputs: Mapping[str, np.ndarray],
    *,
    names: Mapping[str, str] | None = None,
    **kw: Any,
) -> EnergyReport:
    """Report of a float NIR reference run (``run_nir(...).outputs``): ``"<node>/spikes"`` counted on
    the network's synapses; ``names`` maps group name -> NIR node name where they differ."""
    names = dict(names or {})
    spikes: dict[str, np.ndarray] = dict(_inputs(net, inputs))
    for g in net.groups:
        key = f"{names.get(g.name, g.name)}/spikes"
        if key not in outputs:
            raise field_error("report_from_float_run", "outputs", f"has no spikes for group {g.name!r}", key)
        spikes[g.name] = np.asarray(outputs[key])
    return energy_report(net, spikes, source="float reference", **kw)


def _mean(a: np.ndarray) -> float:
    return float(np.mean(a))


def _group_rows(c: SynOpsCounts) -> list[dict[str, Any]]:
    """One row per group: spikes, messages, input events and (in)active updates per inference."""
    return [
        {
            "group": g.name,
            "n": g.n,
            "input": g.is_input,
            "spikes": _mean(g.spikes),
            "messages": _mean(g.messages_out),
            "input_events": _mean(g.input_events),
            "updates": _mean(g.updates),
            "active_updates": _mean(g.active_updates),
            "inactive_updates": _mean(g.inactive_updates),
        }
        for g in c.groups
    ]


def _connection_rows(c: SynOpsCounts) -> list[dict[str, Any]]:
    """One row per connection: synapses, SynOps, SynOp bits, multiplies and shifts per inference."""
    return [
        {
            "connection": k.name,
            "source": k.source,
            "target": k.target,
            "dense_synapses": k.dense_synapses,
            "nonzero_synapses": k.nonzero_synapses,
            "synops": _mean(k.synops),
            "synop_bits": _mean(k.synop_bits),
            "multiplies": _mean(k.multiplies),
            "shifts": _mean(k.shifts),
        }
        for k in c.connections
    ]


def _profile_rows(rep: EnergyReport, ann: float) -> list[dict[str, Any]]:
    """One row per energy profile: energy per inference (total and per group) and the ANN ratio."""
    rows = []
    for e in rep.estimates:
        tot = e.per_inference()
        rows.append(
            {
                "profile": e.profile.name,
                "kind": e.profile.kind,
                "title": e.profile.title,
                "caveat": e.profile.caveat,
                "energy_pj": tot,
                "per_group_pj": {g: [_mean(v) for v in parts] for g, parts in e.per_group.items()},
                "ann_dense_over_this": ann / tot["total"] if tot["total"] else None,
            }
        )
    return rows


def to_json(rep: EnergyReport) -> dict[str, Any]:
    """Per-inference (mean over samples) numbers; energies in pJ."""
    c = rep.counts
    ann = _mean(rep.ann_dense_pj)
    out: dict[str, Any] = {
        "source": rep.source,
        "batch": c.batch,
        "steps": c.steps,
        "active_rule": c.active_rule,
        "mapping": dict(rep.mapping),
        "groups": _group_rows(c),
        "connections": _connection_rows(c),
        "totals": {
            "synops": _mean(c.total("synops")),
            "spikes": _mean(c.total("spikes")),
            "active_updates": _mean(c.total("active_updates")),
            "updates": _mean(c.total("updates")),
        },
        "neurobench": rep.ops.per_sample(),
        "ann_baseline": {
            "profile": rep.baseline.name,
            "dense_pj": ann,
            "single_pass_pj": sum(k.dense_synapses for k in c.connections) * rep.baseline.pj("mac"),
        },
        "profiles": _profile_rows(rep, ann),
    }
    out["headline"] = headline(out)
    return out


#: the profile the headline ratio uses when present: calibrated against Loihi 1 silicon
HEADLINE_PROFILE = "sanafe-loihi1"


def headline(j: Mapping[str, Any]) -> dict[str, Any] | None:
    """The one SNN-vs-ANN ratio worth quoting: the SNN's energy per inference on one neuromorphic
    profile (the silicon-calibrated one when present) over ONE dense forward pass of the same network
    as an ANN (the baseline profile; arithmetic only). Not the per-step ANN equivalent, which charges
    the ANN T passes and flatters the SNN by a factor T."""
    snn = [p for p in j["profiles"] if p["kind"] != "ann"]
    if not snn:
        return None
    chosen = next((p for p in snn if p["profile"] == HEADLINE_PROFILE), snn[0])
    ann = float(j["ann_baseline"]["single_pass_pj"])
    e = float(chosen["energy_pj"]["total"])
    ratio = e / ann if ann else None
    if ratio is None:
        text = f"SNN on {chosen['profile']}: {_fmt_pj(e)} per inference; the dense ANN has no operations"
    else:
        more = f"{ratio:.3g}x more" if ratio >= 1 else f"{1 / ratio:.3g}x less"
        text = (
            f"SNN on {chosen['profile']} ({_fmt_pj(e)} per inference) uses {more} energy than one dense "
            f"ANN forward pass on {j['ann_baseline']['profile']} ({_fmt_pj(ann)}, arithmetic only, "
            "memory traffic excluded)"
        )
    return {
        "snn_profile": chosen["profile"],
        "snn_pj": e,
        "ann_profile": j["ann_baseline"]["profile"],
        "ann_single_pass_pj": ann,
        "snn_over_ann": ratio,
        "text": text,
        "caveat": chosen["caveat"],
    }


def _mapping_line(m: Mapping[str, Any]) -> str:
    """How messages were counted, one line."""
    if m.get("chip") is None:
        return f"messages: {m['rule']}"
    return f"messages: on the {m['chip']} placement ({m['cores']} cores)"


def _fmt_pj(pj: float) -> str:
    for unit, scale in (("uJ", 1e6), ("nJ", 1e3)):
        if abs(pj) >= scale:
            return f"{pj / scale:.3f} {unit}"
    return f"{pj:.1f} pJ"


def format_text(rep: EnergyReport) -> str:
    """The per-layer table, totals per inference and the profile comparison, as plain text."""
    j = to_json(rep)
    out = [
        f"energy report ({j['source']}): {j['batch']} sample(s) x {j['steps']} steps; per inference (mean)"
    ]
    out.append(f"{'group':<12}{'n':>7}{'spikes':>11}{'messages':>11}{'active upd':>12}{'inactive upd':>14}")
    for g in j["groups"]:
        act = "-" if g["input"] else f"{g['active_updates']:.1f}"
        ina = "-" if g["input"] else f"{g['inactive_updates']:.1f}"
        out.append(f"{g['group']:<12}{g['n']:>7}{g['spikes']:>11.1f}{g['messages']:>11.1f}{act:>12}{ina:>14}")
    out.append(_mapping_line(j["mapping"]))
    out.append(
        f"{'connection':<12}{'src->dst':>16}{'synapses':>10}{'nonzero':>9}{'synops':>12}{'mult':>10}{'shift':>10}"
    )
    for k in j["connections"]:
        arrow = f"{k['source']}->{k['target']}"
        out.append(
            f"{k['connection']:<12}{arrow:>16}{k['dense_synapses']:>10}{k['nonzero_synapses']:>9}"
            f"{k['synops']:>12.1f}{k['multiplies']:>10.1f}{k['shifts']:>10.1f}"
        )
    t, nb = j["totals"], j["neurobench"]
    out.append(
        f"totals: synops {t['synops']:.1f}, spikes {t['spikes']:.1f},"
        f" active updates {t['active_updates']:.1f} of {t['updates']:.0f} (rule: {j['active_rule']})"
    )
    out.append(
        f"NeuroBench: effective ACs {nb['Effective_ACs']:.3f}, effective MACs {nb['Effective_MACs']:.3f},"
        f" dense {nb['Dense']:.0f}"
    )
    ann = j["ann_baseline"]
    out.append(
        f"{'profile':<15}{'synaptic':>12}{'neuron':>12}{'routing':>12}{'total':>12}{'ANN/this':>10}"
        "  (ANN = dense ANN baseline)"
    )
    for p in j["profiles"]:
        e = p["energy_pj"]
        ratio = "-" if p["ann_dense_over_this"] is None else f"{p['ann_dense_over_this']:.2f}x"
        out.append(
            f"{p['profile']:<15}{_fmt_pj(e['synaptic']):>12}{_fmt_pj(e['neuron']):>12}"
            f"{_fmt_pj(e['routing']):>12}{_fmt_pj(e['total']):>12}{ratio:>10}"
        )
    out.append(
        f"ANN-equivalent ({ann['profile']}, dense ops x MAC, every step): {_fmt_pj(ann['dense_pj'])}"
        " per inference;"
        f" one dense forward pass: {_fmt_pj(ann['single_pass_pj'])}"
    )
    if j["headline"]:
        out.append(f"headline: {j['headline']['text']}")
    for p in j["profiles"]:
        out.append(f"  {p['profile']}: {p['caveat']}")
    return "\n".join(out)


def plot_png(rep: EnergyReport, path: str | Path) -> Path:
    """Stacked bars of energy per inference per profile (synaptic / neuron / routing) plus one dense
    ANN forward pass, on a log scale (the profiles span orders of magnitude), each bar labelled with its
    total; the title states the headline ratio (:func:`headline`). Written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from spikeport.emulator.atomic import atomic_path

    j = to_json(rep)
    names = [p["profile"] + ("\n(effective ops)" if p["kind"] == "ann" else "") for p in j["profiles"]]
    names.append(f"{j['ann_baseline']['profile']}\n(1 dense ANN pass)")
    parts = {
        k: [p["energy_pj"][k] / 1e3 for p in j["profiles"]] + [0.0] for k in ("synaptic", "neuron", "routing")
    }
    parts["synaptic"][-1] = j["ann_baseline"]["single_pass_pj"] / 1e3
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(names), 4.6))
    bottom = np.zeros(len(names))
    for (label, vals), color in zip(parts.items(), ("tab:blue", "tab:orange", "tab:green")):
        ax.bar(names, vals, bottom=bottom, label=label, color=color)
        bottom += np.asarray(vals)
    for x, tot in enumerate(bottom):
        ax.text(x, tot, _fmt_pj(tot * 1e3), ha="center", va="bottom", fontsize=8)
    _log_axis(ax, bottom)
    head = j["headline"]["text"] if j["headline"] else ""
    ax.set_title(
        f"{j['source']}: {j['steps']} steps, {j['totals']['synops']:.0f} synops per inference\n{head}",
        fontsize=8,
        wrap=True,
    )
    ax.legend(fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    with atomic_path(path, obj="plot_png", field="path") as tmp:
        fig.savefig(tmp, dpi=110, format=Path(path).suffix.lstrip(".").lower() or "png")
    plt.close(fig)
    return Path(path)


def _log_axis(ax: Any, totals: np.ndarray) -> None:
    """Log energy axis from a decade under the smallest nonzero bar to above the largest."""
    pos = totals[totals > 0]
    ax.set_yscale("log")
    ax.set_ylabel("energy per inference (nJ, log scale)")
    if pos.size:
        ax.set_ylim(10 ** np.floor(np.log10(pos.min()) - 0.5), pos.max() * 4)
