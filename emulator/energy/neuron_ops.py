"""Neuron-update energy from operation counts: LIF, float PSN and the multiplication-free PSN.

Per-operation energies at 45 nm, as used by Xue et al. (NeurIPS 2025) after Horowitz, "Computing's
energy problem (and what we can do about it)", ISSCC 2014 (docs/seed-methods.md, "Mul-free parallel
spiking neuron (Xue et al. 2025)"). Arithmetic only: memory traffic is not included.

Operations per neuron step (``taps`` = applied taps from the emulator's PSN counters, causal):

- ``lif`` (fp32): 1 multiply (leak) + 2 adds (input, threshold compare);
- ``psn`` (fp32 channel-wise PSN): ``taps`` multiplies + ``taps + 1`` adds (accumulate, compare);
- ``mulfree_psn`` (fixed point, 32-bit): ``taps`` shifts + ``taps + 1`` adds, 0 multiplies.
"""

from __future__ import annotations

from dataclasses import dataclass

from spikeport.emulator.errors import field_error

#: picojoules per operation, 45 nm, with sources
OP_ENERGY_PJ: dict[str, tuple[float, str]] = {
    "fp32_mult": (3.7, "Horowitz ISSCC 2014, 45 nm"),
    "fp32_add": (0.9, "Horowitz ISSCC 2014, 45 nm"),
    "int32_add": (0.1, "Horowitz ISSCC 2014, 45 nm"),
    "fix32_shift": (0.13, "Xue et al. NeurIPS 2025 (45 nm, 32-bit fixed-point shift)"),
}

#: neuron kind -> (multiply op, add op, shift op)
_OPS = {
    "lif": ("fp32_mult", "fp32_add", None),
    "psn": ("fp32_mult", "fp32_add", None),
    "mulfree_psn": (None, "int32_add", "fix32_shift"),
}


@dataclass(frozen=True, kw_only=True)
class NeuronOps:
    """Operation counts of one inference's neuron updates and their energy in pJ."""

    kind: str
    neuron_steps: int
    multiplications: int
    additions: int
    shifts: int
    energy_pj: float

    @property
    def pj_per_neuron_step(self) -> float:
        return self.energy_pj / max(self.neuron_steps, 1)


def neuron_ops(kind: str, *, neuron_steps: int, taps: int = 0) -> NeuronOps:
    """Counts and energy of ``neuron_steps`` updates of ``kind`` (``taps``: total applied PSN taps)."""
    if kind not in _OPS:
        raise field_error("neuron_ops", "kind", f"must be one of {sorted(_OPS)}", kind)
    if kind == "lif":
        mults, adds, shifts = neuron_steps, 2 * neuron_steps, 0
    elif kind == "psn":
        mults, adds, shifts = taps, taps + neuron_steps, 0
    else:
        mults, adds, shifts = 0, taps + neuron_steps, taps
    mult_op, add_op, shift_op = _OPS[kind]
    energy = adds * OP_ENERGY_PJ[add_op][0]
    if mult_op:
        energy += mults * OP_ENERGY_PJ[mult_op][0]
    if shift_op:
        energy += shifts * OP_ENERGY_PJ[shift_op][0]
    return NeuronOps(
        kind=kind,
        neuron_steps=int(neuron_steps),
        multiplications=int(mults),
        additions=int(adds),
        shifts=int(shifts),
        energy_pj=float(energy),
    )
