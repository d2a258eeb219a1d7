"""The shared input validators: integer network inputs (emulator, Lava, energy) and float NIR inputs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from spikeport.emulator import InputGroup, LIFGroup, Network, ValidationError
from spikeport.emulator.inputs import network_inputs
from spikeport.quantize.graph.inputs import graph_inputs


def _net(*groups: InputGroup) -> Network:
    h = LIFGroup(name="h", n=1, du=0, dv=0, vth=1, bias_mant=0, bias_exp=0, u0=0, v0=0)
    return Network(inputs=groups, groups=(h,), connections=())


BIN = _net(InputGroup(name="x", n=2))
GRADED = _net(InputGroup(name="g", n=2, num_message_bits=3))


@pytest.mark.parametrize(
    ("net", "x", "match"),
    [
        (BIN, np.array([[0.0, np.nan]]), r"run\.inputs\.x: must be finite \(got nan\)"),
        (BIN, np.array([[0.0, np.inf]]), r"run\.inputs\.x: must be finite \(got inf\)"),
        (BIN, np.array([[0.0, -np.inf]]), r"must be finite \(got -inf\)"),
        (BIN, np.zeros(2), r"run\.inputs\.x: must have shape \(T, 2\) or \(B, T, 2\) \(got \(2,\)\)"),
        (BIN, np.zeros((1, 1, 3, 2)), r"must have shape \(T, 2\) or \(B, T, 2\) \(got \(1, 1, 3, 2\)\)"),
        (BIN, np.zeros((4, 3)), r"must have shape \(T, 2\) or \(B, T, 2\) \(got \(4, 3\)\)"),
        (BIN, np.zeros((4, 2), complex), r"must be numeric \(got dtype complex128\)"),
        (BIN, np.zeros((4, 2), object), r"must be numeric \(got dtype object\)"),
        (BIN, [[0, 1], [1]], r"run\.inputs\.x: must be a rectangular numeric array"),
        (BIN, np.array([[0, -1]]), r"binary input \(num_message_bits=0\) must be 0/1 \(got -1\)"),
        (BIN, np.array([[0.0, 0.5]]), r"must hold integer values \(got 0\.5\)"),
        (BIN, np.zeros((0, 2)), r"batch B and steps T must be >= 1 \(got shape \(1, 0, 2\)\)"),
        (BIN, np.zeros((0, 3, 2)), r"batch B and steps T must be >= 1 \(got shape \(0, 3, 2\)\)"),
        (
            GRADED,
            np.array([[0, -8]]),
            r"run\.inputs\.g: graded payloads must satisfy \|x\| < 2\*\*num_message_bits = 8",
        ),
        (BIN, {"x": np.zeros((2, 2)), "y": np.zeros((2, 2))}, r"unknown input group.*\['y'\]"),
        (BIN, {}, r"run\.inputs: missing input group\(s\) \(got \['x'\]\)"),
    ],
)
def test_network_inputs_refuse_bad_arrays(net: Network, x: Any, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        network_inputs(net, x)


def test_network_inputs_shapes_dtypes_and_caller() -> None:
    out = network_inputs(BIN, np.ones((3, 2), np.float32))
    assert out["x"].shape == (1, 3, 2) and out["x"].dtype == np.int8
    assert network_inputs(GRADED, np.full((2, 3, 2), -7))["g"].dtype == np.int32
    assert network_inputs(GRADED, np.full((3, 2), 0.5), mode="float")["g"].dtype == np.float64
    kept = network_inputs(BIN, np.ones((3, 2), np.int16), cast=False)["x"]
    assert kept.dtype == np.int16
    with pytest.raises(ValidationError, match=r"run_lava\.inputs\.x: binary input"):
        network_inputs(BIN, np.full((3, 2), 2), caller="run_lava")
    with pytest.raises(ValidationError, match=r"fractions only for graded inputs in float mode"):
        network_inputs(BIN, np.full((3, 2), 0.5), mode="float")
    two = _net(InputGroup(name="a", n=1), InputGroup(name="b", n=1))
    with pytest.raises(ValidationError, match=r"must be a mapping name -> array for several input groups"):
        network_inputs(two, np.zeros((3, 1)))
    with pytest.raises(ValidationError, match=r"all input groups must have the same \(B, T\)"):
        network_inputs(two, {"a": np.zeros((3, 1)), "b": np.zeros((4, 1))})


def test_every_integer_caller_uses_the_shared_validator() -> None:
    from spikeport.emulator import run
    from spikeport.lava.backend import normalize_inputs
    from spikeport.report.energy import _inputs

    bad = np.array([[0, -1]])
    for call, who in ((lambda: run(BIN, bad), "run"), (lambda: normalize_inputs(BIN, bad), "run_lava")):
        with pytest.raises(ValidationError, match=rf"{who}\.inputs\.x: binary input .* \(got -1\)"):
            call()
    with pytest.raises(ValidationError, match=r"energy_report\.inputs\.x: must be finite"):
        _inputs(BIN, np.array([[np.nan, 0.0]]))
    assert normalize_inputs(BIN, np.ones((2, 2)))["x"].dtype == np.int64


SHAPES = {"inp": (2, 3)}


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (np.full((1, 2, 6), np.nan), r"q\.inputs\['inp'\]: must be finite \(got nan\)"),
        (np.full((1, 2, 6), np.inf), r"must be finite \(got inf\)"),
        (np.zeros((1, 2, 6), complex), r"must be numeric \(got dtype complex128\)"),
        (np.zeros((1, 2, 6), object), r"must be numeric \(got dtype object\)"),
        (np.zeros(6), r"must have shape \(B, T, 2, 3\) or \(B, T, 6\) or \(T, 6\) \(got \(6,\)\)"),
        (np.zeros((1, 2, 5)), r"q\.inputs\['inp'\]: must have shape .* \(got \(1, 2, 5\)\)"),
        (np.zeros((1, 0, 2, 3)), r"batch B and steps T must be >= 1 \(got shape \(1, 0, 2, 3\)\)"),
        ({"other": np.zeros((1, 2, 6))}, r"q\.inputs: unknown Input node\(s\)"),
        ({}, r"q\.inputs: missing arrays for inputs \['inp'\]"),
    ],
)
def test_graph_inputs_refuse_bad_arrays(x: Any, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        graph_inputs(SHAPES, x, caller="q")


def test_graph_inputs_flatten_keep_dtype_and_batch_rules() -> None:
    out = graph_inputs(SHAPES, np.ones((4, 5, 2, 3), np.float32), caller="q")["inp"]
    assert out.shape == (4, 5, 6) and out.dtype == np.float32
    assert graph_inputs(SHAPES, np.ones((5, 6)), caller="q")["inp"].shape == (1, 5, 6)
    with pytest.raises(ValidationError, match=r"must have shape \(B, T, 2, 3\) or \(B, T, 6\) \(got"):
        graph_inputs(SHAPES, np.ones((5, 6)), caller="q", unbatched=False)
    assert graph_inputs(
        {"a": (1,), "b": (1,)}, {"a": np.ones((1, 2, 1))}, caller="q", require_all=False
    ).keys() == {"a"}
    with pytest.raises(ValidationError, match=r"all inputs must have the same \(B, T\)"):
        graph_inputs({"a": (1,), "b": (1,)}, {"a": np.ones((1, 2, 1)), "b": np.ones((1, 3, 1))}, caller="q")


def test_float_callers_use_the_shared_validator() -> None:
    import nir
    from spikeport.quantize import encode_inputs
    from spikeport.quantize.input_encoding import InputEncoding
    from spikeport.reference.run import run_nir

    enc = {"inp": InputEncoding(n=2, scale=1.0, num_message_bits=0)}
    with pytest.raises(ValidationError, match=r"encode_inputs\.inputs\['inp'\]: must be finite"):
        encode_inputs(enc, np.array([[np.nan, 0.0]]))
    with pytest.raises(
        ValidationError, match=r"encode_inputs\.inputs\['inp'\]: binary input must be 0/1 \(got -1\.0\)"
    ):
        encode_inputs(enc, np.array([[-1.0, 0.0]]))
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([2])}),
            "output": nir.Output(output_type={"output": np.array([2])}),
        },
        edges=[("input", "output")],
    )
    with pytest.raises(ValidationError, match=r"run_nir\.inputs\['input'\]: must be finite"):
        run_nir(graph, np.full((1, 3, 2), np.inf))


def test_shape_errors_show_the_shape_given() -> None:
    with pytest.raises(ValidationError, match=r"or \(T, 6\) \(got \(5, 4\)\)"):
        graph_inputs(SHAPES, np.ones((5, 4)), caller="q")
