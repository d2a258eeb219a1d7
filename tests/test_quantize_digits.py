"""Done-when check: a small SNN trained on scikit-learn digits keeps its accuracy when quantized.

8-bit fixed point within 1 percentage point of float for every model; power-of-two (shift) weights
within 6 points of float on average over four seeds (and never more than 12 points below). The float
accuracy is the float64 reference run of the exported NIR graph (the models train in float64).

CPU independence (issue 11). The same seed used to train a different model on another CPU (MKL and
ATen pick vector code paths per CPU; training is chaotic, so last-bit differences grow ~10x every 5
Adam steps even in float64), and the single-model shift check failed there (float 96.38%, shift
87.32%). Now training runs in float64 on one thread in a subprocess that pins MKL's and ATen's code
paths (``CPU_PINS``, read once at a process's first torch kernel; a value you set wins, e.g.
``ATEN_CPU_CAPABILITY=avx2 pytest ...`` shows what another CPU does): the same models on every x86-64
CPU for a given torch/MKL build. The verdicts do not rely on that: every bound holds with room over
a sweep of 32 trained models, seeds 0-15 each with the pinned paths and with this machine's native
AVX-512 paths (a CPU change acts like a new seed)::

    float            90.5% .. 97.2%      bound >= 85%
    fixed - float    -0.6 .. +0.8 pp     bound >= -1 pp (per model; sd 0.3 pp)
    shift - float    -8.3 .. +1.4 pp     bound >= -12 pp per model (the other CPU's float32 model: -9.1)
    mean of 4 seeds  -3.2 .. -1.2 pp     bound >= -6 pp (resampling the 33 gaps: P(< -6) = 0.3%)

(AVX2 paths, ``ATEN_CPU_CAPABILITY=avx2 MKL_CBWR=AVX2``, seeds 0-3: fixed - float -0.4 .. +0.4 pp,
shift - float -6.4 .. -0.6 pp, mean -2.8 pp.) The shift quantizer loses 2.2 pp on average (sd 2.4 pp),
hence the mean over seeds; tighten the bounds when shift quantization improves.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from spikeport.emulator.engines.dispatch import run
from spikeport.nir.export import export_nir
from spikeport.quantize import encode_inputs, quantize_pair
from spikeport.quantize.training import neurons as snn
from spikeport.reference.run import run_nir
from torch import nn

T = 12
SEEDS = (0, 1, 2, 3)  # ~3 s of training each
FLOAT_MIN = 0.85  # every model
FIXED_MARGIN = 0.01  # every model
SHIFT_MARGIN = 0.12  # every model
SHIFT_MEAN_MARGIN = 0.06  # mean over SEEDS
# CPU-independent code paths (as spikeport.demo.pipeline.CPU_PINS); set only in the training subprocess,
# because ATen's default kernels would slow every torch test of the session about twofold.
CPU_PINS = {"MKL_CBWR": "COMPATIBLE", "ATEN_CPU_CAPABILITY": "default"}
_TRAIN = """
import importlib.util, sys
import numpy as np
spec = importlib.util.spec_from_file_location("digits_training", sys.argv[1])
m = importlib.util.module_from_spec(spec)
spec.loader.exec_module(m)
np.savez(sys.argv[2], **{f"{s}/{k}": v for s in sys.argv[3:] for k, v in m.train_weights(int(s)).items()})
"""


def _seq(x: np.ndarray) -> np.ndarray:
    return np.repeat(x[:, None, :], T, axis=1)


def _model() -> snn.SNN:
    return snn.SNN(
        nn.Linear(64, 64),
        snn.LIF(64, beta=0.9),
        nn.Linear(64, 10),
        snn.LIF(10, beta=0.9),
        semantics="snntorch",
    )


def digits(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pixels / 16 (float64, exact) split 1300 / 497 by a seeded permutation: x_tr, y_tr, x_te, y_te."""
    from sklearn.datasets import load_digits

    d = load_digits()
    idx = np.random.default_rng(seed).permutation(len(d.target))
    tr, te = idx[:1300], idx[1300:]
    return d.data[tr] / 16.0, d.target[tr], d.data[te] / 16.0, d.target[te]


def train_weights(seed: int) -> dict[str, np.ndarray]:
    """Train the 64-64-10 LIF model in float64 on one thread; its float64 state dict."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        x, y, _, _ = digits(seed)
        model = _model().double()
        opt = torch.optim.Adam(model.parameters(), 5e-3)
        xt, yt = torch.tensor(_seq(x)), torch.tensor(y)
        for _ in range(8):
            perm = torch.randperm(len(y))
            for i in range(0, len(y), 100):
                b = perm[i : i + 100]
                loss = nn.functional.cross_entropy(model(xt[b]).sum(1) * 2, yt[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
    finally:
        torch.set_num_threads(threads)
    return {k: v.numpy() for k, v in model.state_dict().items()}


def exported(seed: int, weights: dict[str, np.ndarray]):
    """The trained model as NIR (float32 weights, correctly rounded): graph, semantics, data."""
    model = _model()
    model.load_state_dict({k: torch.as_tensor(v) for k, v in weights.items()})
    x, _, x_te, y_te = digits(seed)
    return export_nir(model, input_shape=(64,)), model.semantics, _seq(x[:200]), _seq(x_te), y_te


def train_digits(seed: int):
    """Train in this process (whatever its code paths) and export."""
    return exported(seed, train_weights(seed))


def _accuracy(counts: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(counts.argmax(axis=1) == y))


def accuracies(graph, sem, x_cal, x_te, y_te) -> dict[str, float]:
    """Float (float64 reference run), fixed and shift (integer emulator) test accuracies."""
    ref = run_nir(graph, x_te, sem, record=("spikes",), dtype="float64")
    acc = {"float": _accuracy(ref["3/spikes"].sum(1), y_te)}
    for mode in ("fixed", "shift"):
        net, _twin, _rep = quantize_pair(graph, sem, mode=mode, calibration=x_cal)
        lag = net.metadata["groups"]["3"]["lag"]
        res = run(net, encode_inputs(net, x_te, pad=lag))
        acc[mode] = _accuracy(res["3/spikes"][:, lag : lag + T].sum(1), y_te)
    return acc


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[int, tuple]:
    """The models for SEEDS, trained in a subprocess with the CPU_PINS code paths."""
    path = tmp_path_factory.mktemp("digits") / "weights.npz"
    env = {**CPU_PINS, **os.environ}  # a value the caller set wins
    cmd = [sys.executable, "-c", _TRAIN, __file__, str(path), *map(str, SEEDS)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    with np.load(path) as f:
        weights = {s: {k.split("/", 1)[1]: f[k] for k in f.files if k.startswith(f"{s}/")} for s in SEEDS}
    return {s: exported(s, weights[s]) for s in SEEDS}


@pytest.mark.slow
def test_digits_fixed_and_shift_accuracy(models):
    accs = [accuracies(*models[seed]) for seed in SEEDS]
    for seed, acc in zip(SEEDS, accs, strict=True):
        print(f"seed {seed}: float {acc['float']:.4f} fixed {acc['fixed']:.4f} shift {acc['shift']:.4f}")
    shift_gap = float(np.mean([a["shift"] - a["float"] for a in accs]))
    paths = {k: os.environ.get(k, v) for k, v in CPU_PINS.items()}
    print(f"mean shift - float {shift_gap:+.4f} (trained with {paths})")
    for seed, acc in zip(SEEDS, accs, strict=True):
        assert acc["float"] >= FLOAT_MIN, (seed, acc)  # the model learned something
        assert acc["fixed"] >= acc["float"] - FIXED_MARGIN, (seed, acc)
        assert acc["shift"] >= acc["float"] - SHIFT_MARGIN, (seed, acc)
    assert shift_gap >= -SHIFT_MEAN_MARGIN, accs


@pytest.mark.slow
def test_digits_twin_replays_float64_reference(models):
    graph, sem, x_cal, x_te, _ = models[SEEDS[0]]
    net, twin, _ = quantize_pair(graph, sem, calibration=x_cal)
    ref = run_nir(graph, x_te[:100], sem, record=("spikes",), dtype="float64")
    pad = max(g["lag"] for g in net.metadata["groups"].values())
    tw = run(twin, encode_inputs(net, x_te[:100], pad=pad, exact=True), mode="float")
    for k in ("1", "3"):
        lag = net.metadata["groups"][k]["lag"]
        np.testing.assert_array_equal(tw[f"{k}/spikes"][:, lag : lag + T], ref[f"{k}/spikes"])
