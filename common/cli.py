"""The common entry of every stage CLI (`python -m simulation|imaging|model|analysis ...`).

A stage builds its parser with `stage_parser` and `add_command` (each subcommand runs `func`,
with --config-json when it reads a config section), and `main` does the rest the same way for
every stage: parse, log to stderr, run, and report a known error (any `StageError`) as
`error: <message>` with exit status 2, without a traceback.
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .errors import StageError
from .settings import add_config_argument

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: exit status of a known error (bad input or setting); 1 stays for unexpected failures
ERROR_STATUS = 2


def add_verbose(parser: argparse.ArgumentParser) -> None:
    """The `-v/--verbose` flag (debug logging) that `main` honours."""
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def stage_parser(prog: str, description: str | None) -> tuple[argparse.ArgumentParser, Any]:
    """A stage's parser (with -v) and its subcommands (`add_command` adds one)."""
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_verbose(parser)
    return parser, parser.add_subparsers(dest="command", required=True)


def add_command(subcommands: Any, name: str, func: Callable[[argparse.Namespace], None], text: str, *,
                section: str | None = None, reads: Iterable[str] = ()) -> argparse.ArgumentParser:
    """Subcommand `name` running `func`; with --config-json when it reads keys of config section `section`."""
    parser = subcommands.add_parser(name, help=text, description=text)
    parser.set_defaults(func=func)
    reads = tuple(reads)
    if section is not None and reads:
        add_config_argument(parser, section, reads)
    return parser


def main(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None = None,
    *,
    before: Callable[[argparse.Namespace], None] | None = None,
) -> int:
    """Parse `argv`, set up logging, run `args.func(args)`; a StageError prints `error: ...` and returns 2.

    `before(args)` runs after logging is set up and before the command (e.g. torch threads).
    """
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
                        stream=sys.stderr, format=LOG_FORMAT)
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    try:
        if before is not None:
            before(args)
        args.func(args)
    except StageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ERROR_STATUS
    return 0
