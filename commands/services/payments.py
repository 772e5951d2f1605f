"""Requesting payments and reporting their outcomes: `pay`, `pay-all`, `restart` and the demo.

Each run only *requests* periods (PaymentRequested); the processor charges them. A
period that is already paid is reported as such and never requested twice; asking twice
is harmless anyway, because the payment id (and so the ledger commandId) is the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from commands.catalogue import Plan, Subscription, User
from commands.context import Context
from commands.errors import CommandError
from commands.services.runtime import canton_factory
from commands.services.schedule import anchor_of, current_requests, missed_requests, period_index, request_for, span
from commands.services.session import Session, open_session
from commands.settling import open_payments
from pipeline.canton.errors import INSUFFICIENT_FUNDS
from pipeline.canton.hosting import NO_RIGHT_CODES, NOT_CHARGEABLE, NOT_HOSTED_CODES
from pipeline.events import PaymentRequested
from pipeline.ids import legacy_payment_id
from pipeline.processor.book import PaymentBook, PaymentState

RETRYABLE_BY_OPERATOR = {
    "INSUFFICIENT_FUNDS",
    "REQUEST_TIME_OUT",
    "PARTICIPANT_BACKPRESSURE",
    # once `billing setup` (or `setup --renew`) made the app's preapproval usable
    "PREAPPROVAL_EXPIRED",
    "NO_PREAPPROVAL",
    # once the party is hosted here / the user granted CanActAs (pipeline/canton/hosting.py)
    *NOT_HOSTED_CODES,
    *NO_RIGHT_CODES,
    NOT_CHARGEABLE,
}
#: The ledger's own refusals carry their cause as Splice's error id (code DAML_FAILURE).
RETRYABLE_ERROR_IDS = {INSUFFICIENT_FUNDS}


Rows = list[tuple[str, Any]]


async def pay_one(ctx: Context, pair: tuple[User, Subscription, Plan], *, period: int | None, dry_run: bool) -> int:
    """Charge one period of one subscription (the current one unless ``period``), unless it is paid."""
    user, sub, plan = pair
    now = ctx.clock()
    async with open_session(ctx, canton_factory(ctx), charging=not dry_run) as session:
        history = session.book.subscriptions.get((user.party, plan.name))
        anchor = anchor_of(sub, history)
        index = period if period is not None else period_index(anchor, plan.interval, now)
        app = ctx.settings.party_app or ""
        req = request_for(pair, anchor, index, app_party=app, reason="manual", now=now)
        state = session.book.get(req.payment_id)
        if state is None and history is not None and index in history.requested:
            # Requested by an older version, under the index-based id: ask that payment again.
            state = session.book.get(legacy_payment_id(app, user.party, plan.name, index))
            if isinstance(state, PaymentState):
                req = msgspec.structs.replace(state.request, at=now, reason="manual")
        if state is not None and state.status == "confirmed":
            ctx.console.line(f"already paid: {user.id} {plan.name} {span(req)} (update {state.update_id})")
            return 0
        if not sub.active(req.period.start):
            raise CommandError(f"period {index} starts {req.period.start:%Y-%m-%d %H:%M} UTC, outside the subscription")
        if dry_run:
            ctx.console.line(f"dry run: would charge {req.amount} CC to {user.id} for {plan.name} {span(req)}")
            return 0
        await session.request([req])
        await session.wait_for([req.payment_id])
        return _report_one(ctx, session.book, req)


def _report_one(ctx: Context, book: PaymentBook, req: PaymentRequested) -> int:
    state = book.get(req.payment_id)
    assert state is not None
    if not isinstance(state, PaymentState) or state.status == "confirmed":
        ctx.console.line(
            f"paid: {req.amount} CC from {req.user_id} for {req.plan} {span(req)}, ledger update {state.update_id}"
        )
        return 0
    ctx.console.error(f"payment failed: {state.last_error}")
    return 1


async def pay_all(ctx: Context, *, dry_run: bool) -> int:
    """Request the current period of every active subscription not requested yet; wait; summarise."""
    now = ctx.clock()
    pairs = ctx.catalogue.active_pairs(now)
    async with open_session(ctx, canton_factory(ctx), charging=not dry_run) as session:
        app = ctx.settings.party_app or ""
        due = current_requests(pairs, session.book.subscriptions, now, app_party=app)
        if dry_run:
            _print_requests(ctx, "Would charge", due)
            return 0
        ids = _amounts(session.book, due)
        await session.request(due)
        rows = [
            ("active subscriptions", len(pairs)),
            ("already paid or requested (not charged again)", len(pairs) - len(due)),
        ]
        return await _settle_and_summarise(ctx, session, ids, rows)


async def restart(ctx: Context, *, limit: int, recover_missed: bool, process_pending: bool, dry_run: bool) -> int:
    """Request missed periods and retry what an operator fixed (at most ``limit``); wait; summarise."""
    now = ctx.clock()
    pairs = ctx.catalogue.active_pairs(now)
    app = ctx.settings.party_app or ""
    async with open_session(ctx, canton_factory(ctx), charging=not dry_run) as session:
        wanted: list[PaymentRequested] = []
        if recover_missed:
            wanted += missed_requests(
                pairs,
                session.book.subscriptions,
                now,
                app_party=app,
                per_subscription=ctx.settings.recovery_max_periods,
            )
        if process_pending:
            wanted += retry_requests(session.book, now)
        wanted = wanted[:limit]
        in_doubt = open_payments(session.book)
        if dry_run:
            _print_requests(ctx, "Would request", wanted)
            ctx.console.line(f"{len(in_doubt)} payment(s) in progress or in doubt are resumed automatically")
            return 0
        ids = _amounts(session.book, wanted)
        await session.request(wanted)
        rows = [("requested again", len(wanted)), ("resumed (in progress or in doubt)", len(in_doubt))]
        return await _settle_and_summarise(ctx, session, ids, rows)


def retry_requests(book: PaymentBook, now: datetime) -> list[PaymentRequested]:
    """Final failures an operator can fix (funds topped up, network back): ask again once."""
    return [
        msgspec.structs.replace(state.request, at=now, reason="retry")
        for state in book.failed_states()
        if state.last_code in RETRYABLE_BY_OPERATOR or state.last_error_id in RETRYABLE_ERROR_IDS
    ]


def _amounts(book: PaymentBook, requests: list[PaymentRequested]) -> dict[str, Decimal]:
    """The payments a run waits for (those it requests and those still open) and their amounts:
    taken now, since the book keeps no request for a payment once it is confirmed."""
    open_ = {p: s.request.amount for p, s in book.payments.items() if not s.final}
    return open_ | {r.payment_id: r.amount for r in requests if r.payment_id not in open_}


async def _settle_and_summarise(ctx: Context, session: Session, ids: Mapping[str, Decimal], rows: Rows) -> int:
    if ids:
        with ctx.console.progress("charging", total=len(ids)) as bar:
            await session.wait_for(ids, progress=lambda done, total: bar.update(done, total))
    return _summary(ctx, session.book, ids, rows)


def _summary(ctx: Context, book: PaymentBook, ids: Mapping[str, Decimal], rows: Rows) -> int:
    """The outcome of a run (``ids``: payment id -> amount requested); exit code 1 when any failed."""
    confirmed = [i for i in ids if (s := book.get(i)) is not None and s.status == "confirmed"]
    failed = [s for i in ids if isinstance(s := book.get(i), PaymentState) and s.status == "failed"]
    amount = sum((ids[i] for i in confirmed), Decimal(0))
    rows = [*rows, ("confirmed", len(confirmed)), ("failed", len(failed)), ("amount confirmed", f"{amount} CC")]
    ctx.console.table("Billing run", ["outcome", "count"], rows)
    if failed:
        ctx.console.table(
            "Failures",
            ["user", "plan", "period", "reason"],
            [(s.request.user_id, s.request.plan, s.request.period.index, s.last_error) for s in failed],
        )
    return 1 if failed else 0


def _print_requests(ctx: Context, verb: str, reqs: list[PaymentRequested]) -> None:
    if not reqs:
        ctx.console.line("nothing is due")
        return
    ctx.console.table(
        f"{verb} ({len(reqs)})",
        ["user", "plan", "period", "from (UTC)", "amount", "why"],
        [
            (r.user_id, r.plan, r.period.index, f"{r.period.start:%Y-%m-%d %H:%M}", f"{r.amount} CC", r.reason)
            for r in reqs
        ],
    )
