"""The daemon's scheduler under a clock that jumps: forward, every period once; backward, nothing twice.

The loop below is the daemon's (`commands/daemon/main.py` `_schedule`): each tick reads the
injected clock, asks `tick_requests` with the previous tick's time, and appends what it
returns to the log (here: the PaymentBook the daemon reads its history from).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from commands.catalogue import Plan, Subscription, User
from commands.services.schedule import EPOCH, Pair, period_index, tick_requests
from pipeline.events import Recorded
from pipeline.processor.book import PaymentBook

APP = "app::1220aa"
T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
PLANS = [Plan(id=f"p{s}", name=f"p{s}", price=Decimal(1), currency="CC", interval_sec=str(s)) for s in (60, 300)]
USERS = [
    User(
        id=f"u{i}",
        party=f"u{i}::1220",
        name=f"U{i}",
        email=f"u{i}@x",
        subscriptions=tuple(Subscription(name=p.name, expires_at=date(2030, 1, 1)) for p in PLANS),
    )
    for i in range(3)
]
PAIRS: list[Pair] = [(u, s, p) for u in USERS for s, p in zip(u.subscriptions, PLANS, strict=True)]
CAP = 100


def run_ticks(times: list[datetime]) -> tuple[Counter[str], PaymentBook]:
    """The daemon's loop over the given clock readings; counts how often each payment was requested."""
    book, asked, since, offset = PaymentBook(), Counter[str](), None, 0
    for now in times:
        for request in tick_requests(PAIRS, book.subscriptions, now, since=since, app_party=APP, cap=CAP):
            asked[request.payment_id] += 1
            book.apply(Recorded(offset, request))
            offset += 1
        since = now
    return asked, book


def _periods(book: PaymentBook) -> dict[tuple[str, str], set[int]]:
    """The requested periods of each subscription, counted from the one T0 falls in (T0 starts
    a period of both plans: periods are aligned on the epoch)."""

    def base(plan: str) -> int:
        return period_index(EPOCH, 60 if plan == "p60" else 300, T0)

    return {
        (party, plan): {i - base(plan) for i in history.requested}
        for (party, plan), history in book.subscriptions.items()
    }


def test_a_forward_jump_requests_each_skipped_period_once() -> None:
    asked, book = run_ticks([T0, T0 + timedelta(seconds=60), T0 + timedelta(minutes=31), T0 + timedelta(minutes=32)])
    assert set(asked.values()) == {1}
    for (_, plan), requested in _periods(book).items():
        interval = 60 if plan == "p60" else 300
        assert requested == set(range(period_index(T0, interval, T0 + timedelta(minutes=32)) + 1)), plan


def test_a_backward_jump_requests_nothing_twice() -> None:
    times = [
        T0,
        T0 + timedelta(minutes=10),
        T0 - timedelta(hours=2),
        T0 + timedelta(minutes=5),
        T0 + timedelta(minutes=11),
    ]
    asked, book = run_ticks(times)
    assert set(asked.values()) == {1}
    assert max(_periods(book)[("u0::1220", "p60")]) == 11


def test_a_jump_longer_than_the_cap_requests_the_newest_periods_only() -> None:
    asked, book = run_ticks([T0, T0 + timedelta(days=1)])
    assert set(asked.values()) == {1}
    requested = _periods(book)[("u0::1220", "p60")]
    assert len(requested) == 2 + CAP and max(requested) == 24 * 60  # period 0, the newest CAP, the current


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(min_value=-7200, max_value=7200), min_size=1, max_size=25))
def test_any_clock_path_requests_every_period_at_most_once_and_none_skipped(steps: list[int]) -> None:
    times, now = [T0], T0
    for step in steps:
        now += timedelta(seconds=step)
        times.append(now)
    asked, book = run_ticks(times)
    assert set(asked.values()) <= {1}, "a period was requested twice"
    latest = max(times)
    for (_, plan), requested in _periods(book).items():
        interval = 60 if plan == "p60" else 300
        top = period_index(T0, interval, latest)
        assert max(requested) == top  # the newest due period is always requested
        assert set(range(max(0, top - CAP), top + 1)) <= requested, f"{plan}: a period was skipped"
