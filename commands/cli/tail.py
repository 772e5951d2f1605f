"""`billing tail`: the audit trail, every event as it is appended, filtered by user or plan."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

from commands.context import Context
from commands.errors import BadArgument
from commands.services.audit_trail import topic_records
from commands.services.events_view import Periods, audit_row, event_line, whole
from pipeline.errors import StoreUnavailable
from pipeline.events import PaymentRequested, PaymentSubmitted, Recorded, Unreadable
from pipeline.log.embedded import EmbeddedLog


def add_commands(sub: Any) -> None:
    p = sub.add_parser(
        "tail",
        help="print events as they are appended (audit)",
        description="Print the event log: every request, submission, confirmation and failure, "
        "with the ledger update id that proves each charge.",
        epilog="examples:\n  billing tail --user alice\n  billing tail --since 2026-11-24T00:00:00Z --json"
        "\n  billing tail -f",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--from",
        dest="start",
        type=int,
        metavar="OFFSET",
        help="start at this log offset (embedded log; on Kafka use --since)",
    )
    where.add_argument("--since", metavar="TIME", help="only events at or after TIME (ISO 8601, with zone)")
    p.add_argument("--user", help="only this user (id, name, email or party)")
    p.add_argument("--subscription", help="only this plan")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new events (Ctrl-C stops)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(handler=run_tail)


def run_tail(ctx: Context, args: argparse.Namespace) -> int:
    keep = _filter(ctx, args)
    if ctx.settings.kafka:
        if args.start is not None:
            raise BadArgument(
                "--from is an offset of the embedded log; on Kafka offsets are per partition: use --since TIME"
            )
        return asyncio.run(_tail_topic(ctx, args, keep))
    ctx.require_state()
    try:
        log = EmbeddedLog.open(ctx.settings.log_dir, follow=True)
    except StoreUnavailable:
        ctx.console.note(f"the event log at {ctx.settings.log_dir} is empty: nothing was requested yet")
        return 0
    return asyncio.run(_tail_log(ctx, log, args, keep))


async def _tail_log(ctx: Context, log: EmbeddedLog, args: argparse.Namespace, keep: Callable[[Recorded], bool]) -> int:
    start = args.start or 0
    try:
        return await _print(ctx, log.follow(start) if args.follow else log.read(start), args, keep)
    finally:
        await log.close()


async def _tail_topic(ctx: Context, args: argparse.Namespace, keep: Callable[[Recorded], bool]) -> int:
    async with topic_records(ctx, follow=args.follow) as records:
        return await _print(ctx, records, args, keep, partitioned=True)


async def _print(
    ctx: Context,
    records: AsyncIterator[Recorded],
    args: argparse.Namespace,
    keep: Callable[[Recorded], bool],
    *,
    partitioned: bool = False,
) -> int:
    shown = 0
    periods = Periods()
    async for record in records:
        if not keep(record):
            if not isinstance(event := whole(record), Unreadable):
                periods.of(event)  # a filtered-out request still names its outcome's period
            continue
        shown += 1
        if args.json:
            ctx.console.json(audit_row(record, periods, partitioned=partitioned))
        else:
            ctx.console.line(event_line(record, periods, partitioned=partitioned))
    if not shown and not args.json:
        ctx.console.note("no events match")
    return 0


def _filter(ctx: Context, args: argparse.Namespace) -> Callable[[Recorded], bool]:
    party = ctx.catalogue.find_user(args.user).party if args.user else None
    since = _parse_time(args.since) if args.since else None

    chosen: set[str] = set()  # payments requested for this user/plan: their submissions name neither

    def keep(record: Recorded) -> bool:
        event = whole(record)
        if isinstance(event, Unreadable):
            return party is None and args.subscription is None
        if isinstance(event, PaymentSubmitted):
            matches = (party is None and args.subscription is None) or event.payment_id in chosen
        else:
            matches = (party is None or getattr(event, "party", party) == party) and (
                args.subscription is None or getattr(event, "plan", args.subscription) == args.subscription
            )
            if matches and isinstance(event, PaymentRequested):
                chosen.add(event.payment_id)
        return matches and (since is None or event.at >= since)

    return keep


def _parse_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as err:
        raise BadArgument(f"--since {text!r} is not an ISO 8601 time such as 2026-11-24T00:00:00Z") from err
    if value.tzinfo is None:
        raise BadArgument(f"--since {text!r} needs a time zone, e.g. 2026-11-24T00:00:00Z")
    return value
