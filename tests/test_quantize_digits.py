"""Done-when check: a small SNN trained on scikit-learn digits keeps its accuracy when quantized.

8-bit fixed point within 1 percentage point of float, power-of-two (shift) weights within 3 points.
The float accuracy is the float reference run of the exported NIR graph (float32, as trained).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from spikeport.emulator.engines.dispatch import run
from spikeport.nir.export import export_nir
from spikeport.quantize import encode_inputs, quantize_pair
from spikeport.quantize.semantics import semantics
from spikeport.quantize.training import neurons as snn
from spikeport.reference.run import run_nir
from torch import nn

T = 12


def _seq(x: np.ndarray) -> np.ndarray:
    return np.repeat(x[:, None, :], T, axis=1).astype(np.float32)


@pytest.fixture(scope="module")
def trained():
    from sklearn.datasets import load_digits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    d = load_digits()
    x, y = d.data / 16.0, d.target
    idx = np.random.default_rng(0).permutation(len(y))
    tr, te = idx[:1300], idx[1300:]
    sem = semantics("snntorch")
    model = snn.SNN(
        nn.Linear(64, 64), snn.LIF(64, beta=0.9), nn.Linear(64, 10), snn.LIF(10, beta=0.9), semantics=sem
    )
    opt = torch.optim.Adam(model.parameters(), 5e-3)
    xt, yt = torch.tensor(_seq(x[tr])), torch.tensor(y[tr])
    for _ in range(8):
        perm = torch.randperm(len(tr))
        for i in range(0, len(tr), 100):
            b = perm[i : i + 100]
            loss = nn.functional.cross_entropy(model(xt[b]).sum(1) * 2, yt[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    torch.set_num_threads(threads)
    graph = export_nir(model, input_shape=(64,))
    return graph, sem, _seq(x[tr[:200]]), _seq(x[te]), y[te]


def _accuracy(counts: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(counts.argmax(axis=1) == y))


@pytest.mark.slow
def test_digits_fixed_and_shift_accuracy(trained):
    graph, sem, x_cal, x_te, y_te = trained
    ref = run_nir(graph, x_te, sem, record=("spikes",))
    acc_float = _accuracy(ref["3/spikes"].sum(1), y_te)
    assert acc_float > 0.9  # the model learned something
    acc = {}
    for mode in ("fixed", "shift"):
        net, _twin, _rep = quantize_pair(graph, sem, mode=mode, calibration=x_cal)
        lag = net.metadata["groups"]["3"]["lag"]
        res = run(net, encode_inputs(net, x_te, pad=lag))
        acc[mode] = _accuracy(res["3/spikes"][:, lag : lag + T].sum(1), y_te)
    print(f"digits accuracy: float {acc_float:.4f} fixed {acc['fixed']:.4f} shift {acc['shift']:.4f}")
    assert acc["fixed"] >= acc_float - 0.01
    assert acc["shift"] >= acc_float - 0.03


@pytest.mark.slow
def test_digits_twin_replays_float64_reference(trained):
    graph, sem, x_cal, x_te, _ = trained
    net, twin, _ = quantize_pair(graph, sem, calibration=x_cal)
    ref = run_nir(graph, x_te[:100], sem, record=("spikes",), dtype="float64")
    pad = max(g["lag"] for g in net.metadata["groups"].values())
    tw = run(twin, encode_inputs(net, x_te[:100], pad=pad, exact=True), mode="float")
    for k in ("1", "3"):
        lag = net.metadata["groups"][k]["lag"]
        np.testing.assert_array_equal(tw[f"{k}/spikes"][:, lag : lag + T], ref[f"{k}/spikes"])
