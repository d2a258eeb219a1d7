"""The integer network records: frozen, keyword-only, validated, never aliasing caller arrays."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from spikeport.emulator import (
    Connection,
    InputGroup,
    LIFGroup,
    Network,
    SigmaDeltaGroup,
    TernaryLIFGroup,
    ValidationError,
)


def lif(name: str = "h", n: int = 3, **kw: object) -> LIFGroup:
    args: dict[str, object] = dict(
        name=name, n=n, du=100, dv=200, vth=50, bias_mant=0, bias_exp=0, u0=0, v0=0
    )
    args.update(kw)
    return LIFGroup(**args)  # type: ignore[arg-type]


def test_positional_construction_is_refused() -> None:
    with pytest.raises(TypeError):
        LIFGroup("h", 3, 1, 1, 1, 0, 0, 0, 0)  # type: ignore[misc]


def test_records_are_frozen_and_arrays_read_only() -> None:
    bias = np.array([1, 2, 3])
    g = lif(bias_mant=bias)
    bias[0] = 99  # the record holds a copy
    assert g.bias_mant[0] == 1
    with pytest.raises(ValueError):
        g.bias_mant[0] = 5
    with pytest.raises(dataclasses.FrozenInstanceError):
        g.du = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"du": 4096}, r"LIFGroup\('h'\)\.du: must be in \[-1, 4095\] \(got 4096\)"),
        ({"du": -2}, r"LIFGroup\('h'\)\.du: must be in \[-1, 4095\] \(got -2\)"),
        ({"dv": -1}, r"\.dv: must be in \[0, 4096\] \(got -1\)"),
        ({"dv": 4097}, r"\.dv: must be in \[0, 4096\] \(got 4097\)"),
        ({"vth": 2**17 + 1}, r"\.vth: must be in \[0, 131072\] \(got 131073\)"),
        ({"bias_mant": [0, 4096, 0]}, r"\.bias_mant: must be in \[-4096, 4095\] \(got 4096\)"),
        ({"bias_exp": [0, 0, -13]}, r"\.bias_exp: must be in \[-12, 10\] \(got -13\)"),
        ({"v0": [2**23, 0, 0]}, r"\.v0: must be in \[-8388607, 8388607\] \(got 8388608\)"),
        ({"u0": [0, 1]}, r"\.u0: must have shape \(3,\) \(got \(2,\)\)"),
        ({"reset": "soft"}, r"\.reset: must be one of \('zero', 'subtract'\) \(got 'soft'\)"),
        ({"reset_interval": 4, "reset_offset": 4}, r"\.reset_offset: must be in \[0, reset_interval\)"),
        ({"v0": [np.nan, 0, 0]}, r"\.v0: must be finite"),
        ({"name": "a/b"}, r"\.name: must be a non-empty string without '/'"),
    ],
)
def test_lif_validation_messages(kw: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        lif(**kw)


def test_boundaries_are_accepted() -> None:
    lif(
        du=0,
        dv=4095,
        vth=2**17 - 1,
        bias_mant=[-4096, 4095, 0],
        bias_exp=[-12, 10, 0],
        u0=[2**23, -(2**23), 0],
    )
    TernaryLIFGroup(name="t", n=1, du=0, dv=0, vth=10, vth_lo=-10, bias_mant=0, bias_exp=0, u0=0, v0=0)
    with pytest.raises(ValidationError, match=r"TernaryLIFGroup\('t'\)\.vth_lo: must be in"):
        TernaryLIFGroup(name="t", n=1, du=0, dv=0, vth=10, vth_lo=11, bias_mant=0, bias_exp=0, u0=0, v0=0)
    with pytest.raises(ValidationError, match=r"SigmaDeltaGroup\('s'\)\.act_mode"):
        SigmaDeltaGroup(name="s", n=2, vth=4, bias=0, act_mode="tanh")  # type: ignore[arg-type]


def _conn(**kw: object) -> Connection:
    args: dict[str, object] = dict(name="c", source="in", target="h", weights=np.zeros((3, 2), int))
    args.update(kw)
    return Connection(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (
            {"weights": np.full((3, 2), 256)},
            r"Connection\('c'\)\.weights: must be in \[-256, 255\] \(got 256\)",
        ),
        ({"weights": np.zeros(3)}, r"\.weights: must be a 2-D"),
        ({"weight_exp": 8}, r"\.weight_exp: must be in \[-8, 7\] \(got 8\)"),
        ({"num_weight_bits": 0}, r"\.num_weight_bits: must be in \[1, 8\]"),
        ({"delays": np.full((3, 2), 64)}, r"\.delays: must be in \[0, 63\] \(got 64\)"),
        ({"delays": np.full((3, 2), 1.5)}, r"\.delays: must be integers"),
        (
            {"shift": True, "weights": np.array([[0, 4], [-8, 6], [1, 2]])},
            r"must be 0 or \+-2\*\*k .*\(got 6\)",
        ),
    ],
)
def test_connection_validation_messages(kw: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _conn(**kw)


def test_network_checks_names_and_shapes() -> None:
    inp = InputGroup(name="in", n=2)
    net = Network(inputs=(inp,), groups=(lif(),), connections=(_conn(),), metadata={"k": 1})
    assert net.incoming("h")[0].name == "c" and net.outgoing("in")[0].target == "h"
    assert net.is_integer
    with pytest.raises(ValidationError, match=r"Connection\('c'\)\.source: must name a group"):
        Network(inputs=(inp,), groups=(lif(),), connections=(_conn(source="x"),))
    with pytest.raises(ValidationError, match=r"Connection\('c'\)\.target: must name a neuron group"):
        Network(inputs=(inp,), groups=(lif(),), connections=(_conn(target="in"),))
    with pytest.raises(
        ValidationError, match=r"\.weights: must have shape \(target.n, source.n\) = \(3, 2\)"
    ):
        Network(inputs=(inp,), groups=(lif(),), connections=(_conn(weights=np.zeros((2, 3))),))
    with pytest.raises(ValidationError, match=r"Network\.groups: names must be unique \(got \['h'\]\)"):
        Network(inputs=(inp,), groups=(lif(), lif()), connections=())
    with pytest.raises(ValidationError, match=r"Network\.inputs: must hold at least one"):
        Network(inputs=(), groups=(lif(),), connections=())


def test_require_integer_names_every_float_field() -> None:
    inp = InputGroup(name="in", n=2)
    net = Network(inputs=(inp,), groups=(lif(dv=12.5),), connections=(_conn(weights=np.full((3, 2), 0.5)),))
    assert not net.is_integer
    with pytest.raises(ValidationError, match=r"LIFGroup\('h'\)\.dv.*Connection\('c'\)\.weights"):
        net.require_integer()
