"""The ``spikeport`` command line: one command, a registry of subcommands.

Each subcommand lives in its own module of this package and registers itself with :func:`command`.
Building the parser imports argparse and those modules only: a command imports numpy, nir, h5py,
numba, torch or Lava inside its run function (``spikeport --help`` stays fast; tests/test_house.py).
User errors (every :class:`SpikeportError`) end with a one-line message and exit code 2, anything else
with a one-line message and exit code 1, Ctrl-C with exit code 130; ``--debug`` (before or after the
subcommand) shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from spikeport.emulator.errors import SpikeportError

#: modules that define subcommands (imported when the parser is built: argparse-only at import)
COMMAND_MODULES: tuple[str, ...] = (
    "spikeport.cli.doctor",
    "spikeport.cli.demo",
    "spikeport.cli.quantize",
    "spikeport.cli.compare",
    "spikeport.cli.inspect",
    "spikeport.cli.energy",
    "spikeport.cli.run",
    "spikeport.cli.convert",
    "spikeport.cli.map",
    "spikeport.cli.export",
)


@dataclass(frozen=True, kw_only=True)
class Command:
    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


_REGISTRY: dict[str, Command] = {}


def command(
    name: str, *, help: str, configure: Callable[[argparse.ArgumentParser], None]
) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    """Decorator registering ``run(args) -> exit code`` as subcommand ``name``."""

    def register(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        _REGISTRY[name] = Command(name=name, help=help, configure=configure, run=run)
        return run

    return register


class _VersionAction(argparse.Action):
    """``--version``: looks the installed version up only when asked (importlib.metadata is slow)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kw: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="show the version")

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(f"spikeport {version()}")  # stdout, as argparse's own "version" action
        parser.exit()


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as _v

    try:
        return _v("spikeport")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def build_parser() -> argparse.ArgumentParser:
    for mod in COMMAND_MODULES:
        importlib.import_module(mod)
    parser = argparse.ArgumentParser(
        prog="spikeport",
        description="Take trained spiking neural networks to neuromorphic hardware.",
    )
    parser.add_argument("--version", action=_VersionAction)
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for cmd in sorted(_REGISTRY.values(), key=lambda c: c.name):
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        cmd.configure(p)
        # --debug also after the subcommand; SUPPRESS keeps the top-level value when it is absent here
        p.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors"
        )
        p.set_defaults(_run=cmd.run)
    return parser


def one_line(exc: BaseException) -> str:
    """The error's message on one line (several lines joined with '; ')."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return "; ".join(lines) or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args))
    except KeyboardInterrupt:
        print(f"spikeport {args.command}: interrupted", file=sys.stderr)
        return 130
    except (SpikeportError, OSError) as exc:  # OSError: files the user named (missing folder, ...)
        if args.debug:
            raise
        print(f"spikeport {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: still one line, the traceback with --debug
        if args.debug:
            raise
        print(
            f"spikeport {args.command}: internal error: {type(exc).__name__}: {one_line(exc)} "
            "(rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1


def entry() -> None:
    """The console script: :func:`main`, then exit. After Ctrl-C the process ends at once
    (``os._exit``): by then outputs were removed or never renamed into place and Lava's children
    were stopped, and the interpreter's own teardown (collecting the run's arrays) can take a second."""
    code = main()
    if code == 130:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
