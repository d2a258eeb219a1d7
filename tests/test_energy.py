"""Energy profiles (data files, validation) and energy per inference on a hand-computed network."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from spikeport.emulator import Connection, InputGroup, LIFGroup, Network, ValidationError
from spikeport.emulator.energy.estimate import (
    ann_dense_energy,
    builtin_profiles,
    estimate,
    load_profile,
    profile_from_dict,
)
from spikeport.emulator.energy.neurobench import neurobench_ops
from spikeport.emulator.energy.synops import activity_from_spikes, count_synops


def test_builtin_profiles_cite_every_number_and_have_no_loihi2() -> None:
    names = builtin_profiles()
    assert set(names) == {"loihi1", "sanafe-loihi1", "truenorth", "ann-fp32", "ann-fp16", "ann-int8"}
    for name in names:
        p = load_profile(name)
        assert p.name == name
        for key, cost in p.costs.items():
            assert re.search(r"(Davies|Boyle|SANA-FE|Merolla|Horowitz)", cost.source), (name, key)
    assert not any("loihi2" in n for n in names)
    assert "pre-silicon" in load_profile("loihi1").caveat


def test_profile_numbers_are_the_published_ones() -> None:
    lo = load_profile("loihi1")
    assert (lo.pj("synop"), lo.pj("neuron_active"), lo.pj("neuron_inactive"), lo.pj("message")) == (
        23.6,
        81.0,
        52.0,
        1.7,
    )
    sf = load_profile("sanafe-loihi1")
    assert (
        sf.pj("synop"),
        sf.pj("synop_sparse"),
        sf.pj("neuron_inactive"),
        sf.pj("spike_out"),
        sf.pj("message"),
    ) == (35.5, 33.6, 51.2, 69.3, 111.0)
    assert sf.pj("neuron_active") == pytest.approx(51.2 + 21.6)
    assert load_profile("truenorth").pj("synop") == 26.0
    assert (load_profile("ann-fp32").pj("mac"), load_profile("ann-fp32").pj("ac")) == (4.6, 0.9)
    assert load_profile("ann-int8").pj("mac") == pytest.approx(0.2 + 0.03)


GOOD = {
    "name": "mine",
    "kind": "ann",
    "title": "my accelerator",
    "costs": {"mac": {"pj": 1.0, "source": "my datasheet"}, "ac": {"pj": 0.5, "source": "my datasheet"}},
}


def test_user_profiles_from_json_and_toml(tmp_path: Path) -> None:
    (tmp_path / "mine.json").write_text(json.dumps(GOOD))
    assert load_profile(tmp_path / "mine.json").pj("ac") == 0.5
    toml = 'name = "t"\nkind = "ann"\ntitle = "x"\n'
    toml += '[costs.mac]\npj = 2\nsource = "s"\n[costs.ac]\npj = 1\nsource = "s"\n'
    (tmp_path / "t.toml").write_text(toml)
    assert load_profile(tmp_path / "t.toml").pj("mac") == 2.0


@pytest.mark.parametrize(
    ("patch", "match"),
    [
        (
            {"costs": {"mac": {"pj": 1.0, "source": "s"}}},
            r"costs: missing required costs for kind 'ann' \(got \['ac'\]\)",
        ),
        (
            {"costs": {**GOOD["costs"], "ac": {"pj": -0.1, "source": "s"}}},
            r"costs\.ac\.pj: must be a finite number >= 0",
        ),
        ({"costs": {**GOOD["costs"], "zap": {"pj": 1.0, "source": "s"}}}, r"costs: unknown keys.*\['zap'\]"),
        ({"colour": "red"}, r"<root>: unknown keys.*\['colour'\]"),
        ({"kind": "loihi2"}, r"kind: must be one of \['ann', 'neuromorphic'\]"),
        ({"costs": {**GOOD["costs"], "ac": {"pj": 1.0, "source": " "}}}, r"costs\.ac\.source: must cite"),
        ({"costs": {**GOOD["costs"], "ac": {"pj": 1.0}}}, r"costs\.ac: must have exactly the keys"),
        ({"neurons_per_core": 0}, r"neurons_per_core: must be an integer >= 1"),
    ],
)
def test_malformed_profiles_are_refused(patch: dict, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        profile_from_dict({**GOOD, **patch}, origin="bad.toml")


def test_missing_top_level_field_and_bad_files(tmp_path: Path) -> None:
    data = {k: v for k, v in GOOD.items() if k != "title"}
    with pytest.raises(ValidationError, match=r"EnergyProfile\(x\)\.title: is required"):
        profile_from_dict(data, origin="x")
    (tmp_path / "broken.toml").write_text("name = ")
    with pytest.raises(ValidationError, match=r"EnergyProfile\(broken\.toml\): cannot parse"):
        load_profile(tmp_path / "broken.toml")
    with pytest.raises(ValidationError, match=r"load_profile\.name: no such file or built-in"):
        load_profile("loihi2")


def small_run() -> tuple[Network, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """in(2) -> h(2) -> o(1), T = 3, hand-chosen spikes and states."""
    net = Network(
        inputs=(InputGroup(name="in", n=2),),
        groups=(
            LIFGroup(name="h", n=2, du=4095, dv=0, vth=5, bias_mant=0, bias_exp=0, u0=0, v0=0),
            LIFGroup(name="o", n=1, du=4095, dv=0, vth=5, bias_mant=0, bias_exp=0, u0=0, v0=0),
        ),
        connections=(
            Connection(name="c1", source="in", target="h", weights=[[6, 6], [0, 6]]),
            Connection(name="c2", source="h", target="o", weights=[[6, 6]], sparse=True),
        ),
    )
    spikes = {
        "in": np.array([[[1, 1], [0, 0], [0, 0]]]),
        "h": np.array([[[0, 0], [1, 1], [0, 0]]]),
        "o": np.array([[[0], [0], [1]]]),
    }
    states = {"h/v": np.zeros((1, 3, 2)), "o/v": np.zeros((1, 3, 1))}
    return net, spikes, states


def test_energy_breakdown_by_hand() -> None:
    net, spikes, states = small_run()
    counts = count_synops(net, activity_from_spikes(net, spikes, states=states))
    ops = neurobench_ops(net, spikes)
    # synops: c1 = 1*1 + 1*2 = 3 (in step 1); c2 = 2 (h spikes at step 2).  Spikes h 2, o 1, in 2.
    # active updates (no bias, v always 0 entering): h at step 2 (both receive) = 2; o at step 3 = 1.
    # updates: h 2*3 = 6, o 1*3 = 3 -> inactive 4 and 2.  messages: in 2 (one core), h 2, o 0.
    e = estimate(counts, ops, load_profile("sanafe-loihi1")).per_inference()
    assert e["synaptic"] == pytest.approx(3 * 35.5 + 2 * 33.6)
    assert e["neuron"] == pytest.approx(3 * 72.8 + 6 * 51.2 + 3 * 69.3)
    assert e["routing"] == pytest.approx(4 * 111.0)
    lo = estimate(counts, ops, load_profile("loihi1")).per_inference()
    assert lo["total"] == pytest.approx(5 * 23.6 + 3 * 81.0 + 6 * 52.0 + 4 * 1.7)
    fp32 = load_profile("ann-fp32")
    # NeuroBench: effective ACs = 3 + 2 = 5; dense = 3 steps * (4 + 2) = 18
    assert estimate(counts, ops, fp32).per_inference()["total"] == pytest.approx(5 * 0.9)
    assert ann_dense_energy(ops, fp32).tolist() == pytest.approx([18 * 4.6])
    with pytest.raises(ValidationError, match=r"kind: must be 'ann'"):
        ann_dense_energy(ops, load_profile("loihi1"))


def test_report_text_json_and_plot(tmp_path: Path) -> None:
    from spikeport.report.energy import energy_report, format_text, plot_png, to_json

    net, spikes, states = small_run()
    rep = energy_report(net, spikes, states=states, profiles=["loihi1", "ann-fp32"])
    j = to_json(rep)
    assert [g["spikes"] for g in j["groups"]] == [2.0, 2.0, 1.0]
    assert j["neurobench"] == {"Effective_MACs": 0.0, "Effective_ACs": 5.0, "Dense": 18.0}
    loihi = j["profiles"][0]
    assert j["ann_baseline"]["single_pass_pj"] == pytest.approx(6 * 4.6)  # 6 synapses, one pass
    assert loihi["ann_dense_over_this"] == pytest.approx(
        18 * 4.6 / (5 * 23.6 + 3 * 81.0 + 6 * 52.0 + 4 * 1.7)
    )
    text = format_text(rep)
    assert "loihi1" in text and "NeuroBench: effective ACs 5.000" in text
    png = plot_png(rep, tmp_path / "e.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_float_run_is_counted_on_the_networks_synapses() -> None:
    from spikeport.report.energy import report_from_float_run

    net, spikes, _ = small_run()
    outputs = {"hidden/spikes": spikes["h"].astype(np.float32), "o/spikes": spikes["o"]}
    rep = report_from_float_run(net, spikes["in"][0], outputs, names={"h": "hidden"}, profiles=["loihi1"])
    assert rep.counts.total("synops").tolist() == [5]
    assert rep.counts.active_rule == "input"
    with pytest.raises(ValidationError, match=r"has no spikes for group 'h'"):
        report_from_float_run(net, spikes["in"], {"o/spikes": spikes["o"]})


def test_cli_energy_json_text_and_plot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("spikeport.emulator.engines.dispatch")
    from spikeport.cli import energy as cmd_energy
    from spikeport.cli import main as cli

    net, spikes, _ = small_run()
    monkeypatch.setattr(cmd_energy, "load_network", lambda path: net)
    np.save(tmp_path / "x.npy", spikes["in"][0])
    argv = [
        "energy",
        "net.h5",
        "--input",
        str(tmp_path / "x.npy"),
        "--profile",
        "loihi1",
        "--profile",
        "ann-int8",
    ]
    assert cli.main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [p["profile"] for p in out["profiles"]] == ["loihi1", "ann-int8"]
    # emulator run of small_run's network on its input: in -> h at step 2 (6 and 6 > 5: both spike, v <- 0;
    # neuron 1 gets 6 from channel 1 only), h -> o at step 3 (12 > 5): the hand-chosen spikes above
    assert [g["spikes"] for g in out["groups"]] == [2.0, 2.0, 1.0]
    assert out["totals"]["synops"] == 5.0
    assert cli.main([*argv, "--plot", str(tmp_path / "e.png")]) == 0
    text = capsys.readouterr().out
    assert "ann-int8" in text and (tmp_path / "e.png").stat().st_size > 1000
    assert cli.main(["energy", "net.h5", "--input", str(tmp_path / "nope.npy")]) == 2
    assert "--input: no such file" in capsys.readouterr().err
    assert cli.main(["energy", "net.h5", "--input", str(tmp_path / "x.npy"), "--profile", "loihi2"]) == 2
    assert "no such file or built-in" in capsys.readouterr().err
