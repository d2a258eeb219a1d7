"""Energy per inference from activity counts and per-operation energy profiles.

A profile is data: one TOML file per profile in ``profiles/`` (user profiles: any ``.toml`` or ``.json``
with the same fields), every number with its source. Two kinds:

- ``neuromorphic``: costs ``synop`` (per synaptic op), ``neuron_active`` / ``neuron_inactive`` (per
  neuron update, see :mod:`spikeport.emulator.energy.synops` for the rule), ``spike_out`` (per spike a neuron
  fires), ``message`` (per spike per destination core); optional ``synop_sparse`` (used for
  ``sparse=True`` connections) and the informational ``hop_ew`` / ``hop_ns`` (mesh hops need a
  placement, which spikeport does not model: they are listed, never applied).
  Energy = synaptic (synops x synop) + neuron (updates + spike_out) + routing (messages x message).
- ``ann``: costs ``mac`` and ``ac``. Energy of the spiking run on a digital accelerator =
  NeuroBench effective ACs x ac + effective MACs x mac; the ANN-equivalent of the network run
  densely = NeuroBench dense ops x mac.
All energies are in picojoules.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from spikeport.emulator.energy.neurobench import NeuroBenchOps
from spikeport.emulator.energy.synops import SynOpsCounts
from spikeport.emulator.errors import ValidationError, field_error

KINDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "neuromorphic": (
        frozenset({"synop", "neuron_active", "neuron_inactive", "spike_out", "message"}),
        frozenset({"synop_sparse", "hop_ew", "hop_ns"}),
    ),
    "ann": (frozenset({"mac", "ac"}), frozenset()),
}
_TOP_KEYS = frozenset({"name", "kind", "title", "caveat", "neurons_per_core", "costs"})


@dataclass(frozen=True, kw_only=True)
class Cost:
    pj: float
    source: str


@dataclass(frozen=True, kw_only=True, eq=False)
class EnergyProfile:
    name: str
    kind: str
    title: str
    caveat: str
    costs: Mapping[str, Cost]
    neurons_per_core: int = 1024

    def pj(self, key: str, default: str | None = None) -> float:
        if key in self.costs:
            return self.costs[key].pj
        if default is not None:
            return self.costs[default].pj
        raise field_error(f"EnergyProfile({self.name!r})", f"costs.{key}", "is not defined", None)


def profile_from_dict(data: Mapping[str, Any], *, origin: str = "profile") -> EnergyProfile:
    """Validate a parsed profile (TOML/JSON structure) and build it; errors name file and field."""
    obj = f"EnergyProfile({origin})"
    if not isinstance(data, Mapping):
        raise field_error(obj, "<root>", "must be a table/object", type(data).__name__)
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise field_error(obj, "<root>", f"unknown keys; allowed {sorted(_TOP_KEYS)}", unknown)
    for key in ("name", "kind", "title", "costs"):
        if key not in data:
            raise field_error(obj, key, "is required", None)
    kind = data["kind"]
    if kind not in KINDS:
        raise field_error(obj, "kind", f"must be one of {sorted(KINDS)}", kind)
    required, optional = KINDS[kind]
    costs = data["costs"]
    if not isinstance(costs, Mapping):
        raise field_error(obj, "costs", "must be a table of {pj, source}", type(costs).__name__)
    missing = sorted(required - set(costs))
    if missing:
        raise field_error(obj, "costs", f"missing required costs for kind {kind!r}", missing)
    extra = sorted(set(costs) - required - optional)
    if extra:
        raise field_error(obj, "costs", f"unknown keys; allowed {sorted(required | optional)}", extra)
    parsed = {k: _cost(obj, k, v) for k, v in costs.items()}
    npc = data.get("neurons_per_core", 1024)
    if isinstance(npc, bool) or not isinstance(npc, int) or npc < 1:
        raise field_error(obj, "neurons_per_core", "must be an integer >= 1", npc)
    return EnergyProfile(
        name=str(data["name"]),
        kind=kind,
        title=str(data["title"]),
        caveat=str(data.get("caveat", "")),
        costs=parsed,
        neurons_per_core=npc,
    )


def _cost(obj: str, key: str, value: Any) -> Cost:
    if not isinstance(value, Mapping) or set(value) != {"pj", "source"}:
        got = sorted(value) if isinstance(value, Mapping) else value
        raise field_error(obj, f"costs.{key}", "must have exactly the keys ['pj', 'source']", got)
    pj = value["pj"]
    if isinstance(pj, bool) or not isinstance(pj, int | float) or not math.isfinite(pj) or pj < 0:
        raise field_error(obj, f"costs.{key}.pj", "must be a finite number >= 0 (picojoules)", pj)
    src = value["source"]
    if not isinstance(src, str) or not src.strip():
        raise field_error(obj, f"costs.{key}.source", "must cite where the number comes from", src)
    return Cost(pj=float(pj), source=src)


def builtin_profiles() -> tuple[str, ...]:
    """Names of the profiles shipped in ``spikeport.emulator.energy/profiles``."""
    base = resources.files("spikeport.emulator.energy").joinpath("profiles")
    return tuple(sorted(p.name[: -len(".toml")] for p in base.iterdir() if p.name.endswith(".toml")))


def load_profile(name_or_path: str | Path) -> EnergyProfile:
    """A built-in profile by name (``loihi1``, ...) or a user profile file (``.toml`` or ``.json``)."""
    text = str(name_or_path)
    if text in builtin_profiles():
        res = resources.files("spikeport.emulator.energy").joinpath("profiles", f"{text}.toml")
        return profile_from_dict(tomllib.loads(res.read_text(encoding="utf-8")), origin=text)
    path = Path(text)
    if not path.is_file():
        raise field_error(
            "load_profile", "name", f"no such file or built-in {list(builtin_profiles())}", text
        )
    raw = path.read_text(encoding="utf-8")
    try:
        data = json.loads(raw) if path.suffix.lower() == ".json" else tomllib.loads(raw)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValidationError(f"EnergyProfile({path.name}): cannot parse: {exc}") from exc
    return profile_from_dict(data, origin=path.name)


@dataclass(frozen=True, kw_only=True, eq=False)
class EnergyEstimate:
    """Per-sample energies in pJ (arrays (B,)); ``per_group[g] = (synaptic, neuron, routing)``."""

    profile: EnergyProfile
    synaptic: np.ndarray
    neuron: np.ndarray
    routing: np.ndarray
    per_group: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]]

    @property
    def total(self) -> np.ndarray:
        return self.synaptic + self.neuron + self.routing

    def per_inference(self) -> dict[str, float]:
        """Means over the samples, in pJ."""
        return {
            "synaptic": float(np.mean(self.synaptic)),
            "neuron": float(np.mean(self.neuron)),
            "routing": float(np.mean(self.routing)),
            "total": float(np.mean(self.total)),
        }


def estimate(counts: SynOpsCounts, ops: NeuroBenchOps, profile: EnergyProfile) -> EnergyEstimate:
    """Energy of a run under ``profile`` (formulas in the module docstring)."""
    zero = np.zeros(counts.batch)
    if profile.kind == "ann":
        syn = ops.effective_acs * profile.pj("ac") + ops.effective_macs * profile.pj("mac")
        per = {g.name: (zero.copy(), zero, zero) for g in counts.groups}
        for c in counts.connections:
            a, m, _ = ops.per_connection[c.name]
            per[c.target] = (per[c.target][0] + a * profile.pj("ac") + m * profile.pj("mac"), zero, zero)
        return EnergyEstimate(profile=profile, synaptic=syn, neuron=zero, routing=zero, per_group=per)
    per_group: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for g in counts.groups:
        syn = zero.copy()
        for c in counts.connections:
            if c.target == g.name:
                syn = syn + c.synops * profile.pj("synop_sparse" if c.sparse else "synop", default="synop")
        neu = (
            g.active_updates * profile.pj("neuron_active")
            + g.inactive_updates * profile.pj("neuron_inactive")
            + (zero if g.is_input else g.spikes * profile.pj("spike_out"))
        )
        per_group[g.name] = (syn, neu, g.messages_out * profile.pj("message"))
    parts = [np.sum([v[i] for v in per_group.values()], axis=0) for i in range(3)]
    return EnergyEstimate(
        profile=profile, synaptic=parts[0], neuron=parts[1], routing=parts[2], per_group=per_group
    )


def ann_dense_energy(ops: NeuroBenchOps, profile: EnergyProfile) -> np.ndarray:
    """Per-sample energy (pJ) of the same network run densely as an ANN: dense ops x ``mac``."""
    if profile.kind != "ann":
        raise field_error(
            f"EnergyProfile({profile.name!r})", "kind", "must be 'ann' for a dense baseline", profile.kind
        )
    return ops.dense * profile.pj("mac")
