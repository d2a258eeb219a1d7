"""Fine-tuned integer weights written back into the float NIR graph (``finetuned_graph``).

The written graph holds ``mant * 2**exp * 64 / (scale * u_gain)`` per weight node: quantizing it with the
fine-tuned network's own scales gives back its mantissas and exponents exactly (the verdict here).
``sp.quantize`` of the written graph cannot promise that: it re-chooses every group's scale from the
(changed) weights and a calibration run, and a scale that moves by a fraction of a percent moves
mantissas by a few units (measured: 57 of 64 readout mantissas, by up to 14). So a full re-quantization
is checked in float units only: within half a quantization step of the written weights.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import nir
import numpy as np
import pytest
import spikeport as sp
import torch
from small_task import rate_task, two_layer_export
from spikeport.emulator.errors import UnsupportedError
from spikeport.quantize import encode_inputs, fixed_point
from spikeport.quantize.training.finetune import FineTuneConfig, fine_tune_graph, readout
from spikeport.quantize.training.qat import IntegerSNN
from spikeport.quantize.training.writeback import finetuned_graph
from torch import nn

T = 10


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _tuned(graph, sem, x, y, mode: str):
    """Two Adam steps on the integer model (weights certainly change)."""
    net, twin, _ = sp.quantize_pair(graph, sem, mode=mode, calibration=x)
    model = IntegerSNN(net, mode=mode, twin=twin)
    group, lag, pad = readout(net)
    xi = encode_inputs(net, x, pad=pad)
    opt = torch.optim.Adam(model.parameters(), lr=1.0)
    for _ in range(2):
        counts = model(xi)[f"{group}/spikes"][:, lag : lag + T].sum(1)
        loss = nn.functional.cross_entropy(counts, torch.as_tensor(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net, model.to_network()


def _weight_conns(net) -> dict:
    return {c.name: c for c in net.connections if "~" not in c.name and not c.name.startswith("_")}


@pytest.mark.parametrize("mode", ["fixed", "shift"])
def test_written_graph_requantizes_to_the_tuned_weights(mode: str, tmp_path: Path) -> None:
    graph, sem = two_layer_export()
    x, y = rate_task(48, T)
    before = {k: np.array(v.weight, copy=True) for k, v in graph.nodes.items() if hasattr(v, "weight")}
    _, tuned = _tuned(graph, sem, x, y, mode)
    written = finetuned_graph(graph, sem, tuned)
    for k, w in before.items():  # the input graph is not touched
        np.testing.assert_array_equal(graph.nodes[k].weight, w)
    assert any(not np.array_equal(written.nodes[k].weight, w) for k, w in before.items())
    _assert_inverse(graph, sem, written, tuned, mode)
    _assert_requantized_close(graph, sem, written, tuned, mode, x)
    # and the file round-trips
    sp.write_nir(tmp_path / "tuned.nir", written, sem)
    back, sem2 = sp.read_nir(tmp_path / "tuned.nir")
    assert sem2 == sem
    for k in before:
        np.testing.assert_array_equal(back.nodes[k].weight, written.nodes[k].weight)


def _assert_inverse(graph, sem, written, tuned, mode: str) -> None:
    """Exact: the build's forward map ``w = scale * u_gain * W / 64`` with the tuned network's own scales,
    quantized, gives back its mantissas and exponents (spike amplitude 1 in spikeport's semantics)."""
    quant = fixed_point.quantize_weights_pow2 if mode == "shift" else fixed_point.quantize_weights
    for name, node in (("input->1", "0"), ("1->3", "2")):
        target = name.split("->")[1]
        scale = np.asarray(tuned.metadata["groups"][target]["scale"])[:, None]
        conn = _weight_conns(tuned)[name]
        q = quant(scale * _u_gain(graph, sem, target)[:, None] * written.nodes[node].weight / 64.0, 8)
        np.testing.assert_array_equal(q.mant, conn.weights, err_msg=name)
        np.testing.assert_array_equal(q.exp, conn.weight_exp, err_msg=name)


def _assert_requantized_close(graph, sem, written, tuned, mode: str, x: np.ndarray) -> None:
    """``sp.quantize`` of the written graph re-chooses the scales (from the changed weights and the
    calibration run), so its mantissas need not equal the tuned ones; in float units its weights are
    within half a quantization step (fixed) of the written ones, and the same connections exist."""
    again, _ = sp.quantize(written, sem, mode=mode, calibration=x)
    assert set(_weight_conns(again)) == set(_weight_conns(tuned))
    if mode != "fixed":
        return
    back = finetuned_graph(graph, sem, again)
    for name, node in (("input->1", "0"), ("1->3", "2")):
        m = _weight_conns(again)[name].weights
        grid = fixed_point.weight_grid(fixed_point.sign_mode(m[m != 0]), 8)[0]  # 2 for mixed signs
        wa, ww = back.nodes[node].weight, written.nodes[node].weight
        unit = np.abs(wa).max(axis=1, keepdims=True) / np.maximum(np.abs(m).max(axis=1, keepdims=True), 1)
        assert np.all(np.abs(wa - ww) <= 0.5 * grid * unit * (1 + 1e-9)), name


def _u_gain(graph, sem, target: str) -> np.ndarray:
    from spikeport.quantize.quantize_nir import build_plan, flatten_graph

    plan = build_plan(flatten_graph(graph), sp.semantics(sem), "unit")
    return next(g.model.u_gain for g in plan.groups if g.name == target)


def test_fine_tune_graph_then_write_back() -> None:
    graph, sem = two_layer_export()
    x, y = rate_task(64, T)
    cfg = FineTuneConfig(epochs=1, lr=2.0, batch=16)
    tuned, report, log = fine_tune_graph(graph, sem, x, y, mode="fixed", config=cfg)
    assert log.best_epoch == 1 and report.mode == "fixed"  # the tuned network is written back
    written = finetuned_graph(graph, sem, tuned)
    assert any(not np.array_equal(written.nodes[k].weight, graph.nodes[k].weight) for k in ("0", "2"))
    _assert_inverse(graph, sem, written, tuned, "fixed")
    _assert_requantized_close(graph, sem, written, tuned, "fixed", x[:256])
    assert sp.run_nir(written, x[:4], sem, dtype="float64").outputs  # a valid float graph


def test_composed_path_is_refused() -> None:
    """Two Affine nodes in a row compose into one connection: no single NIR node to write it to."""
    rng = np.random.default_rng(0)
    lif = dict(tau=np.full(4, 0.01), r=np.ones(4), v_leak=np.zeros(4), v_threshold=np.ones(4))
    nodes = {
        "input": nir.Input(input_type=np.array([3])),
        "a": nir.Affine(weight=rng.normal(size=(5, 3)), bias=np.zeros(5)),
        "b": nir.Affine(weight=rng.normal(size=(4, 5)), bias=np.zeros(4)),
        "lif": nir.LIF(**lif),
        "output": nir.Output(output_type=np.array([4])),
    }
    edges = [("input", "a"), ("a", "b"), ("b", "lif"), ("lif", "output")]
    graph = nir.NIRGraph(nodes=nodes, edges=edges)
    x = (rng.random((4, T, 3)) < 0.5).astype(np.float64)
    net, _ = sp.quantize(graph, "nir", calibration=x)
    with pytest.raises(UnsupportedError, match="input->lif"):
        finetuned_graph(graph, "nir", net)


def test_recurrent_weights_are_written_back() -> None:
    """A recurrent Linear (LIF -> Linear -> LIF) is one connection and is written back; an untuned
    network writes back its rounding: each weight within half a grid step of the float one."""
    rng = np.random.default_rng(0)
    n = 6
    nodes = {
        "input": nir.Input(input_type=np.array([3])),
        "a": nir.Affine(weight=2 * rng.normal(size=(n, 3)), bias=np.zeros(n)),
        "lif": nir.LIF(tau=np.full(n, 0.01), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n)),
        "rec": nir.Linear(weight=0.5 * rng.normal(size=(n, n))),
        "output": nir.Output(output_type=np.array([n])),
    }
    edges = [("input", "a"), ("a", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "output")]
    graph = nir.NIRGraph(nodes=nodes, edges=edges)
    rec0 = np.array(graph.nodes["rec"].weight, copy=True)
    net, _ = sp.quantize(graph, "nir", calibration=(rng.random((4, T, 3)) < 0.5).astype(np.float64))
    written = finetuned_graph(graph, "nir", net)
    np.testing.assert_array_equal(graph.nodes["rec"].weight, rec0)
    for name, node in (("input->lif", "a"), ("lif->lif", "rec")):
        m = _weight_conns(net)[name].weights
        grid = fixed_point.weight_grid(fixed_point.sign_mode(m[m != 0]), 8)[0]
        wa, w0 = written.nodes[node].weight, graph.nodes[node].weight
        unit = np.abs(wa).max(axis=1, keepdims=True) / np.maximum(np.abs(m).max(axis=1, keepdims=True), 1)
        assert np.all(np.abs(wa - w0) <= 0.5 * grid * unit * (1 + 1e-9)), name


def test_split_network_is_refused() -> None:
    graph, sem = two_layer_export()
    x, _ = rate_task(16, T)
    net, _ = sp.quantize(graph, sem, calibration=x)
    parts = tuple(
        dataclasses.replace(c, name=c.name + "#0") if c.name == "1->3" else c for c in net.connections
    )
    with pytest.raises(UnsupportedError, match="1->3"):
        finetuned_graph(graph, sem, dataclasses.replace(net, connections=parts))
