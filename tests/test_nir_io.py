"""NIR files in and out: exact round trips, legacy repairs, typed errors, stored semantics, inspect."""

from __future__ import annotations

import argparse
import itertools
import json

import h5py
import nir
import numpy as np
import pytest
from spikeport.cli.main import main
from spikeport.nir.io import (
    NIRFileError,
    NIRRepairWarning,
    add_semantics_args,
    read_nir,
    semantics_from_args,
    suggest_convention,
    write_nir,
)
from spikeport.quantize.graph.flatten import DanglingEdgeError, NonFiniteError, UnsupportedNodeError
from spikeport.quantize.semantics import semantics
from spikeport.reference.run import run_nir

R = np.random.default_rng(3)


def _v(n=3):
    return R.normal(size=n)


def every_node() -> dict[str, object]:
    """One node of every supported type (weights random so that equality means something)."""
    pos = lambda n=3: R.uniform(0.001, 0.01, size=n)  # noqa: E731
    return {
        "affine": nir.Affine(weight=R.normal(size=(3, 4)), bias=_v()),
        "linear": nir.Linear(weight=R.normal(size=(3, 3))),
        "scale": nir.Scale(scale=_v()),
        "conv1d": nir.Conv1d(
            input_shape=8,
            weight=R.normal(size=(2, 1, 3)),
            stride=1,
            padding=1,
            dilation=1,
            groups=1,
            bias=_v(2),
        ),
        "conv2d": nir.Conv2d(
            input_shape=(6, 6),
            weight=R.normal(size=(2, 1, 3, 3)),
            stride=np.array([1, 1]),
            padding=np.array([1, 1]),
            dilation=np.array([1, 1]),
            groups=1,
            bias=_v(2),
        ),
        "sumpool": nir.SumPool2d(
            kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])
        ),
        "avgpool": nir.AvgPool2d(
            kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])
        ),
        "flatten": nir.Flatten(input_type={"input": np.array([2, 3, 3])}, start_dim=0, end_dim=-1),
        "delay": nir.Delay(delay=pos()),
        "threshold": nir.Threshold(threshold=_v()),
        "i": nir.I(r=_v()),
        "if": nir.IF(r=_v(), v_threshold=_v(), v_reset=_v()),
        "li": nir.LI(tau=pos(), r=_v(), v_leak=_v()),
        "lif": nir.LIF(tau=pos(), r=_v(), v_leak=_v(), v_threshold=_v(), v_reset=_v()),
        "cubali": nir.CubaLI(tau_syn=pos(), tau_mem=pos(), r=_v(), v_leak=_v(), w_in=_v()),
        "cubalif": nir.CubaLIF(
            tau_syn=pos(), tau_mem=pos(), r=_v(), v_leak=_v(), v_threshold=_v(), v_reset=_v(), w_in=_v()
        ),
    }


def zoo() -> nir.NIRGraph:
    """Every node type in one valid graph, with a nested recurrent subgraph."""
    n = every_node()
    inner = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([3])}),
            "lif": n["lif"],
            "rec": n["linear"],
            "output": nir.Output(output_type={"output": np.array([3])}),
        },
        edges=[("input", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "output")],
        type_check=False,
    )
    nodes = {
        "in_vec": nir.Input(input_type={"input": np.array([4])}),
        "in_img": nir.Input(input_type={"input": np.array([1, 6, 6])}),
        "in_seq": nir.Input(input_type={"input": np.array([1, 8])}),
        "sub": inner,
        "out_vec": nir.Output(output_type={"output": np.array([3])}),
        "out_img": nir.Output(output_type={"output": np.array([18])}),
        "out_seq": nir.Output(output_type={"output": np.array([2, 8])}),
        **{k: v for k, v in n.items() if k not in ("lif", "linear")},
    }
    chain_vec = [
        "in_vec",
        "affine",
        "scale",
        "delay",
        "threshold",
        "i",
        "if",
        "li",
        "cubali",
        "cubalif",
        "sub",
    ]
    edges = [*list(itertools.pairwise(chain_vec)), ("sub", "out_vec")]
    edges += [("in_img", "conv2d"), ("conv2d", "sumpool"), ("sumpool", "flatten"), ("flatten", "out_img")]
    edges += [("conv2d", "avgpool"), ("avgpool", "flatten")]
    edges += [("in_seq", "conv1d"), ("conv1d", "out_seq")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"author": "test"}, type_check=False)


def assert_same(a, b, where="graph") -> None:
    """Plain structural equality of two NIR nodes/graphs (arrays exact, dtypes included)."""
    assert type(a) is type(b), where
    if isinstance(a, nir.NIRGraph):
        assert set(a.nodes) == set(b.nodes), where
        assert sorted(map(tuple, a.edges)) == sorted(map(tuple, b.edges)), where
        for k in a.nodes:
            assert_same(a.nodes[k], b.nodes[k], f"{where}.{k}")
        return
    for field in a.__dataclass_fields__:
        if field in ("output_type", "metadata") or (field == "input_type" and not isinstance(a, nir.Input)):
            continue
        x, y = getattr(a, field), getattr(b, field)
        if isinstance(x, dict):
            for key in x:
                np.testing.assert_array_equal(x[key], y[key], err_msg=f"{where}.{field}")
            continue
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=f"{where}.{field}")
        if isinstance(x, np.ndarray):
            assert np.asarray(y).dtype == x.dtype, f"{where}.{field}"


def test_round_trip_every_node_type_and_nested(tmp_path) -> None:
    graph = zoo()
    sem = semantics("snntorch", reset="zero", per_node={"sub.lif": {"reset_timing": "next_step_hold"}})
    write_nir(tmp_path / "a.nir", graph, sem)
    back, back_sem = read_nir(tmp_path / "a.nir")
    assert_same(graph, back)
    assert back_sem == sem
    assert back.metadata["author"] == "test"
    write_nir(tmp_path / "b.nir", back, back_sem)  # and again: NIR -> spikeport -> NIR is stable
    again, _ = read_nir(tmp_path / "b.nir")
    assert_same(graph, again)


def test_read_files_written_by_nir_itself(tmp_path) -> None:
    graph = nir.NIRGraph.from_list(
        nir.Affine(weight=R.normal(size=(3, 4)), bias=_v()),
        nir.LIF(tau=np.full(3, 0.01), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3)),
    )
    nir.write(str(tmp_path / "n.nir"), graph)
    back, sem = read_nir(tmp_path / "n.nir")
    assert sem is None
    assert_same(graph, back)


def _legacy_file(path, drop: str) -> None:
    graph = nir.NIRGraph.from_list(
        nir.Affine(weight=np.ones((2, 2)), bias=np.zeros(2)),
        nir.CubaLIF(
            tau_syn=np.full(2, 0.01),
            tau_mem=np.full(2, 0.02),
            r=np.ones(2),
            v_leak=np.zeros(2),
            v_threshold=np.ones(2),
            v_reset=np.full(2, 0.3),
            w_in=np.full(2, 2.0),
        ),
    )
    nir.write(str(path), graph)
    with h5py.File(path, "r+") as f:
        del f[f"node/nodes/cubalif/{drop}"]


@pytest.mark.parametrize(("drop", "value"), [("v_reset", 0.0), ("w_in", 1.0)])
def test_legacy_file_is_repaired_with_warning(tmp_path, drop: str, value: float) -> None:
    _legacy_file(tmp_path / "old.nir", drop)
    with pytest.warns(NIRRepairWarning, match=f"cubalif: no {drop}, set to"):
        graph, _ = read_nir(tmp_path / "old.nir")
    np.testing.assert_array_equal(getattr(graph.nodes["cubalif"], drop), np.full(2, value))


@pytest.mark.parametrize("nested", [False, True])
def test_graph_nir_cannot_type_check_loads_with_warning(tmp_path, nested: bool) -> None:
    # A Linear whose declared Output shape disagrees with its weight: nir's inference refuses it, the
    # flat shapes agree in size (3 vs 3x1), so spikeport loads it and says so.
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([2])}),
            "lin": nir.Linear(weight=np.ones((3, 2))),
            "output": nir.Output(output_type={"output": np.array([3, 1])}),
        },
        edges=[("input", "lin"), ("lin", "output")],
        type_check=False,
    )
    if nested:
        graph = nir.NIRGraph(
            nodes={
                "input": nir.Input(input_type={"input": np.array([2])}),
                "sub": graph,
                "output": nir.Output(output_type={"output": np.array([3])}),
            },
            edges=[("input", "sub"), ("sub", "output")],
            type_check=False,
        )
    write_nir(tmp_path / "t.nir", graph)
    with pytest.warns(NIRRepairWarning, match="type inference failed"):
        back, _ = read_nir(tmp_path / "t.nir")
    x = np.ones((1, 2, 2))
    name = "sub.lin" if nested else "lin"
    np.testing.assert_array_equal(
        run_nir(back, x, record=("out",))[f"{name}/out"], np.full((1, 2, 3), 2.0, np.float32)
    )


def test_missing_dataset_names_node_and_field(tmp_path) -> None:
    _legacy_file(tmp_path / "bad.nir", "tau_mem")
    with pytest.raises(NIRFileError, match=r"cubalif \(CubaLIF\): missing dataset 'tau_mem'"):
        read_nir(tmp_path / "bad.nir")


def test_nan_parameter(tmp_path) -> None:
    nir.write(str(tmp_path / "n.nir"), nir.NIRGraph.from_list(nir.Scale(scale=np.array([1.0, np.nan]))))
    with pytest.raises(NonFiniteError, match=r"scale\.scale"):
        read_nir(tmp_path / "n.nir")


def test_dangling_edge_in_file(tmp_path) -> None:
    path = tmp_path / "d.nir"
    nir.write(str(path), nir.NIRGraph.from_list(nir.Scale(scale=np.ones(2))))
    with h5py.File(path, "r+") as f:
        edges = f["node/edges"][()]
        del f["node/edges"]
        f["node/edges"] = np.concatenate([edges, np.array([[b"scale", b"ghost"]], dtype=edges.dtype)])
    with pytest.raises(DanglingEdgeError, match="ghost"):
        read_nir(path)


def test_unknown_node_type(tmp_path) -> None:
    path = tmp_path / "u.nir"
    nir.write(str(path), nir.NIRGraph.from_list(nir.Scale(scale=np.ones(2))))
    with h5py.File(path, "r+") as f:
        del f["node/nodes/scale/type"]
        f["node/nodes/scale/type"] = "MaxPool2d"
    with pytest.raises(UnsupportedNodeError, match="scale: unsupported node type MaxPool2d; supported"):
        read_nir(path)


def test_not_hdf5_and_truncated(tmp_path) -> None:
    (tmp_path / "x.nir").write_text("hello")
    with pytest.raises(NIRFileError, match="cannot be read as HDF5"):
        read_nir(tmp_path / "x.nir")
    write_nir(tmp_path / "full.nir", zoo())
    data = (tmp_path / "full.nir").read_bytes()
    (tmp_path / "cut.nir").write_bytes(data[: len(data) // 2])
    with pytest.raises(NIRFileError):
        read_nir(tmp_path / "cut.nir")
    with pytest.raises(NIRFileError, match=r"missing\.nir: no such file"):
        read_nir(tmp_path / "missing.nir")


def test_suggest_convention_from_parameters() -> None:
    tau = np.full(2, 1e-4 / 0.1)
    snn_like = nir.NIRGraph.from_list(
        nir.LIF(tau=tau, r=tau / 1e-4, v_leak=np.zeros(2), v_threshold=np.ones(2)), type_check=False
    )
    assert suggest_convention(snn_like)[0] == "snntorch"
    assert "dt = 1e-4" in suggest_convention(snn_like)[1]
    norse_like = nir.NIRGraph.from_list(
        nir.LIF(tau=np.full(2, 0.01), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2)),
        type_check=False,
    )
    assert suggest_convention(norse_like)[0] == "norse"
    norse_like.metadata = {"spikeport.semantics": json.dumps(semantics("lava").to_dict())}
    assert suggest_convention(norse_like) == ("lava", "stored in the file's metadata (spikeport.semantics)")


def test_semantics_args_override_every_field() -> None:
    p = argparse.ArgumentParser()
    add_semantics_args(p)
    args = p.parse_args(
        ["--semantics", "snntorch", "--reset", "zero", "--dt", "0.002", "--threshold", ">=", "--multi-spike"]
    )
    sem = semantics_from_args(args)
    assert (sem.convention, sem.reset, sem.dt, sem.threshold, sem.multi_spike) == (
        "snntorch",
        "zero",
        0.002,
        ">=",
        True,
    )
    assert sem.reset_timing == "next_step"  # untouched fields keep the convention's value
    assert semantics_from_args(p.parse_args([])) is None
    stored = semantics("norse")
    assert (
        semantics_from_args(p.parse_args(["--reset-timing", "next_step"]), stored).reset_timing == "next_step"
    )
    assert semantics_from_args(p.parse_args(["--reset-timing", "next_step"]), stored).convention == "norse"


def test_cli_inspect_text_and_json(tmp_path, capsys) -> None:
    write_nir(tmp_path / "z.nir", zoo(), semantics("norse"))
    assert main(["inspect", str(tmp_path / "z.nir")]) == 0
    text = capsys.readouterr().out
    assert "sub.lif" in text and "CubaLIF" in text and "recurrent edge: sub.rec -> sub.lif" in text
    assert "suggested convention: norse" in text
    assert main(["inspect", str(tmp_path / "z.nir"), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    by_name = {n["name"]: n for n in rep["nodes"]}
    assert by_name["conv2d"]["out_shape"] == [2, 6, 6]
    assert by_name["affine"]["params"]["weight"]["shape"] == [3, 4]
    assert rep["suggested_convention"]["name"] == "norse" and rep["warnings"] == []


def test_cli_inspect_warns_on_unstable_time_constant(tmp_path, capsys) -> None:
    lif = nir.LIF(tau=np.full(2, 1e-4), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2))
    write_nir(tmp_path / "s.nir", nir.NIRGraph.from_list(lif, type_check=False), semantics("norse"))
    assert main(["inspect", str(tmp_path / "s.nir")]) == 0
    assert "warning: lif.tau: dt/tau = 10 > 1" in capsys.readouterr().out


def test_cli_inspect_bad_file_is_a_clean_error(tmp_path, capsys) -> None:
    (tmp_path / "x.nir").write_text("nope")
    assert main(["inspect", str(tmp_path / "x.nir")]) == 2
    assert "cannot be read as HDF5" in capsys.readouterr().err
