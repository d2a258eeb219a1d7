"""The one table of NIR node types spikeport understands, and the registries built on it.

:data:`NODE_SPECS` holds per NIR node type (its class name, as ``nir`` and NIR files spell it) a frozen
:class:`NodeSpec`: its role, shape rule, the datasets a NIR file must hold and the defaults that repair
a legacy file, and for neurons what the neuron has (leak, synaptic current, spikes). Every module that
handles node types consults it (flattening and shapes, NIR file reading, the convention guess), or keeps
a :class:`Registry` of its own builders per type (the quantizer's lowerings and neuron models, the
reference run's steppers) whose unknown types are refused with the list of supported ones.

Types are looked up by exact class name, not along the MRO: a subclass of a NIR node may carry other
semantics, so it is refused until registered itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

import numpy as np
from spikeport.emulator.errors import SpikeportError, UnsupportedError
from spikeport.quantize.graph import shapes as S

Shape = tuple[int, ...]
Role = Literal["input", "output", "linear", "structural", "nonlinear", "neuron"]
ShapeRule = Callable[[str, Any, Shape], Shape]
Default = Callable[[Mapping[str, Any]], Any]
T = TypeVar("T")


class Registry(Generic[T]):
    """Node type name -> T, in registration order; filled with :meth:`register` (a decorator) or
    :meth:`add`. :meth:`lookup` of an unknown type raises ``error(refusal.format(name=, kind=,
    supported=))``."""

    def __init__(
        self, refusal: str, error: type[SpikeportError] = UnsupportedError, also: tuple[str, ...] = ()
    ) -> None:
        self._items: dict[str, T] = {}
        self.refusal = refusal
        self.error = error
        self.also = also  # further names a refusal lists (handled before the registry is consulted)

    def add(self, kind: str, value: T) -> None:
        if kind in self._items:
            raise ValueError(f"node type {kind} registered twice")
        self._items[kind] = value

    def register(self, *kinds: str) -> Callable[[T], T]:
        def deco(value: T) -> T:
            for kind in kinds:
                self.add(kind, value)
            return value

        return deco

    def __contains__(self, kind: object) -> bool:
        return kind in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def kinds(self) -> tuple[str, ...]:
        return tuple(self._items)

    def lookup(self, kind: str, name: str) -> T:
        """The entry of type ``kind`` (node ``name``), else the registry's refusal."""
        try:
            return self._items[kind]
        except KeyError:
            supported = ", ".join(self.supported())
            raise self.error(self.refusal.format(name=name, kind=kind, supported=supported)) from None

    def supported(self) -> tuple[str, ...]:
        """The type names listed in a refusal."""
        return (*self._items, *self.also)


@dataclass(frozen=True, kw_only=True)
class NeuronTraits:
    """What a neuron node has: a leak (``tau``; I and IF have none), a synaptic current (Cuba*), spikes."""

    leaky: bool
    current: bool
    spiking: bool


@dataclass(frozen=True, kw_only=True)
class NodeSpec:
    """One NIR node type: role, shape rule (input shape -> output shape), file datasets."""

    kind: str
    role: Role
    shape: ShapeRule
    in_shape: Callable[[str, Any, Shape], Shape] | None = None  # the input shape it reads (conv: C, H, W)
    required: tuple[str, ...] = ()  # datasets a NIR file must hold
    defaults: tuple[tuple[str, Default], ...] = ()  # legacy-file repairs: field -> value from the others
    neuron: NeuronTraits | None = None

    @property
    def spiking(self) -> bool:
        """Emits spikes (spiking neurons and Threshold)."""
        return self.role == "nonlinear" or (self.neuron is not None and self.neuron.spiking)


#: nested graphs (``NIRGraph``) are flattened away before the table is consulted
NODE_SPECS: Registry[NodeSpec] = Registry(
    "{name}: unsupported node type {kind}; supported: {supported}",
    error=S.UnsupportedNodeError,
    also=("NIRGraph",),
)


def _spec(kind: str, role: Role, shape: ShapeRule, required: tuple[str, ...] = (), **kw: Any) -> None:
    NODE_SPECS.add(kind, NodeSpec(kind=kind, role=role, shape=shape, required=required, **kw))


def _zeros_like(field: str) -> Default:
    return lambda d: np.zeros_like(d[field])


def _ones_like(field: str) -> Default:
    return lambda d: np.ones_like(d[field])


def _const(value: Any) -> Default:
    return lambda d: value


def _conv_bias(d: Mapping[str, Any]) -> Any:
    w = np.asarray(d["weight"])
    return np.zeros(w.shape[0], w.dtype)


_CONV_DEFAULTS: tuple[tuple[str, Default], ...] = (
    *((k, _const(v)) for k, v in (("stride", 1), ("padding", 0), ("dilation", 1), ("groups", 1))),
    ("bias", _conv_bias),
)
_POOL_DEFAULTS = (("padding", lambda d: np.zeros(2, np.int64)),)
_V_RESET = ("v_reset", _zeros_like("v_threshold"))
_W_IN = ("w_in", _ones_like("tau_syn"))


def _neuron(kind: str, params: tuple[str, ...], required: tuple[str, ...], **traits: bool) -> None:
    t = NeuronTraits(**traits)
    defaults = ((_V_RESET,) if t.spiking else ()) + ((_W_IN,) if t.current else ())
    _spec(kind, "neuron", S.elementwise(params), required, defaults=defaults, neuron=t)


_spec("Input", "input", S.identity, ("shape",))
_spec("Output", "output", S.identity, ("shape",))
_spec("Affine", "linear", S.dense, ("weight", "bias"))
_spec("Linear", "linear", S.dense, ("weight",))
_spec("Scale", "linear", S.elementwise(("scale",)), ("scale",))
for _nd in (1, 2):
    _spec(f"Conv{_nd}d", "linear", S.conv(_nd), ("weight",), in_shape=S.conv_in(_nd), defaults=_CONV_DEFAULTS)
for _pool in ("SumPool2d", "AvgPool2d"):
    _spec(_pool, "linear", S.pool, ("kernel_size", "stride"), defaults=_POOL_DEFAULTS)
_spec("Flatten", "structural", S.flatten, (), defaults=(("start_dim", _const(1)), ("end_dim", _const(-1))))
_spec("Delay", "linear", S.elementwise(("delay",)), ("delay",))
_spec("Threshold", "nonlinear", S.elementwise(("threshold",)), ("threshold",))
_neuron("I", ("r",), ("r",), leaky=False, current=False, spiking=False)
_neuron("IF", ("r", "v_threshold", "v_reset"), ("r", "v_threshold"), leaky=False, current=False, spiking=True)
_neuron("LI", ("tau", "r", "v_leak"), ("tau", "r", "v_leak"), leaky=True, current=False, spiking=False)
_neuron(
    "LIF",
    ("tau", "r", "v_leak", "v_threshold", "v_reset"),
    ("tau", "r", "v_leak", "v_threshold"),
    leaky=True,
    current=False,
    spiking=True,
)
_neuron(
    "CubaLI",
    ("tau_syn", "tau_mem", "r", "v_leak", "w_in"),
    ("tau_syn", "tau_mem", "r", "v_leak"),
    leaky=True,
    current=True,
    spiking=False,
)
_neuron(
    "CubaLIF",
    ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in"),
    ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold"),
    leaky=True,
    current=True,
    spiking=True,
)


def kinds_with(role: Role) -> tuple[str, ...]:
    """Node types of one role, in table order."""
    return tuple(k for k in NODE_SPECS if NODE_SPECS.lookup(k, k).role == role)


#: Node types spikeport understands (nested ``NIRGraph`` is flattened away).
SUPPORTED_TYPES: tuple[str, ...] = NODE_SPECS.supported()
NEURON_TYPES: tuple[str, ...] = kinds_with("neuron")
SPIKING_TYPES: tuple[str, ...] = tuple(k for k in NODE_SPECS if NODE_SPECS.lookup(k, k).spiking)


def node_shapes(name: str, node: Any, incoming: list[Shape]) -> tuple[Shape, Shape]:
    """(input shape, output shape) of ``node`` fed by edges of shapes ``incoming``."""
    spec = NODE_SPECS.lookup(type(node).__name__, name)
    if spec.role == "input":
        declared = S.declared(node, "input_type")
        if declared is None:
            raise S.ShapeError(f"{name}: nir.Input has no input_type shape")
        if incoming:
            raise S.GraphError(f"{name}: an Input node cannot have incoming edges")
        return declared, declared
    if incoming:
        x = incoming[0]
        for other in incoming[1:]:
            S.check_fits(name, x, other, "a second edge")
    else:
        declared = S.declared(node, "input_type")
        if declared is None:
            raise S.ShapeError(f"{name}: has no incoming edge and no declared input_type")
        x = declared
    out = spec.shape(name, node, x)
    return (x if spec.in_shape is None else spec.in_shape(name, node, x)), out
