"""The `spikeport` command line: version, doctor, errors as one line with exit code 2."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest
from spikeport.deploy import cli
from spikeport.emulator.errors import ValidationError


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("spikeport 0.")


def test_python_dash_m_entry_point() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "spikeport.deploy", "--version"], capture_output=True, text=True, timeout=60
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
