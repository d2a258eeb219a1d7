"""spikeport's own Lava LIF (spikeport.lava.lif_processes): subtract reset, refractory periods, TernaryLIF
with reset_interval and multi-spike graded output, run by real Lava (fixed_pt).

Oracles: a pure-Python integer reference (tests/engine_reference.py) and hand-worked integer series for
small networks; the emulator for random networks (the differential suite, every recorded variable at
every step). The tests also check that the features really trigger (subtract resets that leave v != 0,
refractory steps that hold v, payloads k > 1 reaching the next group).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
import spikeport as sp
from engine_reference import reference_run  # tests/engine_reference.py (tests/conftest.py)
from spikeport.emulator.engines.dispatch import run
from spikeport.emulator.network import Connection, InputGroup, LIFGroup, Network, TernaryLIFGroup
from spikeport.emulator.randnet import merge_inputs, merge_networks, random_inputs, random_network
from spikeport.lava.backend import check_supported, run_lava
from spikeport.lava.lif_processes import LifRule, lif_rule, messages, needs_spikeport_lif

RECORD = ("spikes", "u", "v", "a_in")
T = 10


def lif(name: str, **kw: Any) -> LIFGroup:
    base: dict[str, Any] = dict(n=1, du=4095, dv=0, vth=2, bias_mant=0, bias_exp=0, u0=0, v0=0)
    cls = TernaryLIFGroup if "vth_lo" in kw else LIFGroup
    return cls(name=name, **{**base, **kw})


def conn(name: str, src: str, tgt: str, w: int, **kw: Any) -> Connection:
    return Connection(name=name, source=src, target=tgt, weights=np.array([[w]]), **kw)


# ---------------------------------------------------------------- no Lava needed


def test_extended_groups_are_supported_and_mapped_to_spikeport_lif() -> None:
    groups = [
        lif("a", reset="subtract"),
        lif("b", refractory=2),
        lif("c", vth_lo=-5, reset_interval=3),
        lif("d", max_spikes=5),
    ]
    net = Network(
        inputs=(InputGroup(name="x", n=1),),
        groups=tuple(groups),
        connections=tuple(conn(f"c{g.name}", "x", g.name, 1) for g in groups),
    )
    check_supported(net)  # raises on any refusal
    assert all(needs_spikeport_lif(g) for g in groups)
    assert not needs_spikeport_lif(lif("e")) and not needs_spikeport_lif(lif("f", reset_interval=2))
    assert not needs_spikeport_lif(lif("g", vth_lo=-3))


@pytest.mark.parametrize(
    ("rule", "v", "want"),
    [
        (LifRule("zero", 0, 0, 0, 1, False), [128, 129, 1000], [0, 1, 1]),
        (LifRule("zero", 0, 0, 0, 5, False), [128, 129, 383, 384, 10**6, -5], [0, 1, 2, 3, 5, 0]),
        (LifRule("zero", 0, 0, 0, 1, True), [129, 0, -321, -320], [1, 0, -1, 0]),
    ],
)
def test_messages_follow_the_integer_rule(rule: LifRule, v: list[int], want: list[int]) -> None:
    """vth = 2 -> threshold 128; vth_lo = -5 -> -320; k = min(max_spikes, v // 128) where v > 128."""
    np.testing.assert_array_equal(messages(rule, np.array(v), 2, -5), want)


def test_zero_threshold_multi_spike_sends_max_spikes() -> None:
    rule = lif_rule(lif("m", vth=0, max_spikes=4))
    np.testing.assert_array_equal(messages(rule, np.array([-1, 0, 1, 10**6]), 0, 0), [0, 0, 4, 4])


@pytest.mark.lava
def test_plain_groups_keep_lavas_processes_and_extensions_get_spikeport_lif() -> None:
    from spikeport.lava import lif_processes
    from spikeport.lava import process_graph as lava_graph
    from spikeport.lava.compat import import_lava

    L = lava_graph.lava_modules()
    groups = [lif("a"), lif("b", reset_interval=2), lif("c", vth_lo=-1), lif("d", reset="subtract")]
    groups += [lif("e", refractory=1), lif("f", max_spikes=2), lif("g", vth_lo=-1, reset_interval=2)]
    names = [type(lava_graph.lif_process(L, g)).__name__ for g in groups]
    assert names == ["LIF", "LIFReset", "TernaryLIF", *["SpikeportLIF"] * 4]
    proc = lava_graph.lif_process(L, groups[3])
    model = lava_graph.fixed_pt_model(proc)
    assert model is lif_processes.model_class() and "fixed_pt" in model.tags
    cfg = import_lava("lava.magma.core.run_configs").Loihi2SimCfg(select_tag="fixed_pt")
    assert cfg.select(proc, [model]) is model  # Lava's own selection accepts it for fixed_pt


# ---------------------------------------------------------------- Lava against oracles


def _hand_network() -> Network:
    """Small groups driven by bias (v += 100 per step, threshold 128) or by a constant input."""
    b = dict(bias_mant=100)
    groups = (
        lif("sub", reset="subtract", **b),
        lif("ref", refractory=2, **b),
        lif("subref", reset="subtract", refractory=1, **b),
        lif("tern", vth=100, vth_lo=-5, bias_mant=-100, reset_interval=3, reset_offset=0),
        lif("multi", max_spikes=10, bias_mant=1000),  # k = 1000 // 128 = 7 every step
        lif("msub", max_spikes=3, reset="subtract", bias_mant=1000, refractory=1),
        lif("down", vth=1000),  # receives 5 * k from "multi"
    )
    conns = (
        conn("cx", "x", "down", 0),
        conn("cm", "multi", "down", 5, num_message_bits=4),
        conn("cs", "msub", "down", -3, num_message_bits=2),
    )
    return Network(inputs=(InputGroup(name="x", n=1),), groups=groups, connections=conns)


@pytest.mark.lava
def test_hand_networks_on_lava_match_the_reference_and_worked_series() -> None:
    net = _hand_network()
    x = np.zeros((3, T, 1), np.int64)  # 3 samples packed side by side in one Lava run
    out = run_lava(net, {"x": x}, record=RECORD).outputs
    assert out["sub/spikes"].shape == (3, T, 1)
    ref = reference_run(net, {"x": x[0]}, T)
    for key, want in ref.items():
        for b in range(3):
            np.testing.assert_array_equal(out[key][b], want, err_msg=key)
    v = out["sub/v"][0, :, 0]  # v_t = 100 t - 128 (spikes so far)
    np.testing.assert_array_equal(v[:5], [100, 72, 44, 16, 116])
    np.testing.assert_array_equal(out["ref/spikes"][0, :, 0], [0, 1, 0, 0, 0, 1, 0, 0, 0, 1])
    np.testing.assert_array_equal(out["ref/v"][0, :, 0], [100, 0, 0, 0, 100, 0, 0, 0, 100, 0])
    np.testing.assert_array_equal(
        out["tern/v"][0, :, 0], [-100, -200, -100, -200, -300, -100, -200, -300, -100, -200]
    )
    np.testing.assert_array_equal(out["multi/spikes"][0, :, 0], [7] * T)
    # msub: k = 3 (v = 1000 > 3 * 128), v <- 1000 - 384 = 616, then one refractory step holding v
    np.testing.assert_array_equal(out["msub/spikes"][0, :4, 0], [3, 0, 3, 0])
    np.testing.assert_array_equal(out["msub/v"][0, :4, 0], [616, 616, 1232, 1232])
    # graded payloads: a_in(down) = 5 * 7 + (-3) * 3 (or 0) one step after they are sent
    np.testing.assert_array_equal(out["down/a_in"][0, :4, 0], [0, 35 - 9, 35, 35 - 9])


def _extend(rng: np.random.Generator, net: Network) -> Network:
    """``net`` with subtract resets, refractory periods and periodic TernaryLIF resets drawn in."""
    groups = []
    for g in net.groups:
        kw: dict[str, Any] = {}
        if isinstance(g, TernaryLIFGroup):
            interval = int(rng.integers(2, 5))
            kw.update(reset_interval=interval, reset_offset=int(rng.integers(0, interval)))
        elif isinstance(g, LIFGroup) and g.max_spikes == 1 and rng.random() < 0.6:
            kw.update(reset="subtract")
        if isinstance(g, LIFGroup) and rng.random() < 0.5:
            kw.update(refractory=int(rng.integers(1, 4)))
        if isinstance(g, LIFGroup) and rng.random() < 0.5:  # thresholds that the drive crosses often
            kw.update(vth=int(rng.integers(0, 40)))
        groups.append(dataclasses.replace(g, **kw) if kw else g)
    return dataclasses.replace(net, groups=tuple(groups))


def _triggers(net: Network, out: dict[str, np.ndarray]) -> dict[str, int]:
    """How often each extension acted in a run of ``net`` (outputs of one sample)."""
    seen = dict(subtract=0, refractory=0, multi=0, ternary_reset=0, ternary_spikes=0)
    for g in net.groups:
        if not isinstance(g, LIFGroup):
            continue
        s, v, u = (out[f"{g.name}/{k}"][0] for k in ("spikes", "v", "u"))
        if g.reset == "subtract":
            seen["subtract"] += int(np.count_nonzero((s != 0) & (v != 0)))
        if g.refractory:  # a step after a spike where u moved but v was held
            held = (s[:-1] != 0) & (v[1:] == v[:-1]) & (u[1:] != u[:-1])
            seen["refractory"] += int(np.count_nonzero(held))
        if g.max_spikes > 1:
            seen["multi"] += int(np.count_nonzero(s > 1))
        if isinstance(g, TernaryLIFGroup) and g.reset_interval:  # resets that zero a nonzero state
            due = (np.arange(2, len(v) + 1) % g.reset_interval == g.reset_offset)[:, None]
            seen["ternary_reset"] += int(np.count_nonzero(due & ((v[:-1] != 0) | (u[:-1] != 0))))
            seen["ternary_spikes"] += int(np.count_nonzero(s))
    return seen


@pytest.mark.lava
@pytest.mark.parametrize("seed", (0, pytest.param(1, marks=pytest.mark.slow)))
def test_random_extended_networks_match_the_emulator_on_lava(seed: int) -> None:
    rng = np.random.default_rng(1000 + seed)
    kinds = ("lif", "lif_reset", "ternary", "multi_spike")
    nets = [_extend(rng, random_network(rng, steps=T, max_groups=2, kinds=kinds)) for _ in range(40)]
    xs = [random_inputs(rng, net, T) for net in nets]
    merged, x = merge_networks(nets), merge_inputs(xs)
    lava = run_lava(merged, x, record=RECORD).outputs
    emu = run(merged, x, record=RECORD).outputs
    assert sorted(lava) == sorted(emu)
    for key in sorted(emu):
        np.testing.assert_array_equal(lava[key], emu[key], err_msg=f"seed {seed}: {key}")
    seen = _triggers(merged, emu)
    assert min(seen.values()) > 0, seen


# ---------------------------------------------------------------- end to end: snnTorch -> NIR -> Lava


@pytest.mark.lava
@pytest.mark.filterwarnings("ignore:nirtorch.extract_nir_graph is being deprecated:DeprecationWarning")
def test_snntorch_leaky_and_rleaky_quantized_for_lava_run_bit_exact() -> None:
    """Leaky (subtract reset) and RLeaky with zero reset (its delayed reset maps to refractory=1),
    quantized with target='lava', give on Lava what they give on the emulator."""
    snn = pytest.importorskip("snntorch")
    torch = pytest.importorskip("torch")
    from spikeport.nir.frameworks import snntorch_to_nir

    torch.manual_seed(3)
    x = (torch.rand(2, 16, 12) < 0.4).float().numpy()
    nets = []
    for layers in (
        [torch.nn.Linear(12, 10), snn.Leaky(beta=0.9), torch.nn.Linear(10, 4), snn.Leaky(beta=0.8)],
        [
            torch.nn.Linear(12, 10),
            snn.RLeaky(beta=0.9, linear_features=10, reset_mechanism="zero"),
            torch.nn.Linear(10, 4),
            snn.Leaky(beta=0.8, reset_mechanism="zero"),
        ],
    ):
        with torch.no_grad():
            for layer in layers[::2]:
                layer.weight.mul_(3.0)
        graph, sem = snntorch_to_nir(layers, (12,))
        net, _ = sp.quantize(graph, sem, calibration=x, target="lava")
        nets.append(net)
    assert {g.reset for g in nets[0].groups} == {"subtract"}
    assert {g.reset for g in nets[1].groups} == {"zero"}
    assert [g.refractory for g in nets[1].groups] == [1, 0]  # RLeaky holds v for a step after a spike
    merged = merge_networks(nets)
    xm = merge_inputs([{g.name: x for g in net.inputs} for net in nets])
    lava = sp.run(merged, xm, backend="lava", record=RECORD)
    emu = sp.run(merged, xm, record=RECORD)
    for key in sorted(emu.outputs):
        np.testing.assert_array_equal(lava[key], emu[key], err_msg=key)
    assert all(emu[f"{g.name}/spikes"].sum() > 0 for g in merged.groups)
