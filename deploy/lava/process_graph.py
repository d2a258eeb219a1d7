"""The Lava process graph of an integer network: build it, run it (fixed_pt), read what it recorded.

Used by :mod:`spikeport.lava.backend` (whose docstring describes the mapping). One call of
:func:`run_samples` builds the processes for one sample (or several, packed), runs them for ``T`` steps with
``Loihi2SimCfg(select_tag="fixed_pt")`` and always stops them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from spikeport.emulator.errors import UnsupportedError
from spikeport.emulator.network import Connection, LIFGroup, Network, SigmaDeltaGroup, TernaryLIFGroup
from spikeport.emulator.sparse_weights import SparseWeights
from spikeport.lava import lif_processes
from spikeport.lava import recorder as lava_recorder
from spikeport.lava.compat import import_lava

#: spikeport variable -> Lava Var / port name, per group type ("" = computed from a_out monitors)
LAVA_NAMES: dict[type, dict[str, str]] = {
    LIFGroup: {"spikes": "s_out", "u": "u", "v": "v", "a_in": ""},
    TernaryLIFGroup: {"spikes": "s_out", "u": "u", "v": "v", "a_in": ""},
    SigmaDeltaGroup: {
        "spikes": "s_out",
        "sigma": "sigma",
        "act": "act",
        "residue": "residue",
        "error": "error",
        "a_in": "",
    },
}
INT32 = (-(1 << 31), (1 << 31) - 1)
#: Lava process class -> the model ``Loihi2SimCfg(select_tag="fixed_pt")`` selects for it (a test
#: checks this). Naming it skips Lava's model search, which re-executes every module of the
#: process's folder for every process instance (about 15 ms each).
FIXED_PT_MODELS: dict[str, tuple[str, str]] = {
    "RingBuffer": ("lava.proc.io.source", "PySendModelFixed"),
    "Dense": ("lava.proc.dense.models", "PyDenseModelBitAcc"),
    "DelayDense": ("lava.proc.dense.models", "PyDelayDenseModelBitAcc"),
    "Sparse": ("lava.proc.sparse.models", "PySparseModelBitAcc"),
    "DelaySparse": ("lava.proc.sparse.models", "PyDelaySparseModelBitAcc"),
    "LIF": ("lava.proc.lif.models", "PyLifModelBitAcc"),
    "LIFReset": ("lava.proc.lif.models", "PyLifResetModelBitAcc"),
    "TernaryLIF": ("lava.proc.lif.models", "PyTernLifModelFixed"),
    "SigmaDelta": ("lava.proc.sdn.models", "PySigmaDeltaModelFixed"),
}


@dataclass
class LavaModules:
    lif: Any
    dense: Any
    sparse: Any
    sdn: Any
    source: Any
    cfg: Any
    cond: Any
    csr: Any
    block: Callable[[np.ndarray, int], Any]
    sparse_warning: Any


def lava_modules() -> LavaModules:
    """The Lava modules this mapping uses, imported through the 3.11 shim."""
    from scipy.sparse import SparseEfficiencyWarning, block_diag, csr_matrix

    def block(w: np.ndarray, batch: int) -> Any:
        return block_diag([csr_matrix(w)] * batch, format="csr", dtype=np.int64)

    return LavaModules(
        lif=import_lava("lava.proc.lif.process"),
        dense=import_lava("lava.proc.dense.process"),
        sparse=import_lava("lava.proc.sparse.process"),
        sdn=import_lava("lava.proc.sdn.process"),
        source=import_lava("lava.proc.io.source"),
        cfg=import_lava("lava.magma.core.run_configs"),
        cond=import_lava("lava.magma.core.run_conditions"),
        csr=csr_matrix,
        block=block,
        sparse_warning=SparseEfficiencyWarning,
    )


def lif_process(L: LavaModules, g: LIFGroup, batch: int = 1) -> Any:
    """``LIF``, ``LIFReset`` (reset_interval > 0) or ``TernaryLIF`` with the group's parameters
    (``batch`` copies side by side, sample-major); spikeport's ``SpikeportLIF``
    (:mod:`~spikeport.lava.lif_processes`) where those cannot run the group (subtract reset,
    refractory period, multi-spike, TernaryLIF with reset_interval)."""
    if lif_processes.needs_spikeport_lif(g):
        return lif_processes.spikeport_lif(g, batch)
    common = dict(
        shape=(int(g.n) * batch,),
        du=int(g.du),
        dv=int(g.dv),
        bias_mant=np.tile(g.bias_mant.astype(np.int64), batch),
        bias_exp=np.tile(g.bias_exp.astype(np.int64), batch),
        u=np.tile(g.u0.astype(np.int64), batch),
        v=np.tile(g.v0.astype(np.int64), batch),
    )
    if isinstance(g, TernaryLIFGroup):
        return L.lif.TernaryLIF(**common, vth_hi=int(g.vth), vth_lo=int(g.vth_lo))
    if g.reset_interval:
        return L.lif.LIFReset(
            **common, vth=int(g.vth), reset_interval=int(g.reset_interval), reset_offset=int(g.reset_offset)
        )
    return L.lif.LIF(**common, vth=int(g.vth))


def sigma_delta_process(L: LavaModules, g: SigmaDeltaGroup, batch: int = 1) -> Any:
    """``SigmaDelta`` (Lava scales vth and bias by ``2**(spike_exp + state_exp)`` itself); a
    corrected group -> spikeport's ``SigmaDeltaCorrected`` (PR #875, same ports and Vars:
    :mod:`spikeport.lava.sigma_delta_process`)."""
    mode = L.sdn.ActivationMode.RELU if g.act_mode == "relu" else L.sdn.ActivationMode.UNIT
    kw = dict(shape=(int(g.n) * batch,), vth=int(g.vth), bias=np.tile(np.asarray(g.bias, np.int64), batch))
    kw.update(act_mode=mode, spike_exp=int(g.spike_exp), state_exp=int(g.state_exp))
    if g.corrected:
        from spikeport.lava.sigma_delta_process import process_class

        return process_class()(**kw)
    return L.sdn.SigmaDelta(**kw, cum_error=bool(g.cum_error))


_NEURON_BUILDERS: dict[type, Callable[[LavaModules, Any, int], Any]] = {
    LIFGroup: lif_process,
    TernaryLIFGroup: lif_process,
    SigmaDeltaGroup: sigma_delta_process,
}


def _conn_proc(L: LavaModules, c: Connection, w: Any, delays: np.ndarray | None, batch: int = 1) -> Any:
    """``w``: a dense array, or a ``scipy.sparse`` matrix for sparse weights (``c.sparse`` is then
    True, so it becomes a Sparse process without being made dense)."""
    kw = dict(weight_exp=int(c.weight_exp), num_weight_bits=int(c.num_weight_bits))
    kw["num_message_bits"] = int(c.num_message_bits)
    w = w.astype(np.int64)
    if batch > 1:
        # ``batch`` copies on the block diagonal of one Sparse process. Lava's sign mode of the
        # block-diagonal csr (implicit zeros included in min/max) is that of ``w``, and zeros add
        # nothing, so each block computes what a Dense of ``w`` computes (same clip, truncation,
        # shift and int32 accumulation; Sparse and Dense agree bit for bit:
        # docs/lava-arithmetic.md, "Sparse, Delay and Conv").
        if delays is not None:
            raise UnsupportedError(f"Connection({c.name!r}): delayed connections run sample by sample")
        return L.sparse.Sparse(weights=L.block(w, batch), **kw)
    if delays is None:
        return L.sparse.Sparse(weights=L.csr(w), **kw) if c.sparse else L.dense.Dense(weights=w, **kw)
    d = delays.astype(int)
    if c.sparse:
        return L.sparse.DelaySparse(weights=L.csr(w), delays=L.csr(d), **kw)
    return L.dense.DelayDense(weights=w, delays=d, **kw)


def _padded(c: Connection, offset: int, width: int) -> tuple[Any, np.ndarray | None]:
    """Weights (and delays) of an input connection seen through the whole stacked source (a
    ``scipy.sparse`` matrix for sparse weights)."""
    n_out, n_src = c.weights.shape
    if isinstance(c.weights, SparseWeights):
        from scipy.sparse import csr_matrix

        sw = c.weights
        return csr_matrix(
            (sw.data.astype(np.int64), sw.indices + offset, sw.indptr), shape=(n_out, width)
        ), None
    w = np.zeros((n_out, width), np.int64)
    w[:, offset : offset + n_src] = c.dense_weights()
    if c.delays is None:
        return w, None
    d = np.zeros((n_out, width), np.int64)
    d[:, offset : offset + n_src] = c.delays
    return w, d


def _unreached(net: Network) -> list[Any]:
    """Neuron groups that no path from an input reaches (they get a zero tie to the source)."""
    seen = {g.name for g in net.inputs}
    grew = True
    while grew:
        new = {c.target for c in net.connections if c.source in seen} - seen
        seen |= new
        grew = bool(new)
    return [g for g in net.groups if g.name not in seen]


def fixed_pt_model(proc: Any) -> type:
    """The fixed_pt ProcessModel class of a Lava process built by this module (a spikeport process
    names its own through ``spikeport_fixed_pt_model``)."""
    own = getattr(type(proc), "spikeport_fixed_pt_model", None)
    if own is not None:
        return own()  # type: ignore[no-any-return]
    module, name = FIXED_PT_MODELS[type(proc).__name__]
    return getattr(import_lava(module), name)  # type: ignore[no-any-return]


@dataclass
class Graph:
    """The processes of one run: the shared source (the root Lava runs from) and the recorder."""

    source: Any
    recorder: Any
    processes: list[Any]
    #: (group, variable, indices of the recorder targets whose sum is the variable)
    slots: list[tuple[str, str, list[int]]]


def build_graph(
    L: LavaModules, net: Network, x: Mapping[str, np.ndarray], pairs: list[tuple[str, str]]
) -> Graph:
    """Processes and connections for the samples ``x`` (name -> (B, T, n)), recording ``pairs``.

    ``B > 1`` packs the samples into one run: every group becomes ``B`` copies side by side
    (sample-major) and every connection a block-diagonal Sparse (see :func:`_conn_proc`)."""
    batch, steps = next(iter(x.values())).shape[:2]
    offsets, width = {}, 0
    for g in net.inputs:
        offsets[g.name], width = width, width + int(g.n)
    # RingBuffer rows: sample, then input group, then channel (each sample's stacked inputs are
    # contiguous, so a packed input connection is block-diagonal too); columns: time
    stacked = np.concatenate([x[g.name] for g in net.inputs], axis=2)  # (B, T, width)
    data = stacked.transpose(0, 2, 1).reshape(batch * width, steps)
    src = L.source.RingBuffer(data=data.astype(np.int32))
    procs = {g.name: _NEURON_BUILDERS[type(g)](L, g, batch) for g in net.groups}
    conns: dict[str, Any] = {}
    for c in net.connections:
        if c.source in offsets:
            w, d = _padded(c, offsets[c.source], width)
            conns[c.name] = _conn_proc(L, c, w, d, batch)
            src.s_out.connect(conns[c.name].s_in)
        else:
            w = (
                c.weights.to_scipy(np.int64)
                if isinstance(c.weights, SparseWeights)
                else np.asarray(c.weights)
            )
            conns[c.name] = _conn_proc(L, c, w, c.delays, batch)
            procs[c.source].s_out.connect(conns[c.name].s_in)
        conns[c.name].a_out.connect(procs[c.target].a_in)
    ties = [
        L.dense.Dense(weights=np.zeros((int(g.n) * batch, width * batch), np.int64)) for g in _unreached(net)
    ]
    for tie, g in zip(ties, _unreached(net), strict=True):
        src.s_out.connect(tie.s_in)
        tie.a_out.connect(procs[g.name].a_in)
    targets: list[Any] = []
    slots = []
    for group, var in pairs:
        lava_name = LAVA_NAMES[type(net.group(group))][var]
        if lava_name:
            probed = [getattr(procs[group], lava_name)]
        else:  # a_in: what every incoming connection sent at this step
            probed = [conns[c.name].a_out for c in net.incoming(group)]
        slots.append((group, var, list(range(len(targets), len(targets) + len(probed)))))
        targets += probed
    rec = lava_recorder.recorder(targets, steps) if targets else None
    processes = [src, *procs.values(), *conns.values(), *ties]
    return Graph(source=src, recorder=rec, processes=processes, slots=slots)


def read_graph(graph: Graph, net: Network, batch: int, steps: int) -> dict[str, np.ndarray]:
    """``"<group>/<variable>"`` -> int64 (B, T, n) from the recorder of a graph that has run."""
    out = {}
    for group, var, indices in graph.slots:
        n = int(net.group(group).n)
        total = np.zeros((steps, batch * n), np.int64)
        for i in indices:
            total += lava_recorder.read(graph.recorder, i).reshape(total.shape)
        if var == "a_in":  # Lava's InPort sums its inputs in int32
            total = (total - INT32[0]) % (1 << 32) + INT32[0]
        out[f"{group}/{var}"] = total.reshape(steps, batch, n).transpose(1, 0, 2)
    return out


def run_samples(
    L: LavaModules, net: Network, x: Mapping[str, np.ndarray], pairs: list[tuple[str, str]]
) -> dict[str, np.ndarray]:
    """Build, run (fixed_pt, ``T`` steps) and read the samples ``x`` (name -> (B, T, n)) in one Lava
    run (packed when B > 1); the processes are always stopped."""
    batch, steps = next(iter(x.values())).shape[:2]
    graph = build_graph(L, net, x, pairs)
    exceptions = {p: fixed_pt_model(p) for p in graph.processes}
    if graph.recorder is not None:
        exceptions.update(lava_recorder.model_map(graph.recorder))
    cfg = L.cfg.Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map=exceptions)
    try:
        with warnings.catch_warnings():  # Lava's forked processes inherit this filter
            warnings.simplefilter("ignore", L.sparse_warning)  # DelaySparse's own csr edits
            graph.source.run(condition=L.cond.RunSteps(num_steps=steps), run_cfg=cfg)
        return read_graph(graph, net, batch, steps)
    finally:
        graph.source.stop()
