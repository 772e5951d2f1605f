"""The Kafka event topic: one topic, partitioned by subscription, through aiokafka (the only module
importing it). `pipeline/log/kafka_log.py` is the `EventLog` of one of its partitions.

Keys. Commands publish `PaymentRequested` through `KafkaTopic.publish`, keyed by
`subscription_key(party, plan)` with Kafka's default (murmur2) partitioner, so every event of
one subscription lands in one partition, in order. Outcomes are appended by the processor
of that partition to the same partition explicitly (`PaymentSubmitted` has no party).

Atomicity: `KafkaTopic.send` sends one Kafka record batch per partition (written whole or
not at all) as long as the events fit in ``MAX_BATCH_BYTES``; a larger batch is split and
each part is atomic on its own. Reads go to idle (`read_all`): see `kafka_log.py` on why.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any, Final

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, OffsetOutOfRangeError, TopicAlreadyExistsError
from aiokafka.partitioner import DefaultPartitioner

from pipeline.errors import LogClosed, LogError
from pipeline.events import AnyEvent, PaymentRequested, Recorded, decode, encode

#: How long a fetch must stay empty before we call a partition's end reached.
IDLE_MS: Final = 150
MAX_BATCH_BYTES: Final = 1_000_000
_partitioner: Final = DefaultPartitioner()


def subscription_key(party: str, plan: str) -> bytes:
    """The record key of a subscription: ``party|plan`` (UTF-8). External producers use it too."""
    return f"{party}|{plan}".encode()


def key_of(event: AnyEvent) -> bytes | None:
    return subscription_key(event.party, event.plan) if isinstance(event, PaymentRequested) else None


def bootstrap_of(url: str) -> str:
    """``kafka://host:port[,host:port]`` (or a bare ``host:port``) -> aiokafka's bootstrap string."""
    servers = url.removeprefix("kafka://").strip("/")
    if not servers or any(":" not in s for s in servers.split(",")):
        raise LogError(f"EVENT_LOG={url!r} is not kafka://host:port; set it like kafka://127.0.0.1:9092")
    return servers


class KafkaTopic:
    """The event topic: its producer, its partitions' logs, keyed publishing, whole-topic reads."""

    def __init__(self, bootstrap: str, topic: str, *, idle_ms: int = IDLE_MS, linger_ms: int = 5) -> None:
        self.bootstrap = bootstrap
        self.name = topic
        self.idle_ms = idle_ms
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            enable_idempotence=False,
            linger_ms=linger_ms,
            max_batch_size=MAX_BATCH_BYTES,
            max_request_size=MAX_BATCH_BYTES + 100_000,
        )
        self.partitions = 0
        self.replication = 1
        self._closed = False

    @classmethod
    async def open(
        cls, url: str, topic: str, *, partitions: int = 1, replication: int = 1, **options: Any
    ) -> KafkaTopic:
        """Connect, create the topic with ``partitions`` if it does not exist, and learn its size."""
        self = cls(bootstrap_of(url), topic, **options)
        self.replication = replication
        try:
            await ensure_topic(self.bootstrap, topic, partitions, replication)
            await self._producer.start()
            known = await self._producer.partitions_for(topic)
        except KafkaError as err:
            await self._producer.stop()
            raise LogError(f"cannot use Kafka at {self.bootstrap}: {err!r}; is the broker running?") from err
        self.partitions = len(known)
        return self

    async def publish(self, events: Sequence[AnyEvent]) -> list[tuple[int, int]]:
        """Append requests keyed by subscription; return each one's (partition, offset).

        Records are grouped per partition (Kafka's default murmur2 partitioner, as any client
        uses) and sent as record batches: much cheaper than one `send` per event.
        """
        self.check_open()
        groups: dict[int, list[tuple[int, bytes | None, bytes]]] = {}
        everything = list(range(self.partitions))
        for i, event in enumerate(events):  # encode all first: a bad event sends nothing
            key = key_of(event)
            groups.setdefault(_partitioner(key, everything, everything), []).append((i, key, encode(event)))
        placed: list[tuple[int, int]] = [(0, 0)] * len(events)

        async def one(partition: int, items: list[tuple[int, bytes | None, bytes]]) -> None:
            offsets = await self.send(partition, [(key, value) for _, key, value in items])
            for (i, _, _), offset in zip(items, offsets, strict=True):
                placed[i] = (partition, offset)

        await asyncio.gather(*(one(p, items) for p, items in groups.items()))
        return placed

    async def send_raw(
        self, topic: str, value: bytes, *, key: bytes | None = None, headers: Sequence[tuple[str, bytes]] = ()
    ) -> None:
        """Write a record as it is (used for the dead-letter topic and by tests)."""
        self.check_open()
        await (await self._producer.send(topic, value, key=key, headers=list(headers)))

    async def send(self, partition: int, records: list[tuple[bytes | None, bytes]]) -> list[int]:
        """Append (key, value) records to one partition, one record batch per ``MAX_BATCH_BYTES``."""
        self.check_open()
        if len(records) == 1:
            key, value = records[0]
            md = await (await self._producer.send(self.name, value, key=key, partition=partition))
            return [md.offset]
        futures, counts = [], []
        batch, count = self._producer.create_batch(), 0
        for key, value in records:
            if batch.append(key=key, value=value, timestamp=None) is None:  # full: send it, start the next
                futures.append(await self._producer.send_batch(batch, self.name, partition=partition))
                counts.append(count)
                batch, count = self._producer.create_batch(), 0
                if batch.append(key=key, value=value, timestamp=None) is None:
                    raise LogError(f"one event is larger than {MAX_BATCH_BYTES} bytes")
            count += 1
        futures.append(await self._producer.send_batch(batch, self.name, partition=partition))
        counts.append(count)
        offsets: list[int] = []
        for md, n in zip(await asyncio.gather(*futures), counts, strict=True):
            offsets.extend(range(md.offset, md.offset + n))
        return offsets

    async def ensure(self, topic: str, *, partitions: int) -> None:
        """Create another topic of ours (the dead-letter topic) unless it exists."""
        await ensure_topic(self.bootstrap, topic, partitions, self.replication)

    async def flush(self) -> None:
        await self._producer.flush()

    def consumer(self, **options: Any) -> AIOKafkaConsumer:
        """A group-less consumer we position by hand (reads never commit offsets)."""
        return AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            group_id=None,
            auto_offset_reset="none",
            fetch_max_wait_ms=20,
            **options,
        )

    async def lower_end(self, partitions: Sequence[int]) -> dict[int, int]:
        """ListOffsets(latest): exact on Kafka, a lower bound on Tansu (see `pipeline/log/kafka_log.py`)."""
        consumer = self.consumer()
        await consumer.start()
        try:
            tps = [TopicPartition(self.name, p) for p in partitions]
            return {tp.partition: end for tp, end in (await consumer.end_offsets(tps)).items()}
        finally:
            await consumer.stop()

    async def read_all(
        self, starts: dict[int, int], *, follow: bool = False, quiet: bool = False
    ) -> AsyncIterator[list[Recorded]]:
        """Records of several partitions from ``starts`` (partition -> offset): to idle, or forever.

        ``quiet`` (when following): also an empty list after each second without records.
        """
        consumer = self.consumer()
        await consumer.start()
        try:
            tps = {p: TopicPartition(self.name, p) for p in starts}
            consumer.assign(list(tps.values()))
            for p, offset in starts.items():
                consumer.seek(tps[p], offset)
            floor = await self.lower_end(list(starts)) if not follow else {}
            async for batch in _fetch(consumer, floor, self.idle_ms, follow=follow, quiet=quiet):
                yield batch
        finally:
            await consumer.stop()

    def check_open(self) -> None:
        if self._closed:
            raise LogClosed("the event log is closed")

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._producer.stop()  # sends what is pending first


async def _fetch(
    consumer: AIOKafkaConsumer, floor: dict[int, int], idle_ms: int, *, follow: bool, quiet: bool = False
) -> AsyncIterator[list[Recorded]]:
    """Fetch until a fetch stays empty while every partition is at or past ``floor`` (or forever)."""
    while True:
        try:
            got = await consumer.getmany(timeout_ms=idle_ms if not follow else 1000, max_records=5000)
        except OffsetOutOfRangeError as err:
            raise LogError(
                f"asked to read past the end of the topic ({err.args[0] if err.args else err}): it was "
                "recreated or truncated since it was last read (Tansu keeps topics in memory only). "
                "Rebuild what was folded from it: `billing replay`"
            ) from err
        records = [Recorded(r.offset, decode(r.value), tp.partition) for tp, rs in got.items() for r in rs]
        if records:
            yield records
            continue
        if follow:
            if quiet:
                yield records
            continue
        positions = {tp.partition: await consumer.position(tp) for tp in consumer.assignment()}
        if all(positions[p] >= end for p, end in floor.items()):
            return


async def ensure_topic(bootstrap: str, topic: str, partitions: int, replication: int = 1) -> None:
    """Create ``topic`` unless it exists."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        if topic in await admin.list_topics():
            return
        with contextlib.suppress(TopicAlreadyExistsError):  # another worker created it meanwhile
            await admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=replication)])
    finally:
        await admin.close()
