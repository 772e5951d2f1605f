"""The embedded event log: RocksDB, no server. The default backend.

Keys are 8-byte big-endian offsets, values msgspec envelopes. Appends from concurrent
tasks are group-committed: one RocksDB batch (and one fsync, when ``sync``) carries
every append waiting at that moment, so durability does not cost one disk flush per
event. Another process can follow the log read-only while this one writes.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Sequence
from typing import Final

from pipeline.errors import LogClosed, LogError
from pipeline.events import AnyEvent, Recorded, Unreadable, decode, encode
from pipeline.rocks import Mode, Store

_KEY_BYTES: Final = 8
#: How often a follower in another process looks for the writer's new records.
FOLLOW_POLL_SECONDS: Final = 0.05


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
            puts, results, offset = [], [], self._next
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
        self, start: int = 0, *, stop: int | None = None, size: int = 1000
    ) -> AsyncIterator[list[Recorded]]:
        self._check_open()
        self._store.catch_up()
        end = None if stop is None else offset_key(stop)
        batch: list[Recorded] = []
        append = batch.append
        for key, value in self._store.scan(offset_key(max(start, 0)), end):
            if len(key) == _KEY_BYTES:
                append(Recorded(int.from_bytes(key, "big"), decode(value)))
            else:
                append(_foreign(key, value))
            if len(batch) >= size:
                yield batch
                batch = []
                append = batch.append
                await asyncio.sleep(0)  # let other tasks run during long reads
        if batch:
            yield batch

    async def read(self, start: int = 0, *, stop: int | None = None) -> AsyncIterator[Recorded]:
        async for batch in self.read_batches(start, stop=stop):
            for record in batch:
                yield record

    async def follow(self, start: int = 0) -> AsyncIterator[Recorded]:
        position = start
        while True:
            async for batch in self.read_batches(position):
                for record in batch:
                    yield record
                position = batch[-1].offset + 1
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


def _foreign(key: bytes, value: bytes) -> Recorded:
    return Recorded(-1, Unreadable(reason=f"foreign key {key[:40]!r} in the event log", raw=value))
