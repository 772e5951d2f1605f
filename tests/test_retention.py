"""RETENTION_DAYS: old window rows are pruned a slice at a time; windows inside retention never change."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.events import PaymentConfirmed, PaymentFailed, Recorded
from pipeline.log.embedded import EmbeddedLog
from pipeline.log.store import Store
from projections.fold import as_int
from projections.keys import level_and_bucket
from projections.replay import Retention, catch_up, rebuild
from projections.windows import WINDOWS, WindowMetrics, WindowProjection
from tests.test_windows import NOW, PLANS, USERS, Outcomes, outcomes

DAYS = 10
SCOPES = [(None, None), *((None, p) for p in PLANS), *((u, None) for u in USERS), *itertools.product(USERS, PLANS)]


class CountingStore(Store):
    """Counts the rows every scan hands out (pruning must look at a bounded number per commit)."""

    scanned = 0

    def scan(self, start: bytes = b"", end: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        for item in super().scan(start, end):
            self.scanned += 1
            yield item


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def inside(projection: WindowProjection) -> list[WindowMetrics]:
    """Every scope of every window that lies wholly inside the retention window."""
    kept = [w for w, minutes in WINDOWS.items() if minutes <= DAYS * 1440]
    return [projection.metrics(w, NOW, user=u, plan=p) for w in kept for u, p in SCOPES]


def old_rows(store: Store, cutoff: int) -> list[bytes]:
    out = []
    for key, value in store.scan():
        found = level_and_bucket(key)
        if found is not None and (found[1] + 1) * found[0] <= cutoff:
            out.append(key)
        elif key[:1] in b"lk" and as_int.decode(value) < cutoff:
            out.append(key)  # a member last active before the cutoff, a payment confirmed before it
    return out


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=outcomes(), budget=st.integers(1, 40), chunk=st.integers(1, 15))
def test_pruning_is_incremental_and_leaves_windows_inside_retention_unchanged(
    tmp_path_factory: pytest.TempPathFactory, events: Outcomes, budget: int, chunk: int
) -> None:
    records = [Recorded(i, e) for i, e in enumerate(events)]
    reference = WindowProjection(Store.open(tmp_path_factory.mktemp("ref")))  # no retention at all
    reference.apply(records)
    reference.commit()
    clock = Clock(NOW - timedelta(days=40))  # the fold ran long ago: nothing was old then
    store = CountingStore.open(tmp_path_factory.mktemp("live"))
    live = WindowProjection(store, retention_days=DAYS, clock=clock)
    assert live.pruner is not None  # retention_days set: the projection prunes
    live.pruner.budget = budget
    for i in range(0, len(records), chunk):
        live.apply(records[i : i + chunk])
        live.commit()
    clock.now = NOW  # forty days later: everything before the cutoff has to go
    commits = 0
    while live.needs_commit:
        store.scanned = 0
        live.commit()
        assert store.scanned <= budget + 1  # bounded work per commit: one slice of the sweep
        commits += 1
        assert inside(live) == inside(reference)  # also in the middle of a sweep
        assert commits <= 1000
    cutoff = live.pruner.cutoff()
    assert cutoff == (int(NOW.timestamp()) // 60 - DAYS * 1440) // 1440 * 1440
    assert not old_rows(live.store, cutoff)
    assert inside(live) == inside(reference)
    live.store.close()
    reference.store.close()


def test_replay_after_pruning_equals_the_live_fold_and_the_log_is_kept(tmp_path: Path) -> None:
    async def go() -> None:
        events = _spread()
        log = EmbeddedLog.open(tmp_path / "log", sync=False)
        await log.append_batch(events)
        clock = Clock(NOW - timedelta(days=30))
        live = WindowProjection(Store.open(tmp_path / "live"), retention_days=DAYS, clock=clock)
        assert live.pruner is not None  # retention_days set: the projection prunes
        live.pruner.budget = 25
        await catch_up(log, live)
        clock.now = NOW
        while live.needs_commit:
            await catch_up(log, live)  # nothing new to fold: each call prunes one more slice
        assert live.pruner.pruned > 0
        replayed = await rebuild(log, tmp_path / "replayed", retention=Retention(DAYS, clock))
        assert inside(replayed) == inside(live)
        assert replayed.metrics("7d", NOW).payment_count > 0
        assert await log.last_offset() == len(events) - 1
        assert len([r async for r in log.read(0)]) == len(events)  # the log itself is never pruned
        live.store.close()
        replayed.store.close()
        await log.close()

    asyncio.run(go())


def _spread() -> list[PaymentConfirmed | PaymentFailed]:
    """Outcomes every ~7 hours over the last 60 days, for every user and plan."""
    out: list[PaymentConfirmed | PaymentFailed] = []
    for i in range(200):
        at = NOW - timedelta(minutes=431 * i)
        party, plan = USERS[i % 3], PLANS[i % 2]
        if i % 7 == 0:
            out.append(
                PaymentFailed(
                    payment_id=f"p{i}",
                    at=at,
                    party=party,
                    plan=plan,
                    amount=Decimal(1),
                    attempt=3,
                    code="X",
                    message="m",
                    retryable=False,
                    final=True,
                )
            )
        else:
            out.append(
                PaymentConfirmed(
                    payment_id=f"p{i}", at=at, party=party, plan=plan, amount=Decimal("1.25"), update_id=f"u{i}"
                )
            )
    return out
