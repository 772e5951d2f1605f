"""The Kafka log: the shared contract on a 1-partition topic, and keyed multi-partition publishing."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from pipeline.errors import LogError
from pipeline.log.kafka import KafkaTopic, bootstrap_of, subscription_key
from pipeline.log.kafka_log import KafkaLog
from tests.log_contract import EventLogContract, collect, event, payment_id


def topic_for(path: Path) -> str:
    """One topic per test directory: reopening the same path reopens the same topic."""
    return "t-" + uuid.uuid5(uuid.NAMESPACE_URL, str(path)).hex[:16]


class TestKafkaLog(EventLogContract):
    @pytest.fixture(autouse=True)
    def _broker(self, kafka_url: str) -> None:
        self.url = kafka_url

    async def open_log(self, path: Path) -> KafkaLog:
        return await KafkaLog.open(self.url, topic_for(path))


async def test_each_subscription_stays_in_one_partition_in_publish_order(kafka_url: str, tmp_path: Path) -> None:
    topic = await KafkaTopic.open(kafka_url, topic_for(tmp_path), partitions=4)
    events = [event(i) for i in range(70)]  # 7 parties, one plan: 7 subscriptions
    placed = await topic.publish(events)
    partitions: dict[str, set[int]] = {e.party: set() for e in events}
    for e, (p, _) in zip(events, placed, strict=True):
        partitions[e.party].add(p)
    assert all(len(ps) == 1 for ps in partitions.values())
    assert len({p for p, _ in placed}) > 1, "7 keys over 4 partitions should use more than one"
    seen = [r async for batch in topic.read_all(dict.fromkeys(range(4), 0)) for r in batch]
    assert sorted(payment_id(r) for r in seen) == sorted(e.payment_id for e in events)
    for p in range(4):
        mine = [e.payment_id for e, (q, _) in zip(events, placed, strict=True) if q == p]
        log = KafkaLog(topic, p)
        assert [payment_id(r) async for r in log.read()] == mine  # the publish order, per partition
        assert await collect(log) == list(range(len(mine)))
        assert await log.last_offset() == (len(mine) - 1 if mine else None)
    await topic.close()


async def test_the_end_is_found_past_a_low_list_offsets_answer(kafka_url: str, tmp_path: Path) -> None:
    log = await KafkaLog.open(kafka_url, topic_for(tmp_path))
    await log.append_batch([event(i) for i in range(30)])  # one record batch of 30
    fresh = await KafkaLog.open(kafka_url, topic_for(tmp_path))  # knows nothing of those appends
    assert (await fresh.topic.lower_end([0]))[0] <= 30  # Tansu says 1 here; Kafka says 30
    assert await fresh.last_offset() == 29
    assert await collect(fresh, 28) == [28, 29]
    await fresh.close()
    await log.close()


def test_bad_kafka_urls_say_what_to_write() -> None:
    assert bootstrap_of("kafka://a:9092,b:9092/") == "a:9092,b:9092"
    with pytest.raises(LogError, match="like kafka://"):
        bootstrap_of("kafka://nohost")
    assert subscription_key("alice::1220", "prover") == b"alice::1220|prover"


async def test_follow_an_empty_partition_from_zero(kafka_url: str, tmp_path: Path) -> None:
    log = await KafkaLog.open(kafka_url, topic_for(tmp_path))
    follower = aiter(log.follow(0))
    first = asyncio.ensure_future(anext(follower))
    await log.append(event(0))
    assert (await asyncio.wait_for(first, timeout=10)).offset == 0
    await follower.aclose()  # type: ignore[attr-defined]
    await log.close()
