"""Step chunks sized by measured time (``spikeport.emulator.engines.chunking``), on a fake clock: every
step of the run takes ``per_step`` seconds."""

from __future__ import annotations

import itertools

import pytest
from spikeport.emulator.engines import chunking


class _Key:
    """A weakly referenceable key (a packed network stands here)."""


def _run(monkeypatch: pytest.MonkeyPatch, key: object, steps: int, per_step: float) -> list[tuple[int, int]]:
    clock = [0.0]
    monkeypatch.setattr(chunking.time, "perf_counter", lambda: clock[0])
    chunks = []
    for start, stop in chunking.timed_chunks(steps, key, "b1"):
        chunks.append((start, stop))
        clock[0] += (stop - start) * per_step
    return chunks


def test_chunks_cover_the_run_and_grow_by_at_most_growth(monkeypatch: pytest.MonkeyPatch) -> None:
    chunks = _run(monkeypatch, _Key(), 5000, 1e-6)
    assert chunks[0] == (0, chunking.FIRST) and chunks[-1][1] == 5000
    assert all(a[1] == b[0] for a, b in itertools.pairwise(chunks))
    sizes = [b - a for a, b in chunks]
    assert all(n <= m * chunking.GROWTH for m, n in itertools.pairwise(sizes))


def test_a_run_of_short_chunks_sets_the_rate_for_the_next_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each chunk is under the 20 ms a single measurement needs, but together the 12,000 steps take
    24 ms: the next run of the same key starts from that rate (500,000 steps/s x 0.25 s = 125,000
    steps), so it runs in one chunk."""
    key = _Key()
    first = _run(monkeypatch, key, 12_000, 2e-6)
    assert len(first) > 1 and all((b - a) * 2e-6 < chunking._MIN_MEASURE_S for a, b in first)
    assert _run(monkeypatch, key, 12_000, 2e-6) == [(0, 12_000)]
    assert len(_run(monkeypatch, _Key(), 12_000, 2e-6)) > 1  # another key knows nothing


def test_a_short_run_does_not_set_a_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    key = _Key()
    _run(monkeypatch, key, 100, 1e-6)  # 0.1 ms in all: timer noise, not a rate
    assert _run(monkeypatch, key, 100, 1e-6)[0] == (0, chunking.FIRST)
