"""The layer chain of a user's class-based ``nn.Module``, read from the order its ``forward`` calls them.

API::

    trace_layers(model, input_shape) -> [(name, module), ...]   # in call order, nn.Flatten inserted for views

A module's declaration order (``model.children()``) says nothing about how ``forward`` wires them, so
the chain is traced: ``forward`` runs once on a random sample of one time step (batch 1; a model whose
forward loops over time gets a sequence of length 1), with hooks on its *units* (framework neurons from
snnTorch, Norse or spikeport, recurrent cells included, and torch modules without children). The trace
is accepted only when the calls form one chain: every unit is called once, the first takes the model's
input (or a view of it), each next one takes the previous unit's output itself (a neuron's spikes where
it returns ``(spikes, state)``) or a flattening view of it (``x.view(B, -1)``, which becomes an
``nn.Flatten``), and the model returns the last unit's output. Anything else (a functional op or skip
connection between modules, a module used twice, a branch, an output that is not the last unit's)
raises :class:`UnsupportedError` naming the module, never a silently wrong graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from spikeport.emulator.errors import UnsupportedError
from torch import nn

_NEURON_PACKAGES = ("snntorch", "norse", "spikeport")


def _units(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Neuron modules (whole, with their recurrent weights) and torch leaves, in declaration order."""
    out: list[tuple[str, nn.Module]] = []
    skip: list[str] = []
    for name, m in model.named_modules():
        if not name or any(name.startswith(p + ".") for p in skip):
            continue
        if type(m).__module__.split(".")[0] in _NEURON_PACKAGES or not list(m.children()):
            out.append((name, m))
            skip.append(name)
    return out


def _first_tensor(x: Any) -> torch.Tensor | None:
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, tuple | list) and x and isinstance(x[0], torch.Tensor):
        return x[0]
    return None


def _run(model: nn.Module, shape: tuple[int, ...]) -> tuple[list[tuple[str, Any, Any]], torch.Tensor, Any]:
    """Call ``model`` on one step (batch 1), else on a sequence of one step; record the units' calls."""
    calls: list[tuple[str, Any, Any]] = []
    hooks = [
        m.register_forward_hook(lambda mod, args, out, n=n: calls.append((n, args, out)))
        for n, m in _units(model)
    ]
    errors = []
    try:
        for sample_shape in ((1, *shape), (1, 1, *shape)):
            calls.clear()
            x = torch.rand(sample_shape)
            try:
                with torch.no_grad():
                    return calls, x, model(x)
            except Exception as exc:  # a forward that wants the other layout
                errors.append(f"{sample_shape}: {type(exc).__name__}: {exc}")
    finally:
        for h in hooks:
            h.remove()
    raise UnsupportedError(
        f"{type(model).__name__}.forward: cannot be traced on one time step ({'; '.join(errors)})"
    )


def _link(prev: torch.Tensor, x: torch.Tensor | None) -> str:
    """How ``x`` follows from ``prev``: "same", "flatten" (a ``(B, -1)`` view) or "" (not a chain)."""
    if x is None:
        return ""
    if x is prev:
        return "same"
    same_storage = x.untyped_storage().data_ptr() == prev.untyped_storage().data_ptr()
    if same_storage and x.numel() == prev.numel() and x.ndim == 2 and x.shape[0] == prev.shape[0]:
        return "flatten" if x.shape != prev.shape else "same"
    return ""


def trace_layers(model: nn.Module, input_shape: Sequence[int]) -> list[tuple[str, nn.Module]]:
    """The units of ``model`` in the order its forward chains them (see the module docstring)."""
    import copy

    cls = type(model).__name__
    original = dict(model.named_modules())
    model = copy.deepcopy(model)  # tracing steps the neurons: the user's hidden states stay as they were
    calls, x, out = _run(model, tuple(int(s) for s in input_shape))
    if not calls:
        raise UnsupportedError(f"{cls}.forward: calls none of its modules")
    names = [n for n, _, _ in calls]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UnsupportedError(f"{cls}.{twice[0]}: called {names.count(twice[0])} times in one step (shared)")
    layers: list[tuple[str, nn.Module]] = []
    prev = x
    for k, (name, args, result) in enumerate(calls):
        arg = _first_tensor(args)
        if (
            k == 0 and arg is not None and arg is not x and _is_step_of(x, arg)
        ):  # x[t] of a (T, B, ...) sample
            prev = arg
        link = _link(prev, arg)
        if not link:
            what = "the model's input" if k == 0 else f"the output of {calls[k - 1][0]}"
            raise UnsupportedError(
                f"{cls}.{name}: its input is not {what} (a functional op, skip connection, branch or "
                f"other tensor between the modules); only a chain of modules can be exported"
            )
        if link == "flatten":
            layers.append((f"{name}:flatten", nn.Flatten()))
        layers.append((name, original[name]))
        produced = _first_tensor(result)
        if produced is None:
            raise UnsupportedError(f"{cls}.{name}: returns no tensor")
        prev = produced
    _check_output(cls, calls[-1][0], prev, _first_tensor(out))
    return layers


def _is_step_of(x: torch.Tensor, arg: Any) -> bool:
    """``arg`` is ``x[0]`` of the sequence sample (same storage, one step's elements)."""
    if not isinstance(arg, torch.Tensor):
        return False
    same = arg.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()
    return (
        same and x.ndim > 1 and arg.numel() == x[0].numel() and torch.equal(arg.reshape(-1), x[0].reshape(-1))
    )


def _check_output(cls: str, last: str, prev: torch.Tensor, out: torch.Tensor | None) -> None:
    """The model must return the last unit's output (possibly stacked over its one time step)."""
    if out is None or out.numel() != prev.numel() or not torch.equal(out.reshape(-1), prev.reshape(-1)):
        raise UnsupportedError(
            f"{cls}.forward: returns something other than the output of its last module {last} "
            f"(only a chain of modules whose last output is the model's can be exported)"
        )
