"""Activity counters of a run (``run(..., counters=True)``), per sample.

- ``spike_counts[name]`` (B, n) int64: steps on which each input channel / neuron sent a nonzero message.
- ``payload_sums[name]`` (B, n): sum over steps of ``|message|`` (equals ``spike_counts`` for binary
  spikes; int64 in fixed mode, float64 in float mode).
- ``input_events[group]`` (B,) int64: sum over steps of the number of neurons whose ``a_in != 0``.
- ``steps``: the number of time steps counted.

SynOps follow from them as ``spike_counts[src] @ nonzero_fan_out[src]``
(docs/synops-energy.md, "Hardware-event SynOps").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, kw_only=True, eq=False)
class Counters:
    """Frozen activity counts of one run; arrays are read-only."""

    steps: int
    spike_counts: Mapping[str, np.ndarray]
    payload_sums: Mapping[str, np.ndarray]
    input_events: Mapping[str, np.ndarray]

    def total_spikes(self, name: str) -> np.ndarray:
        """Per-sample total of messages sent by ``name`` (B,)."""
        return self.spike_counts[name].sum(axis=1)


class CounterAccumulator:
    """Mutable running totals used by an engine while it steps; :meth:`freeze` gives ``Counters``."""

    def __init__(
        self, batch: int, senders: Mapping[str, int], receivers: Iterable[str], float_payload: bool
    ) -> None:
        self.steps = 0
        self.spikes: dict[str, np.ndarray] = {k: np.zeros((batch, n), np.int64) for k, n in senders.items()}
        ptype = np.float64 if float_payload else np.int64
        self.payload: dict[str, np.ndarray] = {k: np.zeros((batch, n), ptype) for k, n in senders.items()}
        self.events: dict[str, np.ndarray] = {k: np.zeros(batch, np.int64) for k in receivers}

    def add_message(self, name: str, msg: np.ndarray) -> None:
        self.spikes[name] += (msg != 0).astype(np.int64)
        total = self.payload[name]
        total += np.abs(msg).astype(total.dtype, copy=False)

    def add_input(self, name: str, a_in: np.ndarray) -> None:
        self.events[name] += np.count_nonzero(a_in, axis=1)

    def freeze(self) -> Counters:
        return make_counters(self.steps, self.spikes, self.payload, self.events)


def _read_only(d: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for k, v in d.items():
        a = np.array(v, copy=True)
        a.setflags(write=False)
        out[k] = a
    return out


def make_counters(
    steps: int,
    spikes: Mapping[str, np.ndarray],
    payload: Mapping[str, np.ndarray],
    events: Mapping[str, np.ndarray],
) -> Counters:
    """A frozen ``Counters`` holding read-only copies of the given totals."""
    return Counters(
        steps=int(steps),
        spike_counts=_read_only(spikes),
        payload_sums=_read_only(payload),
        input_events=_read_only(events),
    )
