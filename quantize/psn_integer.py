"""The integer form of a mul-free :class:`~spikeport.quantize.training.psn_net.SeqNet`, its own torch
integer inference, and the emulator network that runs it.

Per stage ``l`` (Xue et al. 2025; docs/seed-methods.md): the linear weights ``w ~ s m`` with integer
``m = round(w / s)`` in [-127, 127] are stored as Loihi 8-bit mantissas ``2 m`` (mixed-sign weights
keep 7 magnitude bits: Lava floors odd mantissas), so ``X_int = (2 m) @ S`` and ``X = (s / 2) X_int``.
The power-of-two kernel ``q = sign 2**e`` with ``e`` in ``[lo, lo + 8]`` becomes ``shift = e - lo``,
hence ``H = (s / 2) 2**lo H_int`` and ``H + b > 0`` exactly when
``H_int > vth = floor(-b / (s 2**(lo - 1)))``.

:func:`integer_forward` computes ``H_int`` with whole-sequence int64 tensor shifts (parallel in time,
torch); :func:`to_network` builds the emulator's :class:`~spikeport.emulator.psn.PSNGroup` network,
which steps through time with a ring of inputs (numpy). Equal spikes from the two are the bit-exactness
check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
from spikeport.emulator.errors import field_error
from spikeport.emulator.network import Connection, InputGroup, Network
from spikeport.emulator.psn import PSNGroup
from spikeport.quantize.training.psn import PSN, pow2_exponent_range
from spikeport.quantize.training.psn_net import WEIGHT_LEVELS, QuantLinear, SeqNet

_I32 = 1 << 31


@dataclass(frozen=True, kw_only=True)
class IntegerStage:
    """One stage: mantissas (out, in), kernel sign/shift (out, k), thresholds (out,), dilation."""

    weights: np.ndarray
    sign: np.ndarray
    shift: np.ndarray
    vth: np.ndarray
    dilation: int


@dataclass(frozen=True, kw_only=True)
class IntegerSeqNet:
    stages: tuple[IntegerStage, ...]
    readout: np.ndarray


def _mantissa(lin: QuantLinear) -> tuple[np.ndarray, float]:
    s = float(lin.scale())
    m = torch.round(lin.weight.detach() / s).clamp(-WEIGHT_LEVELS, WEIGHT_LEVELS)
    return 2 * m.to(torch.int64).numpy(), s


def _stage(lin: QuantLinear, neu: PSN) -> IntegerStage:
    w_int, s = _mantissa(lin)
    q = neu.kernel_weights().detach().double()
    lo, _ = pow2_exponent_range(neu.weight)
    sign = torch.sign(q).to(torch.int64)
    e = torch.log2(q.abs().clamp_min(2.0**-1000))
    shift = torch.where(sign != 0, torch.round(e) - lo, torch.zeros_like(e)).to(torch.int64)
    assert neu.bias is not None
    b = neu.bias.detach().double().numpy()
    vth = np.floor(-b / (s * math.ldexp(1.0, lo - 1)))
    return IntegerStage(
        weights=w_int,
        sign=sign.numpy(),
        shift=shift.numpy(),
        vth=np.clip(vth, -_I32, _I32 - 1).astype(np.int64),
        dilation=int(neu.dilation),
    )


def integer_model(model: SeqNet) -> IntegerSeqNet:
    """The integer stages of a mul-free ``SeqNet`` (after :meth:`SeqNet.make_mulfree`)."""
    if model.neuron != "mulfree_chw_psn":
        raise field_error("integer_model", "model.neuron", "must be 'mulfree_chw_psn'", model.neuron)
    pairs = [
        (cast(QuantLinear, lin), cast(PSN, neu))
        for lin, neu in zip(model.linears, model.neurons, strict=True)
    ]
    stages = tuple(_stage(lin, neu) for lin, neu in pairs)
    return IntegerSeqNet(stages=stages, readout=_mantissa(model.readout)[0])


def _wrap32(x: torch.Tensor) -> torch.Tensor:
    return ((x + _I32) & 0xFFFFFFFF) - _I32


def integer_forward(net: IntegerSeqNet, x: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Spikes of every stage ((B, T + L, n) int64) and integer logits (B, classes) of 0/1 input
    ``x`` (B, T, n_in), in torch int64: ``H = wrap32(sum_i sign_i (X[t - (k-1-i) d] << shift_i))``."""
    s = torch.as_tensor(np.asarray(x), dtype=torch.int64)
    s = torch.nn.functional.pad(s, (0, 0, 1, len(net.stages)))[:, :-1]  # pad L steps, delay 1
    out = []
    for st in net.stages:
        xin = _wrap32(s @ torch.as_tensor(st.weights).T)  # (B, T', out)
        sign, shift = torch.as_tensor(st.sign), torch.as_tensor(st.shift)
        k, steps = sign.shape[1], xin.shape[1]
        h = torch.zeros_like(xin)
        for i in range(k):
            lag = (k - 1 - i) * st.dilation
            past = torch.nn.functional.pad(xin, (0, 0, lag, 0))[:, :steps]
            h = h + sign[:, i] * torch.bitwise_left_shift(past, shift[:, i])
        spikes = (_wrap32(h) > torch.as_tensor(st.vth)).to(torch.int64)
        out.append(spikes.numpy())
        s = torch.nn.functional.pad(spikes, (0, 0, 1, 0))[:, :-1]
    logits = torch.as_tensor(out[-1]).sum(dim=1) @ torch.as_tensor(net.readout).T
    return out, logits.numpy()


def to_network(net: IntegerSeqNet, *, name: str = "psn") -> Network:
    """Input group ``in``, groups ``{name}{l}``, connections ``w{l}`` (one-step delay each)."""
    n_in = int(net.stages[0].weights.shape[1])
    groups: list[Any] = []
    conns: list[Connection] = []
    src = "in"
    for i, st in enumerate(net.stages):
        g = PSNGroup(
            name=f"{name}{i}",
            n=int(st.weights.shape[0]),
            k=int(st.sign.shape[1]),
            dilation=st.dilation,
            sign=st.sign,
            shift=st.shift,
            vth=st.vth,
        )
        groups.append(g)
        conns.append(Connection(name=f"w{i}", source=src, target=g.name, weights=st.weights))
        src = g.name
    return Network(
        inputs=(InputGroup(name="in", n=n_in),),
        groups=tuple(groups),
        connections=tuple(conns),
        metadata={"model": "mulfree_chw_psn", "readout_weights": np.asarray(net.readout).tolist()},
    )


def emulator_inputs(x: np.ndarray, layers: int) -> np.ndarray:
    """``x`` (B, T, n) padded with ``layers`` zero steps: the emulator then runs ``T + layers`` steps,
    and index ``i`` of every group equals index ``i`` of :func:`integer_forward`."""
    x = np.asarray(x)
    return np.concatenate([x, np.zeros((x.shape[0], layers, x.shape[2]), x.dtype)], axis=1).astype(np.int8)
