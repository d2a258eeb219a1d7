"""Imports only go down: emulator <- quantize <- the root package in deploy/ (docs/architecture.md).

Checked on the source, statically. ``spikeport.emulator`` lives in emulator/, ``spikeport.quantize`` in quantize/,
and every other ``spikeport.*`` module (the front door, NIR, Lava, reports, CLI) in deploy/.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"emulator": 1, "quantize": 2, "deploy": 3}
#: the import path of each layer's folder
PACKAGE = {
    "emulator": ["spikeport", "emulator"],
    "quantize": ["spikeport", "quantize"],
    "deploy": ["spikeport"],
}


def _layer_of(mod: str) -> int | None:
    """The layer a ``spikeport`` module belongs to (None for third-party modules)."""
    parts = mod.split(".")
    if parts[0] != "spikeport":
        return None
    if len(parts) > 1 and parts[1] in ("emulator", "quantize"):
        return LAYERS[parts[1]]
    return LAYERS["deploy"]


#: third-party packages a layer may not import (the emulator knows nothing of NIR, torch or Lava)
FORBIDDEN = {
    "emulator": {"torch", "nir", "nirtorch", "lava", "snntorch", "norse"},
    "quantize": {"lava"},
    "deploy": set(),
}
#: the one exception, file -> the forbidden packages it may import. The torch engine (``engine="torch"``) is the
#: dense engine's integer arithmetic on torch tensors, bit-exact with it and built from the emulator's own
#: internals (rings, synapse plans, group models): it belongs beside ``dense.py``, and moving it up a layer would
#: leave ``emulator.engines.dispatch`` naming a module above its own. It stays out of ``import spikeport.emulator``
#: because nothing imports it: dispatch loads it by name on first use (``LAZY_ENGINES``), which
#: :func:`test_exempt_modules_are_only_loaded_lazily` and ``tests/test_torch_engine.py`` check.
ALLOWED = {"emulator/engines/torch_engine.py": {"torch"}}


def _imports(path: Path, layer: str, root: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    pkg_parts = [*PACKAGE[layer], *path.relative_to(root / layer).parts[:-1]]
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
        allowed = ALLOWED.get(path.relative_to(root).as_posix(), set())
        for mod in _imports(path, layer, root):
            target = _layer_of(mod)
            if target is not None:
                if target > LAYERS[layer]:
                    bad.append(f"{path.relative_to(root)} imports {mod}")
            elif mod.split(".")[0] in FORBIDDEN[layer] - allowed:
                bad.append(f"{path.relative_to(root)} imports {mod}")
    return sorted(set(bad))


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_layer_imports_only_go_down(layer: str) -> None:
    assert violations(layer) == []


def test_checker_catches_upward_and_forbidden_imports(tmp_path: Path) -> None:
    (tmp_path / "emulator" / "sub").mkdir(parents=True)
    (tmp_path / "emulator" / "sub" / "bad.py").write_text("from ...cli import main\nimport torch\n")
    (tmp_path / "quantize").mkdir()
    (tmp_path / "quantize" / "bad.py").write_text("from spikeport.cli.main import main\n")
    assert violations("emulator", tmp_path) == [
        "emulator/sub/bad.py imports spikeport.cli",
        "emulator/sub/bad.py imports spikeport.cli.main",
        "emulator/sub/bad.py imports torch",
    ]
    assert violations("quantize", tmp_path)[0] == "quantize/bad.py imports spikeport.cli.main"


def _module_name(rel: str) -> str:
    layer, *rest = Path(rel).with_suffix("").parts
    return ".".join([*PACKAGE[layer], *(p for p in rest if p != "__init__")])


@pytest.mark.parametrize("rel", sorted(ALLOWED))
def test_exempt_modules_are_only_loaded_lazily(rel: str) -> None:
    """No module of the layer imports an exempt module (its heavy imports would leak into the layer's)."""
    name = _module_name(rel)
    layer = Path(rel).parts[0]
    importers = [
        f"{path.relative_to(ROOT)} imports {mod}"
        for path in sorted((ROOT / layer).rglob("*.py"))
        for mod in _imports(path, layer, ROOT)
        if mod == name or mod.startswith(name + ".")
    ]
    assert importers == []


def test_exemption_covers_only_the_named_file(tmp_path: Path) -> None:
    (tmp_path / "emulator" / "engines").mkdir(parents=True)
    (tmp_path / "emulator" / "engines" / "torch_engine.py").write_text("import torch\n")
    (tmp_path / "emulator" / "engines" / "other.py").write_text("import torch\nimport nir\n")
    assert violations("emulator", tmp_path) == [
        "emulator/engines/other.py imports nir",
        "emulator/engines/other.py imports torch",
    ]
