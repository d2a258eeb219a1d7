"""The corrected sigma-delta neuron (upstream Lava PR #875) as a spikeport Lava process.

lava-nc 0.10.0's ``PySigmaDeltaModelFixed`` drops the least significant bits that ``s_out >> state_exp``
shifts out, so the receiver's reconstruction drifts (docs/lava-arithmetic.md, "Sigma-delta"). Upstream
PR #875 (``PySigmaDeltaModelFixedCorrected``) makes ``act`` track what the receiver reconstructs; it
is not in any released lava-nc. :func:`process_class` is a Lava process with the port and Var layout
of Lava's own ``SigmaDelta`` (``a_in``, ``s_out``; ``vth``, ``sigma``, ``act``, ``residue``,
``error``, ``bias``, ``spike_exp``, ``state_exp``, ``cum_error``; ``vth`` and ``bias`` scaled by
``2**(spike_exp + state_exp)`` at init), so :mod:`spikeport.lava.process_graph` wires and records it
like ``SigmaDelta``. Its fixed_pt model (:func:`model_class`), per step, every sum wrapping in int32::

    sigma <- sigma + a_in
    act_new <- relu(sigma + bias)          (act_mode UNIT: sigma + bias)
    delta <- act_new - act;   s = delta where |delta| >= vth, else 0
    sent = s >> state_exp;    act <- act + (sent << state_exp);   s_out <- sent

``residue`` and ``error`` stay 0 and ``cum_error`` is ignored, as upstream. This is the arithmetic of
the emulator's ``SigmaDeltaGroup(corrected=True)``, written again here in plain numpy (tests compare
the two step for step). Lava's model search only looks in Lava's own folders, so
:mod:`spikeport.lava.process_graph` hands :func:`model_class` to the run configuration
(``exception_proc_model_map``).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
from spikeport.lava.compat import import_lava

_MASK = (1 << 32) - 1
_HALF = 1 << 31


def _wrap(x: np.ndarray) -> np.ndarray:
    """int64 -> the int32 two's-complement value, kept in int64."""
    return ((np.asarray(x, np.int64) + _HALF) & _MASK) - _HALF


def corrected_step(
    state: tuple[np.ndarray, np.ndarray],
    a_in: np.ndarray,
    *,
    vth: int,
    bias: np.ndarray,
    relu: bool,
    state_exp: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One step on int64 copies of the int32 state ``(sigma, act)``: ``(sigma, act, sent)``."""
    sigma = _wrap(state[0] + np.asarray(a_in, np.int64))
    act_new = _wrap(sigma + np.asarray(bias, np.int64))
    if relu:
        act_new = np.maximum(act_new, 0)
    delta = _wrap(act_new - state[1])
    s = np.where(_wrap(np.abs(delta)) >= vth, delta, 0)
    sent = s >> state_exp
    act = _wrap(state[1] + (sent << state_exp))
    return sigma, act, sent


@cache
def process_class() -> type:
    """``SigmaDeltaCorrected``: Lava's ``SigmaDelta`` interface, the PR #875 model."""
    process = import_lava("lava.magma.core.process.process")
    variable = import_lava("lava.magma.core.process.variable")
    ports = import_lava("lava.magma.core.process.ports.ports")
    sdn = import_lava("lava.proc.sdn.process")

    class SigmaDeltaCorrected(process.AbstractProcess):  # type: ignore[misc, name-defined]
        """Sigma-delta neuron with the LSBs shifted out of ``s_out`` fed back (PR #875)."""

        spikeport_fixed_pt_model = staticmethod(lambda: model_class())

        def __init__(
            self,
            *,
            shape: tuple[int, ...],
            vth: int,
            bias: Any = 0,
            act_mode: Any = sdn.ActivationMode.RELU,
            spike_exp: int = 0,
            state_exp: int = 0,
        ) -> None:
            super().__init__(
                shape=shape, vth=vth, bias=bias, act_mode=act_mode, spike_exp=spike_exp, state_exp=state_exp
            )
            scale = 1 << (int(spike_exp) + int(state_exp))
            self.a_in = ports.InPort(shape=shape)
            self.s_out = ports.OutPort(shape=shape)
            self.vth = variable.Var(shape=(1,), init=int(vth) * scale)
            for name in ("sigma", "act", "residue", "error"):
                setattr(self, name, variable.Var(shape=shape, init=0))
            self.bias = variable.Var(shape=shape, init=np.asarray(bias, np.int64) * scale)
            self.spike_exp = variable.Var(shape=(1,), init=int(spike_exp))
            self.state_exp = variable.Var(shape=(1,), init=int(state_exp))
            self.cum_error = variable.Var(shape=(1,), init=False)

    return SigmaDeltaCorrected


@cache
def model_class() -> type:
    """The fixed_pt ProcessModel of :func:`process_class` (the module docstring's arithmetic)."""
    model = import_lava("lava.magma.core.model.py.model")
    pyports = import_lava("lava.magma.core.model.py.ports")
    pytype = import_lava("lava.magma.core.model.py.type")
    deco = import_lava("lava.magma.core.decorator")
    resources = import_lava("lava.magma.core.resources")
    protocol = import_lava("lava.magma.core.sync.protocols.loihi_protocol")
    sdn = import_lava("lava.proc.sdn.process")

    def run_spk(self: Any) -> None:
        sigma, act, sent = corrected_step(
            (self.sigma, self.act),
            self.a_in.recv(),
            vth=int(self.vth[0]),
            bias=self.bias,
            relu=self.proc_params["act_mode"] == sdn.ActivationMode.RELU,
            state_exp=int(self.state_exp[0]),
        )
        self.sigma[:] = sigma
        self.act[:] = act
        self.s_out.send(sent.astype(np.int32))

    ns: dict[str, Any] = {"run_spk": run_spk}
    ns["a_in"] = pytype.LavaPyType(pyports.PyInPort.VEC_DENSE, np.int32, precision=24)
    ns["s_out"] = pytype.LavaPyType(pyports.PyOutPort.VEC_DENSE, np.int32, precision=24)
    for name in ("vth", "sigma", "act", "residue", "error", "bias", "spike_exp", "state_exp"):
        ns[name] = pytype.LavaPyType(np.ndarray, np.int32, precision=24)
    ns["cum_error"] = pytype.LavaPyType(np.ndarray, bool, precision=1)
    cls = type("PySigmaDeltaCorrectedModelFixed", (model.PyLoihiProcessModel,), ns)
    cls = deco.implements(proc=process_class(), protocol=protocol.LoihiProtocol)(cls)
    cls = deco.tag("fixed_pt")(cls)
    return deco.requires(resources.CPU)(cls)  # type: ignore[no-any-return]
