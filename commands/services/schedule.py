"""What is due: pure functions from the catalogue, the requested history and a time.

Period ``k`` of a subscription covers ``[anchor + k·interval, anchor + (k+1)·interval)``.
The anchor is the start of period 0 as recorded in the log, else the subscription's
``starts_at``, else the Unix epoch (periods aligned on multiples of the interval, UTC).
Never "now": an anchor that lived only in the log would put a second state folder on
other periods than the first, and charge a real period twice. A new subscription is
charged for its current period only, never for history from before billing knew it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Final

from commands.catalogue import Plan, Subscription, User
from pipeline.events import PaymentRequested, Period, RequestReason
from pipeline.ids import description, payment_id
from pipeline.processor.book import SubscriptionHistory

Pair = tuple[User, Subscription, Plan]
Histories = Mapping[tuple[str, str], SubscriptionHistory]
#: The anchor of a subscription without ``starts_at``: any state folder computes the same periods.
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def anchor_of(sub: Subscription, history: SubscriptionHistory | None) -> datetime:
    if history is not None:
        return history.anchor
    return sub.starts_at if sub.starts_at is not None else EPOCH


def period_index(anchor: datetime, interval: int, at: datetime) -> int:
    """The index of the period containing ``at`` (never negative)."""
    return max(0, int((at - anchor).total_seconds() // interval))


def period(anchor: datetime, interval: int, index: int) -> Period:
    start = anchor + timedelta(seconds=interval * index)
    return Period(index=index, start=start, end=start + timedelta(seconds=interval))


def billable(sub: Subscription, p: Period) -> bool:
    """A period is charged only if the subscription is active when it starts."""
    return sub.active(p.start)


def request_for(
    pair: Pair, anchor: datetime, index: int, *, app_party: str, reason: RequestReason, now: datetime
) -> PaymentRequested:
    user, _, plan = pair
    p = period(anchor, plan.interval, index)
    return PaymentRequested(
        payment_id=payment_id(app_party, user.party, plan.name, p.start, p.end),
        at=now,
        party=user.party,
        user_id=user.id,
        plan=plan.name,
        period=p,
        amount=plan.price,
        receiver=app_party,
        description=description(plan.name, user.id, p.start, p.end),
        reason=reason,
    )


def current_requests(
    pairs: Iterable[Pair], histories: Histories, now: datetime, *, app_party: str
) -> list[PaymentRequested]:
    """The current period of every active subscription, unless already requested."""
    out = []
    for pair in pairs:
        user, sub, plan = pair
        history = histories.get((user.party, plan.name))
        anchor = anchor_of(sub, history)
        index = period_index(anchor, plan.interval, now)
        if history is not None and index in history.requested:
            continue
        if billable(sub, period(anchor, plan.interval, index)):
            out.append(request_for(pair, anchor, index, app_party=app_party, reason="scheduled", now=now))
    return out


def missed_requests(
    pairs: Iterable[Pair], histories: Histories, now: datetime, *, app_party: str, per_subscription: int
) -> list[PaymentRequested]:
    """Periods that fell due while billing was down: after the first one ever requested,
    before the current one, never requested, billable; the newest ``per_subscription``."""
    out = []
    for pair in pairs:
        user, sub, plan = pair
        history = histories.get((user.party, plan.name))
        first = None if history is None else history.requested.first()
        if history is None or first is None or per_subscription <= 0:
            continue
        current = period_index(history.anchor, plan.interval, now)
        missing: list[int] = []
        for index in range(current - 1, first, -1):
            if len(missing) >= per_subscription:
                break
            if index not in history.requested and billable(sub, period(history.anchor, plan.interval, index)):
                missing.append(index)
        out += [
            request_for(pair, history.anchor, i, app_party=app_party, reason="recovery", now=now)
            for i in sorted(missing)
        ]
    return out


def gap_requests(
    pairs: Iterable[Pair], histories: Histories, now: datetime, *, since: datetime, app_party: str, cap: int
) -> list[PaymentRequested]:
    """Periods that began between the previous tick (``since``) and the current one, unrequested.

    A clock that jumps forward (a suspended VM, NTP stepping, a stalled loop) skips ticks:
    each skipped period is requested once, here (capped like recovery). A clock that jumps
    back yields nothing: those periods were already requested.
    """
    out = []
    for pair in pairs:
        user, sub, plan = pair
        history = histories.get((user.party, plan.name))
        if history is None or now <= since or cap <= 0:
            continue
        current = period_index(history.anchor, plan.interval, now)
        first = max(period_index(history.anchor, plan.interval, since), current - cap)
        for index in range(first, current):
            if index not in history.requested and billable(sub, period(history.anchor, plan.interval, index)):
                out.append(request_for(pair, history.anchor, index, app_party=app_party, reason="recovery", now=now))
    return out


def tick_requests(
    pairs: list[Pair], histories: Histories, now: datetime, *, since: datetime | None, app_party: str, cap: int
) -> list[PaymentRequested]:
    """One scheduler tick of the daemon: the periods skipped since the last tick, then the current ones."""
    skipped = [] if since is None else gap_requests(pairs, histories, now, since=since, app_party=app_party, cap=cap)
    return skipped + current_requests(pairs, histories, now, app_party=app_party)


def span(req: PaymentRequested) -> str:
    """The period as a person reads it (its index counts from an anchor, often the epoch)."""
    p = req.period
    end = f"{p.end:%H:%M}" if p.end - p.start < timedelta(days=1) else f"{p.end:%Y-%m-%d %H:%M}"
    return f"period {p.index} ({p.start:%Y-%m-%d %H:%M}–{end} UTC)"
