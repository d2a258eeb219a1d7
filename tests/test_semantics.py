"""Semantics: fields, conventions, per-node overrides, dict round trip."""

from __future__ import annotations

import pytest
from spikeport.emulator.errors import UnsupportedError, ValidationError
from spikeport.quantize.semantics import CONVENTIONS, Semantics, semantics


def test_conventions_say_what_each_framework_does() -> None:
    assert {"nir", "snntorch", "norse", "sinabs", "lava"} <= set(CONVENTIONS)
    snn = CONVENTIONS["snntorch"]
    assert (snn.dt, snn.reset, snn.reset_timing, snn.arithmetic) == (1e-4, "subtract", "next_step", "decay")
    norse = CONVENTIONS["norse"]
    assert (norse.synaptic_input, norse.arithmetic, norse.initial_v) == ("jump", "increment", "leak")
    assert CONVENTIONS["sinabs"].multi_spike and CONVENTIONS["sinabs"].threshold == ">="
    assert CONVENTIONS["lava"].synaptic_input == "jump"


def test_overrides_and_none_are_ignored() -> None:
    s = semantics("snntorch", reset="zero", dt=None)
    assert s.reset == "zero" and s.dt == 1e-4 and s.convention == "snntorch"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("reset", "half"),
        ("reset_timing", "later"),
        ("synaptic_input", "x"),
        ("arithmetic", "y"),
        ("initial_v", 3),
    ],
)
def test_bad_field_values_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=f"{field}: must be one of"):
        semantics("nir", **{field: value})


def test_unknown_convention_lists_known() -> None:
    with pytest.raises(
        UnsupportedError,
        match="supported: lava, nir, norse, rockpool, sinabs, snntorch, snntorch_import, spikingjelly",
    ):
        semantics("brian")


def test_per_node_overrides() -> None:
    s = semantics("snntorch", reset="zero", per_node={"a.lif": {"reset_timing": "next_step_hold"}})
    assert s.for_node("a.lif").reset_timing == "next_step_hold"
    assert s.for_node("other") is s
    with pytest.raises(ValidationError, match="cannot override"):
        semantics("nir", per_node={"x": {"dt": 2.0}})
    with pytest.raises(ValidationError, match="reset_timing: must be one of"):
        semantics("nir", per_node={"x": {"reset_timing": "soon"}})


def test_dict_round_trip() -> None:
    s = semantics("norse", dt=5e-4, per_node={"n": {"threshold": ">="}})
    d = s.to_dict()
    assert d["per_node"] == {"n": {"threshold": ">="}}
    assert Semantics.from_dict(d) == s
    with pytest.raises(ValidationError, match="unknown fields"):
        Semantics.from_dict({**d, "colour": 1})
