"""Per-core and per-chip limits of Loihi 1 and Loihi 2, each with its source.

``published`` says whether the figure is stated by the chip's maker or designers (a paper or Intel's
brief); ``False`` marks figures taken from software (nengo-loihi's Loihi 1 checks, Lava's compiler,
lava-dl) or assumed here, which Intel has not published for that chip. ``None`` as a limit means
"no published limit": the resource map reports the count and checks nothing.

Synaptic memory is estimated with nengo-loihi's model of Loihi 1's synapse encoding
(``SynapseConfig.bits_per_axon``): per input axon, its synapses in blocks of up to 64, each block
``n * (weight_bits + delay_bits [+ index_bits when only nonzero synapses are stored]) + 4 + 6`` bits
rounded up to 64-bit words. Loihi 2's encoding is not published; the same model is used there.
"""

from __future__ import annotations

from dataclasses import dataclass

DAVIES = (
    "Davies et al., 'Loihi: a neuromorphic manycore processor with on-chip learning', IEEE Micro 38(1), 2018"
)
NENGO_LOIHI = "nengo-loihi 1.x, nengo_loihi/block.py (MAX_* constants, SynapseConfig.bits_per_axon)"
BRIEF = "Intel Labs, 'Taking Neuromorphic Computing to the Next Level with Loihi 2', technology brief, 2021"
LAVA_COMPILER = "lava-nc 0.10.0, lava/magma/compiler/subcompilers/constants.py (NUM_VIRTUAL_CORES_L2 = 128)"
LAVA_DL = "lava-dl 0.6.0, lava/lib/dl/netx/hdf5.py (delays clipped to 62)"
LAVA_FIXED = (
    "lava-nc 0.10.0 fixed_pt models (24-bit graded payloads; spikeport.emulator.bits.MESSAGE_BITS_MAX)"
)


@dataclass(frozen=True)
class Limit:
    """One limit: its value (``None``: none published), where it comes from, whether it is published."""

    value: int | None
    source: str
    published: bool
    note: str = ""

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"value": self.value, "source": self.source, "published": self.published}
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True)
class ChipLimits:
    """The limits the resource map checks, per core unless named per chip."""

    name: str
    neurons_per_core: Limit
    synapse_bits_per_core: Limit
    fan_in_axons_per_core: Limit
    fan_out_axons_per_core: Limit
    max_delay: Limit
    message_bits: Limit
    cores_per_chip: Limit
    neuron_state_bits: Limit

    def as_dict(self) -> dict[str, object]:
        fields = (
            "neurons_per_core",
            "synapse_bits_per_core",
            "fan_in_axons_per_core",
            "fan_out_axons_per_core",
            "max_delay",
            "message_bits",
            "cores_per_chip",
            "neuron_state_bits",
        )
        return {f: getattr(self, f).as_dict() for f in fields}


LOIHI1 = ChipLimits(
    name="loihi1",
    neurons_per_core=Limit(1024, DAVIES, True, "1,024 compartments per core"),
    synapse_bits_per_core=Limit(128 * 1024 * 8, DAVIES, True, "128 KB synaptic memory per core"),
    fan_in_axons_per_core=Limit(4096, DAVIES, True, "4,096 input axons per core"),
    fan_out_axons_per_core=Limit(4096, DAVIES, True, "4,096 output axons per core"),
    max_delay=Limit(62, f"{NENGO_LOIHI}; {LAVA_DL}", False, "6 delay bits in software; not in the paper"),
    message_bits=Limit(0, DAVIES, True, "binary spikes only (graded spikes are new in Loihi 2)"),
    cores_per_chip=Limit(128, DAVIES, True, "128 neuromorphic cores per chip"),
    neuron_state_bits=Limit(
        0, DAVIES, True, "compartment state has its own fixed memory, not synaptic memory"
    ),
)

LOIHI2 = ChipLimits(
    name="loihi2",
    neurons_per_core=Limit(8192, BRIEF, True, "up to 8,192 neurons per core (1M per chip)"),
    synapse_bits_per_core=Limit(
        192 * 1024 * 8,
        BRIEF,
        True,
        "192 KB per core, shared by synapses and neuron state (flexible allocation); the synapse "
        "encoding is not published (Loihi 1's is assumed)",
    ),
    fan_in_axons_per_core=Limit(None, BRIEF, False, "not published"),
    fan_out_axons_per_core=Limit(None, BRIEF, False, "not published"),
    max_delay=Limit(62, LAVA_DL, False, "lava-dl's DelayDense limit; the chip's is not published"),
    message_bits=Limit(
        24, f"{BRIEF}; {LAVA_FIXED}", True, "brief: up to 32-bit payloads; Lava's models carry 24"
    ),
    cores_per_chip=Limit(128, f"{BRIEF}; {LAVA_COMPILER}", True),
    neuron_state_bits=Limit(
        64,
        "assumed here (LIF u and v, 24 bits each, in 64 bits)",
        False,
        "per neuron, from the 192 KB; not published",
    ),
)

CHIPS = {"loihi1": LOIHI1, "loihi2": LOIHI2}

#: nengo-loihi's Loihi 1 synapse encoding (see the module docstring)
SYNAPSES_PER_BLOCK = 64
BLOCK_HEADER_BITS = 4 + 6
WORD_BITS = 64
INDEX_BITS = (6, 7, 8, 9, 10, 11, 12)
