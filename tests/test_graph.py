"""quantize.graph: flattening, ordering, recurrence and typed errors."""

from __future__ import annotations

import nir
import numpy as np
import pytest
from spikeport.quantize.graph.flatten import (
    SUPPORTED_TYPES,
    DanglingEdgeError,
    GraphError,
    NonFiniteError,
    ShapeError,
    UnsupportedNodeError,
    flatten_graph,
)


def lif(n: int, **kw) -> nir.LIF:
    p = {"tau": np.full(n, 0.01), "r": np.ones(n), "v_leak": np.zeros(n), "v_threshold": np.ones(n)}
    p.update(kw)
    return nir.LIF(**p, v_reset=np.zeros(n))


def graph(nodes: dict, edges: list) -> nir.NIRGraph:
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def inp(n) -> nir.Input:
    return nir.Input(input_type={"input": np.atleast_1d(np.asarray(n))})


def out(n) -> nir.Output:
    return nir.Output(output_type={"output": np.atleast_1d(np.asarray(n))})


def recurrent_inner() -> nir.NIRGraph:
    return graph(
        {"input": inp(3), "lif": lif(3), "rec": nir.Linear(weight=np.eye(3)), "output": out(3)},
        [("input", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "output")],
    )


def test_sequential_graph_is_ordered_with_shapes() -> None:
    g = graph(
        {
            "output": out(3),
            "lif": lif(3),
            "aff": nir.Affine(weight=np.ones((3, 4)), bias=np.zeros(3)),
            "input": inp(4),
        },
        [("aff", "lif"), ("input", "aff"), ("lif", "output")],
    )
    flat = flatten_graph(g)
    assert flat.order == ("input", "aff", "lif", "output")
    assert flat.inputs == ("input",) and flat.outputs == ("output",)
    assert flat.nodes["aff"].in_shape == (4,) and flat.nodes["aff"].out_shape == (3,)
    assert flat.nodes["lif"].sources == ("aff",) and flat.recurrent_edges == ()
    assert flat.nodes["lif"].node is g.nodes["lif"]  # never copied


def test_nested_graph_is_inlined_and_cycle_found() -> None:
    g = graph(
        {
            "input": inp(4),
            "aff": nir.Affine(weight=np.ones((3, 4)), bias=np.zeros(3)),
            "sub": recurrent_inner(),
            "output": out(3),
        },
        [("input", "aff"), ("aff", "sub"), ("sub", "output")],
    )
    flat = flatten_graph(g)
    assert flat.order == ("input", "aff", "sub.lif", "sub.rec", "output")
    assert flat.recurrent_edges == (("sub.rec", "sub.lif"),)
    node = flat.nodes["sub.lif"]
    assert node.sources == ("aff", "sub.rec")  # feed-forward first, then recurrent
    assert node.recurrent == ("sub.rec",)
    assert flat.nodes["output"].sources == ("sub.lif",)


def test_edges_into_one_node_are_kept_as_a_multiset() -> None:
    g = graph(
        {
            "input": inp(2),
            "a": nir.Linear(weight=np.eye(2)),
            "b": nir.Linear(weight=np.eye(2)),
            "output": out(2),
        },
        [("input", "a"), ("input", "b"), ("a", "output"), ("b", "output")],
    )
    assert flatten_graph(g).nodes["output"].sources == ("a", "b")


def test_conv_and_pool_shapes_are_inferred() -> None:
    conv = nir.Conv2d(
        input_shape=None,
        weight=np.ones((4, 2, 3, 3)),
        stride=np.array([1, 1]),
        padding=np.array([1, 1]),
        dilation=np.array([1, 1]),
        groups=1,
        bias=np.zeros(4),
    )
    pool = nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
    flatten = nir.Flatten(input_type={"input": None}, start_dim=0, end_dim=-1)
    g = graph(
        {"input": inp([2, 8, 8]), "conv": conv, "pool": pool, "flat": flatten, "output": out(64)},
        [("input", "conv"), ("conv", "pool"), ("pool", "flat"), ("flat", "output")],
    )
    flat = flatten_graph(g)
    assert flat.nodes["conv"].out_shape == (4, 8, 8)
    assert flat.nodes["pool"].out_shape == (4, 4, 4)
    assert flat.nodes["flat"].out_shape == (64,)


def test_dangling_edge() -> None:
    g = graph({"input": inp(2), "output": out(2)}, [("input", "ghost")])
    with pytest.raises(DanglingEdgeError, match="ghost does not exist"):
        flatten_graph(g)


def test_unsupported_node_lists_supported() -> None:
    class Weird(nir.Scale):
        pass

    g = graph(
        {"input": inp(2), "w": Weird(scale=np.ones(2)), "output": out(2)}, [("input", "w"), ("w", "output")]
    )
    with pytest.raises(UnsupportedNodeError, match="unsupported node type Weird; supported: Input") as exc:
        flatten_graph(g)
    assert all(t in str(exc.value) for t in SUPPORTED_TYPES)


def test_shape_mismatch_names_node() -> None:
    g = graph(
        {"input": inp(5), "aff": nir.Affine(weight=np.ones((3, 4)), bias=np.zeros(3)), "output": out(3)},
        [("input", "aff"), ("aff", "output")],
    )
    with pytest.raises(ShapeError, match=r"aff: input of shape \(5,\)"):
        flatten_graph(g)


def test_inconsistent_parameter_shapes() -> None:
    node = lif(3)
    node.r = np.ones(2)  # nir's constructor refuses this; files and later edits do not
    g = graph({"input": inp(3), "lif": node, "output": out(3)}, [("input", "lif"), ("lif", "output")])
    with pytest.raises(ShapeError, match="lif: parameters"):
        flatten_graph(g)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_parameter(bad: float) -> None:
    tau = np.array([0.01, bad, 0.01])
    g = graph(
        {"input": inp(3), "lif": lif(3, tau=tau), "output": out(3)}, [("input", "lif"), ("lif", "output")]
    )
    with pytest.raises(NonFiniteError, match=r"lif\.tau: must be finite"):
        flatten_graph(g)


def test_graph_without_input() -> None:
    with pytest.raises(GraphError, match=r"no nir\.Input"):
        flatten_graph(graph({"output": out(2)}, []))
