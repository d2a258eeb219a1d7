"""The front door, ``import spikeport as sp``: lazy, explicit, and the whole pipeline through it.

The pipeline test writes a tiny two-layer LIF model to a NIR file and takes it through ``sp`` alone:
read -> quantize -> run (emulator; Lava in the ``lava`` test) -> run_nir -> compare -> energy. The
oracles are independent of the code under test: Lava for the emulator, and numpy counts of spikes
times nonzero fan-out for the SynOps.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import spikeport as sp

HEAVY = ("torch", "nir", "nirtorch", "numba", "lava", "h5py", "scipy", "snntorch", "norse")


def _python(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


# ---- (a) lazy imports ---------------------------------------------------------------------------------
def test_import_spikeport_loads_no_heavy_dependency() -> None:
    code = "import json, sys; import spikeport as sp; sp.__all__; dir(sp); print(json.dumps(sorted(sys.modules)))"
    loaded = set(json.loads(_python(code)))
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert heavy == []
    assert "spikeport" in loaded  # the check saw the import it was meant to see


# ---- (b) every public name ----------------------------------------------------------------------------
def test_every_public_name_resolves_to_its_module_attribute() -> None:
    assert len(sp.__all__) == len(set(sp.__all__)) >= 10
    for name in sp.__all__:
        module, attr = sp._LAZY[name].split(":")
        want = getattr(importlib.import_module(module), attr)
        got = getattr(sp, name)
        if name == "quantize" and got is not want:  # the callable subpackage may hold the name
            assert got is sys.modules["spikeport.quantize"] and callable(got), got
        else:
            assert got is want, name


def test_the_issue_s_verbs_are_public_and_listed_by_dir() -> None:
    verbs = {"read_nir", "write_nir", "export", "semantics", "quantize", "encode_inputs", "run"}
    verbs |= {"run_nir", "compare", "energy", "format_comparison", "format_energy"}
    assert verbs <= set(sp.__all__)
    assert set(sp.__all__) <= set(dir(sp))


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="module 'spikeport' has no attribute 'no_such_thing'"):
        sp.no_such_thing  # noqa: B018
    assert not hasattr(sp, "engine")


# ---- (c) the pipeline through sp ----------------------------------------------------------------------
def _tiny_nir(path: Path) -> None:
    """A 12 -> 8 -> 4 LIF model (NIR semantics, seeded, weights scaled so both layers fire) in ``path``."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = sp.SNN(
        nn.Linear(12, 8), sp.LIF(8, beta=0.9), nn.Linear(8, 4), sp.LIF(4, beta=0.9), semantics="nir"
    )
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2:
                p.mul_(4.0)
    graph, sem = sp.export(model, (12,))
    sp.write_nir(path, graph, sem)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("api") / "tiny.nir"
    _tiny_nir(path)
    graph, sem = sp.read_nir(path)
    assert sem is not None  # spikeport writes its semantics into the file
    x = (np.random.default_rng(0).random((3, 15, 12)) < 0.3).astype(np.float32)
    net, report = sp.quantize(graph, sem, calibration=x, target="lava")
    lag = max(int(g["lag"]) for g in net.metadata["groups"].values())
    xi = sp.encode_inputs(net, x, pad=lag)
    emu = sp.run(net, xi, record=("spikes", "u", "v"))
    return {"graph": graph, "sem": sem, "x": x, "net": net, "report": report, "xi": xi, "emu": emu}


def test_read_gives_back_the_semantics_written(pipeline: dict[str, Any]) -> None:
    sem = pipeline["sem"]
    assert sem == sp.semantics("nir")
    assert {"input", "0", "1", "2", "3", "output"} == set(pipeline["graph"].nodes)
    assert isinstance(pipeline["report"], sp.QuantReport) and pipeline["report"].mode == "fixed"


def test_emulator_run_has_every_group_firing(pipeline: dict[str, Any]) -> None:
    net, emu, xi = pipeline["net"], pipeline["emu"], pipeline["xi"]
    assert isinstance(emu, sp.RunResult)
    steps = next(iter(xi.values())).shape[1]
    for g in net.groups:
        for var in ("spikes", "u", "v"):
            assert emu[f"{g.name}/{var}"].shape == (3, steps, g.n)
        assert emu[f"{g.name}/spikes"].sum() > 0, g.name


@pytest.mark.lava
def test_lava_equals_the_emulator_bit_for_bit(pipeline: dict[str, Any]) -> None:
    net, xi, emu = pipeline["net"], pipeline["xi"], pipeline["emu"]
    lava = sp.run(net, xi, backend="lava", record=("spikes", "u", "v"))
    assert sorted(lava.outputs) == sorted(emu.outputs)
    for key in emu.outputs:
        np.testing.assert_array_equal(lava[key], emu[key], err_msg=key)
    assert lava.metadata["backend"] == "lava"
    on_lava = sp.energy(net, xi, lava).counts
    on_emu = sp.energy(net, xi, emu).counts
    np.testing.assert_array_equal(on_lava.total("synops"), on_emu.total("synops"))


def test_run_nir_is_the_float_reference(pipeline: dict[str, Any]) -> None:
    ref = sp.run_nir(pipeline["graph"], pipeline["x"], pipeline["sem"])
    assert ref["1/spikes"].shape == (3, 15, 8) and ref["3/spikes"].shape == (3, 15, 4)
    assert ref["1/spikes"].sum() > 0
    assert set(np.unique(ref["1/spikes"])) <= {0.0, 1.0}


def test_compare_reports_every_group_and_prints(pipeline: dict[str, Any]) -> None:
    rep = sp.compare(pipeline["graph"], pipeline["net"], pipeline["x"], pipeline["sem"])
    assert rep["semantics"]["convention"] == "nir" and rep["batch"] == 3 and rep["steps"] == 15
    groups = rep["backends"]["fixed"]["groups"]
    assert set(groups) == {g.name for g in pipeline["net"].groups}
    for g in groups.values():
        assert 0.5 < g["spike_agreement"] <= 1.0
    json.dumps(rep)  # JSON-able as documented
    text = sp.format_comparison(rep)
    assert isinstance(text, str) and "spike agreement" in text


def _synops_oracle(net: Any, xi: dict[str, np.ndarray], emu: Any) -> np.ndarray:
    """Per sample: spikes of each connection's source times that source neuron's nonzero fan-out, with
    Lava's dropped LSB for mixed-sign 8-bit mantissas."""
    spikes = {**xi, **{g.name: emu[f"{g.name}/spikes"] for g in net.groups}}
    total = np.zeros(next(iter(xi.values())).shape[0], np.int64)
    for c in net.connections:
        w = np.asarray(c.weights, np.int64)
        if (w < 0).any() and (w > 0).any():
            w = (w >> 1) << 1
        fan = np.count_nonzero(w, axis=0)
        total += np.einsum("btn,n->b", np.asarray(spikes[c.source], np.int64), fan)
    return total


def test_energy_counts_synops_and_prints_every_profile(pipeline: dict[str, Any]) -> None:
    net, xi, emu = pipeline["net"], pipeline["xi"], pipeline["emu"]
    rep = sp.energy(net, xi)
    assert isinstance(rep, sp.EnergyReport)
    want = _synops_oracle(net, xi, emu)
    assert want.sum() > 0
    np.testing.assert_array_equal(rep.counts.total("synops"), want)
    np.testing.assert_array_equal(sp.energy(net, xi, emu).counts.total("synops"), want)
    text = sp.format_energy(rep)
    for profile in ("loihi1", "truenorth", "ann-fp32"):
        assert profile in text


# ---- (d) errors, framework conventions, the callable quantize -----------------------------------------
def test_an_unknown_backend_is_a_validation_error(pipeline: dict[str, Any]) -> None:
    with pytest.raises(
        sp.ValidationError, match=r"sp\.run\.backend: one of \['emulator', 'lava'\] \(got 'bogus'\)"
    ):
        sp.run(pipeline["net"], pipeline["xi"], backend="bogus")


def test_export_of_snntorch_sequential_carries_snntorch_semantics() -> None:
    snn = pytest.importorskip("snntorch")
    from torch import nn

    seq = nn.Sequential(nn.Linear(4, 5), snn.Leaky(beta=0.9, init_hidden=True), nn.Linear(5, 3))
    graph, sem = sp.export(seq, (4,))
    assert (sem.convention, sem.dt, sem.reset, sem.reset_timing) == (
        "snntorch",
        1e-4,
        "subtract",
        "next_step",
    )
    assert graph.metadata["source"] == "snntorch"
    assert sp.export(seq, (4,), dt=1e-3).semantics.dt == 1e-3
    with pytest.raises(sp.ValidationError, match=r"sp\.export\.semantics: fixed by snntorch"):
        sp.export(seq, (4,), "nir")


def test_export_of_norse_sequential_carries_norse_semantics() -> None:
    norse = pytest.importorskip("norse.torch")
    from torch import nn

    seq = nn.Sequential(nn.Linear(4, 5), norse.LIFCell(), nn.Linear(5, 3), norse.LIFCell())
    graph, sem = sp.export(seq, (4,))
    assert (sem.convention, sem.reset, sem.synaptic_input) == ("norse", "zero", "jump")
    assert graph.metadata["source"] == "norse"
    assert {"0", "1", "2", "3"} <= set(graph.nodes)
    with pytest.raises(
        sp.ValidationError, match=r"sp\.export\.dt: only for snnTorch models \(this is a norse"
    ):
        sp.export(seq, (4,), dt=1e-3)


def test_export_refuses_what_it_cannot_export() -> None:
    from torch import nn

    with pytest.raises(
        sp.ValidationError, match=r"sp\.export\.model: no snnTorch, Norse or spikeport neuron"
    ):
        sp.export(nn.Sequential(nn.Linear(4, 5)), (4,))
    with pytest.raises(sp.ValidationError, match=r"sp\.export\.model: a torch module or a list of layers"):
        sp.export(3, (4,))
    with pytest.raises(sp.ValidationError, match=r"sp\.export\.semantics: required for a list of spikeport"):
        sp.export([nn.Linear(4, 5), sp.LIF(5, beta=0.9)], (4,))
    graph, sem = sp.export([nn.Linear(4, 5), sp.LIF(5, beta=0.9)], (4,), "norse")
    assert sem.convention == "norse" and "1" in graph.nodes


QUANTIZE_ORDER = """
import torch
from torch import nn
{first}
f = sp.quantize
import spikeport.quantize.semantics
model = sp.SNN(nn.Linear(3, 2), sp.LIF(2, beta=0.9), semantics="nir")
graph, sem = sp.export(model, (3,))
before, _ = f(graph, sem)
after, _ = sp.quantize(graph, sem)
assert callable(sp.quantize)
print(type(f).__name__, type(sp.quantize).__name__, [g.name for g in before.groups], [g.name for g in after.groups])
"""


@pytest.mark.parametrize(
    "first",
    ["import spikeport as sp", "import spikeport.quantize.semantics\nimport spikeport as sp"],
    ids=["verb-first", "subpackage-first"],
)
def test_quantize_is_callable_before_and_after_the_subpackage_loads(first: str) -> None:
    out = _python(QUANTIZE_ORDER.format(first=first)).split()
    assert out[2:] == ["['1']", "['1']"], out
    if first == "import spikeport as sp":
        assert out[:2] == ["function", "function"]
    else:
        assert out[:2] == ["_CallablePackage", "_CallablePackage"]
