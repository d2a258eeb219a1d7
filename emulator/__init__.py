"""spikeport.emulator: the Loihi-style hardware model (records, bit widths, engines, counters)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spikeport.emulator.energy.counters import Counters as Counters
    from spikeport.emulator.engines.dispatch import ENGINES as ENGINES
    from spikeport.emulator.engines.dispatch import register_engine as register_engine
    from spikeport.emulator.engines.dispatch import run as run
    from spikeport.emulator.errors import FixedPointOverflowError as FixedPointOverflowError
    from spikeport.emulator.errors import MissingDependencyError as MissingDependencyError
    from spikeport.emulator.errors import SpikeportError as SpikeportError
    from spikeport.emulator.errors import UnsupportedError as UnsupportedError
    from spikeport.emulator.errors import ValidationError as ValidationError
    from spikeport.emulator.io import load_network as load_network
    from spikeport.emulator.io import save_network as save_network
    from spikeport.emulator.network import Connection as Connection
    from spikeport.emulator.network import InputGroup as InputGroup
    from spikeport.emulator.network import LIFGroup as LIFGroup
    from spikeport.emulator.network import Network as Network
    from spikeport.emulator.network import SigmaDeltaGroup as SigmaDeltaGroup
    from spikeport.emulator.network import TernaryLIFGroup as TernaryLIFGroup
    from spikeport.emulator.psn import PSNGroup as PSNGroup

#: public name -> "module:attribute", imported on first use (numba, nir and torch load only when used)
_LAZY: dict[str, str] = {
    "Counters": "spikeport.emulator.energy.counters:Counters",
    "ENGINES": "spikeport.emulator.engines.dispatch:ENGINES",
    "register_engine": "spikeport.emulator.engines.dispatch:register_engine",
    "run": "spikeport.emulator.engines.dispatch:run",
    "FixedPointOverflowError": "spikeport.emulator.errors:FixedPointOverflowError",
    "MissingDependencyError": "spikeport.emulator.errors:MissingDependencyError",
    "SpikeportError": "spikeport.emulator.errors:SpikeportError",
    "UnsupportedError": "spikeport.emulator.errors:UnsupportedError",
    "ValidationError": "spikeport.emulator.errors:ValidationError",
    "load_network": "spikeport.emulator.io:load_network",
    "save_network": "spikeport.emulator.io:save_network",
    "Connection": "spikeport.emulator.network:Connection",
    "InputGroup": "spikeport.emulator.network:InputGroup",
    "LIFGroup": "spikeport.emulator.network:LIFGroup",
    "Network": "spikeport.emulator.network:Network",
    "SigmaDeltaGroup": "spikeport.emulator.network:SigmaDeltaGroup",
    "TernaryLIFGroup": "spikeport.emulator.network:TernaryLIFGroup",
    "PSNGroup": "spikeport.emulator.psn:PSNGroup",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'spikeport.emulator' has no attribute {name!r}")
    module, attr = target.split(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
