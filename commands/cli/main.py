"""The `billing` command line: parse, build the context, run, map errors to exit codes."""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import typing
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from commands.cli import canton, catalogue, daemon, dashboard, demo, metrics, payments, simulator, tail
from commands.config import Settings
from commands.console import Console
from commands.context import Context
from commands.errors import CommandError
from commands.logs import configure as configure_logging
from pipeline.asgi_server import install_fast_loop
from pipeline.errors import PipelineError, ProcessorStopped

log = logging.getLogger(__name__)

#: Modules that add sub-commands, in the order `--help` lists them.
COMMAND_MODULES: tuple[Callable[[Any], None], ...] = (
    canton.add_commands,
    payments.add_commands,
    daemon.add_commands,
    metrics.add_commands,
    dashboard.add_commands,
    catalogue.add_commands,
    tail.add_commands,
    simulator.add_commands,
    demo.add_commands,
)

DESCRIPTION = """\
Charge your Canton Network app's subscribers in Canton Coin, exactly once per period,
prove every charge on the ledger, and keep billing metrics you can rebuild from the log.
"""

EPILOG = """\
first steps:
  billing demo                         run everything against the built-in simulator
  billing users                        who is billed for what (data/users.json)
  billing setup --expires-in-min 525600  create the app's TransferPreapproval
  billing start                        run the billing daemon

Settings come from the environment and .env (see README.md, "Configuration").
`billing COMMAND --help` explains each command with examples.
"""


def package_version() -> str:
    try:
        return version("canton-billing")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0.0.0+source"


#: Range of every whole-number option: a value outside is bad input (exit 2) before any work,
#: so no handler checks its own bounds and no value reaches date arithmetic or C ints unchecked.
INT_RANGES = {
    "--expires-in-min": (1, 10 * 525_600),
    "--interval": (1, 86_400),
    "--port": (1, 65_535),
    "--latency-ms": (0, 600_000),
    "--list-limit": (1, 1_000_000),
    "--period": (0, 10**9),
}
DEFAULT_INT_RANGE = (0, 2**62)


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and sub-command parsers inherit it)."""

    def error(self, message: str) -> typing.NoReturn:
        # A control character typed into an argument must not break the one line apart.
        shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
        self.exit(2, f"error: {self.prog}: {shown} (see `{self.prog} --help`)\n")

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        parsed, extra = super().parse_known_args(args, namespace)
        for action in self._actions:
            # CPython's argparse turns `--opt=--` into [] for a one-value option
            one_value = isinstance(action, argparse._StoreAction) and action.nargs is None and action.option_strings
            if one_value and isinstance(getattr(parsed, action.dest, None), list):
                self.error(f"argument {'/'.join(action.option_strings)}: expected one value")
        return parsed, extra


def whole_number(low: int, high: int) -> Callable[[str], int]:
    def convert(text: str) -> int:
        # ASCII digits only: int() also takes " 7", "1_000" and "٣", which nobody means.
        value = int(text) if re.fullmatch(r"-?[0-9]{1,30}", text) else None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be a whole number from {low} to {high}, got {text[:40]!r}")
        return value

    return convert


def _bound_int_options(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:  # argparse has no public walk over its actions
        if action.type is int:
            option = max(action.option_strings, key=len, default=action.dest)
            action.type = whole_number(*INT_RANGES.get(option, DEFAULT_INT_RANGE))
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _bound_int_options(child)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="billing",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-V", "--version", action="version", version=f"billing {package_version()}")
    parser.add_argument(
        "--log-level",
        choices=["trace", "debug", "info", "warn", "error"],
        help="override LOG_LEVEL / RUST_LOG for this run",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in COMMAND_MODULES:
        add(sub)
    _bound_int_options(parser)
    return parser


def main(argv: Sequence[str] | None = None, console: Console | None = None, transport: Any = None) -> int:
    """Run one command; return its exit code (0 ok, 1 failed, 2 bad input, 70 internal error).

    ``transport`` (an httpx transport) replaces the network under the Canton clients (tests).
    """
    # Everything billing creates (event log, projections, api-token) is for its own OS user only.
    os.umask(0o077)
    parser = build_parser()
    args = parser.parse_args(argv)
    console = console or Console()
    try:
        settings = Settings.from_env()
        configure_logging(args.log_level or settings.log_level, settings.log_format, settings.secrets())
        code = args.handler(Context(settings, console, transport=transport), args)
        return int(code or 0)
    except CommandError as err:
        console.error(str(err))
        return err.exit_code
    except ProcessorStopped as err:
        console.error(stopped_line(err))
        return 70 if err.bug else 1
    except PipelineError as err:
        console.error(str(err))
        return 1
    except KeyboardInterrupt:
        console.note("interrupted")
        return 130
    except Exception as err:  # a bug: say so in one line, keep the traceback for debug logs
        log.debug("unexpected error", exc_info=True)
        hint = "rerun with --log-level debug for details"
        console.error(f"internal error: {type(err).__name__}: {err} ({hint})")
        return 70


#: Why running billing again after a stop is safe.
RESUMES = "a payment that may have been submitted is looked up on the ledger before anything is submitted again"


def stopped_line(err: ProcessorStopped) -> str:
    """The one line that says what stopped billing and what to do next."""
    if err.bug:
        return (
            f"{err}. This is a bug: please report it with the log above (--log-level debug adds "
            f"the traceback). Running billing again resumes safely: {RESUMES}"
        )
    return f"{err}. Fix the cause, then run billing again; it resumes safely: {RESUMES}"


def run() -> None:
    """Console-script entry point."""
    install_fast_loop()
    sys.exit(main())
