"""SparseProp: exact event-based simulation of sparse balanced networks of LIF or QIF neurons.

After Engelken (NeurIPS 2023; docs/seed-methods.md, "SparseProp (Engelken 2023)").
``N`` inhibitory neurons, each projecting to ``K``
random targets (regenerated from ``seed`` per presynaptic neuron, never stored), pulse coupling of
strength ``-J0 / sqrt(K)`` and a constant external drive set so that the balanced mean field fires at
``rate`` Hz:

* LIF: ``tau dV/dt = -V + I``, threshold 1, reset 0, ``I = 1 + sqrt(K) J0 rate tau`` (suprathreshold,
  the excess balancing the mean inhibition). Phase = time since reset of the free neuron,
  ``V = I (1 - exp(-phi / tau))``; spike at ``phi_th = tau ln(I / (I - 1))``; a pulse ``dV`` maps
  ``phi -> -tau ln(exp(-phi / tau) + c)`` with ``c = -dV / I``.
* QIF (theta neuron): ``tau dV/dt = V**2 + I``, ``I = sqrt(K) J0 rate tau``, ``V = sqrt(I) tan(phi/2)``;
  phases in ``(-pi, pi]`` grow at ``2 sqrt(I) / tau`` rad/s; a pulse maps
  ``phi -> 2 atan(tan(phi / 2) + c)`` with ``c = dV / sqrt(I)``.

``simulate(net, n_spikes, method="heap")`` (indexed binary max-heap of phases) and ``method="tree"``
(tournament tree over neurons, O(1) expected per pulse, O(log N) per spike; for LIF the PTC is
applied in exponential coordinates, where it is an addition) cost O(K log N) per network spike; ``method="naive"`` is the O(N)-per-spike reference. The drive follows the balance
equation as in the paper's reference code; the measured rate of a finite network differs (see the
benchmark). Targets are drawn with replacement (multapses possible), unlike the paper's sampling.
All methods run the same arithmetic on the same connectivity, so LIF runs (stable dynamics) agree
spike for spike; QIF is chaotic (compare rates, CV).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from spikeport.emulator.continuous import sparseprop_kernels as kern
from spikeport.emulator.errors import field_error

Model = Literal["lif", "qif"]
Method = Literal["heap", "tree", "naive"]


@dataclass(frozen=True, kw_only=True)
class BalancedNetwork:
    """Parameters of the balanced inhibitory network (defaults: the paper's)."""

    model: Model = "lif"
    n: int = 100_000
    k: int = 100
    j0: float = 1.0
    rate: float = 1.0
    tau: float = 0.01
    seed: int = 0

    def __post_init__(self) -> None:
        obj = "BalancedNetwork"
        if self.model not in ("lif", "qif"):
            raise field_error(obj, "model", "must be 'lif' or 'qif'", self.model)
        if not 2 <= int(self.n) < 2**31:
            raise field_error(obj, "n", "must be in [2, 2**31)", self.n)
        if not 1 <= int(self.k) < int(self.n):
            raise field_error(obj, "k", "must be in [1, n)", self.k)
        for name in ("j0", "rate", "tau"):
            if not getattr(self, name) > 0:
                raise field_error(obj, name, "must be > 0", getattr(self, name))
        if not 0 <= int(self.seed) < 2**63:
            raise field_error(obj, "seed", "must be in [0, 2**63)", self.seed)

    @property
    def drive(self) -> float:
        """External drive ``I`` (units of the threshold for LIF)."""
        balance = math.sqrt(self.k) * self.j0 * self.rate * self.tau
        return 1.0 + balance if self.model == "lif" else balance

    @property
    def pulse(self) -> float:
        """Voltage jump ``dV = -J0 / sqrt(K)`` per received spike."""
        return -self.j0 / math.sqrt(self.k)

    def _consts(self) -> tuple[int, float, float, float, float]:
        """(model code, PTC c, phase threshold, reset phase, phase speed per second)."""
        i = self.drive
        if self.model == "lif":
            return kern.LIF, -self.pulse / i, self.tau * math.log(i / (i - 1.0)), 0.0, 1.0
        return kern.QIF, self.pulse / math.sqrt(i), math.pi, -math.pi, 2.0 * math.sqrt(i) / self.tau

    def initial_phases(self, seed: int = 1) -> np.ndarray:
        """Phases drawn uniformly over one free period (``numpy.random.default_rng(seed)``)."""
        _, _, th, reset, _ = self._consts()
        return np.random.default_rng(seed).uniform(reset, th, int(self.n))

    def targets(self, j: int) -> np.ndarray:
        """Postsynaptic neurons of ``j`` (regenerated from the seed)."""
        return np.array([kern.target(self.seed, j, q, self.n) for q in range(self.k)])


@dataclass(frozen=True, kw_only=True)
class SpikeRecord:
    """Network spikes in time order: ``times`` (s) and ``neurons``; ``phases`` at the last spike."""

    times: np.ndarray
    neurons: np.ndarray
    phases: np.ndarray
    n: int

    @property
    def rate(self) -> float:
        """Mean rate (Hz) over the simulated time."""
        return float(self.times.size / (self.n * self.times[-1])) if self.times.size else 0.0

    def isi_cv(self, min_spikes: int = 3) -> float:
        """Mean over neurons (with >= ``min_spikes`` spikes) of the coefficient of variation of ISIs."""
        order = np.lexsort((self.times, self.neurons))
        nrn, t = self.neurons[order], self.times[order]
        isi = np.diff(t)
        same = nrn[1:] == nrn[:-1]
        isi, owner = isi[same], nrn[1:][same]
        counts = np.bincount(owner, minlength=self.n)
        keep = counts >= max(min_spikes - 1, 2)
        if not keep.any():
            return float("nan")
        s1 = np.bincount(owner, isi, self.n)
        s2 = np.bincount(owner, isi * isi, self.n)
        mean = s1[keep] / counts[keep]
        var = np.maximum(s2[keep] / counts[keep] - mean**2, 0.0)
        return float(np.mean(np.sqrt(var) / mean))


def simulate(
    net: BalancedNetwork,
    n_spikes: int,
    *,
    method: Method = "tree",
    phases: np.ndarray | None = None,
    seed_ic: int = 1,
) -> SpikeRecord:
    """Run ``n_spikes`` network spikes from ``phases`` (default: ``net.initial_phases(seed_ic)``).

    The offset of the heap/tree methods is folded back into the stored phases every 4 free periods
    (an O(N) pass, amortized over the many spikes in between) to keep its rounding error small.
    """
    if int(n_spikes) < 1:
        raise field_error("simulate", "n_spikes", "must be >= 1", n_spikes)
    phi0 = net.initial_phases(seed_ic) if phases is None else np.array(phases, dtype=np.float64)
    if phi0.shape != (net.n,):
        raise field_error("simulate", "phases", f"must have shape ({net.n},)", phi0.shape)
    model, c, th, reset, speed = net._consts()
    args = (model, phi0, int(net.k), int(net.seed), c, net.tau, th, reset, speed)
    renorm = 4.0 * (th - reset)
    if method == "tree" and model == kern.LIF:
        times, who, phi = kern.lif_tree_run(
            phi0, int(net.k), int(net.seed), c, net.tau, th, renorm, int(n_spikes)
        )
    elif method in ("heap", "tree"):
        run = kern.heap_run if method == "heap" else kern.tree_run
        times, who, phi = run(*args, renorm, int(n_spikes))
    elif method == "naive":
        times, who, phi = kern.naive_run(*args, int(n_spikes))
    else:
        raise field_error("simulate", "method", "must be 'heap', 'tree' or 'naive'", method)
    return SpikeRecord(times=times, neurons=who, phases=phi, n=int(net.n))
