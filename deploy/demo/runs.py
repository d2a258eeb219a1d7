"""The demo's runs: float reference, emulator (fixed and shift), Lava, energy, plots and the HTML page."""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from spikeport.demo.records import Data, DemoConfig, predict, timed
from spikeport.emulator.network import Network
from spikeport.emulator.result import RunResult
from spikeport.quantize.semantics import Semantics


def _aligned(net: Network, outputs: Any, group: str, var: str, steps: int) -> np.ndarray:
    """Emulator output of ``group`` aligned with the float run (the quantizer's per-group lag)."""
    from spikeport.report.compare import aligned

    return aligned(outputs, f"{group}/{var}", int(net.metadata["groups"][group]["lag"]), steps)


def _max_lag(net: Network) -> int:
    return max(int(g["lag"]) for g in net.metadata["groups"].values())


def _output_group(net: Network) -> str:
    (spec,) = net.metadata["outputs"].values()
    return str(spec["group"])


def _lava_check(
    nets: dict[str, Network], xs: dict[str, dict[str, np.ndarray]], k: int, progress: bool
) -> dict:
    from spikeport.emulator.engines.dispatch import run
    from spikeport.lava.backend import run_lava

    out: dict[str, Any] = {"samples": k}
    for mode, net in nets.items():
        x = {name: a[:k] for name, a in xs[mode].items()}
        record = ("spikes", "u", "v")
        emu = run(net, x, record=record)
        lava = run_lava(net, x, record=record, progress=progress)
        keys = sorted(emu.outputs)
        equal = {key: bool(np.array_equal(emu[key], lava[key])) for key in keys}
        out[mode] = {
            "bit_exact": all(equal.values()),
            "values_compared": int(sum(np.asarray(emu[key]).size for key in keys)),
            "spikes": int(sum(np.abs(emu[key]).sum() for key in keys if key.endswith("/spikes"))),
            "per_variable": equal,
        }
    return out


def _emulator_runs(
    data: Data, nets: dict[str, Network], times: dict[str, float], progress: bool
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, RunResult]]:
    """Encoded inputs (padded by the largest lag) and the emulator run, per quantization mode."""
    from spikeport.emulator.engines.dispatch import run
    from spikeport.quantize.quantize_nir import encode_inputs

    xs, runs = {}, {}
    for mode, net in nets.items():
        xs[mode] = encode_inputs(net, data.x_test, pad=_max_lag(net))
        runs[mode] = timed(
            times, f"emulator_{mode}", partial(run, net, xs[mode], record=("spikes", "v"), progress=progress)
        )
    return xs, runs


def _agreement(graph: Any, data: Data, sem: Semantics, nets: dict[str, Network]) -> dict[str, Any]:
    """Per mode and group: the fraction of (sample, step, neuron) spikes equal to the float run's."""
    from spikeport.report.compare import compare

    out = {}
    for mode, net in nets.items():
        rep = compare(graph, net, data.x_test, sem)
        groups = rep["backends"]["fixed"]["groups"].items()
        out[mode] = {g: round(float(m["spike_agreement"]), 4) for g, m in groups}
    return out


def _energy(
    out_dir: Path, nets: dict[str, Network], xs: dict[str, Any], runs: dict[str, RunResult]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Energy reports per mode (JSON and text); writes ``energy_<mode>.png`` and ``energy.txt``."""
    from spikeport.report import energy as er

    energy, energy_text = {}, {}
    for mode, net in nets.items():
        erep = er.report_from_run(net, xs[mode], runs[mode])
        energy[mode] = er.to_json(erep)
        energy_text[mode] = er.format_text(erep)
        er.plot_png(erep, out_dir / f"energy_{mode}.png")
    (out_dir / "energy.txt").write_text("\n\n".join(f"[{m}]\n{t}" for m, t in energy_text.items()))
    return energy, energy_text


def evaluate(
    cfg: DemoConfig,
    data: Data,
    graph: Any,
    sem: Semantics,
    nets: dict[str, Network],
    times: dict[str, float],
    progress: bool,
) -> dict[str, Any]:
    """Float reference, emulator runs, spike agreement, the Lava check, energy and plots: the results."""
    from spikeport.reference.run import run_nir

    out_dir = Path(cfg.out)
    steps = data.x_test.shape[1]
    y = data.y_test
    ref = timed(times, "float_run", lambda: run_nir(graph, data.x_test, sem, record=("spikes", "v")))
    out_g = _output_group(next(iter(nets.values())))
    acc: dict[str, float] = {"float": float(np.mean(predict(ref[f"{out_g}/spikes"].sum(1)) == y))}
    xs, runs = _emulator_runs(data, nets, times, progress)
    for mode, net in nets.items():
        counts = _aligned(net, runs[mode].outputs, out_g, "spikes", steps).sum(1)
        acc[mode] = float(np.mean(predict(counts) == y))
    lava = None
    if cfg.lava_samples:
        lava = timed(times, "lava", lambda: _lava_check(nets, xs, cfg.lava_samples, progress))
    energy, energy_text = _energy(out_dir, nets, xs, runs)
    _plots(out_dir, data, ref, nets["fixed"], runs["fixed"], steps)
    return {
        "accuracy": acc,
        "test_samples": len(y),
        "spike_agreement_vs_float": _agreement(graph, data, sem, nets),
        "lava": lava,
        "energy": {m: _energy_summary(e) for m, e in energy.items()},
        "energy_text": energy_text,
    }


def _energy_summary(e: dict[str, Any]) -> dict[str, Any]:
    """The per-inference numbers that the summary prints (the full report is in energy.txt)."""
    return {
        "synops": round(e["totals"]["synops"], 1),
        "neurobench": e["neurobench"],
        "per_profile_nj": {p["profile"]: round(p["energy_pj"]["total"] / 1e3, 3) for p in e["profiles"]},
        "ann_dense_nj": round(e["ann_baseline"]["dense_pj"] / 1e3, 3),
    }


def _plots(out: Path, data: Data, ref: RunResult, net: Network, res: RunResult, steps: int) -> None:
    from spikeport.report.plots import raster_png, traces_png

    groups = [g.name for g in net.groups if not g.name.startswith("~")]
    hidden = groups[0]
    raster_png(out / "raster_input.png", {"input": data.x_test[0]}, title="input spikes, test sample 0")
    raster_png(
        out / "raster_hidden.png",
        {
            f"{hidden} float": ref[f"{hidden}/spikes"][0],
            f"{hidden} fixed": _aligned(net, res.outputs, hidden, "spikes", steps)[0],
        },
        title="hidden layer spikes: float reference vs 8-bit emulator (sample 0)",
    )
    scale = np.asarray(net.metadata["groups"][hidden]["scale"], dtype=np.float64)
    v_fixed = _aligned(net, res.outputs, hidden, "v", steps)[0] / scale
    busiest = np.argsort(-ref[f"{hidden}/spikes"][0].sum(0))[:3]
    traces_png(
        out / "membrane.png",
        {"float": ref[f"{hidden}/v"][0], "fixed (v_int / scale)": v_fixed},
        neurons=[int(j) for j in busiest],
        threshold=1.0,
        spikes=ref[f"{hidden}/spikes"][0],
        title="membrane potential after reset, float reference vs fixed point (sample 0)",
        difference=("float", "fixed (v_int / scale)"),
    )


def print_summary(s: dict[str, Any], file: TextIO | None = None) -> None:
    """The demo's summary for a terminal (``file``: default the current ``sys.stdout``)."""
    out = sys.stdout if file is None else file

    def p(line: str = "") -> None:
        print(line, file=out)

    acc = s["accuracy"]
    cfg, sem = s["config"], s["semantics"]
    p(f"spikeport demo: digits, {s['test_samples']} test samples, {cfg['steps']} steps, seed {cfg['seed']}")
    p(f"  semantics      {sem['convention']} (dt={sem['dt']}, reset={sem['reset']}, {sem['reset_timing']})")
    p("  accuracy       " + ", ".join(f"{k} {100 * v:.2f}%" for k, v in acc.items()))
    for mode, ag in s["spike_agreement_vs_float"].items():
        p(f"  agreement      {mode}: " + ", ".join(f"group {g} {100 * v:.2f}%" for g, v in ag.items()))
    lava = s.get("lava")
    if lava:
        for mode in ("fixed", "shift"):
            if mode in lava:
                r = lava[mode]
                verdict = "bit-exact" if r["bit_exact"] else "MISMATCH"
                p(
                    f"  lava fixed_pt  {mode}: {verdict} vs emulator on {lava['samples']} samples "
                    f"({r['values_compared']} values of spikes/u/v, {r['spikes']} spikes)"
                )
    for mode, e in s["energy"].items():
        profs = ", ".join(f"{k} {v} nJ" for k, v in e["per_profile_nj"].items())
        p(f"  energy/inf     {mode}: synops {e['synops']}; {profs}; dense ANN {e['ann_dense_nj']} nJ")
    if s.get("quantization_warnings"):
        for mode, ws in s["quantization_warnings"].items():
            if ws:
                p(f"  warnings       {mode}: {len(ws)} (see quantization_{mode}.json)")
    secs = s["seconds"]
    p(f"  time           {sum(secs.values()):.1f} s ({', '.join(f'{k} {v}s' for k, v in secs.items())})")
    p(f"  report         {s['config']['out']}/: {', '.join(s['files'])}")
