"""The one NIR node-spec table and the registries that consult it."""

from __future__ import annotations

import nir
import numpy as np
import pytest
from spikeport.emulator import kernels
from spikeport.emulator.errors import UnsupportedError
from spikeport.quantize import fixed_point as fixed
from spikeport.quantize.graph.flatten import UnsupportedNodeError
from spikeport.quantize.graph.lowering import LINEAR_LOWERINGS, SUPPORTED, quantizable
from spikeport.quantize.graph.node_specs import (
    NEURON_TYPES,
    NODE_SPECS,
    SPIKING_TYPES,
    SUPPORTED_TYPES,
    Registry,
    kinds_with,
)


def test_every_spec_names_a_nir_class_and_its_fields() -> None:
    for kind in NODE_SPECS:
        spec = NODE_SPECS.lookup(kind, kind)
        fields = set(getattr(nir, kind).__dataclass_fields__)
        if spec.role in ("input", "output"):
            assert spec.required == ("shape",)
            continue
        assert set(spec.required) <= fields, kind
        assert {k for k, _ in spec.defaults} <= fields, kind
        assert (spec.neuron is not None) == (spec.role == "neuron")


def test_derived_type_lists() -> None:
    assert NEURON_TYPES == ("I", "IF", "LI", "LIF", "CubaLI", "CubaLIF")
    assert SPIKING_TYPES == ("Threshold", "IF", "LIF", "CubaLIF")
    assert SUPPORTED_TYPES[0] == "Input" and SUPPORTED_TYPES[-1] == "NIRGraph"
    assert kinds_with("structural") == ("Flatten",)
    assert (*sorted(NEURON_TYPES), *sorted(LINEAR_LOWERINGS), "Input", "Output") == SUPPORTED
    assert not quantizable("Threshold") and not quantizable("Conv1d") and quantizable("CubaLI")


def test_unknown_and_subclassed_types_are_refused_with_the_list() -> None:
    class Weird(nir.Scale):
        pass

    with pytest.raises(
        UnsupportedNodeError, match=r"w: unsupported node type Weird; supported: Input, Output"
    ):
        NODE_SPECS.lookup(type(Weird(scale=np.ones(1))).__name__, "w")
    with pytest.raises(
        UnsupportedError, match=r"t: the quantizer does not lower node type Threshold; supported: Affine"
    ):
        LINEAR_LOWERINGS.lookup("Threshold", "t")


def test_registry_register_add_and_duplicates() -> None:
    reg: Registry[int] = Registry("{name}: cannot count {kind}; supported: {supported}", also=("Extra",))
    reg.register("A", "B")(1)
    reg.add("C", 2)
    assert reg.kinds() == ("A", "B", "C") and "B" in reg and reg.lookup("C", "n") == 2
    with pytest.raises(UnsupportedError, match=r"^n: cannot count D; supported: A, B, C, Extra$"):
        reg.lookup("D", "n")
    with pytest.raises(ValueError, match="registered twice"):
        reg.add("A", 3)


def test_reference_steppers_cover_every_type_but_input() -> None:
    from spikeport.reference.steppers import STEPPERS

    assert set(STEPPERS.kinds()) == set(NODE_SPECS.kinds()) - {"Input"}


def test_bias_value_is_the_emulator_kernel() -> None:
    m = np.arange(-4096, 4096, 37)[:, None]
    e = np.arange(-12, 11)[None, :]
    np.testing.assert_array_equal(fixed.bias_value(m, e), kernels.effective_bias(m, e))
