"""spikeport's own LIF for Lava: a Lava process with a ``fixed_pt`` ProcessModel for what Lava's LIF lacks.

Lava's fixed_pt ``LIF`` / ``LIFReset`` / ``TernaryLIF`` (lava-nc 0.10.0) reset v to 0, have no
refractory period, no TernaryLIF with periodic reset and send one spike per step. ``SpikeportLIF`` has
the port layout of Lava's LIF (``a_in``, ``s_out``; Vars ``u``, ``v``, ``du``, ``dv``, ``bias_mant``,
``bias_exp``, ``vth``) plus ``vth_lo`` and the refractory counter ``ref``, so the process graph and the
recorder wire it like Lava's own. Its model inherits Lava's ``AbstractPyLifModelFixed``: the sub-threshold
dynamics (u/v decay rounded toward zero, u wrap, v clip, bias) are Lava's own code; the model adds, per
step ``t`` (1-based):

1. LIFReset: u and v zeroed when ``t % reset_interval == reset_offset`` (``reset_interval > 0``);
2. Lava's integration of u and v; during a refractory period v keeps its value from before the step;
3. the message: ternary ``+1 / -1`` (``v > vth << 6`` / ``v < vth_lo << 6``), or with ``max_spikes`` > 1
   ``k = min(max_spikes, v // (vth << 6))`` where ``v > vth << 6`` (else 0), or 0/1; none while refractory;
4. on a message: v <- 0 (reset "zero") or v <- v - k (vth << 6) (reset "subtract"); a refractory
   period of ``refractory`` steps starts (it counts down while the neuron is refractory).

The message is sent as an int32 payload: a connection with ``num_message_bits > 0`` multiplies it by its
weights (graded spikes), one with ``num_message_bits == 0`` sees a spike wherever it is nonzero.
These neurons run in Lava on CPU only (Python models); Loihi 2 silicon would need neuron microcode.
The classes are built on first use (:func:`process_class`, :func:`model_class`), so that importing this
module does not import Lava.
"""

from __future__ import annotations

from functools import cache
from typing import Any, NamedTuple

import numpy as np
from spikeport.emulator.network import LIFGroup, TernaryLIFGroup
from spikeport.lava.compat import import_lava

#: Loihi's MSB alignment of the threshold (Lava's ``vth_shift``)
VTH_SHIFT = 6


class LifRule(NamedTuple):
    """What a SpikeportLIF does beyond Lava's LIF (passed to its model as a process parameter)."""

    reset: str
    refractory: int
    reset_interval: int
    reset_offset: int
    max_spikes: int
    ternary: bool


def lif_rule(g: LIFGroup) -> LifRule:
    """The rule of group ``g`` (``max_spikes`` read with a default of 1)."""
    return LifRule(
        reset=str(g.reset),
        refractory=int(g.refractory),
        reset_interval=int(g.reset_interval),
        reset_offset=int(g.reset_offset),
        max_spikes=int(getattr(g, "max_spikes", 1)),
        ternary=isinstance(g, TernaryLIFGroup),
    )


def needs_spikeport_lif(g: LIFGroup) -> bool:
    """True where Lava's own LIF, LIFReset or TernaryLIF cannot run ``g``."""
    r = lif_rule(g)
    return r.reset != "zero" or r.refractory > 0 or r.max_spikes > 1 or (r.ternary and r.reset_interval > 0)


def messages(r: LifRule, v: np.ndarray, vth: int, vth_lo: int) -> np.ndarray:
    """The payload of every neuron for voltages ``v`` (after integration, before reset), int64."""
    v = np.asarray(v, np.int64)
    hi = int(vth) << VTH_SHIFT
    if r.ternary:
        return (v > hi).astype(np.int64) - (v < (int(vth_lo) << VTH_SHIFT)).astype(np.int64)
    above = v > hi
    if r.max_spikes <= 1:
        return above.astype(np.int64)
    count = v // max(hi, 1) if hi > 0 else np.full_like(v, r.max_spikes)
    return np.where(above, np.minimum(count, r.max_spikes), 0)


def after_messages(r: LifRule, v: np.ndarray, s: np.ndarray, vth: int) -> np.ndarray:
    """v after the reset of the neurons that sent ``s``."""
    if r.reset == "subtract":
        return np.asarray(v, np.int64) - np.asarray(s, np.int64) * (int(vth) << VTH_SHIFT)
    return np.where(s != 0, 0, v)


@cache
def process_class() -> type:
    """The ``SpikeportLIF`` Lava process class."""
    lif = import_lava("lava.proc.lif.process")
    variable = import_lava("lava.magma.core.process.variable")

    class SpikeportLIF(lif.AbstractLIF):  # type: ignore[misc, name-defined]
        """Lava's LIF Vars and ports, plus ``vth_lo`` and the refractory counter ``ref``; the
        :class:`LifRule` travels as the process parameter ``rule``."""

        #: the process graph asks a spikeport process for its fixed_pt model through this
        spikeport_fixed_pt_model = staticmethod(model_class)

        def __init__(
            self, *, shape: tuple[int, ...], vth: int, vth_lo: int, rule: LifRule, **kw: Any
        ) -> None:
            super().__init__(shape=shape, name=None, log_config=None, rule=rule, **kw)
            self.vth = variable.Var(shape=(1,), init=int(vth))
            self.vth_lo = variable.Var(shape=(1,), init=int(vth_lo))
            self.ref = variable.Var(shape=shape, init=0)

    return SpikeportLIF


def _run_spk(self: Any) -> None:
    """One step of :class:`SpikeportLIF` (the order of the module docstring)."""
    r: LifRule = self.rule
    a_in = self.a_in.recv()
    if r.reset_interval and self.time_step % r.reset_interval == r.reset_offset % r.reset_interval:
        self.u[:] = 0
        self.v[:] = 0
    self.scale_bias()
    held = self.v.copy()
    self.subthr_dynamics(activation_in=a_in)  # Lava's own fixed-point u and v update
    frozen = self.ref > 0
    v = np.where(frozen, held, self.v)
    s = np.where(frozen, 0, messages(r, v, int(self.vth), int(self.vth_lo)))
    self.v[:] = after_messages(r, v, s, int(self.vth))
    if r.refractory:
        self.ref[:] = np.where(s != 0, r.refractory, np.maximum(self.ref - 1, 0))
    self.s_out.send(s.astype(np.int32))


@cache
def model_class() -> type:
    """The fixed_pt ProcessModel of :func:`process_class` (Lava's ``AbstractPyLifModelFixed`` + the rule)."""
    models = import_lava("lava.proc.lif.models")
    pyports = import_lava("lava.magma.core.model.py.ports")
    pytype = import_lava("lava.magma.core.model.py.type")
    deco = import_lava("lava.magma.core.decorator")
    resources = import_lava("lava.magma.core.resources")
    protocol = import_lava("lava.magma.core.sync.protocols.loihi_protocol")

    def __init__(self: Any, proc_params: Any) -> None:
        models.AbstractPyLifModelFixed.__init__(self, proc_params)
        self.rule = proc_params["rule"]

    ns: dict[str, Any] = {
        "__init__": __init__,
        "run_spk": _run_spk,
        "s_out": pytype.LavaPyType(pyports.PyOutPort.VEC_DENSE, np.int32, precision=24),
        "vth": pytype.LavaPyType(int, np.int32, precision=17),
        "vth_lo": pytype.LavaPyType(int, np.int32, precision=17),
        "ref": pytype.LavaPyType(np.ndarray, np.int32, precision=17),
    }
    cls = type("PySpikeportLifModelFixed", (models.AbstractPyLifModelFixed,), ns)
    cls = deco.implements(proc=process_class(), protocol=protocol.LoihiProtocol)(cls)
    cls = deco.tag("fixed_pt")(cls)
    return deco.requires(resources.CPU)(cls)  # type: ignore[no-any-return]


def spikeport_lif(g: LIFGroup, batch: int = 1) -> Any:
    """A ``SpikeportLIF`` process for group ``g`` (``batch`` copies side by side, sample-major)."""
    return process_class()(
        shape=(int(g.n) * batch,),
        du=int(g.du),
        dv=int(g.dv),
        bias_mant=np.tile(np.asarray(g.bias_mant, np.int64), batch),
        bias_exp=np.tile(np.asarray(g.bias_exp, np.int64), batch),
        u=np.tile(np.asarray(g.u0, np.int64), batch),
        v=np.tile(np.asarray(g.v0, np.int64), batch),
        vth=int(g.vth),
        vth_lo=int(getattr(g, "vth_lo", 0)),
        rule=lif_rule(g),
    )
