"""One self-contained HTML page over a demo report folder: summary table, the headline energy ratio,
quantization warnings, the energy profiles' caveats, plots (energy bars on a log scale, membrane traces
with a float-minus-fixed panel) and the energy text."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

_FIGURES = (
    ("raster_input.png", "Input spikes (test sample 0)"),
    ("raster_hidden.png", "Hidden layer: float reference vs 8-bit emulator"),
    ("membrane.png", "Membrane potential: float vs fixed point; under each neuron, float minus fixed"),
    ("energy_fixed.png", "Energy per inference, 8-bit fixed point"),
    ("energy_shift.png", "Energy per inference, power-of-two weights"),
)


def _rows(pairs: list[tuple[str, str]]) -> str:
    return "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in pairs)


def _list(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>" if items else "<p>none</p>"


def notes_html(summary: dict[str, Any]) -> str:
    """The headline energy ratio, the quantization warnings and the energy profiles' caveats."""
    energy = summary.get("energy") or {}
    heads = [f"{mode}: {e['headline']['text']}" for mode, e in energy.items() if e.get("headline")]
    warns = [f"{mode}: {w}" for mode, ws in (summary.get("quantization_warnings") or {}).items() for w in ws]
    caveats: dict[str, str] = {}
    for e in energy.values():
        for p in e.get("profiles", []):
            caveats.setdefault(p["profile"], p["caveat"])
    return (
        f"<h2>Energy: the one ratio</h2>{_list(heads)}"
        f"<h2>Quantization warnings</h2>{_list(warns)}"
        f"<h2>Energy profile caveats</h2>{_list([f'{k}: {v}' for k, v in caveats.items()])}"
    )


def write_html(out: Path, summary: dict[str, Any]) -> Path:
    """Write ``out/index.html`` for the files in ``out`` and return its path."""
    acc, cfg = summary["accuracy"], summary["config"]
    pairs = [("accuracy " + k, f"{100 * v:.2f}%") for k, v in acc.items()]
    sem = summary["semantics"]
    pairs.append(
        ("semantics", f"{sem['convention']}: dt={sem['dt']}, reset={sem['reset']}, {sem['reset_timing']}")
    )
    for mode, ag in summary["spike_agreement_vs_float"].items():
        pairs.append((f"spike agreement {mode}", ", ".join(f"{g}: {100 * v:.2f}%" for g, v in ag.items())))
    lava = summary.get("lava") or {}
    for mode in ("fixed", "shift"):
        if mode in lava:
            r = lava[mode]
            verdict = "bit-exact" if r["bit_exact"] else "MISMATCH"
            pairs.append(
                (
                    f"Lava vs emulator {mode}",
                    f"{verdict} on {lava['samples']} samples, {r['values_compared']} values",
                )
            )
    for mode, e in summary["energy"].items():
        pairs.append((f"energy {mode}", ", ".join(f"{k} {v} nJ" for k, v in e["per_profile_nj"].items())))
    figs = "".join(
        f'<figure><img src="{name}" alt="{html.escape(cap)}">'
        f"<figcaption>{html.escape(cap)}</figcaption></figure>"
        for name, cap in _FIGURES
        if (out / name).exists()
    )
    energy = (out / "energy.txt").read_text() if (out / "energy.txt").exists() else ""
    files = "".join(f'<li><a href="{html.escape(f)}">{html.escape(f)}</a></li>' for f in summary["files"])
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>spikeport report</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}}
th{{text-align:left;padding-right:1.5em}}td,th{{border-bottom:1px solid #ddd;padding:.25em}}
img{{max-width:100%}}figure{{margin:1.5em 0}}pre{{background:#f6f6f6;padding:1em;overflow-x:auto}}</style>
</head><body><h1>spikeport report</h1>
<p>Digits 8x8, {summary["test_samples"]} test samples, {cfg["steps"]} steps, seed {cfg["seed"]}.</p>
<table>{_rows(pairs)}</table>{notes_html(summary)}{figs}<h2>Energy report</h2><pre>{html.escape(energy)}</pre>
<h2>Files</h2><ul>{files}</ul></body></html>"""
    from spikeport.emulator.atomic import atomic_path

    path = out / "index.html"
    with atomic_path(path, obj="write_html", field="path") as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path
