"""``spikeport run`` writes each group's spikes in a dtype fixed by the network: int8 for fixed-point
LIF groups (counts ``0..max_spikes <= 127``), int32 for graded payloads and ``--float`` runs; no value
is lost, whether written at once or streamed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from spikeport.cli import main as cli
from spikeport.emulator.engines import dispatch
from spikeport.emulator.io import save_network
from spikeport.emulator.network import Connection, InputGroup, LIFGroup, Network, SigmaDeltaGroup
from spikeport.emulator.result import load_result

T = 9


def _net() -> Network:
    """``m`` sends up to 127 spikes a step (a weight of 255 << 6 against vth 1 << 6), ``b`` one, and the
    sigma-delta group ``s`` graded payloads far outside int8."""
    m = LIFGroup(name="m", n=2, du=4095, dv=0, vth=1, bias_mant=0, bias_exp=0, u0=0, v0=0, max_spikes=127)
    b = LIFGroup(name="b", n=2, du=4095, dv=4095, vth=5, bias_mant=0, bias_exp=0, u0=0, v0=0)
    s = SigmaDeltaGroup(name="s", n=2, vth=1, bias=np.zeros(2))
    conns = [
        Connection(name=f"c{g}", source="x", target=g, weights=[[255, 0], [0, 40]], weight_exp=e)
        for g, e in (("m", 7), ("b", 0), ("s", 7))
    ]
    return Network(inputs=[InputGroup(name="x", n=2)], groups=[m, b, s], connections=conns)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    x = (np.random.default_rng(3).random((3, T, 2)) < 0.6).astype(np.int8)
    paths = {"net": tmp_path / "net.h5", "x": tmp_path / "x.npy"}
    save_network(paths["net"], _net())
    np.save(paths["x"], x)
    return paths


def _reference(files: dict[str, Path], mode: str) -> dict[str, np.ndarray]:
    """The in-process run (no file in between), padded like the CLI's ``--pad 0``."""
    x = np.load(files["x"])
    return dict(dispatch.run(_net(), {"x": x}, record=["spikes"], mode=mode).outputs)


@pytest.mark.parametrize("stream", [False, True])
def test_fixed_point_lif_spikes_are_int8_and_graded_ones_int32(
    files: dict[str, Path], tmp_path: Path, stream: bool
) -> None:
    out = tmp_path / "o.h5"
    extra = ["--stream", "2"] if stream else []
    argv = ["run", str(files["net"]), "--input", str(files["x"]), "-o", str(out), "--pad", "0"]
    assert cli.main([*argv, "--format", "h5", *extra]) == 0
    got, want = load_result(out), _reference(files, "fixed")
    assert {k: got[k].dtype for k in want} == {
        "m/spikes": np.int8, "b/spikes": np.int8, "s/spikes": np.int32
    }  # fmt: skip
    assert int(want["m/spikes"].max()) == 127 and int(np.abs(want["s/spikes"]).max()) > 127
    for k, arr in want.items():
        np.testing.assert_array_equal(np.asarray(got[k]).astype(np.int64), arr.astype(np.int64), err_msg=k)


def test_float_runs_write_int32(files: dict[str, Path], tmp_path: Path) -> None:
    """Float mode has no max_spikes bound on a count's size: int32 for every group."""
    out = tmp_path / "o.npz"
    argv = ["run", str(files["net"]), "--input", str(files["x"]), "-o", str(out), "--pad", "0", "--float"]
    assert cli.main(argv) == 0
    got = load_result(out)
    assert {got[k].dtype for k in got.outputs} == {np.dtype(np.int32)}
