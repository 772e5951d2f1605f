"""The event log contract, written once; every backend's test module subclasses it.

A subclass provides `open_log(path)` (a fresh or reopened log at ``path``); everything
else here is backend-neutral.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from pipeline.errors import LogClosed
from pipeline.events import AnyEvent, PaymentConfirmed, PaymentRequested, Period, Recorded
from pipeline.log.port import EventLog

T0 = datetime(2026, 11, 24, tzinfo=UTC)


def event(i: int) -> PaymentRequested:
    return PaymentRequested(
        payment_id=f"p{i:06d}",
        at=T0,
        party=f"user{i % 7}::1220ab",
        user_id=f"u{i}",
        plan="prover",
        period=Period(index=i, start=T0, end=T0 + timedelta(minutes=5)),
        amount=Decimal("2.5"),
        receiver="app::1220cd",
        description="prover subscription payment",
    )


def payment_id(record: Recorded) -> str:
    """The payment of a record these tests wrote: always a readable event."""
    assert isinstance(record.event, AnyEvent), record.event
    return record.event.payment_id


async def collect(log: EventLog, start: int = 0, stop: int | None = None) -> list[int]:
    return [r.offset async for r in log.read(start, stop=stop)]


class EventLogContract:
    async def open_log(self, path: Path) -> EventLog:
        raise NotImplementedError

    async def test_offsets_are_contiguous_from_zero(self, tmp_path: Path) -> None:
        log = await self.open_log(tmp_path)
        assert await log.last_offset() is None
        assert await log.append(event(0)) == 0
        assert await log.append_batch([event(1), event(2)]) == [1, 2]
        assert await log.append_batch([]) == []
        assert await log.last_offset() == 2
        await log.close()

    async def test_read_returns_what_was_appended_in_order(self, tmp_path: Path) -> None:
        log = await self.open_log(tmp_path)
        events = [event(i) for i in range(25)]
        await log.append_batch(events)
        got = [r async for r in log.read()]
        assert [r.event for r in got] == events
        assert await collect(log, 10, stop=13) == [10, 11, 12]
        sizes = [len(b) async for b in log.read_batches(0, size=10)]
        assert sizes == [10, 10, 5]
        await log.close()

    async def test_concurrent_appends_get_distinct_offsets(self, tmp_path: Path) -> None:
        log = await self.open_log(tmp_path)
        offsets = await asyncio.gather(*(log.append(event(i)) for i in range(200)))
        assert sorted(offsets) == list(range(200))
        by_offset = {r.offset: payment_id(r) async for r in log.read()}
        assert {by_offset[o] for o in offsets} == {f"p{i:06d}" for i in range(200)}
        await log.close()

    async def test_durable_across_reopen(self, tmp_path: Path) -> None:
        log = await self.open_log(tmp_path)
        await log.append_batch([event(i) for i in range(10)])
        await log.close()
        again = await self.open_log(tmp_path)
        assert await collect(again) == list(range(10))
        assert await again.append(event(10)) == 10
        await again.close()

    async def test_batch_is_all_or_nothing(self, tmp_path: Path) -> None:
        log = await self.open_log(tmp_path)
        await log.append(event(0))
        bad = PaymentConfirmed(payment_id="x", at=T0, party="p::1", plan="p", amount=Decimal("1"), update_id=object())  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await log.append_batch([event(1), bad])
        assert await collect(log) == [0]
        await log.close()

    async def test_follow_yields_old_then_new_events(self, tmp_path: Path) -> None:
        log = await self.open_log(tmp_path)
        await log.append_batch([event(0), event(1)])
        seen: list[list[int]] = [[], []]

        async def follower(k: int) -> None:
            async for record in log.follow(0):
                seen[k].append(record.offset)
                if record.offset == 4:
                    return

        tasks = [asyncio.create_task(follower(0)), asyncio.create_task(follower(1))]
        await asyncio.sleep(0.05)
        for i in range(2, 5):
            await log.append(event(i))
            await asyncio.sleep(0.01)
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=5)
        assert seen == [[0, 1, 2, 3, 4]] * 2
        await log.close()

    async def test_use_after_close_is_refused(self, tmp_path: Path) -> None:
        log = await self.open_log(tmp_path)
        await log.close()
        with pytest.raises(LogClosed):
            await log.append(event(0))
