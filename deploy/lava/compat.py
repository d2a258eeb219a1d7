"""Import lava-nc 0.10.0 on Python 3.11: a small import-time shim, applied before Lava is imported.

Two problems, both fixed without touching site-packages
(docs/lava-arithmetic.md, "Installing Lava on Python 3.11"):

1. ``lava/magma/compiler/var_model.py`` declares dataclass fields with an instance default
   (``x: ByteEncoder = ByteEncoder()``), which Python 3.11 rejects. The shim loads that one module
   from its source with the default rewritten to ``field(default_factory=ByteEncoder)`` and registers
   it in ``sys.modules`` before anything else imports it.
2. ``lava/magma/runtime/message_infrastructure/multiprocessing.py`` calls
   ``multiprocessing.set_start_method('fork')`` at import, which raises ``RuntimeError`` when the
   program already fixed a start method. While Lava's modules import, the shim makes that call
   forced (``force=True``), so the import succeeds whatever happened before.

Use :func:`import_lava` (or :func:`require_lava`) instead of importing ``lava`` directly.
"""

from __future__ import annotations

import importlib
import importlib.util
import multiprocessing
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from spikeport.emulator.errors import MissingDependencyError

LAVA_VERSION = "0.10.0"
INSTALL_HINT = (
    "lava-nc is not installed. spikeport installs it with `make setup`, or by hand:\n"
    "  pip install scipy 'networkx==2.8.7' 'asteval<0.10' 'numpy<2.4'\n"
    f"  pip install --no-deps --ignore-requires-python lava-nc=={LAVA_VERSION}"
)
_VAR_MODEL = "lava.magma.compiler.var_model"
_BAD_DEFAULT = re.compile(r"^(\s+\w+): ByteEncoder = ByteEncoder\(\)\s*$", re.MULTILINE)

_patched = False


def lava_available() -> bool:
    """True if lava-nc can be found (without importing it)."""
    return importlib.util.find_spec("lava") is not None


def _patch_var_model() -> None:
    if _VAR_MODEL in sys.modules:
        return
    spec = importlib.util.find_spec(_VAR_MODEL)
    if spec is None or spec.origin is None or spec.loader is None:
        raise MissingDependencyError(f"cannot find {_VAR_MODEL}.\n{INSTALL_HINT}")
    with open(spec.origin, encoding="utf-8") as f:
        source = f.read()
    fixed, count = _BAD_DEFAULT.subn(r"\1: ByteEncoder = field(default_factory=ByteEncoder)", source)
    if count:
        fixed = fixed.replace(
            "from dataclasses import dataclass", "from dataclasses import dataclass, field", 1
        )
    module = importlib.util.module_from_spec(spec)
    sys.modules[_VAR_MODEL] = module
    try:
        exec(compile(fixed, spec.origin, "exec"), module.__dict__)
    except BaseException:
        del sys.modules[_VAR_MODEL]
        raise


@contextmanager
def _forced_start_method() -> Iterator[None]:
    original = multiprocessing.set_start_method

    def set_start_method(method: str | None, force: bool = False) -> None:
        if multiprocessing.get_start_method(allow_none=True) == method:
            return
        original(method, force=True)

    multiprocessing.set_start_method = set_start_method  # type: ignore[assignment]
    try:
        yield
    finally:
        multiprocessing.set_start_method = original  # type: ignore[assignment]


def import_lava(module: str = "lava") -> ModuleType:
    """Import ``module`` (a ``lava.*`` module) with the compatibility shim applied.

    Raises :class:`MissingDependencyError` with install instructions when lava-nc is missing.
    """
    global _patched
    if not lava_available():
        raise MissingDependencyError(INSTALL_HINT)
    with _forced_start_method():
        if not _patched:
            _patch_var_model()
            importlib.import_module("lava.magma.runtime.message_infrastructure.multiprocessing")
            _patched = True
        return importlib.import_module(module)


def lava_version() -> str | None:
    """The installed lava-nc version, or None."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lava-nc")
    except PackageNotFoundError:
        return None
