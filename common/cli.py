"""The common entry of every stage CLI (`python -m simulation|imaging|model|analysis ...`).

A stage builds its argparse parser, each subcommand sets `func` (what it runs), and `main`
does the rest the same way for every stage: parse, log to stderr, run, and report a known
error (any `StageError`) as `error: <message>` with exit status 2, without a traceback.
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from .errors import StageError

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: exit status of a known error (bad input or setting); 1 stays for unexpected failures
ERROR_STATUS = 2


def add_verbose(parser: argparse.ArgumentParser) -> None:
    """The `-v/--verbose` flag (debug logging) that `main` honours."""
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")


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
