"""Packaging of the fixed layout: every package folder is listed, and the wheel holds all three."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP_DIRS = {".venv", ".git", "build", "dist", ".typecheck", "tests", "examples", "benchmarks"}


def _pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def _package_name(folder: Path, package_dir: dict[str, str]) -> str | None:
    rel = folder.relative_to(ROOT).as_posix()
    for pkg, src in sorted(package_dir.items(), key=lambda kv: -len(kv[1])):
        if rel == src or rel.startswith(src + "/"):
            return pkg + rel[len(src) :].replace("/", ".")
    return None


def test_every_folder_with_init_is_listed_in_packages() -> None:
    cfg = _pyproject()["tool"]["setuptools"]
    listed = set(cfg["packages"])
    found = set()
    for init in ROOT.rglob("__init__.py"):
        if SKIP_DIRS & set(init.relative_to(ROOT).parts):
            continue
        name = _package_name(init.parent, cfg["package-dir"])
        assert name is not None, f"{init.parent} has __init__.py but no package-dir mapping"
        found.add(name)
    assert found == listed, f"missing from packages: {found - listed}; listed but absent: {listed - found}"


def test_no_repository_root_init_and_no_tests_init() -> None:
    assert not (ROOT / "__init__.py").exists()
    assert not (ROOT / "tests" / "__init__.py").exists()


@pytest.mark.slow
def test_wheel_contains_all_subpackages(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("spikeport-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for sub in (
        "emulator",
        "emulator/engines",
        "emulator/energy",
        "quantize",
        "quantize/graph",
        "cli",
        "lava",
        "nir",
    ):
        assert f"spikeport/{sub}/__init__.py" in names, sub
    assert "spikeport/__init__.py" in names  # the front door, from deploy/
    assert "spikeport/emulator/energy/profiles/loihi1.toml" in names
    assert any(n.startswith("spikeport/cli/main.py") for n in names)
    entry = [n for n in names if n.endswith("entry_points.txt")]
    assert entry and "spikeport = spikeport.cli.main:entry" in zipfile.ZipFile(wheel).read(entry[0]).decode()
