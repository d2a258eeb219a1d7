"""``spikeport quantize`` and ``spikeport compare`` end to end, on exported snnTorch and Norse models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from spikeport.cli.main import main
from spikeport.emulator.io import load_network
from spikeport.nir.io import write_nir
from spikeport.report.compare import compare, group_metrics
from torch import nn


def _snntorch_model():
    import snntorch as snt

    torch.manual_seed(0)
    layers = [
        nn.Linear(20, 24),
        snt.Leaky(beta=0.9, init_hidden=True),
        nn.Linear(24, 5),
        snt.Leaky(beta=0.8, init_hidden=True),
    ]
    with torch.no_grad():
        layers[2].weight.mul_(3)
    from spikeport.nir.frameworks import snntorch_to_nir

    return snntorch_to_nir(layers, (20,))


def _norse_model():
    import norse.torch as norse

    torch.manual_seed(1)
    layers = [nn.Linear(20, 24), norse.LIFCell(), nn.Linear(24, 5), norse.LIFCell()]
    with torch.no_grad():
        layers[0].weight.mul_(8)
        layers[2].weight.mul_(8)
    from spikeport.nir.frameworks import norse_to_nir

    return norse_to_nir(layers, (20,))


X = (np.random.default_rng(0).random((6, 40, 20)) < 0.3).astype(np.float32)


@pytest.mark.parametrize("make", [_snntorch_model, _norse_model], ids=["snntorch", "norse"])
def test_quantize_and_compare_cli(make, tmp_path, capsys):
    graph, sem = make()
    model, net_path, rep_path, x_path = (tmp_path / f for f in ("m.nir", "net.h5", "rep.json", "x.npy"))
    write_nir(model, graph, sem)
    np.save(x_path, X)
    assert (
        main(
            ["quantize", str(model), "-o", str(net_path), "--calibrate", str(x_path), "--json", str(rep_path)]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "quantized (fixed, 8-bit weights" in out and "wrote" in out
    rep = json.loads(rep_path.read_text())
    assert rep["semantics"]["convention"] == sem.convention
    net = load_network(net_path)
    assert net.is_integer and net.metadata["semantics"] == sem.to_dict()
    assert main(["compare", str(model), str(net_path), "--input", str(x_path), "--json"]) == 0
    cmp = json.loads(capsys.readouterr().out)
    groups = cmp["backends"]["fixed"]["groups"]
    assert set(groups) == {"1", "3"}
    for g in groups.values():
        assert g["spikes_float"] > 0
        assert g["spike_agreement"] >= 0.9
        assert g["count_correlation"] > 0.95
    assert cmp["backends"]["fixed"]["outputs"]["output"]["argmax_agreement"] >= 0.5


def test_compare_against_itself_is_perfect():
    # the float twin replays the float run: a compare of identical spike arrays must read 100%
    a = (np.random.default_rng(1).random((2, 10, 3)) < 0.5).astype(int)
    m = group_metrics(a, a)
    assert (
        m["spike_agreement"] == 1.0 and m["first_divergence_step"] is None and m["count_correlation"] == 1.0
    )
    b = a.copy()
    b[1, 4, 2] ^= 1
    b[0, 7, 0] ^= 1
    m = group_metrics(a, b)
    assert m["first_divergence_step"] == 4
    assert m["spike_agreement"] == pytest.approx(1 - 2 / a.size)


def test_compare_aligns_by_lag():
    # a quantized network run on the float twin's integers would be off by one step per layer without
    # the lag: shifting the emulator output by one step must break the agreement
    graph, sem = _norse_model()
    from spikeport.quantize import quantize

    net, _ = quantize(graph, sem, calibration=X)
    rep = compare(graph, net, X)
    good = rep["backends"]["fixed"]["groups"]["3"]["spike_agreement"]
    meta = dict(net.metadata)
    meta["groups"] = {k: {**v, "lag": v["lag"] + 1} for k, v in meta["groups"].items()}
    shifted = type(net)(inputs=net.inputs, groups=net.groups, connections=net.connections, metadata=meta)
    bad = compare(graph, shifted, X)["backends"]["fixed"]["groups"]["3"]["spike_agreement"]
    assert good > bad + 0.03


def test_compare_refuses_network_without_metadata(tmp_path):
    from spikeport.emulator.errors import ValidationError
    from spikeport.emulator.network import InputGroup, Network

    graph, _sem = _norse_model()
    bare = Network(inputs=(InputGroup(name="input", n=20),), groups=(), connections=())
    with pytest.raises(ValidationError, match="no quantizer metadata"):
        compare(graph, bare, X)


def test_quantize_cli_shift_mode_json_to_stdout(tmp_path, capsys):
    import nir

    n = 6
    rng = np.random.default_rng(2)
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([n])}),
            "fc": nir.Affine(weight=rng.normal(0, 1, (n, n)), bias=np.zeros(n)),
            "h": nir.LIF(tau=np.full(n, 5e-3), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n)),
            "output": nir.Output(output_type={"output": np.array([n])}),
        },
        edges=[("input", "fc"), ("fc", "h"), ("h", "output")],
        type_check=False,
    )
    write_nir(tmp_path / "m.nir", graph, None)
    args = [
        "quantize",
        str(tmp_path / "m.nir"),
        "-o",
        str(tmp_path / "n.h5"),
        "--mode",
        "shift",
        "--json",
        "-",
    ]
    assert main([*args, "--semantics", "lava", "--dt", "1e-3"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["mode"] == "shift" and rep["connections"][0]["shift"] is True
    assert rep["semantics"]["convention"] == "lava" and rep["semantics"]["dt"] == 1e-3
    net = load_network(tmp_path / "n.h5")
    w = np.abs(net.connections[0].weights[net.connections[0].weights != 0]).astype(np.int64)
    assert np.all(w & (w - 1) == 0)
