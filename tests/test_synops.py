"""SynOps, neuron updates, messages and the NeuroBench view on hand-computed networks.

Every expected number is worked out by hand in the comments (or by a plain loop in the test), never
by the code under test.
"""

from __future__ import annotations

import numpy as np
import pytest
from spikeport.emulator import Connection, InputGroup, LIFGroup, Network, ValidationError
from spikeport.emulator.energy.neurobench import layer_ops, neurobench_ops
from spikeport.emulator.energy.synops import activity_from_counters, activity_from_spikes, count_synops


def lif(name: str, n: int, **kw: object) -> LIFGroup:
    args: dict[str, object] = dict(name=name, n=n, du=4095, dv=0, vth=10, bias_mant=0, bias_exp=0, u0=0, v0=0)
    args.update(kw)
    return LIFGroup(**args)  # type: ignore[arg-type]


def one(x: list[list[float]]) -> np.ndarray:
    """(T, n) -> (1, T, n)."""
    return np.asarray(x)[None]


def by_name(counts, name):  # type: ignore[no-untyped-def]
    return next(r for r in (*counts.connections, *counts.groups) if r.name == name)


def test_dense_fanout_spikes_and_last_step_counted() -> None:
    # weights (target, source): column fan-outs [1, 0, 2]
    net = Network(
        inputs=(InputGroup(name="in", n=3),),
        groups=(lif("h", 2),),
        connections=(Connection(name="c", source="in", target="h", weights=[[2, 0, 4], [0, 0, 6]]),),
    )
    x = one([[1, 1, 0], [0, 0, 1], [1, 0, 1], [0, 0, 1]])  # spikes per channel [2, 1, 3]; last step has one
    h = one([[0, 0], [0, 1], [0, 0], [1, 1]])
    counts = count_synops(net, activity_from_spikes(net, {"in": x, "h": h}))
    c = by_name(counts, "c")
    # synops = 2*1 + 1*0 + 3*2 = 8 (the spike sent at step 4 counts although it lands after the run)
    assert c.synops.tolist() == [8]
    assert c.dense_synapses == 6 and c.nonzero_synapses == 3
    assert c.multiplies.tolist() == [0] and c.shifts.tolist() == [0] and c.synop_bits.tolist() == [8]
    g = by_name(counts, "h")
    assert g.spikes.tolist() == [3] and g.updates.tolist() == [8]
    # a_in at step i is W @ x[i-1]: step 2 gets [2,0], step 3 gets [4,6], step 4 gets [6,6] -> 5 events
    assert g.input_events.tolist() == [5]
    assert by_name(counts, "in").spikes.tolist() == [6]


def test_zero_and_truncated_weights_are_no_synapses() -> None:
    # mixed signs drop the LSB: 1 -> 0, -2 -> -2, 3 -> 2; stored nonzero per column [2, 1], effective [1, 1]
    w = [[1, -2], [3, 0]]
    net = Network(
        inputs=(InputGroup(name="in", n=2),),
        groups=(lif("h", 2),),
        connections=(Connection(name="c", source="in", target="h", weights=w),),
    )
    x = one([[1, 1], [1, 0]])
    spikes = {"in": x, "h": np.zeros((1, 2, 2))}
    c = by_name(count_synops(net, activity_from_spikes(net, spikes)), "c")
    assert c.synops.tolist() == [3]  # 2 spikes * 1 + 1 spike * 1
    assert c.nonzero_synapses == 2
    # NeuroBench binarizes the stored weights: 2 spikes * 2 + 1 * 1 = 5 ACs, dense 2 steps * 4 = 8
    nb = neurobench_ops(net, spikes)
    assert nb.effective_acs.tolist() == [5.0] and nb.dense.tolist() == [8.0]


def conv_lowered(h: int, w: int, k: int, stride: int) -> tuple[np.ndarray, int, int]:
    """A 1-channel kxk conv of all-ones weights as a (out, in) matrix, written as plain loops."""
    oh, ow = (h - k) // stride + 1, (w - k) // stride + 1
    m = np.zeros((oh * ow, h * w), dtype=np.int64)
    for r in range(oh):
        for c in range(ow):
            for dr in range(k):
                for dc in range(k):
                    m[r * ow + c, (r * stride + dr) * w + (c * stride + dc)] = 1
    return m, oh, ow


@pytest.mark.parametrize(
    ("stride", "pixel", "expected"),
    [(1, 0, 1), (1, 1, 2), (1, 5, 4), (2, 5, 1), (2, 15, 1)],  # 4x4 input, 2x2 kernel
)
def test_conv_edges_and_strides(stride: int, pixel: int, expected: int) -> None:
    # stride 1: corner pixel feeds 1 output, edge pixel 2, centre pixel 4; stride 2: each pixel exactly 1
    m, _, _ = conv_lowered(4, 4, 2, stride)
    net = Network(
        inputs=(InputGroup(name="in", n=16),),
        groups=(lif("o", m.shape[0]),),
        connections=(Connection(name="conv", source="in", target="o", weights=m, sparse=True),),
    )
    x = np.zeros((1, 1, 16))
    x[0, 0, pixel] = 1
    c = by_name(
        count_synops(net, activity_from_spikes(net, {"in": x, "o": np.zeros((1, 1, m.shape[0]))})), "conv"
    )
    assert c.synops.tolist() == [expected]
    assert c.dense_synapses == m.shape[0] * 4  # sparse: the lowered edges, 4 taps per output


def test_recurrence_counts_the_groups_own_spikes() -> None:
    rec = np.array([[0, 3, 0], [1, 0, 1], [0, 2, 0]])  # fan-outs per source [1, 2, 1]
    net = Network(
        inputs=(InputGroup(name="in", n=1),),
        groups=(lif("h", 3),),
        connections=(
            Connection(name="ff", source="in", target="h", weights=[[4], [0], [4]]),
            Connection(name="rec", source="h", target="h", weights=rec),
        ),
    )
    h = one([[1, 0, 0], [0, 1, 1], [1, 1, 0]])  # spikes per neuron [2, 2, 1]
    counts = count_synops(net, activity_from_spikes(net, {"in": one([[1], [0], [0]]), "h": h}))
    assert by_name(counts, "rec").synops.tolist() == [2 * 1 + 2 * 2 + 1 * 1]
    assert by_name(counts, "ff").synops.tolist() == [2]


def test_delays_postpone_input_events_not_synops() -> None:
    net = Network(
        inputs=(InputGroup(name="in", n=1),),
        groups=(lif("h", 1),),
        connections=(Connection(name="c", source="in", target="h", weights=[[5]], delays=[[2]]),),
    )
    x = one([[1], [0], [0], [0], [1]])  # sent at steps 1 and 5; arrive at steps 4 and 8 (T = 5)
    act = activity_from_spikes(net, {"in": x, "h": np.zeros((1, 5, 1))})
    counts = count_synops(net, act)
    assert by_name(counts, "c").synops.tolist() == [2]
    assert act.input_events["h"].tolist() == [1]


def test_graded_and_shift_connections() -> None:
    inp = InputGroup(name="in", n=3, num_message_bits=8)
    net = Network(
        inputs=(inp,),
        groups=(lif("a", 2), lif("b", 2)),
        connections=(
            Connection(
                name="mul", source="in", target="a", weights=[[3, 5, 0], [7, 0, 0]], num_message_bits=8
            ),
            Connection(
                name="sh",
                source="in",
                target="b",
                weights=[[4, 0, 2], [0, 8, 0]],
                num_message_bits=8,
                shift=True,
            ),
        ),
    )
    x = one([[5, 0, 0], [0, -3, 2], [0, 0, 0]])  # nonzero messages per channel [1, 1, 1]; payloads 5, 3, 2
    act = activity_from_spikes(net, {"in": x, "a": np.zeros((1, 3, 2)), "b": np.zeros((1, 3, 2))})
    assert act.payload_sums["in"].tolist() == [[5, 3, 2]]
    counts = count_synops(net, act)
    mul, sh = by_name(counts, "mul"), by_name(counts, "sh")
    # fan-outs mul [2, 1, 0] -> 3 synops, all multiplies, 8 bits each; sh [1, 1, 1] -> 3 shifts
    assert (mul.synops.tolist(), mul.multiplies.tolist(), mul.shifts.tolist(), mul.synop_bits.tolist()) == (
        [3],
        [3],
        [0],
        [24],
    )
    assert (sh.synops.tolist(), sh.multiplies.tolist(), sh.shifts.tolist()) == ([3], [0], [3])
    nb = neurobench_ops(net, {"in": x, "a": np.zeros((1, 3, 2)), "b": np.zeros((1, 3, 2))})
    # payloads 5 and -3 are not in {-1, 0, 1}: those steps are MACs (3 + 3 effective ops), no ACs
    assert nb.effective_macs.tolist() == [6.0] and nb.effective_acs.tolist() == [0.0]


def test_active_updates_from_states_bias_and_arrivals() -> None:
    h = lif("h", 3, bias_mant=[0, 0, 2])
    net = Network(
        inputs=(InputGroup(name="in", n=2),),
        groups=(h,),
        connections=(Connection(name="c", source="in", target="h", weights=[[2, -2], [0, 0], [0, 0]]),),
    )
    x = one([[1, 1], [0, 0], [0, 0]])
    v = one([[0, 0, 0], [0, 0, 128], [5, 0, 256]])
    act = activity_from_spikes(
        net, {"in": x, "h": np.zeros((1, 3, 3))}, states={"h/v": v, "h/u": np.zeros((1, 3, 3))}
    )
    # neuron 0: step 2 gets two messages that cancel (a_in = 0 but active), step 3 enters with v=0 -> 1
    # neuron 1: never; neuron 2: bias -> active on all 3 steps.  Total 4; input events (a_in != 0): 0
    assert act.active_updates["h"].tolist() == [4]
    assert act.input_events["h"].tolist() == [0]
    assert act.active_rule == "state"
    g = by_name(count_synops(net, act), "h")
    assert (g.active_updates.tolist(), g.inactive_updates.tolist()) == ([4], [5])


def test_messages_per_destination_core() -> None:
    w = np.zeros((5, 2), dtype=np.int64)
    w[0, 0] = w[4, 0] = 1  # neuron 0 reaches cores 0 and 2 (2 neurons per core)
    w[2, 1] = w[3, 1] = 1  # neuron 1 reaches core 1 only
    net = Network(
        inputs=(InputGroup(name="in", n=2),),
        groups=(lif("h", 5),),
        connections=(Connection(name="c", source="in", target="h", weights=w),),
    )
    x = one([[1, 1], [1, 0]])
    act = activity_from_spikes(net, {"in": x, "h": np.zeros((1, 2, 5))})
    assert by_name(count_synops(net, act, neurons_per_core=2), "in").messages_out.tolist() == [2 * 2 + 1 * 1]


def test_batch_is_per_sample() -> None:
    net = Network(
        inputs=(InputGroup(name="in", n=2),),
        groups=(lif("h", 1),),
        connections=(Connection(name="c", source="in", target="h", weights=[[1, 1]]),),
    )
    x = np.array([[[1, 0]], [[1, 1]], [[0, 0]]])
    act = activity_from_spikes(net, {"in": x, "h": np.zeros((3, 1, 1))})
    assert by_name(count_synops(net, act), "c").synops.tolist() == [1, 2, 0]


def test_missing_group_is_an_error() -> None:
    net = Network(
        inputs=(InputGroup(name="in", n=1),),
        groups=(lif("h", 1),),
        connections=(Connection(name="c", source="in", target="h", weights=[[1]]),),
    )
    with pytest.raises(ValidationError, match=r"activity_from_spikes\.spikes: needs every group"):
        activity_from_spikes(net, {"in": np.zeros((1, 2, 1))})


# --- NeuroBench's own exact cases (neurobench 2.3.0 tests and docs) ---


def test_neurobench_linear_20_5_all_ones_10_steps() -> None:
    acs, macs, dense = layer_ops(np.full((5, 20), 0.3), np.ones((1, 10, 20)))
    assert (acs.tolist(), macs.tolist(), dense.tolist()) == ([1000.0], [0.0], [1000.0])


def test_neurobench_conv_3x3_on_12x12() -> None:
    m, _, _ = conv_lowered(12, 12, 3, 1)
    net = Network(
        inputs=(InputGroup(name="in", n=144),),
        groups=(lif("o", m.shape[0]),),
        connections=(Connection(name="conv", source="in", target="o", weights=m, sparse=True),),
    )
    nb = neurobench_ops(net, {"in": np.ones((1, 1, 144)), "o": np.zeros((1, 1, 100))})
    assert nb.per_sample() == {"Effective_MACs": 0.0, "Effective_ACs": 900.0, "Dense": 900.0}


def test_neurobench_documented_example() -> None:
    w = np.array([[1.3, 0, -3.2], [0, 1.2, -5.1], [-1.1, 2.7, 0]])
    acs, macs, dense = layer_ops(w, np.array([[[0, 1.3, -1]]]))
    assert (acs.tolist(), macs.tolist(), dense.tolist()) == ([0.0], [4.0], [9.0])


def test_neurobench_batch_rule_versus_per_sample() -> None:
    x = np.array([[[1.0, 0.0]], [[2.0, 1.0]]])  # sample 0 binary, sample 1 graded
    w = np.ones((1, 2))
    assert layer_ops(w, x)[0].tolist() == [1.0, 0.0]  # per sample: sample 0 books ACs
    acs, macs, _ = layer_ops(w, x, per_sample=False)  # NeuroBench: one call, the batch is graded
    assert (acs.tolist(), macs.tolist()) == ([0.0, 0.0], [1.0, 2.0])


def test_counts_from_engine_counters_match_counts_from_spikes() -> None:
    engine = pytest.importorskip("spikeport.emulator.engines.dispatch")
    rng = np.random.default_rng(3)
    net = Network(
        inputs=(InputGroup(name="in", n=6),),
        groups=(lif("h", 5, vth=3), lif("o", 2, vth=2)),
        connections=(
            Connection(name="c1", source="in", target="h", weights=rng.integers(-60, 60, (5, 6))),
            Connection(name="c2", source="h", target="o", weights=rng.integers(-60, 60, (2, 5))),
        ),
    )
    x = (rng.random((2, 12, 6)) < 0.4).astype(np.int64)
    res = engine.run(net, x, record=("spikes",), counters=True)
    from_spikes = activity_from_spikes(net, {"in": x, "h": res["h/spikes"], "o": res["o/spikes"]})
    from_counters = activity_from_counters(net, res.counters)
    for g in ("in", "h", "o"):
        np.testing.assert_array_equal(from_spikes.spike_counts[g], from_counters.spike_counts[g])
    for g in ("h", "o"):
        np.testing.assert_array_equal(from_spikes.input_events[g], from_counters.input_events[g])
