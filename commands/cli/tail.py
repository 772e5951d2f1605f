"""`billing tail`: the audit trail, every event as it is appended, filtered by user or plan."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

from commands.context import Context
from commands.errors import BadArgument
from pipeline.errors import StoreUnavailable
from pipeline.events import (
    AnyEvent,
    PaymentConfirmed,
    PaymentFailed,
    PaymentRequested,
    PaymentSubmitted,
    Recorded,
    Unreadable,
    to_builtins,
)
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
    """Every partition of the Kafka topic, each in its order (partitions interleave as they are fetched)."""
    from commands.kafka.session import open_topic  # aiokafka loads only on the Kafka backend

    topic = await open_topic(ctx)

    async def records() -> AsyncIterator[Recorded]:
        async for batch in topic.read_all(dict.fromkeys(range(topic.partitions), 0), follow=args.follow):
            for record in batch:
                yield record

    try:
        return await _print(ctx, records(), args, keep, partitioned=True)
    finally:
        await topic.close()


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
            if not isinstance(record.event, Unreadable):
                periods.of(record.event)  # a filtered-out request still names its outcome's period
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

    def keep(record: Recorded) -> bool:
        event = record.event
        if isinstance(event, Unreadable):
            return party is None and args.subscription is None
        if since is not None and event.at < since:
            return False
        if party is not None and getattr(event, "party", party) != party:
            return False
        return args.subscription is None or getattr(event, "plan", args.subscription) == args.subscription

    return keep


def _parse_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as err:
        raise BadArgument(f"--since {text!r} is not an ISO 8601 time such as 2026-11-24T00:00:00Z") from err
    if value.tzinfo is None:
        raise BadArgument(f"--since {text!r} needs a time zone, e.g. 2026-11-24T00:00:00Z")
    return value


class Periods:
    """Remembers each request's period, so outcomes can show it too (bounded: oldest forgotten)."""

    LIMIT = 100_000

    def __init__(self) -> None:
        self._by_payment: dict[str, int] = {}

    def of(self, event: AnyEvent) -> int | None:
        if isinstance(event, PaymentRequested):
            if len(self._by_payment) >= self.LIMIT:
                self._by_payment.pop(next(iter(self._by_payment)))
            self._by_payment[event.payment_id] = event.period.index
            return event.period.index
        return self._by_payment.get(event.payment_id)


def audit_row(record: Recorded, periods: Periods | None = None, *, partitioned: bool = False) -> dict[str, Any]:
    """One event as a flat dict (also the shape of the WebSocket audit stream); ``partitioned``: with
    its Kafka partition (offsets are per partition there)."""
    event = record.event
    where = {"partition": record.partition, "offset": record.offset} if partitioned else {"offset": record.offset}
    if isinstance(event, Unreadable):
        return {**where, "type": "unreadable", "reason": event.reason}
    period = periods.of(event) if periods is not None else None
    extra = {"outcome": outcome(event)} | ({"period_index": period} if period is not None else {})
    return {**where, **to_builtins(event), **extra}


def outcome(event: AnyEvent) -> str:
    """requested, submitted, confirmed, failed (for good) or retrying."""
    if isinstance(event, PaymentFailed):
        return "failed" if event.final else "retrying"
    return _kind(event)


def event_line(record: Recorded, periods: Periods | None = None, *, partitioned: bool = False) -> str:
    """One line per event: offset (``partitioned``: partition/offset), time, kind, payment, who, period,
    amount, and the proof or reason."""
    event = record.event
    where = f"{record.partition}/{record.offset}" if partitioned else str(record.offset)
    if isinstance(event, Unreadable):
        return f"{where:>8}  unreadable record: {event.reason}"
    amount = getattr(event, "amount", None)
    period = (
        periods.of(event)
        if periods is not None
        else (event.period.index if isinstance(event, PaymentRequested) else None)
    )
    cells = [
        f"{where:>8}",
        event.at.strftime("%Y-%m-%d %H:%M:%S"),
        f"{outcome(event):<9}",
        event.payment_id[:12],
        _short(getattr(event, "party", "")),
        getattr(event, "plan", ""),
        f"#{period}" if period is not None else "",
        f"{amount} CC" if amount is not None else "",
        _detail(event),
    ]
    return "  ".join(c for c in cells if c)


def _kind(event: AnyEvent) -> str:
    return type(event).__name__.removeprefix("Payment").lower()


def _detail(event: AnyEvent) -> str:
    if isinstance(event, PaymentRequested):
        return event.reason
    if isinstance(event, PaymentSubmitted):
        return f"attempt {event.attempt} {event.command_id}"
    if isinstance(event, PaymentConfirmed):
        return f"update {event.update_id} ({event.verified_by})"
    assert isinstance(event, PaymentFailed)
    when = "final" if event.final else f"retry at {event.next_attempt_at:%H:%M:%S}"
    return f"{event.reason} [{when}]"


def _short(party: str) -> str:
    name, _, rest = party.partition("::")
    return f"{name}::{rest[:6]}…" if len(rest) > 6 else party
