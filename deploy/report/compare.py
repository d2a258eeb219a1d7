"""Float NIR run vs the quantized network (emulator fixed point, optionally Lava): how far apart, where.

Timing. The float run (:func:`~spikeport.reference.run.run_nir`) lets a feed-forward edge carry
the same step's output; every emulator (and Lava) connection delivers one step later. The quantizer
records, per group, the lag by which the emulator runs behind (``Network.metadata["groups"][g]["lag"]``:
one step per connection on the longest feed-forward path, with skip connections delayed to match).
:func:`compare` feeds the emulator the same inputs followed by ``max lag`` zero steps and compares
float step ``t`` with emulator index ``t + lag[g]``.

Per group: spike agreement (fraction of equal (sample, step, neuron) entries; spike counts for a
multi-spike group, ``max_spikes > 1``), spike totals,
spike-count correlation (Pearson over (sample, neuron) counts), the first step at which any spike
differs, and for non-spiking groups the normalized RMS error of v (``v_int / S + v_reset`` vs the
float v). Per output: the fraction of samples whose argmax (spike count, or summed v) agrees.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from spikeport.emulator.engines.dispatch import run
from spikeport.emulator.errors import ValidationError
from spikeport.emulator.network import Network
from spikeport.quantize.quantize_nir import encode_inputs
from spikeport.quantize.semantics import Semantics


def _corr(a: np.ndarray, b: np.ndarray) -> float | None:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    if a.size < 2 or np.std(a) == 0 or np.std(b) == 0:
        return 1.0 if np.array_equal(a, b) else None
    return float(np.corrcoef(a, b)[0, 1])


def _first_divergence(a: np.ndarray, b: np.ndarray) -> int | None:
    diff = np.any(a != b, axis=(0, 2))
    return int(np.argmax(diff)) if np.any(diff) else None


def group_metrics(ref: np.ndarray, got: np.ndarray) -> dict[str, Any]:
    """Spike metrics of two (B, T, n) spike arrays aligned step for step."""
    return {
        "spike_agreement": float(np.mean(ref == got)) if ref.size else 1.0,
        "spikes_float": int(np.sum(ref)),
        "spikes_quantized": int(np.sum(got)),
        "count_correlation": _corr(ref.sum(axis=1), got.sum(axis=1)),
        "first_divergence_step": _first_divergence(ref, got),
    }


def aligned(res: Any, key: str, lag: int, steps: int) -> np.ndarray:
    """``res[key]`` from step ``lag`` on, ``steps`` long: the emulator run aligned with the float run."""
    return np.asarray(res[key])[:, lag : lag + steps]


def _backend_report(net: Network, ref: Any, res: Any, steps: int) -> dict[str, Any]:
    groups: dict[str, Any] = {}
    scores: dict[str, np.ndarray] = {}
    for name, meta in net.metadata["groups"].items():
        lag, node = int(meta["lag"]), meta["node"]
        if meta["spiking"]:
            got = aligned(res, f"{name}/spikes", lag, steps)
            want = np.asarray(ref[f"{node}/spikes"])
            if int(getattr(net.group(name), "max_spikes", 1)) > 1:  # multi-spike: compare the counts
                groups[name] = group_metrics(np.rint(want).astype(np.int64), got.astype(np.int64))
            else:
                groups[name] = group_metrics(want != 0, got != 0)
            scores[name] = got.sum(axis=1)
        else:
            v = aligned(res, f"{name}/v", lag, steps) / np.asarray(meta["scale"]) + np.asarray(
                meta["v_reset"]
            )
            key = f"{node}/v" if f"{node}/v" in ref.outputs else f"{node}/out"
            fv = np.asarray(ref[key], dtype=np.float64)
            rms = float(np.sqrt(np.mean(fv**2)))
            groups[name] = {
                "v_nrmse": float(np.sqrt(np.mean((v - fv) ** 2))) / rms if rms else 0.0,
                "v_max_abs_error": float(np.max(np.abs(v - fv), initial=0.0)),
            }
            scores[name] = v.sum(axis=1)
    return {"groups": groups, "scores": scores}


def _run_backend(net: Network, x: Any, backend: str, client: Any, chunk_size: int | None) -> Any:
    """Spikes and v on ``backend``, in process or over ``client``'s workers (same arrays)."""
    if client is None:
        if backend == "lava":
            from spikeport.lava.backend import run_lava

            return run_lava(net, x, record=("spikes", "v"))
        return run(net, x, record=("spikes", "v"))
    from spikeport.api import run as sp_run

    extra = {} if chunk_size is None else {"chunk_size": chunk_size}
    return sp_run(net, x, backend=backend, record=("spikes", "v"), client=client, **extra)


def compare(
    graph: Any,
    net: Network,
    inputs: Any,
    semantics: Semantics | str | None = None,
    *,
    lava: bool = False,
    client: Any = None,
    chunk_size: int | None = None,
) -> dict[str, Any]:
    """Run the float reference, the fixed-point emulator (and Lava) on ``inputs``; JSON-able report.
    ``client`` (a ``dask.distributed.Client``) runs the emulator and Lava split over its workers."""
    from spikeport.reference.run import run_nir

    if "groups" not in net.metadata or "inputs" not in net.metadata:
        raise ValidationError(
            "compare: the network carries no quantizer metadata (make it with spikeport quantize)"
        )
    sem = semantics if semantics is not None else Semantics.from_dict(dict(net.metadata["semantics"]))
    ref = run_nir(graph, inputs, sem, record=("spikes", "v", "out"))
    steps = int(ref.metadata.get("steps", next(iter(ref.outputs.values())).shape[1]))
    pad = max((int(g["lag"]) for g in net.metadata["groups"].values()), default=0)
    x = encode_inputs(net, inputs, pad=pad)
    backends = {"fixed": _run_backend(net, x, "emulator", client, chunk_size)}
    if lava:
        backends["lava"] = _run_backend(net, x, "lava", client, chunk_size)
    report: dict[str, Any] = {
        "semantics": sem.to_dict() if isinstance(sem, Semantics) else sem,
        "batch": int(next(iter(x.values())).shape[0]),
        "steps": steps,
        "lag_padding": pad,
        "timing": "float step t is compared with emulator index t + lag[group]",
        "backends": {},
    }
    float_scores = _float_scores(net, ref)
    for name, res in backends.items():
        rep = _backend_report(net, ref, res, steps)
        outs = {}
        for out, spec in net.metadata.get("outputs", {}).items():
            g = spec["group"]
            if g in rep["scores"] and g in float_scores:
                agree = np.argmax(rep["scores"][g], axis=-1) == np.argmax(float_scores[g], axis=-1)
                outs[out] = {"group": g, "argmax_agreement": float(np.mean(agree))}
        report["backends"][name] = {"groups": rep["groups"], "outputs": outs}
    if lava:
        report["lava_equals_fixed"] = {
            k: bool(np.array_equal(backends["lava"][k], backends["fixed"][k]))
            for k in backends["lava"].outputs
        }
    return report


def _float_scores(net: Network, ref: Any) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name, meta in net.metadata["groups"].items():
        node = meta["node"]
        if meta["spiking"]:
            out[name] = np.asarray(ref[f"{node}/spikes"]).sum(axis=1)
        else:
            key = f"{node}/v" if f"{node}/v" in ref.outputs else f"{node}/out"
            if key in ref.outputs:
                out[name] = np.asarray(ref[key]).sum(axis=1)
    return out


def format_report(rep: Mapping[str, Any]) -> str:
    """A terminal table of :func:`compare`'s report."""
    lines = [f"compare: {rep['batch']} sample(s) x {rep['steps']} steps ({rep['timing']})"]
    for backend, b in rep["backends"].items():
        lines.append(f"  float vs {backend}:")
        for g, m in b["groups"].items():
            if "spike_agreement" in m:
                corr = "n/a" if m["count_correlation"] is None else f"{m['count_correlation']:.4f}"
                lines.append(
                    f"    {g:<16} spike agreement {m['spike_agreement']:.4%}  spikes {m['spikes_float']} -> "
                    f"{m['spikes_quantized']}  count corr {corr}  "
                    f"first divergence {m['first_divergence_step']}"
                )
            else:
                lines.append(f"    {g:<16} v nrmse {m['v_nrmse']:.4%}  max |err| {m['v_max_abs_error']:.4g}")
        for o, m in b["outputs"].items():
            lines.append(f"    output {o} ({m['group']}): argmax agreement {m['argmax_agreement']:.2%}")
    if "lava_equals_fixed" in rep:
        ok = all(rep["lava_equals_fixed"].values())
        lines.append(f"  lava vs fixed emulator: {'bit-exact' if ok else 'DIFFERENT'}")
    return "\n".join(lines)
