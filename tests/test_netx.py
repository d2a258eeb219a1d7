"""lava-dl netx files: reading reproduces lava-dl's own ground truths and a Lava run of the same file
through lava-dl's netx bit for bit; writing is refused for what netx cannot express, and what it
writes loads in lava-dl and runs there exactly as on the emulator."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import h5py
import numpy as np
import pytest
from spikeport.emulator.engines.dispatch import run
from spikeport.emulator.errors import UnsupportedError, ValidationError
from spikeport.emulator.network import Connection, InputGroup, LIFGroup, Network, SigmaDeltaGroup
from spikeport.netx import layout, weights
from spikeport.netx.read import read_netx
from spikeport.netx.write import write_netx

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "netx"
needs_data = pytest.mark.skipif(
    not (DATA / "tiny.net").is_file(), reason=f"netx test data not found at {DATA}"
)
HAVE_LAVA_DL = (
    importlib.util.find_spec("lava") is not None
    and (
        Path(importlib.util.find_spec("lava").submodule_search_locations[0]) / "lib" / "dl" / "netx"  # type: ignore[union-attr,index]
    ).is_dir()
)
needs_lava_dl = pytest.mark.skipif(not HAVE_LAVA_DL, reason="lava-dl 0.6.0 is not installed (make setup)")
TINY_STEPS = 20


def _slayer_to_lava(a: np.ndarray) -> np.ndarray:
    """lava-dl ground truth ``(1, C, H, W, T)`` -> ``(T, n)`` in spikeport's neuron order."""
    a = a[0].transpose(2, 1, 0, 3)
    return a.reshape(-1, a.shape[-1]).T


def _tiny() -> tuple[Network, dict[str, np.ndarray]]:
    bias = np.load(DATA / "tinynet" / "input_bias.npy")
    net = read_netx(DATA / "tiny.net", reset_interval=17, input_bias=bias)
    res = run(net, np.zeros((TINY_STEPS, 768), np.int8), record=("spikes", "u", "v"))
    return net, {k: v[0] for k, v in res.outputs.items()}


def _emulate(net: Network, steps: int, x: np.ndarray | None = None) -> dict[str, np.ndarray]:
    if x is None:
        x = np.zeros((steps, net.inputs[0].n), np.int32)
    lif = any(isinstance(g, LIFGroup) for g in net.groups)
    sd = any(isinstance(g, SigmaDeltaGroup) for g in net.groups)
    record = ("spikes",) + (("u", "v") if lif else ()) + (("sigma", "act", "residue") if sd else ())
    res = run(net, x, record=record)
    return {k: v[0] for k, v in res.outputs.items()}


# ---------------------------------------------------------------- reading


@needs_data
def test_tinynet_structure() -> None:
    net, _ = _tiny()
    assert [(g.name, g.n) for g in net.groups] == [("layer0", 768), ("layer1", 864), ("layer2", 36)]
    assert [(c.source, c.target) for c in net.connections] == [("layer0", "layer1"), ("layer1", "layer2")]
    g0, g1 = net.groups[0], net.groups[1]
    assert isinstance(g0, LIFGroup) and isinstance(g1, LIFGroup)
    assert (g0.du, g0.dv, g0.vth, int(g0.bias_exp[0])) == (4095, 1024, 25, 6)
    assert [(g.reset_interval, g.reset_offset) for g in net.groups] == [(17, 1), (17, 2), (17, 3)]
    # conv bias is per channel, the last axis of Lava's (x, y, z)
    b1 = np.load(DATA / "tinynet" / "layer1_bias.npy")
    np.testing.assert_array_equal(g1.bias_mant.reshape(6, 6, 24), np.broadcast_to(b1, (6, 6, 24)))
    assert net.metadata["netx"]["input_transform"] == {"weight": 36, "bias": 34}


@needs_data
def test_tinynet_reproduces_lava_dl_ground_truths() -> None:
    """lava-dl's gts (slayer order, index k): input spikes at emulator step k, layer1 current
    (u / 64) at step k + 1, layer1 spikes at step k + 1, output at step k + 2 (lava-dl's own test
    compares k = 1..15, as here; its slayer run differs from Lava at k = 0)."""
    _, out = _tiny()
    gts = DATA / "tinynet"
    k = np.arange(1, 16)
    np.testing.assert_array_equal(out["layer0/spikes"][k - 1], _slayer_to_lava(np.load(gts / "input.npy"))[k])
    np.testing.assert_array_equal(out["layer1/spikes"][k], _slayer_to_lava(np.load(gts / "layer1.npy"))[k])
    np.testing.assert_array_equal(
        out["layer2/spikes"][k + 1], _slayer_to_lava(np.load(gts / "output.npy"))[k]
    )
    current = _slayer_to_lava(np.load(gts / "current.npy"))
    np.testing.assert_array_equal(out["layer1/u"][:16], current * 64)
    assert out["layer2/spikes"].sum() > 50  # the comparison is not one of silent layers


@needs_data
def test_tinynet_kernel_matches_ground_truth_kernel() -> None:
    """The conv matrix holds lava-dl's exported kernel (layer1_kernel.npy is Lava's (out, W, H, in)
    after netx's flip)."""
    net, _ = _tiny()
    geo = layout.ConvGeometry((3, 16, 16), 24, (5, 5), (2, 2), (0, 0), (1, 1), 1)
    c = net.connections[0]
    r = weights.real_weights(c.weights, c.weight_exp, c.num_weight_bits, "layer1")
    kernel = layout.conv_kernel(geo, r, "layer1")  # torch (out, in, kH, kW)
    lava_kernel = np.load(DATA / "tinynet" / "layer1_kernel.npy")
    np.testing.assert_array_equal(kernel[:, :, ::-1, ::-1].transpose(0, 3, 2, 1), lava_kernel)


@needs_data
def test_mnist_net_structure() -> None:
    net = read_netx(DATA / "mnist.net")
    assert [g.n for g in net.groups] == [784, 512, 512, 10]
    out = net.groups[-1]
    assert isinstance(out, LIFGroup)
    assert (out.du, out.dv, out.vth) == (-1, 4096, 1 << 17)  # netx's layer without neuron
    with h5py.File(DATA / "mnist.net") as f:
        w = f["layer/1/weight"][()].astype(int)
    c = net.connections[0]
    np.testing.assert_array_equal(weights.real_weights(c.weights, c.weight_exp, c.num_weight_bits, "l"), w)


def test_refuses_layers_netx_refuses(tmp_path: Path) -> None:
    path = tmp_path / "pool.net"
    with h5py.File(path, "w") as f:
        f.create_dataset("layer/0/type", data=np.array([b"input"]))
        f.create_dataset("layer/0/shape", data=np.array([4]))
        f.create_dataset("layer/1/type", data=np.array([b"average"]))
    with pytest.raises(UnsupportedError, match=r"layer1: netx layer type 'average'"):
        read_netx(path)


# ---------------------------------------------------------------- netx weight semantics


@pytest.mark.parametrize(
    ("w", "expect"),
    [
        ([[3, -5], [127, 0]], [[3, -5], [127, 0]]),
        ([[300, -5], [1, 0]], [[254, -5], [1, 0]]),  # netx clips mixed weights to 254
        ([[-1, -2]], [[-1, -1]]),  # inhibitory: netx scales -2 to -256, Lava clips it to -255
        ([[201, -199], [-256, 3]], [[201, -199], [-256, 3]]),  # odd weights above 128: split in parts
    ],
)
def test_lava_dense_weights(w: list[list[int]], expect: list[list[int]]) -> None:
    parts, _ = weights.lava_dense_parts(np.array(w), "l")
    r = sum(weights.real_weights(p.weights, p.weight_exp, p.num_weight_bits, "l") for p in parts)
    np.testing.assert_array_equal(r, np.array(expect))


# ---------------------------------------------------------------- equal to lava-dl's netx on Lava


def _assert_lava_equal(
    net: Network, path: Path, steps: int, x: np.ndarray | None = None, **kw: object
) -> int:
    """Every layer's recorded Lava variables (u, v, sigma, act, residue, and the output port) equal
    the emulator's; returns the number of nonzero outputs compared (so a silent run cannot pass)."""
    from spikeport.netx.lava_dl import run_netx_lava

    lava = run_netx_lava(path, steps, inputs=x, **kw)  # type: ignore[arg-type]
    emu = _emulate(net, steps, None if x is None else x.astype(np.int32))
    sigma_out = set(net.metadata.get("netx", {}).get("sigma_output", ()))
    assert len(lava) == len(net.groups)
    active = 0
    for g, layer in zip(net.groups, lava, strict=True):
        for var, got in layer.items():
            mine = "sigma" if var == "spikes" and g.name in sigma_out else var
            np.testing.assert_array_equal(got, emu[f"{g.name}/{mine}"], err_msg=f"{g.name}/{var}")
        active += int(np.count_nonzero(layer["spikes"]))
    return active


@pytest.mark.lava
@needs_data
@needs_lava_dl
def test_tinynet_equals_lava_dl_netx_every_layer() -> None:
    bias = np.load(DATA / "tinynet" / "input_bias.npy")
    net = read_netx(DATA / "tiny.net", reset_interval=17, input_bias=bias)
    assert _assert_lava_equal(net, DATA / "tiny.net", TINY_STEPS, reset_interval=17, input_bias=bias) > 100


@pytest.mark.lava
@needs_data
@needs_lava_dl
def test_mnist_net_equals_lava_dl_netx_every_layer() -> None:
    """CUBA input neuron, three dense layers, the last without neuron (netx's integrator, du = -1)."""
    bias = np.random.default_rng(1).integers(0, 200, size=784)
    net = read_netx(DATA / "mnist.net", input_bias=bias)
    assert _assert_lava_equal(net, DATA / "mnist.net", 12, input_bias=bias) > 100


# ---------------------------------------------------------------- writing


def _same(a: Network, b: Network) -> None:
    """Record-by-record equality (records compare by identity, so field by field here)."""
    import dataclasses

    ra, rb = (*a.inputs, *a.groups, *a.connections), (*b.inputs, *b.groups, *b.connections)
    assert [(type(x).__name__, x.name) for x in ra] == [(type(y).__name__, y.name) for y in rb]
    for x, y in zip(ra, rb, strict=True):
        for f in dataclasses.fields(x):
            u, v = getattr(x, f.name), getattr(y, f.name)
            if isinstance(u, np.ndarray) or isinstance(v, np.ndarray):
                assert u is not None and v is not None, (x.name, f.name)
                np.testing.assert_array_equal(u, v, err_msg=f"{x.name}.{f.name}")
            else:
                assert u == v, (x.name, f.name, u, v)


def _lif(name: str, n: int, rng: np.random.Generator, **kw: object) -> LIFGroup:
    fields: dict[str, object] = dict(du=1024, dv=512, vth=40, bias_exp=6, u0=0, v0=0)
    fields.update(kw)
    return LIFGroup(name=name, n=n, bias_mant=rng.integers(-2, 6, n), **fields)  # type: ignore[arg-type]


def _conn(name: str, src: str, tgt: str, w: np.ndarray, **kw: object) -> list[Connection]:
    parts = weights.connection_parts(w, name)
    return [
        Connection(
            name=f"{name}{p.suffix}",
            source=src,
            target=tgt,
            weights=p.weights,
            weight_exp=p.weight_exp,
            num_weight_bits=p.num_weight_bits,
            **kw,  # type: ignore[arg-type]
        )
        for p in parts
    ]


def _dense_net(rec: bool = False) -> Network:
    """input(12) -> layer1 LIF(10, delays up to 5; or recurrent) -> layer2 LIF(6); odd weights above
    128 make layer1 a split connection."""
    rng = np.random.default_rng(7)
    w1 = rng.integers(-200, 230, (10, 12))
    w1[0, 0], w1[1, 1] = 201, -199
    conns = _conn("layer1", "input", "layer1", w1, delays=None if rec else rng.integers(0, 6, (10, 12)))
    if rec:
        conns += _conn("layer1_rec", "layer1", "layer1", rng.integers(-60, 60, (10, 10)))
    conns += _conn("layer2", "layer1", "layer2", rng.integers(-40, 90, (6, 10)))
    return Network(
        inputs=(InputGroup(name="input", n=12),),
        groups=(_lif("layer1", 10, rng), _lif("layer2", 6, rng, du=4095, dv=0)),
        connections=conns,
    )


def _sdnn_net() -> Network:
    """graded input (16 bits) -> layer1 SigmaDelta ReLU -> layer2 Sigma (unit, the output)."""
    rng = np.random.default_rng(3)
    groups = (
        SigmaDeltaGroup(name="layer1", n=9, vth=3, bias=rng.integers(-2, 3, 9), spike_exp=6, state_exp=6),
        SigmaDeltaGroup(name="layer2", n=4, vth=0, bias=0, act_mode="unit"),
    )
    conns = _conn("layer1", "input", "layer1", rng.integers(-90, 100, (9, 7)), num_message_bits=16)
    conns += _conn("layer2", "layer1", "layer2", rng.integers(-50, 60, (4, 9)), num_message_bits=16)
    return Network(
        inputs=(InputGroup(name="input", n=7, num_message_bits=16),),
        groups=groups,
        connections=conns,
        metadata={"netx": {"sigma_output": ["layer2"]}},
    )


def _spikes(steps: int, n: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((steps, n)) < 0.4).astype(np.int8)


@pytest.mark.parametrize("rec", [False, True])
def test_round_trip_dense(tmp_path: Path, rec: bool) -> None:
    net = _dense_net(rec)
    assert len(net.incoming("layer1")) >= 2 + rec  # the split connection is exercised
    _same(read_netx(write_netx(net, tmp_path / "d.net")), net)


def test_round_trip_sdnn(tmp_path: Path) -> None:
    net = _sdnn_net()
    _same(read_netx(write_netx(net, tmp_path / "s.net")), net)


@needs_data
@pytest.mark.parametrize("name", ["tiny.net", "mnist.net"])
def test_round_trip_lava_dl_files(tmp_path: Path, name: str) -> None:
    kw = {"reset_interval": 17} if name == "tiny.net" else {}
    net = read_netx(DATA / name, **kw)  # type: ignore[arg-type]
    back = read_netx(write_netx(net, tmp_path / name), **kw)  # type: ignore[arg-type]
    _same(back, net)
    assert back.metadata["netx"]["layers"] == net.metadata["netx"]["layers"]


def _refusal(net: Network, tmp_path: Path, match: str) -> None:
    with pytest.raises(UnsupportedError, match=match):
        write_netx(net, tmp_path / "x.net")
    assert not list(tmp_path.iterdir())  # nothing written half-way


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"reset": "subtract"}, r"LIFGroup\('layer1'\)\.reset='subtract'"),
        ({"refractory": 2}, r"\.refractory=2"),
        ({"bias_exp": 3}, r"\.bias_exp: netx fixes bias_exp = 6"),
        ({"v0": 5}, r"\.u0/v0"),
        (
            {"reset_interval": 10, "reset_offset": 7},
            r"reset_interval: netx resets every layer with one interval",
        ),
    ],
)
def test_write_refuses_neurons_by_name(tmp_path: Path, change: dict[str, object], match: str) -> None:
    import dataclasses

    net = _dense_net()
    g1 = dataclasses.replace(net.groups[0], **change)  # type: ignore[arg-type]
    _refusal(dataclasses.replace(net, groups=(g1, net.groups[1])), tmp_path, match)


def test_write_refuses_structures_by_name(tmp_path: Path) -> None:
    import dataclasses

    net = _dense_net()
    skip = Connection(name="skip", source="input", target="layer2", weights=np.ones((6, 12)))
    _refusal(
        dataclasses.replace(net, connections=(*net.connections, skip)),
        tmp_path,
        r"layer2: netx layers form a chain",
    )
    w2 = np.array([[255, -3] + [1] * 8] * 6)  # mixed weights of 255: netx clips them to 254
    odd = _conn("layer2", "layer1", "layer2", w2)
    clipped = dataclasses.replace(net, connections=(*net.incoming("layer1"), *odd))
    _refusal(
        clipped,
        tmp_path,
        r"layer2: netx's optimize_weight_bits and Lava's Dense would turn .* = 255 into 254",
    )
    far = [dataclasses.replace(c, delays=np.full((10, 12), 63)) for c in net.incoming("layer1")]
    _refusal(
        dataclasses.replace(net, connections=(*far, *net.incoming("layer2"))),
        tmp_path,
        r"netx clips delays to 62",
    )


@pytest.mark.lava
@needs_lava_dl
@pytest.mark.parametrize("rec", [False, True], ids=["dense_delays", "dense_rec"])
def test_written_dense_runs_in_lava_dl_as_on_emulator(tmp_path: Path, rec: bool) -> None:
    net = _dense_net(rec)
    path = write_netx(net, tmp_path / "d.net")
    assert _assert_lava_equal(net, path, 25, _spikes(25, 12)) > 20


@pytest.mark.lava
@needs_lava_dl
def test_written_sdnn_runs_in_lava_dl_as_on_emulator(tmp_path: Path) -> None:
    net = _sdnn_net()
    path = write_netx(net, tmp_path / "s.net")
    x = np.random.default_rng(5).integers(-300, 400, (15, 7))
    assert _assert_lava_equal(net, path, 15, x, input_message_bits=16) > 20


@pytest.mark.lava
@needs_data
@needs_lava_dl
def test_written_conv_runs_in_lava_dl_as_on_emulator(tmp_path: Path) -> None:
    """tiny.net's conv layers, written back by spikeport, with an input bias that differs from the
    ground truth's."""
    bias = np.random.default_rng(2).integers(0, 70, 768)
    net = read_netx(DATA / "tiny.net", input_bias=bias)
    path = write_netx(net, tmp_path / "c.net")
    assert _assert_lava_equal(net, path, 12, input_bias=bias.reshape(16, 16, 3)) > 20


# ---------------------------------------------------------------- convolution geometry


@pytest.mark.parametrize(
    ("stride", "padding", "dilation", "groups"),
    [((1, 1), (0, 0), (1, 1), 1), ((2, 1), (1, 2), (1, 1), 2), ((1, 2), (2, 1), (2, 1), 4)],
)
def test_conv_matrix_is_torch_conv2d(
    stride: tuple[int, int], padding: tuple[int, int], dilation: tuple[int, int], groups: int
) -> None:
    """Independent oracle: torch's conv2d on a (C, H, W) input, read in spikeport's neuron order."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    geo = layout.ConvGeometry((4, 7, 9), 8, (3, 2), stride, padding, dilation, groups)
    w = rng.integers(-9, 10, (8, 4 // groups, 3, 2))
    x = rng.integers(0, 3, (4, 7, 9))
    want = torch.nn.functional.conv2d(
        torch.tensor(x[None], dtype=torch.float64),
        torch.tensor(w, dtype=torch.float64),
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
    )[0].numpy()
    m = layout.conv_matrix(geo, w)
    got = m @ x.transpose(2, 1, 0).reshape(-1)  # (x, y, z) order in, (x, y, z) order out
    np.testing.assert_array_equal(got, want.transpose(2, 1, 0).reshape(-1).astype(np.int64))
    assert want.shape == geo.out_shape
    np.testing.assert_array_equal(layout.conv_kernel(geo, m, "c"), w)


def _conv_net() -> Network:
    """input (2, 6, 6) -> conv 4 x 3x3, padding 1, groups 2 (LIF) -> flatten -> dense 5 (LIF)."""
    rng = np.random.default_rng(11)
    geo = layout.ConvGeometry((2, 6, 6), 4, (3, 3), (1, 1), (1, 1), (1, 1), 2)
    m = layout.conv_matrix(geo, rng.integers(-20, 40, (4, 1, 3, 3)))
    wd = rng.integers(-30, 50, (5, 144))
    layers = [
        {"index": 0, "type": "input", "shape": [2, 6, 6]},
        {
            "index": 1,
            "type": "conv",
            "shape": [4, 6, 6],
            "group": "layer1",
            "neuron": "CUBA",
            "stride": [1, 1],
        }
        | {"padding": [1, 1], "dilation": [1, 1], "groups": 2, "kernel": [3, 3]},
        {"index": 2, "type": "flatten"},
        {"index": 3, "type": "dense", "shape": [5], "group": "layer3", "neuron": "CUBA"},
    ]
    rng2 = np.random.default_rng(12)
    return Network(
        inputs=(InputGroup(name="input", n=72),),
        groups=(_lif("layer1", 144, rng2), _lif("layer3", 5, rng2)),
        connections=(*_conn("layer1", "input", "layer1", m), *_conn("layer3", "layer1", "layer3", wd)),
        metadata={"netx": {"layers": layers}},
    )


def test_round_trip_conv_with_padding_groups_and_flatten(tmp_path: Path) -> None:
    net = _conv_net()
    back = read_netx(write_netx(net, tmp_path / "c.net"))
    _same(back, net)
    assert [e["type"] for e in back.metadata["netx"]["layers"]] == ["input", "conv", "flatten", "dense"]


@pytest.mark.lava
@needs_lava_dl
def test_written_padded_grouped_conv_runs_in_lava_dl_as_on_emulator(tmp_path: Path) -> None:
    net = _conv_net()
    path = write_netx(net, tmp_path / "c.net")
    assert _assert_lava_equal(net, path, 15, _spikes(15, 72, seed=4)) > 20


# ---------------------------------------------------------------- lava-dl's own ground truths (wheel)


def _lava_dl_gts() -> Path | None:
    """lava-dl's wheel ships its netx tests and ground truths next to the ``lava`` package."""
    spec = importlib.util.find_spec("lava")
    if spec is None or not spec.submodule_search_locations:
        return None
    gts = (
        Path(next(iter(spec.submodule_search_locations))).parent
        / "tests"
        / "lava"
        / "lib"
        / "dl"
        / "netx"
        / "gts"
    )
    return gts if (gts / "ntidigits" / "ntidigits.net").is_file() else None


NTIDIGITS = _lava_dl_gts()
needs_ntidigits = pytest.mark.skipif(
    NTIDIGITS is None, reason="lava-dl's wheel ground truths are not installed"
)


@needs_ntidigits
def test_ntidigits_axonal_delays_reproduce_lava_dl_ground_truth() -> None:
    """ntidigits.net (64 -> 256 -> 256 -> 242 LOIHI, per-neuron axonal delays up to 62 after netx's clip;
    its last layer, ``average``, is one netx refuses, so 5 layers are read as lava-dl's test does):
    all 3000 steps, all 242 outputs equal the ground truth, which is stored one step later."""
    assert NTIDIGITS is not None
    d = NTIDIGITS / "ntidigits"
    with pytest.raises(UnsupportedError, match=r"layer5: netx layer type 'average'"):
        read_netx(d / "ntidigits.net")
    net = read_netx(d / "ntidigits.net", num_layers=5)
    assert [c.max_delay for c in net.connections] == [62, 62, 0]
    x = np.load(d / "input.npy").T.astype(np.int8)
    gt = np.load(d / "output.npy").T.astype(np.int8)
    out = run(net, x).outputs["layer4/spikes"][0]
    np.testing.assert_array_equal(out[:-1], gt[1:])
    assert gt.sum() > 20000


@pytest.mark.lava
@pytest.mark.slow
@needs_lava_dl
@needs_ntidigits
def test_ntidigits_equals_lava_dl_netx_every_layer() -> None:
    assert NTIDIGITS is not None
    d = NTIDIGITS / "ntidigits"
    net = read_netx(d / "ntidigits.net", num_layers=5)
    x = np.load(d / "input.npy").T[:40].astype(np.int8)
    assert _assert_lava_equal(net, d / "ntidigits.net", 40, x, num_layers=5) > 0


def _sdnn_delta_net() -> Network:
    """SDNN input layer (Lava's Delta, left undriven as netx leaves it) -> SigmaDelta driven by its
    bias -> Sigma output: the bias makes the deltas flow."""
    rng = np.random.default_rng(9)
    delta = SigmaDeltaGroup(
        name="layer0", n=5, vth=2, bias=np.zeros(5), act_mode="unit", spike_exp=6, state_exp=6
    )
    hidden = SigmaDeltaGroup(name="layer1", n=6, vth=1, bias=rng.integers(1, 9, 6), spike_exp=6, state_exp=6)
    out = SigmaDeltaGroup(name="layer2", n=3, vth=0, bias=np.zeros(3), act_mode="unit")
    return Network(
        inputs=(InputGroup(name="input", n=5),),
        groups=(delta, hidden, out),
        connections=(
            *_conn("layer1", "layer0", "layer1", rng.integers(-40, 60, (6, 5)), num_message_bits=16),
            *_conn("layer2", "layer1", "layer2", rng.integers(-30, 50, (3, 6)), num_message_bits=16),
        ),
        metadata={"netx": {"sigma_output": ["layer2"]}},
    )


def test_round_trip_sdnn_with_delta_input(tmp_path: Path) -> None:
    net = _sdnn_delta_net()
    _same(read_netx(write_netx(net, tmp_path / "s.net")), net)


@pytest.mark.lava
@needs_lava_dl
def test_written_sdnn_with_delta_input_runs_in_lava_dl_as_on_emulator(tmp_path: Path) -> None:
    net = _sdnn_delta_net()
    path = write_netx(net, tmp_path / "s.net")
    assert _assert_lava_equal(net, path, 10) > 10


@needs_data
def test_summary_names_layers_groups_and_the_unapplied_transform() -> None:
    from spikeport.netx import is_netx, summary
    from spikeport.netx.summary import format_summary

    s = summary(DATA / "mnist.net")
    assert [(e["type"], e.get("group"), e["neurons"]) for e in s["layers"]] == [
        ("input", "layer0", 784),
        ("dense", "layer1", 512),
        ("dense", "layer2", 512),
        ("dense", "layer3", 10),
    ]
    assert s["layers"][3]["neuron"] is None and s["input_transform"] == {"weight": 76, "bias": 64}
    assert "netx does not apply it" in format_summary(s)
    assert is_netx(DATA / "tiny.net") and not is_netx(DATA / "tinynet" / "input.npy")


@needs_data
def test_sp_run_without_inputs_runs_a_bias_driven_netx_network() -> None:
    import spikeport as sp

    bias = np.load(DATA / "tinynet" / "input_bias.npy")
    net = sp.read_netx(DATA / "tiny.net", reset_interval=17, input_bias=bias)
    res = sp.run(net, None, steps=TINY_STEPS, record=("spikes", "u", "v"))
    _, want = _tiny()
    for key, value in want.items():
        np.testing.assert_array_equal(res.outputs[key][0], value, err_msg=key)
    with pytest.raises(ValidationError, match=r"sp\.run\.steps: an integer >= 1 when inputs is None"):
        sp.run(net, None)
    with pytest.raises(ValidationError, match=r"sp\.run\.steps: only with inputs=None"):
        sp.run(net, np.zeros((3, 768), np.int8), steps=3)
