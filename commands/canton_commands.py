"""`setup`, `info`, `balance`, `config`, `update`: the app's standing with Canton and Scan."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec

from commands.context import Context
from commands.errors import CatalogueError, CommandError, NotFound
from commands.runtime import canton_factory, require_canton
from pipeline.canton_adapter import CantonAdapter
from pipeline.canton_errors import CantonError
from pipeline.ledger_api import Holding, new_submission_id
from pipeline.scan_context import choose_round, disclose, open_round_contracts, read_rounds
from pipeline.scan_types import Contract
from pipeline.splice_types import TransferPreapproval, read_payload
from pipeline.transfer_builders import InsufficientFunds, create_preapproval_commands, select_inputs

SETUP_FEE_MARGIN = Decimal("1")  # preapprovals over 90 days cost a fee of about 1 USD a year
EXPIRY_WARNING = timedelta(days=30)


def add_commands(sub: Any) -> None:
    def parser(name: str, summary: str, handler: Callable[..., int], epilog: str = "") -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=summary, description=summary[0].upper() + summary[1:] + ".", epilog=epilog,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(handler=handler)
        return p

    setup = parser("setup", "create the app's TransferPreapproval; finds an existing one first, never pays twice",
                   run_setup, "example:\n  billing setup --expires-in-min 525600   # one year")
    setup.add_argument("--expires-in-min", type=int, default=525600, metavar="M",
                       help="minutes until it expires (default 525600, one year; at most ten years)")
    parser("info", "configuration, API reachability, balance and preapproval status", run_info)
    balance = parser("balance", "Canton Coin holdings of a party", run_balance,
                     "examples:\n  billing balance\n  billing balance --party alice::1220…")
    balance.add_argument("--party", help="party id, or a user's id or email (default PARTY_APP)")
    parser("config", "show the Scan context payments use (rules, round, featured app, preapproval)", run_config)
    update = parser("update", "show one ledger update, e.g. the proof of a payment", run_update,
                    "example:\n  billing update 1220ab…   # the update id from `billing tail`")
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
    return _run(ctx, "`billing setup`", lambda canton: setup_preapproval(ctx, canton, args.expires_in_min))


async def setup_preapproval(ctx: Context, canton: CantonAdapter, minutes: int) -> int:
    party = ctx.settings.party_app or ""
    existing = await canton.scan.transfer_preapproval(party)
    if existing is not None:
        ctx.console.line(f"TransferPreapproval already exists: {existing.contract.contract_id} "
                         f"(expires {_expiry(existing.contract):%Y-%m-%d %H:%M} UTC); nothing to pay")
        return 0
    dso = await canton.scan.dso()
    rounds = read_rounds(open_round_contracts(await canton.scan.open_and_issuing_mining_rounds()))
    chosen = choose_round(rounds, ctx.clock())
    if chosen is None:
        raise CommandError("Scan shows no open mining round yet; try again in a minute")
    picked = select_inputs(await canton.ledger.amulets(party), SETUP_FEE_MARGIN,
                           max_inputs=chosen.max_num_inputs, round_number=chosen.number)
    if isinstance(picked, InsufficientFunds):
        raise CommandError(f"{party} holds no Amulet to pay the preapproval fee; fund it first (`billing balance`)")
    sync = dso.amulet_rules.domain_id or ""
    expires = ctx.clock() + timedelta(minutes=minutes)
    # A deterministic command id: a setup retried the same day is deduplicated by the ledger.
    command = "setup-preapproval-" + hashlib.sha256(f"{party}|{expires:%Y%m%d}".encode()).hexdigest()[:24]
    result = await canton.ledger.submit_and_wait(create_preapproval_commands(
        amulet_rules=disclose(dso.amulet_rules.contract, sync), open_round=disclose(chosen.contract, sync),
        party=party, inputs=picked.inputs, expires_at=expires, dso_party=dso.dso_party_id, command_id=command,
        submission_id=new_submission_id(), dedup_seconds=86400, user_id=canton.ledger.user_id))
    created = await canton.scan.transfer_preapproval(party)
    cid = created.contract.contract_id if created else "(not visible in Scan yet)"
    ctx.console.line(f"TransferPreapproval created: {cid}, expires {expires:%Y-%m-%d %H:%M} UTC "
                     f"(update {result.update_id})")
    return 0


def _expiry(contract: Contract) -> datetime:
    return read_payload(contract.payload, TransferPreapproval).expiresAt


def run_info(ctx: Context, args: argparse.Namespace) -> int:
    ctx.console.table("Configuration", ["variable", "value"], list(ctx.settings.masked()))
    return _run(ctx, "`billing info`", lambda canton: _info(ctx, canton))


async def _info(ctx: Context, canton: CantonAdapter) -> int:
    party = ctx.settings.party_app or ""
    rows: list[tuple[str, Any]] = [("ledger end", await canton.ledger.ledger_end())]
    dso = await canton.scan.dso()
    rows += [("DSO party", dso.dso_party_id), ("synchronizer", dso.amulet_rules.domain_id)]
    c = await canton.context.get()
    featured = c.featured_app_right
    rows += [("open round", c.open_round.number),
             ("app balance", f"{_total(await canton.ledger.amulets(party))} CC"),
             ("preapproval", c.transfer_preapproval.contract_id),
             ("featured app right", featured.contract_id if featured else "none (not featured)"),
             ("preapproval expires", f"{c.preapproval_expires_at:%Y-%m-%d %H:%M} UTC")]
    ctx.console.table("Canton", ["", ""], rows)
    if c.preapproval_expires_at - ctx.clock() < EXPIRY_WARNING:
        ctx.console.warn(f"the TransferPreapproval expires {c.preapproval_expires_at:%Y-%m-%d %H:%M} UTC: "
                         "renew it (`billing setup`) or payments fail")
    return 0


def _total(holdings: list[Holding]) -> Decimal:
    return sum((h.initial_amount for h in holdings), Decimal(0))


def run_balance(ctx: Context, args: argparse.Namespace) -> int:
    party = party_named(ctx, args.party) if args.party else ctx.settings.party_app
    if not party:
        raise CommandError("name a party with --party, or set PARTY_APP")

    async def show(canton: CantonAdapter) -> int:
        holdings = await canton.ledger.amulets(party)
        ctx.console.table(f"Amulets of {party}", ["contract", "amount (CC)"],
                          [(h.contract_id, h.initial_amount) for h in holdings])
        ctx.console.line(f"Total: {_total(holdings)} CC in {len(holdings)} amulet(s)")
        if not holdings:
            ctx.console.note("no Amulet of this party is visible to the ledger user; a party id must be "
                             "whole (`billing user NAME` shows it)")
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
        named = (("AmuletRules", c.amulet_rules), ("OpenMiningRound", c.open_round.contract),
                 ("TransferPreapproval", c.transfer_preapproval), ("FeaturedAppRight", c.featured_app_right))
        rows = [(name, k.contract_id, k.template_id,
                 k.created_event_blob[:80] + ("…" if len(k.created_event_blob) > 80 else ""))
                for name, k in named if k]
        ctx.console.line(f"synchronizer {c.synchronizer_id}, round {c.open_round.number}, "
                         f"max inputs {c.open_round.max_num_inputs}")
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
