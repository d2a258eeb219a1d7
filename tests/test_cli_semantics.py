"""``run``/``quantize``/``compare`` without ``--semantics``: the file's stored semantics, else the
suggested convention, named on one stderr line and recorded in the metadata (issue 13)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from spikeport.cli import main as cli

N, T = 4, 30


def _snntorch_like(path: Path, semantics: object = None) -> None:
    """Input -> Affine -> LIF with snnTorch's export pattern r = tau / 1e-4 (no stored semantics)."""
    import nir
    from spikeport.nir.io import write_nir

    rng = np.random.default_rng(3)
    tau = np.full(N, 5e-3)
    affine = nir.Affine(weight=rng.normal(0.6, 0.3, (N, N)), bias=np.zeros(N))
    lif = nir.LIF(tau=tau, r=tau / 1e-4, v_leak=np.zeros(N), v_threshold=np.ones(N), v_reset=np.zeros(N))
    write_nir(path, nir.NIRGraph.from_list(affine, lif), semantics)  # type: ignore[arg-type]


@pytest.fixture
def model(tmp_path: Path) -> dict[str, Path]:
    x = (np.random.default_rng(4).random((2, T, N)) < 0.5).astype(np.float32)
    paths = {"nir": tmp_path / "m.nir", "x": tmp_path / "x.npy"}
    _snntorch_like(paths["nir"])
    np.save(paths["x"], x)
    return paths


def _run(model: dict[str, Path], out: Path, *extra: str) -> tuple[np.ndarray, dict]:
    argv = ["run", str(model["nir"]), "--input", str(model["x"]), "-o", str(out), *extra]
    assert cli.main(argv) == 0
    with np.load(out) as z:
        (key,) = [k for k in z.files if k.endswith("/spikes")]
        return z[key], json.loads(str(z["__metadata__"]))


def test_run_without_semantics_uses_the_suggested_convention_and_says_so(
    model: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spikes, meta = _run(model, tmp_path / "a.npz")
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("spikeport run: semantics: snntorch (suggested: r = tau/dt")
    assert err[0].endswith("override with --semantics)")
    assert meta["semantics"]["convention"] == "snntorch" and meta["semantics_source"]["source"] == "suggested"
    given, given_meta = _run(model, tmp_path / "b.npz", "--semantics", "snntorch")
    assert capsys.readouterr().err == ""  # --semantics: nothing to say
    assert given_meta["semantics_source"]["source"] == "given"
    np.testing.assert_array_equal(spikes, given)
    plain, _ = _run(model, tmp_path / "c.npz", "--semantics", "nir")
    assert not np.array_equal(spikes, plain)  # the default is not plain nir (what it silently was)


def test_run_uses_the_stored_semantics_with_overrides(
    tmp_path: Path, model: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from spikeport.quantize.semantics import semantics

    _snntorch_like(model["nir"], semantics("norse"))
    _, meta = _run(model, tmp_path / "b.npz", "--reset", "subtract")
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert (
        line
        == "spikeport run: semantics: norse (stored in the file; with --reset; override with --semantics)"
    )
    assert meta["semantics"]["convention"] == "norse" and meta["semantics"]["reset"] == "subtract"
    assert meta["semantics_source"]["source"] == "stored"


def test_run_json_summary_names_the_semantics(
    model: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(model, tmp_path / "a.npz", "--json")
    summary = json.loads(capsys.readouterr().out)
    assert summary["semantics"]["convention"] == "snntorch" and summary["semantics"]["source"] == "suggested"


def test_quantize_and_compare_use_the_suggested_convention(
    model: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from spikeport.emulator.io import load_network

    net = tmp_path / "net.h5"
    assert cli.main(["quantize", str(model["nir"]), "-o", str(net)]) == 0
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("spikeport quantize: semantics: snntorch (suggested: r = tau/dt")
    meta = load_network(net).metadata
    assert meta["semantics"]["convention"] == "snntorch" and meta["semantics_source"]["source"] == "suggested"
    assert cli.main(["compare", str(model["nir"]), str(net), "--input", str(model["x"]), "--json"]) == 0
    captured = capsys.readouterr()
    rep = json.loads(captured.out)
    assert rep["semantics"]["convention"] == "snntorch" and rep["semantics_source"]["source"] == "network"
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("spikeport compare: semantics: snntorch (the network was quantized under it")


def test_quantize_names_the_suggested_multi_spike_convention(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """IF neurons with r == 1 look like Sinabs' export: multi-spike, quantized to graded payloads."""
    import nir
    from spikeport.nir.io import write_nir

    affine = nir.Affine(weight=2 * np.eye(2), bias=np.zeros(2))
    write_nir(
        tmp_path / "m.nir", nir.NIRGraph.from_list(affine, nir.IF(r=np.ones(2), v_threshold=np.ones(2)))
    )
    assert cli.main(["quantize", str(tmp_path / "m.nir"), "-o", str(tmp_path / "n.h5")]) == 0
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("spikeport quantize: semantics: sinabs (suggested: IF neurons with r == 1")
    from spikeport.emulator.io import load_network

    assert [g.max_spikes for g in load_network(tmp_path / "n.h5").groups] == [15]
