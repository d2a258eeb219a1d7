"""Issue 12: nothing lost, nothing half-written, every bad input a one-line error; Lava faults end cleanly.

Each test can fail: it checks the bytes of inputs after a refused command, the mode bits of outputs, the
absence of temporary files, and the time a dead or hung Lava child takes to be reported.
"""

from __future__ import annotations

import _thread
import hashlib
import json
import os
import signal
import stat
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from spikeport.cli.main import main
from spikeport.emulator.errors import ValidationError
from spikeport.emulator.io import load_network, save_network
from spikeport.emulator.network import Connection, InputGroup, LIFGroup, Network
from spikeport.emulator.result import RunResult
from spikeport.lava.isolation import LavaRunError, group_members, run_isolated

T = 5


def _net() -> Network:
    g = LIFGroup(name="g", n=2, du=4095, dv=4095, vth=5, bias_mant=0, bias_exp=0, u0=0, v0=0)
    c = Connection(name="c", source="x", target="g", weights=[[10, 0], [0, 10]])
    return Network(inputs=[InputGroup(name="x", n=2)], groups=[g], connections=[c])


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()
    }


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    x = np.zeros((2, T, 2), np.int8)
    x[0, 1, 0] = x[1, 2, 1] = 1
    paths = {"net": tmp_path / "net.h5", "x": tmp_path / "x.npy"}
    save_network(paths["net"], _net())
    np.save(paths["x"], x)
    return paths


# ---------------------------------------------------------------- outputs
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "{net}", "--input", "{x}", "-o", "{net}"], "--output.path: must not be one of the inputs"),
        (["run", "{net}", "--input", "{x}", "-o", "{x}"], "--output.path: must not be one of the inputs"),
        (
            ["run", "{net}", "--input", "{x}", "-o", "{dir}/nodir/o.npz"],
            "--output.path: the folder must exist",
        ),
        (
            ["run", "{net}", "--input", "{x}", "-o", "{dir}"],
            "--output.path: must be a file name, not a folder",
        ),
        (["energy", "{net}", "--input", "{x}", "--plot", "{x}"], "--plot.path: must end in one of"),
        (
            ["energy", "{net}", "--input", "{x}", "--plot", "{dir}/n/e.png"],
            "--plot.path: the folder must exist",
        ),
        (
            ["energy", "{net}", "--input", "{x}", "--plot", "{dir}/p.png", "--profile", "{dir}/p.png"],
            "must not be",
        ),
    ],
)
def test_refused_outputs_leave_every_file_as_it_was(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    before = _digest(tmp_path)
    fmt = {"net": files["net"], "x": files["x"], "dir": tmp_path}
    assert main([a.format(**fmt) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert _digest(tmp_path) == before
    assert ".tmp" not in err


def test_quantize_writes_network_and_report_or_neither(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import nir
    from spikeport.nir.io import write_nir

    affine = nir.Affine(weight=2 * np.eye(2, dtype=np.float32), bias=np.zeros(2, np.float32))
    neuron = nir.IF(r=np.ones(2, np.float32), v_threshold=np.ones(2, np.float32))
    model = tmp_path / "m.nir"
    write_nir(model, nir.NIRGraph.from_list(affine, neuron))
    out = tmp_path / "out.h5"
    out.write_bytes(b"previous network")
    argv = ["quantize", str(model), "-o", str(out), "--semantics", "nir"]
    assert main([*argv, "--json", str(tmp_path / "nodir" / "q.json")]) == 2
    assert out.read_bytes() == b"previous network"  # refused before anything was written
    assert main([*argv, "-o", str(model)]) == 2  # the model itself
    assert main([*argv, "--json", str(out)]) == 2  # both options naming one file
    capsys.readouterr()
    assert main([*argv, "--json", str(tmp_path / "q.json")]) == 0
    assert load_network(out).groups and json.loads((tmp_path / "q.json").read_text())
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_outputs_get_the_umask_mode(tmp_path: Path, umask: int) -> None:
    import nir
    from spikeport.nir.io import write_nir

    old = os.umask(umask)
    try:
        save_network(tmp_path / "n.h5", _net())
        RunResult(outputs={"g/spikes": np.zeros((1, 2, 2), np.int8)}).save_npz(tmp_path / "o.npz")
        write_nir(tmp_path / "m.nir", nir.NIRGraph.from_list(nir.Affine(weight=np.eye(2), bias=np.zeros(2))))
    finally:
        os.umask(old)
    for name in ("n.h5", "o.npz", "m.nir"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask, name


def test_a_failing_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nir
    from spikeport.nir import io as nir_io

    graph = nir.NIRGraph.from_list(nir.Affine(weight=np.eye(2), bias=np.zeros(2)))
    path = tmp_path / "m.nir"
    nir_io.write_nir(path, graph)
    good = path.read_bytes()

    def broken(filename: str, g: object, **kw: object) -> None:
        Path(filename).write_bytes(good[: len(good) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(nir_io.nir, "write", broken)
    with pytest.raises(ValidationError, match=r"write_nir\.path: cannot write.*No space left") as exc:
        nir_io.write_nir(path, graph)
    assert ".tmp" not in str(exc.value)
    assert path.read_bytes() == good and sorted(p.name for p in tmp_path.iterdir()) == ["m.nir"]


def test_plot_into_a_folder_writes_the_name_it_prints(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "adir"
    folder.mkdir()
    assert main(["energy", str(files["net"]), "--input", str(files["x"]), "--plot", str(folder)]) == 0
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    assert printed == f"chart: {folder / 'energy.png'}"
    assert (folder / "energy.png").read_bytes()[:4] == b"\x89PNG"
    assert not (tmp_path / "adir.png").exists()


def test_debug_is_accepted_after_the_subcommand(files: dict[str, Path], tmp_path: Path) -> None:
    argv = ["run", str(files["net"]), "--input", str(tmp_path / "missing.npy"), "-o", str(tmp_path / "o.npz")]
    assert main(argv) == 2
    with pytest.raises(ValidationError):
        main([*argv, "--debug"])
    with pytest.raises(ValidationError):
        main(["--debug", *argv])


# ---------------------------------------------------------------- Lava faults (isolated child)
def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _hang() -> None:
    time.sleep(600)


def _orphan_zombie() -> None:
    """A Lava process dies and the (deadlocked) runtime never reaps it."""
    if os.fork() == 0:
        os._exit(3)
    time.sleep(600)


def _normal_exit_unreaped() -> int:
    """A process that ends normally and is reaped late is no failure."""
    if os.fork() == 0:
        os._exit(0)
    time.sleep(1.0)
    return 5


def _raise() -> None:
    raise ValidationError("x.y: must be z (got 1)")


def _group_gone(pgid: int) -> bool:
    deadline = time.monotonic() + 2
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not group_members(pgid)


def _last_child_pid(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    import multiprocessing.context as mpc

    pids: list[int] = []
    start = mpc.ForkProcess.start

    def spy(self: object) -> None:
        start(self)  # type: ignore[arg-type]
        pids.append(self.pid)  # type: ignore[attr-defined]

    monkeypatch.setattr(mpc.ForkProcess, "start", spy)
    return pids


@pytest.mark.parametrize(
    ("fn", "timeout", "message", "limit"),
    [
        (_die, None, "died without an answer (killed by signal SIGKILL)", 2.0),
        (_hang, 1.0, "run_lava.timeout: must finish within 1 s", 3.0),
        (_orphan_zombie, None, "died (exit code 3) and Lava stopped answering", 3.0),
    ],
)
def test_dead_or_hung_lava_child_ends_with_a_clear_error_and_no_orphans(
    monkeypatch: pytest.MonkeyPatch, fn: object, timeout: float | None, message: str, limit: float
) -> None:
    pids = _last_child_pid(monkeypatch)
    t0 = time.monotonic()
    with pytest.raises(LavaRunError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run_isolated(fn, timeout=timeout)  # type: ignore[arg-type]
    assert time.monotonic() - t0 < limit
    assert _group_gone(pids[-1])


def test_errors_in_the_child_keep_their_type() -> None:
    with pytest.raises(ValidationError, match=r"x\.y: must be z"):
        run_isolated(_raise)
    assert run_isolated(sum, [1, 2, 3]) == 6
    assert run_isolated(_normal_exit_unreaped) == 5


def test_ctrl_c_stops_a_lava_run_within_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    pids = _last_child_pid(monkeypatch)
    timer = threading.Timer(0.5, _thread.interrupt_main)
    timer.start()
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_isolated(_hang)
    assert time.monotonic() - t0 < 1.5  # 0.5 s until the interrupt, then at most ~0.1 s
    assert _group_gone(pids[-1])


def test_cli_lava_child_death_is_one_line_exit_2_nothing_written(
    files: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from spikeport.lava import backend

    monkeypatch.setattr(backend, "_run_chunks", lambda *a, **k: _die())
    monkeypatch.setattr(backend, "check_supported", lambda net: None)
    out = tmp_path / "o.npz"
    argv = ["run", str(files["net"]), "--backend", "lava", "--input", str(files["x"]), "-o", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "the Lava process died" in err, err
    assert not out.exists()


# ---------------------------------------------------------------- sparse storage, report page
def test_mostly_zero_connections_are_stored_compressed(tmp_path: Path) -> None:
    """A lowered convolution is ~97% zeros: the file holds it compressed, and reads back equal."""
    rng = np.random.default_rng(0)
    w = np.where(rng.random((512, 512)) < 0.03, rng.integers(-200, 200, (512, 512)), 0)
    net = Network(
        inputs=[InputGroup(name="x", n=512)],
        groups=[LIFGroup(name="g", n=512, du=0, dv=0, vth=100, bias_mant=0, bias_exp=0, u0=0, v0=0)],
        connections=[Connection(name="c", source="x", target="g", weights=w)],
    )
    save_network(tmp_path / "n.h5", net)
    assert (tmp_path / "n.h5").stat().st_size < w.size * 8 / 10  # raw int64 would be 2 MB
    np.testing.assert_array_equal(load_network(tmp_path / "n.h5").connections[0].weights, w)


def test_quantize_weights_of_a_sparse_matrix_equal_the_dense_formula() -> None:
    from spikeport.quantize import fixed_point as fp

    rng = np.random.default_rng(3)
    for signs in ((-1, 1), (0, 1), (-1, 0)):
        w = np.where(rng.random((40, 30)) < 0.1, rng.uniform(*signs, (40, 30)), 0.0)
        q = fp.quantize_weights(w, 8)
        step, lo, hi = fp.weight_grid(fp.sign_mode(w), 8)
        ideal = np.rint(w / 2.0**q.exp / step) * step
        np.testing.assert_array_equal(q.mant, np.clip(ideal, lo, hi).astype(np.int64))
        assert q.sign_mode == fp.sign_mode(w)


def _energy_report(files: dict[str, Path]) -> object:
    from spikeport.emulator.engines.dispatch import run
    from spikeport.report.energy import report_from_run

    net = load_network(files["net"])
    x = np.load(files["x"])
    return report_from_run(net, x, run(net, x, record=("spikes", "v", "u")))


def test_energy_headline_is_one_ratio_against_one_dense_pass(files: dict[str, Path], tmp_path: Path) -> None:
    from spikeport.report.energy import format_text, plot_png, to_json

    rep = _energy_report(files)
    j = to_json(rep)  # type: ignore[arg-type]
    h = j["headline"]
    snn = next(p for p in j["profiles"] if p["profile"] == h["snn_profile"])
    assert (
        h["snn_profile"] == "sanafe-loihi1" and h["ann_single_pass_pj"] == j["ann_baseline"]["single_pass_pj"]
    )
    assert h["snn_over_ann"] == pytest.approx(snn["energy_pj"]["total"] / h["ann_single_pass_pj"])
    assert ("more" if h["snn_over_ann"] >= 1 else "less") in h["text"]
    assert f"headline: {h['text']}" in format_text(rep)  # type: ignore[arg-type]
    out = plot_png(rep, tmp_path / "e.png")  # type: ignore[arg-type]
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_energy_bars_use_a_log_scale(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import matplotlib.axes
    from spikeport.report.energy import plot_png

    scales: list[str] = []
    original = matplotlib.axes.Axes.set_yscale
    monkeypatch.setattr(
        matplotlib.axes.Axes, "set_yscale", lambda ax, v, **k: (scales.append(v), original(ax, v, **k))
    )
    plot_png(_energy_report(files), tmp_path / "e.png")  # type: ignore[arg-type]
    assert scales == ["log"]


def test_membrane_plot_has_a_float_minus_fixed_panel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from spikeport.report import plots

    a = np.linspace(0, 1, 20)[:, None] * np.ones((1, 3))
    seen: list[np.ndarray] = []
    original = plots._difference_panel
    monkeypatch.setattr(
        plots,
        "_difference_panel",
        lambda ax, tr, j, pair: (
            seen.append(tr[pair[0]][:, j] - tr[pair[1]][:, j]),
            original(ax, tr, j, pair),
        ),
    )
    plots.traces_png(
        tmp_path / "m.png", {"float": a, "fixed": a - 0.01}, neurons=[0, 2], difference=("float", "fixed")
    )
    assert len(seen) == 2 and np.allclose(seen[0], 0.01)
    assert (tmp_path / "m.png").read_bytes()[:4] == b"\x89PNG"


def test_report_page_shows_warnings_caveats_and_the_ratio(files: dict[str, Path], tmp_path: Path) -> None:
    from spikeport.report.energy import to_json
    from spikeport.report.html import write_html

    energy = {"fixed": to_json(_energy_report(files))}  # type: ignore[arg-type]
    summary = {
        "accuracy": {"float": 0.9},
        "config": {"steps": 5, "seed": 0},
        "semantics": {"convention": "nir", "dt": 1e-3, "reset": "zero", "reset_timing": "same_step"},
        "spike_agreement_vs_float": {},
        "energy": {m: {**e, "per_profile_nj": {}} for m, e in energy.items()},
        "quantization_warnings": {"fixed": ["h1.du: decay rounds to no leak"]},
        "test_samples": 2,
        "files": [],
    }
    page = write_html(tmp_path, summary).read_text()
    assert "h1.du: decay rounds to no leak" in page
    assert "pre-silicon" in page  # the Loihi 1 profile's caveat
    assert energy["fixed"]["headline"]["text"].split(" (")[0] in page
    assert stat.S_IMODE((tmp_path / "index.html").stat().st_mode) == 0o666 & ~_umask()


def _umask() -> int:
    from spikeport.emulator.atomic import current_umask

    return current_umask()


def _report_then_hang() -> None:
    import sys

    print(
        "Traceback (most recent call last):\n  File 'lif.py'\nValueError: bad vth in a process",
        file=sys.stderr,
    )
    sys.stderr.flush()
    time.sleep(600)


def _warn_and_return() -> int:
    import sys

    print("a note from Lava", file=sys.stderr, flush=True)
    return 7


def test_what_lava_printed_is_one_line_of_the_error_or_passed_on(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(LavaRunError, match=r"; Lava said: ValueError: bad vth in a process$"):
        run_isolated(_report_then_hang, timeout=1.0)
    assert "Traceback" not in capfd.readouterr().err
    assert run_isolated(_warn_and_return) == 7
    assert "a note from Lava" in capfd.readouterr().err
