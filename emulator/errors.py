"""spikeport's error hierarchy.

Every error names the object, the field, the rule and the bad value:
``LIFGroup('h1').du: must be in [0, 4095] (got 5000)``. Validation errors are also ``ValueError``
so that callers who only know the standard library can catch them.
"""

from __future__ import annotations

from typing import Any


class SpikeportError(Exception):
    """Base class of every error spikeport raises on purpose."""


class ValidationError(SpikeportError, ValueError):
    """Bad input: a value breaks a documented rule."""


class UnsupportedError(SpikeportError, ValueError):
    """A feature or type that this part of spikeport does not handle (the message lists what it does)."""


class FixedPointOverflowError(SpikeportError, OverflowError):
    """A wrap or clip happened in strict overflow mode (names group, variable, step and value)."""


class MissingDependencyError(SpikeportError, ImportError):
    """An optional dependency (e.g. lava-nc) is not installed; the message says how to install it."""


def field_error(obj: str, field: str, rule: str, got: Any) -> ValidationError:
    """Build a ``ValidationError`` worded ``obj.field: rule (got value)``."""
    return ValidationError(f"{obj}.{field}: {rule} (got {got!r})")
