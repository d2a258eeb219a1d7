"""The short verbs of ``import spikeport as sp`` that are more than a re-export: ``export``, ``run``, ``energy``.

Each one dispatches to the layer that does the work and adds nothing of its own but the choice:

- :func:`export` picks the exporter by the model's framework (spikeport's :class:`SNN`, snnTorch, Norse) and
  always returns ``(graph, semantics)``;
- :func:`run` runs an integer network on a backend from :data:`BACKENDS` (``"emulator"`` or ``"lava"``);
- :func:`energy` runs the emulator when no run is given and returns the energy report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from spikeport.emulator.errors import field_error

if TYPE_CHECKING:
    import nir
    from spikeport.emulator.energy.estimate import EnergyProfile
    from spikeport.emulator.network import Network
    from spikeport.emulator.result import RunResult
    from spikeport.quantize.semantics import Semantics
    from spikeport.report.energy import EnergyReport


class Exported(NamedTuple):
    """What :func:`export` returns: the NIR graph and the semantics it was trained under."""

    graph: nir.NIRGraph
    semantics: Semantics


def _framework(model: Any) -> str:
    """``"spikeport"``, ``"snntorch"`` or ``"norse"``: the package the model's neurons come from."""
    from spikeport.quantize.training.neurons import SNN
    from torch import nn

    if isinstance(model, SNN):
        return "spikeport"
    modules = list(model.modules()) if isinstance(model, nn.Module) else list(model)
    for name in ("snntorch", "norse", "spikeport"):
        if any(type(m).__module__.split(".")[0] == name for m in modules):
            return name
    kinds = sorted({type(m).__name__ for m in modules})
    raise field_error("sp.export", "model", "no snnTorch, Norse or spikeport neuron found", kinds)


def _layers(model: Any) -> list[Any]:
    from torch import nn

    if isinstance(model, nn.Sequential):
        return list(model)
    if isinstance(model, nn.Module):
        raise field_error("sp.export", "model", "an nn.Sequential or a list of layers", type(model).__name__)
    return list(model)


def export(
    model: Any,
    input_shape: Sequence[int],
    semantics: Semantics | str | None = None,
    *,
    dt: float | None = None,
) -> Exported:
    """NIR graph and semantics of a trained model: spikeport's ``SNN``, or a sequential snnTorch/Norse model.

    ``semantics`` applies to spikeport's modules (default: the module's own); snnTorch and Norse models carry
    their framework's convention (``dt`` overrides snnTorch's 1e-4).
    """
    from spikeport.quantize.semantics import semantics as named

    kind = _framework(model)
    if kind == "spikeport":
        from spikeport.nir.export import export_nir

        sem = named(semantics) if isinstance(semantics, str) else semantics
        sem = sem if sem is not None else model.semantics
        return Exported(export_nir(model, sem, input_shape=input_shape), sem)
    if semantics is not None:
        raise field_error("sp.export", "semantics", f"fixed by {kind} (use dt= for snnTorch)", semantics)
    if kind == "snntorch":
        from spikeport.nir.frameworks import snntorch_to_nir

        return Exported(*snntorch_to_nir(_layers(model), input_shape, dt=1e-4 if dt is None else dt))
    from spikeport.nir.frameworks import norse_to_nir

    return Exported(*norse_to_nir(_layers(model), input_shape))


def _emulator(net: Network, inputs: Any, **kw: Any) -> RunResult:
    from spikeport.emulator.engines.dispatch import run as run_emulator

    return run_emulator(net, inputs, **kw)


def _lava(net: Network, inputs: Any, **kw: Any) -> RunResult:
    from spikeport.lava.backend import run_lava

    return run_lava(net, inputs, **kw)


#: backend name -> runner ``(net, inputs, **options) -> RunResult``
BACKENDS: dict[str, Callable[..., RunResult]] = {"emulator": _emulator, "lava": _lava}


def run(
    net: Network,
    inputs: Any,
    *,
    backend: str = "emulator",
    record: Sequence[str] = ("spikes",),
    **options: Any,
) -> RunResult:
    """Run an integer network on ``backend`` (``"emulator"`` or ``"lava"``).

    ``inputs`` are the integer arrays of :func:`spikeport.encode_inputs` (a dict per input group, or one array
    ``(B, T, n)``). ``options`` go to the backend: for the emulator ``mode``, ``overflow``, ``engine``,
    ``counters``, ``state``, ``progress``; for Lava ``progress`` and ``max_pack``. Outputs are
    ``"<group>/<variable>"`` -> ``(B, T, n)``, the same names and dtypes-by-value on every backend.
    """
    if backend not in BACKENDS:
        raise field_error("sp.run", "backend", f"one of {sorted(BACKENDS)}", backend)
    return BACKENDS[backend](net, inputs, record=tuple(record), **options)


def energy(
    net: Network,
    inputs: Any,
    result: RunResult | None = None,
    *,
    profiles: Sequence[str | Path | EnergyProfile] | None = None,
) -> EnergyReport:
    """SynOps, NeuroBench ops and energy per inference of ``net`` on ``inputs`` under each profile.

    Without ``result`` the emulator runs first (recording spikes, ``v`` and ``u``). Print the report with
    ``sp.format_energy(rep)``; ``rep.to_json()``-style data with ``spikeport.report.energy.to_json``.
    """
    from spikeport.report.energy import DEFAULT_PROFILES, report_from_run

    if result is None:
        result = _emulator(net, inputs, record=("spikes", "v", "u"))
    return report_from_run(net, inputs, result, profiles=DEFAULT_PROFILES if profiles is None else profiles)
