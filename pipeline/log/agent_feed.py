"""Partitions fed by agents: one log per (role, partition), run while the partition is ours.

A faust agent only *delivers* records (`Assignment.deliver`); what runs on them (the
processor, a projection) is a `Runner` written against `EventLog`, the same code as on the
embedded log. Each runner gets a `FedLog`: its `follow` is the agent's stream, everything
else (load, catch-up, appends) goes to the partition's `KafkaLog`. A *direct* role gets the
partition's `KafkaLog` itself and follows it in batches (still only while the group gives
us the partition): faust hands records over one at a time, which is too slow for folds. A revoked partition's
runners are cancelled, and our pending appends flushed, *before* the rebalance goes on, so
the next owner starts from a log that holds everything we wrote.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Mapping, Sequence
from typing import Any

from pipeline.events import AnyEvent, Recorded
from pipeline.log.kafka import KafkaTopic
from pipeline.log.kafka_log import KafkaLog
from pipeline.log.port import EventLog
from pipeline.tasks import cancel_and_wait

logger = logging.getLogger(__name__)

Runner = Callable[[int, EventLog], Coroutine[Any, Any, None]]
FEED_DEPTH = 10_000  # records buffered per runner; a slow runner slows its agent, never loses records


class FedLog:
    """`EventLog` of one partition whose `follow` is fed by an agent (gaps are read from Kafka)."""

    def __init__(self, log: KafkaLog) -> None:
        self.log = log
        self.queue: asyncio.Queue[Recorded] = asyncio.Queue(FEED_DEPTH)

    async def append(self, event: AnyEvent) -> int:
        return await self.log.append(event)

    async def append_batch(self, events: Sequence[AnyEvent]) -> list[int]:
        return await self.log.append_batch(events)

    def read(self, start: int = 0, *, stop: int | None = None) -> AsyncIterator[Recorded]:
        return self.log.read(start, stop=stop)

    def read_batches(
        self, start: int = 0, *, stop: int | None = None, size: int = 1000, outcomes_only: bool = False
    ) -> AsyncIterator[list[Recorded]]:
        return self.log.read_batches(start, stop=stop, size=size, outcomes_only=outcomes_only)

    async def follow(self, start: int = 0) -> AsyncIterator[Recorded]:
        expected = start
        while True:
            record = await self.queue.get()
            if record.offset < expected:
                continue  # redelivered (the group's committed offset is behind us): already seen
            if record.offset > expected:  # the agent started past us: read what lies between
                async for missed in self.log.read(expected, stop=record.offset):
                    yield missed
            yield record
            expected = record.offset + 1

    async def last_offset(self) -> int | None:
        return await self.log.last_offset()

    async def close(self) -> None:
        """Nothing to release: the topic is shared by every partition of the worker."""


class Assignment:
    """Starts every role's runner on each assigned partition and stops them on revocation."""

    def __init__(self, topic: KafkaTopic, roles: Mapping[str, Runner], *, direct: Iterable[str] = ()) -> None:
        self.topic = topic
        self.roles = dict(roles)
        #: Roles that read their partition straight from Kafka in batches instead of through an
        #: agent (faust hands records over one at a time, too slow for folds).
        self.direct = set(direct)
        self._feeds: dict[tuple[str, int], FedLog] = {}
        self._tasks: dict[tuple[str, int], asyncio.Task[None]] = {}
        self.crashed: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    @property
    def fed_roles(self) -> list[str]:
        """The roles a faust agent feeds (one agent each)."""
        return [role for role in self.roles if role not in self.direct]

    @property
    def partitions(self) -> set[int]:
        return {p for _, p in self._tasks}

    def assign(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            for role, runner in self.roles.items():
                if (role, partition) not in self._tasks:
                    log: EventLog = KafkaLog(self.topic, partition)
                    if role not in self.direct:
                        log = self._feeds[(role, partition)] = FedLog(KafkaLog(self.topic, partition))
                    task = asyncio.create_task(runner(partition, log), name=f"{role}-{partition}")
                    task.add_done_callback(self._on_done)
                    self._tasks[(role, partition)] = task
        logger.info("partitions assigned", extra={"partitions": sorted(self.partitions)})

    async def revoke(self, partitions: Iterable[int]) -> None:
        gone = set(partitions)
        stopping = [self._tasks.pop(k) for k in list(self._tasks) if k[1] in gone]
        for key in [k for k in self._feeds if k[1] in gone]:
            del self._feeds[key]
        await cancel_and_wait(stopping)
        await self.topic.flush()  # what we appended is in the log before the next owner reads it
        logger.info("partitions revoked", extra={"revoked": sorted(gone), "kept": sorted(self.partitions)})

    async def deliver(self, role: str, record: Recorded) -> None:
        feed = self._feeds.get((role, record.partition))
        if feed is not None:  # not ours (any more): its next owner reads it from the log
            await feed.queue.put(record)

    async def stop(self) -> None:
        await self.revoke(self.partitions)

    def _on_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self.crashed.done():
            return
        error = task.exception() or RuntimeError(f"{task.get_name()} stopped on its own")
        logger.error("partition runner stopped", extra={"runner": task.get_name(), "error": repr(error)})
        self.crashed.set_result(error)
