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
    if isinstance(model, nn.Module):
        modules = list(model.modules())
    elif isinstance(model, Sequence):
        modules = list(model)
    else:
        raise field_error("sp.export", "model", "a torch module or a list of layers", type(model).__name__)
    for name in ("snntorch", "norse", "spikeport"):
        if any(type(m).__module__.split(".")[0] == name for m in modules):
            return name
    kinds = sorted({type(m).__name__ for m in modules})
    raise field_error("sp.export", "model", "no snnTorch, Norse or spikeport neuron found", kinds)


def _layers(model: Any, input_shape: Sequence[int]) -> list[Any]:
    """The model's layers in call order: a list, an ``nn.Sequential``, spikeport's ``SNN``, or a class-based
    ``nn.Module`` whose ``forward`` is traced (:func:`spikeport.nir.tracing.trace_layers`)."""
    from spikeport.quantize.training.neurons import SNN
    from torch import nn

    if isinstance(model, SNN):
        return list(model.layers)
    if isinstance(model, nn.Sequential):
        return list(model)
    if isinstance(model, nn.Module):
        from spikeport.nir.tracing import trace_layers

        return [m for _, m in trace_layers(model, input_shape)]
    return list(model)


def export(
    model: Any,
    input_shape: Sequence[int],
    semantics: Semantics | str | None = None,
    *,
    dt: float | None = None,
) -> Exported:
    """NIR graph and semantics of a trained model: spikeport's ``SNN``, or an snnTorch/Norse model (a list,
    an ``nn.Sequential``, or a class-based ``nn.Module`` whose forward chains its modules: traced in call
    order; anything else is refused naming the module).

    ``semantics`` applies to spikeport's modules (default: the module's own); snnTorch and Norse models carry
    their framework's convention (``dt`` overrides snnTorch's 1e-4).
    """
    from spikeport.quantize.semantics import semantics as named

    kind = _framework(model)
    if dt is not None and kind != "snntorch":
        raise field_error("sp.export", "dt", f"only for snnTorch models (this is a {kind} model)", dt)
    if kind == "spikeport":
        from spikeport.nir.export import export_nir

        sem = named(semantics) if isinstance(semantics, str) else semantics
        sem = sem if sem is not None else getattr(model, "semantics", None)
        if sem is None:
            raise field_error("sp.export", "semantics", "required for a list of spikeport layers", None)
        return Exported(export_nir(_layers(model, input_shape), sem, input_shape=input_shape), sem)
    if semantics is not None:
        raise field_error("sp.export", "semantics", f"fixed by {kind} (use dt= for snnTorch)", semantics)
    if kind == "snntorch":
        from spikeport.nir.frameworks import snntorch_to_nir

        return Exported(
            *snntorch_to_nir(_layers(model, input_shape), input_shape, dt=1e-4 if dt is None else dt)
        )
    from spikeport.nir.frameworks import norse_to_nir

    return Exported(*norse_to_nir(_layers(model, input_shape), input_shape))


def _emulator(net: Network, inputs: Any, **kw: Any) -> RunResult:
    from spikeport.emulator.engines.dispatch import run as run_emulator

    return run_emulator(net, inputs, **kw)


def _lava(net: Network, inputs: Any, **kw: Any) -> RunResult:
    from spikeport.lava.backend import run_lava

    return run_lava(net, inputs, **kw)


def _silent_inputs(net: Network, steps: Any) -> dict[str, Any]:
    """``sp.run(net, None, steps=T)``: every input group silent for ``T`` steps (a network driven by
    its biases, such as a netx file whose input neuron takes no spikes)."""
    import numpy as np

    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise field_error("sp.run", "steps", "an integer >= 1 when inputs is None", steps)
    return {
        g.name: np.zeros((1, steps, int(g.n)), np.int32 if g.num_message_bits else np.int8)
        for g in net.inputs
    }


#: backend name -> runner ``(net, inputs, **options) -> RunResult``
BACKENDS: dict[str, Callable[..., RunResult]] = {"emulator": _emulator, "lava": _lava}


def run(
    net: Network,
    inputs: Any,
    *,
    backend: str = "emulator",
    record: Sequence[str] = ("spikes",),
    client: Any = None,
    steps: int | None = None,
    **options: Any,
) -> RunResult:
    """Run an integer network on ``backend`` (``"emulator"`` or ``"lava"``).

    ``inputs`` are the integer arrays of :func:`spikeport.encode_inputs` (a dict per input group, or one array
    ``(B, T, n)``). ``options`` go to the backend: for the emulator ``mode``, ``overflow``, ``engine``,
    ``counters``, ``state``, ``progress``; for Lava ``progress`` and ``max_pack``. Outputs are
    ``"<group>/<variable>"`` -> ``(B, T, n)``, the same names and dtypes-by-value on every backend.

    ``inputs=None`` with ``steps=T`` runs ``T`` steps with every input group silent (a network driven by
    its biases, e.g. a netx file's input neuron).

    ``client``: a ``dask.distributed.Client``; the batch is then split into chunks run on its workers
    (``chunk_size=`` picks the chunk; see :mod:`spikeport.cluster`), with the same result.
    """
    if backend not in BACKENDS:
        raise field_error("sp.run", "backend", f"one of {sorted(BACKENDS)}", backend)
    if inputs is None:  # sp.run(net, None, steps=T): every input group silent (bias-driven networks)
        inputs = _silent_inputs(net, steps)
    elif steps is not None:
        raise field_error("sp.run", "steps", "only with inputs=None (the inputs give the steps)", steps)
    if client is not None:
        from spikeport.cluster import run_on_cluster

        runner = BACKENDS[backend]
        return run_on_cluster(net, inputs, client=client, runner=runner, record=tuple(record), **options)
    return BACKENDS[backend](net, inputs, record=tuple(record), **options)


def energy(
    net: Network,
    inputs: Any,
    result: RunResult | None = None,
    *,
    profiles: Sequence[str | Path | EnergyProfile] | None = None,
    chip: str | None = None,
) -> EnergyReport:
    """SynOps, NeuroBench ops and energy per inference of ``net`` on ``inputs`` under each profile.

    ``inputs`` are the integer inputs of :func:`spikeport.encode_inputs`; ``result`` a run of ``net`` on them
    that recorded every group's spikes (``v`` and ``u`` make the count of active updates exact). Without
    ``result`` the emulator runs first, recording all three. ``chip`` (``"loihi1"``/``"loihi2"``) counts
    messages on that chip's core placement. Print the report with ``sp.format_energy(rep)``.
    """
    from spikeport.report.energy import DEFAULT_PROFILES, report_from_run

    if result is None:
        result = _emulator(net, inputs, record=("spikes", "v", "u"))
    profs = DEFAULT_PROFILES if profiles is None else profiles
    return report_from_run(net, inputs, result, profiles=profs, chip=chip)
