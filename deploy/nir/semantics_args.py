"""Command-line options for Semantics: ``--semantics NAME`` and one override per field.

Light on purpose (argparse and :mod:`spikeport.quantize.semantics` only, no nir, numpy or h5py), so that
the CLI can build its parser without loading them; :mod:`spikeport.nir.io` re-exports both functions.
"""

from __future__ import annotations

import argparse

from spikeport.quantize.semantics import CONVENTIONS, Semantics
from spikeport.quantize.semantics import semantics as make_semantics

#: the Semantics fields that have an option (``--reset-timing`` sets ``reset_timing``, ...)
FIELDS = (
    "dt", "integration", "reset", "reset_timing", "threshold", "multi_spike",
    "spike_amplitude", "recurrent_delay", "synaptic_input", "arithmetic", "initial_v",
    "integrator_input", "multi_spike_rule", "recurrent_rest",
)  # fmt: skip


def add_semantics_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--semantics NAME`` and one option per Semantics field to ``parser``."""
    g = parser.add_argument_group("semantics (override what the NIR file leaves unsaid)")
    g.add_argument("--semantics", choices=sorted(CONVENTIONS), help="named convention")
    g.add_argument("--dt", type=float, help="time step in seconds")
    g.add_argument("--integration", choices=("euler", "exp"))
    g.add_argument("--reset", choices=("zero", "subtract", "none"))
    g.add_argument("--reset-timing", choices=("same_step", "next_step", "next_step_hold", "same_step_lagged"))
    g.add_argument("--threshold", choices=(">", ">="))
    g.add_argument("--multi-spike", action=argparse.BooleanOptionalAction, default=None)
    g.add_argument("--spike-amplitude", type=float)
    g.add_argument("--recurrent-delay", type=int)
    g.add_argument("--synaptic-input", choices=("euler", "jump"))
    g.add_argument("--arithmetic", choices=("decay", "increment", "alpha", "rockpool"))
    g.add_argument("--initial-v", choices=("zero", "leak"))
    g.add_argument("--integrator-input", choices=("r", "dt_r"), help="IF: v += r*x, or dt*r*x (SpikingJelly)")
    g.add_argument("--multi-spike-rule", choices=("threshold", "quotient"))
    g.add_argument("--recurrent-rest", choices=("response", "zero"))


def semantics_from_args(args: argparse.Namespace, default: Semantics | None = None) -> Semantics | None:
    """``--semantics`` (else ``default``, e.g. the file's stored semantics) with the overrides applied.

    Returns ``None`` when neither a convention nor a default nor any override was given.
    """
    overrides = {k: getattr(args, k, None) for k in FIELDS}
    name = getattr(args, "semantics", None)
    base: Semantics | str | None = name or default
    if base is None:
        if all(v is None for v in overrides.values()):
            return None
        base = "nir"
    return make_semantics(base, **overrides)
