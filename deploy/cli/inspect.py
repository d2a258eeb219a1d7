"""``spikeport inspect MODEL.nir``: nodes, shapes, parameter ranges, suggested convention, warnings."""

from __future__ import annotations

import argparse
import json
from typing import Any

from spikeport.cli.main import command


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="NIR file, or a lava-dl netx file (.net)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def summary(path: str) -> dict[str, Any]:
    """The inspect report of ``path`` as plain data (what ``--json`` prints)."""
    import warnings

    import numpy as np
    from spikeport.nir.io import read_nir, suggest_convention
    from spikeport.quantize.graph.flatten import flatten_graph
    from spikeport.quantize.semantics import semantics

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graph, stored = read_nir(path)
    flat = flatten_graph(graph)
    nodes = []
    for fn in flat:
        params = {}
        for key, value in vars(fn.node).items():
            if key in ("input_type", "output_type", "metadata"):
                continue
            arr = np.asarray(value) if not isinstance(value, str) else None
            if arr is None or arr.dtype.kind not in "fiu" or arr.size == 0:
                continue
            params[key] = {
                "shape": list(arr.shape),
                "min": float(arr.min()),
                "max": float(arr.max()),
            }
        nodes.append(
            {
                "name": fn.name,
                "type": fn.kind,
                "in_shape": list(fn.in_shape),
                "out_shape": list(fn.out_shape),
                "sources": list(fn.sources),
                "params": params,
            }
        )
    name, reason = suggest_convention(graph)
    sem = stored or semantics(name)
    notes = [str(w.message) for w in caught] + _stability_warnings(flat, sem)
    return {
        "file": str(path),
        "inputs": list(flat.inputs),
        "outputs": list(flat.outputs),
        "nodes": nodes,
        "edges": len(flat.edges),
        "recurrent_edges": [list(e) for e in flat.recurrent_edges],
        "stored_semantics": stored.to_dict() if stored else None,
        "suggested_convention": {"name": name, "reason": reason},
        "warnings": notes,
    }


def _stability_warnings(flat: Any, sem: Any) -> list[str]:
    """Neurons whose time constants are shorter than dt: the euler step overshoots (1 - dt/tau < 0)."""
    import numpy as np

    out = []
    for fn in flat:
        for attr in ("tau", "tau_mem", "tau_syn"):
            tau = getattr(fn.node, attr, None)
            if tau is None or sem.integration != "euler":
                continue
            ratio = float(np.max(sem.dt / np.asarray(tau, np.float64)))
            if ratio > 1.0:
                out.append(
                    f"{fn.name}.{attr}: dt/tau = {ratio:.3g} > 1 under dt = {sem.dt:g}; euler overshoots"
                )
    return out


def _text(rep: dict[str, Any]) -> str:
    lines = [f"{rep['file']}: {len(rep['nodes'])} nodes, {rep['edges']} edges"]
    lines.append(f"inputs: {', '.join(rep['inputs'])}   outputs: {', '.join(rep['outputs'])}")
    width = max(len(n["name"]) for n in rep["nodes"])
    for n in rep["nodes"]:
        shape = f"{tuple(n['in_shape'])} -> {tuple(n['out_shape'])}"
        ranges = ", ".join(f"{k} [{v['min']:.4g}, {v['max']:.4g}]" for k, v in n["params"].items())
        lines.append(f"  {n['name']:<{width}}  {n['type']:<9} {shape:<24} {ranges}")
    for s, d in rep["recurrent_edges"]:
        lines.append(f"recurrent edge: {s} -> {d} (delayed one step)")
    sug = rep["suggested_convention"]
    lines.append(f"suggested convention: {sug['name']} ({sug['reason']})")
    for w in rep["warnings"]:
        lines.append(f"warning: {w}")
    return "\n".join(lines)


@command("inspect", help="summarize a NIR file and suggest its semantics", configure=_configure)
def run(args: argparse.Namespace) -> int:
    from spikeport.netx.summary import format_summary, is_netx
    from spikeport.netx.summary import summary as netx_summary

    if is_netx(args.model):  # a lava-dl netx file: its layers and the groups they become
        srep = netx_summary(args.model)
        print(json.dumps(srep, indent=2) if args.json else format_summary(srep))
        return 0
    rep = summary(args.model)
    print(json.dumps(rep, indent=2) if args.json else _text(rep))
    return 0
