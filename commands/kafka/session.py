"""Commands on the Kafka backend: publish `PaymentRequested` to the topic, watch outcomes.

With ``EVENT_LOG=kafka://…`` the workers (`billing start`) own processing; `pay`, `pay-all`
and `restart` publish their requests keyed by subscription and follow every partition of
the topic until the outcomes they wait for are recorded. `TopicBook` is that whole-topic
view (one `PaymentBook` over every partition: each payment lives in one partition, so the
book's per-payment offsets stay meaningful).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager

from commands.context import Context
from commands.settling import Progress, fold_until_final
from pipeline.events import PaymentRequested, Recorded
from pipeline.log.faust_app import WorkerSettings
from pipeline.log.kafka import KafkaTopic
from pipeline.processor.book import PaymentBook


def worker_settings(ctx: Context) -> WorkerSettings:
    s = ctx.settings
    return WorkerSettings(
        broker=s.event_log,
        topic=s.kafka_topic,
        dead_letter_topic=f"{s.kafka_topic}.dead-letter",
        group=s.kafka_group,
        partitions=s.kafka_partitions,
        replication=s.kafka_replication,
        session_timeout=s.kafka_session_timeout_secs,
        datadir=str(s.rocksdb_path) + "/faust",
    )


async def open_topic(ctx: Context) -> KafkaTopic:
    s = ctx.settings
    return await KafkaTopic.open(
        s.event_log, s.kafka_topic, partitions=s.kafka_partitions, replication=s.kafka_replication
    )


class TopicBook:
    """Every partition of the topic folded into one `PaymentBook`, with a position per partition."""

    def __init__(self, topic: KafkaTopic) -> None:
        self.topic = topic
        self.book = PaymentBook()
        self.positions = dict.fromkeys(range(topic.partitions), 0)

    async def load(self) -> None:
        """Fold everything recorded so far (up to the end each partition has now)."""
        async for batch in self.topic.read_all(dict(self.positions)):
            self._apply(batch)

    async def follow(self, until: Collection[str] | None = None, progress: Progress | None = None) -> None:
        """Fold new records; return once every payment in ``until`` is final (never, without it)."""
        if until is not None:
            await fold_until_final(self.book, until, self._new_batches, self._apply, progress)
            return
        async for batch in self._new_batches():
            self._apply(batch)

    def _new_batches(self) -> AsyncIterator[list[Recorded]]:
        return self.topic.read_all(dict(self.positions), follow=True)

    def _apply(self, batch: list[Recorded]) -> None:
        for record in batch:
            self.book.apply(record)
            self.positions[record.partition] = record.offset + 1


class KafkaSession:
    """`Session` on Kafka: requests go to the topic, the workers charge them."""

    def __init__(self, topics: TopicBook) -> None:
        self.topics = topics
        self.book = topics.book

    async def request(self, requests: list[PaymentRequested]) -> None:
        if requests:
            await self.topics.topic.publish(requests)

    async def wait_for(self, payment_ids: Collection[str], progress: Progress | None = None) -> None:
        await self.topics.follow(payment_ids, progress)


@asynccontextmanager
async def kafka_session(ctx: Context) -> AsyncIterator[KafkaSession]:
    topic = await open_topic(ctx)
    try:
        topics = TopicBook(topic)
        await topics.load()
        ctx.console.note(f"Kafka backend: requests go to topic {topic.name}; `billing start` workers charge them")
        yield KafkaSession(topics)
    finally:
        await topic.close()
