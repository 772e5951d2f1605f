"""The embedded event log: RocksDB, no server. The default backend.

Keys are 8-byte big-endian offsets, values msgspec envelopes. Appends from concurrent
tasks are group-committed: one RocksDB batch (and one fsync, when ``sync``) carries
every append waiting at that moment, so durability does not cost one disk flush per
event. Another process can follow the log read-only while this one writes.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator, Sequence
from operator import itemgetter
from pathlib import Path
from typing import Final

from pipeline.errors import LogClosed, LogError
from pipeline.events import AnyEvent, Recorded, Unreadable, decode_all, decode_at, decode_outcomes, encode
from pipeline.log.store import Mode, Store

_KEY_BYTES: Final = 8
#: How often a follower in another process looks for the writer's new records.
FOLLOW_POLL_SECONDS: Final = 0.05
_key_of: Final = itemgetter(0)
_value_of: Final = itemgetter(1)


def offset_key(offset: int) -> bytes:
    return offset.to_bytes(_KEY_BYTES, "big")


class EmbeddedLog:
    """`EventLog` on a local RocksDB directory."""

    def __init__(self, store: Store) -> None:
        self._store = store
        last = _last_offset(store)
        self._next = 0 if last is None else last + 1
        self._queue: list[tuple[list[bytes], asyncio.Future[list[int]]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._appended = asyncio.Event()  # replaced on every commit; waiters hold the old one
        self._closed = False

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, follow: bool = False, sync: bool = True) -> EmbeddedLog:
        """Open the log at ``path``: as its writer, or (``follow``) as a reader of a running writer."""
        mode: Mode = "follow" if follow else "write"
        return cls(Store.open(path, mode=mode, sync=sync))

    @property
    def path(self) -> Path:
        """The log's directory."""
        return self._store.path

    @property
    def writable(self) -> bool:
        return self._store.mode == "write"

    async def append(self, event: AnyEvent) -> int:
        (offset,) = await self.append_batch([event])
        return offset

    async def append_batch(self, events: Sequence[AnyEvent]) -> list[int]:
        self._check_open()
        if not self.writable:
            raise LogError("this log was opened read-only (follower); append through the writer")
        if not events:
            return []
        done: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._queue.append(([encode(e) for e in events], done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        return await done

    async def _drain(self) -> None:
        while self._queue:
            group, self._queue = self._queue, []
            puts: list[tuple[bytes, bytes]] = []
            results: list[list[int]] = []
            offset = self._next
            try:
                for values, _ in group:
                    results.append(list(range(offset, offset + len(values))))
                    puts.extend((offset_key(offset + i), v) for i, v in enumerate(values))
                    offset += len(values)
                await asyncio.to_thread(self._store.write, puts)
            except Exception as err:  # every waiting append learns of it; none hangs
                for _, done in group:
                    if not done.done():
                        done.set_exception(err)
                continue
            self._next = offset
            for (_, done), offsets in zip(group, results, strict=True):
                if not done.done():
                    done.set_result(offsets)
            signal, self._appended = self._appended, asyncio.Event()
            signal.set()

    async def read_batches(
        self, start: int = 0, *, stop: int | None = None, size: int = 1000, outcomes_only: bool = False
    ) -> AsyncIterator[list[Recorded]]:
        async for batch in self._batches(start, stop, size, None, outcomes_only):
            yield batch

    async def _batches(
        self,
        start: int,
        stop: int | None,
        size: int,
        seen_foreign: set[bytes] | None,
        outcomes_only: bool = False,
    ) -> AsyncIterator[list[Recorded]]:
        """Read records in lists of up to ``size``; foreign keys in ``seen_foreign`` are not repeated."""
        self._check_open()
        self._store.catch_up()
        end = None if stop is None else offset_key(max(stop, 0))
        previous = max(start, 0) - 1
        first = offset_key(previous + 1) if previous >= 0 else b""  # from 0: foreign keys before it too
        for chunk in self._store.scan_chunks(first, end, size):
            batch = _records(chunk, previous, seen_foreign, outcomes_only)
            if batch:
                previous = max(previous, batch[-1].offset)
                yield batch
            await asyncio.sleep(0)  # let other tasks run during long reads

    async def read(self, start: int = 0, *, stop: int | None = None) -> AsyncIterator[Recorded]:
        async for batch in self.read_batches(start, stop=stop):
            for record in batch:
                yield record

    async def follow(self, start: int = 0) -> AsyncIterator[Recorded]:
        position, seen_foreign = max(start, 0), set[bytes]()
        while True:
            async for batch in self._batches(position, None, 1000, seen_foreign):
                for record in batch:
                    yield record
                position = max(position, batch[-1].offset + 1)
            await self._wait_for_more(position)

    async def _wait_for_more(self, position: int) -> None:
        if self.writable:
            if self._next <= position:
                await self._appended.wait()
        else:
            await asyncio.sleep(FOLLOW_POLL_SECONDS)

    async def last_offset(self) -> int | None:
        self._check_open()
        if self.writable:
            return self._next - 1 if self._next else None
        self._store.catch_up()
        return _last_offset(self._store)

    async def close(self) -> None:
        if self._closed:
            return
        if self._writer is not None:
            await asyncio.shield(self._writer)
        self._closed = True
        self._store.close()

    def _check_open(self) -> None:
        if self._closed:
            raise LogClosed("the event log is closed")


def _last_offset(store: Store) -> int | None:
    """The newest offset key, stepping over foreign keys of another length."""
    end: bytes | None = None
    while (key := store.last_key(end=end)) is not None:
        if len(key) == _KEY_BYTES:
            return int.from_bytes(key, "big")
        end = key
    return None


def _records(
    chunk: list[tuple[bytes, bytes]], previous: int, seen_foreign: set[bytes] | None, outcomes_only: bool
) -> list[Recorded]:
    """The records of one chunk of ``(key, value)`` pairs; ``previous`` is the offset before it."""
    first, last = chunk[0][0], chunk[-1][0]
    if len(first) == len(last) == _KEY_BYTES and set(map(len, map(_key_of, chunk))) == {_KEY_BYTES}:
        low, high = int.from_bytes(first, "big"), int.from_bytes(last, "big")
        if high - low == len(chunk) - 1:  # sorted, distinct and this many: every offset in between
            events = (decode_outcomes if outcomes_only else decode_all)(list(map(_value_of, chunk)), low)
            return list(map(Recorded, range(low, high + 1), events))
    return list(_records_one_by_one(chunk, previous, seen_foreign, outcomes_only))


def _records_one_by_one(
    chunk: list[tuple[bytes, bytes]], previous: int, seen_foreign: set[bytes] | None, outcomes_only: bool
) -> Iterator[Recorded]:
    for key, value in chunk:
        if len(key) == _KEY_BYTES:
            previous = int.from_bytes(key, "big")
            yield Recorded(previous, decode_at(value, previous, outcomes_only=outcomes_only))
        elif seen_foreign is None or key not in seen_foreign:
            if seen_foreign is not None:
                seen_foreign.add(key)
            yield _foreign(key, value, previous)


def _foreign(key: bytes, value: bytes, previous: int) -> Recorded:
    """A key that is not an offset. It is reported at the offset before it, so a reader that
    resumes after ``record.offset`` neither goes back nor skips an event."""
    reason = f"foreign key {key[:40]!r} (not an 8-byte offset) after offset {previous} in the event log"
    return Recorded(previous, Unreadable(reason=reason, raw=value))
