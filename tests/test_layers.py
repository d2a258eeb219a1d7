"""Imports only go down: emulator <- quantize <- deploy (DESIGN.md). Checked on the source, statically."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"emulator": 1, "quantize": 2, "deploy": 3}
#: third-party packages a layer may not import (the emulator knows nothing of NIR, torch or Lava)
FORBIDDEN = {
    "emulator": {"torch", "nir", "nirtorch", "lava", "snntorch", "norse"},
    "quantize": {"lava"},
    "deploy": set(),
}


def _imports(path: Path, layer: str, root: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    pkg_parts = ["spikeport", layer, *path.relative_to(root / layer).parts[:-1]]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg_parts[: len(pkg_parts) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append(mod)
            out += [f"{mod}.{a.name}" for a in node.names]
    return out


def violations(layer: str, root: Path = ROOT) -> list[str]:
    bad = []
    for path in sorted((root / layer).rglob("*.py")):
        for mod in _imports(path, layer, root):
            parts = mod.split(".")
            if parts[0] == "spikeport" and len(parts) > 1 and parts[1] in LAYERS:
                if LAYERS[parts[1]] > LAYERS[layer]:
                    bad.append(f"{path.relative_to(root)} imports {mod}")
            elif parts[0] in FORBIDDEN[layer]:
                bad.append(f"{path.relative_to(root)} imports {mod}")
    return sorted(set(bad))


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_layer_imports_only_go_down(layer: str) -> None:
    assert violations(layer) == []


def test_checker_catches_upward_and_forbidden_imports(tmp_path: Path) -> None:
    (tmp_path / "emulator" / "sub").mkdir(parents=True)
    (tmp_path / "emulator" / "sub" / "bad.py").write_text("from ...deploy import cli\nimport torch\n")
    (tmp_path / "quantize").mkdir()
    (tmp_path / "quantize" / "bad.py").write_text("from spikeport.deploy.cli import main\n")
    assert violations("emulator", tmp_path) == [
        "emulator/sub/bad.py imports spikeport.deploy",
        "emulator/sub/bad.py imports spikeport.deploy.cli",
        "emulator/sub/bad.py imports torch",
    ]
    assert violations("quantize", tmp_path)[0] == "quantize/bad.py imports spikeport.deploy.cli"
