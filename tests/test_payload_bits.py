"""Payload-bit weighted SynOps and shift-and-add counts (emulator/energy/payload_bits.py)."""

from __future__ import annotations

import numpy as np
import pytest
from spikeport.emulator.energy.payload_bits import bit_length, payload_synops, popcount
from spikeport.emulator.network import Connection, InputGroup, Network, SigmaDeltaGroup


def test_bit_length_and_popcount_match_python_ints() -> None:
    x = np.array([0, 1, -1, 2, 3, 7, 8, -255, 1 << 20])
    np.testing.assert_array_equal(bit_length(x), [abs(int(v)).bit_length() for v in x])
    np.testing.assert_array_equal(popcount(x), [bin(abs(int(v))).count("1") for v in x])


def test_payload_synops_by_hand() -> None:
    w = np.array([[1, 0], [2, 3], [0, 0]])  # fan-out: source 0 -> 2, source 1 -> 1
    net = Network(
        inputs=(InputGroup(name="x", n=2, num_message_bits=8),),
        groups=(SigmaDeltaGroup(name="s", n=3, vth=0, bias=0, act_mode="unit"),),
        connections=(Connection(name="c", source="x", target="s", weights=w, num_message_bits=8),),
    )
    msg = np.array([[[3, 0], [0, 4], [1, 5]]])  # one sample, three steps
    out = payload_synops(net, {"x": msg})
    # events: src0 2 x fan-out 2 + src1 2 x 1 = 6; bits: (2 + 1) * 2 + (3 + 3) * 1 = 12
    assert out["synops"] == 6 and out["bit_synops"] == 12
    # popcounts: 3 -> 2, 1 -> 1 (x2 fan-out) ; 4 -> 1, 5 -> 2
    assert out["add_synops"] == (2 + 1) * 2 + (1 + 2)
    assert out["significant_bits"] == pytest.approx(2.0)
