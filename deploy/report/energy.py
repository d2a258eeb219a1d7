"""Energy reports: counts, NeuroBench ops and energy per inference for one run, as text, JSON or a PNG.

From Python::

    rep = report_from_run(net, x, run(net, x, record=("spikes", "v", "u")))   # an emulator run
    rep = report_from_float_run(net, x, run_nir(graph, x).outputs)          # the float NIR run
    print(format_text(rep)); to_json(rep); plot_png(rep, "energy.png")

A float NIR run is counted against the quantized network's topology: its ``"<node>/spikes"`` are
matched to the groups of the same name (``names`` maps other node names), so float and quantized
activity are compared on the same synapses. Without recorded states the active-update rule falls back
to input and bias (``active_rule="input"``, see :mod:`spikeport.emulator.energy.synops`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True, kw_only=True, eq=False)
class EnergyReport:
    counts: SynOpsCounts
    ops: NeuroBenchOps
    estimates: tuple[EnergyEstimate, ...]
    baseline: EnergyProfile
    ann_dense_pj: np.ndarray
    source: str


def _profiles(profiles: Sequence[str | Path | EnergyProfile]) -> list[EnergyProfile]:
    return [p if isinstance(p, EnergyProfile) else load_profile(p) for p in profiles]


def _inputs(net: Network, inputs: Any) -> dict[str, np.ndarray]:
    if isinstance(inputs, Mapping):
        raw = dict(inputs)
    elif len(net.inputs) == 1:
        raw = {net.inputs[0].name: inputs}
    else:
        raise field_error(
            "energy_report", "inputs", "must map each input group name to an array", type(inputs).__name__
        )
    out = {}
    for g in net.inputs:
        arr = np.asarray(raw[g.name])
        out[g.name] = arr[None] if arr.ndim == 2 else arr
    return out


def energy_report(
    net: Network,
    spikes: Mapping[str, np.ndarray],
    *,
    states: Mapping[str, np.ndarray] | None = None,
    profiles: Sequence[str | Path | EnergyProfile] = DEFAULT_PROFILES,
    baseline: str | Path | EnergyProfile = ANN_BASELINE,
    source: str = "emulator",
) -> EnergyReport:
    """Count ``spikes[group]`` (B, T, n; inputs included) and estimate energy under each profile."""
    activity = activity_from_spikes(net, spikes, states=states)
    profs = _profiles(profiles)
    base = _profiles([baseline])[0]
    cache: dict[int, SynOpsCounts] = {}

    def counts_for(npc: int) -> SynOpsCounts:
        if npc not in cache:
            cache[npc] = count_synops(net, activity, neurons_per_core=npc)
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
    )


def report_from_run(net: Network, inputs: Any, result: RunResult, **kw: Any) -> EnergyReport:
    """Report of an emulator (or Lava) run: ``result`` must hold ``"<group>/spikes"`` for every group;
    recorded ``v``/``u`` make the active-update count exact."""
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


def to_json(rep: EnergyReport) -> dict[str, Any]:
    """Per-inference (mean over samples) numbers; energies in pJ."""
    c = rep.counts
    layers = [
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
    conns = [
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
    ann = _mean(rep.ann_dense_pj)
    profiles = []
    for e in rep.estimates:
        tot = e.per_inference()
        profiles.append(
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
    return {
        "source": rep.source,
        "batch": c.batch,
        "steps": c.steps,
        "active_rule": c.active_rule,
        "groups": layers,
        "connections": conns,
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
        "profiles": profiles,
    }


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
    for p in j["profiles"]:
        out.append(f"  {p['profile']}: {p['caveat']}")
    return "\n".join(out)


def plot_png(rep: EnergyReport, path: str | Path) -> Path:
    """Stacked bars of energy per inference per profile (synaptic / neuron / routing) plus the dense
    ANN baseline, each bar labelled with its total."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    j = to_json(rep)
    names = [p["profile"] + ("\n(effective ops)" if p["kind"] == "ann" else "") for p in j["profiles"]]
    names.append(f"{j['ann_baseline']['profile']}\n(dense ANN)")
    parts = {
        k: [p["energy_pj"][k] / 1e3 for p in j["profiles"]] + [0.0] for k in ("synaptic", "neuron", "routing")
    }
    parts["synaptic"][-1] = j["ann_baseline"]["dense_pj"] / 1e3
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(names), 4.2))
    bottom = np.zeros(len(names))
    for (label, vals), color in zip(parts.items(), ("tab:blue", "tab:orange", "tab:green")):
        ax.bar(names, vals, bottom=bottom, label=label, color=color)
        bottom += np.asarray(vals)
    for x, tot in enumerate(bottom):
        ax.text(x, tot, _fmt_pj(tot * 1e3), ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("energy per inference (nJ)")
    ax.set_title(
        f"{j['source']}: {j['steps']} steps, {j['totals']['synops']:.0f} synops per inference", fontsize=10
    )
    ax.legend(fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    ax.set_ylim(0, bottom.max() * 1.15 if bottom.max() > 0 else 1)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
