"""The senders' Amulets for concurrent payments, read together: one ACS request for many parties.

Every payment needs its sender's holdings. When hundreds are prepared at once, asking
`POST /v2/state/active-contracts` once per sender costs both sides a request each;
`AmuletReads` queues the parties asked for while a read is under way and asks for all of
them in the next one (``filtersByParty`` with each party), at the newest offset any of
them needs (each offset handed in is already at or after its sender's last commit).
A `Holding` is what billing reads of one Amulet in the ACS.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Protocol

import msgspec

from pipeline.canton.read_types import CreatedEvent
from pipeline.canton.splice_types import Amulet, read_payload


class Holding(msgspec.Struct, frozen=True, kw_only=True):
    """One Amulet of a party: its id and amount, as the ACS shows it."""

    contract_id: str
    initial_amount: Decimal
    created_round: int
    rate_per_round: Decimal = Decimal(0)


def read_holding(event: CreatedEvent) -> tuple[str, Holding] | None:
    """(owner, Holding) when the ACS entry is an Amulet."""
    if not event.template_id.endswith(":Splice.Amulet:Amulet"):
        return None
    try:
        amulet = read_payload(event.create_argument, Amulet)
    except msgspec.ValidationError:
        return None
    return amulet.owner, Holding(
        contract_id=event.contract_id,
        initial_amount=amulet.amount.initialAmount,
        created_round=amulet.amount.createdAt.number,
        rate_per_round=amulet.amount.ratePerRound.rate,
    )


class ReadsAmulets(Protocol):
    async def amulets_of(self, parties: list[str], *, at_offset: int | None = None) -> dict[str, list[Holding]]: ...


class AmuletReads:
    """Batched holdings reads: at most ``concurrency`` requests, each for up to ``max_batch`` parties."""

    def __init__(self, ledger: ReadsAmulets, *, max_batch: int = 100, concurrency: int = 4) -> None:
        self.ledger, self.max_batch, self.concurrency = ledger, max_batch, concurrency
        self._queue: list[tuple[str, int, asyncio.Future[list[Holding]]]] = []
        self._running = 0
        self._tasks: set[asyncio.Task[None]] = set()  # referenced, so none is collected mid-read
        self.requests = 0

    async def amulets(self, party: str, *, at_offset: int) -> list[Holding]:
        """``party``'s Amulets at ``at_offset`` or later."""
        future: asyncio.Future[list[Holding]] = asyncio.get_running_loop().create_future()
        self._queue.append((party, at_offset, future))
        if self._running < self.concurrency:
            self._running += 1
            task = asyncio.ensure_future(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
                await self._read(batch)
        finally:
            self._running -= 1

    async def _read(self, batch: list[tuple[str, int, asyncio.Future[list[Holding]]]]) -> None:
        parties = list(dict.fromkeys(party for party, _, _ in batch))
        try:
            self.requests += 1
            owned = await self.ledger.amulets_of(parties, at_offset=max(o for _, o, _ in batch))
        except Exception as err:  # every waiter gets the failure (a CantonError, classified)
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(err)
            return
        for party, _, future in batch:
            if not future.done():  # its payment may have been cancelled meanwhile
                future.set_result(list(owned.get(party, [])))
