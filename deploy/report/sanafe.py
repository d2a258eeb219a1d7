"""Run a spikeport integer network in SANA-FE (PyPI ``sanafe``) on its calibrated Loihi 1 architecture.

Used to cross-check :mod:`spikeport.emulator.energy.estimate` with the ``sanafe-loihi1`` profile. Mapping:

- ``LIFGroup`` -> SANA-FE ``loihi_lif`` soma with ``threshold = vth``, ``leak_decay = (4096 - dv) /
  4096``, ``input_decay = (4096 - (du + 1)) / 4096``, ``bias = (bias_mant << bias_exp) / 64``, reset
  "hard" to 0 (``reset="zero"``) or "soft" (``"subtract"``). SANA-FE truncates the potential to 1/64
  after the leak, which equals Lava's ``sign * (|v * (4096 - dv)| >> 12)`` on ``v`` exactly; it does
  not truncate the current ``u``, so only ``du = 4095`` (no current state) is bit-exact and accepted.
- weights: ``effective_weights * 2**weight_exp`` (the potential unit is Lava's ``1 << 6``), one
  SANA-FE edge per nonzero weight. SANA-FE picks the synapse unit per target neuron, so a group's
  incoming connections must be all dense (``loihi_dense_synapse``) or all sparse (``..._sparse_...``).
- binary ``InputGroup`` channels -> ``loihi_inputs[k]`` somas with their spike trains (SANA-FE sends
  an input spike given for step t to its targets at step t + 1, as Lava's Dense does).
- placement: each group alone on ``ceil(n / 1024)`` consecutive cores, in network order. A network
  that fits in 4 cores runs on one tile (no mesh hops); larger ones use the full 8 x 4 mesh and pay
  hops, which spikeport does not model.
Not supported (``UnsupportedError``): delays, graded spikes, SigmaDelta/TernaryLIF groups, refractory
periods, LIFReset, nonzero initial states.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from spikeport.emulator.energy.synops import effective_weights
from spikeport.emulator.errors import MissingDependencyError, UnsupportedError
from spikeport.emulator.network import InputGroup, LIFGroup, Network, TernaryLIFGroup

PER_CORE = 1024


def _require_supported(net: Network) -> None:
    for i in net.inputs:
        if i.num_message_bits:
            raise UnsupportedError(
                f"SANA-FE bridge: InputGroup({i.name!r}) sends graded spikes (supported: binary)"
            )
    for g in net.groups:
        obj = f"SANA-FE bridge: {type(g).__name__}({g.name!r})"
        if not isinstance(g, LIFGroup) or isinstance(g, TernaryLIFGroup):
            raise UnsupportedError(f"{obj}: unsupported group type (supported: LIFGroup)")
        if g.max_spikes > 1:
            raise UnsupportedError(f"{obj}: max_spikes > 1 (SANA-FE's soma sends one spike per step)")
        if g.du != 4095 or g.refractory or g.reset_interval or np.any(g.u0) or np.any(g.v0):
            raise UnsupportedError(f"{obj}: needs du=4095, no refractory/LIFReset, zero initial u and v")
    for c in net.connections:
        if c.delays is not None and np.any(c.delays):
            raise UnsupportedError(f"SANA-FE bridge: Connection({c.name!r}) has delays (not supported)")
        if c.num_message_bits:
            raise UnsupportedError(f"SANA-FE bridge: Connection({c.name!r}) is graded (not supported)")


def _synapse_hw(net: Network, target: str) -> str:
    """SANA-FE picks the synapse unit per target neuron: all incoming connections must agree."""
    kinds = {c.sparse for c in net.incoming(target)}
    if len(kinds) > 1:
        raise UnsupportedError(f"SANA-FE bridge: group {target!r} mixes dense and sparse inputs")
    return "loihi_sparse_synapse" if kinds == {True} else "loihi_dense_synapse"


def _lif_attributes(g: LIFGroup) -> dict[str, Any]:
    return {
        "threshold": float(g.vth),
        "leak_decay": (4096 - float(g.dv)) / 4096,
        "input_decay": (4096 - (float(g.du) + 1)) / 4096,
        "reset": 0.0,
        "reset_mode": "hard" if g.reset == "zero" else "soft",
    }


def _bias(g: LIFGroup) -> np.ndarray:
    m = g.bias_mant.astype(np.int64)
    e = g.bias_exp.astype(np.int64)
    return np.where(e >= 0, m << np.maximum(e, 0), m >> np.maximum(-e, 0)) / 64.0


def _load_arch(sanafe: Any, net: Network) -> Any:
    """SANA-FE's bundled ``loihi.yaml``, trimmed for speed: one tile (4 cores, no hops) when the
    network fits, and only as many input somas per core as the widest input group needs."""
    import tempfile
    from importlib.resources import files

    text = files("sanafe.examples").joinpath("loihi.yaml").read_text(encoding="utf-8")
    cores = sum(-(-int(g.n) // PER_CORE) for g in (*net.inputs, *net.groups))
    if cores <= 4:
        text = text.replace("loihi_tile[0..31]", "loihi_tile[0..0]")
        text = text.replace("width: 8", "width: 1").replace("height: 4", "height: 1")
    widest = min(PER_CORE, max(int(g.n) for g in net.inputs))
    text = text.replace(f"loihi_inputs[0..{PER_CORE - 1}]", f"loihi_inputs[0..{widest - 1}]")
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/loihi.yaml"
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        return sanafe.load_arch(path)


def _neuron_group(snn: Any, g: InputGroup | LIFGroup, net: Network, x: np.ndarray) -> Any:
    """``g`` as a SANA-FE neuron group: input neurons replay ``x``; LIF neurons get their attributes."""
    if isinstance(g, InputGroup):
        grp = snn.create_neuron_group(g.name, int(g.n), soma_hw_name="loihi_inputs[0]")
        for i in range(int(g.n)):
            grp[i].set_attributes(
                soma_hw_name=f"loihi_inputs[{i % PER_CORE}]",
                model_attributes={"spikes": [bool(v) for v in x[:, i]]},
            )
        return grp
    grp = snn.create_neuron_group(
        g.name,
        int(g.n),
        model_attributes=_lif_attributes(g),
        soma_hw_name="loihi_lif",
        default_synapse_hw_name=_synapse_hw(net, g.name),
        log_spikes=True,
    )
    for i, b in enumerate(_bias(g)):
        if b:
            grp[i].set_attributes(model_attributes={"bias": float(b)})
    return grp


def _build_snn(sanafe: Any, net: Network, x: np.ndarray, cores: list[Any]) -> Any:
    """The SANA-FE network: every group mapped to cores (``PER_CORE`` neurons each), every connection."""
    snn = sanafe.Network()
    handles: dict[str, Any] = {}
    next_core = 0
    for g in (*net.inputs, *net.groups):
        assert isinstance(g, InputGroup | LIFGroup)  # _require_supported refused every other type
        grp = _neuron_group(snn, g, net, x)
        for i in range(int(g.n)):
            grp[i].map_to_core(cores[next_core + i // PER_CORE])
        next_core += -(-int(g.n) // PER_CORE)
        handles[g.name] = grp
    for c in net.connections:
        w = effective_weights(c).astype(np.float64) * 2.0 ** int(c.weight_exp)
        rows, cols = np.nonzero(w)
        handles[c.source].connect_neurons_sparse(
            handles[c.target],
            {"weight": [float(v) for v in w[rows, cols]]},
            [(int(s), int(d)) for s, d in zip(cols, rows)],
        )
    return snn


def _spikes(net: Network, res: dict[str, Any], steps: int) -> dict[str, np.ndarray]:
    """SANA-FE's spike trace as ``{group: (T, n) bool}``."""
    spikes = {g.name: np.zeros((steps, int(g.n)), dtype=bool) for g in net.groups}
    for t, fired in enumerate(res["spike_trace"]):
        for addr in fired:
            if addr.group_name in spikes:
                spikes[addr.group_name][t, addr.neuron_offset] = True
    return spikes


def run_sanafe(net: Network, x: np.ndarray, *, timing_model: str = "simple") -> dict[str, Any]:
    """Simulate one sample ``x`` (T, n_in) of a single-input network in SANA-FE's Loihi 1 model.

    Returns ``{"energy_pj": {"synapse", "dendrite", "soma", "network", "total"}, "spikes": {group:
    (T, n) bool}, "raw": SANA-FE's result without traces}``.
    """
    try:
        import sanafe
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError("SANA-FE is not installed: pip install sanafe==2.2.9") from exc
    _require_supported(net)
    x = np.asarray(x)
    steps = x.shape[0]
    arch = _load_arch(sanafe, net)
    cores = [c for tile in arch.tiles for c in tile.cores]
    chip = sanafe.SpikingChip(arch)
    chip.load(_build_snn(sanafe, net, x, cores))
    res = chip.sim(steps, timing_model=timing_model, spike_trace=True)
    energy = {k: float(v) * 1e12 for k, v in res["energy"].items()}
    raw = {k: v for k, v in res.items() if not k.endswith("_trace")}
    return {"energy_pj": energy, "spikes": _spikes(net, res, steps), "raw": raw}
