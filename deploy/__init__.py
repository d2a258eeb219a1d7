"""spikeport: take trained spiking neural networks to neuromorphic hardware.

``import spikeport as sp`` is the front door; every name below loads its module on first use, so importing
spikeport (and ``spikeport --help``) loads neither torch, nir, Lava nor numba::

    graph, sem = sp.read_nir("model.nir")            # or sp.export(torch_model, input_shape)
    net, report = sp.quantize(graph, sem, calibration=x)
    xi = sp.encode_inputs(net, x, pad=2)
    out = sp.run(net, xi)                             # backend="lava" runs the same network in Lava
    ref = sp.run_nir(graph, x, sem)                   # the float reference
    print(sp.format_comparison(sp.compare(graph, net, x, sem)))
    print(sp.format_energy(sp.energy(net, xi)))

The layers underneath: ``spikeport.emulator`` (the hardware model), ``spikeport.quantize`` (float to
integer), and the modules of this package (NIR, reference run, Lava, reports, CLI); see docs/architecture.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spikeport.api import BACKENDS as BACKENDS
    from spikeport.api import Exported as Exported
    from spikeport.api import energy as energy
    from spikeport.api import export as export
    from spikeport.api import run as run
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
    from spikeport.emulator.result import RunResult as RunResult
    from spikeport.nir.io import NIRFileError as NIRFileError
    from spikeport.nir.io import NIRRepairWarning as NIRRepairWarning
    from spikeport.nir.io import read_nir as read_nir
    from spikeport.nir.io import suggest_convention as suggest_convention
    from spikeport.nir.io import write_nir as write_nir
    from spikeport.quantize.conversion.convert import convert as convert
    from spikeport.quantize.quantize_nir import encode_inputs as encode_inputs
    from spikeport.quantize.quantize_nir import quantize as quantize
    from spikeport.quantize.quantize_nir import quantize_pair as quantize_pair
    from spikeport.quantize.report import QuantReport as QuantReport
    from spikeport.quantize.semantics import Semantics as Semantics
    from spikeport.quantize.semantics import semantics as semantics
    from spikeport.quantize.training.neurons import IF as IF
    from spikeport.quantize.training.neurons import LIF as LIF
    from spikeport.quantize.training.neurons import SNN as SNN
    from spikeport.quantize.training.neurons import CubaLIF as CubaLIF
    from spikeport.reference.run import run_nir as run_nir
    from spikeport.report.compare import compare as compare
    from spikeport.report.compare import format_report as format_comparison  # noqa: F401 (lazy re-export)
    from spikeport.report.energy import EnergyReport as EnergyReport
    from spikeport.report.energy import format_text as format_energy  # noqa: F401 (lazy re-export)

#: public name -> "module:attribute", imported on first use
_LAZY: dict[str, str] = {
    "read_nir": "spikeport.nir.io:read_nir",
    "write_nir": "spikeport.nir.io:write_nir",
    "suggest_convention": "spikeport.nir.io:suggest_convention",
    "NIRFileError": "spikeport.nir.io:NIRFileError",
    "NIRRepairWarning": "spikeport.nir.io:NIRRepairWarning",
    "export": "spikeport.api:export",
    "Exported": "spikeport.api:Exported",
    "run": "spikeport.api:run",
    "energy": "spikeport.api:energy",
    "BACKENDS": "spikeport.api:BACKENDS",
    "semantics": "spikeport.quantize.semantics:semantics",
    "Semantics": "spikeport.quantize.semantics:Semantics",
    "quantize": "spikeport.quantize.quantize_nir:quantize",
    "quantize_pair": "spikeport.quantize.quantize_nir:quantize_pair",
    "encode_inputs": "spikeport.quantize.quantize_nir:encode_inputs",
    "convert": "spikeport.quantize.conversion.convert:convert",
    "QuantReport": "spikeport.quantize.report:QuantReport",
    "run_nir": "spikeport.reference.run:run_nir",
    "compare": "spikeport.report.compare:compare",
    "format_comparison": "spikeport.report.compare:format_report",
    "format_energy": "spikeport.report.energy:format_text",
    "EnergyReport": "spikeport.report.energy:EnergyReport",
    "Network": "spikeport.emulator.network:Network",
    "InputGroup": "spikeport.emulator.network:InputGroup",
    "LIFGroup": "spikeport.emulator.network:LIFGroup",
    "TernaryLIFGroup": "spikeport.emulator.network:TernaryLIFGroup",
    "SigmaDeltaGroup": "spikeport.emulator.network:SigmaDeltaGroup",
    "PSNGroup": "spikeport.emulator.psn:PSNGroup",
    "Connection": "spikeport.emulator.network:Connection",
    "load_network": "spikeport.emulator.io:load_network",
    "read_netx": "spikeport.netx.read:read_netx",
    "write_netx": "spikeport.netx.write:write_netx",
    "resource_map": "spikeport.chip.resource_map:resource_map",
    "save_network": "spikeport.emulator.io:save_network",
    "RunResult": "spikeport.emulator.result:RunResult",
    "SpikeportError": "spikeport.emulator.errors:SpikeportError",
    "ValidationError": "spikeport.emulator.errors:ValidationError",
    "UnsupportedError": "spikeport.emulator.errors:UnsupportedError",
    "FixedPointOverflowError": "spikeport.emulator.errors:FixedPointOverflowError",
    "MissingDependencyError": "spikeport.emulator.errors:MissingDependencyError",
    "LIF": "spikeport.quantize.training.neurons:LIF",
    "CubaLIF": "spikeport.quantize.training.neurons:CubaLIF",
    "IF": "spikeport.quantize.training.neurons:IF",
    "SNN": "spikeport.quantize.training.neurons:SNN",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'spikeport' has no attribute {name!r}")
    module, attr = target.split(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
