"""The command line with netx files and chips: ``spikeport map``, ``spikeport export --format netx``,
and ``.net`` files in ``run``, ``energy`` and ``inspect``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from spikeport.cli import main as cli
from spikeport.emulator.engines.dispatch import run
from spikeport.emulator.io import save_network
from spikeport.emulator.network import Connection, InputGroup, LIFGroup, Network
from spikeport.netx.read import read_netx

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "netx"
needs_data = pytest.mark.skipif(
    not (DATA / "mnist.net").is_file(), reason=f"netx test data not found at {DATA}"
)


def _big(n: int = 1500) -> Network:
    g = LIFGroup(name="h", n=n, du=0, dv=0, vth=10, bias_mant=0, bias_exp=0, u0=0, v0=0)
    c = Connection(name="c", source="x", target="h", weights=np.ones((n, 3), np.int64))
    return Network(inputs=(InputGroup(name="x", n=3),), groups=(g,), connections=(c,))


def test_map_json_flags_and_partitions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "big.h5"
    save_network(path, _big())
    assert cli.main(["map", str(path), "--chip", "loihi1", "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert (m["chip"], m["cores"], m["chips"], m["violations"]) == ("loihi1", 2, 1, [])
    assert m["partitioned"][0]["reasons"] == ["neurons 1500 > 1024"]
    assert [r["neurons"] for r in m["per_core"]] == [[0, 750], [750, 1500]]
    assert cli.main(["map", str(path), "--chip", "loihi2"]) == 0
    assert "loihi2: 1 cores on 1 chip(s)" in capsys.readouterr().out


def test_map_exits_1_on_violations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    g = LIFGroup(name="h", n=1, du=0, dv=0, vth=10, bias_mant=0, bias_exp=0, u0=0, v0=0)
    c = Connection(name="c", source="x", target="h", weights=np.ones((1, 5000), np.int64))
    path = tmp_path / "wide.h5"
    save_network(path, Network(inputs=(InputGroup(name="x", n=5000),), groups=(g,), connections=(c,)))
    assert cli.main(["map", str(path), "--chip", "loihi1"]) == 1
    assert "VIOLATION: core 0 (h neurons 0:1): input axons 5000 > 4096" in capsys.readouterr().out


@needs_data
def test_map_reads_netx(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["map", str(DATA / "mnist.net"), "--chip", "loihi1", "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["cores"] == 8 and {p["group"] for p in m["partitioned"]} == {"layer1", "layer2"}


@needs_data
def test_export_netx_round_trips(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    h5, out = tmp_path / "m.h5", tmp_path / "m.net"
    net = read_netx(DATA / "mnist.net")
    save_network(h5, net)
    assert cli.main(["export", str(h5), "--format", "netx", "-o", str(out)]) == 0
    back = read_netx(out)
    for a, b in zip(net.connections, back.connections, strict=True):
        np.testing.assert_array_equal(a.weights, b.weights)
    assert "wrote" in capsys.readouterr().out


def test_export_refusal_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    net = _big(4)
    g = net.groups[0]
    import dataclasses

    sub = dataclasses.replace(net, groups=(dataclasses.replace(g, reset="subtract"),))
    path = tmp_path / "s.h5"
    save_network(path, sub)
    assert cli.main(["export", str(path), "--format", "netx", "-o", str(tmp_path / "s.net")]) == 2
    err = capsys.readouterr().err
    assert "LIFGroup('h').reset='subtract': netx's CUBA neuron resets to 0" in err
    assert not (tmp_path / "s.net").exists()


def _small() -> Network:
    rng = np.random.default_rng(3)
    g = LIFGroup(name="layer1", n=4, du=1000, dv=200, vth=30, bias_mant=0, bias_exp=6, u0=0, v0=0)
    c = Connection(
        name="layer1",
        source="input",
        target="layer1",
        weights=2 * rng.integers(-40, 60, (4, 6)),
        weight_exp=-1,
    )
    return Network(inputs=(InputGroup(name="input", n=6),), groups=(g,), connections=(c,))


def test_run_takes_netx(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from spikeport.netx.write import write_netx

    net = _small()
    path = write_netx(net, tmp_path / "s.net")
    x = (np.random.default_rng(4).random((2, 20, 6)) < 0.5).astype(np.int8)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out.npz"
    assert cli.main(["run", str(path), "--input", str(tmp_path / "x.npy"), "-o", str(out), "--pad", "0"]) == 0
    with np.load(out) as z:
        got = {k: z[k] for k in z.files}
    want = run(net, x).outputs["layer1/spikes"]
    assert want.sum() > 5
    key = next(k for k in got if k.startswith("layer1"))
    np.testing.assert_array_equal(got[key], want)


@needs_data
def test_inspect_takes_netx(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["inspect", str(DATA / "tiny.net"), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["format"] == "netx" and [e["type"] for e in s["layers"]] == ["input", "conv", "conv"]
    assert cli.main(["inspect", str(DATA / "tiny.net")]) == 0
    assert "input transform (netx does not apply it)" in capsys.readouterr().out


def test_energy_takes_netx(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from spikeport.netx.write import write_netx

    path = write_netx(_small(), tmp_path / "s.net")
    np.save(tmp_path / "x.npy", (np.random.default_rng(4).random((2, 20, 6)) < 0.5).astype(np.int8))
    assert cli.main(["energy", str(path), "--input", str(tmp_path / "x.npy"), "--json"]) == 0
    assert "layer1" in capsys.readouterr().out
