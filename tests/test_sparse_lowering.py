"""The quantizer's sparse lowering: convolution and pool matrices built without a dense intermediate
equal torch's (the operator applied to every basis vector), and quantizing a CNN with sparse matrices
gives the same integer network, value for value, as with dense matrices end to end."""

from __future__ import annotations

import nir
import numpy as np
import pytest
from spikeport.emulator.engines.dispatch import run
from spikeport.quantize import quantize
from spikeport.quantize.graph import sparse_linear

torch = pytest.importorskip("torch")


def _torch_matrix(in_shape: tuple[int, int, int], apply: object) -> np.ndarray:
    """The oracle: the operator applied to the identity (one basis vector per input)."""
    n = int(np.prod(in_shape))
    eye = torch.eye(n, dtype=torch.float64).reshape(n, *in_shape)
    with torch.no_grad():
        return apply(eye).reshape(n, -1).numpy().T  # type: ignore[operator]


@pytest.mark.parametrize(
    ("in_shape", "c_out", "k", "stride", "padding", "dilation", "groups"),
    [
        ((2, 9, 7), 3, (3, 3), 1, 1, 1, 1),
        ((4, 10, 10), 4, (5, 3), (2, 1), (2, 0), 1, 2),
        ((3, 11, 8), 6, (3, 2), 2, (1, 2), (2, 1), 3),
        ((1, 6, 6), 2, (1, 1), 3, 0, 1, 1),
    ],
)
def test_conv_matrix_equals_torch(in_shape, c_out, k, stride, padding, dilation, groups) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    w = rng.normal(size=(c_out, in_shape[0] // groups, *k))
    w[rng.random(w.shape) < 0.2] = 0.0
    got = sparse_linear.conv_matrix(
        in_shape, w, stride=stride, padding=padding, dilation=dilation, groups=groups
    )
    wt = torch.as_tensor(w)

    def conv(x):  # type: ignore[no-untyped-def]
        return torch.nn.functional.conv2d(
            x, wt, stride=stride, padding=padding, dilation=dilation, groups=groups
        )

    want = _torch_matrix(in_shape, conv)
    dense = got.toarray() if sparse_linear.is_sparse(got) else got
    np.testing.assert_array_equal(dense, want)


@pytest.mark.parametrize("avg", [False, True])
@pytest.mark.parametrize(("k", "s", "p"), [((2, 2), (2, 2), (0, 0)), ((3, 2), (1, 2), (1, 1))])
def test_pool_matrix_equals_torch(avg: bool, k: tuple, s: tuple, p: tuple) -> None:
    in_shape = (3, 8, 9)
    got = sparse_linear.pool_matrix(in_shape, k, s, p, avg=avg)
    scale = 1.0 if avg else float(k[0] * k[1])
    want = _torch_matrix(in_shape, lambda x: torch.nn.functional.avg_pool2d(x, k, s, p) * scale)
    dense = got.toarray() if sparse_linear.is_sparse(got) else got
    np.testing.assert_allclose(dense, want, rtol=1e-15, atol=0)  # 1/9 vs sum/9: one rounding apart
    np.testing.assert_array_equal(dense != 0, want != 0)


def _lif(shape: tuple[int, ...]) -> nir.LIF:
    return nir.LIF(
        tau=np.full(shape, 5e-3), r=np.full(shape, 5.0), v_leak=np.zeros(shape), v_threshold=np.ones(shape)
    )


def cnn_graph() -> nir.NIRGraph:
    """2x16x16 -> conv 4 (3x3, pad 1) -> LIF -> sum pool 2 -> conv 4 (3x3, pad 1) -> LIF -> flatten ->
    linear 3 -> LIF: the lowered convolutions are 3.5 % and 14 % non-zero (held sparse)."""
    rng = np.random.default_rng(1)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([2, 16, 16])}),
        "c1": nir.Conv2d(input_shape=(16, 16), weight=rng.normal(0, 0.8, (4, 2, 3, 3)), stride=1, padding=1,
                         dilation=1, groups=1, bias=rng.normal(0, 0.1, 4)),
        "l1": _lif((4, 16, 16)),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "c2": nir.Conv2d(input_shape=(8, 8), weight=rng.normal(0, 0.5, (4, 4, 3, 3)), stride=1, padding=1,
                         dilation=1, groups=1, bias=np.zeros(4)),
        "l2": _lif((4, 8, 8)),
        "flat": nir.Flatten(input_type={"input": np.array([4, 8, 8])}, start_dim=0),
        "fc": nir.Linear(weight=rng.normal(0, 0.3, (3, 256))),
        "l3": _lif((3,)),
        "output": nir.Output(output_type={"output": np.array([3])}),
    }  # fmt: skip
    edges = [("input", "c1"), ("c1", "l1"), ("l1", "pool"), ("pool", "c2"), ("c2", "l2"), ("l2", "flat"),
             ("flat", "fc"), ("fc", "l3"), ("l3", "output")]  # fmt: skip
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


@pytest.mark.parametrize("mode", ["fixed", "shift"])
def test_sparse_quantization_equals_dense_quantization(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    sparse_net, _ = quantize(cnn_graph(), "nir", mode=mode)
    monkeypatch.setattr(sparse_linear, "DENSE_FRACTION", -1.0)  # every matrix dense, as before
    dense_net, _ = quantize(cnn_graph(), "nir", mode=mode)
    assert sum(c.is_sparse for c in sparse_net.connections) == 2
    assert not any(c.is_sparse for c in dense_net.connections)
    for a, b in zip(sparse_net.connections, dense_net.connections, strict=True):
        assert (a.name, a.weight_exp, a.sparse, a.delays is None) == (
            b.name,
            b.weight_exp,
            b.sparse,
            b.delays is None,
        )
        np.testing.assert_array_equal(a.dense_weights(), b.dense_weights(), err_msg=a.name)
    for ga, gb in zip(sparse_net.groups, dense_net.groups, strict=True):
        for k, v in ga.integer_fields().items():
            np.testing.assert_array_equal(v, gb.integer_fields()[k], err_msg=f"{ga.name}.{k}")
    x = (np.random.default_rng(2).random((2, 12, 512)) < 0.2).astype(np.int8)
    got, want = run(sparse_net, x, record=("spikes", "v")), run(dense_net, x, record=("spikes", "v"))
    for k in want.outputs:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
