"""Run a netx file through lava-dl's own loader on Lava (an optional path: tests and cross-checks).

lava-dl is never a runtime dependency of spikeport. lava-dl 0.6.0 pins Python < 3.11 like lava-nc;
installed with ``--no-deps --ignore-requires-python`` it imports after spikeport's Lava shim, except
that ``lava.lib.dl.slayer`` imports its object-detection helpers (OpenCV, PIL, torchvision) on
import, which netx never uses: :func:`import_netx` registers an empty module in their place.

:func:`run_netx_lava` builds ``lava.lib.dl.netx.hdf5.Network`` from the file, runs it with
``Loihi2SimCfg(select_tag="fixed_pt")`` and records every layer's neuron state and output with
spikeport's :mod:`~spikeport.lava.recorder` (after step ``t`` into row ``t - 1``, as the emulator
records).
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
from spikeport.emulator.errors import MissingDependencyError
from spikeport.lava import recorder
from spikeport.lava.compat import import_lava

_STUB = "lava.lib.dl.slayer.object_detection"
INSTALL_HINT = "lava-dl is not installed: pip install --no-deps --ignore-requires-python lava-dl==0.6.0"

#: neuron Vars recorded per Lava process type (besides the output port ``s_out``)
VARS = {
    "LIF": ("u", "v"),
    "LIFReset": ("u", "v"),
    "SigmaDelta": ("sigma", "act", "residue"),
    "Sigma": ("sigma",),
}


def import_netx() -> types.ModuleType:
    """``lava.lib.dl.netx`` imported through the Lava shim (``MissingDependencyError`` if absent)."""
    import importlib.util

    import_lava()
    if importlib.util.find_spec("lava.lib.dl") is None:
        raise MissingDependencyError(INSTALL_HINT)
    if _STUB not in sys.modules:
        try:
            import_lava(_STUB)
        except ImportError:
            sys.modules[_STUB] = types.ModuleType(_STUB)
    return import_lava("lava.lib.dl.netx")


def _targets(net: Any) -> tuple[list[Any], list[tuple[int, str]]]:
    targets, keys = [], []
    for k, block in enumerate(net.layers):
        neuron = block.neuron
        for var in VARS.get(type(neuron).__name__, ()):
            targets.append(getattr(neuron, var))
            keys.append((k, var))
        targets.append(neuron.s_out)
        keys.append((k, "spikes"))
    return targets, keys


def run_netx_lava(
    path: str | Path,
    steps: int,
    *,
    reset_interval: int | None = None,
    reset_offset: int = 0,
    input_bias: np.ndarray | None = None,
    inputs: np.ndarray | None = None,
    input_message_bits: int = 0,
    num_layers: int | None = None,
) -> list[dict[str, np.ndarray]]:
    """Per netx block (``net.layers`` order): ``{"u", "v", "spikes", ...}`` -> ``(steps, n)``.

    ``inputs`` (``(steps, n_in)`` in spikeport's neuron order) feed ``net.inp`` through a RingBuffer;
    ``input_bias`` sets the input neuron's ``bias_mant`` (as lava-dl's tinynet test does).
    """
    netx = import_netx()
    conv_utils = import_lava("lava.proc.conv.utils")
    conv_utils.TORCH_IS_AVAILABLE = False  # type: ignore[attr-defined]  # as lava-dl's tests (torch vs fork)
    source_mod = import_lava("lava.proc.io.source")
    run_cfg = import_lava("lava.magma.core.run_configs")
    run_cond = import_lava("lava.magma.core.run_conditions")
    net = netx.hdf5.Network(
        net_config=str(path),
        reset_interval=reset_interval,
        reset_offset=reset_offset,
        input_message_bits=input_message_bits,
        num_layers=num_layers,
    )
    if input_bias is not None:
        net.in_layer.neuron.bias_mant.init = np.asarray(input_bias).reshape(
            net.in_layer.neuron.bias_mant.shape
        )
    if inputs is not None:
        shape = tuple(net.inp.shape)
        data = np.asarray(inputs).T.reshape(*shape, -1)
        src = source_mod.RingBuffer(data=data.astype(np.int32))
        src.s_out.connect(net.inp)
    targets, keys = _targets(net)
    rec = recorder.recorder(targets, steps)
    cfg = run_cfg.Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map=recorder.model_map(rec))
    try:
        net.run(condition=run_cond.RunSteps(num_steps=int(steps)), run_cfg=cfg)
        out: list[dict[str, np.ndarray]] = [{} for _ in net.layers]
        for i, (k, var) in enumerate(keys):
            out[k][var] = recorder.read(rec, i).reshape(int(steps), -1)
    finally:
        net.stop()
    return out
