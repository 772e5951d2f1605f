"""`setup`, `info`, `balance`, `config`, `update`: the app's standing with Canton and Scan."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import msgspec

from commands.context import Context
from commands.errors import CatalogueError, CommandError, NotFound
from commands.services.hosting_report import report_hosting
from commands.services.preapproval_setup import expiry_warning, setup_preapproval
from commands.services.runtime import canton_factory, require_canton
from pipeline.canton.adapter import CantonAdapter
from pipeline.canton.amulet_reads import Holding
from pipeline.canton.errors import CantonError


def add_commands(sub: Any) -> None:
    def parser(name: str, summary: str, handler: Callable[..., int], epilog: str = "") -> argparse.ArgumentParser:
        p = sub.add_parser(
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
    if not 1 <= args.expires_in_min <= 10 * 525600:
        raise CommandError("--expires-in-min must be between 1 and 5256000 (ten years)")
    return _run(
        ctx, "`billing setup`", lambda canton: setup_preapproval(ctx, canton, args.expires_in_min, renew=args.renew)
    )


def run_info(ctx: Context, args: argparse.Namespace) -> int:
    ctx.console.table("Configuration", ["variable", "value"], list(ctx.settings.masked()))
    return _run(ctx, "`billing info`", lambda canton: _info(ctx, canton))


async def _info(ctx: Context, canton: CantonAdapter) -> int:
    party = ctx.settings.party_app or ""
    rows: list[tuple[str, Any]] = [("ledger end", await canton.ledger.ledger_end())]
    dso = await canton.scan.dso()
    rows += [("DSO party", dso.dso_party_id), ("synchronizer", dso.amulet_rules.domain_id)]
    await report_hosting(ctx, canton, table=True)
    c = await canton.context.get()
    featured = c.featured_app_right
    rows += [
        ("open round", c.open_round.number),
        ("app balance", f"{_total(await canton.ledger.amulets(party))} CC"),
        ("preapproval", c.transfer_preapproval.contract_id),
        ("featured app right", featured.contract_id if featured else "none (not featured)"),
        ("preapproval expires", f"{c.preapproval_expires_at:%Y-%m-%d %H:%M} UTC"),
    ]
    ctx.console.table("Canton", ["", ""], rows)
    if (warning := expiry_warning(c.preapproval_expires_at, ctx.clock())) is not None:
        ctx.console.warn(warning)
    return 0


def _total(holdings: list[Holding]) -> Decimal:
    return sum((h.initial_amount for h in holdings), Decimal(0))


def run_balance(ctx: Context, args: argparse.Namespace) -> int:
    party = party_named(ctx, args.party) if args.party else ctx.settings.party_app
    if not party:
        raise CommandError("name a party with --party, or set PARTY_APP")

    async def show(canton: CantonAdapter) -> int:
        holdings = await canton.ledger.amulets(party)
        ctx.console.table(
            f"Amulets of {party}", ["contract", "amount (CC)"], [(h.contract_id, h.initial_amount) for h in holdings]
        )
        ctx.console.line(f"Total: {_total(holdings)} CC in {len(holdings)} amulet(s)")
        if not holdings:
            ctx.console.note(
                "no Amulet of this party is visible to the ledger user; a party id must be "
                "whole (`billing user NAME` shows it)"
            )
        return 0

    return _run(ctx, "`billing balance`", show)


def party_named(ctx: Context, given: str) -> str:
    """The whole party id ``given`` stands for: the ledger matches party ids exactly, so the
    shortened id `billing users` prints ("alice::12202bd8…"), a user id or an email would
    read as an empty wallet. A catalogue user is looked up as `pay -u` does."""
    query = given.strip().removesuffix("…")
    if query == ctx.settings.party_app:
        return query
    try:
        return ctx.catalogue.find_user(query).party
    except NotFound as err:
        if "::" in query and query == given.strip():
            return query  # a whole party id outside the catalogue
        raise NotFound(f"--party {given!r}: {err}; or give a whole party id (name::1220…)") from err
    except CatalogueError:
        if "::" in query and query == given.strip():
            return query  # no usable catalogue here: take the id as given
        raise


def run_config(ctx: Context, args: argparse.Namespace) -> int:
    async def show(canton: CantonAdapter) -> int:
        c = await canton.context.get()
        named = (
            ("AmuletRules", c.amulet_rules),
            ("OpenMiningRound", c.open_round.contract),
            ("TransferPreapproval", c.transfer_preapproval),
            ("FeaturedAppRight", c.featured_app_right),
        )
        rows = [
            (
                name,
                k.contract_id,
                k.template_id,
                k.created_event_blob[:80] + ("…" if len(k.created_event_blob) > 80 else ""),
            )
            for name, k in named
            if k
        ]
        ctx.console.line(
            f"synchronizer {c.synchronizer_id}, round {c.open_round.number}, max inputs {c.open_round.max_num_inputs}"
        )
        ctx.console.table("Payment context from Scan", ["contract", "id", "template", "blob"], rows)
        return 0

    return _run(ctx, "`billing config`", show)


def run_update(ctx: Context, args: argparse.Namespace) -> int:
    party = ctx.settings.party_app or ""

    async def show(canton: CantonAdapter) -> int:
        tx = await canton.ledger.update_by_id(args.update_id, party=party)
        if tx is None:
            raise CommandError(f"no update {args.update_id} visible to {party} (check the id and PARTY_APP)")
        doc = {"update": {"Transaction": {"value": msgspec.to_builtins(tx)}}}
        ctx.console.line(json.dumps(doc, indent=2))
        return 0

    return _run(ctx, "`billing update`", show)
