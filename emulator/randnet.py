"""Random integer networks for differential testing (emulator vs. Lava), deterministic from a seed.

:func:`random_network` draws a small network that stresses the corners of the fixed-point model:
extreme weights (+-255, -256), every sign mode (all >= 0, all <= 0, mixed), ``num_weight_bits``
1..8, ``weight_exp`` -8..7, ``du``/``dv`` including 0 and 4095, negative bias exponents, thresholds
at 0 and :data:`~spikeport.emulator.bits.VTH_MAX`, graded spikes, synaptic delays, recurrence (self
and between groups), LIFReset, TernaryLIF, SigmaDelta, and over-driven inputs that make ``u`` wrap
and ``v`` clip. :func:`random_inputs` draws matching input spikes or payloads, and
:func:`merge_networks` / :func:`merge_inputs` build the disjoint union of several networks (prefixed
names), so that one Lava run can check many configurations at once.

Only numpy; every draw comes from the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from spikeport.emulator import bits
from spikeport.emulator.network import (
    Connection,
    InputGroup,
    LIFGroup,
    Network,
    SigmaDeltaGroup,
    TernaryLIFGroup,
)

#: neuron kinds the generator draws from (names used in ``kinds=``)
KINDS: tuple[str, ...] = ("lif", "lif_reset", "ternary", "sigma_delta")
#: every kind ``kinds=`` accepts: KINDS and the opt-in spikeport extensions ("multi_spike": a LIFGroup
#: with max_spikes > 1, random reset and refractory; its outgoing connections are graded)
ALL_KINDS: tuple[str, ...] = (*KINDS, "multi_spike")
_SIGN_MODES = ("excitatory", "inhibitory", "mixed")


def _pick(rng: np.random.Generator, options: Sequence[Any]) -> Any:
    return options[int(rng.integers(len(options)))]


def _decay(rng: np.random.Generator) -> int:
    return int(_pick(rng, (0, bits.DECAY_MAX, 1, 2048, int(rng.integers(0, bits.DECAY_UNITY)))))


def _lif_fields(rng: np.random.Generator, name: str, n: int, steps: int) -> dict[str, Any]:
    vth = int(_pick(rng, (0, 1, bits.VTH_MAX, int(rng.integers(0, 200)), int(rng.integers(0, 5000)))))
    bias_exp = rng.integers(bits.BIAS_EXP_MIN, bits.BIAS_EXP_MAX + 1, n)
    bias_mant = rng.integers(bits.BIAS_MANT_MIN, bits.BIAS_MANT_MAX + 1, n)
    if rng.random() < 0.5:  # mostly quiet biases; the rest hit the clip at full scale
        bias_mant = np.where(rng.random(n) < 0.7, 0, bias_mant)
    u0 = np.zeros(n, np.int64)
    v0 = np.zeros(n, np.int64)
    if rng.random() < 0.3:
        lim = bits.STATE_LIMIT
        u0 = rng.choice([-lim, lim, lim - 1, -lim + 1, 0, 12345], n)
        v0 = rng.choice([bits.V_MIN, bits.V_MAX, 0, -777, (vth << bits.VTH_SHIFT)], n)
    out = dict(name=name, n=n, du=_decay(rng), dv=_decay(rng), vth=vth, bias_mant=bias_mant)
    out.update(bias_exp=bias_exp, u0=u0, v0=v0)
    return out


def _neuron_group(rng: np.random.Generator, kind: str, name: str, n: int, steps: int) -> Any:
    if kind == "sigma_delta":
        spike_exp, state_exp = int(rng.integers(0, 4)), int(rng.integers(0, 4))
        vth = int(_pick(rng, (0, 1, int(rng.integers(0, 64)), int(rng.integers(0, 5000)))))
        bias = np.where(rng.random(n) < 0.5, 0, rng.integers(-3000, 3000, n))
        return SigmaDeltaGroup(
            name=name,
            n=n,
            vth=vth,
            bias=bias,
            act_mode=_pick(rng, ("relu", "unit")),
            cum_error=bool(rng.random() < 0.3),
            spike_exp=spike_exp,
            state_exp=state_exp,
        )
    fields = _lif_fields(rng, name, n, steps)
    if kind == "ternary":
        lo = int(_pick(rng, (0, -1, -bits.VTH_MAX, -int(rng.integers(0, 5000)), min(1, fields["vth"]))))
        return TernaryLIFGroup(**fields, vth_lo=min(lo, fields["vth"]))
    if kind == "multi_spike":
        return LIFGroup(
            **fields,
            max_spikes=int(_pick(rng, (2, 3, 7, int(rng.integers(2, bits.MAX_SPIKES_MAX + 1))))),
            reset=_pick(rng, ("zero", "subtract")),
            refractory=int(_pick(rng, (0, 0, 1, 3))),
        )
    if kind == "lif_reset":
        interval = int(rng.integers(1, max(2, steps)))
        return LIFGroup(**fields, reset_interval=interval, reset_offset=int(rng.integers(0, interval)))
    return LIFGroup(**fields)


def random_weights(rng: np.random.Generator, shape: tuple[int, int], sign_mode: str) -> np.ndarray:
    """Integer weights in Lava's 8-bit range for ``sign_mode``, with extremes and zeros mixed in."""
    lo, hi = {"excitatory": (0, 255), "inhibitory": (-256, 0), "mixed": (-256, 255)}[sign_mode]
    scale = int(_pick(rng, (hi - lo, 8, 40)))
    w = rng.integers(max(lo, -scale), min(hi, scale) + 1, shape)
    extremes = np.array([v for v in (-256, -255, 255) if lo <= v <= hi] or [0])
    w = np.where(rng.random(shape) < 0.15, rng.choice(extremes, shape), w)
    w = np.where(rng.random(shape) < rng.random() * 0.6, 0, w)
    if sign_mode == "mixed" and w.size >= 2 and not (w.min() < 0 < w.max()):
        w.flat[0], w.flat[-1] = lo, hi
    return w.astype(np.int64)


def _connection(
    rng: np.random.Generator, name: str, src: Any, tgt: Any, *, steps: int, overdrive: bool
) -> Connection:
    sign_mode = _pick(rng, _SIGN_MODES)
    w = random_weights(rng, (int(tgt.n), int(src.n)), sign_mode)
    delays = None
    if rng.random() < 0.3:
        delays = rng.integers(0, max(1, min(bits.DELAY_MAX, steps // 2)) + 1, w.shape)
    graded_src = isinstance(src, InputGroup | SigmaDeltaGroup | TernaryLIFGroup)
    graded = bool(rng.random() < (0.7 if graded_src else 0.2))
    min_bits = 1
    if isinstance(src, LIFGroup) and src.max_spikes > 1:  # k spikes per step need a graded payload
        graded, min_bits = True, int(src.max_spikes).bit_length()
    weight_exp = int(rng.integers(bits.WEIGHT_EXP_MIN, bits.WEIGHT_EXP_MAX + 1))
    if overdrive:
        weight_exp = bits.WEIGHT_EXP_MAX
    return Connection(
        name=name,
        source=src.name,
        target=tgt.name,
        weights=w,
        weight_exp=weight_exp,
        num_weight_bits=int(_pick(rng, (8, 8, int(rng.integers(1, 9))))),
        num_message_bits=int(rng.integers(min_bits, 25)) if graded else 0,
        delays=delays,
        sparse=bool(rng.random() < 0.3),
    )


def random_network(
    rng: np.random.Generator,
    *,
    max_n: int = 5,
    max_groups: int = 3,
    steps: int = 20,
    kinds: Sequence[str] = KINDS,
    recurrence: bool = True,
    overdrive: float = 0.1,
) -> Network:
    """A random network of 1..``max_groups`` neuron groups of ``kinds`` with 1..``max_n`` neurons each.

    Every group gets at least one feed-forward connection from an input or an earlier group; with
    ``recurrence``, self and backward connections are added at random. ``steps`` bounds the delays and
    LIFReset intervals. With probability ``overdrive`` the network is built to overflow (weight_exp 7
    and large graded inputs; see :func:`random_inputs`), recorded in ``metadata["overdrive"]``.
    """
    bad = sorted(set(kinds) - set(ALL_KINDS))
    if bad or not kinds:
        raise ValueError(f"random_network: kinds must be a non-empty subset of {ALL_KINDS} (got {bad})")
    over = bool(rng.random() < overdrive)
    n_inputs = int(rng.integers(1, 3))
    inputs = [
        InputGroup(
            name=f"in{i}",
            n=int(rng.integers(1, max_n + 1)),
            num_message_bits=24 if over else int(_pick(rng, (0, 0, 8, int(rng.integers(1, 25))))),
        )
        for i in range(n_inputs)
    ]
    groups = [
        _neuron_group(rng, _pick(rng, kinds), f"g{i}", int(rng.integers(1, max_n + 1)), steps)
        for i in range(int(rng.integers(1, max_groups + 1)))
    ]
    conns: list[Connection] = []
    for i, tgt in enumerate(groups):
        sources: list[Any] = [*inputs, *groups[:i]]
        picked = [sources[int(rng.integers(len(sources)))]]
        if rng.random() < 0.3 and len(sources) > 1:
            picked.append(sources[int(rng.integers(len(sources)))])
        if recurrence and rng.random() < 0.3:
            picked.append(tgt)
        if recurrence and i + 1 < len(groups) and rng.random() < 0.3:
            picked.append(groups[int(rng.integers(i + 1, len(groups)))])
        for src in picked:
            name = f"c{len(conns)}_{src.name}_{tgt.name}"
            conns.append(_connection(rng, name, src, tgt, steps=steps, overdrive=over))
    return Network(
        inputs=tuple(inputs), groups=tuple(groups), connections=tuple(conns), metadata={"overdrive": over}
    )


def random_inputs(
    rng: np.random.Generator, net: Network, steps: int, batch: int = 1
) -> dict[str, np.ndarray]:
    """Inputs for ``net``: ``{input name: int64 array (batch, steps, n)}``.

    Binary groups (``num_message_bits == 0``) get 0/1 spikes at a random rate; graded groups get
    signed payloads with ``|x| < 2**num_message_bits``, often at that limit.
    """
    out: dict[str, np.ndarray] = {}
    for g in net.inputs:
        shape = (batch, steps, int(g.n))
        rate = float(_pick(rng, (0.1, 0.5, 0.9, rng.random())))
        fire = rng.random(shape) < rate
        if g.num_message_bits == 0:
            out[g.name] = fire.astype(np.int64)
            continue
        lim = (1 << int(g.num_message_bits)) - 1
        scale = int(_pick(rng, (lim, lim, 3, 100)))
        x = rng.integers(-min(lim, scale), min(lim, scale) + 1, shape)
        x = np.where(rng.random(shape) < 0.1, rng.choice([-lim, lim], shape), x)
        out[g.name] = np.where(fire, x, 0).astype(np.int64)
    return out


def prefixed(index: int, name: str) -> str:
    """The name of ``name`` from network ``index`` inside a merged network."""
    return f"n{index}_{name}"


def merge_networks(nets: Sequence[Network]) -> Network:
    """The disjoint union of ``nets``; every group and connection name is prefixed by
    :func:`prefixed` (``n<i>_``). Groups and connections keep their order."""
    inputs: list[InputGroup] = []
    groups: list[LIFGroup | SigmaDeltaGroup] = []
    conns: list[Connection] = []
    for i, net in enumerate(nets):
        inputs += [replace(g, name=prefixed(i, g.name)) for g in net.inputs]
        groups += [replace(g, name=prefixed(i, g.name)) for g in net.groups]
        conns += [
            replace(
                c,
                name=prefixed(i, c.name),
                source=prefixed(i, c.source),
                target=prefixed(i, c.target),
            )
            for c in net.connections
        ]
    meta = {"merged": [dict(n.metadata) for n in nets]}
    return Network(inputs=tuple(inputs), groups=tuple(groups), connections=tuple(conns), metadata=meta)


def merge_inputs(inputs: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Inputs of :func:`merge_networks`: the i-th mapping's names prefixed by ``n<i>_``."""
    return {prefixed(i, k): v for i, m in enumerate(inputs) for k, v in m.items()}


def split_outputs(outputs: Mapping[str, np.ndarray], index: int) -> dict[str, np.ndarray]:
    """The outputs of network ``index`` out of a merged run's ``"<group>/<variable>"`` mapping,
    with the prefix removed."""
    head = prefixed(index, "")
    return {k[len(head) :]: v for k, v in outputs.items() if k.startswith(head)}
