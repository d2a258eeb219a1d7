"""The corrected sigma-delta neuron (upstream Lava PR #875) on real Lava: spikeport's
``SigmaDeltaCorrected`` process (deploy/lava/sigma_delta_process.py) against the emulator's
``SigmaDeltaGroup(corrected=True)``, every recorded variable at every step, on merged random networks.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from spikeport.emulator.engines.dispatch import run
from spikeport.emulator.network import Network, SigmaDeltaGroup
from spikeport.emulator.randnet import (
    merge_inputs,
    merge_networks,
    random_inputs,
    random_network,
    split_outputs,
)

RECORD = ("spikes", "u", "v", "a_in", "sigma", "act", "residue", "error")
STEPS, PER_RUN = 10, 30


def _corrected(net: Network, rng: np.random.Generator) -> Network:
    """``net`` with most of its sigma-delta groups switched to the corrected model."""
    groups = tuple(
        dataclasses.replace(g, corrected=bool(rng.random() < 0.8)) if isinstance(g, SigmaDeltaGroup) else g
        for g in net.groups
    )
    return dataclasses.replace(net, groups=groups)


def _draw(seed: int) -> tuple[list[Network], list[dict]]:
    rng = np.random.default_rng(seed)
    kinds = ("sigma_delta", "sigma_delta", "lif")
    nets = [
        _corrected(random_network(rng, steps=STEPS, max_groups=2, kinds=kinds), rng) for _ in range(PER_RUN)
    ]
    return nets, [random_inputs(rng, net, STEPS) for net in nets]


def _uncorrected(net: Network) -> Network:
    groups = tuple(
        dataclasses.replace(g, corrected=False) if isinstance(g, SigmaDeltaGroup) else g for g in net.groups
    )
    return dataclasses.replace(net, groups=groups)


def test_draw_exercises_the_correction() -> None:
    """The drawn networks hold corrected groups whose output differs from Lava 0.10.0's model (the
    shifted-out LSBs matter), so the Lava comparison below can tell the two models apart."""
    nets, inputs = _draw(0)
    merged, x = merge_networks(nets), merge_inputs(inputs)
    corrected = [g for g in merged.groups if isinstance(g, SigmaDeltaGroup) and g.corrected]
    assert len(corrected) >= 10 and any(g.state_exp > 0 for g in corrected)
    a = run(merged, x, record=("spikes",)).outputs
    b = run(_uncorrected(merged), x, record=("spikes",)).outputs
    differ = [g.name for g in corrected if not np.array_equal(a[f"{g.name}/spikes"], b[f"{g.name}/spikes"])]
    assert len(differ) >= 3, differ


@pytest.mark.lava
def test_corrected_sigma_delta_on_lava_matches_the_emulator_bit_for_bit() -> None:
    from spikeport.lava.backend import run_lava

    nets, inputs = _draw(0)
    merged, x = merge_networks(nets), merge_inputs(inputs)
    lava = run_lava(merged, x, record=RECORD)
    emu = run(merged, x, record=RECORD)
    assert sorted(lava.outputs) == sorted(emu.outputs)
    for i in range(len(nets)):
        got, want = split_outputs(emu.outputs, i), split_outputs(lava.outputs, i)
        assert got.keys() == want.keys() and got
        for key in sorted(want):
            np.testing.assert_array_equal(got[key], want[key], err_msg=f"network {i}: {key}")


@pytest.mark.lava
def test_corrected_process_keeps_residue_and_error_at_zero_and_tracks_the_receiver() -> None:
    """A constant input ``a`` into a unit neuron with ``state_exp = 2``: the receiver's sum of
    ``sent << state_exp`` stays within one step of ``sigma`` (0.10.0's model drifts: it loses the
    LSBs), and ``act`` is that sum: an analytic check independent of the emulator."""
    from spikeport.emulator.network import Connection, InputGroup
    from spikeport.lava.backend import run_lava

    a, e, steps = 7, 2, 12
    g = SigmaDeltaGroup(name="s", n=1, vth=0, bias=np.zeros(1), act_mode="unit", state_exp=e, corrected=True)
    c = Connection(name="c", source="x", target="s", weights=np.ones((1, 1), np.int64), num_message_bits=8)
    net = Network(inputs=(InputGroup(name="x", n=1, num_message_bits=8),), groups=(g,), connections=(c,))
    x = np.full((1, steps, 1), a, np.int64)
    out = run_lava(net, x, record=("spikes", "sigma", "act", "residue", "error")).outputs
    sigma = out["s/sigma"][0, :, 0].astype(np.int64)
    received = np.cumsum(out["s/spikes"][0, :, 0].astype(np.int64) << e)
    np.testing.assert_array_equal(sigma, a * np.maximum(np.arange(steps), 0))  # one step of Dense delay
    np.testing.assert_array_equal(out["s/act"][0, :, 0], received)
    np.testing.assert_array_equal(received, (sigma >> e) << e)
    np.testing.assert_array_equal(out["s/residue"], 0)
    np.testing.assert_array_equal(out["s/error"], 0)
