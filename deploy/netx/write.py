"""Write a spikeport :class:`~spikeport.emulator.network.Network` as a lava-dl netx file (``.net``).

What netx can express: one input, then a chain of neuron layers, each fed by the layer before it
(dense or conv, with optional delays) and optionally by itself (``dense_rec``); CUBA LIF neurons
(zero reset, no refractory period, ``bias_exp = 6``, state starting at 0, reset intervals only in
netx's per-layer scheme) and SDNN sigma-delta neurons (``spike_exp = state_exp = 6``, ReLU; a unit
``Sigma`` output layer); integer weights that netx's ``optimize_weight_bits`` and Lava's Dense keep
as they are. Everything else is refused by name (:class:`UnsupportedError`), before anything is
written. Shapes, conv geometry and the input transform come from the network's ``metadata["netx"]``
(as :func:`~spikeport.netx.read.read_netx` records them); without it every layer is 1-D dense.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from spikeport.emulator.errors import UnsupportedError, field_error
from spikeport.emulator.network import Connection, LIFGroup, Network, SigmaDeltaGroup, TernaryLIFGroup
from spikeport.netx.layout import ConvGeometry, conv_kernel, torch_to_lava_order
from spikeport.netx.read import DELAY_CLIP, INPUT_MESSAGE_BITS_ATTR, SPIKE_EXP, STATE_EXP
from spikeport.netx.weights import lava_dense_parts, real_weights


@dataclass
class _Layer:
    """One netx layer to write: ``type``, datasets, neuron datasets (None: no neuron group)."""

    type: str
    data: dict[str, Any] = field(default_factory=dict)
    neuron: dict[str, Any] | None = None


# ---------------------------------------------------------------- neurons

#: lava-dl 0.6.0's NetDict returns a group, not a number, for ``neuron/messageBits``, and netx then
#: fails; so a file cannot set message bits and netx's defaults hold
_NO_MESSAGE_BITS = "netx 0.6.0 cannot read neuron/messageBits from a file; its defaults are CUBA 0, SDNN 16"
SDNN_MESSAGE_BITS = 16


def _lif_neuron(g: LIFGroup, bits: int) -> dict[str, Any]:
    obj = f"LIFGroup({g.name!r})"
    if isinstance(g, TernaryLIFGroup):
        raise UnsupportedError(f"TernaryLIFGroup({g.name!r}): netx has no ternary neuron")
    if g.reset != "zero":
        raise UnsupportedError(f"{obj}.reset={g.reset!r}: netx's CUBA neuron resets to 0")
    if g.refractory:
        raise UnsupportedError(
            f"{obj}.refractory={g.refractory}: netx ignores refDelay (Lava's LIF has none)"
        )
    if g.max_spikes > 1:
        raise UnsupportedError(
            f"{obj}.max_spikes={g.max_spikes}: netx's CUBA neuron sends one spike per step"
        )
    if np.any(np.asarray(g.bias_exp) != 6):
        raise UnsupportedError(f"{obj}.bias_exp: netx fixes bias_exp = 6")
    if np.any(np.asarray(g.u0) != 0) or np.any(np.asarray(g.v0) != 0):
        raise UnsupportedError(f"{obj}.u0/v0: netx neurons start at 0")
    if bits:
        raise UnsupportedError(f"{obj}: graded output ({bits} message bits): {_NO_MESSAGE_BITS}")
    return {
        "type": "CUBA",
        "iDecay": int(g.du) + 1,
        "vDecay": int(g.dv),
        "vThMant": int(g.vth),
        "refDelay": 1,
    }


def _is_sigma(g: SigmaDeltaGroup) -> bool:
    return (
        g.act_mode == "unit"
        and int(g.vth) == 0
        and not np.any(np.asarray(g.bias))
        and (int(g.spike_exp), int(g.state_exp)) == (0, 0)
    )


def _sdnn_neuron(g: SigmaDeltaGroup, bits: int, is_input: bool, is_last: bool) -> dict[str, Any]:
    obj = f"SigmaDeltaGroup({g.name!r})"
    if bits not in (0, SDNN_MESSAGE_BITS):
        raise UnsupportedError(f"{obj}: {bits} message bits: {_NO_MESSAGE_BITS} (SDNN: {SDNN_MESSAGE_BITS})")
    cfg: dict[str, Any] = {"type": "SDNN", "activation": "relu"}
    if _is_sigma(g) and is_last and not is_input:
        return {**cfg, "vThMant": 0, "sigma_output": True}
    if (int(g.spike_exp), int(g.state_exp)) != (SPIKE_EXP, STATE_EXP):
        raise UnsupportedError(f"{obj}.spike_exp/state_exp: netx uses {SPIKE_EXP} and {STATE_EXP}")
    if g.cum_error or g.corrected:
        raise UnsupportedError(f"{obj}.cum_error/corrected: netx's SigmaDelta has neither")
    want = "unit" if is_input else "relu"
    if g.act_mode != want:
        raise UnsupportedError(
            f"{obj}.act_mode={g.act_mode!r}: netx's {'Delta' if is_input else 'SigmaDelta'} is {want}"
        )
    if is_input and np.any(np.asarray(g.bias)):
        raise UnsupportedError(f"{obj}.bias: netx's Delta input has no bias")
    return {**cfg, "vThMant": int(g.vth)}


def _neuron(g: Any, bits: int, is_input: bool, is_last: bool) -> dict[str, Any]:
    if isinstance(g, LIFGroup):
        return _lif_neuron(g, bits)
    if isinstance(g, SigmaDeltaGroup):
        return _sdnn_neuron(g, bits, is_input, is_last)
    raise UnsupportedError(f"{type(g).__name__}({g.name!r}): netx has CUBA and SDNN neurons only")


def _out_bits(net: Network, name: str) -> int:
    """The message bits of a group's outgoing (feed-forward) connections; they must agree."""
    bits = {int(c.num_message_bits) for c in net.outgoing(name) if c.target != name}
    if len(bits) > 1:
        raise UnsupportedError(f"{name}: outgoing connections differ in num_message_bits {sorted(bits)}")
    return bits.pop() if bits else 0


def _check_resets(net: Network) -> None:
    """netx resets every LIF layer with one interval, at offsets ``1 + offset + k`` for layer k."""
    lif = [g for g in net.groups if isinstance(g, LIFGroup)]
    intervals = {int(g.reset_interval) for g in lif}
    if intervals == {0} or not lif:
        return
    if len(intervals) > 1 or 0 in intervals:
        raise UnsupportedError(
            f"reset_interval: netx resets every layer with one interval (got {sorted(intervals)})"
        )
    r = intervals.pop()
    k0 = next(i for i, g in enumerate(net.groups) if g is lif[0])
    base = (int(lif[0].reset_offset) - 1 - k0) % r
    for k, g in enumerate(net.groups):
        if isinstance(g, LIFGroup) and int(g.reset_offset) != (1 + base + k) % r:
            raise UnsupportedError(
                f"LIFGroup({g.name!r}).reset_offset={g.reset_offset}: netx sets {(1 + base + k) % r} "
                f"(1 + offset + layer number)"
            )


# ---------------------------------------------------------------- synapses


def _summed(net: Network, source: str, target: str) -> tuple[np.ndarray, Connection]:
    """The integer weights of every connection ``source -> target`` (split parts add up)."""
    conns = [c for c in net.incoming(target) if c.source == source]
    first = conns[0]
    for c in conns:
        obj = f"Connection({c.name!r})"
        if c.sparse:
            raise UnsupportedError(f"{obj}.sparse: netx picks Sparse for every dense layer (sparse_fc_layer)")
        if c.num_message_bits != first.num_message_bits:
            raise UnsupportedError(f"{obj}.num_message_bits: parts of one layer must agree")
        same = (c.delays is None and first.delays is None) or (
            c.delays is not None and first.delays is not None and np.array_equal(c.delays, first.delays)
        )
        if not same:
            raise UnsupportedError(f"{obj}.delays: parts of one layer must have the same delays")
    r = np.zeros(first.weights.shape, np.int64)
    for c in conns:
        r += real_weights(c.dense_weights(), c.weight_exp, c.num_weight_bits, f"Connection({c.name!r})")
    return r, first


def _check_netx_keeps(name: str, r: np.ndarray, joint: np.ndarray | None = None) -> None:
    """Refuse weights that netx's scaling plus Lava's Dense would change."""
    try:
        parts, _ = lava_dense_parts(r, name, joint)
        got = np.zeros_like(r)
        for p in parts:
            got += real_weights(p.weights, p.weight_exp, p.num_weight_bits, name)
    except UnsupportedError as e:
        raise UnsupportedError(f"{name}: netx cannot load these weights exactly ({e})") from None
    if not np.array_equal(got, r):
        j, i = np.argwhere(got != r)[0]
        raise UnsupportedError(
            f"{name}: netx's optimize_weight_bits and Lava's Dense would turn weight [{j}, {i}] = {r[j, i]} "
            f"into {got[j, i]}"
        )


def _delays(c: Connection) -> np.ndarray | None:
    if c.delays is None:
        return None
    d = np.asarray(c.delays, np.int64)
    if d.max(initial=0) > DELAY_CLIP:
        raise UnsupportedError(f"Connection({c.name!r}).delays: netx clips delays to {DELAY_CLIP}")
    return d


def _dense_layer(net: Network, g: Any, src: str, src_shape: tuple[int, ...], layer: str) -> list[_Layer]:
    r, first = _summed(net, src, g.name)
    rec = [c for c in net.incoming(g.name) if c.source == g.name]
    delays = _delays(first)
    out: list[_Layer] = []
    if len(src_shape) == 3:  # netx needs a flatten; the file's columns are in torch order
        perm = torch_to_lava_order(src_shape)  # type: ignore[arg-type]
        r = r[:, perm]
        delays = None if delays is None else delays[:, perm]
        out.append(_Layer("flatten"))
    data: dict[str, Any] = {"shape": np.array([int(g.n)]), "weight": r.astype(np.float32)}
    if delays is not None:
        data["delay"] = delays.astype(np.float32)
    if rec:
        if delays is not None:
            raise UnsupportedError(
                f"{layer}: dense_rec with delays (netx drops the recurrent weight exponent)"
            )
        if rec[0].num_message_bits != first.num_message_bits:
            raise UnsupportedError(
                f"Connection({rec[0].name!r}).num_message_bits: netx gives the recurrent synapse the "
                f"layer's input message bits ({first.num_message_bits})"
            )
        w_rec, _ = _summed(net, g.name, g.name)
        joint = np.hstack([r, w_rec])
        _check_netx_keeps(layer, r, joint)
        _check_netx_keeps(f"{layer} (recurrent)", w_rec, joint)
        data["weight_rec"] = w_rec.astype(np.float32)
    else:
        _check_netx_keeps(layer, r)
    out.append(_Layer("dense_rec" if rec else "dense", data))
    return out


def _conv_layer(net: Network, g: Any, src: str, meta: dict[str, Any], in_shape: tuple[int, ...]) -> _Layer:
    layer = f"{g.name} (conv)"
    r, first = _summed(net, src, g.name)
    if first.delays is not None:
        raise UnsupportedError(f"Connection({first.name!r}).delays: netx's conv layers have no delays")
    if len(in_shape) != 3:
        raise UnsupportedError(f"{layer}: its input {src!r} has no recorded 3-D shape")
    geo = ConvGeometry(
        in_shape=in_shape,  # type: ignore[arg-type]
        out_channels=int(meta["shape"][0]),
        kernel=tuple(meta["kernel"]),  # type: ignore[arg-type]
        stride=tuple(meta["stride"]),  # type: ignore[arg-type]
        padding=tuple(meta["padding"]),  # type: ignore[arg-type]
        dilation=tuple(meta["dilation"]),  # type: ignore[arg-type]
        groups=int(meta["groups"]),
    )
    kernel = conv_kernel(geo, r, layer)
    data = {
        "shape": np.array(geo.out_shape),
        "weight": kernel[..., None].astype(np.float32),
        "stride": np.array(geo.stride),
        "padding": np.array(geo.padding),
        "dilation": np.array(geo.dilation),
        "groups": np.int64(geo.groups),
        "kernelSize": np.array(geo.kernel),
        "inChannels": np.int64(in_shape[0]),
        "outChannels": np.int64(geo.out_channels),
    }
    return _Layer("conv", data)


# ---------------------------------------------------------------- the chain of layers


def _meta(net: Network) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    meta = net.metadata.get("netx") or {}
    layers = meta.get("layers", []) if isinstance(meta, dict) else []
    by_group = {e["group"]: e for e in layers if isinstance(e, dict) and "group" in e}
    first = next((e for e in layers if isinstance(e, dict) and e.get("type") == "input"), {})
    return by_group, {
        "input": first,
        "transform": meta.get("input_transform") if isinstance(meta, dict) else None,
    }


def _shape(entry: dict[str, Any], n: int) -> tuple[int, ...]:
    shape = tuple(int(s) for s in entry.get("shape", ()))
    return shape if shape and int(np.prod(shape)) == n else (n,)


def _bias(g: Any, shape: tuple[int, ...]) -> dict[str, Any]:
    b = np.asarray(g.bias_mant if isinstance(g, LIFGroup) else g.bias, np.int64)
    if not np.any(b):
        return {}
    return {"bias": b.reshape(shape[::-1]).astype(np.float32) if len(shape) == 3 else b.astype(np.float32)}


def _first_layer(
    net: Network, by_group: dict[str, dict[str, Any]], info: dict[str, Any]
) -> tuple[_Layer, str, tuple[int, ...], int]:
    """The input layer: with the first group as its neuron when the InputGroup is unconnected."""
    if len(net.inputs) != 1:
        raise UnsupportedError(f"Network.inputs: netx has one input (got {len(net.inputs)})")
    inp = net.inputs[0]
    if net.outgoing(inp.name):
        for c in net.outgoing(inp.name):
            if c.num_message_bits != inp.num_message_bits:
                raise UnsupportedError(f"Connection({c.name!r}).num_message_bits: netx uses the input's")
        shape = _shape(info["input"] if "group" not in info["input"] else {}, int(inp.n))
        return _Layer("input", {"shape": np.array(shape)}), inp.name, shape, 0
    g0 = net.groups[0]
    if net.incoming(g0.name):
        raise UnsupportedError(
            f"{g0.name}: an input neuron (the InputGroup is unconnected) takes no synapses in netx"
        )
    shape = _shape(by_group.get(g0.name, {}), int(g0.n))
    data: dict[str, Any] = {"shape": np.array(shape)}
    transform = info["transform"] or {}
    if transform:
        data.update(
            weight=np.array([transform["weight"]], np.float32), bias=np.array([transform["bias"]], np.float32)
        )
    neuron = _kept_kind(
        by_group.get(g0.name, {}), g0, _neuron(g0, _out_bits(net, g0.name), True, len(net.groups) == 1)
    )
    return _Layer("input", data, neuron), g0.name, shape, 1


def _kept_kind(entry: dict[str, Any], g: Any, neuron: dict[str, Any]) -> dict[str, Any] | None:
    """Keep what the read file had: ``LOIHI`` (netx treats it as CUBA), or no neuron for netx's
    integrator (iDecay 0, vDecay 4096, vThMant 2**17, no bias)."""
    kind = entry.get("neuron", "CUBA")
    if kind == "LOIHI" and neuron["type"] == "CUBA":
        return {**neuron, "type": "LOIHI"}
    integrator = {"type": "CUBA", "iDecay": 0, "vDecay": 4096, "vThMant": 1 << 17}
    if kind is None and all(neuron.get(k) == v for k, v in integrator.items()) and not _bias(g, (int(g.n),)):
        return None
    return neuron


def _plan(net: Network) -> list[_Layer]:
    _check_resets(net)
    by_group, info = _meta(net)
    first, prev, prev_shape, start = _first_layer(net, by_group, info)
    layers = [first]
    for g in net.groups[start:]:
        sources = sorted({c.source for c in net.incoming(g.name)} - {g.name})
        if sources != [prev]:
            raise UnsupportedError(
                f"{g.name}: netx layers form a chain, fed by {prev!r} only (got {sources})"
            )
        entry = by_group.get(g.name, {})
        if entry.get("type") == "conv":
            if any(c.source == g.name for c in net.incoming(g.name)):
                raise UnsupportedError(f"{g.name}: netx's conv layers are not recurrent")
            shape = _shape(entry, int(g.n))
            new = [_conv_layer(net, g, prev, entry, prev_shape)]
        else:
            shape = (int(g.n),)
            new = _dense_layer(net, g, prev, prev_shape, g.name)
            new[-1].data["shape"] = np.array(_shape(entry, int(g.n)))  # netx flattens it; keep the file's
        bits = _out_bits(net, g.name)
        if isinstance(g, SigmaDeltaGroup) and net.outgoing(g.name) and bits == 0:
            raise UnsupportedError(
                f"{g.name}: netx's sigma-delta layers send graded messages (num_message_bits 0)"
            )
        new[-1].neuron = _kept_kind(entry, g, _neuron(g, bits, False, g is net.groups[-1]))
        new[-1].data.update(_bias(g, shape))
        layers.extend(new)
        prev, prev_shape = g.name, shape
    return layers


def _write(f: Any, layers: list[_Layer], input_bits: int) -> None:
    for i, layer in enumerate(layers):
        grp = f.create_group(f"layer/{i}")
        grp.create_dataset("type", data=np.array([layer.type.encode("ascii")]))
        for key, value in layer.data.items():
            grp.create_dataset(key, data=value)
        if layer.neuron is not None:
            ng = grp.create_group("neuron")
            for key, value in layer.neuron.items():
                ng.create_dataset(key, data=value.encode("ascii") if isinstance(value, str) else value)
    f.create_dataset("simulation/Ts", data=1)
    f.attrs[INPUT_MESSAGE_BITS_ATTR] = int(input_bits)


def write_netx(net: Network, path: str | Path) -> Path:
    """Write ``net`` as a lava-dl netx file (see the module docstring); returns the path.

    Load it with ``lava.lib.dl.netx.hdf5.Network(path, input_message_bits=..., reset_interval=...)``
    as :func:`~spikeport.netx.read.read_netx` reads it back: the input's message bits are also kept in
    the file attribute ``spikeport_input_message_bits``; netx takes reset intervals and the input
    neuron's bias as loader arguments, so they are not in the file. The file is written to a
    temporary file and renamed into place.
    """
    import h5py

    if not isinstance(net, Network):
        raise field_error("write_netx", "net", "must be a Network", type(net).__name__)
    net.require_integer()
    layers = _plan(net)
    path = Path(path)
    fd, tmp = tempfile.mkstemp(suffix=".net.tmp", dir=path.parent if str(path.parent) else ".")
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            _write(f, layers, int(net.inputs[0].num_message_bits))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
