"""``spikeport doctor``: versions of the stack and a real fixed-point Lava run.

The Lava check builds RingBuffer -> Dense -> LIF, runs it with ``Loihi2SimCfg(select_tag="fixed_pt")``
and compares u, v and spikes with a few-line integer re-statement of the LIF rules in
docs/lava-arithmetic.md, "LIF update" (an independent oracle: it does not use spikeport's emulator).
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np
from spikeport.lava.compat import import_lava, lava_available


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in ("spikeport", "numpy", "torch", "nir", "nirtorch", "h5py", "numba", "lava-nc"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    return out


def _reference_lif(a_in: np.ndarray, *, du: int, dv: int, vth: int, bias: int) -> dict[str, np.ndarray]:
    """LIF (docs/lava-arithmetic.md, "LIF update"), plainly, one neuron per column: a_in (T, n) -> u, v, s."""
    T, n = a_in.shape
    u = np.zeros(n, np.int64)
    v = np.zeros(n, np.int64)
    out = {k: np.zeros((T, n), np.int64) for k in ("u", "v", "s")}

    def decay(x: np.ndarray, d: int) -> np.ndarray:
        p = x * (4096 - d)
        return np.sign(p) * (np.abs(p) >> 12)

    for t in range(T):
        u = decay(u, du + 1) + (a_in[t] << 6)
        u = np.where(u > 2**23, u - 2**24, np.where(u <= -(2**23), u + 2**24, u))
        v = np.clip(decay(v, dv) + u + bias, -(2**23 - 1), 2**23 - 1)
        s = v > (vth << 6)
        v = np.where(s, 0, v)
        out["u"][t], out["v"][t], out["s"][t] = u, v, s
    return out


@dataclass
class LavaCheck:
    ok: bool
    steps: int
    seconds: float
    spikes: int
    mismatches: dict[str, int] = field(default_factory=dict)


def lava_smoke_check(steps: int = 40, seed: int = 0) -> LavaCheck:
    """Run a 6 -> 4 Dense + LIF network in Lava fixed_pt and compare with the plain integer oracle."""
    lif_mod = import_lava("lava.proc.lif.process")
    dense_mod = import_lava("lava.proc.dense.process")
    src_mod = import_lava("lava.proc.io.source")
    mon_mod = import_lava("lava.proc.monitor.process")
    cfg_mod = import_lava("lava.magma.core.run_configs")
    cond_mod = import_lava("lava.magma.core.run_conditions")

    rng = np.random.default_rng(seed)
    n_in, n = 6, 4
    x = (rng.random((n_in, steps)) < 0.4).astype(np.int32)
    w = rng.integers(-60, 120, size=(n, n_in)) * 2  # even: representable in mixed sign mode
    du, dv, vth, bias = 410, 256, 90, 30
    src = src_mod.RingBuffer(data=x)
    dense = dense_mod.Dense(weights=w, num_message_bits=0)
    lif = lif_mod.LIF(shape=(n,), du=du, dv=dv, vth=vth, bias_mant=bias, bias_exp=0)
    src.s_out.connect(dense.s_in)
    dense.a_out.connect(lif.a_in)
    mons = {}
    for name, var in (("u", lif.u), ("v", lif.v), ("s", lif.s_out)):
        mons[name] = mon_mod.Monitor()
        mons[name].probe(var, steps)
    t0 = time.perf_counter()
    try:
        lif.run(
            condition=cond_mod.RunSteps(num_steps=steps), run_cfg=cfg_mod.Loihi2SimCfg(select_tag="fixed_pt")
        )
        got: dict[str, Any] = {}
        for name, m in mons.items():
            data = m.get_data()
            got[name] = np.asarray(next(iter(next(iter(data.values())).values()))).reshape(steps, n)
    finally:
        lif.stop()
    seconds = time.perf_counter() - t0
    # Lava: the source emits x[:, t-1] at step t; Dense delivers one step later.
    a_in = np.zeros((steps, n), np.int64)
    a_in[1:] = x.T[:-1].astype(np.int64) @ w.T.astype(np.int64)
    ref = _reference_lif(a_in, du=du, dv=dv, vth=vth, bias=bias)
    mism = {k: int(np.count_nonzero(got[k].astype(np.int64) != ref[k])) for k in ref}
    return LavaCheck(
        ok=not any(mism.values()), steps=steps, seconds=seconds, spikes=int(ref["s"].sum()), mismatches=mism
    )


def report(run_lava: bool = True) -> dict[str, Any]:
    rep: dict[str, Any] = {"versions": package_versions(), "lava_available": lava_available()}
    if run_lava and rep["lava_available"]:
        chk = lava_smoke_check()
        rep["lava_fixed_pt"] = {
            "ok": chk.ok,
            "steps": chk.steps,
            "seconds": round(chk.seconds, 3),
            "spikes": chk.spikes,
            "mismatches": chk.mismatches,
        }
    return rep
