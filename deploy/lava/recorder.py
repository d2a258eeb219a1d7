"""One Lava process that records many Vars and OutPorts (Lava's Monitor records one).

Lava's ``Monitor`` (lava-nc 0.10.0) holds a single probe, and every Lava process is an OS process
(about 35 ms each to compile and start on a 2-core machine), so one Monitor per recorded variable
dominates the cost of a run. :class:`Recorder` uses Monitor's own mechanism for many targets at once:
a ``RefPort`` per Var, read in the post-management phase of step ``t`` into row ``t - 1``, and an
``InPort`` per OutPort, received in the spiking phase of step ``t``. The values are those a Monitor
would record (checked against Monitors in tests/test_lava_backend.py).

Lava's model search cannot find a model for a Process defined outside Lava's own folders, so the
model class is built per instance and handed to the run configuration through
``exception_proc_model_map`` (:func:`model_map`).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np
from spikeport.lava.compat import import_lava


@cache
def _recorder_class() -> type:
    process = import_lava("lava.magma.core.process.process")
    variable = import_lava("lava.magma.core.process.variable")
    ports = import_lava("lava.magma.core.process.ports.ports")

    class Recorder(process.AbstractProcess):  # type: ignore[misc, name-defined]
        """Records ``targets`` (Vars and OutPorts) for ``steps`` steps into ``buf_<i>`` Vars."""

        def __init__(self, *, targets: Sequence[Any], steps: int) -> None:
            kinds = ["var" if isinstance(t, variable.Var) else "port" for t in targets]
            super().__init__(kinds=kinds, steps=steps)
            for i, (target, kind) in enumerate(zip(targets, kinds, strict=True)):
                setattr(self, f"buf_{i}", variable.Var(shape=(steps, *target.shape), init=0))
                if kind == "var":
                    port = ports.RefPort(shape=target.shape)
                    setattr(self, f"port_{i}", port)
                    port.connect_var(target)
                else:
                    port = ports.InPort(shape=target.shape)
                    setattr(self, f"port_{i}", port)
                    port.connect_from(target)

    return Recorder


def recorder(targets: Sequence[Any], steps: int) -> Any:
    """A Recorder process probing ``targets`` (Lava Vars or OutPorts) for ``steps`` steps."""
    return _recorder_class()(targets=list(targets), steps=int(steps))


def _model_class(kinds: tuple[str, ...]) -> type:
    model = import_lava("lava.magma.core.model.py.model")
    pyports = import_lava("lava.magma.core.model.py.ports")
    pytype = import_lava("lava.magma.core.model.py.type")
    deco = import_lava("lava.magma.core.decorator")
    resources = import_lava("lava.magma.core.resources")
    protocol = import_lava("lava.magma.core.sync.protocols.loihi_protocol")
    var_ids = [i for i, k in enumerate(kinds) if k == "var"]
    port_ids = [i for i, k in enumerate(kinds) if k == "port"]

    def post_guard(self: Any) -> bool:
        return True

    def run_post_mgmt(self: Any) -> None:
        for i in var_ids:
            getattr(self, f"buf_{i}")[self.time_step - 1, ...] = np.array(getattr(self, f"port_{i}").read())

    def run_spk(self: Any) -> None:
        for i in port_ids:
            getattr(self, f"buf_{i}")[self.time_step - 1, ...] = np.array(getattr(self, f"port_{i}").recv())

    ns: dict[str, Any] = {"post_guard": post_guard, "run_post_mgmt": run_post_mgmt, "run_spk": run_spk}
    for i in var_ids:
        ns[f"port_{i}"] = pytype.LavaPyType(pyports.PyRefPort.VEC_DENSE, int)
    for i in port_ids:
        ns[f"port_{i}"] = pytype.LavaPyType(pyports.PyInPort.VEC_DENSE, int)
    for i in range(len(kinds)):
        ns[f"buf_{i}"] = pytype.LavaPyType(np.ndarray, float)  # float64: exact for 32-bit integers
    cls = type("PyRecorderModel", (model.PyLoihiProcessModel,), ns)
    cls = deco.implements(proc=_recorder_class(), protocol=protocol.LoihiProtocol)(cls)
    return deco.requires(resources.CPU)(cls)  # type: ignore[no-any-return]


def model_map(rec: Any) -> dict[Any, type]:
    """``exception_proc_model_map`` entry for ``rec`` (keyed by the instance, as Lava looks it up)."""
    return {rec: _model_class(tuple(rec.proc_params["kinds"]))}


def read(rec: Any, index: int) -> np.ndarray:
    """The recorded ``(steps, *shape)`` array of target ``index``, as int64."""
    return np.asarray(getattr(rec, f"buf_{index}").get(), np.float64).astype(np.int64)
