"""Models built in the real frameworks, exported with each framework's own NIR exporter, run by spikeport
under the suggested convention: the spikes equal the framework's own float32 forward pass exactly.

The oracle is the framework's forward pass, stepped one time step at a time on untrained, seeded
models (weights scaled up so that many neurons fire and sit near threshold). Each test also shows
that the check can fail: the same file under another convention (or unrepaired) does not match.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from spikeport.nir.io import NIRRepairWarning, read_nir, repair_nir, suggest_convention, write_nir
from spikeport.quantize.semantics import semantics
from spikeport.reference.run import run_nir
from torch import nn

B, T = 4, 50
pytestmark = pytest.mark.filterwarnings(
    "ignore:nirtorch.extract_nir_graph is being deprecated:DeprecationWarning"
)


def _input(n: int, seed: int, density: float = 0.3, value: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(B, T, n, generator=g) < density).float() * value


def _scale(layers, factor: float) -> None:
    with torch.no_grad():
        for layer in layers:
            if isinstance(layer, nn.Linear | nn.Conv2d):
                layer.weight.mul_(factor)


def _mismatches(result, ref: dict[str, np.ndarray]) -> int:
    return sum(int((result[f"{k}/spikes"] != v).sum()) for k, v in ref.items())


def _assert_equal(result, ref: dict[str, np.ndarray]) -> None:
    assert all(v.sum() > 0 for v in ref.values()), "every layer must spike for the check to mean much"
    for k, v in ref.items():
        np.testing.assert_array_equal(result[f"{k}/spikes"], v, err_msg=f"layer {k}")


# ---- Norse: norse.torch.to_nir writes tau = dt * tau ---------------------------------------------------
norse = pytest.importorskip("norse.torch")


def _norse_layers(kind: str) -> list[nn.Module]:
    torch.manual_seed(1)

    def cell() -> nn.Module:
        if kind == "box":
            return norse.LIFBoxCell(
                norse.LIFBoxParameters(tau_mem_inv=torch.tensor(100.0), v_th=torch.tensor(0.3))
            )
        p = norse.LIFParameters(
            tau_mem_inv=torch.tensor(100.0), tau_syn_inv=torch.tensor(200.0), v_th=torch.tensor(0.3)
        )
        return norse.LIFCell(p)

    layers = [nn.Linear(20, 30), cell(), nn.Linear(30, 10), cell()]
    _scale(layers, 3.0)
    return layers


def _norse_run(layers: list[nn.Module], x: torch.Tensor) -> dict[str, np.ndarray]:
    states: list = [None] * len(layers)
    rec: dict[str, list[np.ndarray]] = {}
    with torch.no_grad():
        for t in range(x.shape[1]):
            h = x[:, t]
            for k, layer in enumerate(layers):
                if hasattr(layer, "p"):
                    h, states[k] = layer(h, states[k])
                    rec.setdefault(str(k), []).append(h.numpy().astype(np.int32))
                else:
                    h = layer(h)
    return {k: np.stack(v, 1) for k, v in rec.items()}


@pytest.mark.parametrize("kind", ["box", "cell"])
def test_norse_export_is_repaired_and_matches(kind: str, tmp_path) -> None:
    layers = _norse_layers(kind)
    x = _input(20, seed=2)
    ref = _norse_run(layers, x)
    graph = norse.to_nir(norse.SequentialState(*layers), torch.zeros(1, 20))
    unrepaired = _mismatches(run_nir(graph, x.numpy(), "norse"), ref)
    assert unrepaired > 0  # Norse's tau = dt*tau read as a time constant explodes
    with pytest.warns(
        NIRRepairWarning, match=r"tau < 1e-4 s with r = 1 is norse\.torch\.to_nir's tau = dt\*tau"
    ):
        fixed = repair_nir(graph)
    name, why = suggest_convention(fixed)
    assert name == "norse", why
    _assert_equal(run_nir(fixed, x.numpy(), name), ref)
    write_nir(tmp_path / "m.nir", fixed)  # the repaired graph can be written (0-d parameters broadcast)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NIRRepairWarning)
        back, _ = read_nir(tmp_path / "m.nir")
    _assert_equal(run_nir(back, x.numpy(), suggest_convention(back)[0]), ref)


def test_unrepaired_norse_pattern_is_suggested_as_norse() -> None:
    graph = norse.to_nir(norse.SequentialState(*_norse_layers("box")), torch.zeros(1, 20))
    name, why = suggest_convention(graph)
    assert name == "norse" and "tau = dt*tau" in why


# ---- SpikingJelly: LIF tau = steps * dt, IF r = 1/dt ---------------------------------------------------
def _sj():
    try:
        from spikingjelly.activation_based import functional, neuron
        from spikingjelly.activation_based.nir_exchange.to_nir import export_to_nir
    except ImportError as exc:  # a test dependency (Makefile setup)
        pytest.skip(f"spikingjelly 2.0.0 not importable: {exc}")
    return neuron, functional, export_to_nir


def _sj_run(net: nn.Sequential, x: torch.Tensor, functional) -> dict[str, np.ndarray]:
    functional.reset_net(net)
    rec: dict[str, list[np.ndarray]] = {}
    with torch.no_grad():
        for t in range(x.shape[1]):
            h = x[:, t]
            for k, layer in enumerate(net):
                h = layer(h)
                if k % 2:
                    rec.setdefault(f"_{k}", []).append(h.numpy().astype(np.int32))
    functional.reset_net(net)
    return {k: np.stack(v, 1) for k, v in rec.items()}


@pytest.mark.parametrize("tau", [1.7, 2.0, 2.3, 3.0])
def test_spikingjelly_lif_matches(tau: float) -> None:
    neuron, functional, export_to_nir = _sj()
    torch.manual_seed(3)
    net = nn.Sequential(
        nn.Linear(20, 30), neuron.LIFNode(tau=tau), nn.Linear(30, 10), neuron.LIFNode(tau=tau)
    )
    _scale(net, 6.0)
    x = _input(20, seed=4, value=1.5)
    ref = _sj_run(net.eval(), x, functional)
    graph = export_to_nir(net, x[:, 0])
    name, why = suggest_convention(graph)
    assert name == "spikingjelly", why
    _assert_equal(run_nir(graph, x.numpy(), name), ref)
    assert _mismatches(run_nir(graph, x.numpy(), "norse"), ref) > 0  # what was suggested before


def test_spikingjelly_if_with_r_one_over_dt_matches() -> None:
    neuron, functional, export_to_nir = _sj()
    torch.manual_seed(5)
    net = nn.Sequential(nn.Linear(20, 30), neuron.IFNode(), nn.Linear(30, 10), neuron.IFNode())
    _scale(net, 4.0)
    x = _input(20, seed=6, value=1.5)
    ref = _sj_run(net.eval(), x, functional)
    graph = export_to_nir(net, x[:, 0])
    name, why = suggest_convention(graph)
    assert name == "spikingjelly" and "r = 1/dt" in why
    _assert_equal(run_nir(graph, x.numpy(), name), ref)
    # v += r*x (every other framework's IF) multiplies the input by 1e4:
    assert _mismatches(run_nir(graph, x.numpy(), semantics("spikingjelly", integrator_input="r")), ref) > 0


def test_spikingjelly_fires_at_threshold() -> None:
    """Two inputs of exactly 0.5 reach v_threshold = 1.0: SpikingJelly fires (v >= v_th)."""
    neuron, functional, export_to_nir = _sj()
    net = nn.Sequential(nn.Linear(4, 3, bias=False), neuron.IFNode())
    with torch.no_grad():
        net[0].weight.fill_(0.25)
    x = _input(4, seed=7, density=0.5)
    ref = _sj_run(net.eval(), x, functional)
    graph = export_to_nir(net, x[:, 0])
    _assert_equal(run_nir(graph, x.numpy(), suggest_convention(graph)[0]), ref)
    assert _mismatches(run_nir(graph, x.numpy(), semantics("spikingjelly", threshold=">")), ref) > 0


# ---- Sinabs: tau in steps, exact exponential decay, several spikes per step ------------------------------
def _sinabs():
    try:
        import sinabs
        import sinabs.layers as sl
    except ImportError as exc:  # a test dependency (Makefile setup)
        pytest.skip(f"sinabs 3.1.3 not importable: {exc}")
    return sinabs, sl


def _sinabs_model(kind: str, sl) -> tuple[nn.Sequential, tuple[int, ...], list[int]]:
    torch.manual_seed(8)
    if kind == "lif":
        net = nn.Sequential(nn.Linear(20, 30), sl.LIF(tau_mem=10.0), nn.Linear(30, 10), sl.LIF(tau_mem=7.0))
        _scale(net, 8.0)
        return net, (20,), [1, 3]
    if kind == "iaf":
        return nn.Sequential(nn.Linear(20, 30), sl.IAF(), nn.Linear(30, 10), sl.IAF()), (20,), [1, 3]
    net = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        sl.IAFSqueeze(batch_size=B),
        sl.SumPool2d(2),
        nn.Flatten(),
        nn.Linear(64, 10),
        sl.IAFSqueeze(batch_size=B),
    )
    _scale(net, 2.0)
    return net, (2, 8, 8), [1, 5]


def _sinabs_run(
    net: nn.Sequential, x: torch.Tensor, layers: list[int], squeeze: bool
) -> dict[str, np.ndarray]:
    """Sinabs layers take the whole sequence: (B, T, ...) or, squeezed, (B*T, ...)."""
    for m in net.modules():
        if hasattr(m, "reset_states"):
            m.reset_states()
    rec: dict[str, np.ndarray] = {}

    def hook(i: int):
        return lambda m, a, out: rec.__setitem__(str(i), out.reshape(B, T, -1).numpy().astype(np.int32))

    handles = [net[i].register_forward_hook(hook(i)) for i in layers]
    with torch.no_grad():
        net(x.reshape(B * T, *x.shape[2:]) if squeeze else x)
    for h in handles:
        h.remove()
    return rec


@pytest.mark.parametrize("kind", ["lif", "iaf", "cnn"])
def test_sinabs_matches_with_multi_spike(kind: str) -> None:
    sinabs, sl = _sinabs()
    net, shape, layers = _sinabs_model(kind, sl)
    x = _input(int(np.prod(shape)), seed=9, value=3.0).reshape(B, T, *shape)
    ref = _sinabs_run(net, x, layers, squeeze=kind == "cnn")
    assert max(int(v.max()) for v in ref.values()) >= 2  # several spikes per step do occur
    sample = torch.zeros(B, *shape) if kind == "cnn" else torch.zeros(B, 1, *shape)  # batch, time (1), ...
    with pytest.warns(NIRRepairWarning):  # 0-d / 1-element parameters, Conv2d.input_shape, Flatten
        graph = repair_nir(sinabs.to_nir(net, sample))
    name, why = suggest_convention(graph)
    assert name == "sinabs", why
    _assert_equal(run_nir(graph, x.numpy(), name), ref)
    single = run_nir(graph, x.numpy(), semantics("sinabs", multi_spike=False))
    assert _mismatches(single, ref) > 0  # one spike per step changes the answer


def test_sinabs_lif_needs_exact_decay() -> None:
    sinabs, sl = _sinabs()
    net, _shape, layers = _sinabs_model("lif", sl)
    x = _input(20, seed=9)
    ref = _sinabs_run(net, x, layers, squeeze=False)
    with pytest.warns(NIRRepairWarning):
        graph = repair_nir(sinabs.to_nir(net, torch.zeros(B, 1, 20)))
    euler = semantics("sinabs", integration="euler", arithmetic="decay")
    assert _mismatches(run_nir(graph, x.numpy(), euler), ref) > 0


# ---- Rockpool: r = tau*exp(-dt/tau)/dt, isyn jumps then decays, several spikes per step -----------------
def _rockpool():
    try:
        from rockpool.nn.combinators import Sequential
        from rockpool.nn.modules import LIFNeuronTorch, LIFTorch, LinearTorch
        from rockpool.nn.modules.torch.nir import to_nir
    except ImportError as exc:  # a test dependency (Makefile setup)
        pytest.skip(f"rockpool 3.1.0 not importable: {exc}")
    return Sequential, LIFTorch, LIFNeuronTorch, LinearTorch, to_nir


@pytest.mark.parametrize("kind", ["LIFTorch", "LIFNeuronTorch"])
def test_rockpool_matches_with_multi_spike(kind: str) -> None:
    Sequential, LIFTorch, LIFNeuronTorch, LinearTorch, to_nir = _rockpool()
    torch.manual_seed(10)

    def cell(n: int):
        if kind == "LIFTorch":
            return LIFTorch(n, tau_mem=0.02, tau_syn=0.01)
        return LIFNeuronTorch(n, tau_mem=0.02)

    net = Sequential(LinearTorch((20, 30)), cell(30), LinearTorch((30, 10)), cell(10))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, LinearTorch):
                m.weight.mul_(1.5 if kind == "LIFTorch" else 3.0)
    x = _input(20, seed=11)
    with torch.no_grad():
        _, _, rec = net(x, record=True)
    ref = {f"{i}_{kind}": rec[f"{i}_{kind}_output"].numpy().astype(np.int32) for i in (1, 3)}
    assert max(int(v.max()) for v in ref.values()) >= 2  # several spikes per step do occur
    graph = to_nir(net)
    name, why = suggest_convention(graph)
    assert name == "rockpool", why
    _assert_equal(run_nir(graph, x.numpy(), name), ref)
    single = run_nir(graph, x.numpy(), semantics("rockpool", multi_spike=False))
    assert _mismatches(single, ref) > 0
    assert _mismatches(run_nir(graph, x.numpy(), "nir"), ref) > 0


# ---- snnTorch's import_from_nir: reset to zero, reset_delay=False ----------------------------------------
@pytest.mark.parametrize("kind", ["Leaky", "Synaptic", "RLeaky"])
def test_snntorch_import_from_nir_convention(kind: str) -> None:
    snn = pytest.importorskip("snntorch")
    from snntorch.import_nir import import_from_nir
    from spikeport.nir.frameworks import snntorch_to_nir

    torch.manual_seed(12)
    if kind == "Leaky":
        layers = [nn.Linear(20, 30), snn.Leaky(beta=0.9), nn.Linear(30, 10), snn.Leaky(beta=0.8)]
    elif kind == "RLeaky":  # nirtorch starts the back-edge from zeros: no recurrent bias at t = 0
        layers = [
            nn.Linear(20, 30),
            snn.RLeaky(beta=0.9, linear_features=30),
            nn.Linear(30, 10),
            snn.Leaky(beta=0.8),
        ]
    else:
        layers = [
            nn.Linear(20, 30),
            snn.Synaptic(alpha=0.8, beta=0.9),
            nn.Linear(30, 10),
            snn.Synaptic(alpha=0.7, beta=0.8),
        ]
    _scale(layers, 3.0)
    graph, _ = snntorch_to_nir(layers, (20,))
    imported = import_from_nir(graph)  # snnTorch's own importer: reset_mechanism="zero", reset_delay=False
    x = _input(20, seed=13)
    outs, state = [], None
    with torch.no_grad():
        for t in range(T):
            out, state = imported(x[:, t], state)
            outs.append(out.numpy().astype(np.int32))
    ref = {"3": np.stack(outs, 1)}
    _assert_equal(run_nir(graph, x.numpy(), "snntorch_import"), ref)
    assert _mismatches(run_nir(graph, x.numpy(), "snntorch"), ref) > 0  # the native convention differs
    if kind == "RLeaky":
        rest = semantics("snntorch_import", recurrent_rest="response")
        assert _mismatches(run_nir(graph, x.numpy(), rest), ref) > 0


def test_read_nir_repairs_norse_tau_scaling(tmp_path) -> None:
    import nir

    n = 3
    tau_w = (np.float32(1) / np.float32(100.0)) * np.float32(1e-3)  # torch's 1e-3 / tau_mem_inv, in float32
    lif = nir.LIF(
        tau=np.full(n, tau_w, np.float32),
        r=np.ones(n),
        v_leak=np.zeros(n),
        v_threshold=np.ones(n),
        v_reset=np.zeros(n),
    )
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([2])}),
            "fc": nir.Affine(weight=np.ones((n, 2)), bias=np.zeros(n)),
            "lif": lif,
            "output": nir.Output(output_type={"output": np.array([n])}),
        },
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")],
        type_check=False,
    )
    write_nir(tmp_path / "norse.nir", graph)
    with pytest.warns(NIRRepairWarning, match=r"lif: tau < 1e-4 s with r = 1"):
        back, _ = read_nir(tmp_path / "norse.nir")
    assert torch.as_tensor(1.0 / back.nodes["lif"].tau, dtype=torch.float32).tolist() == [100.0] * n
    assert suggest_convention(back)[0] == "norse"


# ---- every framework's model, quantized for Lava: Lava equals the emulator ---------------------------------
def _framework_graphs() -> list[tuple[str, object, np.ndarray]]:
    """``(label, NIR graph, input (2, T, n))`` for a model of each kind above, exported by its framework."""
    out: list[tuple[str, object, np.ndarray]] = []
    x20 = _input(20, seed=21)
    for kind in ("box", "cell"):
        graph = norse.to_nir(norse.SequentialState(*_norse_layers(kind)), torch.zeros(1, 20))
        with pytest.warns(NIRRepairWarning):
            out.append((f"norse-{kind}", repair_nir(graph), x20))
    neuron, _, export_to_nir = _sj()
    torch.manual_seed(3)
    for node in (neuron.LIFNode(tau=2.0), neuron.IFNode()):
        net = nn.Sequential(nn.Linear(20, 30), node, nn.Linear(30, 10), type(node)())
        _scale(net, 4.0)
        out.append((f"spikingjelly-{type(node).__name__}", export_to_nir(net, x20[:, 0]), x20 * 1.5))
    sinabs, sl = _sinabs()
    for kind in ("lif", "iaf", "cnn"):
        net, shape, _ = _sinabs_model(kind, sl)
        sample = torch.zeros(B, *shape) if kind == "cnn" else torch.zeros(B, 1, *shape)
        with pytest.warns(NIRRepairWarning):
            graph = repair_nir(sinabs.to_nir(net, sample))
        x = _input(int(np.prod(shape)), seed=9, value=3.0)
        out.append((f"sinabs-{kind}", graph, x))
    Sequential, LIFTorch, LIFNeuronTorch, LinearTorch, to_nir = _rockpool()
    torch.manual_seed(10)
    for cell in (LIFTorch(30, tau_mem=0.02, tau_syn=0.01), LIFNeuronTorch(30, tau_mem=0.02)):
        net = Sequential(LinearTorch((20, 30)), cell, LinearTorch((30, 10)), type(cell)(10, tau_mem=0.02))
        with torch.no_grad():
            for m in net.modules():
                if isinstance(m, LinearTorch):
                    m.weight.mul_(3.0)
        out.append((f"rockpool-{type(cell).__name__}", to_nir(net), x20))
    return [(label, graph, x[:2].numpy()) for label, graph, x in out] + _snntorch_graphs(x20[:2].numpy())


def _snntorch_graphs(x: np.ndarray) -> list[tuple[str, object, np.ndarray]]:
    """snnTorch Synaptic (subtract reset) and RSynaptic with zero reset (a held step: refractory), as
    exported by spikeport (the convention travels with the graph as its stored semantics)."""
    snn = pytest.importorskip("snntorch")
    from spikeport.nir.frameworks import snntorch_to_nir

    torch.manual_seed(14)
    out = []
    for label, rec in (("snntorch-Synaptic", False), ("snntorch-RSynaptic-zero", True)):
        first = (
            snn.RSynaptic(alpha=0.8, beta=0.9, linear_features=30, reset_mechanism="zero")
            if rec
            else snn.Synaptic(alpha=0.8, beta=0.9)
        )
        reset = "zero" if rec else "subtract"
        last = snn.Synaptic(alpha=0.7, beta=0.8, reset_mechanism=reset)
        layers = [nn.Linear(20, 30), first, nn.Linear(30, 10), last]
        _scale(layers, 3.0)
        graph, sem = snntorch_to_nir(layers, (20,))
        out.append((label, (graph, sem), x))
    return out


@pytest.mark.lava
@pytest.mark.slow
def test_every_framework_quantized_for_lava_runs_bit_exact_on_lava() -> None:
    """Each framework's model under its suggested convention, quantized with target='lava' (multi-spike
    neurons as graded payloads, subtract resets, refractory holds: spikeport's own Lava processes), runs
    on Lava exactly as on the emulator; every group spikes and the multi-spike models send k > 1."""
    import spikeport as sp
    from spikeport.emulator.randnet import merge_inputs, merge_networks

    nets, xs, labels = [], [], []
    for label, graph, x in _framework_graphs():
        graph, name = graph if isinstance(graph, tuple) else (graph, suggest_convention(graph)[0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # quantization approximations: reported, not the point here
            net, _ = sp.quantize(graph, name, calibration=x, target="lava")
        nets.append(net)
        xs.append(sp.encode_inputs(net, x, pad=3))  # graded inputs as the network's payloads
        labels.append(label)
    merged, xm = merge_networks(nets), merge_inputs(xs)
    record = ("spikes", "u", "v")
    lava = sp.run(merged, xm, backend="lava", record=record)
    emu = sp.run(merged, xm, record=record)
    for key in sorted(emu.outputs):
        np.testing.assert_array_equal(lava[key], emu[key], err_msg=key)
    for i, (label, net) in enumerate(zip(labels, nets, strict=True)):
        last = net.groups[-1].name
        assert emu[f"n{i}_{last}/spikes"].sum() > 0, label
        if label == "snntorch-Synaptic":
            assert sum(g.reset == "subtract" for g in net.groups) >= 2, label
        if label == "snntorch-RSynaptic-zero":
            assert any(g.refractory for g in net.groups), label  # the held step after a spike
        if label.startswith(("sinabs", "rockpool")):
            assert max(int(g.max_spikes) for g in net.groups) > 1, label
            assert max(int(emu[f"n{i}_{g.name}/spikes"].max()) for g in net.groups) > 1, label


@pytest.mark.parametrize("kind", ["LIFTorch", "LIFNeuronTorch"])
def test_rockpool_arithmetic_is_quantized(kind: str) -> None:
    """Rockpool's update (input decayed in its own step, gain r dt / (tau exp(-dt/tau))) maps to the
    integer neuron: the float twin equals Rockpool's float run spike for spike; rounding the 8-bit
    weights moves each neuron's spike count over the run by at most 3 and the layer's total by 2%."""
    from spikeport.emulator.engines.dispatch import run
    from spikeport.quantize.quantize_nir import encode_inputs, quantize_pair

    Sequential, LIFTorch, LIFNeuronTorch, LinearTorch, to_nir = _rockpool()
    torch.manual_seed(10)

    def cell(n: int):
        return (
            LIFTorch(n, tau_mem=0.02, tau_syn=0.01) if kind == "LIFTorch" else LIFNeuronTorch(n, tau_mem=0.02)
        )

    net = Sequential(LinearTorch((20, 30)), cell(30), LinearTorch((30, 10)), cell(10))
    with torch.no_grad():
        linear = [m for m in net.modules().values() if isinstance(m, LinearTorch)]  # rockpool: a dict
        for m, f in zip(linear, (1.5, 0.05 if kind == "LIFTorch" else 0.5), strict=True):
            m.weight.mul_(f)
    x = _input(20, seed=21).numpy()
    graph = to_nir(net)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the multi-spike rule's approximation warning
        q, twin, _ = quantize_pair(graph, "rockpool")
    ref = run_nir(graph, x, "rockpool", record=("spikes",), dtype="float64")
    pad = max(g["lag"] for g in q.metadata["groups"].values())
    tw = run(twin, encode_inputs(q, x, pad=pad, exact=True), mode="float")
    fx = run(q, encode_inputs(q, x, pad=pad))
    for g in q.groups:
        lag, want = q.metadata["groups"][g.name]["lag"], ref[f"{g.name}/spikes"]
        assert want.sum() > 0 and want.max() <= 15, g.name  # spikes, within the 15-per-step cap
        np.testing.assert_array_equal(tw[f"{g.name}/spikes"][:, lag : lag + T], want, err_msg=g.name)
        got = fx[f"{g.name}/spikes"][:, lag : lag + T].astype(np.int64)
        assert np.abs(got.sum(axis=1) - want.sum(axis=1)).max() <= 3, g.name  # of up to ~100
        assert abs(int(got.sum()) - int(want.sum())) <= 0.02 * want.sum(), g.name
    assert max(int(ref[f"{g.name}/spikes"].max()) for g in q.groups) >= 2  # multi-spike steps occur
