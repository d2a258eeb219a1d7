"""The runnable examples: each one runs as a subprocess (its fastest settings) and says something real.

Every example takes ``--out``; the tests point it at ``tmp_path`` and check that the files appear there.
Example 04 needs MNIST: without it (a path that does not exist) it must say so and exit with code 1;
with the data (``../shared/data/mnist`` next to the repository) it does a tiny run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
MNIST = ROOT.parent / "shared" / "data" / "mnist"

pytestmark = pytest.mark.slow


def _run(
    name: str, *args: str, out: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(EXAMPLES / name), *args]
    if out is not None:
        cmd += ["--out", str(out)]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)


def _ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc.stdout


def test_every_example_has_a_docstring_and_an_out_flag() -> None:
    scripts = sorted(EXAMPLES.glob("[0-9][0-9]_*.py"))
    assert len(scripts) >= 5
    for path in scripts:
        text = path.read_text()
        assert text.startswith('"""'), path.name
        assert '"--out"' in text, path.name


def test_01_snntorch_export_equals_snntorch(tmp_path: Path) -> None:
    out = _ok(_run("01_snntorch_export.py", "--steps", "15", "--batch", "4", out=tmp_path))
    assert "0 mismatches" in out and "FAILED" not in out
    assert "'convention': 'snntorch'" in out
    layers = re.findall(r"layer (\d+): snnTorch (\d+) spikes, NIR run (\d+) spikes, 0 mismatches", out)
    assert [layer for layer, _, _ in layers] == ["1", "3"]
    assert all(int(a) == int(b) > 0 for _, a, b in layers)  # both layers fire: the check means something
    assert (tmp_path / "snntorch_model.nir").stat().st_size > 0


def test_02_quantize_and_compare(tmp_path: Path) -> None:
    out = _ok(_run("02_quantize_and_compare.py", "--steps", "10", "--batch", "4", out=tmp_path))
    for mode in ("fixed", "shift"):
        assert f"quantized ({mode}, 8-bit weights" in out
        assert (tmp_path / f"net_{mode}.h5").is_file() and (tmp_path / f"quantization_{mode}.json").is_file()
    agreements = [float(a) for a in re.findall(r"spike agreement ([\d.]+)%", out)]
    assert len(agreements) == 4 and all(50.0 < a <= 100.0 for a in agreements)
    for mode in ("fixed", "shift"):  # one JSON object per report, not a JSON string inside JSON
        rep = json.loads((tmp_path / f"quantization_{mode}.json").read_text())
        assert isinstance(rep, dict), type(rep)
        assert set(rep) == {
            "mode",
            "weight_bits",
            "target",
            "semantics",
            "groups",
            "connections",
            "warnings",
            "choices",
        }
        assert (
            rep["mode"] == mode and rep["weight_bits"] == 8 and rep["semantics"]["convention"] == "snntorch"
        )
        assert [g["name"] for g in rep["groups"]] == ["1", "3"]


def test_03_energy_report(tmp_path: Path) -> None:
    out = _ok(_run("03_energy_report.py", "--steps", "10", "--batch", "4", out=tmp_path))
    assert "energy report (emulator)" in out
    for profile in ("loihi1", "truenorth", "ann-fp32"):
        assert re.search(rf"^{profile}\s+\S+ [pnu]?J", out, re.M), profile
    synops = float(re.search(r"totals: synops ([\d.]+)", out).group(1))  # type: ignore[union-attr]
    assert synops > 0
    energy = json.loads((tmp_path / "energy.json").read_text())
    assert isinstance(energy, dict) and "loihi1" in json.dumps(energy)
    png = (tmp_path / "energy.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("via", ["flag", "env"])
def test_04_mnist_without_data_says_so(tmp_path: Path, via: str) -> None:
    missing = tmp_path / "no-mnist-here"
    env = {**os.environ, "SPIKEPORT_MNIST": str(missing)} if via == "env" else None
    args = ("--data", str(missing)) if via == "flag" else ()
    proc = _run("04_mnist_quantize.py", *args, out=tmp_path / "out", env=env)
    assert proc.returncode == 1
    assert "MNIST not found" in proc.stderr and str(missing) in proc.stderr and "--data" in proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not (MNIST / "t10k-labels-idx1-ubyte.gz").is_file(), reason=f"no MNIST in {MNIST}")
def test_04_mnist_tiny_run(tmp_path: Path) -> None:
    args = ("--train", "300", "--test", "100", "--steps", "4", "--hidden", "32")
    out = _ok(_run("04_mnist_quantize.py", *args, out=tmp_path))
    m = re.search(r"MNIST test split \(100 images, 4 steps\): float ([\d.]+)%\s+8-bit fixed ([\d.]+)%", out)
    assert m is not None, out
    assert (tmp_path / "mnist_fixed.h5").is_file() and (tmp_path / "accuracy.json").is_file()


@pytest.mark.lava
def test_05_lava_bit_exact(tmp_path: Path) -> None:
    out = _ok(_run("05_lava_deploy.py", "--samples", "2", "--steps", "10", out=tmp_path))
    assert "bit-exact: Lava fixed_pt equals the emulator on all 6 recorded variables" in out
    assert "DIFFERENT" not in out and out.count(": equal") == 6
    assert re.search(r"^lava\s*:\s+[\d.]+ sample-steps/s", out, re.M)
    spikes = [int(s) for s in re.findall(r"/spikes\s+shape \S+ \S+ \S+, (\d+) spikes", out)]
    assert len(spikes) == 2 and min(spikes) > 0


def test_06_event_driven(tmp_path: Path) -> None:
    args = ("--neurons", "5000", "--steps", "50", "--spikes", "2000", "--sp-neurons", "2000")
    out = _ok(_run("06_event_driven.py", *args, out=tmp_path))
    assert "outputs and final state equal (bit-exact)" in out
    assert "heap vs naive: same spike sequence" in out
    assert (tmp_path / "event_driven.json").is_file()
