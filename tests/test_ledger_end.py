"""Shared ledger-end reads: concurrent payments share one, and none reads before its sender's
last commit (its inputs would already be spent)."""

from __future__ import annotations

import asyncio

from pipeline.canton.ledger_end import LedgerEnd


class Ledger:
    """A ledger end that moves when told; counts the reads, each taking a moment."""

    def __init__(self) -> None:
        self.offset = 10
        self.reads = 0

    async def ledger_end(self) -> int:
        self.reads += 1
        await asyncio.sleep(0.001)
        return self.offset


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_concurrent_reads_share_one_request() -> None:
    ledger = Ledger()
    end = LedgerEnd(ledger, max_age=1.0, monotonic=Clock())
    assert await asyncio.gather(*(end.read(f"p{i}") for i in range(50))) == [10] * 50
    assert ledger.reads == 1


async def test_a_read_is_reused_until_it_is_too_old() -> None:
    ledger, clock = Ledger(), Clock()
    end = LedgerEnd(ledger, max_age=0.25, monotonic=clock)
    await end.read("alice")
    ledger.offset = 11
    clock.now = 0.2
    assert await end.read("bob") == 10 and ledger.reads == 1
    clock.now = 0.3
    assert await end.read("bob") == 11 and ledger.reads == 2


async def test_never_before_the_senders_last_commit() -> None:
    ledger = Ledger()
    end = LedgerEnd(ledger, max_age=60.0, monotonic=Clock())
    assert await end.read("alice") == 10
    ledger.offset = 12
    end.committed("alice", 12)
    assert await end.read("bob") == 10  # bob spent nothing since: the shared read will do
    assert await end.read("alice") == 12 and ledger.reads == 2


async def test_a_failed_read_reaches_every_waiter_and_the_next_read_tries_again() -> None:
    class Down(Ledger):
        async def ledger_end(self) -> int:
            self.reads += 1
            await asyncio.sleep(0.001)
            if self.reads == 1:
                raise ConnectionError("down")
            return self.offset

    ledger = Down()
    end = LedgerEnd(ledger, monotonic=Clock())
    results = await asyncio.gather(*(end.read("a") for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    assert await end.read("a") == 10
