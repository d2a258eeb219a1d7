"""Cross-check: spikeport's sanafe-loihi1 estimate against SANA-FE's own Loihi 1 simulation.

Same integer network and input in both; the spikes must agree exactly and the energy by component
must agree to floating-point rounding (SANA-FE sums in double precision, event by event).
"""

from __future__ import annotations

import numpy as np
import pytest
from spikeport.emulator import Connection, InputGroup, LIFGroup, Network, UnsupportedError

sanafe = pytest.importorskip("sanafe")
engine = pytest.importorskip("spikeport.emulator.engines.dispatch")


def network(rng: np.random.Generator, *, reset: str = "subtract") -> Network:
    def lif(name: str, n: int, vth: int, bias: object) -> LIFGroup:
        return LIFGroup(
            name=name, n=n, du=4095, dv=300, vth=vth, bias_mant=bias, bias_exp=1, u0=0, v0=0, reset=reset
        )

    return Network(
        inputs=(InputGroup(name="in", n=20),),
        groups=(lif("h", 12, 60, np.arange(12) % 3 - 1), lif("o", 4, 40, 0)),
        connections=(
            Connection(name="c1", source="in", target="h", weights=rng.integers(-40, 80, (12, 20))),
            Connection(
                name="c2", source="h", target="o", weights=rng.integers(-40, 80, (4, 12)), sparse=True
            ),
        ),
    )


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_energy_matches_sanafe(reset: str) -> None:
    from spikeport.report.energy import report_from_run
    from spikeport.report.sanafe import run_sanafe

    rng = np.random.default_rng(7)
    net = network(rng, reset=reset)
    x = (rng.random((40, 20)) < 0.2).astype(np.int64)
    res = engine.run(net, x, record=("spikes", "v", "u"))
    theirs = run_sanafe(net, x)
    for g in ("h", "o"):
        np.testing.assert_array_equal(theirs["spikes"][g], res[f"{g}/spikes"][0] != 0)
    assert res["h/spikes"].sum() > 20 and res["o/spikes"].sum() > 5  # the check is not vacuous
    ours = report_from_run(net, x, res, profiles=["sanafe-loihi1"]).estimates[0].per_inference()
    e = theirs["energy_pj"]
    assert ours["synaptic"] == pytest.approx(e["synapse"], rel=1e-9)
    assert ours["neuron"] == pytest.approx(e["soma"], rel=1e-9)
    assert ours["routing"] == pytest.approx(e["network"], rel=1e-9)
    assert ours["total"] == pytest.approx(e["total"], rel=1e-9)


def test_bridge_refuses_what_sanafe_cannot_model() -> None:
    from spikeport.report.sanafe import run_sanafe

    net = Network(
        inputs=(InputGroup(name="in", n=1),),
        groups=(LIFGroup(name="h", n=1, du=100, dv=0, vth=5, bias_mant=0, bias_exp=0, u0=0, v0=0),),
        connections=(Connection(name="c", source="in", target="h", weights=[[5]]),),
    )
    with pytest.raises(UnsupportedError, match=r"LIFGroup\('h'\): needs du=4095"):
        run_sanafe(net, np.zeros((3, 1)))
