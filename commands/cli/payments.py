"""`billing pay`, `pay-all` and `restart`: request payments and report their outcomes.

Each command only *requests* periods (PaymentRequested); the processor charges them. A
period that is already paid is reported as such and never requested twice; asking twice
is harmless anyway, because the payment id (and so the ledger commandId) is the same.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import msgspec

from commands.context import Context
from commands.errors import CommandError
from commands.services.runtime import canton_factory, require_canton
from commands.services.schedule import anchor_of, current_requests, missed_requests, period_index, request_for, span
from commands.services.session import Session, open_session
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


def add_commands(sub: Any) -> None:
    pay = sub.add_parser(
        "pay",
        help="charge one user for one period of a plan",
        description="Charge one period of one subscription (the current period unless --period "
        "is given). A period that is already paid is reported, never charged again.",
        epilog="examples:\n  billing pay -u alice -s prover\n  billing pay -u alice@example.com -s "
        "verifier --period 12 --dry-run",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pay.add_argument("-u", "--user", required=True, help="user id, email, name or party")
    pay.add_argument("-s", "--subscription", required=True, help="plan name")
    pay.add_argument(
        "--period",
        type=int,
        metavar="N",
        help="period index, counted from the subscription's starts_at or else from 1970-01-01 "
        "UTC (default: the current one; --dry-run shows its index and times)",
    )
    pay.add_argument("--dry-run", action="store_true", help="show what would be charged; change nothing")
    pay.set_defaults(handler=run_pay)

    pay_all = sub.add_parser(
        "pay-all",
        help="charge every due period of every active subscription",
        description="Request the current period of every active subscription that is not "
        "requested yet, wait for every outcome, and print a summary.",
    )
    pay_all.add_argument("--dry-run", action="store_true", help="list what would be charged")
    pay_all.set_defaults(handler=run_pay_all)

    restart = sub.add_parser(
        "restart",
        help="recover missed periods and retry failed payments",
        description="Request the periods that fell due while billing was down (newest first, "
        "at most RECOVERY_MAX_PERIODS per subscription) and retry failed payments that an "
        "operator can fix (insufficient funds, timeouts). Running it twice requests nothing twice.",
        epilog="example:\n  billing restart --limit 10 --dry-run",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    restart.add_argument("--limit", type=int, default=100, metavar="N", help="request at most N payments")
    restart.add_argument(
        "--recover-missed",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="request periods that fell due while billing was down",
    )
    restart.add_argument(
        "--process-pending",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="retry failed payments that may succeed now",
    )
    restart.add_argument("--dry-run", action="store_true", help="list what would be requested")
    restart.set_defaults(handler=run_restart)


def run_pay(ctx: Context, args: argparse.Namespace) -> int:
    user = ctx.catalogue.find_user(args.user)
    plan = ctx.catalogue.plan(args.subscription)
    sub = user.subscription(plan.name)
    if sub is None or not sub.active(ctx.clock()):
        raise CommandError(f"{user.id} has no active '{plan.name}' subscription (see `billing user {user.id}`)")
    if args.period is not None and args.period < 0:
        raise CommandError("--period must be 0 or more")
    require_canton(ctx, "`billing pay`")
    return asyncio.run(_pay(ctx, args, (user, sub, plan)))


async def _pay(ctx: Context, args: argparse.Namespace, pair: Any) -> int:
    user, sub, plan = pair
    now = ctx.clock()
    async with open_session(ctx, canton_factory(ctx), charging=not args.dry_run) as session:
        history = session.book.subscriptions.get((user.party, plan.name))
        anchor = anchor_of(sub, history)
        index = args.period if args.period is not None else period_index(anchor, plan.interval, now)
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
        if args.dry_run:
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


def run_pay_all(ctx: Context, args: argparse.Namespace) -> int:
    if not args.dry_run:
        require_canton(ctx, "`billing pay-all`")
    return asyncio.run(pay_all_async(ctx, args))


async def pay_all_async(ctx: Context, args: argparse.Namespace) -> int:
    now = ctx.clock()
    pairs = ctx.catalogue.active_pairs(now)
    async with open_session(ctx, canton_factory(ctx), charging=not args.dry_run) as session:
        app = ctx.settings.party_app or ""
        due = current_requests(pairs, session.book.subscriptions, now, app_party=app)
        if args.dry_run:
            _print_requests(ctx, "Would charge", due)
            return 0
        ids = _amounts(session.book, due)
        await session.request(due)
        rows = [
            ("active subscriptions", len(pairs)),
            ("already paid or requested (not charged again)", len(pairs) - len(due)),
        ]
        return await _settle_and_summarise(ctx, session, ids, rows)


Rows = list[tuple[str, Any]]


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


def run_restart(ctx: Context, args: argparse.Namespace) -> int:
    if args.limit < 0:
        raise CommandError("--limit must be 0 or more")
    if not args.dry_run:
        require_canton(ctx, "`billing restart`")
    return asyncio.run(_restart(ctx, args))


async def _restart(ctx: Context, args: argparse.Namespace) -> int:
    now = ctx.clock()
    pairs = ctx.catalogue.active_pairs(now)
    app = ctx.settings.party_app or ""
    async with open_session(ctx, canton_factory(ctx), charging=not args.dry_run) as session:
        wanted: list[PaymentRequested] = []
        if args.recover_missed:
            wanted += missed_requests(
                pairs,
                session.book.subscriptions,
                now,
                app_party=app,
                per_subscription=ctx.settings.recovery_max_periods,
            )
        if args.process_pending:
            wanted += retry_requests(session.book, now)
        wanted = wanted[: args.limit]
        in_doubt = [p for p, s in session.book.payments.items() if not s.final]
        if args.dry_run:
            _print_requests(ctx, "Would request", wanted)
            ctx.console.line(f"{len(in_doubt)} payment(s) in progress or in doubt are resumed automatically")
            return 0
        ids = _amounts(session.book, wanted)
        await session.request(wanted)
        rows = [("requested again", len(wanted)), ("resumed (in progress or in doubt)", len(in_doubt))]
        return await _settle_and_summarise(ctx, session, ids, rows)


def retry_requests(book: PaymentBook, now: Any) -> list[PaymentRequested]:
    """Final failures an operator can fix (funds topped up, network back): ask again once."""
    out = []
    for state in book.failed_states():
        if state.last_code in RETRYABLE_BY_OPERATOR or state.last_error_id in RETRYABLE_ERROR_IDS:
            out.append(_as_retry(state.request, now))
    return out


def _as_retry(req: PaymentRequested, now: Any) -> PaymentRequested:
    return msgspec.structs.replace(req, at=now, reason="retry")


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
