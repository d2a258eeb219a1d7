"""``sp.run(net, x, backend="lava")`` on networks with PSN groups: lowered automatically to delayed
taps into a memoryless LIF (spikeport.lava.psn_lowering), outputs under the PSN names, equal to the
emulator's; refused with lower_psn's message where the mapping is not exact."""

from __future__ import annotations

import numpy as np
import pytest
import spikeport as sp
from spikeport.emulator.errors import UnsupportedError, ValidationError
from spikeport.emulator.network import Connection, InputGroup, LIFGroup, Network
from spikeport.emulator.psn import PSNGroup

pytestmark = pytest.mark.lava
pytest.importorskip("lava")


def _psn(name: str, n: int, k: int, d: int, rng: np.random.Generator, vth: int) -> PSNGroup:
    return PSNGroup(
        name=name,
        n=n,
        k=k,
        dilation=d,
        sign=rng.integers(-1, 2, (n, k)),
        shift=rng.integers(0, 4, (n, k)),
        vth=rng.integers(-vth, vth, n),
    )


def _net(seed: int) -> Network:
    """Two PSN stages and a LIF readout, small enough that |H| < 2**17 (exact on Lava)."""
    rng = np.random.default_rng(seed)
    g0, g1 = _psn("p0", 6, 3, 2, rng, 30), _psn("p1", 4, 2, 1, rng, 10)
    out = LIFGroup(name="out", n=2, du=4095, dv=3000, vth=200, bias_mant=0, bias_exp=0, u0=0, v0=0)

    def conn(name: str, src: str, tgt: str, shape: tuple[int, int]) -> Connection:
        return Connection(name=name, source=src, target=tgt, weights=2 * rng.integers(-20, 20, shape))

    conns = (conn("c0", "in", "p0", (6, 5)), conn("c1", "p0", "p1", (4, 6)), conn("c2", "p1", "out", (2, 4)))
    return Network(inputs=(InputGroup(name="in", n=5),), groups=(g0, g1, out), connections=conns)


def test_sp_run_on_lava_lowers_psn_and_equals_the_emulator() -> None:
    net = _net(3)
    x = np.random.default_rng(4).integers(0, 2, (2, 14, 5)).astype(np.int8)
    record = ("spikes", "p0/h", "p1/h")
    ref = sp.run(net, x, record=record)
    got = sp.run(net, x, backend="lava", record=record)
    assert set(got.outputs) == set(ref.outputs) == {"p0/spikes", "p1/spikes", "out/spikes", "p0/h", "p1/h"}
    for k, v in ref.outputs.items():
        assert got[k].dtype == v.dtype and got[k].shape == v.shape, k
        np.testing.assert_array_equal(got[k], v, err_msg=k)
    assert 0 < ref["p0/spikes"].mean() < 1 and 0 < ref["p1/spikes"].mean() < 1


def test_sp_run_on_lava_refuses_what_the_lowering_cannot_make_exact() -> None:
    g = PSNGroup(name="p", n=2, k=3, dilation=1, sign=np.ones((2, 3)), shift=np.full((2, 3), 7), vth=[0, 0])
    c = Connection(name="c", source="in", target="p", weights=np.full((2, 5), 254))
    net = Network(inputs=(InputGroup(name="in", n=5),), groups=(g,), connections=(c,))
    x = np.ones((1, 4, 5), np.int8)  # |H| = 3 * (5 * 254 << 7) >= 2**17: Lava's 24-bit u would wrap
    with pytest.raises(UnsupportedError, match=r"PSNGroup\('p'\).*no neuron with an input history.*2\*\*17"):
        sp.run(net, x, backend="lava")


def test_lava_names_the_psn_variables_it_records() -> None:
    with pytest.raises(ValidationError, match=r"p0/shifts.*\['h', 'spikes'\]"):
        sp.run(_net(3), np.zeros((1, 4, 5), np.int8), backend="lava", record=("p0/shifts",))
