"""The integer network description: plain, frozen, keyword-only records.

A :class:`Network` is what every engine (dense, event-driven), every backend (Lava) and the HDF5 file
hold: input groups, neuron groups and connections. Records never change after construction; their
arrays are read-only copies. Values are integers for the fixed-point engines and the Lava mapper
(:meth:`Network.require_integer`); the emulator's float mode also accepts real values in the same
fields, so a float twin of a quantized network runs with the same step order and delays.

Timing (Lava's): the arrays of a run are indexed ``i = 0..T-1`` for time step ``t = i + 1``. An input
group emits ``x[:, i]`` at step ``i + 1``; a connection accumulates what its source emits at step ``t``
and delivers it to its target at step ``t + 1 + delay``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from spikeport.emulator import bits
from spikeport.emulator.errors import UnsupportedError, field_error
from spikeport.emulator.sparse_weights import DENSE_LIMIT, SparseWeights

ResetMode = Literal["zero", "subtract"]
RESET_MODES: tuple[str, ...] = ("zero", "subtract")


def _frozen_array(obj: str, name: str, value: Any, shape: tuple[int, ...]) -> np.ndarray:
    arr = np.array(value, copy=True)
    if arr.ndim == 0:
        arr = np.full(shape, arr)
    if arr.shape != shape:
        raise field_error(obj, name, f"must have shape {shape}", arr.shape)
    if arr.dtype.kind not in "iuf":
        raise field_error(obj, name, "must be numeric", str(arr.dtype))
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise field_error(obj, name, "must be finite", "nan/inf")
    arr.setflags(write=False)
    return arr


def _check_range(obj: str, name: str, value: Any, lo: float, hi: float) -> None:
    arr = np.asarray(value)
    if arr.size and (np.min(arr) < lo or np.max(arr) > hi):
        bad = arr.min() if np.min(arr) < lo else arr.max()
        raise field_error(obj, name, f"must be in [{lo}, {hi}]", bad.item())


def _check_name(obj: str, name: str) -> None:
    if not isinstance(name, str) or not name or "/" in name:
        raise field_error(obj, "name", "must be a non-empty string without '/'", name)


def _is_integral(arr: np.ndarray) -> bool:
    return arr.dtype.kind in "iu" or bool(np.all(np.floor(arr) == arr))


@dataclass(frozen=True, kw_only=True, eq=False)
class InputGroup:
    """An external spike source of ``n`` channels (Lava: a RingBuffer-like source).

    ``num_message_bits = 0`` sends binary spikes; ``> 0`` sends integer payloads (graded spikes).
    """

    name: str
    n: int
    num_message_bits: int = 0

    def __post_init__(self) -> None:
        obj = f"InputGroup({self.name!r})"
        _check_name(obj, self.name)
        if int(self.n) < 1:
            raise field_error(obj, "n", "must be >= 1", self.n)
        _check_range(obj, "num_message_bits", self.num_message_bits, 0, bits.MESSAGE_BITS_MAX)


@dataclass(frozen=True, kw_only=True, eq=False)
class LIFGroup:
    """Lava's fixed-point LIF (``PyLifModelBitAcc``), per time step::

        u <- wrap24(decay(u, du + 1) + (a_in << 6))
        v <- clip(decay(v, dv) + u + (bias_mant << bias_exp), -(2**23 - 1), 2**23 - 1)
        spike if v > vth << 6;  on spike v <- 0 (reset="zero") or v <- v - (vth << 6) (reset="subtract")

    with ``decay(x, d) = sign(x * (4096 - d)) * (|x * (4096 - d)| >> 12)``. ``reset_interval > 0``
    makes it Lava's LIFReset (u and v zeroed before the dynamics when ``t % interval == offset``).
    ``reset="subtract"`` and ``refractory > 0`` (steps during which v is held at 0 after a spike)
    are spikeport extensions: on Lava they run as spikeport's own process (docs/lava-processes.md).

    ``max_spikes > 1`` (spikeport extension; 1 <= max_spikes <= ``bits.MAX_SPIKES_MAX`` = 127) makes a
    multi-spike neuron (Sinabs/Rockpool style): with ``th = vth << 6``, v after integration and before
    reset, ``k = min(max_spikes, v // th) if v > th else 0`` (``th = 0``: ``k = max_spikes`` when
    ``v > 0``); the group sends k as a graded payload; subtract reset ``v <- v - k * th``, zero reset
    ``v <- 0`` when ``k > 0``; a refractory period starts when ``k > 0``. Every outgoing connection
    must be graded with ``max_spikes < 2**num_message_bits`` (checked by :class:`Network`). Float
    mode uses the same rule in real arithmetic (``floor(v / th)``). Not for TernaryLIFGroup.
    """

    name: str
    n: int
    du: float
    dv: float
    vth: float
    bias_mant: np.ndarray
    bias_exp: np.ndarray
    u0: np.ndarray
    v0: np.ndarray
    reset: ResetMode = "zero"
    refractory: int = 0
    reset_interval: int = 0
    reset_offset: int = 0
    max_spikes: int = 1

    def __post_init__(self) -> None:
        obj = f"{type(self).__name__}({self.name!r})"
        _check_name(obj, self.name)
        if int(self.n) < 1:
            raise field_error(obj, "n", "must be >= 1", self.n)
        shape = (int(self.n),)
        for name in ("bias_mant", "bias_exp", "u0", "v0"):
            object.__setattr__(self, name, _frozen_array(obj, name, getattr(self, name), shape))
        # Lava's LIF also takes du = -1 (u never decays), dv = 4096 (v fully decays) and
        # vth = 2**17 (never reached): lava-dl netx uses them for a layer without neuron
        # (docs/netx.md, "Neuron parameters").
        _check_range(obj, "du", self.du, -bits.DU_OFFSET, bits.DECAY_MAX)
        _check_range(obj, "dv", self.dv, 0, bits.DECAY_UNITY)
        _check_range(obj, "vth", self.vth, 0, bits.VTH_MAX + 1)
        _check_range(obj, "bias_mant", self.bias_mant, bits.BIAS_MANT_MIN, bits.BIAS_MANT_MAX)
        _check_range(obj, "bias_exp", self.bias_exp, bits.BIAS_EXP_MIN, bits.BIAS_EXP_MAX)
        _check_range(obj, "u0", self.u0, -bits.STATE_LIMIT, bits.STATE_LIMIT)
        _check_range(obj, "v0", self.v0, bits.V_MIN, bits.V_MAX)
        if self.reset not in RESET_MODES:
            raise field_error(obj, "reset", f"must be one of {RESET_MODES}", self.reset)
        _check_range(obj, "refractory", self.refractory, 0, 1 << 16)
        _check_range(obj, "reset_interval", self.reset_interval, 0, 1 << 30)
        if self.reset_interval and not 0 <= self.reset_offset < self.reset_interval:
            raise field_error(obj, "reset_offset", "must be in [0, reset_interval)", self.reset_offset)
        if not isinstance(self.max_spikes, (int, np.integer)) or isinstance(self.max_spikes, bool):
            raise field_error(obj, "max_spikes", "must be an integer", self.max_spikes)
        _check_range(obj, "max_spikes", self.max_spikes, 1, bits.MAX_SPIKES_MAX)

    def integer_fields(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("du", "dv", "vth", "bias_mant", "bias_exp", "u0", "v0")}


@dataclass(frozen=True, kw_only=True, eq=False)
class TernaryLIFGroup(LIFGroup):
    """Lava's TernaryLIF: LIF dynamics, spike +1 if ``v > vth << 6``, -1 if ``v < vth_lo << 6``; v <- 0
    on either spike. ``vth`` is the upper threshold, ``vth_lo`` (<= vth) the lower one."""

    vth_lo: float = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        obj = f"TernaryLIFGroup({self.name!r})"
        _check_range(obj, "vth_lo", self.vth_lo, -bits.VTH_MAX, self.vth)
        if self.reset != "zero":
            raise field_error(obj, "reset", "TernaryLIF resets to zero only", self.reset)
        if self.max_spikes != 1:
            raise field_error(
                obj, "max_spikes", "TernaryLIF sends one spike per step: must be 1", self.max_spikes
            )

    def integer_fields(self) -> dict[str, Any]:
        return {**super().integer_fields(), "vth_lo": self.vth_lo}


@dataclass(frozen=True, kw_only=True, eq=False)
class SigmaDeltaGroup:
    """Lava's SigmaDelta neuron (``lava.proc.sdn``, fixed_pt), per time step::

        sigma <- sigma + a_in;   act_new <- relu(sigma + bias) (or identity for act_mode="unit")
        delta <- act_new - act + residue;  send delta if |delta| >= vth (Lava's >=), s_out >> state_exp
        residue <- delta - s_out;  act <- act_new

    ``vth`` and ``bias`` are given unscaled; like Lava, the engine scales them by
    ``2 ** (spike_exp + state_exp)``. ``corrected=True`` selects upstream PR #875's model, which feeds
    the LSBs shifted out of ``s_out`` back into the residue.
    """

    name: str
    n: int
    vth: float
    bias: np.ndarray
    act_mode: Literal["relu", "unit"] = "relu"
    cum_error: bool = False
    spike_exp: int = 0
    state_exp: int = 0
    corrected: bool = False

    def __post_init__(self) -> None:
        obj = f"SigmaDeltaGroup({self.name!r})"
        _check_name(obj, self.name)
        if int(self.n) < 1:
            raise field_error(obj, "n", "must be >= 1", self.n)
        object.__setattr__(self, "bias", _frozen_array(obj, "bias", self.bias, (int(self.n),)))
        _check_range(obj, "vth", self.vth, 0, bits.STATE_LIMIT)
        _check_range(obj, "spike_exp", self.spike_exp, 0, 16)
        _check_range(obj, "state_exp", self.state_exp, 0, 16)
        if self.act_mode not in ("relu", "unit"):
            raise field_error(obj, "act_mode", "must be 'relu' or 'unit'", self.act_mode)

    def integer_fields(self) -> dict[str, Any]:
        return {"vth": self.vth, "bias": self.bias}


NeuronGroup = LIFGroup | SigmaDeltaGroup
Group = InputGroup | LIFGroup | SigmaDeltaGroup

#: further neuron-group record types, added by the module that defines them (e.g.
#: :class:`spikeport.emulator.psn.PSNGroup`) through :func:`register_group_type`
EXTRA_GROUP_TYPES: list[type] = []


def register_group_type(cls: type) -> type:
    """Let :class:`Network` hold records of ``cls`` as neuron groups (a class decorator)."""
    if cls not in EXTRA_GROUP_TYPES:
        EXTRA_GROUP_TYPES.append(cls)
    return cls


@dataclass(frozen=True, kw_only=True, eq=False)
class Connection:
    """Synapses from ``source`` (an input or neuron group) to ``target`` (a neuron group).

    ``weights`` has shape ``(target.n, source.n)`` and holds integer mantissas in [-256, 255]; what
    reaches the target is Lava's ``PyDenseModelBitAcc`` arithmetic::

        w_eff = (clip_by_sign_mode(w) >> s) << s,  s = 8 - num_weight_bits + (1 if mixed signs)
        a = (w_eff @ spikes) << weight_exp   (floor >> -weight_exp when negative), int32 wrap

    delivered ``1 + delays[j, i]`` steps after the source emitted (``delays=None``: no extra delay;
    Lava's DelayDense otherwise). ``num_message_bits > 0`` multiplies by graded payloads instead of
    0/1 spikes. ``sparse`` chooses Lava's Sparse process (same arithmetic). ``shift=True`` marks a
    power-of-two connection (every weight 0 or +-2**k): each synaptic op is a shift.

    ``weights`` may also be a :class:`~spikeport.emulator.sparse_weights.SparseWeights` (a mostly-zero
    matrix held as compressed rows; it implies ``sparse=True`` and takes no ``delays``). Code that
    needs a dense matrix calls :meth:`dense_weights` (which refuses very large sparse ones);
    :attr:`weight_values` are the stored values and :meth:`nonzero` the non-zero entries of either.
    """

    name: str
    source: str
    target: str
    weights: np.ndarray | SparseWeights
    weight_exp: int = 0
    num_weight_bits: int = 8
    num_message_bits: int = 0
    delays: np.ndarray | None = None
    sparse: bool = False
    shift: bool = False

    def __post_init__(self) -> None:
        obj = f"Connection({self.name!r})"
        _check_name(obj, self.name)
        if isinstance(self.weights, SparseWeights):
            self._check_sparse(obj)
        else:
            w = np.array(self.weights, copy=True)
            if w.ndim != 2:
                raise field_error(obj, "weights", "must be a 2-D (target.n, source.n) array", w.shape)
            object.__setattr__(self, "weights", _frozen_array(obj, "weights", w, w.shape))
        _check_range(obj, "weights", self.weight_values, bits.WEIGHT_MIN, bits.WEIGHT_MAX)
        _check_range(obj, "weight_exp", self.weight_exp, bits.WEIGHT_EXP_MIN, bits.WEIGHT_EXP_MAX)
        _check_range(obj, "num_weight_bits", self.num_weight_bits, 1, bits.WEIGHT_BITS_MAX)
        _check_range(obj, "num_message_bits", self.num_message_bits, 0, bits.MESSAGE_BITS_MAX)
        if self.delays is not None:
            d = _frozen_array(obj, "delays", self.delays, self.weights.shape)
            if not _is_integral(d):
                raise field_error(obj, "delays", "must be integers", d.dtype)
            _check_range(obj, "delays", d, 0, bits.DELAY_MAX)
            object.__setattr__(self, "delays", d)
        if self.shift:
            vals = self.weight_values
            mag = np.abs(vals[vals != 0]).astype(np.int64)
            if mag.size and np.any(mag & (mag - 1)):
                bad = mag[(mag & (mag - 1)) != 0][0]
                raise field_error(obj, "weights", "must be 0 or +-2**k when shift=True", int(bad))

    @property
    def max_delay(self) -> int:
        return 0 if self.delays is None else int(np.max(self.delays, initial=0))

    def _check_sparse(self, obj: str) -> None:
        sw = self.weights
        assert isinstance(sw, SparseWeights)
        if sw.data.dtype.kind not in "iuf" or (
            sw.data.dtype.kind == "f" and not np.all(np.isfinite(sw.data))
        ):
            raise field_error(obj, "weights", "must be finite numbers", str(sw.data.dtype))
        if self.delays is not None:
            raise UnsupportedError(f"{obj}.delays: sparse weights take no delays (got an array)")
        object.__setattr__(self, "sparse", True)

    @property
    def is_sparse(self) -> bool:
        """Whether ``weights`` is held sparse (a :class:`SparseWeights`)."""
        return isinstance(self.weights, SparseWeights)

    @property
    def weight_values(self) -> np.ndarray:
        """The stored values: the dense array, or a sparse matrix's entries (range, sign and
        integrality checks need nothing else)."""
        return self.weights.data if isinstance(self.weights, SparseWeights) else self.weights

    def dense_weights(self, limit: int = DENSE_LIMIT) -> np.ndarray:
        """The (target.n, source.n) matrix as a dense array (a sparse one above ``limit`` entries is
        refused with ``UnsupportedError``: use :meth:`nonzero` or the sparse record instead)."""
        if isinstance(self.weights, SparseWeights):
            return self.weights.to_dense(limit=limit, where=f"Connection({self.name!r}).weights")
        return self.weights

    def nonzero(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(targets, sources, values)`` of the non-zero weights, by target then source."""
        if isinstance(self.weights, SparseWeights):
            keep = self.weights.data != 0
            return self.weights.rows()[keep], self.weights.indices[keep], self.weights.data[keep]
        rows, cols = np.nonzero(self.weights)
        return rows, cols, self.weights[rows, cols]


def _check_multi_spike_payloads(net: Network) -> None:
    """A multi-spike group (``max_spikes > 1``) must feed only graded connections whose payload holds
    ``max_spikes``: ``max_spikes < 2**num_message_bits``."""
    multi = {g.name: int(g.max_spikes) for g in net.groups if isinstance(g, LIFGroup) and g.max_spikes > 1}
    for c in net.connections:
        k = multi.get(c.source)
        if k is not None and int(c.num_message_bits) < k.bit_length():
            raise field_error(
                f"Connection({c.name!r})",
                "num_message_bits",
                f"must be >= {k.bit_length()}: its source {c.source!r} sends up to max_spikes={k} "
                "spikes per step as a graded payload",
                int(c.num_message_bits),
            )


@dataclass(frozen=True, kw_only=True, eq=False)
class Network:
    """Inputs, neuron groups and connections; ``metadata`` is JSON-able provenance (e.g. the
    semantics a quantized network came from). Group and connection names are unique."""

    inputs: tuple[InputGroup, ...]
    groups: tuple[LIFGroup | SigmaDeltaGroup, ...]
    connections: tuple[Connection, ...]
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "groups", tuple(self.groups))
        object.__setattr__(self, "connections", tuple(self.connections))
        object.__setattr__(self, "metadata", dict(self.metadata))
        if not self.inputs:
            raise field_error("Network", "inputs", "must hold at least one InputGroup", ())
        names = [g.name for g in (*self.inputs, *self.groups)]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise field_error("Network", "groups", "names must be unique", dup)
        cnames = [c.name for c in self.connections]
        cdup = sorted({n for n in cnames if cnames.count(n) > 1})
        if cdup:
            raise field_error("Network", "connections", "names must be unique", cdup)
        for i in self.inputs:
            if not isinstance(i, InputGroup):
                raise field_error("Network", "inputs", "must hold InputGroup records", type(i).__name__)
        for g in self.groups:
            if not isinstance(g, (LIFGroup, SigmaDeltaGroup, *EXTRA_GROUP_TYPES)):
                raise field_error("Network", "groups", "must hold neuron group records", type(g).__name__)
        sizes = {g.name: int(g.n) for g in (*self.inputs, *self.groups)}
        targets = {g.name for g in self.groups}
        for c in self.connections:
            obj = f"Connection({c.name!r})"
            if c.source not in sizes:
                raise field_error(
                    obj, "source", f"must name a group of the network {sorted(sizes)}", c.source
                )
            if c.target not in targets:
                raise field_error(obj, "target", f"must name a neuron group {sorted(targets)}", c.target)
            want = (sizes[c.target], sizes[c.source])
            if c.weights.shape != want:
                raise field_error(
                    obj, "weights", f"must have shape (target.n, source.n) = {want}", c.weights.shape
                )
        _check_multi_spike_payloads(self)

    def group(self, name: str) -> InputGroup | LIFGroup | SigmaDeltaGroup:
        for g in (*self.inputs, *self.groups):
            if g.name == name:
                return g
        raise field_error("Network", "group", "no group of that name", name)

    def incoming(self, target: str) -> tuple[Connection, ...]:
        return tuple(c for c in self.connections if c.target == target)

    def outgoing(self, source: str) -> tuple[Connection, ...]:
        return tuple(c for c in self.connections if c.source == source)

    @property
    def is_integer(self) -> bool:
        """True when every parameter is an integer (the fixed-point engines and Lava need this)."""
        return not self._non_integer_fields()

    def _non_integer_fields(self) -> list[str]:
        bad = []
        for g in self.groups:
            for k, v in g.integer_fields().items():
                if not _is_integral(np.asarray(v)):
                    bad.append(f"{type(g).__name__}({g.name!r}).{k}")
        for c in self.connections:
            if not _is_integral(c.weight_values):
                bad.append(f"Connection({c.name!r}).weights")
        return bad

    def require_integer(self) -> None:
        """Raise ``ValidationError`` naming every field that holds a non-integer value."""
        bad = self._non_integer_fields()
        if bad:
            raise field_error("Network", "values", "must be integers for fixed-point runs", bad)
