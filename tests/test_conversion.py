"""ANN -> SNN conversion (Rathi et al. 2020; docs/seed-methods.md): structure, threshold rules, the float
run against the reference run, quantization and the emulator against real Lava, refusals, STDB's
surrogates, the ONNX reader and the CLI.

No verdict here depends on training: the ANNs are random (or set by hand), and accuracy targets live in
``benchmarks/conversion.py``'s JSON. Exact checks use dyadic weights and inputs (sums of multiples of
2**-k are exact in float32 in any order) where the order of a float sum could matter.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import warnings
from pathlib import Path

import nir
import numpy as np
import pytest
import spikeport as sp
import torch
from spikeport.emulator.errors import UnsupportedError, ValidationError
from spikeport.quantize.conversion.convert import (
    constant_current,
    convert,
    convert_module,
    depth,
    encode,
    poisson_spikes,
)
from spikeport.quantize.conversion.layers import ann_stages, fold_batchnorm
from spikeport.quantize.conversion.snn import CONVERSION_KEY, to_nir
from spikeport.quantize.training.stdb import finetune, linear_surrogate, stdb_surrogate
from torch import nn

ROOT = Path(__file__).resolve().parents[1]


def dyadic_(module: nn.Module, seed: int, bits: int = 5) -> nn.Module:
    """Weights and biases in place set to random multiples of ``2**-bits`` in [-0.5, 0.5]."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randint(-(1 << (bits - 1)), 1 << (bits - 1), p.shape, generator=g) / (1 << bits))
    return module


def mlp(seed: int = 0, bias: bool = True) -> nn.Sequential:
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Linear(12, 10, bias=bias), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(10, 8, bias=bias), nn.ReLU(), nn.Linear(8, 4, bias=bias),
    )  # fmt: skip
    return dyadic_(net, seed).eval()


def cnn(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(3 * 3 * 3, 6), nn.ReLU(), nn.Linear(6, 3),
    )  # fmt: skip
    return dyadic_(net, seed).eval()


def inputs(n: int, shape: tuple[int, ...], seed: int = 1) -> np.ndarray:
    """ANN inputs: multiples of 1/16 in [0, 1)."""
    return (np.random.default_rng(seed).integers(0, 16, (n, *shape)) / 16).astype(np.float32)


# ---------------------------------------------------------------- structure


def test_converted_graph_structure_and_semantics() -> None:
    graph, sem = convert(mlp(), inputs(32, (12,)), steps=8)
    kinds = {name: type(node).__name__ for name, node in graph.nodes.items()}
    assert kinds == {
        "input": "Input", "layer0_0": "Affine", "spike0": "IF", "layer1_0": "Affine", "spike1": "IF",
        "layer2_0": "Affine", "readout": "I", "output": "Output",
    }  # fmt: skip
    assert sem.reset == "subtract" and sem.reset_timing == "same_step" and sem.threshold == ">"
    assert sem.dt == 1.0 and sem.convention == "conversion"
    assert json.loads(graph.metadata["spikeport.semantics"]) == sem.to_dict()
    info = json.loads(graph.metadata[CONVERSION_KEY])
    assert info["threshold"] == "spike" and info["steps"] == 8 and info["layers"] == ["1", "4", "5"]
    thr = [float(graph.nodes[f"spike{k}"].v_threshold[0]) for k in (0, 1)]
    assert thr == info["thresholds"] and all(t > 0 for t in thr)
    assert info["rho"] == [pytest.approx(thr[0]), pytest.approx(thr[0] * thr[1])]


def test_sp_convert_is_the_conversion() -> None:
    assert sp.convert is convert and "convert" in sp.__all__


def test_weights_are_copied_and_biases_divided_by_rho() -> None:
    ann = mlp(3)
    graph, _ = convert(ann, inputs(32, (12,)), steps=8)
    rho = json.loads(graph.metadata[CONVERSION_KEY])["rho"]
    for k, (layer, r) in enumerate(zip((ann[0], ann[3], ann[5]), [1.0, *rho])):
        node = graph.nodes[f"layer{k}_0"]
        np.testing.assert_array_equal(node.weight, layer.weight.detach().numpy())
        np.testing.assert_array_equal(node.bias, layer.bias.detach().clone().div_(r).numpy())
    assert torch.equal(mlp(3)[0].weight, ann[0].weight)  # the ANN itself is untouched


def test_batchnorm_folds_exactly_into_the_layer_before() -> None:
    lin = dyadic_(nn.Linear(6, 4), 0)
    bn = nn.BatchNorm1d(4, eps=0.0).eval()
    with torch.no_grad():
        bn.running_var.copy_(torch.tensor([4.0, 0.25, 1.0, 16.0]))  # sqrt exact: s is a power of two
        bn.running_mean.copy_(torch.tensor([0.5, -0.25, 0.0, 1.0]))
        bn.weight.copy_(torch.tensor([1.0, 2.0, -0.5, 1.0]))
        bn.bias.copy_(torch.tensor([0.125, 0.0, -1.0, 0.5]))
    x = torch.tensor(inputs(5, (6,)))
    with torch.no_grad():
        want = bn(lin(x))
        got = fold_batchnorm(copy.deepcopy(lin), bn, "1")(x)
    np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_stages_fold_batchnorm_and_drop_dropout() -> None:
    ann = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Dropout(), nn.Linear(3, 2)).eval()
    stages = ann_stages(ann)
    assert [[type(op).__name__ for op in s.ops] for s in stages] == [["Linear"], ["Linear"]]
    assert [s.spiking for s in stages] == [True, False] and [s.name for s in stages] == ["2", "4"]
    assert stages[0].ops[0] is not ann[0]  # copies


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("layers", "match"),
    [
        ([nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2, 2)], r"ANN layer 2 \(MaxPool2d\).*AvgPool2d"),
        ([nn.Linear(4, 4), nn.Sigmoid(), nn.Linear(4, 2)], r"ANN layer 1 \(Sigmoid\): cannot be converted"),
        ([nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2)], r"ANN layer 1 \(Tanh\)"),
        ([nn.Linear(4, 4), nn.ReLU(), nn.BatchNorm1d(4), nn.Linear(4, 2)], r"ANN layer 2 \(BatchNorm1d\).*got ReLU|no layer before"),
        ([nn.Linear(4, 4), nn.ReLU()], r"must end with a Linear or Conv2d"),
    ],
)  # fmt: skip
def test_unsupported_layers_are_refused_by_name(layers: list[nn.Module], match: str) -> None:
    with pytest.raises(UnsupportedError, match=match):
        convert(nn.Sequential(*layers), np.ones((2, 4), np.float32), steps=4)


def test_nested_layer_is_named_by_its_path() -> None:
    ann = nn.Sequential(nn.Sequential(nn.Linear(4, 4), nn.GELU()), nn.Linear(4, 2))
    with pytest.raises(UnsupportedError, match=r"ANN layer 0\.1 \(GELU\)"):
        convert(ann, np.ones((2, 4), np.float32), steps=4)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"threshold": "median"}, "threshold"),
        ({"scale": 0.0}, "scale"),
        ({"steps": 0}, "steps"),
        ({"percentile": 0.0, "threshold": "percentile"}, "percentile"),
        ({"input": "rate"}, "input"),
        ({"input": "rate", "threshold": "max"}, "input"),
    ],
)
def test_bad_options_are_refused(kw: dict, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        convert(mlp(), inputs(4, (12,)), **{"steps": 4, **kw})


def test_silent_layer_is_refused() -> None:
    ann = mlp()
    with torch.no_grad():
        ann[0].weight.fill_(-1.0)
        ann[0].bias.fill_(-1.0)
    for threshold in ("spike", "max"):
        with pytest.raises(ValidationError, match="layer '1'"):
            convert(ann, inputs(4, (12,)), steps=4, threshold=threshold)


def test_both_resets_quantize_for_lava() -> None:
    """Subtract reset runs on Lava as spikeport's own process (spikeport.lava.lif_processes)."""
    x = inputs(8, (12,))
    graph, sem = convert(mlp(), x, steps=6)
    net, _ = sp.quantize(graph, sem, calibration=constant_current(x, 6), target="lava")
    assert {g.reset for g in net.groups if g.name.startswith("spike")} == {"subtract"}
    graph, sem = convert(mlp(), x, steps=6, reset="zero")
    net, _ = sp.quantize(graph, sem, calibration=constant_current(x, 6), target="lava")
    assert {g.reset for g in net.groups if g.name.startswith("spike")} == {"zero"}


# ---------------------------------------------------------------- thresholds and inputs


def test_threshold_rules_order_and_scale() -> None:
    x = inputs(64, (12,))
    th = {
        rule: json.loads(convert(mlp(), x, steps=16, threshold=rule)[0].metadata[CONVERSION_KEY])[
            "thresholds"
        ]
        for rule in ("spike", "max", "percentile")
    }
    # layer 0 sees the same input in every rule: the spike-driven maximum of a constant current is the
    # ANN's maximum pre-activation, and the 99.9th percentile cannot exceed the maximum
    assert th["spike"][0] == th["max"][0]  # dyadic weights and inputs: exact in any order
    assert th["percentile"][0] <= th["max"][0]
    half = json.loads(convert(mlp(), x, steps=16, scale=0.5)[0].metadata[CONVERSION_KEY])["thresholds"]
    assert half[0] == th["spike"][0] * 0.5


def test_poisson_spikes_are_signed_and_seeded() -> None:
    x = np.array([[0.0, 0.25, -0.5, 1.0, -3.0]], np.float32)
    s = poisson_spikes(x, 200, seed=4)
    assert s.shape == (1, 200, 5) and set(np.unique(s)) <= {-1.0, 0.0, 1.0}
    assert np.all(s[0, :, 0] == 0) and np.all(s[0, :, 3] == 1) and np.all(s[0, :, 4] == -1)
    assert np.all(s[0, :, 1] >= 0) and np.all(s[0, :, 2] <= 0) and s[0, :, 1].any() and s[0, :, 2].any()
    np.testing.assert_array_equal(s, poisson_spikes(x, 200, seed=4))
    assert not np.array_equal(s, poisson_spikes(x, 200, seed=5))
    np.testing.assert_array_equal(encode(x, 3, "current"), np.repeat(x[:, None], 3, axis=1))
    padded = encode(x, 3, "poisson", seed=4, pad=2)
    np.testing.assert_array_equal(padded[:, :3], poisson_spikes(x, 3, seed=4))
    assert padded.shape == (1, 5, 5) and not padded[:, 3:].any()


# ---------------------------------------------------------------- float run = reference run


@pytest.mark.parametrize("net", ["mlp", "cnn"])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_torch_run_equals_the_reference_run_of_the_graph(net: str, reset: str) -> None:
    ann, shape = (mlp(), (12,)) if net == "mlp" else (cnn(), (1, 6, 6))
    x = inputs(16, shape)
    snn, info = convert_module(ann, x, steps=10, reset=reset)
    graph = to_nir(snn, info)
    xs = constant_current(x, 10)
    with torch.no_grad():
        v = snn(torch.tensor(xs), record=True)
    ref = sp.run_nir(graph, xs, snn.semantics(), record=("spikes", "v"))
    for k in range(len(snn.blocks) - 1):
        got = snn.record[f"spike{k}"].reshape(16, 10, -1).numpy()
        np.testing.assert_array_equal(got, ref[f"spike{k}/spikes"].astype(np.float32))
        assert got.any() and not got.all()
    np.testing.assert_array_equal(v.numpy(), ref["readout/v"])


def test_nir_file_round_trip(tmp_path: Path) -> None:
    graph, sem = convert(cnn(), inputs(8, (1, 6, 6)), steps=6)
    sp.write_nir(tmp_path / "snn.nir", graph, sem)
    back, sem2 = sp.read_nir(tmp_path / "snn.nir")
    assert sem2 == sem and sorted(back.nodes) == sorted(graph.nodes)
    np.testing.assert_array_equal(back.nodes["spike0"].v_threshold, graph.nodes["spike0"].v_threshold)


# ---------------------------------------------------------------- integer network: emulator, Lava, energy


def _quantized(ann: nn.Module, x: np.ndarray, steps: int, **kw: object):
    graph, sem = convert(ann, x, steps=steps, **kw)
    net, _ = sp.quantize(graph, sem, calibration=encode(x, steps, pad=depth(graph)), target="lava")
    lag = max(g["lag"] for g in net.metadata["groups"].values())
    return net, sp.encode_inputs(net, constant_current(x, steps), pad=lag)


def test_calibration_padded_by_depth_observes_the_readout_at_few_steps() -> None:
    """At steps <= depth an unpadded calibration never reaches the readout (headroom unbounded)."""
    x = inputs(16, (12,))
    graph, sem = convert(mlp(), x, steps=2)
    assert depth(graph) == 3
    _, rep = sp.quantize(graph, sem, calibration=encode(x, 2, pad=depth(graph)))
    readout = next(g for g in rep.groups if g.name == "readout")
    assert readout.bound_source == "calibration"
    assert all(np.isfinite(v) for v in readout.headroom_bits.values())


def test_synops_and_energy_fall_with_fewer_steps() -> None:
    x = inputs(8, (12,))
    net, _ = _quantized(mlp(), x, 32, reset="zero")
    totals = {}
    for steps in (8, 32):
        rep = sp.energy(net, sp.encode_inputs(net, constant_current(x, steps)))
        totals[steps] = (
            float(np.mean(rep.counts.total("synops"))),
            rep.estimates[0].per_inference()["total"],
        )
    assert 0 < totals[8][0] < totals[32][0] and 0 < totals[8][1] < totals[32][1]


@pytest.mark.lava
@pytest.mark.parametrize("net", ["mlp", "cnn"])
def test_converted_network_runs_bit_exact_on_lava(net: str) -> None:
    ann, shape = (mlp(2), (12,)) if net == "mlp" else (cnn(2), (1, 6, 6))
    x = inputs(6, shape, seed=3)
    qnet, xi = _quantized(ann, x, 12, reset="zero")
    record = ("spikes", "v", "u")
    emu = sp.run(qnet, xi, record=record)
    lava = sp.run(qnet, xi, backend="lava", record=record)
    assert sorted(emu.outputs) == sorted(lava.outputs)
    for key in sorted(lava.outputs):
        np.testing.assert_array_equal(emu[key], lava[key], err_msg=key)
    assert emu["spike0/spikes"].any() and emu["spike1/spikes"].any()


# ---------------------------------------------------------------- STDB


def test_stdb_surrogate_gradient() -> None:
    v = torch.tensor([3.0, 1.0, 5.0], requires_grad=True)
    theta = torch.tensor(2.0)
    last = torch.tensor([4.0, -1000.0, 2.0])
    s = stdb_surrogate(alpha=0.5, beta=0.0)(v, theta, last, 5)
    s.sum().backward()
    assert s.tolist() == [1.0, 0.0, 1.0]
    assert v.grad.tolist() == [0.25, 0.25, 0.25]  # beta = 0: alpha / theta for any spike age
    v.grad = None
    stdb_surrogate(alpha=0.3, beta=0.01)(v, theta, last, 5).sum().backward()
    g = v.grad.tolist()
    assert g[0] > g[2] > 1e-3 > 1e-5 > g[1] > 0  # recent spike > old spike >> never spiked (~1e-5)


def test_linear_surrogate_gradient() -> None:
    v = torch.tensor([2.0, 4.0, 3.0, 0.0], requires_grad=True)
    linear_surrogate(gamma=0.5)(v, torch.tensor(2.0), torch.zeros(4), 3).sum().backward()
    assert v.grad.tolist() == [0.25, 0.0, 0.125, 0.0]  # gamma max(0, 1 - |v/theta - 1|) / theta


def test_finetune_changes_weights_not_thresholds() -> None:
    x = inputs(48, (12,))
    y = np.arange(48) % 4
    snn, _ = convert_module(mlp(), x, steps=4, scale=0.7)
    before = {k: v.clone() for k, v in snn.state_dict().items()}
    unchanged = finetune(snn, x, y, steps=4, epochs=0)
    assert unchanged.loss == [] and all(torch.equal(before[k], v) for k, v in snn.state_dict().items())
    for surrogate in ("stdb", "linear"):
        hist = finetune(snn, x, y, steps=4, epochs=2, lr=1e-2, batch=16, surrogate=surrogate)
        assert len(hist.loss) == 2 and all(np.isfinite(hist.loss))
    after = snn.state_dict()
    assert torch.equal(after["thresholds"], before["thresholds"]) and snn.surrogate is None
    assert not torch.equal(after["blocks.0.0.weight"], before["blocks.0.0.weight"])
    with pytest.raises(ValidationError, match="surrogate"):
        finetune(snn, x, y, steps=4, surrogate="sigmoid")


# ---------------------------------------------------------------- ONNX and CLI


def _onnx(ann: nn.Module, shape: tuple[int, ...], path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(ann, (torch.zeros(1, *shape),), str(path), dynamo=False)
    return path


def test_onnx_reader_reads_what_torch_exported(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    from spikeport.quantize.conversion.onnx_reader import read_onnx

    ann = cnn(4)
    back, shape = read_onnx(_onnx(ann, (1, 6, 6), tmp_path / "cnn.onnx"))
    assert shape == (1, 6, 6)
    assert [type(m).__name__ for m in back] == [
        "Conv2d",
        "ReLU",
        "AvgPool2d",
        "Flatten",
        "Linear",
        "ReLU",
        "Linear",
    ]
    for a, b in zip([m for m in ann if list(m.parameters())], [m for m in back if list(m.parameters())]):
        np.testing.assert_array_equal(a.weight.detach().numpy(), b.weight.detach().numpy())
        np.testing.assert_array_equal(a.bias.detach().numpy(), b.bias.detach().numpy())


def test_onnx_reader_refuses_maxpool_by_node(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    from spikeport.quantize.conversion.onnx_reader import read_onnx

    ann = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 2)).eval()
    with pytest.raises(UnsupportedError, match=r"ONNX node '.*MaxPool.*' \(MaxPool\).*AveragePool"):
        read_onnx(_onnx(ann, (1, 6, 6), tmp_path / "m.onnx"))


def test_cli_convert_writes_a_nir_file(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    model = _onnx(mlp(5), (12,), tmp_path / "ann.onnx")
    np.save(tmp_path / "x.npy", inputs(16, (12,)))
    out = tmp_path / "snn.nir"
    cmd = [sys.executable, "-m", "spikeport", "convert", str(model), "-o", str(out), "--calibrate", str(tmp_path / "x.npy"), "--steps", "8"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    graph, sem = sp.read_nir(out)
    want, want_sem = convert(mlp(5), inputs(16, (12,)), steps=8)
    assert sem == want_sem and isinstance(graph.nodes["readout"], nir.I)
    for k in (0, 1):
        np.testing.assert_array_equal(
            graph.nodes[f"spike{k}"].v_threshold, want.nodes[f"spike{k}"].v_threshold
        )
    bad = _onnx(
        nn.Sequential(nn.Linear(12, 4), nn.Sigmoid(), nn.Linear(4, 2)).eval(), (12,), tmp_path / "bad.onnx"
    )
    proc = subprocess.run(
        [*cmd[:4], str(bad), *cmd[5:]], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert proc.returncode != 0 and "Sigmoid" in proc.stderr


@pytest.mark.slow
def test_example_08_runs(tmp_path: Path) -> None:
    cmd = [sys.executable, str(ROOT / "examples" / "08_ann_conversion.py"), "--epochs", "1", "--steps", "16"]
    proc = subprocess.run(
        [*cmd, "--out", str(tmp_path)], capture_output=True, text=True, cwd=ROOT, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    rows = json.loads((tmp_path / "results.json").read_text())
    assert set(rows) == {"ann_accuracy", "converted", "converted_T4", "stdb_T4"}
    assert rows["converted"]["steps"] == 16 and rows["stdb_T4"]["steps"] == 4
    assert rows["converted_T4"]["synops"] < rows["converted"]["synops"]  # fewer steps, fewer operations
    graph, sem = sp.read_nir(tmp_path / "digits_snn.nir")
    assert sem.reset == "subtract" and isinstance(graph.nodes["readout"], nir.I)
    assert "8-bit emulator accuracy" in proc.stdout
