"""House rules that span modules: imports go one way (no cycles), the CLI starts light, report files are
plain JSON objects."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import nir
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
#: import package -> the folder holding it (pyproject's package-dir)
PACKAGE_DIRS = {"spikeport": ROOT / "deploy", "spikeport.emulator": ROOT / "emulator", "spikeport.quantize": ROOT / "quantize"}  # fmt: skip
HEAVY = ("numpy", "nir", "torch", "numba", "h5py", "scipy", "lava", "matplotlib", "sklearn")


def spikeport_modules() -> dict[str, Path]:
    """Every spikeport module name -> its file."""
    out = {}
    for pkg, folder in PACKAGE_DIRS.items():
        for path in folder.rglob("*.py"):
            parts = [p for p in path.relative_to(folder).with_suffix("").parts if p != "__init__"]
            out[".".join([pkg, *parts])] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def imported_names(tree: ast.Module, *, in_functions: bool) -> list[str]:
    """Names imported when the module runs (never ``if TYPE_CHECKING:``); function bodies on request.

    ``from a.b import c`` yields ``a.b.c`` and ``a.b`` (``c`` may be a module or an attribute)."""
    names: list[str] = []

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and _is_type_checking(node):
                visit(node.orelse)
                continue
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not in_functions:
                continue
            if isinstance(node, ast.Import):
                names.extend(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.extend([node.module, *(f"{node.module}.{a.name}" for a in node.names)])
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    visit([child])
                elif isinstance(child, ast.ExceptHandler):
                    visit(child.body)

    visit(tree.body)
    return names


def import_graph(*, in_functions: bool) -> dict[str, set[str]]:
    """spikeport module -> the spikeport modules it imports."""
    mods = spikeport_modules()
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        graph[name] = {m for m in imported_names(tree, in_functions=in_functions) if m in mods and m != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle (``[a, b, ..., a]``) of a directed graph, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := dfs(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := dfs(start)):
            return found
    return None


def test_find_cycle_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_imported_names_skip_type_checking_and_functions() -> None:
    src = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import x\nimport y\ndef f():\n    import z\n"
    tree = ast.parse(src)
    assert "x" not in imported_names(tree, in_functions=True)
    assert imported_names(tree, in_functions=False) == ["typing", "typing.TYPE_CHECKING", "y"]
    assert "z" in imported_names(tree, in_functions=True)


def test_module_level_imports_have_no_cycle() -> None:
    graph = import_graph(in_functions=False)
    assert len(graph) > 50 and "spikeport.demo.pipeline" in graph
    assert find_cycle(graph) is None


def test_imports_have_no_cycle_even_inside_functions() -> None:
    """Deferred imports too: a cycle hidden in a function body is still a cycle (e.g. demo's stages)."""
    graph = import_graph(in_functions=True)
    assert "spikeport.demo.runs" in graph["spikeport.demo.pipeline"]
    assert find_cycle(graph) is None


def test_layers_import_only_downwards() -> None:
    """emulator <- quantize <- the root package: no module imports a layer above its own."""
    graph = import_graph(in_functions=True)
    layer = {"spikeport.emulator": 0, "spikeport.quantize": 1}

    def rank(mod: str) -> int:
        return next((r for pkg, r in layer.items() if mod == pkg or mod.startswith(pkg + ".")), 2)

    upward = [(m, d) for m, deps in graph.items() for d in deps if rank(d) > rank(m)]
    assert upward == []


def test_cli_parser_imports_nothing_heavy() -> None:
    """Building the parser (what ``spikeport --help`` does) loads argparse and spikeport only."""
    code = (
        "import sys\nfrom spikeport.cli.main import build_parser\nbuild_parser().format_help()\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_quantization_report_loads_without_nir() -> None:
    """A QuantReport (and its warnings) can be read where only numpy is at hand: no nir, h5py or torch."""
    code = (
        "import sys\nimport spikeport.quantize.report\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules and m != 'numpy'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_help_runs_and_lists_every_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "spikeport", "--help"], capture_output=True, text=True, check=True
    )
    for name in ("compare", "demo", "doctor", "energy", "inspect", "quantize", "run"):
        assert name in out.stdout


def _tiny_graph() -> nir.NIRGraph:
    n_in, n = 5, 3
    w = np.random.default_rng(0).normal(0, 1, (n, n_in))
    nodes = {
        "input": nir.Input(input_type={"input": np.array([n_in])}),
        "fc": nir.Affine(weight=w, bias=np.zeros(n)),
        "h": nir.LIF(tau=np.full(n, 5e-3), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n)),
        "output": nir.Output(output_type={"output": np.array([n])}),
    }
    return nir.NIRGraph(nodes=nodes, edges=[("input", "fc"), ("fc", "h"), ("h", "output")], type_check=False)


def test_demo_quantization_report_file_is_one_json_object(tmp_path: Path) -> None:
    from spikeport.demo.pipeline import quantize_both
    from spikeport.quantize.semantics import semantics

    calib = (np.random.default_rng(1).random((2, 10, 5)) < 0.4).astype(np.float32)
    times: dict[str, float] = {}
    nets, reports = quantize_both(_tiny_graph(), semantics("nir"), calib, tmp_path, times)
    assert sorted(nets) == ["fixed", "shift"]
    for mode in ("fixed", "shift"):
        loaded = json.loads((tmp_path / f"quantization_{mode}.json").read_text())
        assert isinstance(loaded, dict)
        assert loaded == reports[mode].to_dict()
        assert loaded["mode"] == mode
        assert (tmp_path / f"net_{mode}.h5").is_file()
    assert set(times) == {"quantize_fixed", "quantize_shift"}


@pytest.mark.parametrize("module", ["spikeport.quantize.report", "spikeport.quantize"])
def test_quant_warning_still_importable_from_the_report(module: str) -> None:
    import importlib

    from spikeport.quantize.quant_warnings import WARNING_CODES, QuantWarning

    mod = importlib.import_module(module)
    assert mod.QuantWarning is QuantWarning
    assert mod.WARNING_CODES is WARNING_CODES


def _private_imports(path: Path) -> list[str]:
    """``from spikeport.x import _name`` statements in ``path`` (another module's private names)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("spikeport"):
            out += [
                f"{path.relative_to(ROOT)}: {node.module}.{a.name}"
                for a in node.names
                if a.name.startswith("_") and not a.name.startswith("__")
            ]
    return out


def test_no_module_imports_another_modules_private_names() -> None:
    bad = [
        hit
        for top in ("emulator", "quantize", "deploy")
        for p in (ROOT / top).rglob("*.py")
        for hit in _private_imports(p)
    ]
    assert bad == []


def test_private_import_check_catches_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    bad = tmp_path / "m.py"
    bad.write_text("from spikeport.quantize.build_network import _secret, public\n")
    assert _private_imports(bad) == ["m.py: spikeport.quantize.build_network._secret"]
