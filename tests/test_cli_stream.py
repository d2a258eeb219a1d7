"""``spikeport run --stream B``: chunked runs write the arrays of the one-shot run, atomically."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from spikeport.cli import main as cli
from spikeport.emulator.errors import UnsupportedError, ValidationError
from spikeport.emulator.io import save_network
from spikeport.emulator.network import Connection, InputGroup, LIFGroup, Network
from spikeport.emulator.result import load_result

T, B = 10, 11


def _net() -> Network:
    g = LIFGroup(name="g", n=4, du=1024, dv=512, vth=40, bias_mant=3, bias_exp=0, u0=0, v0=0)
    h = LIFGroup(name="h", n=2, du=4095, dv=2000, vth=20, bias_mant=0, bias_exp=0, u0=0, v0=0)
    w1 = [[30, -5, 12], [7, 25, -9], [0, 14, 40], [22, 22, -30]]
    c1 = Connection(name="c1", source="x", target="g", weights=w1)
    c2 = Connection(name="c2", source="g", target="h", weights=[[50, -20, 10, 5], [0, 60, 10, -7]])
    return Network(inputs=[InputGroup(name="x", n=3)], groups=[g, h], connections=[c1, c2])


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    x = (np.random.default_rng(5).random((B, T, 3)) < 0.4).astype(np.int8)
    paths = {"net": tmp_path / "net.h5", "x": tmp_path / "x.npy", "xt": tmp_path / "xt.npy"}
    save_network(paths["net"], _net())
    np.save(paths["x"], x)
    np.save(paths["xt"], np.ascontiguousarray(np.swapaxes(x, 0, 1)))
    return paths


def _argv(files: dict[str, Path], out: Path, *extra: str, x: str = "x") -> list[str]:
    argv = ["run", str(files["net"]), "--input", str(files[x]), "-o", str(out), "--record", "spikes,u,v"]
    return [*argv, *extra]


def _run(files: dict[str, Path], out: Path, *extra: str, x: str = "x") -> None:
    assert cli.main(_argv(files, out, *extra, x=x)) == 0


def _refused(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """The error line of a refused command (exit status 2)."""
    capsys.readouterr()
    assert cli.main(argv) == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["npy-dir", "h5"])
def test_chunked_output_equals_one_shot(files: dict[str, Path], tmp_path: Path, fmt: str) -> None:
    _run(files, tmp_path / "whole.npz")
    want = load_result(tmp_path / "whole.npz")
    assert np.count_nonzero(want["h/spikes"]) > 0 and want["g/v"].shape == (B, T + 2, 4)
    for chunk in (1, 3, 4, 11, 50):
        out = tmp_path / f"out{chunk}.{fmt}"
        _run(files, out, "--format", fmt, "--stream", str(chunk))
        got = load_result(out)
        assert sorted(got.outputs) == sorted(want.outputs)
        for k, arr in want.outputs.items():
            np.testing.assert_array_equal(got[k], arr, err_msg=f"{k}, chunk {chunk}")
            assert got[k].dtype == arr.dtype, k
        assert got.metadata["stream"] == {"chunk_size": chunk, "chunks": -(-B // chunk)}
        assert got.metadata["lag"] == want.metadata["lag"] and got.metadata["batch"] == B
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_stream_options_match_one_shot(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--time-first, --aligned, --engine event and the --json summary, streamed in chunks of 4."""
    opts = ("--time-first", "--aligned", "--engine", "event", "--json")
    _run(files, tmp_path / "whole.npz", *opts, x="xt")
    one = json.loads(capsys.readouterr().out)
    _run(files, tmp_path / "out", *opts, "--format", "npy-dir", "--stream", "4", x="xt")
    streamed = json.loads(capsys.readouterr().out)
    want, got = load_result(tmp_path / "whole.npz"), load_result(tmp_path / "out", mmap=True)
    for k, arr in want.outputs.items():
        np.testing.assert_array_equal(got[k], arr, err_msg=k)
    assert got["g/v"].shape == (B, T, 4)
    assert streamed["spikes"] == one["spikes"] and streamed["batch"] == B and streamed["steps"] == T
    assert streamed["stream"] == {"chunk_size": 4, "chunks": 3}


def test_failed_chunk_leaves_no_output(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad value in the last chunk: refused, nothing written (all or nothing), no temporary left."""
    x = np.load(files["x"])
    x[-1, 3, 1] = 2
    np.save(files["x"], x)
    for fmt in ("npy-dir", "h5"):
        err = _refused(capsys, _argv(files, tmp_path / f"bad.{fmt}", "--format", fmt, "--stream", "4"))
        assert "binary input (num_message_bits=0) must be 0/1 (got 2)" in err
        assert not (tmp_path / f"bad.{fmt}").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_stream_refusals(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _refused(capsys, _argv(files, tmp_path / "o.npz", "--stream", "4"))
    assert "--stream: writes --format h5 or npy-dir (a .npz is written whole) (got 'npz')" in err
    err = _refused(capsys, _argv(files, tmp_path / "o.h5", "--format", "h5", "--stream", "0"))
    assert "--stream: must be >= 1 samples per chunk (got 0)" in err
    np.savez(tmp_path / "x.npz", x=np.load(files["x"]))
    files["npz"] = tmp_path / "x.npz"
    err = _refused(capsys, _argv(files, tmp_path / "o.h5", "--format", "h5", "--stream", "4", x="npz"))
    assert "--input: streaming reads one .npy array, not a .npz" in err
    assert not any(tmp_path.glob("o.*"))


def test_sink_refuses_incomplete_and_misfit_chunks(tmp_path: Path) -> None:
    """The writer itself: a chunk that does not fit, or a block that ends before every sample was
    written, raises and leaves nothing behind."""
    from spikeport.emulator.result_stream import streamed_arrays

    chunk = {"g/v": np.zeros((2, 3, 1), np.int32)}
    with (
        pytest.raises(ValidationError, match="chunk does not fit"),
        streamed_arrays(tmp_path / "a", fmt="npy-dir", batch=4) as sink,
    ):
        sink.write(0, chunk)
        sink.write(3, chunk)
    with (
        pytest.raises(ValidationError, match="4 samples expected"),
        streamed_arrays(tmp_path / "b.h5", fmt="h5", batch=4) as sink,
    ):
        sink.write(0, chunk)
    with (
        pytest.raises(UnsupportedError, match="streaming writes h5 or npy-dir"),
        streamed_arrays(tmp_path / "c.npz", fmt="npz", batch=4),
    ):
        pass
    assert list(tmp_path.iterdir()) == []


def test_one_sample_file_streams_as_one_chunk(files: dict[str, Path], tmp_path: Path) -> None:
    """A ``(T, n)`` file is one sample (not T samples of n steps), streamed or not."""
    np.save(tmp_path / "one.npy", np.load(files["x"])[2])
    files["one"] = tmp_path / "one.npy"
    _run(files, tmp_path / "whole.npz", x="one")
    _run(files, tmp_path / "out.h5", "--format", "h5", "--stream", "3", x="one")
    want, got = load_result(tmp_path / "whole.npz"), load_result(tmp_path / "out.h5")
    assert got["g/v"].shape == (1, T + 2, 4)
    for k, arr in want.outputs.items():
        np.testing.assert_array_equal(got[k], arr, err_msg=k)
