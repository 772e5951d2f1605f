"""Commands whose capability has not landed yet: their flags are final, their handler says so.

Each entry moves to its own module when its capability is built; until then the
command exits with code 3 and one line naming what is missing (never a traceback).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from commands.context import Context
from commands.errors import NotBuiltYet

Arguments = Callable[[argparse.ArgumentParser], None]


def _none(p: argparse.ArgumentParser) -> None:
    """No arguments."""


def _metrics(p: argparse.ArgumentParser) -> None:
    p.add_argument("--window", choices=["10m", "1h", "6h", "12h", "24h", "7d", "30d"], help="one window")
    p.add_argument("--user", help="user id, name, email or party")
    p.add_argument("--subscription", help="plan name")
    p.add_argument("--json", action="store_true", help="print JSON")


def _replay(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from", dest="start", type=int, default=0, metavar="OFFSET", help="first log offset")


PLANNED: dict[str, tuple[str, Arguments, str]] = {
    "monitor": ("aggregate and export metrics in the foreground", _none, "the projections (issue 7)"),
    "metrics": ("show billing metrics per time window", _metrics, "the projections (issue 7)"),
    "test-otel": ("send a test metric and log to the OTLP endpoint", _none, "OpenTelemetry export (issue 7)"),
    "replay": ("rebuild every projection from the event log", _replay, "the projections (issue 7)"),
}


def add_commands(sub: Any) -> None:
    for name, (summary, arguments, missing) in PLANNED.items():
        parser = sub.add_parser(name, help=summary, description=summary[0].upper() + summary[1:] + ".")
        arguments(parser)
        parser.set_defaults(handler=_not_built(name, missing))


def _not_built(name: str, missing: str) -> Callable[[Context, argparse.Namespace], int]:
    def handler(ctx: Context, args: argparse.Namespace) -> int:
        raise NotBuiltYet(f"`billing {name}` is not available in this version yet: it needs {missing}")

    return handler
