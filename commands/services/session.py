"""A payment session: request payments and wait for their outcomes, with or without the daemon.

Without a daemon, the command is the log's writer and runs the processor itself until the
payments it asked for are settled. While `billing start` runs, the daemon owns the log:
the command sends its requests to the daemon's local API and follows the log read-only.
Either way the caller sees the same three calls: `book`, `request`, `wait_for`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Protocol

from commands.context import Context
from commands.services.daemon_api import DaemonClient
from commands.services.ledger_guard import check_ledger_known, checked_parties
from commands.settling import Progress, fold_until_final
from pipeline.canton.adapter import CantonAdapter
from pipeline.canton.port import CantonPort
from pipeline.errors import StoreBusy
from pipeline.events import PaymentRequested, Recorded
from pipeline.log.embedded import EmbeddedLog
from pipeline.log.port import EventLog
from pipeline.processor.book import PaymentBook
from pipeline.processor.retry import RetryPolicy
from pipeline.processor.runner import Processor

CantonFactory = Callable[[], AbstractAsyncContextManager[CantonPort]]


class Session(Protocol):
    book: PaymentBook

    async def request(self, requests: list[PaymentRequested]) -> None: ...

    async def wait_for(self, payment_ids: Collection[str], progress: Progress | None = None) -> None: ...


def processor_for(ctx: Context, log: EventLog, canton: CantonPort) -> Processor:
    s = ctx.settings
    policy = RetryPolicy(
        max_attempts=s.max_payment_retries,
        base_delay=float(s.payment_retry_interval),
        horizon=float(s.retry_horizon_secs),
    )
    return Processor(
        log,
        canton,
        clock=ctx.clock,
        policy=policy,
        max_in_flight=s.max_in_flight,
        rate_limit=s.payment_rate_limit,
        dedup_seconds=s.deduplication_secs,
    )


class LocalSession:
    """This process is the writer: it appends and processes."""

    def __init__(self, processor: Processor) -> None:
        self.processor = processor
        self.book = processor.book

    async def request(self, requests: list[PaymentRequested]) -> None:
        if requests:
            await self.processor.log.append_batch(requests)

    async def wait_for(self, payment_ids: Collection[str], progress: Progress | None = None) -> None:
        await self.processor.run(payment_ids, progress)


class DaemonSession:
    """`billing start` owns the log: send requests to it, follow the log to see outcomes."""

    def __init__(self, log: EmbeddedLog, client: DaemonClient) -> None:
        self.log = log
        self.client = client
        self.book = PaymentBook()
        self.position = 0

    async def load(self) -> None:
        last = await self.log.last_offset()
        if last is not None:
            async for batch in self.log.read_batches(0, stop=last + 1):
                self._fold(batch)
            self.position = last + 1

    async def request(self, requests: list[PaymentRequested]) -> None:
        if requests:
            await self.client.submit(requests)

    async def wait_for(self, payment_ids: Collection[str], progress: Progress | None = None) -> None:
        await fold_until_final(self.book, payment_ids, self._followed, self._fold, progress)

    async def _followed(self) -> AsyncIterator[list[Recorded]]:
        async for record in self.log.follow(self.position):
            yield [record]

    def _fold(self, batch: list[Recorded]) -> None:
        for record in batch:
            self.book.apply(record)
            self.position = record.offset + 1


@asynccontextmanager
async def open_session(ctx: Context, canton: CantonFactory, *, charging: bool = True) -> AsyncIterator[Session]:
    """The writer session when no daemon runs, else one that goes through the daemon.

    On the Kafka backend, requests go to the topic and `billing start` workers charge them.
    A writer session that may charge (``charging``) first checks that the ledger shows no
    charge its log does not hold (`commands/services/ledger_guard.py`); the daemon checked at its start.
    """
    if ctx.settings.kafka:
        from commands.kafka.session import kafka_session  # aiokafka and faust load only when used

        async with kafka_session(ctx) as kafka:
            yield kafka
        return
    announce_new_state(ctx)
    try:
        log = EmbeddedLog.open(ctx.settings.log_dir, sync=ctx.settings.log_fsync)
    except StoreBusy:
        async with _daemon_session(ctx) as session:
            yield session
        return
    try:
        async with canton() as port:
            processor = processor_for(ctx, log, port)
            await processor.load()
            if charging:
                await check_ledger(ctx, processor.book, port)
            yield LocalSession(processor)
    finally:
        await log.close()


def announce_new_state(ctx: Context) -> None:
    """Say so when this run starts a state folder: a lost or mislaid one shows up here first."""
    if (missing := ctx.missing_state()) is not None:
        ctx.console.note(f"{missing}: starting a new one")


async def check_ledger(ctx: Context, book: PaymentBook, port: CantonPort) -> None:
    """Refuse to charge when the ledger shows charges this state folder does not hold."""
    assert isinstance(port, CantonAdapter), "billing checks the ledger through the real adapter"
    parties = await checked_parties(port, (u.party for u in ctx.catalogue.users))
    await check_ledger_known(port.ledger, book, parties, Path(ctx.settings.rocksdb_path))


@asynccontextmanager
async def _daemon_session(ctx: Context) -> AsyncIterator[DaemonSession]:
    ctx.console.note("billing start is running: sending requests to it")
    log = EmbeddedLog.open(ctx.settings.log_dir, follow=True)
    async with DaemonClient.connect(ctx.settings) as client:
        session = DaemonSession(log, client)
        try:
            await session.load()
            yield session
        finally:
            await log.close()
