"""`billing start`: the daemon. Scheduler, processor, projections, local API, in one process.

At start-up it requests the periods missed while it was down (capped), then every
``CHECK_INTERVAL_SECS`` the current period of every active subscription, once each.
The catalogue files are re-read on every tick; a broken edit is reported and the last
good catalogue stays in force, so a typo never stops billing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import functools
import gc
import logging
import signal
import socket
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from commands.catalogue import Catalogue, load
from commands.context import Context
from commands.daemon.alerts import FailureWatch, watch_failures
from commands.daemon.local_api import make_app
from commands.dashboard.server import announce, in_daemon
from commands.errors import CatalogueError
from commands.services.daemon_api import api_token
from commands.services.events_view import Periods, audit_row
from commands.services.hosting_report import report_hosting
from commands.services.metrics import retention_of
from commands.services.preapproval_setup import warn_if_expiring
from commands.services.runtime import canton_factory
from commands.services.schedule import missed_requests, tick_requests
from commands.services.session import announce_new_state, check_ledger, processor_for
from commands.services.telemetry_export import start_telemetry
from commands.settling import open_payments
from pipeline.asgi_server import serve
from pipeline.canton.adapter import CantonAdapter
from pipeline.events import PaymentRequested
from pipeline.log.embedded import EmbeddedLog
from pipeline.processor.book import PaymentBook
from pipeline.processor.runner import Processor
from pipeline.tasks import cancel_and_wait
from projections.replay import catch_up, follow, open_projection

log = logging.getLogger(__name__)


class Daemon:
    def __init__(self, ctx: Context, args: argparse.Namespace, sock: socket.socket | None = None) -> None:
        self.ctx = ctx
        self.sock = sock  # the local API's listening socket (`claim_port`), None when it serves none
        self.once = args.once
        self.dry_run = args.dry_run
        self.interval = args.interval or ctx.settings.check_interval_secs
        self.catalogue: Catalogue = ctx.catalogue
        self._since: datetime | None = None  # the Kafka scheduler's previous tick

    async def run(self) -> int:
        settings = self.ctx.settings
        if settings.kafka:
            from commands.kafka.worker import run_worker  # faust and aiokafka load only when used

            stop = asyncio.Event()
            _on_signals(stop.set)
            processors = functools.partial(processor_for, self.ctx)
            return await run_worker(
                self.ctx,
                self._due_in,
                canton_factory(self.ctx),
                processors,
                interval=self.interval,
                once=self.once,
                dry_run=self.dry_run,
                stop=stop,
                greet=self._greet,
            )
        announce_new_state(self.ctx)
        event_log = EmbeddedLog.open(settings.log_dir, sync=settings.log_fsync)
        stop = asyncio.Event()
        _on_signals(stop.set)
        try:
            async with canton_factory(self.ctx)() as canton:
                processor = processor_for(self.ctx, event_log, canton)
                await processor.load()
                await self._greet(canton)
                if not self.dry_run:
                    await check_ledger(self.ctx, processor.book, canton)
                if self.once:
                    return await self._once(processor)
                return await self._forever(processor, event_log, stop)
        finally:
            await event_log.close()

    async def _greet(self, canton: CantonAdapter) -> None:
        """What an operator should know before charging: one line per subscriber that cannot be
        charged, and a warning when the app's preapproval nears its expiry."""
        await report_hosting(self.ctx, canton)
        await warn_if_expiring(self.ctx, canton)

    async def _once(self, processor: Processor) -> int:
        requests = self._due(processor.book, recover=True)
        if not self.dry_run:
            await processor.log.append_batch(requests)
        ids = {r.payment_id for r in requests} | set(open_payments(processor.book))
        await processor.run(ids)
        log.info("pass settled", extra={"requested": len(requests), "settled": len(ids)})
        return 0

    async def _forever(self, processor: Processor, event_log: EmbeddedLog, stop: asyncio.Event) -> int:
        token = api_token(Path(self.ctx.settings.rocksdb_path), self.ctx.settings.api_token)
        api = make_app(event_log, token, event_log.append_batch, functools.partial(audit_row, periods=Periods()))
        projection = open_projection(self.ctx.settings.projections_dir, retention_of(self.ctx))
        await catch_up(event_log, projection)
        _return_free_memory()
        app, sessions = in_daemon(self.ctx, api, event_log, projection, lambda: self.catalogue)
        announce(self.ctx, self.ctx.settings.api_port, sessions)
        exporter = start_telemetry(self.ctx, projection)
        tasks = await self._alerts(event_log)
        tasks += [
            asyncio.create_task(processor.run(), name="processor"),
            asyncio.create_task(
                follow(event_log, projection, observe=exporter.observe if exporter else None), name="projections"
            ),
            asyncio.create_task(self._schedule(processor), name="scheduler"),
            asyncio.create_task(serve(app, "127.0.0.1", self.ctx.settings.api_port, sock=self.sock), name="api"),
        ]
        waiter = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([*tasks, waiter], return_when=asyncio.FIRST_COMPLETED)
        await cancel_and_wait([*tasks, waiter])
        failed = [t for t in done if t is not waiter and not t.cancelled() and t.exception()]
        for task in failed:
            log.error("daemon part stopped", extra={"part": task.get_name(), "error": repr(task.exception())})
        if exporter is not None:
            exporter.shutdown()  # flushes the last values
        projection.store.close()
        log.info("daemon stopped")
        error = failed[0].exception() if failed else None
        if error is not None:  # the CLI makes it one line and an exit code (the log closes on the way)
            raise error
        return 0

    async def _alerts(self, event_log: EmbeddedLog) -> list[asyncio.Task[Any]]:
        s = self.ctx.settings
        if not s.failure_alert_threshold:
            return []
        watch = FailureWatch(s.failure_alert_threshold, timedelta(seconds=s.failure_alert_window_secs))
        last = await event_log.last_offset()
        start = 0 if last is None else last + 1  # new failures only: a restart does not re-alert
        return [asyncio.create_task(watch_failures(event_log, watch, start), name="alerts")]

    async def _schedule(self, processor: Processor) -> None:
        recover, since = True, None
        while True:
            self._reload_catalogue()
            now = self.ctx.clock()
            requests = self._due(processor.book, recover=recover, now=now, since=since)
            recover, since = False, now
            if requests and not self.dry_run:
                await processor.log.append_batch(requests)
            await asyncio.sleep(self.interval)

    def _due_in(self, book: PaymentBook, recover: bool) -> list[PaymentRequested]:
        """The Kafka scheduler's tick: what `_schedule` does, over the whole topic's book."""
        self._reload_catalogue()
        now = self.ctx.clock()
        due = self._due(book, recover=recover, now=now, since=self._since)
        self._since = now
        return due

    def _due(
        self, book: PaymentBook, *, recover: bool, now: datetime | None = None, since: datetime | None = None
    ) -> list[PaymentRequested]:
        now = now or self.ctx.clock()
        pairs = self.catalogue.active_pairs(now)
        app, cap = self.ctx.settings.party_app or "", self.ctx.settings.recovery_max_periods
        history = book.subscriptions
        due = missed_requests(pairs, history, now, app_party=app, per_subscription=cap) if recover else []
        due += tick_requests(pairs, history, now, since=since, app_party=app, cap=cap)
        verb = "would request" if self.dry_run else "requesting"
        for r in due:
            log.info(
                f"{verb} payment",
                extra={
                    "user": r.user_id,
                    "plan": r.plan,
                    "period": r.period.index,
                    "amount": str(r.amount),
                    "reason": r.reason,
                },
            )
        return due

    def _reload_catalogue(self) -> None:
        try:
            self.catalogue = load(self.ctx.settings.data_dir, min_interval=self.ctx.settings.min_interval_sec)
        except CatalogueError as err:
            log.error("catalogue not reloaded; the last good one stays in force", extra={"error": str(err)})


def _return_free_memory() -> None:
    """After the start-up folds (the log into the book, the projection's catch-up): give the heap
    they freed back to the system, which glibc would otherwise keep for reuse for the daemon's
    whole life (benchmarks/RESULTS.md has the figures). Elsewhere (no glibc) nothing happens."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _on_signals(callback: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, callback)
