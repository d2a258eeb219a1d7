"""Differential tests: random integer networks through real Lava (fixed_pt) and through the emulator.

Every recorded variable of every group is compared at every step with ``assert_array_equal``. Many
small random networks are merged into one (disjoint union) so that one Lava run checks dozens of
configurations; each configuration is one draw of :func:`random_network`.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from spikeport.emulator import bits
from spikeport.emulator.engines.dispatch import run
from spikeport.emulator.network import LIFGroup, Network, SigmaDeltaGroup, TernaryLIFGroup
from spikeport.emulator.randnet import (
    merge_inputs,
    merge_networks,
    random_inputs,
    random_network,
    split_outputs,
)
from spikeport.lava.backend import run_lava

RECORD = ("spikes", "u", "v", "a_in", "sigma", "act", "residue", "error")
#: default suite: 4 Lava runs x 50 configurations of 1-2 groups, 8 steps each (Lava's cost is about
#: one OS process per group and per connection, so the configurations are kept small)
DEFAULT_SEEDS, PER_RUN, STEPS, OPTIONS = (0, 1, 2, 3), 50, 8, {"max_groups": 2}


def _draw(seed: int, count: int, steps: int, **options: int) -> tuple[list[Network], list[dict]]:
    rng = np.random.default_rng(seed)
    nets = [random_network(rng, steps=steps, **options) for _ in range(count)]
    return nets, [random_inputs(rng, net, steps) for net in nets]


def _compare(seed: int, count: int, steps: int, **options: int) -> int:
    nets, inputs = _draw(seed, count, steps, **options)
    merged, x = merge_networks(nets), merge_inputs(inputs)
    lava = run_lava(merged, x, record=RECORD)
    emu = run(merged, x, record=RECORD)
    assert sorted(lava.outputs) == sorted(emu.outputs)
    for i in range(len(nets)):
        got, want = split_outputs(emu.outputs, i), split_outputs(lava.outputs, i)
        assert got.keys() == want.keys() and got
        for key in sorted(want):
            np.testing.assert_array_equal(got[key], want[key], err_msg=f"seed {seed}, network {i}: {key}")
    return len(nets)


@pytest.mark.lava
@pytest.mark.parametrize("seed", DEFAULT_SEEDS)
def test_random_networks_match_lava_bit_for_bit(seed: int) -> None:
    assert _compare(seed, PER_RUN, STEPS, **OPTIONS) == PER_RUN


@pytest.mark.lava
@pytest.mark.slow
@pytest.mark.parametrize("seed", (100, 101))
def test_larger_random_networks_match_lava(seed: int) -> None:
    assert _compare(seed, 25, 24, max_n=8, max_groups=4) == 25


def _features(net: Network) -> set[str]:
    out = set()
    for g in net.groups:
        out.add(type(g).__name__ + ("Reset" if getattr(g, "reset_interval", 0) else ""))
        if isinstance(g, LIFGroup):
            out |= {f"du={g.du}", f"dv={g.dv}", f"vth={g.vth}"}
            out |= {"bias_exp<0"} if np.any((g.bias_exp < 0) & (g.bias_mant != 0)) else set()
            out |= {"u0=+2^23"} if np.any(g.u0 == bits.STATE_LIMIT) else set()
        if isinstance(g, TernaryLIFGroup) and g.vth_lo < 0:
            out.add("vth_lo<0")
        if isinstance(g, SigmaDeltaGroup):
            out |= {f"act={g.act_mode}", f"cum_error={g.cum_error}", f"state_exp>0={g.state_exp > 0}"}
    for c in net.connections:
        w = c.weights
        mode = "exc" if w.min() >= 0 else "inh" if w.max() <= 0 else "mixed"
        out |= {f"sign={mode}", f"nwb={c.num_weight_bits}", f"wexp={c.weight_exp}"}
        out |= {f"w={v}" for v in (-256, -255, 255) if np.any(w == v)}
        out |= {"graded"} if c.num_message_bits else set()
        out |= {"delays"} if c.delays is not None and c.max_delay > 0 else set()
        out |= {"sparse"} if c.sparse else set()
        out |= {"self"} if c.source == c.target else set()
        src = [g.name for g in net.groups]
        if c.source in src and src.index(c.source) > src.index(c.target):
            out.add("backward")
        if len(net.incoming(c.target)) > 1:
            out.add("fan-in")
    return out


def test_default_suite_covers_every_listed_case() -> None:
    seen: Counter[str] = Counter()
    for seed in DEFAULT_SEEDS:
        for net in _draw(seed, PER_RUN, STEPS, **OPTIONS)[0]:
            seen.update(_features(net))
    must = {"LIFGroup", "LIFGroupReset", "TernaryLIFGroup", "SigmaDeltaGroup", "vth_lo<0"}
    must |= {"du=0", "du=4095", "dv=0", "dv=4095", "vth=0", f"vth={bits.VTH_MAX}", "bias_exp<0", "u0=+2^23"}
    must |= {"sign=exc", "sign=inh", "sign=mixed", "w=-256", "w=-255", "w=255"}
    must |= {f"nwb={b}" for b in range(1, 9)} | {f"wexp={e}" for e in range(-8, 8)}
    must |= {"graded", "delays", "sparse", "self", "backward", "fan-in"}
    must |= {"act=relu", "act=unit", "cum_error=True", "state_exp>0=True"}
    assert must <= set(seen), sorted(must - set(seen))


def _decay(x: np.ndarray, d: int) -> np.ndarray:
    p = x * (4096 - d)
    return np.sign(p) * (np.abs(p) >> 12)


def test_default_suite_contains_wrap_and_clip_cases() -> None:
    """The compared networks must make u wrap and v clip (else Lava's overflow rules go untested).
    Exact u is recomputed in int64 from the recorded previous u and a_in; v clips show as +-(2**23-1)."""
    wraps = clips = 0
    for seed in DEFAULT_SEEDS:
        nets, inputs = _draw(seed, PER_RUN, STEPS, **OPTIONS)
        merged = merge_networks(nets)
        out = run(merged, merge_inputs(inputs), record=("u", "v", "a_in")).outputs
        for g in merged.groups:
            if not isinstance(g, LIFGroup):
                continue
            u, a = out[f"{g.name}/u"][0], out[f"{g.name}/a_in"][0]
            prev = np.vstack([g.u0[None].astype(np.int64), u[:-1]])
            exact = _decay(prev, int(g.du) + 1) + (a << 6)
            wraps += int(np.count_nonzero((exact > bits.STATE_LIMIT) | (exact <= -bits.STATE_LIMIT)))
            clips += int(np.count_nonzero(np.abs(out[f"{g.name}/v"]) == bits.V_MAX))
    assert wraps > 0 and clips > 0, (wraps, clips)


def _fingerprint(net: Network, x: dict) -> bytes:
    parts = [c.name.encode() + c.weights.tobytes() for c in net.connections]
    parts += [
        repr(sorted((k, np.asarray(v).tolist()) for k, v in g.integer_fields().items())).encode()
        + g.name.encode()
        for g in net.groups
    ]
    return b"|".join(parts + [v.tobytes() for v in x.values()])


def test_generator_is_deterministic_from_its_seed() -> None:
    (a,), (xa,) = _draw(7, 1, 12)
    (b,), (xb,) = _draw(7, 1, 12)
    (c,), (xc,) = _draw(8, 1, 12)
    assert _fingerprint(a, xa) == _fingerprint(b, xb)
    assert _fingerprint(a, xa) != _fingerprint(c, xc)


def _without_delays(net: Network) -> Network:
    import dataclasses

    conns = tuple(dataclasses.replace(c, delays=None) for c in net.connections)
    return dataclasses.replace(net, connections=conns)


@pytest.mark.lava
def test_packed_batches_match_the_emulator_and_sample_by_sample_lava() -> None:
    """Several samples side by side in one Lava run (block-diagonal Sparse) give what the emulator
    gives, and what Lava gives sample by sample (the packing itself is checked against Lava)."""
    rng = np.random.default_rng(7)
    nets = [_without_delays(random_network(rng, steps=8, max_groups=2)) for _ in range(20)]
    merged = merge_networks(nets)
    x = merge_inputs([random_inputs(rng, net, 8, batch=3) for net in nets])
    lava = run_lava(merged, x, record=RECORD)
    assert lava.metadata["pack"] == 3
    emu = run(merged, x, record=RECORD)
    assert sorted(lava.outputs) == sorted(emu.outputs)
    for key in sorted(emu.outputs):
        np.testing.assert_array_equal(lava[key], emu[key], err_msg=key)
    small = merge_networks(nets[:4])
    xs = merge_inputs([random_inputs(rng, net, 8, batch=2) for net in nets[:4]])
    packed, single = run_lava(small, xs, record=RECORD), run_lava(small, xs, record=RECORD, max_pack=1)
    assert packed.metadata["pack"] == 2 and single.metadata["pack"] == 1
    for key in sorted(single.outputs):
        np.testing.assert_array_equal(packed[key], single[key], err_msg=key)
