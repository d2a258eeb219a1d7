"""The event-driven engine: exact fast-forward (exhaustive + property tests against a plain Python
step loop) and differential tests against the dense engine (assert_array_equal on every output)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spikeport.emulator import bits
from spikeport.emulator.engines import dispatch as engine
from spikeport.emulator.engines.event_kernels import ff
from spikeport.emulator.errors import UnsupportedError
from spikeport.emulator.kernels import wrap32
from spikeport.emulator.network import (
    Connection,
    InputGroup,
    LIFGroup,
    Network,
    SigmaDeltaGroup,
    TernaryLIFGroup,
)
from spikeport.emulator.randnet import random_inputs, random_network

VMAX = bits.V_MAX


def _decay(x: int, d: int) -> int:
    """Plainly written: product, magnitude shifted right by 12, sign restored."""
    p = x * (4096 - d)
    return p // 4096 if p >= 0 else -((-p) // 4096)


def _oracle(v: int, b: int, dv: int, th: int, tl: int, tern: bool, sub: bool, rem: int) -> tuple[int, int]:
    """Step ``v <- clip(decay(v) + b)`` one step at a time until a spike or ``rem`` steps: (v, spike step)."""
    for k in range(1, rem + 1):
        v = max(-VMAX, min(VMAX, _decay(v, dv) + b))
        if v > th or (tern and v < tl):
            return (v - th if sub and v > th else 0), k
    return v, 0


def _check_ff(v: int, b: int, dv: int, th: int, tl: int, tern: bool, sub: bool, rem: int) -> None:
    steps, got_v, spike = ff(v, b, dv, th, tl, tern, sub, rem)
    want_v, want_k = _oracle(v, b, dv, th, tl, tern, sub, rem)
    assert (got_v, steps if spike else 0) == (want_v, want_k), (v, b, dv, th, tl, tern, sub, rem)
    if not spike:
        assert steps == rem


@pytest.mark.parametrize("dv", [0, 1, 2, 5, 100, 1000, 2048, 4094, 4095])
def test_fast_forward_exhaustive_small_range(dv: int) -> None:
    for th, tl, tern in ((0, 0, False), (64, -64, True), (128, 0, False), (640, -1280, True)):
        for b in range(-20, 21, 3):
            for v in range(-300, th + 1, 7):
                if tern and v < tl:
                    continue
                _check_ff(v, b, dv, th, tl, tern, False, 60)
                _check_ff(v, b * 37, dv, th, tl, tern, not tern, 60)


@settings(max_examples=300, deadline=None)
@given(
    v=st.integers(-VMAX, VMAX),
    b=st.integers(bits.BIAS_MANT_MIN << 10, bits.BIAS_MANT_MAX << 10) | st.integers(-300, 300),
    dv=st.integers(0, 4095) | st.sampled_from([0, 1, 4095]),
    vth=st.integers(0, bits.VTH_MAX),
    lo=st.integers(0, bits.VTH_MAX),
    tern=st.booleans(),
    sub=st.booleans(),
    rem=st.integers(1, 3000),
)
def test_fast_forward_matches_stepping(
    v: int, b: int, dv: int, vth: int, lo: int, tern: bool, sub: bool, rem: int
) -> None:
    th, tl = vth << 6, -(lo << 6)
    v = min(v, th)
    if tern:
        v, sub = max(v, tl), False
    _check_ff(v, b, dv, th, tl, tern, sub, rem)


def _compare(net: Network, x: dict[str, np.ndarray], record: tuple[str, ...]) -> dict[str, int]:
    a = engine.run(net, x, record=record, engine="dense", counters=True)
    b = engine.run(net, x, record=record, engine="event", counters=True)
    assert sorted(a.outputs) == sorted(b.outputs)
    for k in a.outputs:
        np.testing.assert_array_equal(b[k], a[k], err_msg=k)
    for g in net.groups:
        for var in ("u", "v"):
            np.testing.assert_array_equal(
                getattr(b.state.groups[g.name], var), getattr(a.state.groups[g.name], var)
            )
        # pending activations: only wrap32(sum) reaches a neuron, so they are equal modulo 2**32
        np.testing.assert_array_equal(wrap32(b.state.rings[g.name]), wrap32(a.state.rings[g.name]))
    for field in ("spike_counts", "input_events"):
        for k, arr in getattr(a.counters, field).items():
            np.testing.assert_array_equal(getattr(b.counters, field)[k], arr, err_msg=f"{field}[{k}]")
    return dict(b.metadata)


@pytest.mark.parametrize("seed", range(40))
def test_random_networks_match_dense(seed: int) -> None:
    rng = np.random.default_rng(seed)
    net = random_network(rng, kinds=("lif", "lif_reset", "ternary"), steps=30, overdrive=0.3)
    x = random_inputs(rng, net, 30, batch=2)
    _compare(net, x, ("spikes", "u", "v", "a_in") if seed % 2 else ("spikes",))


def _sparse_net(rng: np.random.Generator, n: int, kind: str) -> Network:
    """Mostly silent recurrent group: a fifth of the neurons driven by bias alone, sparse input."""
    dv = int(rng.choice([0, 1, 7, 300, 4095]))
    du = int(rng.choice([0, 100, 2048, 4095]))
    bias = np.where(rng.random(n) < 0.2, rng.integers(-4096, 4096, n), 0)
    fields = dict(name="h", n=n, du=du, dv=dv, vth=int(rng.choice([0, 5, 300])), bias_mant=bias)
    fields.update(bias_exp=rng.integers(-6, 11, n), u0=0, v0=rng.integers(-VMAX, VMAX, n))
    if kind == "ternary":
        g: LIFGroup = TernaryLIFGroup(**fields, vth_lo=-int(rng.integers(0, 3000)))
    else:
        g = LIFGroup(**fields, reset=kind)
    w_in = np.where(rng.random((n, 8)) < 0.05, rng.integers(-256, 256, (n, 8)), 0)
    w_rec = np.where(rng.random((n, n)) < 0.02, rng.integers(-256, 256, (n, n)), 0)
    delays = rng.integers(0, 12, (n, n)) if rng.random() < 0.5 else None
    conns = [
        Connection(name="in", source="x", target="h", weights=w_in, weight_exp=int(rng.integers(-8, 8))),
        Connection(name="rec", source="h", target="h", weights=w_rec, delays=delays, weight_exp=-2),
    ]
    return Network(inputs=[InputGroup(name="x", n=8)], groups=[g], connections=conns)


@pytest.mark.parametrize("seed", range(12))
def test_sparse_bias_driven_networks_match_dense(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    net = _sparse_net(rng, 150, ("zero", "subtract", "ternary")[seed % 3])
    x = {"x": (rng.random((1, 300, 8)) < 0.01).astype(np.int64)}
    _compare(net, x, ("spikes",))


def test_spikes_only_recording_is_lazy() -> None:
    rng = np.random.default_rng(7)
    n, steps = 400, 500
    g = LIFGroup(
        name="h",
        n=n,
        du=410,
        dv=410,
        vth=100,
        bias_mant=np.where(np.arange(n) < 4, 700, 0),
        bias_exp=0,
        u0=0,
        v0=0,
    )
    w = np.where(rng.random((n, 8)) < 0.01, 200, 0)
    net = Network(
        inputs=[InputGroup(name="x", n=8)],
        groups=[g],
        connections=[Connection(name="c", source="x", target="h", weights=w)],
    )
    x = {"x": (rng.random((1, steps, 8)) < 0.02).astype(np.int64)}
    meta = _compare(net, x, ("spikes",))
    assert meta["neuron_updates"] < 0.1 * n * steps  # u transients dominate (stepped while u != 0)
    meta_v = _compare(net, x, ("spikes", "v"))
    assert meta_v["neuron_updates"] >= n * steps


@pytest.mark.parametrize("first", ["dense", "event"])
def test_state_handover_between_engines(first: str) -> None:
    rng = np.random.default_rng(3)
    net = _sparse_net(rng, 60, "zero")
    x = {"x": (rng.random((2, 80, 8)) < 0.05).astype(np.int64)}
    whole = engine.run(net, x, engine="dense")
    second = "event" if first == "dense" else "dense"
    a = engine.run(net, {"x": x["x"][:, :37]}, engine=first)
    b = engine.run(net, {"x": x["x"][:, 37:]}, engine=second, state=a.state)
    np.testing.assert_array_equal(np.concatenate([a["h/spikes"], b["h/spikes"]], axis=1), whole["h/spikes"])


def _tiny(group: object) -> Network:
    return Network(
        inputs=[InputGroup(name="x", n=1)],
        groups=[group],
        connections=[Connection(name="c", source="x", target=group.name, weights=[[1]])],
    )


def test_unsupported_inputs_are_refused() -> None:
    sd = SigmaDeltaGroup(name="s", n=1, vth=1, bias=[0])
    x = np.zeros((3, 1), np.int64)
    with pytest.raises(UnsupportedError, match="supported: LIFGroup, TernaryLIFGroup"):
        engine.run(_tiny(sd), x, engine="event")
    ref = LIFGroup(
        name="h", n=1, du=0, dv=0, vth=1, bias_mant=[0], bias_exp=[0], u0=[0], v0=[0], refractory=2
    )
    with pytest.raises(UnsupportedError, match="refractory"):
        engine.run(_tiny(ref), x, engine="event")
    lif = LIFGroup(name="h", n=1, du=0, dv=0, vth=1, bias_mant=[0], bias_exp=[0], u0=[0], v0=[0])
    with pytest.raises(UnsupportedError, match="overflow='wrap' only"):
        engine.run(_tiny(lif), x, engine="event", overflow="strict")
    with pytest.raises(UnsupportedError, match="mode='fixed'"):
        engine.run(_tiny(lif), x, engine="event", mode="float")


def test_extreme_decays_match_dense() -> None:
    """du = -1 (u never decays) and dv = 4096 (v fully decays), which LIFGroup accepts."""
    z = np.zeros(4, np.int64)
    g = LIFGroup(name="h", n=4, du=-1, dv=4096, vth=5, bias_mant=z, bias_exp=z, u0=z, v0=z)
    w = np.array([[1, 2, 3]] * 4)
    net = Network(
        inputs=(InputGroup(name="in", n=3),),
        groups=(g,),
        connections=(Connection(name="c", source="in", target="h", weights=w),),
    )
    x = (np.random.default_rng(0).random((2, 40, 3)) < 0.3).astype(np.int8)
    _compare(net, {"in": x}, ("spikes",))
    _compare(net, {"in": x}, ("spikes", "u", "v"))


@pytest.mark.parametrize("dv", [0, 1, 2, 41, 410, 2048, 4000, 4095, 4096])
def test_decay_to_zero_shortcut_is_proven(dv: int) -> None:
    """``_decays_to_zero(v, dv, k)`` (the O(1) catch-up of a neuron without bias) claims 0 only where
    stepping ``decay`` ``k`` times gives 0 (checked against the plain step loop, over magnitudes up
    to the v limit), and claims it at least after ``|v|`` steps."""
    from spikeport.emulator.engines.event_loop import _decays_to_zero

    for v in [*range(-40, 41), 997, -5000, 123_457, -(VMAX - 3), VMAX]:
        x, first = v, 0
        while x != 0 and first < 20_000:
            x, first = _decay(x, dv), first + 1
        for k in range(0, min(first + 3, 20_000)):
            if _decays_to_zero(v, dv, k):
                assert k >= first, (v, dv, k, first)
        if dv >= 1:  # |v| shrinks by at least 1 per step
            assert _decays_to_zero(v, dv, abs(v)), (v, dv)


@pytest.mark.parametrize("seed", range(6))
def test_long_silent_gaps_match_dense(seed: int) -> None:
    """Neurons without bias that sit dormant for hundreds of steps between rare inputs (catch-up by
    the zero shortcut or the band walk, no predictions) and a few bias-driven ones, over 1,500 steps."""
    rng = np.random.default_rng(500 + seed)
    n = 120
    dv = int(rng.choice([0, 1, 3, 410, 4095]))
    kind = ("zero", "subtract", "ternary")[seed % 3]
    bias = np.where(rng.random(n) < 0.05, rng.integers(-2000, 2000, n), 0)
    fields = dict(name="h", n=n, du=int(rng.choice([0, 2048, 4095])), dv=dv, vth=int(rng.choice([0, 40])))
    fields.update(bias_mant=bias, bias_exp=0, u0=0, v0=rng.integers(-(1 << 20), 1 << 20, n))
    g: LIFGroup = (
        TernaryLIFGroup(**fields, vth_lo=-int(rng.integers(0, 300)))
        if kind == "ternary"
        else LIFGroup(**fields, reset=kind)
    )
    w = np.where(rng.random((n, 4)) < 0.2, rng.integers(-200, 200, (n, 4)), 0)
    net = Network(
        inputs=[InputGroup(name="x", n=4)],
        groups=[g],
        connections=[Connection(name="in", source="x", target="h", weights=w)],
    )
    x = {"x": (rng.random((2, 1500, 4)) < 0.004).astype(np.int64)}
    _compare(net, x, ("spikes",))


def test_step_numbers_beyond_int32_are_refused() -> None:
    """The event engine keeps step numbers in int32 row columns: a state that would run past step
    2**31 - 1 is refused (the dense engine runs it)."""
    from dataclasses import replace

    lif = LIFGroup(name="h", n=1, du=0, dv=0, vth=1, bias_mant=[0], bias_exp=[0], u0=[0], v0=[0])
    x = np.zeros((1, 3, 1), np.int64)
    first = engine.run(_tiny(lif), x, engine="dense")
    late = replace(first.state, time_step=(1 << 31) - 2)
    with pytest.raises(UnsupportedError, match=r"event engine: runs up to step 2147483647 \(got"):
        engine.run(_tiny(lif), x, engine="event", state=late)
    engine.run(_tiny(lif), x[:, :1], engine="event", state=late)  # the last representable step runs


@pytest.mark.parametrize("seed", range(6))
def test_step_windows_do_not_change_results(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The event engine runs a sample in windows of steps (so Ctrl-C is answered between them): windows
    of 1-3 steps give the same outputs and final state as one window per sample."""
    from spikeport.emulator.engines import chunking

    rng = np.random.default_rng(100 + seed)
    net = _sparse_net(rng, 40, ("zero", "subtract", "ternary")[seed % 3])
    x = np.where(rng.random((2, 60, 8)) < 0.1, 1, 0)
    record = ("h/spikes", "h/u", "h/v", "h/a_in")
    monkeypatch.setattr(chunking, "TARGET_S", float("inf"))
    whole = engine.run(net, {"x": x}, record=record, engine="event")
    monkeypatch.setattr(chunking, "TARGET_S", 0.0)  # every window: max(1, ...) steps
    monkeypatch.setattr(chunking, "FIRST", 3)
    parts = engine.run(net, {"x": x}, record=record, engine="event")
    for key, value in whole.outputs.items():
        np.testing.assert_array_equal(parts.outputs[key], value, err_msg=key)
    np.testing.assert_array_equal(parts.state.groups["h"].v, whole.state.groups["h"].v)
    np.testing.assert_array_equal(parts.state.groups["h"].u, whole.state.groups["h"].u)
