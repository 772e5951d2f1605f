"""The faust worker of the Kafka backend (the only module importing faust).

`make_app(settings, assignment)` builds an app with one agent per role (processor,
projections) on the event topic. Topics carry raw bytes; our msgspec codec decodes them
(`pipeline.events.decode`: msgpack or JSON envelopes). No autodiscover, no
`current_event()`, no tables: state lives in our RocksDB stores, written with the position
it reflects in one batch, so faust's at-least-once redelivery changes nothing. faust's
exactly-once mode is not used (it needs transactions; ours is idempotency by payment id).

The agents stay thin: they decode, copy an undecodable record to the dead-letter topic
with its reason (the stream goes on), and hand every record to the runner of its partition.
Partition assignment comes from faust's consumer group; `Assignment` starts and stops the
runners. The web server is off (and bound to loopback were it ever turned on).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faust
import msgspec

from pipeline.events import Recorded, Unreadable, decode
from pipeline.log.agent_feed import Assignment


class WorkerSettings(msgspec.Struct, frozen=True, kw_only=True):
    """What the worker needs to know; built by the command layer from its settings."""

    broker: str  # kafka://host:port[,host:port]
    topic: str = "billing.events"
    dead_letter_topic: str = "billing.events.dead-letter"
    group: str = "canton-billing"
    partitions: int = 12
    replication: int = 1
    session_timeout: float = 10.0
    datadir: str = "./billing_db/faust"


def make_app(settings: WorkerSettings, assignment: Assignment) -> faust.App:
    app = faust.App(
        settings.group,
        broker=settings.broker,
        autodiscover=False,
        store="memory://",
        processing_guarantee="at_least_once",
        web_enabled=False,
        web_bind="127.0.0.1",
        web_host="127.0.0.1",
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication,
        broker_session_timeout=settings.session_timeout,
        broker_rebalance_timeout=settings.session_timeout,
        broker_heartbeat_interval=max(settings.session_timeout / 10, 0.1),
        consumer_auto_offset_reset="earliest",
        datadir=settings.datadir,
        producer_acks=-1,
    )
    raw: dict[str, Any] = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
    events = app.topic(settings.topic, partitions=settings.partitions, **raw)
    # Without any fed role an "intake" agent still subscribes the group to the topic (that is
    # what gives this worker partitions) and writes the dead letters.
    for i, role in enumerate(assignment.fed_roles or ["intake"]):
        # Only the first agent writes dead letters: one copy per bad record, not one per role.
        dead = settings.dead_letter_topic if i == 0 else None
        app.agent(events, name=f"{settings.group}.{role}")(_agent(role, assignment, dead))

    # mode calls a handler with the sender, what faust sent (the partitions) and the signal.
    async def on_assigned(sender: Any, /, *sent: Any, signal: Any, **_: Any) -> None:
        (assigned,) = sent
        assignment.assign(sorted(tp.partition for tp in assigned if tp.topic == settings.topic))

    async def on_revoked(sender: Any, /, *sent: Any, signal: Any, **_: Any) -> None:
        (revoked,) = sent
        await assignment.revoke(tp.partition for tp in revoked if tp.topic == settings.topic)

    app.on_partitions_assigned.connect(on_assigned)
    app.on_partitions_revoked.connect(on_revoked)
    return app


def _agent(role: str, assignment: Assignment, dead: str | None) -> Callable[[Any], Any]:
    async def agent(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            record = Recorded(message.offset, decode(message.value or b""), message.partition)
            if dead is not None and isinstance(record.event, Unreadable):
                source = f"{message.topic}/{message.partition}/{message.offset}"
                headers = [("reason", record.event.reason.encode()[:1000]), ("source", source.encode())]
                await assignment.topic.send_raw(dead, message.value or b"", key=message.key, headers=headers)
            await assignment.deliver(role, record)

    return agent


async def run(app: faust.App, settings: WorkerSettings, assignment: Assignment, stop: asyncio.Event) -> None:
    """Run the worker until ``stop`` is set; a runner that dies stops it too (and is raised)."""
    await assignment.topic.ensure(settings.dead_letter_topic, partitions=1)
    Path(settings.datadir).mkdir(parents=True, exist_ok=True)
    await app.start()
    stopper = asyncio.create_task(stop.wait())
    either: list[asyncio.Future[Any]] = [stopper, assignment.crashed]
    try:
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        await assignment.stop()
        await app.stop()
    if assignment.crashed.done():
        raise assignment.crashed.result()
