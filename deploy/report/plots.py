"""Plots for reports: spike rasters and membrane traces (float reference vs fixed point), as PNG files.

matplotlib runs on the non-interactive Agg backend; every function writes one file and returns its path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def raster_png(path: str | Path, rasters: Mapping[str, np.ndarray], *, title: str = "") -> Path:
    """One row of panels per entry of ``rasters`` (name -> (T, n) spikes of one sample); dots at spikes."""
    plt = _pyplot()
    names = list(rasters)
    fig, axes = plt.subplots(len(names), 1, figsize=(8, 1.6 + 1.5 * len(names)), sharex=True, squeeze=False)
    for ax, name in zip(axes[:, 0], names):
        s = np.asarray(rasters[name])
        t, i = np.nonzero(s)
        ax.scatter(t + 1, i, s=7, c=np.where(s[t, i] > 0, "k", "tab:red"), marker="s", linewidths=0)
        ax.set_ylabel(f"{name}\nneuron")
        ax.set_ylim(-0.5, s.shape[1] - 0.5)
        ax.set_title(f"{name}: {int(np.abs(s).sum())} spikes, {s.shape[1]} neurons", fontsize=9, loc="left")
    return _finish(plt, fig, axes, path, title)


def _finish(plt: Any, fig: Any, axes: Any, path: str | Path, title: str) -> Path:
    """Label the shared time axis, add the title, write the PNG and close the figure."""
    axes[-1, 0].set_xlabel("time step")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    from spikeport.emulator.atomic import atomic_path

    with atomic_path(path, obj="plot", field="path") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return Path(path)


def traces_png(
    path: str | Path,
    traces: Mapping[str, np.ndarray],
    *,
    neurons: Sequence[int],
    threshold: float | None = None,
    spikes: np.ndarray | None = None,
    title: str = "",
    ylabel: str = "membrane potential (float units)",
    difference: tuple[str, str] | None = None,
) -> Path:
    """Overlay several traces (label -> (T, n) of one sample) for each neuron index in ``neurons``;
    ``spikes`` (T, n) marks spike steps (the traces show v after the reset). ``difference=(a, b)`` adds
    under each neuron a panel of ``traces[a] - traces[b]`` (e.g. float minus fixed point: the traces
    themselves overlap where quantization is good, the difference shows by how much)."""
    plt = _pyplot()
    rows = 2 if difference else 1
    heights = [1.6, 0.9] * len(neurons) if difference else [1.6] * len(neurons)
    fig, axes = plt.subplots(
        rows * len(neurons), 1, figsize=(8, 1.2 + sum(heights)), sharex=True, squeeze=False,
        gridspec_kw={"height_ratios": heights},
    )  # fmt: skip
    for k, j in enumerate(neurons):
        ax = axes[rows * k, 0]
        _trace_panel(ax, traces, j, threshold, spikes)
        if difference:
            _difference_panel(axes[rows * k + 1, 0], traces, j, difference)
    axes[0, 0].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes[rows * (len(neurons) // 2), 0].set_ylabel(ylabel)
    return _finish(plt, fig, axes, path, title)


def _trace_panel(
    ax: Any, traces: Mapping[str, np.ndarray], j: int, threshold: float | None, spikes: np.ndarray | None
) -> None:
    styles = ["-", "--", ":", "-."]
    for k, (label, tr) in enumerate(traces.items()):
        y = np.asarray(tr)[:, j]
        ax.plot(np.arange(1, y.size + 1), y, styles[k % len(styles)], lw=1.1, label=label)
    if threshold is not None:
        ax.axhline(threshold, color="grey", lw=0.6, ls=":")
    if spikes is not None:
        t = np.flatnonzero(np.asarray(spikes)[:, j])
        top = threshold if threshold is not None else 1.0
        ax.plot(t + 1, np.full(t.size, top), "v", color="tab:red", ms=5, label="spike")
    ax.set_title(f"neuron {j}", fontsize=9, loc="left")


def _difference_panel(ax: Any, traces: Mapping[str, np.ndarray], j: int, pair: tuple[str, str]) -> None:
    a, b = pair
    d = np.asarray(traces[a], np.float64)[:, j] - np.asarray(traces[b], np.float64)[:, j]
    ax.axhline(0.0, color="grey", lw=0.6)
    ax.plot(np.arange(1, d.size + 1), d, color="tab:purple", lw=1.0)
    ax.set_title(
        f"neuron {j}: {a} minus {b} (max |diff| {np.max(np.abs(d), initial=0.0):.3g})", fontsize=8, loc="left"
    )
