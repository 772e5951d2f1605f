"""The ledger end as payments need it: one `GET /v2/state/ledger-end` shared by many payments.

A payment needs an offset (1) at which to read the sender's Amulets and (2) to record
in `PaymentSubmitted` as where to look for its completion. Any offset read before the
submission is a correct lower bound for (2); for (1) it must not predate the sender's
own last transfer, or the inputs it picks may already be spent. So concurrent payments
share one read, reused for ``max_age`` seconds, unless it is older than the sender's
last known commit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol


class ReadsLedgerEnd(Protocol):
    async def ledger_end(self) -> int: ...


class LedgerEnd:
    """Coalesced, briefly cached ledger-end reads, never older than a sender's last commit."""

    def __init__(
        self,
        ledger: ReadsLedgerEnd,
        *,
        max_age: float = 0.25,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ledger, self.max_age, self._monotonic = ledger, max_age, monotonic
        self._value = -1
        self._read_at = float("-inf")
        self._pending: asyncio.Future[int] | None = None
        self._committed: dict[str, int] = {}  # sender -> offset of its last accepted transfer
        self.reads = 0

    def committed(self, sender: str, offset: int | None) -> None:
        """The ledger accepted a transfer of ``sender`` at ``offset``."""
        if offset is not None and offset > self._committed.get(sender, -1):
            self._committed[sender] = offset

    async def read(self, sender: str | None = None) -> int:
        """A ledger end no older than ``max_age`` and not before ``sender``'s last commit."""
        floor = self._committed.get(sender, 0) if sender is not None else 0
        for _ in range(3):
            if self._value >= floor and self._monotonic() - self._read_at < self.max_age:
                return self._value
            if self._pending is None:
                self._pending = asyncio.ensure_future(self._fetch())
            value = await asyncio.shield(self._pending)
            if value >= floor:
                return value
        return await self.ledger.ledger_end()  # shared reads keep predating the commit: read alone

    async def _fetch(self) -> int:
        started = self._monotonic()
        try:
            value = await self.ledger.ledger_end()
            self.reads += 1
            if value >= self._value:
                self._value, self._read_at = value, started
            return value
        finally:
            self._pending = None
