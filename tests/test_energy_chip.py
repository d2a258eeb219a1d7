"""Energy report with messages counted on a chip placement (``chip=``) against the default
``ceil(n / neurons_per_core)`` cores per group (issue 19)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from spikeport.chip.resource_map import placement
from spikeport.emulator import Connection, InputGroup, LIFGroup, Network, ValidationError
from spikeport.emulator.energy.synops import activity_from_spikes, count_synops
from spikeport.report.energy import energy_report, format_text, to_json

N_IN, N_H, N_O, T = 500, 600, 4, 6


def _lif(name: str, n: int) -> LIFGroup:
    return LIFGroup(name=name, n=n, du=4095, dv=0, vth=5, bias_mant=0, bias_exp=0, u0=0, v0=0)


def banded_net() -> Network:
    """in(500) -> h(600) -> o(4): a band of nonzero synapses (each input reaches about 240 of h), so that
    h's synaptic memory exceeds one Loihi 1 core although its 600 neurons fit in one core's 1024."""
    rows = np.arange(N_H)[:, None] * N_IN / N_H
    w1 = np.where(np.abs(rows - np.arange(N_IN)[None, :]) < 100, 3, 0).astype(np.int64)
    w2 = np.zeros((N_O, N_H), np.int64)
    w2[np.arange(N_H) % N_O, np.arange(N_H)] = 2  # each h neuron reaches one o neuron (one core)
    return Network(
        inputs=(InputGroup(name="in", n=N_IN),),
        groups=(_lif("h", N_H), _lif("o", N_O)),
        connections=(
            Connection(name="c1", source="in", target="h", weights=w1),
            Connection(name="c2", source="h", target="o", weights=w2),
        ),
    )


def random_spikes(net: Network, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {g.name: (rng.random((2, T, g.n)) < 0.3).astype(np.int64) for g in (*net.inputs, *net.groups)}


def by_hand(w: np.ndarray, slices: list[tuple[int, int]]) -> np.ndarray:
    """Per source neuron, the slices (cores) whose rows hold one of its nonzero weights."""
    return np.array([[w[a:b, j].any() for a, b in slices] for j in range(w.shape[1])]).sum(axis=1)


def messages(rep: object, group: str) -> np.ndarray:
    return next(g.messages_out for g in rep.counts.groups if g.name == group)  # type: ignore[attr-defined]


def test_chip_placement_splits_h_that_the_default_packs_in_one_core() -> None:
    net = banded_net()
    slices = placement(net, "loihi1")["h"]
    assert len(slices) > 1 and N_H <= 1024  # cut by memory, not by neurons
    w1 = np.asarray(net.connections[0].weights)
    per_input = by_hand(w1, slices)
    assert per_input.max() > 1  # some inputs reach more than one of h's cores
    spikes = random_spikes(net)
    sent = np.count_nonzero(spikes["in"], axis=1)  # (B, n) spikes per input channel
    rep = energy_report(net, spikes, profiles=["loihi1"], chip="loihi1")
    default = energy_report(net, spikes, profiles=["loihi1"])
    np.testing.assert_array_equal(messages(rep, "in"), sent @ per_input)
    np.testing.assert_array_equal(messages(default, "in"), sent @ (w1 != 0).any(axis=0))
    assert (messages(rep, "in") > messages(default, "in")).all()
    # h -> o: o is one core either way; o sends nothing
    np.testing.assert_array_equal(messages(rep, "h"), messages(default, "h"))
    np.testing.assert_array_equal(messages(rep, "o"), [0, 0])
    # routing energy follows the messages (loihi1: 1.7 pJ per message); synops do not change
    routing = rep.estimates[0].per_inference()["routing"]
    total = sum(float(np.mean(g.messages_out)) for g in rep.counts.groups)
    assert routing == pytest.approx(total * 1.7)
    np.testing.assert_array_equal(rep.counts.total("synops"), default.counts.total("synops"))


def test_report_says_which_mapping_was_used() -> None:
    net = banded_net()
    spikes = random_spikes(net)
    j = to_json(energy_report(net, spikes, profiles=["loihi1"], chip="loihi1"))
    cores = sum(len(s) for s in placement(net, "loihi1").values())
    assert j["mapping"]["chip"] == "loihi1" and j["mapping"]["cores"] == cores
    d = to_json(energy_report(net, spikes, profiles=["loihi1"]))
    assert d["mapping"]["chip"] is None and "neurons_per_core" in d["mapping"]["rule"]
    assert f"on the loihi1 placement ({cores} cores)" in format_text(
        energy_report(net, spikes, profiles=["loihi1"], chip="loihi1")
    )
    with pytest.raises(ValidationError, match=r"placement\.chip"):
        energy_report(net, spikes, profiles=["loihi1"], chip="loihi3")


def test_default_is_unchanged() -> None:
    """Without ``chip`` every profile counts with its own neurons_per_core, as count_synops does."""
    net = banded_net()
    spikes = random_spikes(net, seed=1)
    rep = energy_report(net, spikes, profiles=["loihi1", "truenorth"])
    act = activity_from_spikes(net, spikes)
    for npc, est in zip((1024, 256), rep.estimates, strict=True):
        want = count_synops(net, act, neurons_per_core=npc)
        assert est.profile.neurons_per_core == npc
        assert est.per_inference()["routing"] == pytest.approx(
            sum(float(np.mean(g.messages_out)) for g in want.groups) * est.profile.pj("message")
        )
    for got, want in zip(rep.counts.groups, count_synops(net, act).groups, strict=True):
        np.testing.assert_array_equal(got.messages_out, want.messages_out)


def test_count_synops_checks_destinations() -> None:
    net = banded_net()
    act = activity_from_spikes(net, random_spikes(net))
    with pytest.raises(ValidationError, match=r"destinations\['in'\]: must be 500 integers >= 0"):
        count_synops(net, act, destinations={"in": np.ones(3, np.int64)})
    two = count_synops(net, act, destinations={"in": np.full(N_IN, 2, np.int64)})
    sent = act.spike_counts["in"].sum(axis=1)
    np.testing.assert_array_equal(two.groups[0].messages_out, 2 * sent)


def test_cli_energy_chip_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("spikeport.emulator.engines.dispatch")
    from spikeport.cli import energy as cmd_energy
    from spikeport.cli import main as cli

    net = banded_net()
    monkeypatch.setattr(cmd_energy, "load_network", lambda path: net)
    x = random_spikes(net)["in"][0]
    np.save(tmp_path / "x.npy", x)
    argv = ["energy", "net.h5", "--input", str(tmp_path / "x.npy"), "--profile", "loihi1", "--json"]
    assert cli.main([*argv, "--chip", "loihi1"]) == 0
    chip = json.loads(capsys.readouterr().out)
    assert cli.main(argv) == 0
    default = json.loads(capsys.readouterr().out)
    per_input = by_hand(np.asarray(net.connections[0].weights), placement(net, "loihi1")["h"])
    sent = np.count_nonzero(x, axis=0)
    assert chip["groups"][0]["messages"] == float(sent @ per_input)
    assert default["groups"][0]["messages"] < chip["groups"][0]["messages"]
    assert chip["mapping"]["chip"] == "loihi1" and default["mapping"]["chip"] is None
    assert cli.main([*argv[:-1], "--chip", "loihi1"]) == 0
    assert "on the loihi1 placement" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:  # argparse refuses it, as for ``spikeport map --chip``
        cli.main([*argv, "--chip", "loihi3"])
    assert exc.value.code == 2 and "invalid choice: 'loihi3'" in capsys.readouterr().err
