"""The torch engine (``engine="torch"``) against the dense engine: every recorded array, final states and
counters equal (``assert_array_equal``) on the random-network suite. CPU only here: the CUDA path is the same
code on ``device="cuda"`` (benchmarks/torch_engine.py checks it where a GPU exists)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from spikeport.emulator.engines import dispatch as engine  # noqa: E402
from spikeport.emulator.engines import torch_engine as te  # noqa: E402
from spikeport.emulator.errors import UnsupportedError, ValidationError  # noqa: E402
from spikeport.emulator.network import Connection, InputGroup, LIFGroup, Network, SigmaDeltaGroup  # noqa: E402
from spikeport.emulator.randnet import random_inputs, random_network  # noqa: E402

LIF_VARS = ("spikes", "u", "v", "a_in")
SD_VARS = ("spikes", "sigma", "act", "residue", "error", "a_in")
TORCH_KINDS = ("lif", "lif_reset", "ternary", "sigma_delta")  # the group kinds the torch engine runs


def _record(net: Network) -> list[str]:
    return [
        f"{g.name}/{v}" for g in net.groups for v in (SD_VARS if isinstance(g, SigmaDeltaGroup) else LIF_VARS)
    ]


def _assert_same(a: object, b: object, where: str) -> None:
    assert sorted(a.outputs) == sorted(b.outputs)  # type: ignore[attr-defined]
    for k, want in a.outputs.items():  # type: ignore[attr-defined]
        np.testing.assert_array_equal(b.outputs[k], want, err_msg=f"{k} ({where})")  # type: ignore[attr-defined]
    for name, st in a.state.groups.items():  # type: ignore[attr-defined]
        for field, want in st._asdict().items():
            got = getattr(b.state.groups[name], field)  # type: ignore[attr-defined]
            np.testing.assert_array_equal(got, want, err_msg=f"state {name}.{field} ({where})")
    for name, ring in a.state.rings.items():  # type: ignore[attr-defined]
        np.testing.assert_array_equal(b.state.rings[name], ring, err_msg=f"ring {name} ({where})")  # type: ignore[attr-defined]


@pytest.mark.parametrize("seed", range(30))
def test_random_networks_equal_dense(seed: int) -> None:
    rng = np.random.default_rng(seed)
    net = random_network(rng, steps=25, overdrive=0.3, kinds=TORCH_KINDS)
    x = random_inputs(rng, net, 25, batch=3)
    rec = _record(net)
    a = engine.run(net, x, record=rec, engine="dense")
    b = engine.run(net, x, record=rec, engine="torch", device="cpu")
    assert b.metadata["engine"] == "torch"
    _assert_same(a, b, f"seed {seed}")


@pytest.mark.parametrize("seed", range(4))
def test_counters_and_resume_equal_dense(seed: int) -> None:
    rng = np.random.default_rng(500 + seed)
    net = random_network(rng, steps=30, max_n=6, kinds=TORCH_KINDS)
    x = random_inputs(rng, net, 30, batch=2)
    a = engine.run(net, x, record=("spikes", "a_in"), engine="dense", counters=True)
    first = engine.run(net, {k: v[:, :13] for k, v in x.items()}, record=("spikes", "a_in"), engine="torch")
    rest = {k: v[:, 13:] for k, v in x.items()}
    second = engine.run(net, rest, record=("spikes", "a_in"), engine="torch", state=first.state)
    for k, want in a.outputs.items():
        np.testing.assert_array_equal(np.concatenate([first[k], second[k]], axis=1), want, err_msg=k)
    whole = engine.run(net, x, record=("spikes", "a_in"), engine="torch", counters=True)
    for field in ("spike_counts", "payload_sums", "input_events"):
        for k, want in getattr(a.counters, field).items():
            np.testing.assert_array_equal(getattr(whole.counters, field)[k], want, err_msg=f"{field}[{k}]")
    # handover: torch first half, dense second half
    mixed = engine.run(net, rest, record=("spikes", "a_in"), engine="dense", state=first.state)
    for k, want in a.outputs.items():
        np.testing.assert_array_equal(np.concatenate([first[k], mixed[k]], axis=1), want, err_msg=k)


def _graded_net(w: np.ndarray, delays: np.ndarray | None) -> Network:
    g = LIFGroup(name="h", n=w.shape[0], du=4095, dv=0, vth=10, bias_mant=0, bias_exp=0, u0=0, v0=0)
    c = Connection(
        name="c", source="x", target="h", weights=w, num_message_bits=24, delays=delays, weight_exp=-3
    )
    return Network(
        inputs=[InputGroup(name="x", n=w.shape[1], num_message_bits=24)], groups=[g], connections=[c]
    )


@pytest.mark.parametrize("delayed", [False, True])
def test_large_graded_products_wrap_like_dense(delayed: bool) -> None:
    """Payloads near 2**24 times weights near 2**8: int32 sums (Dense) and per-product wraps
    (DelayDense) both happen; the 16-bit limb product and the elementwise wrap must match."""
    rng = np.random.default_rng(9)
    n_in = 40_000  # row sums of |W| reach 2**22 and more: the two-limb product
    w = rng.choice([-256, 255, 254, -200], (2, n_in))
    delays = rng.integers(0, 3, w.shape) if delayed else None
    net = _graded_net(w, delays)
    lim = (1 << 24) - 1
    x = rng.choice([-lim, lim, 12345, 0], (2, 6, n_in))
    plan = te.torch_plan(net, torch.device("cpu"))
    if not delayed:  # the row sums of |W| reach 2**23: two 16-bit limbs
        assert [s.limbs for s in plan.synapses[0].slots] == [2]
    a = engine.run(net, x, record=("a_in", "u", "v"), engine="dense")
    b = engine.run(net, x, record=("a_in", "u", "v"), engine="torch")
    _assert_same(a, b, f"delayed={delayed}")
    assert np.any(a["h/a_in"] != 0)


def test_kernels_match_numpy_kernels_on_edges() -> None:
    from spikeport.emulator import kernels

    lim = 1 << 23
    vals = np.array(
        [0, 1, -1, lim, lim + 1, -lim, -lim - 1, 2**31 - 1, -(2**31), 3 * lim, -3 * lim, 4095, -4097]
    )
    t = torch.as_tensor(vals)
    np.testing.assert_array_equal(te.wrap32(t * 7919).numpy(), kernels.wrap32(vals * 7919))
    np.testing.assert_array_equal(te.quirky_wrap24(t).numpy(), kernels.quirky_wrap24(vals))
    for d in (0, 1, 7, 2048, 4095, 4096):
        np.testing.assert_array_equal(te.decay(t, d).numpy(), kernels.decay(vals, d), err_msg=f"d={d}")
    for e in (-8, -1, 0, 3, 7):
        np.testing.assert_array_equal(
            te.shift_activation(t, e).numpy(), kernels.shift_activation(vals, e), err_msg=f"e={e}"
        )


def test_options_and_refusals() -> None:
    rng = np.random.default_rng(1)
    net = random_network(rng, kinds=("lif",), steps=5)
    x = random_inputs(rng, net, 5)
    with pytest.raises(UnsupportedError, match="mode='fixed' with overflow='wrap' only"):
        engine.run(net, x, engine="torch", overflow="strict")
    with pytest.raises(UnsupportedError, match="mode='fixed'"):
        engine.run(net, x, engine="torch", mode="float")
    with pytest.raises(ValidationError, match="runs on the CPU only"):
        engine.run(net, x, engine="dense", device="cuda")
    if not torch.cuda.is_available():
        with pytest.raises(UnsupportedError, match="no CUDA device"):
            engine.run(net, x, engine="torch", device="cuda")
    with pytest.raises(ValidationError, match="state"):
        engine.run(net, x, engine="torch", state=object())


def test_importing_the_emulator_does_not_import_torch() -> None:
    code = (
        "import sys, spikeport.emulator as e, spikeport.emulator.engines.dispatch;"
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
