"""Read a lava-dl netx HDF5 file (``.net``) into a spikeport :class:`~spikeport.emulator.network.Network`.

The result runs on the emulator exactly as lava-dl 0.6.0's ``netx.hdf5.Network`` runs the same file
on Lava (lava-nc 0.10.0, fixed_pt); :func:`read_netx` documents the mapping.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from spikeport.emulator.errors import UnsupportedError, ValidationError, field_error
from spikeport.emulator.network import Connection, InputGroup, LIFGroup, Network, SigmaDeltaGroup
from spikeport.netx.layout import ConvGeometry, conv_matrix, torch_to_lava_order
from spikeport.netx.weights import Part, connection_parts, lava_dense_parts

#: netx's defaults: a dense layer without neuron is a non-leaky integrator that never spikes
NO_NEURON = {"type": "CUBA", "iDecay": 0, "vDecay": 4096, "vThMant": 1 << 17}
#: netx's default spike_exp (the graded-spike decimal place of SDNN layers); state_exp is always 6
SPIKE_EXP = 6
STATE_EXP = 6
DELAY_CLIP = 62
#: layer types netx 0.6.0 refuses (NotImplementedError) and spikeport refuses with it
REFUSED = ("pool", "convT", "unpool", "average", "concat", "dense_comp")
INPUT_MESSAGE_BITS_ATTR = "spikeport_input_message_bits"


def _str(node: Any) -> str:
    value = node[()]
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0]
    return value.decode("ascii") if isinstance(value, bytes) else str(value)


def _int_array(layer: str, key: str, value: Any) -> np.ndarray:
    """netx reads weights and biases with ``astype(int)`` (truncation toward zero)."""
    arr = np.asarray(value)
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise field_error(layer, key, "must be finite", "nan/inf")
    return np.trunc(arr).astype(np.int64) if arr.dtype.kind == "f" else arr.astype(np.int64)


@dataclass
class _Source:
    """The layer that feeds the next one: group name, torch shape, output message bits."""

    name: str
    shape: tuple[int, ...]
    message_bits: int


@dataclass
class _Builder:
    path: Path
    reset_interval: int | None
    reset_offset: int
    input_bias: Any
    input_message_bits: int
    inputs: list[InputGroup] = field(default_factory=list)
    groups: list[Any] = field(default_factory=list)
    connections: list[Connection] = field(default_factory=list)
    layers: list[dict[str, Any]] = field(default_factory=list)
    source: _Source | None = None
    flatten_next: bool = False
    appended: int = 0
    sigma_groups: set[str] = field(default_factory=set)
    meta: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------ neurons

    def neuron(
        self, name: str, cfg: dict[str, Any], n: int, bias: np.ndarray, *, is_input: bool = False
    ) -> Any:
        kind = cfg.get("type", "CUBA")
        group: LIFGroup | SigmaDeltaGroup
        if kind in ("CUBA", "LOIHI"):
            group = self._lif(name, cfg, n, bias)
        elif kind == "SDNN":
            group = self._sdnn(name, cfg, n, bias, is_input)
        else:
            raise UnsupportedError(f"{name}: neuron type {kind!r} (supported: CUBA, LOIHI, SDNN)")
        self.appended += 1
        self.groups.append(group)
        return group

    def _lif(self, name: str, cfg: dict[str, Any], n: int, bias: np.ndarray) -> LIFGroup:
        interval = int(self.reset_interval or 0)
        offset = (1 + self.reset_offset + self.appended) % interval if interval else 0
        return LIFGroup(
            name=name,
            n=n,
            du=int(cfg["iDecay"]) - 1,
            dv=int(cfg["vDecay"]),
            vth=int(cfg["vThMant"]),
            bias_mant=bias,
            bias_exp=np.full(n, 6, np.int64),
            u0=np.zeros(n, np.int64),
            v0=np.zeros(n, np.int64),
            reset_interval=interval,
            reset_offset=offset,
        )

    def _sdnn(
        self, name: str, cfg: dict[str, Any], n: int, bias: np.ndarray, is_input: bool
    ) -> SigmaDeltaGroup:
        if "sigma_output" in cfg and not is_input:
            self.sigma_groups.add(name)
            return SigmaDeltaGroup(name=name, n=n, vth=0, bias=np.zeros(n, np.int64), act_mode="unit")
        vth = int(cfg["vThMant"])
        if is_input:  # Lava's Delta; driven by nothing here, like the netx Input block's port
            return SigmaDeltaGroup(
                name=name,
                n=n,
                vth=vth,
                bias=np.zeros(n, np.int64),
                act_mode="unit",
                spike_exp=SPIKE_EXP,
                state_exp=STATE_EXP,
            )
        return SigmaDeltaGroup(name=name, n=n, vth=vth, bias=bias, spike_exp=SPIKE_EXP, state_exp=STATE_EXP)

    @staticmethod
    def out_bits(cfg: dict[str, Any]) -> int:
        """netx: ``messageBits``, else 0 for CUBA/LOIHI and 16 for SDNN. (lava-dl 0.6.0 itself fails on
        a file that sets ``messageBits``: its NetDict reads it as a group.)"""
        if "messageBits" in cfg:
            return int(cfg["messageBits"])
        return 16 if cfg.get("type") == "SDNN" else 0

    # ------------------------------------------------------------ synapses

    def connect(
        self, name: str, src: str, bits: int, target: str, parts: list[Part], delays: np.ndarray | None
    ) -> None:
        for p in parts:
            self.connections.append(
                Connection(
                    name=f"{name}{p.suffix}",
                    source=src,
                    target=target,
                    weights=p.weights,
                    weight_exp=p.weight_exp,
                    num_weight_bits=p.num_weight_bits,
                    num_message_bits=bits,
                    delays=delays,
                )
            )

    def require_source(self, layer: str, n_in: int) -> _Source:
        """The layer feeding the next one; a network without input layer gets an InputGroup."""
        if self.source is None:
            self.inputs.append(InputGroup(name="input", n=n_in, num_message_bits=self.input_message_bits))
            self.source = _Source("input", (n_in,), self.input_message_bits)
        return self.source


def _bias(layer: str, h5: Any, shape_chw: tuple[int, ...]) -> np.ndarray:
    """A layer's bias per neuron: scalar, per neuron, or per channel (the last Lava axis)."""
    n = int(np.prod(shape_chw))
    if "bias" not in h5:
        return np.zeros(n, np.int64)
    b = _int_array(layer, "bias", h5["bias"][()])
    if b.size in (1, n) and len(shape_chw) == 1:
        return np.broadcast_to(b.reshape(-1), (n,)).copy()
    lava_shape = tuple(shape_chw[::-1])
    if b.shape == lava_shape:
        return b.reshape(-1)
    if b.size == shape_chw[0]:
        return np.broadcast_to(b.reshape(-1), lava_shape).reshape(-1).copy()
    raise field_error(layer, "bias", f"must broadcast to the layer's (x, y, z) shape {lava_shape}", b.shape)


def _shape(h5: Any) -> tuple[int, ...]:
    return tuple(int(s) for s in np.asarray(h5["shape"][()]).reshape(-1))


def _cfg(h5: Any) -> dict[str, Any]:
    """A neuron description as plain values (``type`` decoded)."""
    out: dict[str, Any] = {}
    for key in h5:
        value = np.asarray(h5[key][()]).reshape(-1)[0]
        out[key] = _str(h5[key]) if isinstance(value, bytes) else value.item()
    return out


def _pair(h5: Any, key: str, default: int) -> tuple[int, int]:
    if key not in h5:
        return (default, default)
    v = np.asarray(h5[key][()]).reshape(-1)
    return (int(v[0]), int(v[0])) if v.size == 1 else (int(v[0]), int(v[1]))


def _input_bias(b: _Builder, shape: tuple[int, ...]) -> np.ndarray:
    """``input_bias`` for the input neuron (netx leaves its bias 0): scalar, Lava (x, y, z) or flat."""
    n = int(np.prod(shape))
    if b.input_bias is None:
        return np.zeros(n, np.int64)
    raw = np.asarray(b.input_bias)
    arr = np.trunc(raw).astype(np.int64) if raw.dtype.kind == "f" else raw.astype(np.int64)
    if raw.dtype.kind == "f" and not np.array_equal(arr, raw):
        raise field_error("read_netx", "input_bias", "must hold integers (Lava's bias_mant)", raw.dtype)
    if arr.size == 1:
        return np.full(n, int(arr.reshape(-1)[0]), np.int64)
    if arr.size != n:
        raise field_error(
            "read_netx", "input_bias", f"must have {n} values (Lava shape {shape[::-1]})", arr.shape
        )
    return arr.reshape(-1)


def _read_input(b: _Builder, i: int, h5: Any) -> None:
    """``input``: with a neuron, group ``layer<i>`` driven by its bias (netx keeps the file's
    ``weight``/``bias`` as an input transform it never applies, and leaves the Input block's port
    unconnected: so is the InputGroup ``input`` here); without, the shape of the network input."""
    if "shape" not in h5:
        return
    shape = _shape(h5)
    n = int(np.prod(shape))
    b.meta["input_transform"] = {
        "weight": int(np.asarray(h5["weight"][()]).reshape(-1)[0]) if "weight" in h5 else 64,
        "bias": int(np.asarray(h5["bias"][()]).reshape(-1)[0]) if "bias" in h5 else 0,
    }
    b.inputs.append(InputGroup(name="input", n=n, num_message_bits=b.input_message_bits))
    entry: dict[str, Any] = {"index": i, "type": "input", "shape": list(shape)}
    if "neuron" not in h5:
        b.source = _Source("input", shape, b.input_message_bits)
    else:
        cfg = _cfg(h5["neuron"])
        group = b.neuron(f"layer{i}", cfg, n, _input_bias(b, shape), is_input=True)
        b.source = _Source(group.name, shape, b.out_bits(cfg))
        entry.update(group=group.name, neuron=cfg["type"])
    b.layers.append(entry)


def _dense_weight(layer: str, h5: Any, key: str, n: int) -> np.ndarray:
    w = _int_array(layer, key, h5[key][()])
    return w.reshape(n, -1) if w.ndim == 1 else w


def _columns(b: _Builder, layer: str, src: _Source, w: np.ndarray) -> np.ndarray | None:
    """The permutation from the file's input columns to spikeport's source order (None: identity)."""
    n_in = int(np.prod(src.shape))
    if w.shape[1] != n_in:
        raise field_error(layer, "weight", f"must have {n_in} input columns", w.shape)
    if len(src.shape) == 1:
        return None
    if not b.flatten_next:
        raise UnsupportedError(
            f"{layer}: a dense layer after the 3-D layer {src.name!r} needs a flatten layer"
        )
    return torch_to_lava_order(src.shape)  # type: ignore[arg-type]


def _permute(m: np.ndarray, perm: np.ndarray | None) -> np.ndarray:
    """Columns in torch order -> spikeport's source order (``perm[torch_index] = index``)."""
    if perm is None:
        return m
    out = np.zeros_like(m)
    out[:, perm] = m
    return out


def _delays(layer: str, h5: Any, shape: tuple[int, int]) -> np.ndarray | None:
    """netx's delays: clipped to 62; scalar, per output (axonal), per input, or per synapse."""
    if "delay" not in h5:
        return None
    d = np.clip(_int_array(layer, "delay", h5["delay"][()]), 0, DELAY_CLIP)
    if d.size == 1:
        return np.full(shape, int(d.reshape(-1)[0]), np.int64)
    if d.ndim == 1 and d.size == shape[0]:
        return np.repeat(d.reshape(-1, 1), shape[1], axis=1)
    if d.ndim == 1 and d.size == shape[1]:
        return np.repeat(d.reshape(1, -1), shape[0], axis=0)
    if d.shape == shape:
        return d
    raise field_error(layer, "delay", f"must be a scalar or match the weight shape {shape}", d.shape)


def _read_dense(b: _Builder, i: int, h5: Any, rec: bool = False) -> None:
    """``dense`` / ``dense_rec``: Lava Dense (DelayDense with ``delay``) into a neuron group."""
    name = f"layer{i}"
    shape = _shape(h5)
    n = int(np.prod(shape))
    w = _dense_weight(name, h5, "weight", n)
    src = b.require_source(name, w.shape[1])
    perm = _columns(b, name, src, w)
    w_rec = _dense_weight(name, h5, "weight_rec", n) if rec else None
    delays = _delays(name, h5, (int(w.shape[0]), int(w.shape[1])))
    if rec and delays is not None:
        raise UnsupportedError(f"{name}: dense_rec with delays (netx drops the recurrent weight exponent)")
    joint = np.hstack([w, w_rec]) if w_rec is not None else None
    parts, clipped = lava_dense_parts(w, name, joint)
    cfg = _cfg(h5["neuron"]) if "neuron" in h5 else dict(NO_NEURON)
    b.neuron(name, cfg, n, _bias(name, h5, (n,)))
    parts = [replace(p, weights=_permute(p.weights, perm)) for p in parts]
    b.connect(
        name, src.name, src.message_bits, name, parts, None if delays is None else _permute(delays, perm)
    )
    if w_rec is not None:
        rparts, _ = lava_dense_parts(w_rec, name, joint)
        b.connect(f"{name}_rec", name, src.message_bits, name, rparts, None)
    entry: dict[str, Any] = {
        "index": i,
        "type": "dense_rec" if rec else "dense",
        "shape": list(shape),
        "group": name,
    }
    entry.update(
        neuron=cfg["type"] if "neuron" in h5 else None, clipped=bool(clipped), flatten=perm is not None
    )
    b.layers.append(entry)
    b.source, b.flatten_next = _Source(name, (n,), b.out_bits(cfg)), False


def _read_conv(b: _Builder, i: int, h5: Any) -> None:
    """``conv``: Lava Conv (PyTorch conv2d of the file's kernel) into a neuron group."""
    name = f"layer{i}"
    src = b.source
    if src is None or len(src.shape) != 3:
        raise UnsupportedError(f"{name}: a conv layer needs a 3-D input layer before it")
    w = _int_array(name, "weight", h5["weight"][()])
    w = w.reshape(w.shape[:4])
    geo = ConvGeometry(
        in_shape=src.shape,  # type: ignore[arg-type]
        out_channels=int(w.shape[0]),
        kernel=(int(w.shape[2]), int(w.shape[3])),
        stride=_pair(h5, "stride", 1),
        padding=_pair(h5, "padding", 0),
        dilation=_pair(h5, "dilation", 1),
        groups=int(np.asarray(h5["groups"][()]).reshape(-1)[0]) if "groups" in h5 else 1,
    )
    geo.check(name)
    shape = _shape(h5)
    if shape != geo.out_shape:
        raise field_error(name, "shape", f"must be the conv output shape {geo.out_shape}", shape)
    if "delay" in h5:
        raise UnsupportedError(f"{name}: conv layers with delays (netx ignores them)")
    cfg = _cfg(h5["neuron"])
    group = b.neuron(name, cfg, int(np.prod(shape)), _bias(name, h5, shape))
    b.connect(name, src.name, src.message_bits, group.name, connection_parts(conv_matrix(geo, w), name), None)
    b.layers.append(
        {
            "index": i,
            "type": "conv",
            "shape": list(shape),
            "group": name,
            "neuron": cfg["type"],
            "stride": list(geo.stride),
            "padding": list(geo.padding),
            "dilation": list(geo.dilation),
            "groups": geo.groups,
            "kernel": list(geo.kernel),
        }
    )
    b.source = _Source(name, shape, b.out_bits(cfg))


def _read_flatten(b: _Builder, i: int, h5: Any) -> None:
    b.flatten_next = True
    b.layers.append({"index": i, "type": "flatten"})


READERS = {
    "input": _read_input,
    "dense": _read_dense,
    "dense_rec": lambda b, i, h5: _read_dense(b, i, h5, rec=True),
    "conv": _read_conv,
    "flatten": _read_flatten,
}


def read_netx(
    path: str | Path,
    *,
    reset_interval: int | None = None,
    reset_offset: int | None = None,
    input_bias: Any = None,
    input_message_bits: int | None = None,
    num_layers: int | None = None,
) -> Network:
    """Read a lava-dl netx ``.net`` file as lava-dl 0.6.0's ``netx.hdf5.Network`` builds it.

    - Groups are named ``layer<i>`` after the file's layer index; neurons are numbered in the C-order
      flattening of Lava's ``(x, y, z)`` shape. The network input is the InputGroup ``input``: the
      spikes into the first layer's synapses, or, when the input layer has a neuron, an unconnected
      group (as netx's Input block leaves its port unconnected; that neuron is driven by its bias:
      ``input_bias``, scalar or Lava-shaped, default 0, ``bias_exp`` 6).
    - ``dense`` -> Lava Dense (DelayDense with ``delay``, clipped to 62) with netx's weight scaling
      reproduced exactly (:mod:`spikeport.netx.weights`); ``dense_rec`` adds ``layer<i>_rec``;
      ``conv`` -> the convolution as a matrix (:mod:`spikeport.netx.layout`); ``flatten`` permutes the
      next dense layer's columns from torch order. A connection whose weights need it is split into
      ``_neg`` (and ``_neg256``) parts.
    - CUBA/LOIHI -> LIFGroup (``du = iDecay - 1``, ``dv = vDecay``, ``vth = vThMant``, ``bias_exp =
      6``, reset every ``reset_interval`` steps at offset ``1 + reset_offset + k`` for the k-th neuron
      layer, as netx sets them); no neuron -> netx's integrator (iDecay 0, vDecay 4096, vThMant 2**17).
      SDNN -> SigmaDeltaGroup (``spike_exp = state_exp = 6``; ``sigma_output`` -> unit activation,
      threshold 0, whose ``sigma`` is Lava's Sigma output; the input Delta as a unit SigmaDelta).
    - ``input_message_bits`` (netx's argument; default: the file's ``spikeport_input_message_bits``
      attribute, else 0) makes the input graded; ``num_layers`` (netx's argument) reads only the first
      layers of the file.

    Refused with :class:`UnsupportedError` naming the layer: ``pool``, ``convT``, ``unpool``,
    ``average``, ``concat``, ``dense_comp`` and RF neurons (netx itself refuses the first five), conv
    or recurrent layers with delays, a Sigma layer that feeds another layer.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise ValidationError(f"read_netx.path: no such file (got {str(path)!r})")
    with h5py.File(path, "r") as f:
        if "layer" not in f:
            raise field_error("read_netx", "path", "is not a netx file (no /layer group)", str(path))
        bits = input_message_bits
        if bits is None:
            bits = int(f.attrs.get(INPUT_MESSAGE_BITS_ATTR, 0))
        b = _Builder(path, reset_interval, int(reset_offset or 0), input_bias, bits)
        count = len(f["layer"]) if num_layers is None else min(int(num_layers), len(f["layer"]))
        for i in range(count):
            h5 = f["layer"][str(i)]
            kind = _str(h5["type"])
            reader = READERS.get(kind)
            if reader is None:
                supported = ", ".join(READERS)
                raise UnsupportedError(
                    f"layer{i}: netx layer type {kind!r} is not supported (supported: {supported})"
                )
            reader(b, i, h5)
    return _finish(b)


def _finish(b: _Builder) -> Network:
    if not b.groups:
        raise UnsupportedError(f"read_netx: {b.path.name} has no neuron layer")
    for c in b.connections:
        if c.source in b.sigma_groups:
            raise UnsupportedError(
                f"{c.source}: a Sigma (sigma_output) layer feeding {c.target!r} (Lava's Sigma sends sigma, "
                "the emulator's SigmaDelta sends its changes)"
            )
    netx: dict[str, Any] = {"file": b.path.name, "layers": b.layers, "sigma_output": sorted(b.sigma_groups)}
    netx.update(b.meta)
    if b.reset_interval:
        netx["reset"] = {"interval": int(b.reset_interval), "offset": b.reset_offset}
    return Network(
        inputs=tuple(b.inputs),
        groups=tuple(b.groups),
        connections=tuple(b.connections),
        metadata={"source": "netx", "netx": netx},
    )
