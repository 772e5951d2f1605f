"""`EventLog` on one partition of the Kafka event topic (`pipeline/log/kafka.py`).

Positions. The `EventLog` contract counts one position per record, contiguous from 0 in
append order. A Kafka topic has one such sequence *per partition*, so a `KafkaLog` is the
log of ONE partition and its positions are that partition's offsets. They are contiguous
from 0 because we never use transactions (no control records take offsets) and never
compact the event topic. On a 1-partition topic a `KafkaLog` is the whole log (this is how
the shared contract suite runs on Kafka); on N partitions every worker runs one processor
and one projection per partition it owns, each over that partition's `KafkaLog`, and each
stores its own position. `Recorded.partition` says which partition a record came from.

End of the log. Tansu (our test broker) answers ListOffsets with the last *batch's* base
offset + 1, too low; real Kafka answers exactly. We use it only as a lower bound and then
read forward until the broker has nothing more for us ("read to idle": a fetch that stays
empty for ``idle_ms``); on real Kafka that is one empty fetch. Our own appends move the
lower bound too. `append_batch` is atomic as `KafkaTopic.send` is.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

from pipeline.errors import LogClosed, LogError
from pipeline.events import AnyEvent, Recorded, encode
from pipeline.log.kafka import KafkaTopic


class KafkaLog:
    """`EventLog` on one partition of the event topic (positions are its offsets)."""

    def __init__(self, topic: KafkaTopic, partition: int, *, owns_topic: bool = False) -> None:
        """The log of ``partition`` of ``topic`` (sharing the topic's producer)."""
        if not 0 <= partition < topic.partitions:
            raise LogError(f"topic {topic.name} has no partition {partition} (it has {topic.partitions})")
        self.topic = topic
        self.partition = partition
        self._owns_topic = owns_topic
        self._next = 0  # one past our newest append: a lower bound of the end
        self._closed = False

    @classmethod
    async def open(cls, url: str, topic: str, *, partition: int = 0, partitions: int = 1, **options: Any) -> KafkaLog:
        """A log of its own on ``topic`` (created with ``partitions`` if missing); closing it disconnects."""
        shared = await KafkaTopic.open(url, topic, partitions=partitions, **options)
        return cls(shared, partition, owns_topic=True)

    async def append(self, event: AnyEvent) -> int:
        (offset,) = await self.append_batch([event])
        return offset

    async def append_batch(self, events: Sequence[AnyEvent]) -> list[int]:
        self._check_open()
        if not events:
            return []
        offsets = await self.topic.send(self.partition, [(None, encode(e)) for e in events])
        self._next = max(self._next, offsets[-1] + 1)
        return offsets

    async def read_batches(
        self, start: int = 0, *, stop: int | None = None, size: int = 1000, outcomes_only: bool = False
    ) -> AsyncIterator[list[Recorded]]:
        self._check_open()  # records come back whole, also with ``outcomes_only`` (the port allows it)
        if stop is not None and stop <= start:
            return
        async for got in self._records(max(start, 0)):
            if stop is not None:
                got = [r for r in got if r.offset < stop]
            for i in range(0, len(got), size):
                yield got[i : i + size]
            if stop is not None and (not got or got[-1].offset >= stop - 1):
                return

    async def _records(self, start: int) -> AsyncIterator[list[Recorded]]:
        last = await self.last_offset()
        if last is None or start > last:
            return  # nothing there (and Kafka refuses a fetch past the end)
        async for batch in self.topic.read_all({self.partition: start}):
            yield batch

    async def read(self, start: int = 0, *, stop: int | None = None) -> AsyncIterator[Recorded]:
        async for batch in self.read_batches(start, stop=stop):
            for record in batch:
                yield record

    async def follow(self, start: int = 0) -> AsyncIterator[Recorded]:
        position = max(start, 0)
        while position > 0:  # wait until ``position`` exists: Kafka refuses a fetch past the end
            last = await self.last_offset()
            if last is not None and last + 1 >= position:
                break
            await asyncio.sleep(self.topic.idle_ms / 1000)
        async for batch in self.topic.read_all({self.partition: position}, follow=True):
            for record in batch:
                yield record

    async def last_offset(self) -> int | None:
        self._check_open()
        end = await self._lower_end()
        last = end - 1 if end else None
        # Read from the newest record we know of to the real end (see the module docstring).
        async for batch in self.topic.read_all({self.partition: max(end - 1, 0)}):
            last = batch[-1].offset
        return last

    async def _lower_end(self) -> int:
        return max(self._next, (await self.topic.lower_end([self.partition]))[self.partition])

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._owns_topic:
                await self.topic.close()

    def _check_open(self) -> None:
        if self._closed:
            raise LogClosed("the event log is closed")
        self.topic.check_open()
