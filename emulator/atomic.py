"""Atomic output files: write to a temporary file in the target's folder, fsync, rename into place.

API::

    with atomic_path(path, obj="save_network", field="path") as tmp:   # one file
        write_to(tmp)
    with staged_outputs() as stage:                                    # several files: all or none
        write_a(stage.path(a)); write_b(stage.path(b))

A failed write leaves the target untouched (no truncated file, no temporary left behind); the file
gets the mode a plain ``open(path, "w")`` would give (``0o666`` less the umask: 0644 under umask 022),
not the ``0o600`` of :func:`tempfile.mkstemp`. Errors name the target, never the temporary file:
``save_network.path: the folder must exist (got 'nodir')``, ``... : cannot write (No space left on device)``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from spikeport.emulator.errors import ValidationError, field_error


def current_umask() -> int:
    """The process umask (read from /proc where possible: setting it to read it races with threads)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_target(path: str | Path, *, obj: str, field: str) -> Path:
    """``path`` as a writable output file: its folder exists, and it is not itself a folder."""
    target = Path(path)
    if str(path) == "" or target.is_dir():
        raise field_error(obj, field, "must be a file name, not a folder", str(path))
    parent = target.parent
    if not parent.is_dir():
        raise field_error(obj, field, "the folder must exist", str(parent))
    if not os.access(parent, os.W_OK | os.X_OK):
        raise field_error(obj, field, "the folder must be writable", str(parent))
    return target


def _temp_name(target: Path) -> Path:
    return target.parent / f".{target.stem}.{secrets.token_hex(4)}.tmp{target.suffix}"


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _finish(tmp: Path, target: Path) -> None:
    """fsync ``tmp``, give it the umask mode, rename it onto ``target``."""
    _fsync(tmp)
    os.chmod(tmp, 0o666 & ~current_umask())
    os.replace(tmp, target)


@contextlib.contextmanager
def atomic_path(path: str | Path, *, obj: str = "output", field: str = "path") -> Iterator[Path]:
    """A temporary path next to ``path``; renamed onto ``path`` when the block succeeds."""
    target = check_target(path, obj=obj, field=field)
    tmp = _temp_name(target)
    try:
        yield tmp
        if not tmp.exists():
            raise field_error(obj, field, "nothing was written", str(path))
        _finish(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ValidationError(
            f"{obj}.{field}: cannot write ({exc.strerror or exc}) (got {str(path)!r})"
        ) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class Stage:
    """Temporary files for several outputs, renamed into place together (see :func:`staged_outputs`)."""

    def __init__(self) -> None:
        self._pending: list[tuple[Path, Path]] = []

    def path(self, target: str | Path, *, obj: str = "output", field: str = "path") -> Path:
        """The temporary path to write ``target``'s content to."""
        real = check_target(target, obj=obj, field=field)
        tmp = _temp_name(real)
        self._pending.append((tmp, real))
        return tmp

    def commit(self) -> None:
        for tmp, _ in self._pending:
            _fsync(tmp)
        for tmp, real in self._pending:
            _finish(tmp, real)
        self._pending.clear()

    def discard(self) -> None:
        for tmp, _ in self._pending:
            tmp.unlink(missing_ok=True)
        self._pending.clear()


@contextlib.contextmanager
def staged_outputs() -> Iterator[Stage]:
    """Several outputs, all or none: every file is written to a temporary first; the renames happen
    only once all of them are written."""
    stage = Stage()
    try:
        yield stage
        stage.commit()
    except OSError as exc:
        stage.discard()
        raise ValidationError(f"output: cannot write ({exc.strerror or exc})") from None
    except BaseException:
        stage.discard()
        raise
