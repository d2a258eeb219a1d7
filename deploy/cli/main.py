"""The ``spikeport`` command line: one command, a registry of subcommands.

Each subcommand lives in its own ``cmd_*.py`` module and registers itself with :func:`command`.
User errors (every :class:`SpikeportError`) end with a one-line message and exit code 2; ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from spikeport.emulator.errors import SpikeportError

#: modules that define subcommands (imported when the parser is built; heavy imports stay inside run())
COMMAND_MODULES: tuple[str, ...] = (
    "spikeport.cli.doctor",
    "spikeport.cli.demo",
    "spikeport.cli.quantize",
    "spikeport.cli.compare",
    "spikeport.cli.inspect",
    "spikeport.cli.energy",
    "spikeport.cli.run",
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
    parser.add_argument("--version", action="version", version=f"spikeport {version()}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for cmd in sorted(_REGISTRY.values(), key=lambda c: c.name):
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        cmd.configure(p)
        p.set_defaults(_run=cmd.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args))
    except (SpikeportError, OSError) as exc:  # OSError: files the user named (missing folder, ...)
        if args.debug:
            raise
        msg = str(exc).splitlines() or [type(exc).__name__]
        print(f"spikeport {args.command}: error: {msg[0]}", file=sys.stderr)
        for line in msg[1:]:
            print(f"  {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
