"""Exact continuous-time reference for feed-forward LIF layers with delta synapses (NIR's LIF + Linear).

Each layer is NIR's LIF, ``tau dv/dt = (v_leak - v) + r I`` with ``I = sum_s W[:, src_s] delta(t - t_s)``,
spike when ``v > v_threshold``, then ``v <- v_reset``. Between input events ``v`` relaxes exactly,
``v(t) = v_leak + (v0 - v_leak) exp(-(t - t0) / tau)``; an input spike makes ``v`` jump by
``r W / tau`` (inputs at the same instant are summed, then the threshold is checked once); with
``v_leak > v_threshold`` the neuron also fires between inputs at ``t0 + tau ln((v_leak - v0) /
(v_leak - v_threshold))``. Layers feed forward without delay, as NIR graphs do.

:func:`euler_run` is the forward-Euler discretization every framework uses
(docs/nir-conventions.md, "Forward-Euler discretization"):
``v[k] = v[k-1] + dt / tau (v_leak - v[k-1]) + r / tau * W @ counts[k]`` where ``counts[k]`` holds the
input spikes in ``((k-1) dt, k dt]``, spike times reported as ``k dt``; :func:`discretization_error`
compares it with :func:`exact_run` for several ``dt``. numpy/numba only: weights and taus are arrays.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np
from spikeport.emulator.errors import field_error


@dataclass(frozen=True, kw_only=True)
class LIFLayer:
    """``weights`` (n_out, n_in) then NIR LIF parameters, each a scalar or an (n_out,) array."""

    weights: np.ndarray
    tau: np.ndarray
    r: np.ndarray
    v_leak: np.ndarray
    v_threshold: np.ndarray
    v_reset: np.ndarray

    def __post_init__(self) -> None:
        w = np.array(self.weights, dtype=np.float64)
        if w.ndim != 2:
            raise field_error("LIFLayer", "weights", "must be 2-D (n_out, n_in)", w.shape)
        object.__setattr__(self, "weights", w)
        for name in ("tau", "r", "v_leak", "v_threshold", "v_reset"):
            a = np.broadcast_to(np.array(getattr(self, name), dtype=np.float64), (w.shape[0],)).copy()
            object.__setattr__(self, name, a)
        if np.any(self.tau <= 0):
            raise field_error("LIFLayer", "tau", "must be > 0", self.tau.min())
        if np.any(self.v_reset >= self.v_threshold):
            raise field_error("LIFLayer", "v_reset", "must be < v_threshold", self.v_reset.max())


@dataclass(frozen=True, kw_only=True)
class Spikes:
    """Spike list of one layer: ``times`` (ascending) and neuron ``index``; ``n`` neurons."""

    times: np.ndarray
    index: np.ndarray
    n: int

    def trains(self) -> list[np.ndarray]:
        """One sorted array of spike times per neuron."""
        order = np.lexsort((self.times, self.index))
        cut = np.searchsorted(self.index[order], np.arange(self.n + 1))
        t = self.times[order]
        return [t[cut[i] : cut[i + 1]] for i in range(self.n)]


@numba.njit(cache=True)
def _exact_layer(ev_t, amp, tau, v_leak, v_th, v_reset, t_end):  # type: ignore[no-untyped-def]
    n_out = amp.shape[0]
    out_t = []
    out_i = []
    for i in range(n_out):
        v = 0.0
        t0 = 0.0
        for e in range(ev_t.size + 1):
            te = ev_t[e] if e < ev_t.size else t_end
            while v_leak[i] > v_th[i]:  # spontaneous crossings before the next event
                tc = t0 + tau[i] * math.log((v_leak[i] - v) / (v_leak[i] - v_th[i]))
                if tc >= te:
                    break
                out_t.append(tc)
                out_i.append(i)
                v, t0 = v_reset[i], tc
            if e == ev_t.size:
                break
            v = v_leak[i] + (v - v_leak[i]) * math.exp(-(te - t0) / tau[i]) + amp[i, e]
            t0 = te
            if v > v_th[i]:
                out_t.append(te)
                out_i.append(i)
                v = v_reset[i]
    return np.array(out_t), np.array(out_i, dtype=np.int64)


def _check_input(spikes: Spikes, layers: Sequence[LIFLayer]) -> None:
    if not layers:
        raise field_error("exact_run", "layers", "must hold at least one LIFLayer", ())
    for k, layer in enumerate(layers):
        want = spikes.n if k == 0 else layers[k - 1].weights.shape[0]
        if layer.weights.shape[1] != want:
            raise field_error(f"layers[{k}]", "weights", f"must have {want} columns", layer.weights.shape)


def exact_run(layers: Sequence[LIFLayer], inputs: Spikes, t_end: float) -> list[Spikes]:
    """Exact spike times of every layer for input spikes ``inputs`` over ``[0, t_end)``; v starts at 0."""
    _check_input(inputs, layers)
    result = []
    spikes = inputs
    for layer in layers:
        ev_t, inv = np.unique(spikes.times, return_inverse=True)
        counts = np.zeros((spikes.n, ev_t.size))
        np.add.at(counts, (spikes.index, inv), 1.0)
        amp = (layer.r / layer.tau)[:, None] * (layer.weights @ counts)
        t, i = _exact_layer(ev_t, amp, layer.tau, layer.v_leak, layer.v_threshold, layer.v_reset, t_end)
        order = np.lexsort((i, t))
        spikes = Spikes(times=t[order], index=i[order], n=layer.weights.shape[0])
        result.append(spikes)
    return result


def euler_run(layers: Sequence[LIFLayer], inputs: Spikes, t_end: float, dt: float) -> list[Spikes]:
    """Forward-Euler run at step ``dt``; spikes of step ``k`` are reported at ``k dt``."""
    _check_input(inputs, layers)
    steps = math.ceil(t_end / dt)
    step_of = np.maximum(np.ceil(inputs.times / dt - 1e-9).astype(np.int64), 1)
    keep = step_of <= steps
    x = np.zeros((steps + 1, inputs.n))
    np.add.at(x, (step_of[keep], inputs.index[keep]), 1.0)
    result = []
    for layer in layers:
        drive = (x @ layer.weights.T) * (layer.r / layer.tau)
        v = np.zeros(layer.weights.shape[0])
        s = np.zeros_like(drive)
        for k in range(1, steps + 1):
            v = v + dt / layer.tau * (layer.v_leak - v) + drive[k]
            fired = v > layer.v_threshold
            s[k] = fired
            v = np.where(fired, layer.v_reset, v)
        k_idx, i_idx = np.nonzero(s)
        result.append(Spikes(times=k_idx * dt, index=i_idx, n=layer.weights.shape[0]))
        x = s
    return result


def spike_time_error(exact: Spikes, approx: Spikes) -> dict[str, float]:
    """Order-matched comparison per neuron: mean and max |t_approx - t_exact| over the first
    ``min(n_exact, n_approx)`` spikes of each neuron, and the relative spike-count error."""
    errs = [
        np.abs(a[: min(a.size, b.size)] - b[: min(a.size, b.size)])
        for a, b in zip(approx.trains(), exact.trains(), strict=True)
    ]
    e = np.concatenate(errs) if errs else np.zeros(0)
    n_exact = exact.times.size
    count_diff = sum(abs(a.size - b.size) for a, b in zip(approx.trains(), exact.trains(), strict=True))
    return {
        "mean_abs_time_error": float(e.mean()) if e.size else float("nan"),
        "max_abs_time_error": float(e.max()) if e.size else float("nan"),
        "count_error": float(count_diff / max(n_exact, 1)),
        "n_exact": float(n_exact),
        "n_approx": float(approx.times.size),
    }


def discretization_error(
    layers: Sequence[LIFLayer], inputs: Spikes, t_end: float, dts: Sequence[float]
) -> list[dict[str, float]]:
    """Spike-time error of the last layer of forward-Euler runs vs the exact run, one row per ``dt``."""
    exact = exact_run(layers, inputs, t_end)[-1]
    return [
        {"dt": float(dt), **spike_time_error(exact, euler_run(layers, inputs, t_end, dt)[-1])} for dt in dts
    ]
