"""A plain-data summary of a netx file: its layers and the spikeport groups they become."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def is_netx(path: str | Path) -> bool:
    """``path`` is an HDF5 file laid out as netx (a ``layer`` group, not a spikeport network file)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return "layer" in f and "format" not in f.attrs
    except (OSError, ValueError):
        return False


def summary(path: str | Path, **read_kw: Any) -> dict[str, Any]:
    """Layers (index, type, shape, neuron, group, neurons) and connections of the network
    :func:`~spikeport.netx.read.read_netx` reads from ``path`` (``read_kw`` go to it)."""
    from spikeport.netx.read import read_netx

    net = read_netx(path, **read_kw)
    sizes = {g.name: int(g.n) for g in net.groups}
    layers = []
    for e in net.metadata["netx"]["layers"]:
        layers.append({**e, "neurons": sizes.get(e.get("group", ""), 0)})
    conns = []
    for c in net.connections:
        w = c.weight_values  # the stored values (a sparse matrix's entries): enough to count
        conns.append(
            {
                "name": c.name,
                "source": c.source,
                "target": c.target,
                "shape": list(c.weights.shape),
                "nonzero": int(np.count_nonzero(w)),
                "weight_exp": int(c.weight_exp),
                "max_delay": c.max_delay,
                "message_bits": int(c.num_message_bits),
            }
        )
    return {
        "file": str(path),
        "format": "netx",
        "layers": layers,
        "inputs": [
            {"name": i.name, "n": int(i.n), "message_bits": int(i.num_message_bits)} for i in net.inputs
        ],
        "connections": conns,
        "input_transform": net.metadata["netx"].get("input_transform"),
    }


def format_summary(s: dict[str, Any]) -> str:
    """The summary as a short text table."""
    lines = [f"{s['file']}: lava-dl netx, {len(s['layers'])} layers"]
    for e in s["layers"]:
        shape = "x".join(str(v) for v in e.get("shape", ())) or "-"
        lines.append(
            f"  layer{e['index']:<3} {e['type']:<10} shape {shape:<12} neuron {e.get('neuron') or '-':<6} "
            f"-> {e.get('group', '-')} ({e['neurons']} neurons)"
        )
    for c in s["connections"]:
        lines.append(
            f"  {c['name']}: {c['source']} -> {c['target']} {c['shape'][0]}x{c['shape'][1]}, "
            f"{c['nonzero']} nonzero, max delay {c['max_delay']}, {c['message_bits']} message bits"
        )
    if s["input_transform"]:
        lines.append(f"  input transform (netx does not apply it): {s['input_transform']}")
    return "\n".join(lines)
