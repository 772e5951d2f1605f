"""The records `billing tail` reads on the Kafka backend: every partition of the topic."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from commands.context import Context
from pipeline.events import Recorded


@asynccontextmanager
async def topic_records(ctx: Context, *, follow: bool) -> AsyncIterator[AsyncIterator[Recorded]]:
    """Every partition of the Kafka topic from its start, each in its order (partitions interleave
    as they are fetched); with ``follow``, new records as they arrive."""
    from commands.kafka.session import open_topic  # aiokafka loads only on the Kafka backend

    topic = await open_topic(ctx)

    async def records() -> AsyncIterator[Recorded]:
        async for batch in topic.read_all(dict.fromkeys(range(topic.partitions), 0), follow=follow):
            for record in batch:
                yield record

    try:
        yield records()
    finally:
        await topic.close()
