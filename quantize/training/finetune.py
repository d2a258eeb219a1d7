"""Fine-tune a quantized network on its own integer arithmetic (:class:`.qat.IntegerSNN`).

API::

    from spikeport.quantize.training.finetune import fine_tune, fine_tune_graph
    net, twin, report = quantize_pair(graph, sem, mode="shift", calibration=x_cal)
    tuned, log = fine_tune(net, x_train, y_train, twin=twin)     # a Network: run it anywhere
    tuned, report, log = fine_tune_graph(graph, sem, x_train, y_train, mode="fixed", calibration=x_cal)
    new_graph = finetuned_graph(graph, sem, tuned)   # .writeback: the float NIR graph, tuned weights

Inputs ``x`` are the float inputs ``(N, T, n)`` that :func:`spikeport.quantize.encode_inputs` takes (they
are encoded and padded by the deepest group's lag, as an emulator run of the network would be); the
class of a sample is the readout group's neuron with the most spikes over the ``T`` aligned steps (ties:
lowest index). The loss is the cross-entropy of those counts (times ``count_gain``). Training is Adam on
the shadow mantissas, minibatches drawn with a seeded generator; after every epoch the exact accuracy
on the training data is measured with the integer forward pass and the best network is kept (the
untuned one included), so fine-tuning never lowers the training accuracy. ``validation > 0`` holds
out that fraction of the data (its end) and picks the epoch by the accuracy there instead.

Only the connections that stand for NIR weights are trained (``nir_weights_only``, default): the
delayed-reset corrections (``G->G~reset``, part of the neuron model) and the bias unit's connections
(``~bias->G``, a bias the writer does not write back) keep their mantissas, so that
:func:`~.writeback.finetuned_graph` holds everything that was tuned and quantizing that graph with the
tuned network's scales gives back the tuned network exactly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from spikeport.emulator.errors import field_error
from spikeport.emulator.network import Network
from spikeport.quantize.training.qat import IntegerSNN


@dataclass(frozen=True, kw_only=True)
class FineTuneConfig:
    """Epochs, Adam learning rate (in mantissa units), minibatch size, seed, surrogate slope."""

    epochs: int = 4
    lr: float = 0.5
    batch: int = 64
    seed: int = 0
    slope: float = 5.0
    count_gain: float = 1.0
    validation: float = 0.0  # fraction of (x, y), taken from the end, held out to pick the epoch
    sparse_grad: float | None = None  # B_th (units of the threshold): sparse backward (.sparse_qat)
    nir_weights_only: bool = True  # freeze reset corrections and bias-unit connections (module docstring)

    def __post_init__(self) -> None:
        for name in ("epochs", "batch"):
            if int(getattr(self, name)) < 1:
                raise field_error("FineTuneConfig", name, "must be >= 1", getattr(self, name))
        if not self.lr > 0:
            raise field_error("FineTuneConfig", "lr", "must be > 0", self.lr)
        if not 0 <= self.validation < 1:
            raise field_error("FineTuneConfig", "validation", "must be in [0, 1)", self.validation)


@dataclass(frozen=True, kw_only=True)
class FineTuneLog:
    """Per epoch (0 = untuned) the mean loss and the exact training accuracy; the epoch kept."""

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    best_epoch: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"loss": self.loss, "accuracy": self.accuracy, "best_epoch": self.best_epoch}


def readout(net: Network) -> tuple[str, int, int]:
    """``(group, lag, pad)``: the network's single output group, its lag and the largest lag."""
    outs = net.metadata.get("outputs", {})
    groups = net.metadata.get("groups", {})
    if len(outs) != 1:
        raise field_error("fine_tune", "net.metadata['outputs']", "must name exactly one output", list(outs))
    (spec,) = outs.values()
    name = str(spec["group"])
    pad = max(int(g["lag"]) for g in groups.values())
    return name, int(groups[name]["lag"]), pad


def counts(model: IntegerSNN, x_int: Any, group: str, lag: int, steps: int) -> torch.Tensor:
    """Output spike counts over the aligned window ``[lag, lag + steps)``."""
    return model(x_int)[f"{group}/spikes"][:, lag : lag + steps].sum(1)


def exact_accuracy(model: IntegerSNN, x_int: Any, y: np.ndarray, steps: int, chunk: int = 256) -> float:
    """Accuracy of the integer forward pass (what the emulator computes) on encoded inputs."""
    group, lag, _ = readout(model.net)
    hits = 0
    with torch.no_grad():
        for k in range(0, len(y), chunk):
            sub = {name: a[k : k + chunk] for name, a in x_int.items()}
            c = counts(model, sub, group, lag, steps).numpy()
            hits += int(np.sum(np.argmax(c, axis=1) == y[k : k + chunk]))
    return hits / max(len(y), 1)


def fine_tune(
    net: Network,
    x: Any,
    y: Any,
    *,
    twin: Network | None = None,
    mode: str | None = None,
    config: FineTuneConfig | None = None,
) -> tuple[Network, FineTuneLog]:
    """Fine-tune ``net``'s mantissas on ``(x, y)``; returns the best network and the log."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one summation order for the gradients: the same run on any machine
    try:
        return _fine_tune(net, x, y, twin, mode, config or FineTuneConfig())
    finally:
        torch.set_num_threads(threads)


def _fine_tune(
    net: Network, x: Any, y: Any, twin: Network | None, mode: str | None, cfg: FineTuneConfig
) -> tuple[Network, FineTuneLog]:
    from spikeport.quantize.quantize_nir import encode_inputs

    mode = mode or str(net.metadata.get("quantizer", {}).get("mode", "fixed"))
    y = np.asarray(y, dtype=np.int64)
    x_int = encode_inputs(net, x, pad=readout(net)[2])
    steps = int(np.asarray(x).shape[1]) if not isinstance(x, dict) else int(next(iter(x.values())).shape[1])
    n_val = round(len(y) * cfg.validation)
    fit = {k: a[: len(y) - n_val] for k, a in x_int.items()}, y[: len(y) - n_val]
    val = ({k: a[len(y) - n_val :] for k, a in x_int.items()}, y[len(y) - n_val :]) if n_val else fit
    model = IntegerSNN(net, mode=mode, twin=twin, slope=cfg.slope, sparse_grad=cfg.sparse_grad)
    best = (exact_accuracy(model, *val, steps), 0, model.to_network())
    log = FineTuneLog(loss=[float("nan")], accuracy=[best[0]])
    opt = torch.optim.Adam(trainable_parameters(model, cfg.nir_weights_only), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    for epoch in range(1, cfg.epochs + 1):
        log.loss.append(_epoch(model, opt, *fit, steps, cfg, gen))
        log.accuracy.append(exact_accuracy(model, *val, steps))
        if log.accuracy[-1] > best[0]:
            best = (log.accuracy[-1], epoch, model.to_network())
    tuned = best[2]
    log = FineTuneLog(loss=log.loss, accuracy=log.accuracy, best_epoch=best[1])
    meta = {**tuned.metadata, "fine_tune": {"mode": mode, **log.to_dict()}}
    return dataclasses.replace(tuned, metadata=meta), log


def is_nir_weight(name: str) -> bool:
    """Whether the connection ``name`` stands for a NIR weight node (not a ``~reset`` correction nor a
    ``~bias`` unit connection): what :func:`~.writeback.finetuned_graph` writes back."""
    return "~" not in name


def trainable_parameters(model: IntegerSNN, nir_weights_only: bool = True) -> list[torch.nn.Parameter]:
    """The shadow mantissas fine-tuning trains: every connection's, or only the NIR weights'."""
    shadows = list(model.shadow.values())  # in the order of model.net.connections
    if not nir_weights_only:
        return shadows
    return [p for c, p in zip(model.net.connections, shadows, strict=True) if is_nir_weight(c.name)]


def _epoch(
    model: IntegerSNN,
    opt: torch.optim.Optimizer,
    x_int: dict[str, np.ndarray],
    y: np.ndarray,
    steps: int,
    cfg: FineTuneConfig,
    gen: torch.Generator,
) -> float:
    """One pass over ``(x_int, y)`` in seeded minibatches; the mean loss."""
    group, lag, _ = readout(model.net)
    perm = torch.randperm(len(y), generator=gen).numpy()
    yt = torch.as_tensor(y)
    total = 0.0
    for k in range(0, len(y), cfg.batch):
        idx = perm[k : k + cfg.batch]
        sub = {name: a[idx] for name, a in x_int.items()}
        out = counts(model, sub, group, lag, steps) * cfg.count_gain
        loss = torch.nn.functional.cross_entropy(out, yt[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += float(loss.detach()) * len(idx)
    return total / max(len(y), 1)


def fine_tune_graph(
    graph: Any,
    semantics: Any,
    x: Any,
    y: Any,
    *,
    mode: str = "fixed",
    calibration: Any = None,
    config: FineTuneConfig | None = None,
    **quantize_options: Any,
) -> tuple[Network, Any, FineTuneLog]:
    """Quantize a float NIR graph (snnTorch, Norse, spikeport exports) and fine-tune the result:
    ``(network, quantization report, log)``; calibration defaults to the first 256 samples of ``x``."""
    from spikeport.quantize.quantize_nir import quantize_pair

    cal = x[:256] if calibration is None else calibration
    net, twin, report = quantize_pair(graph, semantics, mode=mode, calibration=cal, **quantize_options)
    tuned, log = fine_tune(net, x, y, twin=twin, mode=mode, config=config)
    return tuned, report, log
