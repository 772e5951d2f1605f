"""Retention (`RETENTION_DAYS`): prune window rows older than the window, a slice at a time.

The cutoff is the start of the day ``RETENTION_DAYS`` before now, so a minute, its hour and
its day are pruned together and a histogram cell never outlives the member row pointing at
it. Outcomes older than the cutoff are no longer folded (the projection's *horizon*).
Pruning sweeps the store in key order, at most ``budget`` rows per commit, and its deletes
go into the commit's own atomic batch: queries never wait and never see half a prune.
The event log is never touched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

import msgspec

from pipeline.log.store import Store
from projections.keys import CONFIRMED, DAY, level_and_bucket

_SWEPT = b"\x00swept"
_int = msgspec.msgpack.Decoder(int)


class Pruner:
    """Deletes, in bounded steps, every row whose time lies before the retention cutoff."""

    def __init__(
        self, store: Store, days: int, clock: Callable[[], datetime], *, budget: int = 20_000, fresh: bool = False
    ) -> None:
        self.store = store
        self.days = days
        self.clock = clock
        self.budget = budget
        raw = store.get(_SWEPT)
        # a new store holds nothing old: the first sweep is due only when the cutoff moves on
        self.swept = self.cutoff() if fresh else int.from_bytes(raw, "big") if raw else 0
        self.cursor = b""
        self.pruned = 0  # rows deleted by this process, for logs and tests
        self._memory_checked = 0

    def cutoff(self) -> int:
        """The first minute kept: midnight UTC, ``days`` days ago."""
        minute = int(self.clock().timestamp()) // 60 - self.days * DAY
        return max(minute // DAY * DAY, 0)

    def due(self) -> bool:
        return self.cutoff() > self.swept

    def step(self, cutoff: int, ints: Mapping[bytes, int], dirty: Iterable[bytes]) -> set[bytes]:
        """The rows to delete in this commit: old rows about to be written, and one slice of the store.

        Args:
            cutoff: the first minute kept.
            ints: the fold's cached integer rows (a member's last minute is read there first).
            dirty: the rows this commit writes.
        """
        deletes: set[bytes] = set()
        if cutoff > self._memory_checked:  # the horizon moved: rows folded under the old one may be old
            deletes.update(k for k in dirty if _old(k, ints.get(k), cutoff))
            self._memory_checked = cutoff
        if cutoff > self.swept:
            deletes |= self._slice(cutoff, ints)
        self.pruned += len(deletes)
        return deletes

    def _slice(self, cutoff: int, ints: Mapping[bytes, int]) -> set[bytes]:
        deletes: set[bytes] = set()
        for scanned, (key, value) in enumerate(self.store.scan(self.cursor)):
            if scanned >= self.budget:
                self.cursor = key  # resume here at the next commit
                return deletes
            if _old(key, ints[key] if key in ints else _decode_last(key, value), cutoff):
                deletes.add(key)
        self.cursor, self.swept = b"", cutoff  # a whole sweep done for this cutoff
        return deletes

    def progress(self) -> list[tuple[bytes, bytes]]:
        return [(_SWEPT, self.swept.to_bytes(8, "big"))]


_MINUTE_ROWS = (b"l", CONFIRMED)  # rows whose value is a minute: a member's last one, a confirmation's


def _decode_last(key: bytes, value: bytes) -> int | None:
    return _int.decode(value) if key[:1] in _MINUTE_ROWS else None


def _old(key: bytes, last: int | None, cutoff: int) -> bool:
    """A time bucket wholly before ``cutoff``, or a member last active (a payment confirmed) before it."""
    found = level_and_bucket(key)
    if found is not None:
        size, bucket = found
        return (bucket + 1) * size <= cutoff
    return key[:1] in _MINUTE_ROWS and last is not None and last < cutoff
