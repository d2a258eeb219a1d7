"""``spikeport run --format``, ``--engine torch``, ``--cluster`` on run/compare/energy: the same arrays
everywhere."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from spikeport.cli import main as cli
from spikeport.emulator.errors import ValidationError
from spikeport.emulator.io import save_network
from spikeport.emulator.network import Connection, InputGroup, LIFGroup, Network
from spikeport.emulator.result import RunResult, load_result
from spikeport.emulator.result_files import FORMATS

T = 12


def _net() -> Network:
    g = LIFGroup(name="g", n=3, du=1024, dv=512, vth=40, bias_mant=3, bias_exp=0, u0=0, v0=0)
    h = LIFGroup(name="h", n=2, du=4095, dv=2000, vth=20, bias_mant=0, bias_exp=0, u0=0, v0=0)
    c1 = Connection(name="c1", source="x", target="g", weights=[[30, -5, 12], [7, 25, -9], [0, 14, 40]])
    c2 = Connection(name="c2", source="g", target="h", weights=[[50, -20, 10], [0, 60, 10]])
    return Network(inputs=[InputGroup(name="x", n=3)], groups=[g, h], connections=[c1, c2])


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    x = (np.random.default_rng(4).random((3, T, 3)) < 0.4).astype(np.int8)
    paths = {"net": tmp_path / "net.h5", "x": tmp_path / "x.npy"}
    save_network(paths["net"], _net())
    np.save(paths["x"], x)
    return paths


def _run(files: dict[str, Path], out: Path, *extra: str) -> None:
    argv = ["run", str(files["net"]), "--input", str(files["x"]), "-o", str(out), "--record", "spikes,u,v"]
    assert cli.main([*argv, *extra]) == 0


def _assert_same(got: RunResult, want: RunResult) -> None:
    assert sorted(got.outputs) == sorted(want.outputs)
    for k, arr in want.outputs.items():
        np.testing.assert_array_equal(np.asarray(got[k]), arr, err_msg=k)
        assert np.asarray(got[k]).dtype == arr.dtype, k


def _plain(files: dict[str, Path], tmp_path: Path) -> RunResult:
    _run(files, tmp_path / "plain.npz")
    with np.load(tmp_path / "plain.npz") as z:
        outs = {k: z[k] for k in z.files if k != "__metadata__"}
        meta = json.loads(str(z["__metadata__"]))
    assert np.count_nonzero(outs["h/spikes"]) > 0 and len(outs) == 6
    return RunResult(outputs=outs, metadata=meta)


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_round_trips_the_same_arrays(
    files: dict[str, Path], tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    want = _plain(files, tmp_path)
    out = tmp_path / f"out.{fmt}"
    _run(files, out, "--format", fmt)
    got = load_result(out)
    _assert_same(got, want)
    assert {got[k].dtype for k in got.outputs if k.endswith("/spikes")} == {np.dtype(np.int8)}  # LIF groups
    assert got.metadata["input_file"] == str(files["x"]) and got.metadata["lag"] == want.metadata["lag"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left
    if fmt.startswith("npz"):  # the plain reader: np.load; compressed only when asked
        with zipfile.ZipFile(out) as zf:
            kinds = {i.compress_type for i in zf.infolist()}
        assert kinds == {zipfile.ZIP_DEFLATED if fmt == "npz-compressed" else zipfile.ZIP_STORED}
        with np.load(out) as z:
            np.testing.assert_array_equal(z["h/v"], want["h/v"])
    elif fmt == "h5":
        import h5py

        with h5py.File(out, "r") as f:
            np.testing.assert_array_equal(f["g/spikes"][1:, 2:5], want["g/spikes"][1:, 2:5])
            assert json.loads(f.attrs["__metadata__"])["backend"] == "emulator"
    else:
        assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.npy")) == [
            f"{g}/{v}.npy" for g in "gh" for v in ("spikes", "u", "v")
        ]
        np.testing.assert_array_equal(np.load(out / "h" / "u.npy", mmap_mode="r"), want["h/u"])


@pytest.mark.parametrize("fmt", FORMATS)
def test_casts_are_written_chunk_by_chunk_with_the_same_values(
    tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spikeport.emulator import result_files

    monkeypatch.setattr(result_files, "CHUNK_BYTES", 40)  # 5 samples x 2 x 3 int32 = 24 bytes a row
    rng = np.random.default_rng(2)
    outs = {"a/spikes": rng.integers(-1, 2, (7, 2, 3)).astype(np.int8), "a/v": rng.normal(size=(7, 2, 3))}
    RunResult(outputs=outs, metadata={"k": 1}).save(tmp_path / "o", format=fmt, dtypes={"a/spikes": np.int32})
    got = load_result(tmp_path / "o")
    np.testing.assert_array_equal(got["a/spikes"], outs["a/spikes"].astype(np.int32))
    np.testing.assert_array_equal(got["a/v"], outs["a/v"])
    assert got["a/spikes"].dtype == np.int32 and got.metadata == {"k": 1}
    if fmt == "npy-dir":  # the same bytes as np.save of the cast array
        np.save(tmp_path / "ref.npy", outs["a/spikes"].astype(np.int32))
        assert (tmp_path / "o" / "a" / "spikes.npy").read_bytes() == (tmp_path / "ref.npy").read_bytes()


def test_npy_dir_replaces_its_own_output_only(files: dict[str, Path], tmp_path: Path) -> None:
    want = _plain(files, tmp_path)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    argv = ["run", str(files["net"]), "--input", str(files["x"]), "--format", "npy-dir"]
    assert cli.main([*argv, "-o", str(foreign)]) == 2
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    assert cli.main([*argv, "-o", str(tmp_path / "x.npy")]) == 2  # an existing file (the input)
    out = tmp_path / "o"
    assert cli.main([*argv, "-o", str(out), "--record", "v"]) == 0
    _run(files, out, "--format", "npy-dir")  # a previous npy-dir output is swapped for the new one
    _assert_same(load_result(out, mmap=True), want)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["mine", "net.h5", "x.npy", "plain.npz", "o"])


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_failed_write_leaves_the_previous_output(
    files: dict[str, Path], tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spikeport.emulator import result_files

    out = tmp_path / "out"
    _run(files, out, "--format", fmt)
    before = load_result(out)

    def boom(*_a: Any, **_k: Any) -> None:
        raise ValidationError("disk: full (got 0)")

    for name in ("write_npz", "write_h5", "write_npy_dir"):
        monkeypatch.setattr(result_files, name, boom)
    argv = ["run", str(files["net"]), "--input", str(files["x"]), "-o", str(out), "--format", fmt]
    assert cli.main([*argv, "--record", "v"]) == 2
    _assert_same(load_result(out), before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.h5", "out", "x.npy"]


def test_torch_engine_on_cpu_gives_the_dense_arrays(files: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("torch")
    want = _plain(files, tmp_path)
    _run(files, tmp_path / "t.npz", "--engine", "torch", "--device", "cpu")
    got = load_result(tmp_path / "t.npz")
    _assert_same(got, want)
    assert got.metadata["engine"] == "torch"


def test_cluster_local_1_gives_the_plain_arrays(files: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    want = _plain(files, tmp_path)
    _run(files, tmp_path / "c.npz", "--cluster", "local:1", "--chunk-size", "2")
    got = load_result(tmp_path / "c.npz")
    _assert_same(got, want)
    assert got.metadata["cluster"] == {"chunks": 2, "chunk_size": 2, "workers": 1}


def test_cluster_options_are_checked(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["run", str(files["net"]), "--input", str(files["x"]), "-o", str(files["x"].with_name("o.npz"))]
    assert cli.main([*argv, "--chunk-size", "2"]) == 2
    assert "--chunk-size: needs --cluster" in capsys.readouterr().err
    assert cli.main([*argv, "--cluster", "nowhere"]) == 2
    assert "local:N" in capsys.readouterr().err
    assert not files["x"].with_name("o.npz").exists()


@pytest.fixture
def spy_client(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``--cluster`` answered by one in-process cluster (2 thread workers); counts the clients made and
    closed."""
    distributed = pytest.importorskip("distributed")
    from spikeport import cluster

    calls: dict[str, Any] = {"made": [], "closed": 0}
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as lc,
        distributed.Client(lc) as c,
    ):
        monkeypatch.setattr(cluster, "client_from_spec", lambda spec: calls["made"].append(spec) or c)
        monkeypatch.setattr(
            cluster, "close_client", lambda cl: calls.__setitem__("closed", calls["closed"] + 1)
        )
        yield calls


def test_energy_on_a_cluster_reports_the_same(
    files: dict[str, Path], spy_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["energy", str(files["net"]), "--input", str(files["x"]), "--json", "--profile", "loihi1"]
    assert cli.main(argv) == 0
    want = json.loads(capsys.readouterr().out)
    assert cli.main([*argv, "--cluster", "local:2", "--chunk-size", "1"]) == 0
    assert json.loads(capsys.readouterr().out) == want
    assert want["totals"]["synops"] > 0
    assert spy_client == {"made": ["local:2"], "closed": 1}


def test_compare_on_a_cluster_reports_the_same(
    tmp_path: Path, spy_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import nir
    from spikeport.nir.io import write_nir
    from spikeport.quantize.semantics import semantics

    n_in, n = 5, 3
    w = np.random.default_rng(0).normal(0, 1.5, (n, n_in))
    nodes = {
        "input": nir.Input(input_type={"input": np.array([n_in])}),
        "fc": nir.Affine(weight=w, bias=np.zeros(n)),
        "h": nir.LIF(tau=np.full(n, 5e-3), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n)),
        "output": nir.Output(output_type={"output": np.array([n])}),
    }
    graph = nir.NIRGraph(nodes=nodes, edges=[("input", "fc"), ("fc", "h"), ("h", "output")], type_check=False)
    model, net, x = tmp_path / "m.nir", tmp_path / "net.h5", tmp_path / "x.npy"
    write_nir(model, graph, semantics("snntorch"))
    np.save(x, (np.random.default_rng(1).random((4, 30, n_in)) < 0.4).astype(np.float32))
    assert cli.main(["quantize", str(model), "-o", str(net), "--calibrate", str(x)]) == 0
    capsys.readouterr()
    argv = ["compare", str(model), str(net), "--input", str(x), "--json"]
    assert cli.main(argv) == 0
    want = json.loads(capsys.readouterr().out)
    assert cli.main([*argv, "--cluster", "tcp://somewhere:8786", "--chunk-size", "3"]) == 0
    assert json.loads(capsys.readouterr().out) == want
    assert want["backends"]["fixed"]["groups"]
    assert spy_client == {"made": ["tcp://somewhere:8786"], "closed": 1}
