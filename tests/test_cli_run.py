"""``spikeport run``: files in, one .npz out, a one-line summary, one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from spikeport.cli import main as cli
from spikeport.emulator.io import save_network
from spikeport.emulator.network import Connection, InputGroup, LIFGroup, Network

T = 6


def _net() -> Network:
    """x -> g (w=10, du=dv=4095, vth=5): g fires one step after each input spike (u = 640 > 320)."""
    g = LIFGroup(name="g", n=2, du=4095, dv=4095, vth=5, bias_mant=0, bias_exp=0, u0=0, v0=0)
    c = Connection(name="c", source="x", target="g", weights=[[10, 0], [0, 10]])
    return Network(inputs=[InputGroup(name="x", n=2)], groups=[g], connections=[c])


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    x = np.zeros((2, T, 2), np.int64)
    x[0, 1, 0] = x[0, 3, 1] = x[1, 0, 0] = 1
    paths = {"net": tmp_path / "net.h5", "x": tmp_path / "x.npy", "out": tmp_path / "out.npz"}
    save_network(paths["net"], _net())
    np.save(paths["x"], x)
    return paths


def _expected_spikes() -> np.ndarray:
    s = np.zeros((2, T, 2), np.int64)
    s[0, 2, 0] = s[0, 4, 1] = s[1, 1, 0] = 1
    return s


def test_run_writes_one_array_per_group_and_variable(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "run",
        str(files["net"]),
        "--input",
        str(files["x"]),
        "-o",
        str(files["out"]),
        "--record",
        "spikes,u,v",
        "--pad",
        "0",
    ]
    assert cli.main(argv) == 0
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and "spikes: g 3" in line and "B=2 T=6" in line
    with np.load(files["out"]) as z:
        assert sorted(z.files) == ["__metadata__", "g/spikes", "g/u", "g/v"]
        np.testing.assert_array_equal(z["g/spikes"], _expected_spikes())
        np.testing.assert_array_equal(z["g/u"], np.roll(np.load(files["x"]), 1, axis=1) * 640)
        assert json.loads(str(z["__metadata__"]))["backend"] == "emulator"


@pytest.mark.lava
def test_lava_backend_writes_the_same_arrays(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", str(files["net"]), "--input", str(files["x"]), "-o", str(files["out"]), "--pad", "0"]
    assert cli.main([*argv, "--backend", "lava", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["backend"] == "lava" and summary["spikes"] == {"g": 3}
    with np.load(files["out"]) as z:
        np.testing.assert_array_equal(z["g/spikes"], _expected_spikes())


def test_float_mode_and_npz_inputs(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    np.savez(tmp_path / "x.npz", x=np.load(files["x"]))
    argv = ["run", str(files["net"]), "--input", str(tmp_path / "x.npz"), "-o", str(files["out"]), "--float"]
    argv += ["--pad", "0"]
    assert cli.main([*argv, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["spikes"] == {"g": 3}
    with np.load(files["out"]) as z:
        np.testing.assert_array_equal(z["g/spikes"], _expected_spikes())


def test_run_pads_for_the_lag_and_records_it(files: dict[str, Path]) -> None:
    """Default ``--pad auto``: one zero step per connection on the longest path, so the response to the
    last input step is kept; ``--aligned`` puts index t at input step t; the lag is in __metadata__."""
    argv = ["run", str(files["net"]), "--input", str(files["x"]), "-o", str(files["out"])]
    assert cli.main(argv) == 0
    with np.load(files["out"]) as z:
        spikes, meta = z["g/spikes"], json.loads(str(z["__metadata__"]))
    assert spikes.shape == (2, T + 1, 2) and spikes.dtype == np.int8  # fixed-point LIF
    np.testing.assert_array_equal(spikes[:, :T], _expected_spikes())
    assert meta["lag"] == {"g": 1} and meta["pad"] == 1 and meta["input_steps"] == T
    assert cli.main([*argv, "--aligned"]) == 0
    with np.load(files["out"]) as z:
        np.testing.assert_array_equal(z["g/spikes"], np.load(files["x"]))  # g repeats x one step later
    x = np.load(files["x"])
    x[0, T - 1, 1] = 1  # a spike on the last step: answered only in the padded step
    np.save(files["x"], x)
    assert cli.main([*argv, "--pad", "3"]) == 0
    with np.load(files["out"]) as z:
        assert z["g/spikes"].shape == (2, T + 3, 2) and z["g/spikes"][0, T, 1] == 1
    assert cli.main([*argv, "--pad", "0", "--aligned"]) == 2


def test_time_first_and_natural_shapes(files: dict[str, Path], tmp_path: Path) -> None:
    x = np.load(files["x"])
    np.save(tmp_path / "tb.npy", x.transpose(1, 0, 2))
    np.save(tmp_path / "nat.npy", x.reshape(2, T, 1, 2))  # (B, T, C, n): the model's natural shape
    for name, extra in (("tb.npy", ["--time-first"]), ("nat.npy", [])):
        argv = ["run", str(files["net"]), "--input", str(tmp_path / name), "-o", str(files["out"]), *extra]
        assert cli.main([*argv, "--pad", "0"]) == 0
        with np.load(files["out"]) as z:
            np.testing.assert_array_equal(z["g/spikes"], _expected_spikes())


def test_internal_groups_are_hidden_unless_asked(files: dict[str, Path], tmp_path: Path) -> None:
    g = LIFGroup(name="~bias", n=1, du=4095, dv=4095, vth=5, bias_mant=0, bias_exp=0, u0=0, v0=0)
    net = _net()
    net = Network(inputs=net.inputs, groups=(*net.groups, g), connections=net.connections)
    save_network(tmp_path / "b.h5", net)
    argv = ["run", str(tmp_path / "b.h5"), "--input", str(files["x"]), "-o", str(files["out"])]
    assert cli.main(argv) == 0
    with np.load(files["out"]) as z:
        assert sorted(z.files) == ["__metadata__", "g/spikes"]
    assert cli.main([*argv, "--internal"]) == 0
    with np.load(files["out"]) as z:
        assert "~bias/spikes" in z.files


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"net": "missing.h5"}, "NET: no such file"),
        ({"x": "missing.npy"}, "--input: no such file"),
        ({"shape": (T, 3)}, "must have shape (T, 2) or (B, T, 2)"),
        ({"extra": ["--backend", "lava", "--float"]}, "--float: Lava runs fixed point only"),
        ({"extra": ["--record", "sigma"]}, "unknown variable"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict, message: str
) -> None:
    net = str(tmp_path / change["net"]) if "net" in change else str(files["net"])
    x = str(tmp_path / change["x"]) if "x" in change else str(files["x"])
    if "shape" in change:
        np.save(files["x"], np.zeros(change["shape"], np.int64))
    argv = ["run", net, "--input", x, "-o", str(files["out"]), *change.get("extra", [])]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("spikeport run: error:") and message in err, err
    assert len(err.splitlines()) == 1
    assert not files["out"].exists()


def test_nir_model_semantics_overrides(tmp_path: Path) -> None:
    """Input -> Affine(2 I) -> IF(theta 1). Stored/default: zero reset, v > theta -> one spike.
    ``--reset subtract --threshold '>='``: v = 2 spikes and keeps 1; 1 >= 1 spikes again, then v = 0."""
    import nir
    from spikeport.nir.io import write_nir

    affine = nir.Affine(weight=2 * np.eye(2, dtype=np.float32), bias=np.zeros(2, np.float32))
    neuron = nir.IF(r=np.ones(2, np.float32), v_threshold=np.ones(2, np.float32))
    write_nir(tmp_path / "m.nir", nir.NIRGraph.from_list(affine, neuron))
    x = np.zeros((1, 5, 2))
    x[0, 1, 0] = 1
    np.save(tmp_path / "x.npy", x)
    argv = ["run", str(tmp_path / "m.nir"), "--input", str(tmp_path / "x.npy"), "-o", str(tmp_path / "o.npz")]
    assert cli.main([*argv, "--semantics", "nir", "--reset", "subtract", "--threshold", ">="]) == 0
    with np.load(tmp_path / "o.npz") as z:
        (key,) = [k for k in z.files if k.endswith("/spikes")]
        np.testing.assert_array_equal(z[key][0], [[0, 0], [1, 0], [1, 0], [0, 0], [0, 0]])
        meta = json.loads(str(z["__metadata__"]))
    assert meta["semantics"]["reset"] == "subtract" and meta["semantics"]["threshold"] == ">="


def test_python_dash_m_runs_the_command(files: dict[str, Path]) -> None:
    argv = ["run", str(files["net"]), "--input", str(files["x"]), "-o", str(files["out"]), "--record", "v"]
    proc = subprocess.run(
        [sys.executable, "-m", "spikeport", *argv], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("spikeport run: emulator") and "spikes: none recorded" in proc.stdout
    assert "(pad 1)" in proc.stdout
    with np.load(files["out"]) as z:
        assert z["g/v"].shape == (2, T + 1, 2)  # padded for the lag of g (one connection)


def test_nir_model_runs_the_float_reference(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Input -> Affine(2 I) -> IF(theta 1): v = 2 > 1 at the input's own step (no Dense delay), then 0.
    The file stores 'nir' (without it, IF with r == 1 suggests Sinabs' multi-spike convention)."""
    import nir
    from spikeport.nir.io import write_nir
    from spikeport.quantize.semantics import semantics

    affine = nir.Affine(weight=2 * np.eye(2, dtype=np.float32), bias=np.zeros(2, np.float32))
    neuron = nir.IF(r=np.ones(2, np.float32), v_threshold=np.ones(2, np.float32))
    write_nir(tmp_path / "m.nir", nir.NIRGraph.from_list(affine, neuron), semantics("nir"))
    x = np.zeros((1, 5, 2))
    x[0, 1, 0] = 1
    np.save(tmp_path / "x.npy", x)
    argv = ["run", str(tmp_path / "m.nir"), "--input", str(tmp_path / "x.npy"), "-o", str(tmp_path / "o.npz")]
    assert cli.main([*argv, "--record", "spikes,v", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["backend"] == "reference"
    with np.load(tmp_path / "o.npz") as z:
        (key,) = [k for k in z.files if k.endswith("/spikes")]
        np.testing.assert_array_equal(z[key][0], [[0, 0], [1, 0], [0, 0], [0, 0], [0, 0]])
