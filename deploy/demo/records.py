"""What the demo's stages share: its configuration, its data, the class decision rule and a stage timer.

Both :mod:`spikeport.demo.pipeline` (train, export, quantize) and :mod:`spikeport.demo.runs` (the runs and
the report) import these; neither imports the other's internals.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
from spikeport.emulator.errors import field_error

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class DemoConfig:
    out: Path = Path("spikeport-report")
    seed: int = 0
    steps: int = 16
    hidden: int = 64
    epochs: int = 12
    lava_samples: int = 64
    progress: bool | None = None  # None: only when stderr is a terminal

    def __post_init__(self) -> None:
        for name in ("steps", "hidden", "epochs"):
            if int(getattr(self, name)) < 1:
                raise field_error("DemoConfig", name, "must be >= 1", getattr(self, name))
        if self.lava_samples < 0:
            raise field_error("DemoConfig", "lava_samples", "must be >= 0", self.lava_samples)


@dataclass(frozen=True, kw_only=True)
class Data:
    x_train: np.ndarray  # (N, T, 64) spikes
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def predict(counts: np.ndarray) -> np.ndarray:
    """Class = output neuron with the most spikes (ties: lowest index)."""
    return np.argmax(counts, axis=-1)


def timed(log: dict[str, float], name: str, fn: Callable[[], T]) -> T:
    """``fn()``, with its wall time in seconds (3 decimals) stored as ``log[name]``."""
    t0 = time.perf_counter()
    out = fn()
    log[name] = round(time.perf_counter() - t0, 3)
    return out
