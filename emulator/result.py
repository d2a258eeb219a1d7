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

    def save_npz(self, path: str | Path) -> None:
        """Write one array per ``<group>/<variable>`` plus ``__metadata__`` (JSON) to ``path``."""
        import json
        import os
        import tempfile

        from spikeport.emulator.errors import field_error

        target = Path(path)
        if not target.parent.is_dir():
            raise field_error("RunResult.save_npz", "path", "the folder must exist", str(target.parent))
        arrays = {k: np.asarray(v) for k, v in self.outputs.items()}
        arrays["__metadata__"] = np.array(json.dumps(dict(self.metadata), default=str))
        # write next to the target, then rename: a failed write leaves nothing half-written
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez_compressed(f, **arrays)  # type: ignore[arg-type]
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
