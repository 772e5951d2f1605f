"""The `billing` command line: parse, build the context, run, map errors to exit codes."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from commands import (
    canton_commands,
    catalogue_commands,
    daemon,
    dashboard_command,
    demo,
    metrics_commands,
    payments,
    simulator_command,
    tail,
)
from commands.config import Settings
from commands.console import Console
from commands.context import Context
from commands.errors import CommandError
from commands.logs import configure as configure_logging
from pipeline.errors import PipelineError

log = logging.getLogger(__name__)

#: Modules that add sub-commands, in the order `--help` lists them.
COMMAND_MODULES: tuple[Callable[[Any], None], ...] = (
    canton_commands.add_commands,
    payments.add_commands,
    daemon.add_commands,
    metrics_commands.add_commands,
    dashboard_command.add_commands,
    catalogue_commands.add_commands,
    tail.add_commands,
    simulator_command.add_commands,
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    return parser


def main(argv: Sequence[str] | None = None, console: Console | None = None) -> int:
    """Run one command; return its exit code (0 ok, 1 failed, 2 bad input, 3 not built)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    console = console or Console()
    try:
        settings = Settings.from_env()
        configure_logging(args.log_level or settings.log_level, settings.log_format, settings.secrets())
        code = args.handler(Context(settings, console), args)
        return int(code or 0)
    except CommandError as err:
        console.error(str(err))
        return err.exit_code
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


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
