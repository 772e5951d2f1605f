"""`billing setup`: create the app's TransferPreapproval, or renew it, paying Splice's fee.

What Scan shows decides: no preapproval, or an expired one (Scan serves it until the DSO's
automation archives it, and it can neither be used nor renewed), means create; a live one
means nothing to do, or `TransferPreapproval_Renew` with ``--renew``. The fee is computed
before submitting (`pipeline/canton/setup.py`) so that enough Amulet inputs are chosen
and the operator sees the price; the ledger burns exactly the same amount.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta
from decimal import Decimal

from commands.context import Context
from commands.errors import CommandError
from commands.services.hosting_report import report_hosting
from pipeline.canton.adapter import CantonAdapter
from pipeline.canton.errors import CantonError
from pipeline.canton.ledger import new_submission_id
from pipeline.canton.scan_context import ChosenRound, choose_round, disclose, open_round_contracts, read_rounds
from pipeline.canton.scan_types import Contract, GetDsoInfoResponse
from pipeline.canton.setup import (
    PreapprovalTerms,
    create_preapproval_commands,
    preapproval_fee,
    renew_preapproval_commands,
    terms_of,
)
from pipeline.canton.splice_types import OpenMiningRound, TransferPreapproval, read_payload
from pipeline.canton.transfers import InsufficientFunds, Selection, select_inputs

log = logging.getLogger(__name__)
EXPIRY_WARNING = timedelta(days=30)  # Splice's validator renews its own preapprovals this early
DEDUP_SECONDS = 86400


def expiry_of(contract: Contract) -> datetime:
    return read_payload(contract.payload, TransferPreapproval).expiresAt


def expiry_warning(expires: datetime, now: datetime) -> str | None:
    """The line to show when the preapproval is expired or expires within `EXPIRY_WARNING`."""
    if expires <= now:
        return f"the TransferPreapproval expired {expires:%Y-%m-%d %H:%M} UTC: payments fail; run `billing setup`"
    if expires - now < EXPIRY_WARNING:
        return (
            f"the TransferPreapproval expires {expires:%Y-%m-%d %H:%M} UTC (in {(expires - now).days} days): "
            "renew it with `billing setup --renew`"
        )
    return None


async def warn_if_expiring(ctx: Context, canton: CantonAdapter) -> None:
    """At start-up: say when the app's preapproval is missing, expired or about to expire."""
    try:
        found = await canton.scan.transfer_preapproval(ctx.settings.party_app or "")
    except CantonError as err:  # Scan down: payments will say so themselves, in their turn
        log.warning("preapproval not checked", extra={"error": str(err)})
        return
    if found is None:
        ctx.console.warn("Scan shows no TransferPreapproval for PARTY_APP: payments fail; run `billing setup`")
    elif (warning := expiry_warning(expiry_of(found.contract), ctx.clock())) is not None:
        ctx.console.warn(warning)


async def setup_preapproval(ctx: Context, canton: CantonAdapter, minutes: int, *, renew: bool = False) -> int:
    party = ctx.settings.party_app or ""
    app = next(s for s in await report_hosting(ctx, canton) if s.party == party)
    if not app.chargeable:
        raise CommandError(f"cannot create the preapproval: {app.reason}")
    now = ctx.clock()
    wanted = now + timedelta(minutes=minutes)
    existing = await canton.scan.transfer_preapproval(party)
    if existing is not None:
        expires = expiry_of(existing.contract)
        if expires > now and not renew:
            ctx.console.line(
                f"TransferPreapproval already exists: {existing.contract.contract_id} "
                f"(expires {expires:%Y-%m-%d %H:%M} UTC); nothing to pay"
            )
            if (warning := expiry_warning(expires, now)) is not None:
                ctx.console.warn(warning)
            return 0
        if expires > now:
            return await _renew(ctx, canton, existing.contract, expires, wanted)
        ctx.console.warn(
            f"the TransferPreapproval {existing.contract.contract_id} expired {expires:%Y-%m-%d %H:%M} "
            "UTC (Scan still lists it until the DSO archives it); creating a new one"
        )
    elif renew:
        ctx.console.note("no TransferPreapproval to renew; creating one")
    return await _create(ctx, canton, now, wanted)


async def _create(ctx: Context, canton: CantonAdapter, now: datetime, expires: datetime) -> int:
    # The ledger prices ``expiresAt - ledger time``, a little later than ``now``: never less than this.
    party = ctx.settings.party_app or ""
    dso, chosen, terms = await _pricing(ctx, canton)
    fee = preapproval_fee(terms, expires - now, _price(chosen))
    picked = await _inputs(ctx, canton, fee, chosen, expires - now, terms)
    sync = dso.amulet_rules.domain_id or ""
    # Deterministic: a setup retried the same day is deduplicated by the ledger, never paid twice.
    command = "setup-preapproval-" + hashlib.sha256(f"{party}|{expires:%Y%m%d}".encode()).hexdigest()[:24]
    result = await canton.ledger.submit_and_wait(
        create_preapproval_commands(
            amulet_rules=disclose(dso.amulet_rules.contract, sync),
            open_round=disclose(chosen.contract, sync),
            party=party,
            inputs=picked.inputs,
            expires_at=expires,
            dso_party=dso.dso_party_id,
            command_id=command,
            submission_id=new_submission_id(),
            dedup_seconds=DEDUP_SECONDS,
            user_id=canton.ledger.user_id,
        )
    )
    created = await canton.scan.transfer_preapproval(party)
    cid = created.contract.contract_id if created else "(not visible in Scan yet)"
    ctx.console.line(
        f"TransferPreapproval created: {cid}, expires {expires:%Y-%m-%d %H:%M} UTC, "
        f"fee at most {fee.normalize():f} CC (update {result.update_id})"
    )
    return 0


async def _renew(ctx: Context, canton: CantonAdapter, current: Contract, expires: datetime, wanted: datetime) -> int:
    party = ctx.settings.party_app or ""
    if wanted <= expires:
        raise CommandError(
            f"the TransferPreapproval already runs until {expires:%Y-%m-%d %H:%M} UTC: give a "
            "longer --expires-in-min to renew it past that"
        )
    dso, chosen, terms = await _pricing(ctx, canton)
    fee = preapproval_fee(terms, wanted - expires, _price(chosen))
    picked = await _inputs(ctx, canton, fee, chosen, wanted - expires, terms)
    sync = dso.amulet_rules.domain_id or ""
    command = (
        "renew-preapproval-"
        + hashlib.sha256(f"{party}|{current.contract_id}|{wanted:%Y%m%d}".encode()).hexdigest()[:24]
    )
    result = await canton.ledger.submit_and_wait(
        renew_preapproval_commands(
            preapproval_id=current.contract_id,
            amulet_rules=disclose(dso.amulet_rules.contract, sync),
            open_round=disclose(chosen.contract, sync),
            party=party,
            inputs=picked.inputs,
            new_expires_at=wanted,
            command_id=command,
            submission_id=new_submission_id(),
            dedup_seconds=DEDUP_SECONDS,
            user_id=canton.ledger.user_id,
        )
    )
    canton.invalidate_context()  # payments must disclose the renewed contract, not the archived one
    ctx.console.line(
        f"TransferPreapproval renewed until {wanted:%Y-%m-%d %H:%M} UTC, "
        f"fee {fee.normalize():f} CC (update {result.update_id})"
    )
    return 0


async def _pricing(ctx: Context, canton: CantonAdapter) -> tuple[GetDsoInfoResponse, ChosenRound, PreapprovalTerms]:
    dso = await canton.scan.dso()
    chosen = choose_round(
        read_rounds(open_round_contracts(await canton.scan.open_and_issuing_mining_rounds())), ctx.clock()
    )
    if chosen is None:
        raise CommandError("Scan shows no open mining round yet; try again in a minute")
    return dso, chosen, terms_of(dso.amulet_rules.contract.payload, ctx.clock())


def _price(chosen: ChosenRound) -> Decimal:
    return read_payload(chosen.contract.payload, OpenMiningRound).amuletPrice


async def _inputs(
    ctx: Context, canton: CantonAdapter, fee: Decimal, chosen: ChosenRound, lifetime: timedelta, terms: PreapprovalTerms
) -> Selection:
    party = ctx.settings.party_app or ""
    picked = select_inputs(await canton.ledger.amulets(party), fee, max_inputs=chosen.max_num_inputs)
    if isinstance(picked, InsufficientFunds):
        free = terms.free.days
        raise CommandError(
            f"{party} {picked.reason} to pay the preapproval fee for {lifetime.days} days "
            f"({free} free, {terms.fee_usd_per_day} USD a day beyond): fund it, or choose a "
            f"shorter --expires-in-min (up to {free * 1440} minutes cost no fee)"
        )
    return picked
