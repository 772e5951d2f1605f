"""`billing replay --from-ledger`: record in this state folder the charges only the ledger knows.

After a state folder is lost, the ledger still holds every charge billing made: its own ledger
user's completions name each command (``pay-<payment id>``), and Scan shows each transfer with
the description that names its period (`pipeline.ids.description`). A charge is recorded again
(`PaymentRequested` + `PaymentConfirmed`, at the transfer's record time) only when that proves
it: the description names a user and plan of the catalogue, the user's party sent it, and
the payment id of that period is the command's. Anything else (another version's description,
a user no longer in the catalogue) is listed and acknowledged: the guard will not stop on it
again, and the operator decides what it was.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from commands.catalogue import Catalogue
from commands.context import Context
from commands.errors import CommandError
from commands.services.ledger_guard import (
    acknowledge,
    acknowledged,
    billing_completions,
    checked_parties,
    unknown_charges,
)
from commands.services.runtime import canton_factory, require_canton
from commands.services.schedule import anchor_of, span
from pipeline.canton.adapter import CantonAdapter
from pipeline.canton.scan import ScanApi
from pipeline.canton.splice_types import SEND
from pipeline.canton.types import Completion1
from pipeline.errors import StoreBusy
from pipeline.events import PaymentConfirmed, PaymentRequested, Period
from pipeline.ids import parse_description, payment_id, payment_of_command
from pipeline.log.embedded import EmbeddedLog
from pipeline.processor.book import PaymentBook

Recovered = tuple[PaymentRequested, PaymentConfirmed]


def run_rebuild(ctx: Context) -> int:
    require_canton(ctx, "`billing replay --from-ledger`")
    try:
        return asyncio.run(_rebuild(ctx))
    except StoreBusy as err:
        raise CommandError("stop `billing start` first: it owns the event log while it runs") from err


async def _rebuild(ctx: Context) -> int:
    state = Path(ctx.settings.rocksdb_path)
    log = EmbeddedLog.open(ctx.settings.log_dir, sync=ctx.settings.log_fsync)
    try:
        book = PaymentBook()
        async for record in log.read():
            book.apply(record)
        async with canton_factory(ctx)() as port:
            assert isinstance(port, CantonAdapter)
            parties = await checked_parties(port, (u.party for u in ctx.catalogue.users))
            after = max(book.ledger_offset, acknowledged(state))
            with ctx.console.progress("reading the ledger's completions", total=None):
                scan = await billing_completions(port.ledger, parties, after=after)
            strangers = unknown_charges(scan.completions, book)
            recovered, unmapped = [], []
            for completion in strangers:
                found = await _recover(
                    port.scan, completion, ctx.catalogue, book, app=ctx.settings.party_app or "", now=ctx.clock()
                )
                (recovered.append(found) if isinstance(found, tuple) else unmapped.append((completion, found)))
        for pair in recovered:
            await log.append_batch(list(pair))
        if scan.checked_to > after:  # everything up to there was looked at: recorded or listed below
            acknowledge(state, scan.checked_to)
    finally:
        await log.close()
    _report(ctx, state, recovered, unmapped)
    if scan.checked_to < scan.end:
        ctx.console.line(
            f"looked at the ledger up to offset {scan.checked_to} of {scan.end}: run "
            "`billing replay --from-ledger` again for the rest"
        )
    return 0


async def _recover(
    scan: ScanApi, completion: Completion1, catalogue: Catalogue, book: PaymentBook, *, app: str, now: datetime
) -> Recovered | str:
    """The two events that record ``completion``'s charge, or why it cannot be proved."""
    if completion.update_id is None:
        return "the completion names no update"
    update = await scan.update_by_id(completion.update_id)
    sends = update.exercises(SEND) if update is not None else []
    if not sends:
        return f"Scan shows no {SEND} in update {completion.update_id}"
    arg = sends[0].choice_argument
    text, sender = str(arg.get("description") or ""), str(arg.get("sender") or "")
    said = parse_description(text)
    if said is None:
        return f"its description {text!r} names no period (another tool, or an older billing)"
    user = next((u for u in catalogue.users if u.id == said.user_id), None)
    sub = user.subscription(said.plan) if user is not None else None
    if user is None or sub is None or user.party != sender:
        return f"{said.user_id!r} with plan {said.plan!r} sent by {sender} is not in the catalogue"
    pid = payment_of_command(completion.command_id)
    if pid is None or payment_id(app, sender, said.plan, said.start, said.end) != pid:
        return "its period and parties do not give its command id"
    anchor, length = anchor_of(sub, book.subscriptions.get((sender, said.plan))), said.end - said.start
    index, rest = divmod(said.start - anchor, length)
    if rest or index < 0:
        return f"its period does not fall on the subscription's periods (anchored at {anchor:%Y-%m-%d %H:%M} UTC)"
    try:
        amount = Decimal(str(arg.get("amount")))
    except ArithmeticError:
        amount = Decimal("NaN")
    if not amount.is_finite() or amount <= 0:
        return f"its amount {arg.get('amount')!r} is not an amount of Canton Coin"
    at = _time(update.record_time if update is not None else "", now)
    requested = PaymentRequested(
        payment_id=pid,
        at=at,
        party=sender,
        user_id=user.id,
        plan=said.plan,
        period=Period(index=index, start=said.start, end=said.end),
        amount=amount,
        receiver=app,
        description=text,
        reason="recovery",
    )
    confirmed = PaymentConfirmed(
        payment_id=pid,
        at=at,
        party=sender,
        plan=said.plan,
        amount=amount,
        update_id=completion.update_id,
        completion_offset=completion.offset,
        verified_by="scan",
    )
    return requested, confirmed


def _time(text: str, otherwise: datetime) -> datetime:
    """The transfer's record time as Scan gives it (``otherwise`` when it does not read)."""
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return otherwise
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _report(ctx: Context, state: Path, recovered: list[Recovered], unmapped: list[tuple[Completion1, str]]) -> None:
    where = state.resolve()
    if not recovered and not unmapped:
        ctx.console.line(f"the ledger shows no charge that {where} does not hold: nothing to rebuild")
        return
    if recovered:
        ctx.console.table(
            f"Recorded from the ledger into {where} ({len(recovered)})",
            ["user", "plan", "period", "amount", "update"],
            [(r.user_id, r.plan, span(r), f"{r.amount} CC", c.update_id) for r, c in recovered],
        )
    if unmapped:
        ctx.console.table(
            f"Not recorded: charges this folder cannot map to a period ({len(unmapped)})",
            ["command", "update", "why"],
            [(c.command_id, c.update_id, why) for c, why in unmapped],
        )
        ctx.console.line(
            "these are acknowledged: the check before charging no longer stops on them; look at "
            "each with `billing update <update id>` before billing charges again"
        )
    ctx.console.line("run `billing replay` to rebuild the metrics with them")
