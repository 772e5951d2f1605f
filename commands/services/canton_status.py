"""The app's standing with Canton and Scan, as `info`, `balance`, `config` and `update` show it."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import msgspec

from commands.context import Context
from commands.errors import CatalogueError, CommandError, NotFound
from commands.services.hosting_report import report_hosting
from commands.services.preapproval_setup import expiry_warning
from pipeline.canton.adapter import CantonAdapter
from pipeline.canton.amulet_reads import Holding


async def show_info(ctx: Context, canton: CantonAdapter) -> int:
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


async def show_balance(ctx: Context, canton: CantonAdapter, party: str) -> int:
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


async def show_payment_context(ctx: Context, canton: CantonAdapter) -> int:
    """The Scan contracts a payment discloses, as Scan serves them now."""
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


async def show_update(ctx: Context, canton: CantonAdapter, update_id: str) -> int:
    party = ctx.settings.party_app or ""
    tx = await canton.ledger.update_by_id(update_id, party=party)
    if tx is None:
        raise CommandError(f"no update {update_id} visible to {party} (check the id and PARTY_APP)")
    doc = {"update": {"Transaction": {"value": msgspec.to_builtins(tx)}}}
    ctx.console.line(json.dumps(doc, indent=2))
    return 0


def _total(holdings: list[Holding]) -> Decimal:
    return sum((h.initial_amount for h in holdings), Decimal(0))
