"""The faust worker: agents hand each partition's records to its runner; bad records go to the dead-letter topic."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pipeline.events import Recorded, Unreadable
from pipeline.log.agent_feed import Assignment
from pipeline.log.faust_app import WorkerSettings, make_app, run
from pipeline.log.kafka import KafkaTopic
from pipeline.log.port import EventLog
from pipeline.tasks import cancel_and_wait
from tests.log_contract import event
from tests.test_kafka_log import topic_for


async def test_agents_feed_runners_and_dead_letter_bad_records(kafka_url: str, tmp_path: Path) -> None:
    name = topic_for(tmp_path)
    topic = await KafkaTopic.open(kafka_url, name, partitions=2)
    await topic.publish([event(i) for i in range(20)])
    await topic.send_raw(name, b"\x93not an event", key=b"x")
    await topic.send_raw(name, b'{"v":1,"event":{"type":"payment.refunded"}}', key=b"y")
    seen: dict[int, list[Recorded]] = {0: [], 1: []}
    done = asyncio.Event()

    async def runner(partition: int, log: EventLog) -> None:
        async for record in log.follow(0):
            seen[partition].append(record)
            if sum(map(len, seen.values())) == 22:
                done.set()

    assignment = Assignment(topic, {"collect": runner})
    settings = WorkerSettings(
        broker=kafka_url,
        topic=name,
        dead_letter_topic=name + ".dlt",
        group=name,
        partitions=2,
        session_timeout=2.0,
        datadir=str(tmp_path / "faust"),
    )
    app = make_app(settings, assignment)
    stop = asyncio.Event()
    worker = asyncio.create_task(run(app, settings, assignment, stop))
    await asyncio.wait_for(done.wait(), timeout=60)
    for partition, records in seen.items():
        assert [r.offset for r in records] == list(range(len(records)))
        assert all(r.partition == partition for r in records)
    bad = [r.event for rs in seen.values() for r in rs if isinstance(r.event, Unreadable)]
    assert len(bad) == 2
    dead = await KafkaTopic.open(kafka_url, name + ".dlt")
    letters: list[Recorded] = []
    for _ in range(50):
        letters = [r async for batch in dead.read_all({0: 0}) for r in batch]
        if len(letters) >= 2:
            break
        await asyncio.sleep(0.1)
    assert {r.event.raw for r in letters if isinstance(r.event, Unreadable)} == {e.raw for e in bad}
    stop.set()
    await asyncio.wait_for(worker, timeout=30)
    await dead.close()
    await topic.close()


async def test_a_runner_that_swallows_its_cancel_is_cancelled_again_so_a_revoke_ends() -> None:
    """aiokafka's consumer can swallow a cancellation; a revoke must not wait for ever on that runner."""
    cancels = []

    async def stubborn() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancels.append("swallowed")  # what a library deep in the runner does
        await asyncio.sleep(60)  # ...and the runner goes on

    task = asyncio.create_task(stubborn(), name="projections-3")
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait([task], grace=0.05), timeout=5)
    assert task.cancelled() and cancels == ["swallowed"]
