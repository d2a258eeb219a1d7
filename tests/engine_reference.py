"""A second, plainly written fixed-point engine: Python ints, one sample, one neuron at a time.

Written from docs/lava-arithmetic.md and the network.py docstrings, sharing no code with spikeport's engine
or kernels. Imported by path from tests (``tests`` is not a package).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np


def wrap32(x: int) -> int:
    x %= 2**32
    return x - 2**32 if x >= 2**31 else x


def decay(x: int, d: int) -> int:
    p = x * (4096 - d)
    return abs(p) // 4096 * (1 if p >= 0 else -1)


def shift(a: int, e: int) -> int:
    return a * 2**e if e > 0 else a // 2 ** (-e)


def eff_weight(w: int, lo: int, hi: int, nbits: int) -> int:
    """Lava's clip by sign mode then truncation of the low bits."""
    if lo < 0 < hi:  # mixed
        w = max(-256, min(255, w))
        q = 2 ** (9 - nbits)
        return (w // q) * q
    if lo >= 0:  # excitatory
        w = max(0, min(255, w))
        q = 2 ** (8 - nbits)
        return (w // q) * q
    w = max(-255, min(0, w))
    q = 2 ** (8 - nbits)
    return -((-w) // q * q)


def reference_run(net, x: dict[str, np.ndarray], steps: int) -> dict[str, np.ndarray]:
    """x: input name -> (T, n) ints. Returns "<group>/<var>" -> (T, n) int64 arrays."""
    pending: dict[tuple[str, int, int], int] = defaultdict(int)  # (group, step, neuron) -> sum
    st: dict[str, dict[str, list[int]]] = {}
    for g in net.groups:
        n = int(g.n)
        if hasattr(g, "du"):
            st[g.name] = {"u": [int(a) for a in g.u0], "v": [int(a) for a in g.v0], "ref": [0] * n}
        else:
            st[g.name] = {k: [0] * n for k in ("sigma", "act", "residue", "error")}
    weights = {}
    for c in net.connections:
        w = [[int(a) for a in row] for row in np.asarray(c.weights)]
        lo, hi = min(min(r) for r in w), max(max(r) for r in w)
        weights[c.name] = [[eff_weight(a, lo, hi, int(c.num_weight_bits)) for a in row] for row in w]
    rec: dict[str, list[list[int]]] = defaultdict(list)
    for t in range(1, steps + 1):
        msgs: dict[str, list[int]] = {}
        for g in net.groups:
            s = st[g.name]
            a_in = [wrap32(pending.pop((g.name, t, j), 0)) for j in range(int(g.n))]
            rec[f"{g.name}/a_in"].append(a_in)
            if hasattr(g, "du"):
                out = _lif(g, s, a_in, t)
                for k in ("u", "v"):
                    rec[f"{g.name}/{k}"].append(list(s[k]))
            else:
                out = _sigma_delta(g, s, a_in)
                for k in ("sigma", "act", "residue", "error"):
                    rec[f"{g.name}/{k}"].append(list(s[k]))
            rec[f"{g.name}/spikes"].append(out)
            msgs[g.name] = out
        for ig in net.inputs:
            msgs[ig.name] = [int(a) for a in x[ig.name][t - 1]]
        for c in net.connections:
            w = weights[c.name]
            m = msgs[c.source]
            graded = c.num_message_bits > 0
            delay_dense = c.delays is not None and not c.sparse
            for j, row in enumerate(w):
                per_delay: dict[int, int] = defaultdict(int)
                for i, wi in enumerate(row):
                    d = 0 if c.delays is None else int(c.delays[j][i])
                    if graded:
                        prod = wi * m[i]
                        per_delay[d] += wrap32(prod) if delay_dense else prod
                    elif m[i] != 0:
                        per_delay[d] += wi
                for d, acc in per_delay.items():
                    if graded and not delay_dense:
                        acc = wrap32(acc)
                    pending[(c.target, t + 1 + d, j)] += wrap32(shift(acc, int(c.weight_exp)))
    return {k: np.array(v, dtype=np.int64) for k, v in rec.items()}


def _lif(g, s: dict[str, list[int]], a_in: list[int], t: int) -> list[int]:
    out = []
    theta = int(g.vth) * 64
    ternary = hasattr(g, "vth_lo")
    if g.reset_interval and t % int(g.reset_interval) == int(g.reset_offset):
        s["u"] = [0] * len(s["u"])
        s["v"] = [0] * len(s["v"])
    for j in range(len(a_in)):
        e = int(g.bias_exp[j])
        bias = int(g.bias_mant[j]) * 2**e if e >= 0 else int(g.bias_mant[j]) // 2 ** (-e)
        u = wrap32(decay(s["u"][j], int(g.du) + 1) + wrap32(a_in[j] * 64))
        if u > 2**23:
            u -= 2**24
        elif u <= -(2**23):
            u += 2**24
        v = wrap32(decay(s["v"][j], int(g.dv)) + u + bias)
        v = min(2**23 - 1, max(-(2**23) + 1, v))
        spike = 0
        if g.refractory and s["ref"][j] > 0:
            v = s["v"][j]
            s["ref"][j] -= 1
        else:
            most = int(getattr(g, "max_spikes", 1))
            if v > theta:
                # multi-spike (max_spikes > 1): as many whole thresholds as v holds, at most `most`
                spike = 1 if most == 1 else (most if theta == 0 else min(most, v // theta))
            elif ternary and v < int(g.vth_lo) * 64:
                spike = -1
            if spike:
                v = v - spike * theta if g.reset == "subtract" else 0
                s["ref"][j] = int(g.refractory)
        s["u"][j], s["v"][j] = u, v
        out.append(spike)
    return out


def _sigma_delta(g, s: dict[str, list[int]], a_in: list[int]) -> list[int]:
    scale = 2 ** (int(g.spike_exp) + int(g.state_exp))
    vth = wrap32(int(g.vth) * scale)
    out = []
    for j in range(len(a_in)):
        bias = wrap32(int(g.bias[j]) * scale)
        sigma = wrap32(s["sigma"][j] + a_in[j])
        act = wrap32(sigma + bias)
        if g.act_mode == "relu":
            act = max(act, 0)
        if g.corrected:
            delta = wrap32(act - s["act"][j])
            sent = (delta if abs(delta) >= vth else 0) // 2 ** int(g.state_exp)
            s["act"][j] = wrap32(s["act"][j] + sent * 2 ** int(g.state_exp))
            s["sigma"][j] = sigma
            out.append(sent)
            continue
        delta = wrap32(act - s["act"][j] + s["residue"][j])
        if g.cum_error:
            s["error"][j] = wrap32(s["error"][j] + delta)
            sent = delta if abs(s["error"][j]) >= vth else 0
            if sent:
                s["error"][j] = 0
        else:
            sent = delta if abs(delta) >= vth else 0
        s["residue"][j] = delta - sent
        s["sigma"][j], s["act"][j] = sigma, act
        out.append(sent // 2 ** int(g.state_exp))
    return out
