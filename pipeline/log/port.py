"""The event log port: the only source of truth, append-only, read by position.

Every backend (embedded RocksDB, Kafka) implements `EventLog`, and one contract test
suite (`tests/log_contract.py`) runs against each of them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from pipeline.events import AnyEvent, Recorded


class EventLog(Protocol):
    """Append events; read them back in order from any position; follow new ones."""

    async def append(self, event: AnyEvent) -> int:
        """Append one event durably; return its offset once it is stored."""
        ...

    async def append_batch(self, events: Sequence[AnyEvent]) -> list[int]:
        """Append several events atomically (all or none); return their offsets."""
        ...

    def read(self, start: int = 0, *, stop: int | None = None) -> AsyncIterator[Recorded]:
        """Yield records from ``start`` up to ``stop`` (exclusive) or the current end."""
        ...

    def read_batches(
        self, start: int = 0, *, stop: int | None = None, size: int = 1000, outcomes_only: bool = False
    ) -> AsyncIterator[list[Recorded]]:
        """Like `read`, in lists of up to ``size`` records (cheaper for folds).

        ``outcomes_only``: the reader needs only outcomes; requests and submissions may come
        back as `Skipped` (left undecoded: a replay then decodes only what it folds), or whole.
        """
        ...

    def follow(self, start: int = 0) -> AsyncIterator[Recorded]:
        """Yield records from ``start`` forever, waiting for new ones at the end."""
        ...

    async def last_offset(self) -> int | None:
        """The offset of the newest record, or None when the log is empty."""
        ...

    async def close(self) -> None:
        """Finish pending appends and release the log."""
        ...
