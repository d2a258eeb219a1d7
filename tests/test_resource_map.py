"""The Loihi 1 / Loihi 2 resource map: per-core limits with sources, partitioning, violations."""

from __future__ import annotations

import json

import numpy as np
import pytest
from spikeport.chip.limits import CHIPS
from spikeport.chip.resource_map import axon_bits, format_map, resource_map
from spikeport.emulator.errors import ValidationError
from spikeport.emulator.network import Connection, InputGroup, LIFGroup, Network, SigmaDeltaGroup


def _lif(name: str, n: int) -> LIFGroup:
    return LIFGroup(name=name, n=n, du=0, dv=0, vth=10, bias_mant=0, bias_exp=0, u0=0, v0=0)


def _net(n_in: int, n: int, w: np.ndarray | None = None, **conn: object) -> Network:
    w = np.ones((n, n_in), np.int64) if w is None else w
    return Network(
        inputs=(InputGroup(name="x", n=n_in, num_message_bits=int(conn.get("num_message_bits", 0))),),  # type: ignore[arg-type]
        groups=(_lif("h", n),),
        connections=(Connection(name="c", source="x", target="h", weights=w, **conn),),  # type: ignore[arg-type]
    )


def test_axon_bits_follow_the_loihi1_encoding() -> None:
    """Blocks of up to 64 synapses, each n * bits + 4 + 6 header bits, rounded up to 64-bit words."""
    np.testing.assert_array_equal(axon_bits(np.array([0, 1, 54, 64, 65]), 8), [0, 64, 448, 576, 640])


def test_json_fields_and_cited_limits() -> None:
    m = resource_map(_net(4, 3), "loihi1")
    assert {"chip", "cores", "chips", "per_core", "violations"} <= set(m)
    json.dumps(m)
    assert (m["chip"], m["cores"], m["chips"], m["violations"]) == ("loihi1", 1, 1, [])
    row = m["per_core"][0]
    assert (row["n_neurons"], row["fan_in_axons"], row["synapses"]) == (3, 4, 12)
    for chip in CHIPS.values():
        for name, limit in chip.as_dict().items():
            assert limit["source"], name
            assert isinstance(limit["published"], bool)
    unpublished = {k for k, v in CHIPS["loihi2"].as_dict().items() if not v["published"]}
    assert {"fan_in_axons_per_core", "fan_out_axons_per_core"} <= unpublished
    assert "not published" in format_map(m)


def test_a_group_larger_than_a_core_is_flagged_and_partitioned() -> None:
    m = resource_map(_net(10, 3000), "loihi1")
    assert m["cores"] == 3 and m["violations"] == []
    assert m["partitioned"] == [
        {"group": "h", "neurons": 3000, "cores": 3, "reasons": ["neurons 3000 > 1024"]}
    ]
    ranges = [tuple(r["neurons"]) for r in m["per_core"]]
    assert ranges == [(0, 1000), (1000, 2000), (2000, 3000)]
    assert all(r["n_neurons"] <= 1024 for r in m["per_core"])
    assert resource_map(_net(10, 3000), "loihi2")["cores"] == 1  # 8,192 neurons per Loihi 2 core


def test_synaptic_memory_partitions_a_dense_layer() -> None:
    """1000 x 1000 dense 8-bit synapses: 1000 axons of 1000 synapses = 9.2 Mbit > 1 Mbit per core."""
    m = resource_map(_net(1000, 1000), "loihi1")
    limit = CHIPS["loihi1"].synapse_bits_per_core.value
    assert m["cores"] > 8 and m["violations"] == []
    assert all(r["memory_bits"] <= limit for r in m["per_core"])
    assert "memory bits" in m["partitioned"][0]["reasons"][0]
    assert sum(r["synapses"] for r in m["per_core"]) == 1000 * 1000


def test_what_no_partition_fixes_is_a_violation() -> None:
    """One neuron with 5000 presynaptic neurons needs 5000 input axons (> 4096) on any core."""
    m = resource_map(_net(5000, 2, np.ones((2, 5000), np.int64), num_weight_bits=1), "loihi1")
    kinds = {(v["group"], v["resource"]) for v in m["violations"]}
    assert ("h", "fan_in_axons") in kinds
    assert all(r["n_neurons"] == 1 for r in m["per_core"])  # it tried: one neuron per core


def test_delays_and_graded_messages_beyond_the_chip() -> None:
    delays = np.full((3, 4), 63)
    m = resource_map(_net(4, 3, delays=delays), "loihi2")
    assert [(v["connection"], v["resource"]) for v in m["violations"]] == [("c", "max_delay")]
    graded = _net(4, 3, num_message_bits=8)
    assert [v["resource"] for v in resource_map(graded, "loihi1")["violations"]] == ["message_bits"]
    assert resource_map(graded, "loihi2")["violations"] == []


def test_fan_out_counts_destination_cores_and_chips_fill_up() -> None:
    src = _lif("a", 2)
    big = _lif("b", 3000)
    net = Network(
        inputs=(InputGroup(name="x", n=1),),
        groups=(src, big),
        connections=(
            Connection(name="xa", source="x", target="a", weights=np.ones((2, 1))),
            Connection(name="ab", source="a", target="b", weights=np.ones((3000, 2))),
        ),
    )
    m = resource_map(net, "loihi1")
    assert m["per_core"][0]["group"] == "a" and m["per_core"][0]["fan_out_axons"] == 2 * 3
    many = resource_map(_net(1, 130 * 1024), "loihi1")
    assert (many["cores"], many["chips"]) == (130, 2)
    assert many["per_core"][-1]["chip"] == 1


def test_sigma_delta_groups_map_too() -> None:
    net = Network(
        inputs=(InputGroup(name="x", n=3, num_message_bits=16),),
        groups=(SigmaDeltaGroup(name="s", n=2, vth=1, bias=0),),
        connections=(
            Connection(name="c", source="x", target="s", weights=np.ones((2, 3)), num_message_bits=16),
        ),
    )
    assert resource_map(net, "loihi2")["cores"] == 1


def test_unknown_chip_is_named() -> None:
    with pytest.raises(ValidationError, match=r"resource_map\.chip: must be one of \['loihi1', 'loihi2'\]"):
        resource_map(_net(1, 1), "truenorth")


def test_mapped_destination_cores_match_the_energy_model_when_groups_fit() -> None:
    """With every group on cores of 1024 neurons, the map's destination cores are the energy model's;
    a group the map splits by memory costs more messages than the neuron-count placement assumes."""
    from spikeport.chip.resource_map import destination_cores, placement
    from spikeport.emulator.energy import synops

    rng = np.random.default_rng(0)
    w = (rng.random((2000, 30)) < 0.3).astype(np.int64)
    net = _net(30, 2000, w)
    place = placement(net, "loihi1")
    assert place["h"] == [(0, 1000), (1000, 2000)]
    np.testing.assert_array_equal(
        destination_cores(net, "x", place), synops.destination_cores(net, "x", 1024)
    )
    dense = _net(1000, 1000)
    split = placement(dense, "loihi1")
    assert len(split["h"]) > 1
    assert (
        destination_cores(dense, "x", split).min()
        == len(split["h"])
        > synops.destination_cores(dense, "x", 1024).max()
    )
