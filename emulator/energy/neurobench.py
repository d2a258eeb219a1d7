"""NeuroBench-compatible operation counts (neurobench 2.3.0, ``metrics/workload/synaptic_operations.py``).

NeuroBench binarizes a layer's inputs and weights (nonzero -> 1), zeroes its bias, reruns the layer
and sums its output: that sum is the layer call's *effective* op count. The call's ops are booked as
ACs when every input value lies in {-1, 0, 1}, as MACs otherwise. *Dense* reruns the layer with all
weights and inputs set to 1. Counts are summed over time steps and divided by the number of samples.

For a :class:`~spikeport.emulator.network.Network` connection ``c`` with stored weights ``W`` and the
messages ``x[b, t, :]`` its source sends at step ``t``, this gives, per sample::

    effective[b] = sum_t sum_j [x[b, t, j] != 0] * nnz(W[:, j])
    booked as AC at (b, t) iff all x[b, t, :] in {-1, 0, 1}, else MAC
    dense[b]     = T * dense_synapses(c)   (target.n * source.n; nonzero edges for sparse=True)

Binarization uses the stored weights (NeuroBench sees the layer's own weights), not the weights after
Lava's LSB truncation that :mod:`spikeport.emulator.energy.synops` counts. NeuroBench classifies AC vs MAC
per layer call, i.e. over the whole batch at once; ``per_sample=True`` (the default) classifies each
sample on its own so that a sample's count does not depend on its batch mates; ``per_sample=False``
reproduces NeuroBench's batch-level rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from spikeport.emulator.energy.synops import dense_synapses
from spikeport.emulator.network import Network
from spikeport.emulator.sparse_weights import SparseWeights


@dataclass(frozen=True, kw_only=True, eq=False)
class NeuroBenchOps:
    """Per-sample effective ACs, effective MACs and dense ops (float64 arrays of shape (B,))."""

    effective_acs: np.ndarray
    effective_macs: np.ndarray
    dense: np.ndarray
    per_connection: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]]

    def per_sample(self) -> dict[str, float]:
        """NeuroBench's ``SynapticOperations.compute()`` keys: means over the samples."""
        return {
            "Effective_MACs": float(np.mean(self.effective_macs)),
            "Effective_ACs": float(np.mean(self.effective_acs)),
            "Dense": float(np.mean(self.dense)),
        }


def layer_ops(
    weights: np.ndarray | SparseWeights, x: np.ndarray, *, per_sample: bool = True
) -> tuple[np.ndarray, ...]:
    """NeuroBench's count for one linear layer ``W`` (out, in) fed ``x`` (B, T, in).

    Returns per-sample (effective ACs, effective MACs, dense) with dense = ``T * out * in``.
    """
    x = np.asarray(x, dtype=np.float64)
    if isinstance(weights, SparseWeights):
        nnz = weights.col_counts().astype(np.float64)
    else:
        nnz = np.count_nonzero(np.asarray(weights), axis=0).astype(np.float64)
    eff = (x != 0).astype(np.float64) @ nnz  # (B, T)
    spiking = np.all((x == 0) | (x == 1) | (x == -1), axis=2)  # (B, T)
    if not per_sample:
        spiking = np.broadcast_to(np.all(spiking, axis=0, keepdims=True), spiking.shape)
    acs = np.where(spiking, eff, 0.0).sum(axis=1)
    macs = np.where(spiking, 0.0, eff).sum(axis=1)
    dense = np.full(x.shape[0], float(x.shape[1] * weights.shape[0] * weights.shape[1]))
    return acs, macs, dense


def neurobench_ops(
    net: Network, spikes: Mapping[str, np.ndarray], *, per_sample: bool = True
) -> NeuroBenchOps:
    """NeuroBench's effective ACs / MACs / dense ops of a run, from its messages ``spikes[group]``
    (B, T, n), inputs included (see the module docstring for the formulas)."""
    per: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for c in net.connections:
        acs, macs, dense = layer_ops(c.weights, spikes[c.source], per_sample=per_sample)
        steps = np.asarray(spikes[c.source]).shape[1]
        per[c.name] = (acs, macs, np.full_like(dense, float(steps * dense_synapses(c))))
    b = np.asarray(next(iter(spikes.values()))).shape[0]
    zero = np.zeros(b)
    return NeuroBenchOps(
        effective_acs=sum((v[0] for v in per.values()), zero),
        effective_macs=sum((v[1] for v in per.values()), zero),
        dense=sum((v[2] for v in per.values()), zero),
        per_connection=per,
    )
