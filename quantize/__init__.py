"""spikeport.quantize: float NIR + semantics -> the emulator's integer network.

This package is callable: ``spikeport.quantize(graph, semantics, ...)`` is :func:`quantize`. The root package
``spikeport`` offers ``sp.quantize`` as a verb, and Python binds a loaded subpackage to its parent's attribute of
the same name, so whichever of the two ``sp.quantize`` holds, calling it quantizes.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spikeport.quantize.fixed_point import pow2_round as pow2_round
    from spikeport.quantize.fixed_point import quantize_weights as quantize_weights
    from spikeport.quantize.fixed_point import quantize_weights_pow2 as quantize_weights_pow2
    from spikeport.quantize.quant_warnings import WARNING_CODES as WARNING_CODES
    from spikeport.quantize.quant_warnings import QuantWarning as QuantWarning
    from spikeport.quantize.quantize_nir import encode_inputs as encode_inputs
    from spikeport.quantize.quantize_nir import quantize as quantize
    from spikeport.quantize.quantize_nir import quantize_pair as quantize_pair
    from spikeport.quantize.report import QuantReport as QuantReport

#: public name -> "module:attribute", imported on first use (numba, nir and torch load only when used)
_LAZY: dict[str, str] = {
    "pow2_round": "spikeport.quantize.fixed_point:pow2_round",
    "quantize_weights": "spikeport.quantize.fixed_point:quantize_weights",
    "quantize_weights_pow2": "spikeport.quantize.fixed_point:quantize_weights_pow2",
    "encode_inputs": "spikeport.quantize.quantize_nir:encode_inputs",
    "quantize": "spikeport.quantize.quantize_nir:quantize",
    "quantize_pair": "spikeport.quantize.quantize_nir:quantize_pair",
    "WARNING_CODES": "spikeport.quantize.quant_warnings:WARNING_CODES",
    "QuantReport": "spikeport.quantize.report:QuantReport",
    "QuantWarning": "spikeport.quantize.quant_warnings:QuantWarning",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'spikeport.quantize' has no attribute {name!r}")
    module, attr = target.split(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


class _CallablePackage(types.ModuleType):
    """The module type of this package: calling it calls :func:`quantize`."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.quantize(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
