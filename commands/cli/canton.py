"""`setup`, `info`, `balance`, `config`, `update`: their options; the work is in `commands/services/`."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from commands.context import Context
from commands.errors import CommandError
from commands.services.canton_status import party_named, show_balance, show_info, show_payment_context, show_update
from commands.services.preapproval_setup import setup_preapproval
from commands.services.runtime import canton_factory, require_canton
from pipeline.canton.adapter import CantonAdapter
from pipeline.canton.errors import CantonError


def add_commands(sub: Any) -> None:
    def parser(name: str, summary: str, handler: Callable[..., int], epilog: str = "") -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(
            name,
            help=summary,
            description=summary[0].upper() + summary[1:] + ".",
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.set_defaults(handler=handler)
        return p

    setup = parser(
        "setup",
        "create the app's TransferPreapproval; finds an existing one first, never pays twice",
        run_setup,
        "Splice burns (days beyond 90) x 0.00274 USD / the amulet price: about 151 CC for a "
        "year at 0.005 USD/CC; 90 days or less are free.\nexamples:\n"
        "  billing setup --expires-in-min 525600   # one year\n"
        "  billing setup --renew                   # extend the current one to a year from now",
    )
    setup.add_argument(
        "--expires-in-min",
        type=int,
        default=525600,
        metavar="M",
        help="minutes from now until it expires (default 525600, one year; at most ten years)",
    )
    setup.add_argument(
        "--renew",
        action="store_true",
        help="renew the live preapproval (TransferPreapproval_Renew) to expire M minutes from now",
    )
    parser("info", "configuration, API reachability, balance and preapproval status", run_info)
    balance = parser(
        "balance",
        "Canton Coin holdings of a party",
        run_balance,
        "examples:\n  billing balance\n  billing balance --party alice::1220…",
    )
    balance.add_argument("--party", help="party id, or a user's id or email (default PARTY_APP)")
    parser("config", "show the Scan context payments use (rules, round, featured app, preapproval)", run_config)
    update = parser(
        "update",
        "show one ledger update, e.g. the proof of a payment",
        run_update,
        "example:\n  billing update 1220ab…   # the update id from `billing tail`",
    )
    update.add_argument("update_id", metavar="UPDATE_ID")


def _run(ctx: Context, why: str, body: Callable[[CantonAdapter], Awaitable[int]]) -> int:
    require_canton(ctx, why)

    async def go() -> int:
        async with canton_factory(ctx)() as canton:
            return await body(canton)

    try:
        return asyncio.run(go())
    except CantonError as err:
        raise CommandError(f"{err} (check APP_PROVIDER_API_URL, SCAN_API_URL, the token and PARTY_APP)") from err


def run_setup(ctx: Context, args: argparse.Namespace) -> int:
    return _run(
        ctx, "`billing setup`", lambda canton: setup_preapproval(ctx, canton, args.expires_in_min, renew=args.renew)
    )


def run_info(ctx: Context, args: argparse.Namespace) -> int:
    ctx.console.table("Configuration", ["variable", "value"], list(ctx.settings.masked()))
    return _run(ctx, "`billing info`", lambda canton: show_info(ctx, canton))


def run_balance(ctx: Context, args: argparse.Namespace) -> int:
    party = party_named(ctx, args.party) if args.party else ctx.settings.party_app
    if not party:
        raise CommandError("name a party with --party, or set PARTY_APP")
    return _run(ctx, "`billing balance`", lambda canton: show_balance(ctx, canton, party))


def run_config(ctx: Context, args: argparse.Namespace) -> int:
    return _run(ctx, "`billing config`", lambda canton: show_payment_context(ctx, canton))


def run_update(ctx: Context, args: argparse.Namespace) -> int:
    return _run(ctx, "`billing update`", lambda canton: show_update(ctx, canton, args.update_id))
