"""Multi-spike LIF neurons (LIFGroup.max_spikes > 1): k spikes per step sent as one graded payload."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import engine_reference as ref  # tests/engine_reference.py (tests/conftest.py)
import numpy as np
import pytest
from spikeport.emulator import io
from spikeport.emulator.engines import dense as engine_dense
from spikeport.emulator.engines.dispatch import run
from spikeport.emulator.errors import UnsupportedError, ValidationError
from spikeport.emulator.network import Connection, InputGroup, LIFGroup, Network, TernaryLIFGroup
from spikeport.emulator.randnet import random_inputs, random_network


@pytest.fixture(params=["compiled", "numpy", "torch", "float"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(engine_dense, "USE_COMPILED", request.param == "compiled")
    return str(request.param)


def _run(path: str, net: Network, x: object, **kw: object) -> object:
    if path == "torch":
        return run(net, x, engine="torch", device="cpu", **kw)  # type: ignore[arg-type]
    return run(net, x, mode="float" if path == "float" else "fixed", **kw)  # type: ignore[arg-type]


def _bias_neuron(bias: int, *, max_spikes: int = 3, reset: str = "subtract", **kw: object) -> Network:
    """One neuron driven by its bias only (du = 4095: no current), vth = 10 (threshold 640), dv = 0,
    feeding a sink through a 2-bit graded connection."""
    g = LIFGroup(
        name="h", n=1, du=4095, dv=0, vth=10, bias_mant=bias, bias_exp=0, u0=0, v0=0,
        reset=reset, max_spikes=max_spikes, **kw,  # type: ignore[arg-type]
    )  # fmt: skip
    sink = LIFGroup(name="o", n=1, du=4095, dv=4095, vth=1000, bias_mant=0, bias_exp=0, u0=0, v0=0)
    return Network(
        inputs=(InputGroup(name="in", n=1),),
        groups=(g, sink),
        connections=(
            Connection(name="c0", source="in", target="h", weights=[[0]]),
            Connection(name="c1", source="h", target="o", weights=[[5]], num_message_bits=2),
        ),
    )


# ------------------------------------------------------------------ analytic integer series

# threshold 640, bias 1500, subtract: v = 1500 -> k = 2, v = 220; 1720 -> 2, 440; 1940 -> 3, 20;
# 1520 -> 2, 240; 1740 -> 2, 460; 1960 -> 3, 40
SUBTRACT_1500 = [2, 2, 3, 2, 2, 3]
# bias 640: v exactly on the threshold sends nothing (v > th); 1280 -> k = 2, v = 0
ON_THRESHOLD_640 = [0, 2, 0, 2, 0, 2]
# bias 4095, max_spikes 3: 4095 // 640 = 6, capped to 3, v = 4095 - 1920 = 2175; then 6270 -> 3, 4350; ...
CAPPED_4095 = [3, 3, 3, 3, 3, 3]


@pytest.mark.parametrize(
    ("bias", "reset", "want"),
    [
        (1500, "subtract", SUBTRACT_1500),
        (640, "subtract", ON_THRESHOLD_640),
        (4095, "subtract", CAPPED_4095),
        (1500, "zero", [2, 2, 2, 2, 2, 2]),  # v <- 0 after each 2-spike step
    ],
)
def test_single_neuron_series(path: str, bias: int, reset: str, want: list[int]) -> None:
    net = _bias_neuron(bias, reset=reset)
    r = _run(path, net, np.zeros((6, 1), int), record=("spikes", "a_in"))
    np.testing.assert_array_equal(r["h/spikes"][0, :, 0], want)  # type: ignore[index]
    # the sink receives k * 5 one step later (graded payload times weight)
    np.testing.assert_array_equal(r["o/a_in"][0, 1:, 0], np.array(want[:-1]) * 5)  # type: ignore[index]


def test_subtract_voltage_series_and_refractory(path: str) -> None:
    net = _bias_neuron(1500)
    v = _run(path, net, np.zeros((3, 1), int), record=("v",))["h/v"][0, :, 0]  # type: ignore[index]
    np.testing.assert_array_equal(v, [220, 440, 20])
    # refractory 1: after a k > 0 step v is held one step (v = 220 at t=2), then 1720 -> 2 at t=3
    net = _bias_neuron(1500, refractory=1)
    r = _run(path, net, np.zeros((4, 1), int), record=("spikes", "v"))
    np.testing.assert_array_equal(r["h/spikes"][0, :, 0], [2, 0, 2, 0])  # type: ignore[index]
    np.testing.assert_array_equal(r["h/v"][0, :, 0], [220, 220, 440, 440])  # type: ignore[index]


def test_zero_threshold_sends_max_spikes(path: str) -> None:
    net = _bias_neuron(1, max_spikes=3)
    g = dataclasses.replace(net.groups[0], vth=0)
    net = dataclasses.replace(net, groups=(g, net.groups[1]))
    s = _run(path, net, np.zeros((3, 1), int))["h/spikes"][0, :, 0]  # type: ignore[index]
    np.testing.assert_array_equal(s, [3, 3, 3])


# ------------------------------------------------------------------ validation


def test_validation_refuses_bad_max_spikes_and_payloads() -> None:
    with pytest.raises(ValidationError, match=r"LIFGroup\('h'\)\.max_spikes: must be in \[1, 127\]"):
        _bias_neuron(1, max_spikes=128)
    with pytest.raises(ValidationError, match=r"max_spikes: must be in \[1, 127\] \(got 0\)"):
        _bias_neuron(1, max_spikes=0)
    with pytest.raises(ValidationError, match=r"max_spikes: must be an integer"):
        _bias_neuron(1, max_spikes=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"Connection\('c1'\)\.num_message_bits: must be >= 3"):
        _bias_neuron(1, max_spikes=4)  # c1 has 2 bits: 4 does not fit
    net = _bias_neuron(1)
    binary = dataclasses.replace(net.connections[1], num_message_bits=0)
    with pytest.raises(ValidationError, match=r"num_message_bits: must be >= 2: its source 'h' sends"):
        dataclasses.replace(net, connections=(net.connections[0], binary))
    with pytest.raises(ValidationError, match=r"TernaryLIFGroup\('t'\)\.max_spikes: TernaryLIF sends one"):
        TernaryLIFGroup(
            name="t", n=1, du=0, dv=0, vth=1, bias_mant=0, bias_exp=0, u0=0, v0=0, max_spikes=2
        )  # fmt: skip


def test_event_engine_refuses() -> None:
    with pytest.raises(UnsupportedError, match=r"event engine: LIFGroup\('h'\)\.max_spikes > 1"):
        run(_bias_neuron(1500), np.zeros((3, 1), int), engine="event")


# ------------------------------------------------------------------ random networks vs the reference


def _multi_nets(seeds: range) -> list[tuple[int, Network]]:
    out = []
    for seed in seeds:
        rng = np.random.default_rng(9000 + seed)
        kinds = ("multi_spike", "multi_spike", "lif")
        out.append((seed, random_network(rng, kinds=kinds, steps=25, max_n=5, overdrive=0.2)))
    return out


@pytest.mark.parametrize("engine", ["compiled", "numpy", "torch"])
def test_random_networks_equal_reference(engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_dense, "USE_COMPILED", engine == "compiled")
    steps, most = 25, 0
    for seed, net in _multi_nets(range(16)):
        x = random_inputs(np.random.default_rng(seed), net, steps, batch=2)
        rec = [f"{g.name}/{v}" for g in net.groups for v in ("spikes", "a_in", "u", "v")]
        kw = {"engine": "torch", "device": "cpu"} if engine == "torch" else {}
        got = run(net, x, record=rec, **kw)  # type: ignore[arg-type]
        for b in range(2):
            want = ref.reference_run(net, {k: v[b] for k, v in x.items()}, steps)
            for key in rec:
                np.testing.assert_array_equal(got[key][b], want[key], err_msg=f"{key} b{b} seed {seed}")
        multi = [g.name for g in net.groups if g.max_spikes > 1]
        most = max([most, *(int(got[f"{name}/spikes"].max()) for name in multi)])
    assert most > 1  # several spikes in one step did occur


def test_counters_count_one_message_with_payload() -> None:
    net = _bias_neuron(1500)
    r = run(net, np.zeros((6, 1), int), counters=True)
    assert r.counters is not None
    assert int(r.counters.spike_counts["h"].sum()) == 6  # six graded messages
    assert int(r.counters.payload_sums["h"].sum()) == sum(SUBTRACT_1500)


def test_hdf5_round_trip_and_old_files(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")
    net = _bias_neuron(1500, max_spikes=3)
    p = tmp_path / "n.h5"
    io.save_network(p, net)
    assert io.load_network(p).group("h").max_spikes == 3  # type: ignore[union-attr]
    with h5py.File(p, "r+") as h5:  # a file written before the field existed
        for name in h5["groups"]:
            node = h5["groups"][name]
            fields = json.loads(node.attrs["fields"])
            fields.pop("max_spikes", None)
            node.attrs["fields"] = json.dumps(fields)
    old = io.load_network(p)
    assert old.group("h").max_spikes == 1  # type: ignore[union-attr]


# ------------------------------------------------------------------ the quantizer


def _if_chain(seed: int) -> object:
    import nir

    rng = np.random.default_rng(seed)
    n_in, n_h, n_o = 12, 10, 4

    def if_node(n: int) -> object:
        return nir.IF(r=np.ones(n), v_threshold=np.ones(n))

    nodes = {
        "input": nir.Input(input_type={"input": np.array([n_in])}),
        "fc1": nir.Linear(weight=rng.normal(0.4, 1.0, (n_h, n_in))),
        "h": if_node(n_h),
        "fc2": nir.Linear(weight=rng.normal(0.1, 0.3, (n_o, n_h))),
        "o": if_node(n_o),
        "output": nir.Output(output_type={"output": np.array([n_o])}),
    }
    edges = [("input", "fc1"), ("fc1", "h"), ("h", "fc2"), ("fc2", "o"), ("o", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


@pytest.mark.parametrize("rule", ["threshold", "quotient"])
def test_quantizer_maps_multi_spike_to_graded_payloads(rule: str) -> None:
    from spikeport.quantize import encode_inputs, quantize, quantize_pair
    from spikeport.quantize.graph.group_plan import MULTI_SPIKE_BITS, MULTI_SPIKE_MAX
    from spikeport.quantize.semantics import semantics
    from spikeport.reference.run import run_nir

    graph = _if_chain(3)
    sem = semantics("nir", dt=1.0, reset="subtract", multi_spike=True, multi_spike_rule=rule)
    x = (np.random.default_rng(4).random((3, 20, 12)) < 0.5).astype(np.float64)
    net, twin, rep = quantize_pair(graph, sem)
    assert {g.name: g.max_spikes for g in net.groups} == {"h": MULTI_SPIKE_MAX, "o": MULTI_SPIKE_MAX}
    assert [c.num_message_bits for c in net.connections if c.source == "h"] == [MULTI_SPIKE_BITS]
    assert any(w.code == "approximation" and "multi_spike rule" in w.message for w in rep.warnings)
    ref = run_nir(graph, x, sem, record=("spikes",), dtype="float64")
    pad = max(g["lag"] for g in net.metadata["groups"].values())
    tw = run(twin, encode_inputs(net, x, pad=pad, exact=True), mode="float")
    fx = run(net, encode_inputs(net, x, pad=pad))
    for k in ("h", "o"):
        lag = net.metadata["groups"][k]["lag"]
        want = ref[f"{k}/spikes"]
        assert want.max() > 1  # several spikes in one step
        # the float twin follows the float rule except on the threshold exactly and above 15
        np.testing.assert_array_equal(tw[f"{k}/spikes"][:, lag : lag + 20], want, err_msg=k)
        # rounding moves a spike by a step at most: every neuron's count over time is within 1
        got = fx[f"{k}/spikes"][:, lag : lag + 20].astype(np.int64)
        assert np.abs(got.sum(axis=1) - want.sum(axis=1)).max() <= 1, k
    # one spike per step (what the quantizer did before): the counts are far off
    single, _ = quantize(graph, semantics("nir", dt=1.0, reset="subtract"))
    one = run(single, encode_inputs(single, x, pad=pad))["o/spikes"].sum(axis=1)
    assert one.sum() < 0.8 * ref["o/spikes"].sum()


def test_exporters_refuse_multi_spike(tmp_path: Path) -> None:
    """netx and SANA-FE neurons send one spike per step: they refuse, rather than run a wrong model."""
    from spikeport.netx.write import write_netx
    from spikeport.report.sanafe import run_sanafe

    g = LIFGroup(name="h", n=1, du=0, dv=0, vth=10, bias_mant=0, bias_exp=6, u0=0, v0=0, max_spikes=3)
    net = Network(
        inputs=(InputGroup(name="in", n=1),),
        groups=(g,),
        connections=(Connection(name="c0", source="in", target="h", weights=[[5]]),),
    )
    with pytest.raises(UnsupportedError, match=r"max_spikes=3: netx's CUBA neuron sends one spike"):
        write_netx(net, tmp_path / "n.net")
    with pytest.raises(UnsupportedError, match=r"max_spikes > 1"):
        try:
            run_sanafe(net, np.zeros((3, 1), int))
        except ImportError:
            pytest.skip("sanafe not installed")
