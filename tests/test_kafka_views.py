"""The whole Kafka topic seen as one log: `metrics`, `replay` and `tail` on the Kafka backend.

A user with two plans has events in two partitions (the topic is keyed by subscription), so
the whole-topic view must count that user once, and equal one projection of the same events
on the embedded log. It resumes from the partition offsets it committed.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import LogError
from pipeline.events import AnyEvent, PaymentConfirmed, PaymentFailed, PaymentRequested, Period
from pipeline.log.embedded import EmbeddedLog
from pipeline.log.kafka import KafkaTopic
from pipeline.log.kafka_log import KafkaLog
from pipeline.log.store import Store
from projections.replay import catch_up, open_projection
from projections.telemetry import gauge_name
from projections.topic_view import TopicView
from projections.windows import WINDOWS, WindowProjection
from tests.otlp_receiver import Receiver
from tests.processes import BILLING, billing, clean_env, stop_process, write_catalogue
from tests.test_windows import NOW, PLANS, USERS, snapshot

PARTITIONS = 4


def payments(now: datetime, n: int, first: int = 0) -> list[list[AnyEvent]]:
    """Per payment: its request, then its outcome (every 4th fails for good); users on both plans."""
    out: list[list[AnyEvent]] = []
    for i in range(first, first + n):
        party, plan, at = USERS[i % 3], PLANS[(i // 3) % 2], now - timedelta(minutes=7 + 97 * i)
        request = PaymentRequested(
            payment_id=f"p{i}",
            at=at,
            party=party,
            user_id=party,
            plan=plan,
            period=Period(index=i, start=at, end=at + timedelta(minutes=5)),
            amount=Decimal("1.25"),
            receiver="app::1",
            description="d",
        )
        common: dict[str, Any] = {
            "payment_id": f"p{i}",
            "at": at + timedelta(seconds=3),
            "party": party,
            "plan": plan,
            "amount": Decimal("1.25"),
        }
        outcome = (
            PaymentFailed(**common, attempt=1, code="INSUFFICIENT_FUNDS", message="m", retryable=False, final=True)
            if i % 4 == 3
            else PaymentConfirmed(**common, update_id=f"u{i}")
        )
        out.append([request, outcome])
    out[1].append(out[1][1])  # a second worker recorded the same confirmation: counted once
    return out


async def publish(topic: KafkaTopic, flows: list[list[AnyEvent]]) -> None:
    """Each request keyed by subscription, its outcomes appended to the partition it landed in (as workers do)."""
    placed = await topic.publish([flow[0] for flow in flows])
    for (partition, _), flow in zip(placed, flows, strict=True):
        await KafkaLog(topic, partition).append_batch(flow[1:])


async def embedded_reference(path: Path, flows: list[list[AnyEvent]]) -> WindowProjection:
    log = EmbeddedLog.open(path / "log", sync=False)
    await log.append_batch([e for flow in flows for e in flow])
    projection = open_projection(path / "projection")
    await catch_up(log, projection)
    await log.close()
    return projection


def rows(projection: WindowProjection) -> list[tuple[bytes, bytes]]:
    """The window rows (not positions: the view numbers records in the order it fetched them)."""
    return [(k, v) for k, v in projection.store.scan() if not k.startswith(b"\x00")]


async def test_the_topic_view_equals_one_embedded_projection_and_resumes_from_its_offsets(
    kafka_url: str, tmp_path: Path
) -> None:
    topic = await KafkaTopic.open(kafka_url, "view-" + uuid.uuid4().hex[:8], partitions=PARTITIONS)
    first, later = payments(NOW, 40), payments(NOW, 12, first=40)
    await publish(topic, first)
    view = TopicView(topic, open_projection(tmp_path / "view"))
    assert await view.catch_up() == sum(map(len, first))
    assert len({p for p, offset in view.offsets.items() if offset}) > 1  # it did read several partitions
    reference = await embedded_reference(tmp_path / "ref1", first)
    assert snapshot(view.projection) == snapshot(reference) and rows(view.projection) == rows(reference)
    month = view.projection.metrics("30d", NOW)
    assert month.active_users == len(USERS) and month.active_subscriptions == len(USERS) * len(PLANS)
    assert month.success_count == 30 and month.total_amount == Decimal("37.50")  # p1 confirmed twice: once
    view.projection.store.close()

    await publish(topic, later)
    view = TopicView(topic, open_projection(tmp_path / "view"))  # a restart: offsets from the store
    assert await view.catch_up() == sum(map(len, later))  # only what is new
    both = await embedded_reference(tmp_path / "ref2", first + later)
    assert snapshot(view.projection) == snapshot(both) and rows(view.projection) == rows(both)
    for p in (view.projection, reference, both):
        p.store.close()
    await topic.close()


async def test_following_the_topic_folds_new_records_and_commits_when_it_goes_quiet(
    kafka_url: str, tmp_path: Path
) -> None:
    topic = await KafkaTopic.open(kafka_url, "view-" + uuid.uuid4().hex[:8], partitions=PARTITIONS)
    view = TopicView(topic, open_projection(tmp_path / "view"))
    seen: list[int] = []
    follower = asyncio.create_task(view.follow(lambda record: seen.append(record.partition)))
    flows = payments(NOW, 10)
    await publish(topic, flows)
    committed = Store.open(tmp_path / "view", mode="follow")  # what another process would read
    for _ in range(200):  # bounded: 20 s
        committed.catch_up()
        if committed.get(b"\x00pos") == sum(map(len, flows)).to_bytes(8, "big"):
            break
        await asyncio.sleep(0.1)
    committed.close()
    assert view.projection.pending == 0  # committed on its own once the topic went quiet
    follower.cancel()
    await asyncio.gather(follower, return_exceptions=True)
    assert len(seen) == sum(map(len, flows))  # every record observed once (the OTel counters)
    assert view.projection.metrics("30d", NOW).payment_count == 10
    view.projection.store.close()
    await topic.close()


def test_metrics_replay_and_tail_on_the_kafka_backend_see_the_whole_topic(kafka_url: str, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    name = "cli-" + uuid.uuid4().hex[:8]

    async def setup() -> list[dict[str, Any]]:
        topic = await KafkaTopic.open(kafka_url, name, partitions=PARTITIONS)
        flows = payments(now, 20)
        await publish(topic, flows)
        await topic.close()
        reference = await embedded_reference(tmp_path / "ref", flows)
        expected = [reference.metrics(w, now) for w in WINDOWS]
        reference.store.close()
        return [
            {"window": m.window, "payment_count": m.payment_count, "active_users": m.active_users} for m in expected
        ]

    expected = asyncio.run(setup())
    env = {
        "BILLING_DATA_DIR": str(write_catalogue(tmp_path / "data", users=3)),
        "ROCKSDB_PATH": str(tmp_path / "s"),
        "EVENT_LOG": kafka_url,
        "KAFKA_TOPIC": name,
        "KAFKA_PARTITIONS": str(PARTITIONS),
        "LOG_LEVEL": "warn",
    }

    def shown() -> list[dict[str, Any]]:
        result = billing("metrics", "--json", env=env)
        assert result.returncode == 0, result.stderr
        return [{k: m[k] for k in ("window", "payment_count", "active_users")} for m in json.loads(result.stdout)]

    assert shown() == expected
    assert expected[-1]["payment_count"] == 20 and expected[-1]["active_users"] == 3
    replayed = billing("replay", env=env)
    assert replayed.returncode == 0 and "replayed 41 events from 4 partitions" in replayed.stdout, replayed.stderr
    assert shown() == expected

    tail = billing("tail", "--json", env=env)
    assert tail.returncode == 0, tail.stderr
    lines = [json.loads(line) for line in tail.stdout.splitlines()]
    assert len(lines) == 41 and len({line["partition"] for line in lines}) > 1
    assert sum(line["type"] == "payment.confirmed" for line in lines) == 16  # the duplicate is in the audit trail
    refused = billing("tail", "--from", "3", env=env)
    assert refused.returncode == 2 and "use --since" in refused.stderr
    web = billing("dashboard", env=env)  # it serves the embedded log: it says where the topic is shown instead
    assert web.returncode == 1 and "`billing metrics`" in web.stderr and "Traceback" not in web.stderr


def test_billing_monitor_on_kafka_exports_the_whole_topic_and_says_it_is_alive(kafka_url: str, tmp_path: Path) -> None:
    name = "mon-" + uuid.uuid4().hex[:8]
    state = tmp_path / "s"
    with Receiver() as rx:
        env = clean_env(
            BILLING_DATA_DIR=str(write_catalogue(tmp_path / "data", users=3)),
            ROCKSDB_PATH=str(state),
            EVENT_LOG=kafka_url,
            KAFKA_TOPIC=name,
            KAFKA_PARTITIONS=str(PARTITIONS),
            LOG_LEVEL="warn",
            OTEL_EXPORTER_OTLP_ENDPOINT=rx.url,
            OTEL_EXPORT_INTERVAL_SECS="1",
        )
        output = tmp_path / "monitor.log"
        with output.open("wb") as out:
            monitor = subprocess.Popen([BILLING, "monitor"], env=env, stdout=out, stderr=subprocess.STDOUT)

        def said() -> str:
            return output.read_text()[-3000:]

        try:
            deadline = time.monotonic() + 60
            while not list(state.glob("alive-monitor-*")):  # it has caught up and follows the topic
                assert monitor.poll() is None and time.monotonic() < deadline, said()
                time.sleep(0.1)

            async def later() -> None:  # published while the monitor runs: it follows every partition
                topic = await KafkaTopic.open(kafka_url, name, partitions=PARTITIONS)
                await publish(topic, payments(datetime.now(UTC), 20))
                await topic.close()

            asyncio.run(later())
            overall = (("scope", "overall"), ("subscription", "all"), ("window", "30d"))
            key, count = (gauge_name("30d", "active_users"), overall), (gauge_name("30d", "payment_count"), overall)
            confirmed = [("canton.billing.payment.confirmed", (("subscription", plan),)) for plan in PLANS]

            def exported() -> tuple[float | None, float | None, float]:
                gauges, sums = rx.gauge_points(), rx.sums()
                return gauges.get(key), gauges.get(count), sum(sums.get(c, 0) for c in confirmed)

            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and exported() != (3, 20, 15):
                assert monitor.poll() is None, said()
                time.sleep(0.2)
            # three users, each in two partitions (two plans); 15 confirmations counted, p1's twin not
            assert exported() == (3, 20, 15), said()
        finally:
            stop_process(monitor, signal.SIGINT, timeout=30)


async def test_a_view_ahead_of_a_recreated_topic_says_to_replay(kafka_url: str, tmp_path: Path) -> None:
    old = await KafkaTopic.open(kafka_url, "view-" + uuid.uuid4().hex[:8], partitions=PARTITIONS)
    await publish(old, payments(NOW, 8))
    view = TopicView(old, open_projection(tmp_path / "view"))
    await view.catch_up()
    view.projection.store.close()
    await old.close()
    recreated = await KafkaTopic.open(kafka_url, "view-" + uuid.uuid4().hex[:8], partitions=PARTITIONS)  # empty
    view = TopicView(recreated, open_projection(tmp_path / "view"))
    with pytest.raises(LogError, match=r"end before what this view folded.*recreated.*`billing replay`"):
        await view.catch_up()
    view.projection.store.close()
    await recreated.close()
