"""Step chunks sized by measured wall time, so that compiled loops return to Python often.

A compiled (numba) loop holds the interpreter until it returns: a pending ``SIGINT`` (Ctrl-C) is only
raised as ``KeyboardInterrupt`` after the call. Long runs are therefore cut into chunks of steps whose
wall time is about :data:`TARGET_S`; each chunk's size is the previous chunk's measured rate times the
target, growing at most :data:`GROWTH` times per chunk (the first call may include loading numba's
cache, which would make the first rate look low), starting from :data:`FIRST` steps, or from the
rate the last run of the same ``key`` (a packed network) and batch size measured (a chunk of at least
:data:`_MIN_MEASURE_S`, or else the whole run when its chunks were shorter but took that long together). The state between
chunks is the engine's resumable state, so results do not depend on the chunking.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Hashable, Iterator
from typing import Any

#: wall time one chunk aims at (Ctrl-C is answered within about this long)
TARGET_S = 0.25
#: steps of the first chunk
FIRST = 16
#: largest growth factor from one chunk to the next
GROWTH = 8
#: chunks shorter than this do not update the remembered rate (timer and call overheads dominate)
_MIN_MEASURE_S = 0.02

_RATES: weakref.WeakKeyDictionary[Any, dict[Hashable, float]] = weakref.WeakKeyDictionary()


def timed_chunks(steps: int, key: Any = None, variant: Hashable = None) -> Iterator[tuple[int, int]]:
    """Yield ``(start, stop)`` step ranges covering ``0..steps``; the caller runs each range before
    asking for the next one, and the time it took sizes the next range. ``key`` (weakly referenced)
    and ``variant`` (e.g. the batch size) name what the measured rate is remembered for. Module
    settings are read at each call (a benchmark sets ``TARGET_S = float("inf")`` for one call)."""
    target_s = TARGET_S
    rates = _RATES.setdefault(key, {}) if key is not None else {}
    known = rates.get(variant)
    first = FIRST if known is None else known * target_s
    start, size = 0, int(max(1, min(first if target_s != float("inf") else steps, steps)))
    if steps <= 0:
        yield 0, 0
        return
    total_s = 0.0
    while start < steps:
        stop = min(steps, start + size)
        t0 = time.perf_counter()
        yield start, stop
        elapsed = time.perf_counter() - t0
        total_s += elapsed
        done = stop - start
        rate = done / elapsed if elapsed > 0 else float("inf")
        if elapsed >= _MIN_MEASURE_S:
            rates[variant] = rate
        size = int(max(1, min(done * GROWTH, rate * target_s)))
        start = stop
    if total_s >= _MIN_MEASURE_S and known is None:  # short chunks, long enough together: the run's rate
        rates[variant] = steps / total_s
