"""The `spikeport` command line: version, doctor, errors as one line with exit code 2."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
from spikeport.cli import main as cli
from spikeport.emulator.errors import ValidationError


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("spikeport 0.")


def test_python_dash_m_entry_point() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "spikeport", "--version"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("spikeport ")


def test_doctor_json_without_lava(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["doctor", "--json", "--no-lava"]) == 0
    rep = json.loads(capsys.readouterr().out)
    for key in ("python", "numpy", "torch", "nir", "lava-nc"):
        assert key in rep["versions"]
    assert rep["versions"]["numpy"].startswith("1.26")


@pytest.mark.lava
def test_doctor_runs_lava(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "fixed_pt" in out and "bit-exact" in out


def test_unknown_command_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["no-such-command"])
    assert exc.value.code == 2


def test_user_error_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    def configure(p: argparse.ArgumentParser) -> None:
        p.add_argument("--x", type=int, default=5000)

    def failing(args: argparse.Namespace) -> int:
        raise ValidationError(f"LIFGroup('h').du: must be in [0, 4095] (got {args.x})")

    cli.command("fail-for-test", help="test", configure=configure)(failing)
    try:
        assert cli.main(["fail-for-test"]) == 2
        err = capsys.readouterr().err
        assert err == "spikeport fail-for-test: error: LIFGroup('h').du: must be in [0, 4095] (got 5000)\n"
        with pytest.raises(ValidationError):
            cli.main(["--debug", "fail-for-test"])
    finally:
        del cli._REGISTRY["fail-for-test"]


def test_os_errors_on_user_files_are_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def configure(p: argparse.ArgumentParser) -> None:
        pass

    def writes_nowhere(args: argparse.Namespace) -> int:
        with open("/nonexistent-folder/out.txt", "w"):
            return 0

    cli.command("write-for-test", help="test", configure=configure)(writes_nowhere)
    try:
        assert cli.main(["write-for-test"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("spikeport write-for-test: error: [Errno 2] No such file or directory")
        assert err.count("\n") == 1
    finally:
        del cli._REGISTRY["write-for-test"]


def test_save_npz_refuses_a_missing_folder_and_leaves_no_partial_file(tmp_path: Path) -> None:
    import numpy as np
    from spikeport.emulator.result import RunResult

    res = RunResult(outputs={"g/spikes": np.ones((1, 3, 2), np.int8)}, metadata={"backend": "x"})
    with pytest.raises(ValidationError, match=r"RunResult\.save_npz\.path: the folder must exist"):
        res.save_npz(tmp_path / "missing" / "o.npz")
    res.save_npz(tmp_path / "o.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.npz"]
    with np.load(tmp_path / "o.npz") as z:
        np.testing.assert_array_equal(z["g/spikes"], np.ones((1, 3, 2)))
        assert json.loads(str(z["__metadata__"])) == {"backend": "x"}
