"""`billing start` on the Kafka backend: a faust worker plus the scheduler.

Each worker runs, for every partition the consumer group gives it, the same `Processor`
and the same window projection (`projections/windows.py`, folded by `projections.replay`)
as the embedded daemon, over that partition's log. The processor is fed by a faust agent;
the projection reads its partition in batches itself (faust's one-record-at-a-time hand-over
is far slower for a fold; benchmarks/RESULTS.md has the figures). Projection state lives in
``<ROCKSDB_PATH>/projections/p<NNN>`` with the partition offset it reflects, in one batch.
Charging stays exactly-once across rebalances because a revoked partition's processor is
stopped (and its appends flushed) before another worker may take it, and because the
ledger commandId derives from the payment id: a payment taken over in doubt is looked up in
the ledger before anything is submitted again.

The scheduler of every worker publishes the due periods of all subscriptions; several
workers publishing the same period is harmless (same payment id, folded once).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TypeVar

from commands.context import Context
from commands.kafka.session import TopicBook, open_topic, worker_settings
from commands.settling import open_payments
from pipeline.canton.port import CantonPort
from pipeline.events import PaymentRequested
from pipeline.log.agent_feed import Assignment, Runner
from pipeline.log.faust_app import make_app, run
from pipeline.log.kafka import KafkaTopic
from pipeline.log.port import EventLog
from pipeline.processor.book import PaymentBook
from pipeline.processor.runner import Processor
from projections.replay import keep_partition

logger = logging.getLogger(__name__)

Due = Callable[[PaymentBook, bool], list[PaymentRequested]]
Canton = TypeVar("Canton", bound=CantonPort)
ProcessorFor = Callable[[EventLog, CantonPort], Processor]


def runners(ctx: Context, canton: CantonPort, processor_for: ProcessorFor) -> dict[str, Runner]:
    """What runs on each partition we own: the processor and the window projection."""

    async def processor(partition: int, log: EventLog) -> None:
        await processor_for(log, canton).run()

    async def projections(partition: int, log: EventLog) -> None:
        await keep_partition(log, ctx.settings.projections_dir / f"p{partition:03d}")

    return {"processor": processor, "projections": projections}


async def run_worker(
    ctx: Context,
    due: Due,
    canton_factory: Callable[[], AbstractAsyncContextManager[Canton]],
    processor_for: ProcessorFor,
    *,
    interval: float,
    once: bool,
    dry_run: bool,
    stop: asyncio.Event,
    greet: Callable[[Canton], Awaitable[None]] | None = None,
) -> int:
    """Run the worker (and the scheduler) until ``stop``; with ``once``, until the first pass settles.

    ``canton_factory``, ``processor_for`` and ``greet`` are the daemon's: the same clients, processor
    settings and start-up report (the parties that cannot be charged, a preapproval near expiry).
    """
    topic = await open_topic(ctx)
    try:
        async with canton_factory() as canton:
            if greet is not None:
                await greet(canton)
            assignment = Assignment(topic, runners(ctx, canton, processor_for), direct={"projections"})
            settings = worker_settings(ctx)
            worker = asyncio.create_task(run(make_app(settings, assignment), settings, assignment, stop))
            scheduler = asyncio.create_task(_schedule(topic, due, interval, once=once, dry_run=dry_run))
            alive = asyncio.create_task(_heartbeat(Path(ctx.settings.rocksdb_path) / f"alive-{socket.gethostname()}"))
            await asyncio.wait([worker, scheduler], return_when=asyncio.FIRST_COMPLETED)
            stop.set()  # the scheduler finished its one pass, or the worker stopped
            for task in (scheduler, alive):
                task.cancel()
            await asyncio.gather(scheduler, alive, return_exceptions=True)
            await worker  # raises what stopped a runner
    finally:
        await topic.close()
    logger.info("worker stopped")
    return 0


async def _heartbeat(path: Path, seconds: float = 5.0) -> None:
    """Touch ``path`` while this worker runs (the container healthcheck reads its age)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        path.touch()
        await asyncio.sleep(seconds)


async def _schedule(topic: KafkaTopic, due: Due, interval: float, *, once: bool, dry_run: bool) -> None:
    topics = TopicBook(topic)
    await topics.load()
    follower = asyncio.create_task(topics.follow())
    recover = True
    try:
        while True:
            requests = due(topics.book, recover)
            if requests and not dry_run:
                await topic.publish(requests)
            if once:
                follower.cancel()
                ids = {r.payment_id for r in requests} | set(open_payments(topics.book))
                await topics.follow(ids if not dry_run else ())
                logger.info("pass settled", extra={"requested": len(requests), "settled": len(ids)})
                return
            recover = False
            await asyncio.sleep(interval)
    finally:
        follower.cancel()
