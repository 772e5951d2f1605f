"""What the dashboard shows, as one value: read from the window projection and the log's tail.

The window numbers come from `WindowProjection.metrics`, the query `billing metrics` runs,
so the page and `billing metrics --json` agree for the same moment. Failures and the feed
come from the newest records of the log only (a bounded read, whatever the log's length).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import msgspec

from commands.catalogue import Catalogue
from commands.services.events_view import brief, cells_of, whole
from pipeline.events import PaymentFailed, Recorded, Unreadable
from pipeline.log.port import EventLog
from projections.windows import WINDOWS, WindowMetrics, WindowProjection

HOURS = 24  # the over-time charts: the last 24 hours, hour by hour
TAIL_RECORDS = 5000  # how far back the failure list looks
FEED_ROWS = 15
FAILURE_ROWS = 10


class PlanRow(msgspec.Struct, frozen=True, kw_only=True):
    plan: str
    price: Decimal
    currency: str
    interval_sec: int
    day: WindowMetrics  # 24h
    week: WindowMetrics  # 7d
    month: WindowMetrics  # 30d


class HourPoint(msgspec.Struct, frozen=True, kw_only=True):
    ending: datetime  # the 1h window that ends at this moment
    metrics: WindowMetrics


class FeedItem(msgspec.Struct, frozen=True, kw_only=True):
    """One log record as the page lays it out (the fields of a `billing tail` line)."""

    offset: int
    at: str
    kind: str
    payment: str  # the payment id's first 12 characters, as `billing tail` shows it
    user: str
    plan: str
    amount: str
    detail: str


class Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    as_of: datetime
    source: str  # "daemon" or "secondary reader"
    position: int  # log records the projection has folded
    windows: list[WindowMetrics]  # the same list `billing metrics --json` prints
    hourly: list[HourPoint]  # oldest first
    plans: list[PlanRow]
    failures: list[FeedItem]  # newest first
    feed: list[FeedItem]  # newest first
    feed_next: int  # the offset the live feed continues from


def window_numbers(projection: WindowProjection, now: datetime) -> list[WindowMetrics]:
    """Overall metrics for the seven windows: exactly what `billing metrics --json` prints."""
    return [projection.metrics(w, now) for w in WINDOWS]


def hourly(projection: WindowProjection, now: datetime) -> list[HourPoint]:
    moments = [now - timedelta(hours=k) for k in range(HOURS - 1, -1, -1)]
    return [HourPoint(ending=m, metrics=projection.metrics("1h", m)) for m in moments]


def plan_rows(projection: WindowProjection, catalogue: Catalogue, now: datetime) -> list[PlanRow]:
    return [
        PlanRow(
            plan=p.name,
            price=p.price,
            currency=p.currency,
            interval_sec=p.interval,
            day=projection.metrics("24h", now, plan=p.name),
            week=projection.metrics("7d", now, plan=p.name),
            month=projection.metrics("30d", now, plan=p.name),
        )
        for p in catalogue.plans
    ]


async def tail_records(log: EventLog, count: int = TAIL_RECORDS) -> list[Recorded]:
    """The newest ``count`` records, oldest first (a bounded read from near the end)."""
    last = await log.last_offset()
    if last is None:
        return []
    return [r async for r in log.read(max(0, last + 1 - count), stop=last + 1)]


def feed_item(record: Recorded, catalogue: Catalogue) -> FeedItem:
    event = whole(record)
    if isinstance(event, Unreadable):
        return FeedItem(
            offset=record.offset, at="", kind="unreadable", payment="", user="", plan="", amount="", detail=event.reason
        )
    cells = cells_of(event)
    return FeedItem(
        offset=record.offset,
        at=cells.at,
        kind=cells.kind,
        payment=cells.payment,
        user=_user(catalogue, cells.party),
        plan=cells.plan,
        amount=cells.amount,
        detail=brief(event),
    )


def _user(catalogue: Catalogue, party: str) -> str:
    return next((u.id for u in catalogue.users if u.party == party), party.partition("::")[0])


def snapshot(
    projection: WindowProjection, catalogue: Catalogue, now: datetime, records: list[Recorded], *, source: str
) -> Snapshot:
    """Every number and row of the page, at ``now``."""
    failed = [r for r in reversed(records) if isinstance(r.event, PaymentFailed)][:FAILURE_ROWS]
    feed = list(reversed(records[-FEED_ROWS:]))
    return Snapshot(
        as_of=now,
        source=source,
        position=projection.position,
        windows=window_numbers(projection, now),
        hourly=hourly(projection, now),
        plans=plan_rows(projection, catalogue, now),
        failures=[feed_item(r, catalogue) for r in failed],
        feed=[feed_item(r, catalogue) for r in feed],
        feed_next=records[-1].offset + 1 if records else 0,
    )
