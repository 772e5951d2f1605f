"""Holdings of concurrent payments read together: one ACS request for many senders."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from pipeline.canton.amulet_reads import AmuletReads, Holding


class Ledger:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[list[str], int | None]] = []
        self.fail = fail

    async def amulets_of(self, parties: list[str], *, at_offset: int | None = None) -> dict[str, list[Holding]]:
        self.calls.append((parties, at_offset))
        await asyncio.sleep(0.001)
        if self.fail:
            raise ConnectionError("participant down")
        return {p: [Holding(contract_id=f"c-{p}", initial_amount=Decimal(5), created_round=1)] for p in parties}


async def test_parties_asked_for_together_share_requests() -> None:
    ledger = Ledger()
    reads = AmuletReads(ledger, max_batch=10, concurrency=2)
    found = await asyncio.gather(*(reads.amulets(f"p{i}", at_offset=i) for i in range(30)))
    assert [h[0].contract_id for h in found] == [f"c-p{i}" for i in range(30)]
    assert len(ledger.calls) < 30 and all(len(parties) <= 10 for parties, _ in ledger.calls)
    # each request reads at the newest offset any of its parties needs
    assert all(offset == max(int(p[1:]) for p in parties) for parties, offset in ledger.calls)


async def test_a_failed_read_fails_each_payment_of_its_batch() -> None:
    reads = AmuletReads(Ledger(fail=True))
    results = await asyncio.gather(*(reads.amulets(f"p{i}", at_offset=1) for i in range(5)), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)


async def test_a_cancelled_payment_does_not_break_the_others() -> None:
    reads = AmuletReads(Ledger(), concurrency=1)
    first = asyncio.create_task(reads.amulets("a", at_offset=1))
    second = asyncio.create_task(reads.amulets("b", at_offset=1))
    await asyncio.sleep(0)
    second.cancel()
    assert (await first)[0].contract_id == "c-a"
    with pytest.raises(asyncio.CancelledError):
        await second
    assert (await reads.amulets("c", at_offset=2))[0].contract_id == "c-c"
