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

from commands.context import Context
from commands.errors import CommandError
from commands.runtime import canton_factory, require_canton
from pipeline.canton_adapter import CantonAdapter
from pipeline.canton_apis import (
    ScanContract,
    choose_round,
    commands_body,
    create_preapproval_exercise,
    select_inputs,
    transfer_context,
)
from pipeline.canton_http import CantonError

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
    balance.add_argument("--party", help="party id (default PARTY_APP)")
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
    existing = await canton.scan.preapproval(party)
    if existing is not None:
        contract, _ = existing
        ctx.console.line(f"TransferPreapproval already exists: {contract.contract_id} "
                         f"(expires {contract.payload.get('expiresAt')}); nothing to pay")
        return 0
    dso = await canton.scan.dso()
    rounds, _ = await canton.scan.open_rounds()
    chosen = choose_round(rounds, ctx.clock())
    if chosen is None:
        raise CommandError("Scan shows no open mining round yet; try again in a minute")
    offset = await canton.ledger.ledger_end()
    inputs = select_inputs(await canton.ledger.holdings(party, offset), SETUP_FEE_MARGIN, 100)
    if inputs is None:
        raise CommandError(f"{party} holds no Amulet to pay the preapproval fee; fund it first (`billing balance`)")
    rules = ScanContract.of(dso["amulet_rules"]["contract"])
    sync = dso["amulet_rules"].get("domain_id") or ""
    expires = ctx.clock() + timedelta(minutes=minutes)
    exercise = create_preapproval_exercise(rules.contract_id, transfer_context(rules, chosen, None),
                                           [h.contract_id for h in inputs], party, expires, dso["dso_party_id"])
    # A deterministic command id: a setup retried the same day is deduplicated by the ledger.
    command = "setup-preapproval-" + hashlib.sha256(f"{party}|{expires:%Y%m%d}".encode()).hexdigest()[:24]
    body = commands_body(exercise, act_as=[party], command_id=command, submission_id=command + "-1",
                         dedup_seconds=86400, synchronizer=sync,
                         disclosed=[rules.disclosed(sync), chosen.disclosed(sync)], user_id=canton.ledger.user_id)
    result = await canton.ledger.submit(body)
    created = await canton.scan.preapproval(party)
    cid = created[0].contract_id if created else "(not visible in Scan yet)"
    ctx.console.line(f"TransferPreapproval created: {cid}, expires {expires:%Y-%m-%d %H:%M} UTC "
                     f"(update {result['updateId']})")
    return 0


def run_info(ctx: Context, args: argparse.Namespace) -> int:
    ctx.console.table("Configuration", ["variable", "value"], list(ctx.settings.masked()))
    return _run(ctx, "`billing info`", lambda canton: _info(ctx, canton))


async def _info(ctx: Context, canton: CantonAdapter) -> int:
    party = ctx.settings.party_app or ""
    rows: list[tuple[str, Any]] = [("ledger end", await canton.ledger.ledger_end())]
    dso = await canton.scan.dso()
    rows += [("DSO party", dso["dso_party_id"]), ("synchronizer", dso["amulet_rules"].get("domain_id"))]
    ctx_ = await canton.context()
    rows += [("open round", ctx_.round.payload["round"]["number"]), ("app balance", f"{await _sum(canton, party)} CC"),
             ("preapproval", ctx_.preapproval.contract_id),
             ("featured app right", ctx_.featured.contract_id if ctx_.featured else "none (not featured)")]
    expires = ctx_.preapproval.payload.get("expiresAt", "")
    rows.append(("preapproval expires", expires))
    ctx.console.table("Canton", ["", ""], rows)
    if expires and datetime.fromisoformat(expires.replace("Z", "+00:00")) - ctx.clock() < EXPIRY_WARNING:
        ctx.console.warn(f"the TransferPreapproval expires {expires}: renew it (`billing setup`) or payments fail")
    return 0


async def _sum(canton: CantonAdapter, party: str) -> Decimal:
    holdings = await canton.ledger.holdings(party, await canton.ledger.ledger_end())
    return sum((h.amount for h in holdings), Decimal(0))


def run_balance(ctx: Context, args: argparse.Namespace) -> int:
    party = args.party or ctx.settings.party_app
    if not party:
        raise CommandError("name a party with --party, or set PARTY_APP")

    async def show(canton: CantonAdapter) -> int:
        holdings = await canton.ledger.holdings(party, await canton.ledger.ledger_end())
        total = sum((h.amount for h in holdings), Decimal(0))
        ctx.console.table(f"Amulets of {party}", ["contract", "amount (CC)"],
                          [(h.contract_id, h.amount) for h in holdings])
        ctx.console.line(f"Total: {total} CC in {len(holdings)} amulet(s)")
        return 0

    return _run(ctx, "`billing balance`", show)


def run_config(ctx: Context, args: argparse.Namespace) -> int:
    async def show(canton: CantonAdapter) -> int:
        c = await canton.context()
        rows = [(name, k.contract_id, k.template_id, k.blob[:80] + ("…" if len(k.blob) > 80 else ""))
                for name, k in (("AmuletRules", c.rules), ("OpenMiningRound", c.round),
                                ("TransferPreapproval", c.preapproval), ("FeaturedAppRight", c.featured)) if k]
        ctx.console.line(f"synchronizer {c.synchronizer}, round {c.round.payload['round']['number']}, "
                         f"max inputs {c.max_inputs}")
        ctx.console.table("Payment context from Scan", ["contract", "id", "template", "blob"], rows)
        return 0

    return _run(ctx, "`billing config`", show)


def run_update(ctx: Context, args: argparse.Namespace) -> int:
    async def show(canton: CantonAdapter) -> int:
        doc = await canton.ledger.update(ctx.settings.party_app or "", update_id=args.update_id)
        ctx.console.line(json.dumps(doc, indent=2))
        return 0

    return _run(ctx, "`billing update`", show)
