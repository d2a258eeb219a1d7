"""What a run returns, whichever engine or backend ran it.

``outputs`` maps ``"<group>/<variable>"`` to an array of shape ``(B, T, n)``: batch, time step
(index ``i`` is Lava's time step ``i + 1``), neuron. ``state`` lets a run be resumed where it stopped
(engine-specific; ``None`` where a backend cannot resume). ``counters`` holds activity counts when
asked for (see :mod:`spikeport.emulator.energy.counters`). ``metadata`` says what ran: backend, engine, mode,
semantics of the source model, batch size and steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True, kw_only=True, eq=False)
class RunResult:
    outputs: Mapping[str, np.ndarray]
    state: Any = None
    counters: Any = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> np.ndarray:
        return self.outputs[key]

    def variables(self, group: str) -> list[str]:
        """Recorded variable names of ``group``."""
        return [k.split("/", 1)[1] for k in self.outputs if k.split("/", 1)[0] == group]

    def save_npz(self, path: str | Path, *, compress: bool = True) -> None:
        """Write one array per ``<group>/<variable>`` plus ``__metadata__`` (JSON) to ``path``, atomically
        (:mod:`spikeport.emulator.atomic`: temporary file in the folder, fsync, rename, umask mode);
        deflated (zlib level 1) unless ``compress=False``."""
        self.save(path, format="npz-compressed" if compress else "npz", obj="RunResult.save_npz")

    def save(
        self,
        path: str | Path,
        *,
        format: str = "npz",
        obj: str = "RunResult.save",
        dtypes: Mapping[str, Any] | None = None,
    ) -> None:
        """Write the outputs and metadata to ``path`` as ``npz`` (uncompressed, the fastest),
        ``npz-compressed``, ``h5`` or ``npy-dir`` (a folder of ``.npy``), atomically
        (:mod:`spikeport.emulator.result_files`; read back with ``load_result``). ``dtypes``: output name ->
        the dtype it is written as (cast chunk by chunk, without a full-size copy)."""
        from spikeport.emulator.result_files import save_arrays

        arrays = {k: np.asarray(v) for k, v in self.outputs.items()}
        save_arrays(path, arrays, self.metadata, fmt=format, obj=obj, casts=dtypes)


def load_result(path: str | Path, *, mmap: bool = False) -> RunResult:
    """The outputs and metadata of a result saved by :meth:`RunResult.save` in any format (``npz``,
    ``npz-compressed``, ``h5``, ``npy-dir``; ``mmap`` maps an ``npy-dir``'s arrays instead of reading
    them)."""
    from spikeport.emulator.result_files import load_arrays

    arrays, metadata = load_arrays(path, mmap=mmap)
    return RunResult(outputs=arrays, metadata=metadata)
