"""Multiplication-free channel-wise parallel spiking neuron (issue 18; Xue et al. NeurIPS 2025); prints JSON.

Task: sequential MNIST by rows (T = 28 steps of 28 pixels, binarized at 0.5 into 0/1 spikes). Data: the
official MNIST t10k file (``../shared/data/mnist`` next to the repository, or ``--data``), split here into
a training part (the first images) and a test part (the last ones); accuracies are on the test part.

Model (:class:`spikeport.quantize.training.psn_net.SeqNet`): ``28 -> hidden -> hidden -> 10``, two stages
of ``Linear -> neuron`` and a linear readout averaged over time, one step of synaptic delay per stage. Adam, lr 5e-3 with cosine decay, batch 32.
Neurons: ``lif`` (BN + LIF, beta 0.9, subtract reset), ``sliding_psn`` (shared kernel, d = 1),
``chw_psn`` (per-channel kernel, sawtooth dilations 1, 2), ``mulfree_chw_psn`` (the trained ``chw_psn``
with BN folded, power-of-two kernels, 8-bit linear weights, fine-tuned at lr 5e-4). Same seed and batch
order for every model.

Fields: ``accuracy`` by neuron (float torch run; for ``mulfree_chw_psn`` the emulator's integer run, the
QAT torch run is ``accuracy_mulfree_torch``); ``emulator_equals_torch_integer`` (spikes of every stage,
all test samples, equal arrays between the emulator's PSNGroup network and the torch int64 inference);
``nir_round_trip_exact`` (NIR Delay/Scale/Threshold subgraph written, read back: equal records and equal
emulator spikes); ``multiplications_per_inference`` (graded synaptic events + non-shift taps, counted
on the integer network: 0 when binary spikes feed power-of-two taps); ``ops_per_inference`` (shifts and
adds from the emulator counters, synaptic adds from spikes x fan-out); ``energy_table`` (neuron update
energy per inference and per neuron step at 45 nm, :mod:`spikeport.emulator.energy.neuron_ops`);
``lava_mapping`` (exact lowering to DelayDense taps into a memoryless LIF, or Lava's refusal);
``kernel_autoselect`` (seconds per forward + backward of each PSN layer with each kernel, the choice)
and ``epoch_seconds_by_kernel`` (one forward + backward pass over the training part with every layer
forced to each kernel, wall time).

    python benchmarks/psn.py [--quick] [--data DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from spikeport.emulator import run
from spikeport.emulator.energy.neuron_ops import OP_ENERGY_PJ, neuron_ops
from spikeport.emulator.errors import UnsupportedError
from spikeport.lava.psn_lowering import lower_psn
from spikeport.nir.psn_subgraph import read_psn_nir, write_psn_nir
from spikeport.quantize.psn_integer import emulator_inputs, integer_forward, integer_model, to_network
from spikeport.quantize.training.psn import KERNELS, PSN, autoselect, receptive_field, sawtooth
from spikeport.quantize.training.psn_net import SeqNet
from torch.nn import functional as F

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
K, DILATIONS = 4, tuple(sawtooth(2))  # the sawtooth d_l = (l mod 3) + 1: 1, 2
BATCH = 32
LR = 5e-3
CONFIG = {
    "quick": {"train": 3000, "test": 1000, "hidden": 64, "epochs": 6, "finetune": 2},
    "full": {"train": 8000, "test": 2000, "hidden": 128, "epochs": 12, "finetune": 3},
}


def load_rows(folder: Path, cfg: dict[str, int]) -> tuple[torch.Tensor, ...]:
    paths = [folder / f for f in FILES]
    if not all(p.is_file() for p in paths):
        sys.exit(f"MNIST not found in {folder} (pass --data DIR holding {' and '.join(FILES)})")
    with gzip.open(paths[0]) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(paths[1]) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    spikes = torch.as_tensor((x > 127).astype(np.float32))  # (N, T = 28 rows, 28 pixels)
    n, m = cfg["train"], cfg["test"]
    return spikes[:n], torch.as_tensor(y[:n]), spikes[-m:], torch.as_tensor(y[-m:])


def batches(n: int, size: int, seed: int) -> list[torch.Tensor]:
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return list(order.split(size))


def train(model: SeqNet, x: torch.Tensor, y: torch.Tensor, epochs: int, lr: float) -> list[float]:
    """Adam (cosine learning-rate decay), batch ``BATCH``; returns the wall time of each epoch."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    times = []
    for epoch in range(epochs):
        model.train()
        start = time.perf_counter()
        for idx in batches(len(x), BATCH, epoch):
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
        sched.step()
        times.append(time.perf_counter() - start)
    return times


@torch.no_grad()
def accuracy(model: SeqNet, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    pred = torch.cat([model(x[i : i + 500]).argmax(1) for i in range(0, len(x), 500)])
    return float((pred == y).float().mean())


def stage_inputs(model: SeqNet, x: torch.Tensor) -> list[torch.Tensor]:
    """What each PSN layer receives on ``x`` (for the kernel timing)."""
    from spikeport.quantize.training.psn_net import shift_time

    s, out = F.pad(x, (0, 0, 0, len(model.linears))), []
    with torch.no_grad():
        for lin, neu in zip(model.linears, model.neurons, strict=True):
            out.append(lin(shift_time(s)))
            s = neu(out[-1])
    return out


def select_kernels(model: SeqNet, x: torch.Tensor) -> list[dict[str, Any]]:
    picks = []
    for neu, xin in zip(model.neurons, stage_inputs(model, x), strict=True):
        if isinstance(neu, PSN):
            times = autoselect(neu, xin)
            picks.append({"seconds": times, "chosen": neu.kernel})
    return picks


def epoch_pass_seconds(model: SeqNet, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Forward + backward over the training part with every PSN forced to each kernel (no update)."""
    probe = copy.deepcopy(model)
    out = {}
    for kern in KERNELS:
        for neu in probe.neurons:
            neu.kernel = kern
        probe.train()
        start = time.perf_counter()
        for idx in batches(len(x), BATCH, 0):
            F.cross_entropy(probe(x[idx]), y[idx]).backward()
            probe.zero_grad(set_to_none=True)
        out[kern] = time.perf_counter() - start
    return out


def emulate(net: Any, x: np.ndarray, layers: int) -> Any:
    return run(net, emulator_inputs(x, layers), record=("spikes",), counters=True)


def synaptic_adds(net: Any, res: Any, readout: np.ndarray) -> int:
    """Spikes x nonzero fan-out over every connection and the readout (binary spikes: adds)."""
    total = 0
    for c in net.connections:
        fan = np.count_nonzero(c.weights, axis=0)
        total += int(np.sum(res.counters.spike_counts[c.source] @ fan))
    last = net.groups[-1].name
    return total + int(np.sum(res.counters.spike_counts[last] @ np.count_nonzero(readout, axis=0)))


def multiplications(res: Any) -> int:
    """Synaptic events carrying a payload other than 0/1 (each would need a multiply). PSNGroup taps
    are ``sign * (x << shift)`` by construction (no multiplier exists in the record), so neuron updates
    add none; binary spikes into integer weights are additions."""
    return sum(
        int(np.sum(res.counters.payload_sums[n] - res.counters.spike_counts[n]))
        for n in res.counters.spike_counts
    )


def integer_check(model: SeqNet, xt: torch.Tensor, yt: torch.Tensor) -> dict[str, Any]:
    """Emulator vs torch integer inference on the test part; integer accuracy; op counts."""
    im = integer_model(model)
    net = to_network(im)
    x = xt.numpy().astype(np.int64)
    layers = len(im.stages)
    res = emulate(net, x, layers)
    ref, logits_t = integer_forward(im, x)
    equal = all(np.array_equal(res[f"{g.name}/spikes"], r) for g, r in zip(net.groups, ref, strict=True))
    last = res[f"{net.groups[-1].name}/spikes"].astype(np.int64).sum(axis=1)
    logits = last @ im.readout.T
    equal = equal and np.array_equal(logits, logits_t)
    states = res.state.groups
    n = len(x)
    return {
        "net": net,
        "res": res,
        "equal": bool(equal),
        "accuracy": float(np.mean(logits.argmax(1) == yt.numpy())),
        "shifts": int(sum(states[g.name].shifts.sum() for g in net.groups)) / n,
        "adds": int(sum(states[g.name].adds.sum() for g in net.groups)) / n,
        "neuron_steps": sum(int(g.n) for g in net.groups) * int(res.metadata["steps"]),
        "synaptic_adds": synaptic_adds(net, res, im.readout) / n,
        "multiplications": multiplications(res) / n,
    }


def nir_round_trip(net: Any, x: np.ndarray) -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "psn.nir"
        write_psn_nir(path, net)
        back = read_psn_nir(path)
    fields_equal = all(
        (a.name, a.k, a.dilation) == (b.name, b.k, b.dilation)
        and all(np.array_equal(getattr(a, f), getattr(b, f)) for f in ("sign", "shift", "vth"))
        for a, b in zip(net.groups, back.groups, strict=True)
    ) and all(
        np.array_equal(a.weights, b.weights) for a, b in zip(net.connections, back.connections, strict=True)
    )
    layers = len(net.groups)
    ra, rb = emulate(net, x, layers), emulate(back, x, layers)
    return bool(fields_equal and all(np.array_equal(ra[k], rb[k]) for k in ra.outputs))


def lava_mapping(net: Any) -> dict[str, Any]:
    """Whether the trained network lowers exactly to Lava (DelayDense taps + memoryless LIF)."""
    try:
        low = lower_psn(net)
    except UnsupportedError as exc:
        return {"exact": False, "refusal": str(exc).split("; ")[0]}
    return {"exact": True, "connections": len(low.connections)}


def energy_table(ic: dict[str, Any]) -> dict[str, Any]:
    """Neuron-update energy per inference (same shape of network, same tap counts) at 45 nm."""
    steps, taps = ic["neuron_steps"], round(ic["shifts"])
    rows = {
        "lif": neuron_ops("lif", neuron_steps=steps),
        "chw_psn": neuron_ops("psn", neuron_steps=steps, taps=taps),
        "mulfree_chw_psn": neuron_ops("mulfree_psn", neuron_steps=steps, taps=taps),
    }
    table = {
        k: {
            "multiplications": r.multiplications,
            "additions": r.additions,
            "shifts": r.shifts,
            "neuron_energy_pj": round(r.energy_pj, 1),
            "pj_per_neuron_step": round(r.pj_per_neuron_step, 3),
        }
        for k, r in rows.items()
    }
    table["psn_over_mulfree"] = round(rows["chw_psn"].energy_pj / rows["mulfree_chw_psn"].energy_pj, 2)
    table["op_energy_pj"] = {k: {"pj": v[0], "source": v[1]} for k, v in OP_ENERGY_PJ.items()}
    return table


def train_all(cfg: dict[str, int], data: tuple[torch.Tensor, ...]) -> dict[str, Any]:
    x, y, xt, yt = data
    out: dict[str, Any] = {"accuracy": {}, "epoch_seconds": {}}
    models = {}
    for neuron in ("lif", "sliding_psn", "chw_psn"):
        torch.manual_seed(0)
        m = SeqNet(28, cfg["hidden"], 10, neuron=neuron, k=K, dilations=DILATIONS)
        if neuron != "lif":
            out.setdefault("kernel_autoselect", {})[neuron] = select_kernels(m, x[:128])
        out["epoch_seconds"][neuron] = train(m, x, y, cfg["epochs"], LR)
        out["accuracy"][neuron] = accuracy(m, xt, yt)
        models[neuron] = m
    out["epoch_seconds_by_kernel"] = epoch_pass_seconds(models["chw_psn"], x, y)
    mf = copy.deepcopy(models["chw_psn"])
    mf.make_mulfree()
    out["accuracy_mulfree_before_finetune"] = accuracy(mf, xt, yt)
    out["epoch_seconds"]["mulfree_chw_psn"] = train(mf, x, y, cfg["finetune"], LR / 10)
    out["accuracy_mulfree_torch"] = accuracy(mf, xt, yt)
    out["model"] = mf
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    cfg = CONFIG["quick" if args.quick else "full"]
    start = time.perf_counter()
    data = load_rows(args.data, cfg)
    out = train_all(cfg, data)
    mf = out.pop("model")
    ic = integer_check(mf, data[2], data[3])
    out["accuracy"]["mulfree_chw_psn"] = ic["accuracy"]
    report = {
        "task": "sequential MNIST rows (T = 28), binarized; MNIST t10k split train/test",
        "config": {
            **cfg,
            "k": K,
            "dilations": list(DILATIONS),
            "receptive_field": receptive_field(K, DILATIONS),
        },
        **out,
        "emulator_equals_torch_integer": ic["equal"],
        "nir_round_trip_exact": nir_round_trip(ic["net"], data[2][:200].numpy().astype(np.int64)),
        "lava_mapping": lava_mapping(ic["net"]),
        "multiplications_per_inference": ic["multiplications"],
        "ops_per_inference": {k: ic[k] for k in ("shifts", "adds", "synaptic_adds")},
        "energy_table": energy_table(ic),
        "seconds": round(time.perf_counter() - start, 1),
    }
    acc = report["accuracy"]
    report["targets"] = {
        "mulfree_beats_lif": acc["mulfree_chw_psn"] > acc["lif"],
        "mulfree_within_1pp_of_chw_psn": acc["chw_psn"] - acc["mulfree_chw_psn"] <= 0.01,
        "no_multiplications": report["multiplications_per_inference"] == 0,
        "emulation_exact": report["emulator_equals_torch_integer"] and report["nir_round_trip_exact"],
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
