"""Run an integer :class:`~spikeport.emulator.network.Network` on Lava (lava-nc 0.10.0, fixed_pt).

``run_lava(net, inputs, record=...)`` takes the emulator's inputs and returns the emulator's output
structure (``"<group>/<variable>"`` -> ``(B, T, n)``), aligned step for step: a Lava ``RingBuffer``
emits ``data[:, t-1]`` at step ``t`` and a Dense delivers one step later, which is exactly the
network's documented timing, so Lava step ``t`` is output index ``t - 1`` with no shift.

Mapping (one Lava process per record):

- every InputGroup -> one shared ``RingBuffer`` holding all input channels stacked (int32 payloads);
  a connection from an input group sees the whole buffer through zero-padded weights. Zeros change
  neither Lava's sign mode (min >= 0 / max <= 0) nor any sum, so the arithmetic is that of a
  per-group source; the shared source ties every part of the network (and of merged networks) into
  one process graph, which Lava needs to run them in one go. A neuron group that no input reaches
  gets an all-zero Dense from the source for the same reason.
- Connection -> ``Dense`` / ``Sparse`` (``sparse=True``) / ``DelayDense`` / ``DelaySparse``
  (``delays`` set), with weight_exp, num_weight_bits and num_message_bits passed on.
- LIFGroup -> ``LIF`` (``LIFReset`` when reset_interval > 0); TernaryLIFGroup -> ``TernaryLIF``;
  a LIF-family group with subtract reset, a refractory period, ``max_spikes > 1`` (graded output)
  or a TernaryLIF with reset_interval -> spikeport's ``SpikeportLIF``
  (:mod:`~spikeport.lava.lif_processes`, a Python fixed_pt model: CPU only);
  SigmaDeltaGroup -> ``SigmaDelta`` (``corrected=True``: spikeport's ``SigmaDeltaCorrected``,
  :mod:`~spikeport.lava.sigma_delta_process`, upstream PR #875). Several connections into one group are summed by Lava's InPort.
- PSNGroup -> delayed ``DelayDense`` taps into a memoryless ``LIF`` under the group's name
  (:func:`~spikeport.lava.psn_lowering.lower_psn`, applied by :func:`run_lava`; where that mapping is
  not provably exact it refuses, naming what Lava lacks). Of the PSN's variables Lava records
  ``spikes`` and ``h`` (the LIF's summed tap input ``a_in``, equal to ``H`` because the lowering
  proves ``|H| < 2**17``); ``a_in`` (the PSN's own input), ``shifts`` and ``adds`` are not available.
- recorded variables -> one :mod:`~spikeport.lava.recorder` process for the whole run, which
  reads Vars and OutPorts exactly as Lava's ``Monitor`` does (one Monitor per variable would cost one
  OS process each). ``spikes`` is the ``s_out`` port; ``u``/``v`` and the sigma-delta
  ``sigma``/``act``/``residue``/``error`` are Lava Vars. ``a_in`` is not a Lava Var: it is computed
  from the recorded ``a_out`` port of every incoming connection, summed in int32 as Lava's InPort
  does (what the neuron received, observed, not re-modelled).

Lava has no batch: up to ``max_pack`` samples run side by side in one Lava run (every group ``B``
copies wide, every connection a block-diagonal Sparse), or sample by sample when a connection has
delays; processes are always stopped. What Lava fixed_pt cannot do raises :class:`UnsupportedError` (see :func:`check_supported`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from spikeport.emulator.errors import UnsupportedError, ValidationError, field_error
from spikeport.emulator.inputs import network_inputs
from spikeport.emulator.network import (
    LIFGroup,
    Network,
    SigmaDeltaGroup,
    TernaryLIFGroup,
)
from spikeport.emulator.psn import PSNGroup
from spikeport.emulator.result import RunResult
from spikeport.lava.process_graph import INT32, LAVA_NAMES, lava_modules, run_samples
from spikeport.lava.psn_lowering import lower_psn

# ---------------------------------------------------------------- what Lava cannot run


def _lif_refusals(g: LIFGroup) -> list[str]:
    """Nothing: Lava's LIF, LIFReset and TernaryLIF run the plain groups and spikeport's own
    ``SpikeportLIF`` (:mod:`~spikeport.lava.lif_processes`) everything else the emulator accepts."""
    return []


def _sd_refusals(g: SigmaDeltaGroup) -> list[str]:
    obj = f"SigmaDeltaGroup({g.name!r})"
    out = []
    scale = 1 << (int(g.spike_exp) + int(g.state_exp))
    big = max([abs(int(g.vth)), *np.abs(np.asarray(g.bias, np.int64)).tolist()]) * scale
    if big > INT32[1]:
        out.append(f"{obj}: vth/bias scaled by 2**(spike_exp + state_exp) overflow Lava's int32 Vars")
    return out


_REFUSALS: dict[type, Callable[[Any], list[str]]] = {
    LIFGroup: _lif_refusals,
    TernaryLIFGroup: _lif_refusals,
    SigmaDeltaGroup: _sd_refusals,
}


def check_supported(net: Network) -> None:
    """Raise :class:`UnsupportedError` listing every feature of ``net`` that Lava fixed_pt lacks."""
    problems: list[str] = []
    if not net.is_integer:
        try:
            net.require_integer()
        except ValidationError as exc:
            problems.append(f"non-integer values: Lava fixed_pt runs integer networks only ({exc})")
    for g in net.groups:
        refuse = _REFUSALS.get(type(g))
        if refuse is None:
            supported = ", ".join(t.__name__ for t in _REFUSALS)
            problems.append(
                f"{type(g).__name__}({g.name!r}): unsupported group type (supported: {supported})"
            )
        else:
            problems += refuse(g)
    if problems:
        raise UnsupportedError("cannot run on Lava fixed_pt: " + "; ".join(problems))


# ---------------------------------------------------------------- inputs and record


def normalize_inputs(net: Network, inputs: Any) -> dict[str, np.ndarray]:
    """``{input name: int64 (B, T, n)}``: the emulator's inputs and rules
    (:func:`spikeport.emulator.inputs.network_inputs`), as int64 for Lava's int32 payloads."""
    xs = network_inputs(net, inputs, caller="run_lava", mode="fixed")
    return {k: x.astype(np.int64) for k, x in xs.items()}


#: PSN variable -> the variable of its lowered memoryless LIF that holds it on Lava
PSN_ON_LAVA: dict[str, str] = {"spikes": "spikes", "h": "a_in"}


def _lava_names(g: Any) -> dict[str, Any]:
    return PSN_ON_LAVA if isinstance(g, PSNGroup) else LAVA_NAMES.get(type(g), {})


def resolve_record(net: Network, record: Sequence[str]) -> list[tuple[str, str]]:
    """``(group, variable)`` pairs: an entry ``"var"`` selects every neuron group that has it,
    ``"group/var"`` one group. PSN groups offer :data:`PSN_ON_LAVA`'s variables."""
    pairs: list[tuple[str, str]] = []
    for entry in record:
        group, _, var = entry.rpartition("/")
        chosen = [g for g in net.groups if (not group or g.name == group)]
        if group and not chosen:
            raise field_error("record", entry, "no neuron group of that name", group)
        have = [g for g in chosen if var in _lava_names(g)]
        if not have and group and isinstance(chosen[0], PSNGroup):
            raise field_error("record", entry, f"a PSN group on Lava records only {sorted(PSN_ON_LAVA)}", var)
        if not have:
            raise field_error("record", entry, "no selected group has this variable", var)
        pairs += [(g.name, var) for g in have if (g.name, var) not in pairs]
    return pairs


#: a packed Lava run holds at most this many neurons (samples x network size)
PACK_NEURONS = 50_000


def pack_size(net: Network, batch: int, max_pack: int) -> int:
    """Samples per Lava run: several side by side (block-diagonal) when no connection has delays
    (DelaySparse would need the delay pattern to match the weights'), bounded by ``max_pack`` and
    :data:`PACK_NEURONS`; else 1."""
    if max_pack <= 1 or any(c.delays is not None for c in net.connections):
        return 1
    size = sum(int(g.n) for g in (*net.inputs, *net.groups))
    return max(1, min(batch, max_pack, PACK_NEURONS // max(size, 1)))


def _chunks(batch: int, size: int, progress: bool) -> Iterator[slice]:
    import sys

    starts = range(0, batch, size)
    if progress and len(starts) > 1 and sys.stderr.isatty():
        from tqdm import tqdm

        starts = tqdm(starts, desc="lava", unit="run")  # type: ignore[assignment]
    for a in starts:
        yield slice(a, min(a + size, batch))


def _run_chunks(
    net: Network, xs: dict[str, np.ndarray], pairs: list[tuple[str, str]], size: int, progress: bool
) -> dict[str, np.ndarray]:
    """Every chunk of samples through Lava, outputs concatenated (runs in the isolated child)."""
    L = lava_modules()
    batch = next(iter(xs.values())).shape[0]
    runs = [
        run_samples(L, net, {k: v[sl] for k, v in xs.items()}, pairs) for sl in _chunks(batch, size, progress)
    ]
    return {k: np.concatenate([r[k] for r in runs]) for k in (f"{g}/{v}" for g, v in pairs)}


def _emulator_dtypes(net: Network, outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The emulator's dtypes: int8 spikes of LIF groups, int32 everything else."""
    lif = {g.name for g in net.groups if isinstance(g, LIFGroup)}
    return {
        k: v.astype(np.int8 if k.endswith("/spikes") and k.rsplit("/", 1)[0] in lif else np.int32)
        for k, v in outputs.items()
    }


def _psn_pairs(net: Network, pairs: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """``pairs`` in the variables of the lowered PSN groups (:data:`PSN_ON_LAVA`), and lowered output
    key -> the PSN's output key."""
    psn = {g.name for g in net.groups if isinstance(g, PSNGroup)}
    lowered = [(g, PSN_ON_LAVA[v] if g in psn else v) for g, v in pairs]
    rename = {f"{g}/{lv}": f"{g}/{v}" for (g, v), (_, lv) in zip(pairs, lowered, strict=True) if g in psn}
    return lowered, rename


def run_lava(
    net: Network,
    inputs: Any,
    *,
    record: Sequence[str] = ("spikes",),
    progress: bool = False,
    max_pack: int = 64,
    timeout: float | None = None,
    isolate: bool = True,
) -> RunResult:
    """Run ``net`` on Lava fixed_pt; outputs ``"<group>/<variable>"`` -> (B, T, n), in the emulator's
    dtypes (int8 LIF and PSN spikes, int32 otherwise).

    PSN groups are lowered first (:func:`~spikeport.lava.psn_lowering.lower_psn`; it raises
    :class:`UnsupportedError` where the mapping is not exact) and keep their names: they record
    ``spikes`` and ``h`` only (:data:`PSN_ON_LAVA`), equal to the emulator's.

    Up to ``max_pack`` samples share one Lava run, side by side (see :func:`pack_size`);
    ``max_pack=1`` runs sample by sample. ``isolate`` (default) runs Lava in a watched child process
    group (:mod:`spikeport.lava.isolation`): a Lava process that dies, a run that passes ``timeout``
    seconds (None: no limit) or Ctrl-C ends the run with everything it started."""
    low = lower_psn(net) if any(isinstance(g, PSNGroup) for g in net.groups) else net
    check_supported(low)
    xs = normalize_inputs(low, inputs)
    pairs, rename = _psn_pairs(net, resolve_record(net, record))
    net = low
    batch, steps = next(iter(xs.values())).shape[:2]
    size = pack_size(net, batch, max_pack)
    if isolate:
        from spikeport.lava.isolation import run_isolated

        outputs = run_isolated(_run_chunks, net, xs, pairs, size, progress, timeout=timeout)
    else:
        outputs = _run_chunks(net, xs, pairs, size, progress)
    meta = {"backend": "lava", "lava_tag": "fixed_pt", "batch": int(batch), "steps": int(steps), "pack": size}
    meta.update(net.metadata)
    typed = _emulator_dtypes(net, outputs)
    return RunResult(outputs={rename.get(k, k): v for k, v in typed.items()}, metadata=meta)
