"""A trained ReLU network, read into the stages of a converted SNN (docs/seed-methods.md, "Hybrid
conversion and STDB (Rathi et al. 2020)").

:func:`ann_stages` walks a feed-forward torch ANN (``nn.Sequential``, nested ones flattened) and
returns its :class:`Stage` list: each stage is a run of linear layers (``nn.Linear``, ``nn.Conv2d``,
``nn.AvgPool2d``, ``nn.Flatten``) ended by a ``nn.ReLU`` (it becomes a spiking layer) or by the end of
the network (the readout, a non-spiking integrator). ``nn.Dropout`` is dropped (evaluation mode);
``nn.BatchNorm1d``/``nn.BatchNorm2d`` is folded into the linear layer just before it::

    s = gamma / sqrt(running_var + eps)
    W' = s W (per output channel),  b' = s (b - running_mean) + beta

Any other layer (``nn.MaxPool2d``, ``nn.Sigmoid``, ...) is refused with an :class:`UnsupportedError`
naming the layer. The ANN is never modified: every kept layer is a deep copy.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from spikeport.emulator.errors import UnsupportedError
from torch import nn

LINEAR = (nn.Linear, nn.Conv2d, nn.AvgPool2d, nn.Flatten)
DROPPED = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Identity)
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
SUPPORTED = "Linear, Conv2d, AvgPool2d, Flatten, ReLU, Dropout (dropped), BatchNorm1d/2d (folded)"


@dataclass
class Stage:
    """Linear layers, then a ReLU (``spiking=True``: an IF/LIF layer) or the readout."""

    ops: list[nn.Module]
    spiking: bool
    name: str  # the ANN layer (path) that ends the stage: its ReLU, or the last linear layer


def _leaves(module: nn.Module, prefix: str = "") -> Iterator[tuple[str, nn.Module]]:
    """(dotted path, layer) of a feed-forward network, nested ``nn.Sequential`` flattened."""
    if isinstance(module, nn.Sequential):
        for name, child in module.named_children():
            yield from _leaves(child, f"{prefix}{name}.")
        return
    yield prefix.rstrip(".") or type(module).__name__, module


def fold_batchnorm(layer: Any, bn: Any, where: str) -> nn.Module:
    """``layer`` (a copy, Linear or Conv2d) with the inference-mode batch norm ``bn`` folded in."""
    if not isinstance(layer, nn.Linear | nn.Conv2d):
        raise UnsupportedError(
            f"ANN layer {where} ({type(bn).__name__}): batch norm folds only into a Linear or Conv2d "
            f"just before it (got {type(layer).__name__})"
        )
    with torch.no_grad():
        var, mean = bn.running_var.double(), bn.running_mean.double()
        gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(var)
        beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(var)
        s = gamma / torch.sqrt(var + bn.eps)
        w = layer.weight.double() * s.reshape(-1, *([1] * (layer.weight.dim() - 1)))
        b = layer.bias.double() if layer.bias is not None else torch.zeros_like(var)
        if layer.bias is None:
            layer.bias = nn.Parameter(torch.zeros_like(layer.weight[:, 0].reshape(-1)))
        layer.weight.copy_(w.to(layer.weight.dtype))
        layer.bias.copy_((s * (b - mean) + beta).to(layer.bias.dtype))
    return layer


def _refuse(where: str, layer: nn.Module) -> UnsupportedError:
    kind = type(layer).__name__
    hint = " (max pooling has no rate-coded equivalent: use AvgPool2d)" if "MaxPool" in kind else ""
    return UnsupportedError(
        f"ANN layer {where} ({kind}): cannot be converted to a spiking layer{hint}; supported: {SUPPORTED}"
    )


def ann_stages(ann: nn.Module) -> list[Stage]:
    """The stages of a feed-forward ReLU network (see the module docstring)."""
    stages: list[Stage] = []
    ops: list[nn.Module] = []
    last = ""
    for where, layer in _leaves(ann):
        if isinstance(layer, DROPPED):
            continue
        if isinstance(layer, NORMS):
            if not ops:
                raise UnsupportedError(
                    f"ANN layer {where} ({type(layer).__name__}): no layer before it to fold into"
                )
            ops[-1] = fold_batchnorm(ops[-1], layer, where)
        elif isinstance(layer, nn.ReLU):
            if not any(isinstance(op, nn.Linear | nn.Conv2d | nn.AvgPool2d) for op in ops):
                raise UnsupportedError(f"ANN layer {where} (ReLU): needs a Linear or Conv2d before it")
            stages.append(Stage(ops=ops, spiking=True, name=where))
            ops = []
        elif isinstance(layer, LINEAR):
            ops.append(copy.deepcopy(layer))
            last = where
        else:
            raise _refuse(where, layer)
    if not any(isinstance(op, nn.Linear | nn.Conv2d) for op in ops):
        raise UnsupportedError(
            "ANN: must end with a Linear or Conv2d layer after its last ReLU (the class scores); "
            f"layers after the last ReLU: {[type(op).__name__ for op in ops]}"
        )
    stages.append(Stage(ops=ops, spiking=False, name=last))
    return stages
