"""A small exported SNN and a rate-coded 4-class task, shared by the fine-tuning and write-back tests.
Imported by name (tests/conftest.py puts this folder on ``sys.path``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import spikeport as sp
import torch
from torch import nn


def two_layer_export() -> tuple[Any, Any]:
    """12 -> 16 LIF -> 4 LIF with weights doubled (so that it spikes), exported: ``(graph, semantics)``."""
    torch.manual_seed(0)
    model = sp.SNN(nn.Linear(12, 16), sp.LIF(16, beta=0.9), nn.Linear(16, 4), sp.LIF(4, beta=0.8))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(2.0)
    return sp.export(model, (12,))


def rate_task(n: int, steps: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` samples of 12 Bernoulli channels over ``steps``; class ``y`` raises every 4th channel's rate."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    rates = 0.15 + 0.5 * (np.arange(12)[None, :] % 4 == y[:, None])
    return (rng.random((n, steps, 12)) < rates[:, None, :]).astype(np.float64), y
