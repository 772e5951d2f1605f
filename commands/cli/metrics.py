"""`metrics`, `replay`, `monitor`, `test-otel`: the window projection and its export."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec

from commands.context import Context
from commands.errors import CommandError
from commands.logs import Redactor
from commands.services.ledger_rebuild import run_rebuild
from pipeline.errors import StoreBusy, StoreUnavailable
from pipeline.events import Recorded
from pipeline.log.embedded import EmbeddedLog
from pipeline.log.store import Store
from pipeline.tasks import cancel_and_wait
from projections import telemetry
from projections.replay import Retention, catch_up, follow, open_projection, rebuild
from projections.windows import WINDOWS, WindowMetrics, WindowProjection

log = logging.getLogger(__name__)


def add_commands(sub: Any) -> None:
    m = sub.add_parser(
        "metrics",
        help="show billing metrics per time window",
        description="Payments, amounts, success rate and active users/subscriptions for the windows 10m, 1h, "
        "6h, 12h, 24h, 7d and 30d; overall, per user, per plan or per user and plan. Works while `start` runs.",
        epilog="examples:\n  billing metrics\n  billing metrics --window 1h --user alice\n"
        "  billing metrics --subscription prover --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    m.add_argument("--window", choices=list(WINDOWS), help="one window (default: all seven)")
    m.add_argument("--user", help="user id, name, email or party")
    m.add_argument("--subscription", help="plan name")
    m.add_argument("--json", action="store_true", help="print JSON")
    m.set_defaults(handler=run_metrics)
    r = sub.add_parser(
        "replay",
        help="rebuild every projection from the event log",
        description="Delete the window metrics and fold the whole event log again. With "
        "--from-ledger, first record in this state folder the charges the ledger shows and "
        "the log does not hold (after losing the state folder).",
    )
    r.add_argument(
        "--from",
        dest="start",
        type=int,
        default=0,
        metavar="OFFSET",
        help="leave out the events before OFFSET (default: from the first event)",
    )
    r.add_argument(
        "--from-ledger",
        action="store_true",
        help="rebuild the record of charges from the ledger's completions and Scan (then run "
        "`billing replay` for the metrics)",
    )
    r.set_defaults(handler=run_replay)
    mon = sub.add_parser(
        "monitor",
        help="aggregate and export metrics in the foreground",
        description="Follow the log, keep the window metrics current, export them over "
        "OpenTelemetry every OTEL_EXPORT_INTERVAL_SECS, and print a live summary. Ctrl-C stops.",
    )
    mon.set_defaults(handler=run_monitor)
    t = sub.add_parser(
        "test-otel",
        help="send a test metric and log to the OTLP endpoint",
        description="Send one test gauge (canton.billing.test.metric = 42) and one log record, "
        "and say whether the endpoint accepted each.",
    )
    t.set_defaults(handler=run_test_otel)


def retention_of(ctx: Context) -> Retention:
    return Retention(ctx.settings.retention_days, ctx.clock)


@asynccontextmanager
async def _followed(path: Path, owner: str) -> AsyncIterator[WindowProjection]:
    """The projection at ``path`` as another process (``owner``) writes it: read-only."""
    try:
        projection = WindowProjection(Store.open(path, mode="follow"))
    except StoreUnavailable as err:
        raise CommandError(f"{owner} has not written metrics yet: {err}") from err
    try:
        yield projection
    finally:
        projection.store.close()


def topic_view_dir(ctx: Context) -> Path:
    """Where the whole-topic view of the Kafka backend lives (the workers' stores are pNNN beside it)."""
    return Path(ctx.settings.projections_dir) / "topic"


@asynccontextmanager
async def topic_view(ctx: Context, *, fresh: bool = False) -> AsyncIterator[Any]:
    """The Kafka topic's `TopicView` (``fresh``: emptied first); StoreBusy while another command holds it."""
    from commands.kafka.session import open_topic  # aiokafka loads only on the Kafka backend
    from projections.topic_view import TopicView

    if fresh and topic_view_dir(ctx).exists():
        projection = open_projection(topic_view_dir(ctx))  # raises StoreBusy before anything is deleted
        projection.store.close()
        shutil.rmtree(topic_view_dir(ctx))
    projection = open_projection(topic_view_dir(ctx), retention_of(ctx))
    try:
        topic = await open_topic(ctx)
        try:
            yield TopicView(topic, projection)
        finally:
            await topic.close()
    finally:
        projection.store.close()


@asynccontextmanager
async def current_projection(ctx: Context) -> AsyncIterator[WindowProjection]:
    """The projection brought up to date with the log; read-only while the daemon owns it.

    On Kafka: the whole-topic view, brought up to date from every partition (read-only
    while `billing monitor` keeps it up to date itself).
    """
    settings = ctx.settings
    if settings.kafka:
        async with AsyncExitStack() as stack:
            try:
                view = await stack.enter_async_context(topic_view(ctx))
            except StoreBusy:
                yield await stack.enter_async_context(_followed(topic_view_dir(ctx), "billing monitor"))
                return
            await view.catch_up()
            yield view.projection
        return
    ctx.require_state()
    try:
        log = EmbeddedLog.open(settings.log_dir, sync=settings.log_fsync)
    except StoreBusy:
        async with _followed(settings.projections_dir, "the daemon") as projection:
            yield projection
        return
    except StoreUnavailable:
        log = None
    projection = open_projection(settings.projections_dir, retention_of(ctx))
    try:
        if log is not None:
            await catch_up(log, projection)
        yield projection
    finally:
        projection.store.close()
        if log is not None:
            await log.close()


def run_metrics(ctx: Context, args: argparse.Namespace) -> int:
    return asyncio.run(show_metrics(ctx, args))


async def show_metrics(ctx: Context, args: argparse.Namespace) -> int:
    party = ctx.catalogue.find_user(args.user).party if args.user else None
    if args.subscription:
        ctx.catalogue.plan(args.subscription)

    async with current_projection(ctx) as projection:
        now = ctx.clock()
        windows = [args.window] if args.window else list(WINDOWS)
        rows = [projection.metrics(w, now, user=party, plan=args.subscription) for w in windows]
    if args.json:
        ctx.console.json([msgspec.to_builtins(r) for r in rows])
    else:
        title = (
            "Billing metrics"
            + (f" for {args.user}" if args.user else "")
            + (f" on {args.subscription}" if args.subscription else "")
        )
        ctx.console.table(
            title,
            ["window", "payments", "ok", "failed", "amount CC", "success", "users", "subs"],
            [_row(r) for r in rows],
        )
    return 0


def _row(m: WindowMetrics) -> list[Any]:
    rate = f"{m.success_rate}%" if m.success_rate is not None else "–"
    return [
        m.window,
        m.payment_count,
        m.success_count,
        m.failure_count,
        m.total_amount,
        rate,
        m.active_users,
        m.active_subscriptions,
    ]


def run_replay(ctx: Context, args: argparse.Namespace) -> int:
    if args.start < 0:
        raise CommandError("--from must be 0 or more")
    if args.from_ledger:
        if ctx.settings.kafka:
            raise CommandError("--from-ledger rebuilds the embedded log; on Kafka the topic is the record")
        return run_rebuild(ctx, args)

    async def go() -> int:
        if ctx.settings.kafka:
            return await _replay_topic(ctx, args)
        ctx.require_state()
        try:
            log = EmbeddedLog.open(ctx.settings.log_dir, follow=True)
        except StoreUnavailable:
            ctx.console.line("the event log is empty: nothing to replay")
            return 0
        try:
            with ctx.console.progress("replaying", total=None) as bar:
                projection = await rebuild(
                    log,
                    ctx.settings.projections_dir,
                    start=args.start,
                    progress=lambda done, total: bar.update(done, total),
                    retention=retention_of(ctx),
                )
        except StoreBusy as err:
            raise CommandError("stop `billing start` first: the daemon owns the projections while it runs") from err
        finally:
            await log.close()
        ctx.console.line(
            f"replayed {projection.position - args.start} events; "
            f"{projection.unreadable} record(s) skipped that are not events or not readable outcomes "
            "(`billing tail` shows every unreadable record with its reason)"
        )
        projection.store.close()
        return 0

    return asyncio.run(go())


async def _replay_topic(ctx: Context, args: argparse.Namespace) -> int:
    """`billing replay` on Kafka: rebuild the whole-topic view from every partition."""
    if args.start:
        raise CommandError(
            "--from is an offset of the embedded log; on Kafka, replay rebuilds from the "
            "start of every partition (leave --from out)"
        )
    try:
        async with topic_view(ctx, fresh=True) as view:
            with ctx.console.progress("replaying the topic", total=None):
                folded = await view.catch_up()
            unreadable = view.projection.unreadable
    except StoreBusy as err:
        raise CommandError("stop `billing monitor` first: it keeps the whole-topic view while it runs") from err
    ctx.console.line(
        f"replayed {folded} events from {len(view.offsets)} partitions; {unreadable} record(s) "
        "skipped that are not events or not readable outcomes (`billing tail` shows them)"
    )
    return 0


def snapshot_of(projection: WindowProjection, ctx: Context) -> Iterator[telemetry.Sample]:
    """Overall and per-plan gauges for every window, and per-user ones when opted in (capped)."""
    now = ctx.clock()
    for user, plan, attributes in export_scopes(ctx):
        for m in projection.all_windows(now, user=user, plan=plan):
            for name in telemetry.GAUGES:
                value = getattr(m, name)
                if value is not None:
                    yield telemetry.Sample(m.window, name, float(value), attributes)


def export_scopes(ctx: Context) -> list[tuple[str | None, str | None, dict[str, str]]]:
    """(party, plan, attributes) of every exported series; ``scope`` keeps their attribute sets apart."""
    scopes: list[tuple[str | None, str | None, dict[str, str]]] = [
        (None, None, {"scope": "overall", "subscription": "all"})
    ]
    scopes += [(None, p.name, {"scope": "plan", "subscription": p.name}) for p in ctx.catalogue.plans]
    if ctx.settings.otel_per_user_series:
        users = ctx.catalogue.users[: ctx.settings.otel_max_user_series]
        scopes += [(u.party, None, {"scope": "user", "user": u.id, "subscription": "all"}) for u in users]
    return scopes


def start_telemetry(ctx: Context, projection: WindowProjection) -> telemetry.Telemetry | None:
    s = ctx.settings
    if not telemetry.enabled(s.opentelemetry_ingesting_host, os.environ):
        return None
    if s.otel_per_user_series and len(ctx.catalogue.users) > s.otel_max_user_series:
        log.warning(
            "per-user OTel series capped; the other users stay in `billing metrics --user`",
            extra={"users": len(ctx.catalogue.users), "exported": s.otel_max_user_series},
        )
    dest = telemetry.Destination.from_settings(s.opentelemetry_ingesting_host, s.opentelemetry_source_token)
    res = telemetry.resource(s.app_name, s.canton_chain, s.opentelemetry_source_id)
    return telemetry.Telemetry(
        res,
        dest,
        lambda: list(snapshot_of(projection, ctx)),
        s.otel_export_interval_secs,
        redact=Redactor(s.secrets()).redact,
    )


Observe = Callable[[Recorded], None] | None


@asynccontextmanager
async def _monitored(ctx: Context) -> AsyncIterator[tuple[WindowProjection, Callable[[Observe], Awaitable[None]]]]:
    """The projection to monitor and how to keep it up to date: the embedded log's, or the whole topic's."""
    if ctx.settings.kafka:
        async with AsyncExitStack() as stack:
            try:
                view = await stack.enter_async_context(topic_view(ctx))
            except StoreBusy as err:
                raise CommandError("another `billing monitor` keeps the whole-topic view: one is enough") from err
            await view.catch_up()
            yield view.projection, view.follow
        return
    try:
        log = EmbeddedLog.open(ctx.settings.log_dir, follow=True)
    except StoreUnavailable as err:
        raise CommandError("nothing to monitor yet: the event log is empty") from err
    projection = open_projection(ctx.settings.projections_dir, retention_of(ctx))
    try:
        yield projection, lambda observe: follow(log, projection, observe=observe)
    finally:
        projection.store.close()
        await log.close()


def run_monitor(ctx: Context, args: argparse.Namespace) -> int:
    # On Kafka the monitor is a service of its own (docker-compose.yml): its healthcheck reads this file's age.
    alive = Path(ctx.settings.rocksdb_path) / f"alive-monitor-{socket.gethostname()}" if ctx.settings.kafka else None

    async def go() -> int:
        async with _monitored(ctx) as (projection, keep_up):
            return await _monitor(ctx, projection, keep_up, alive)

    return asyncio.run(go())


async def _monitor(
    ctx: Context, projection: WindowProjection, keep_up: Callable[[Observe], Awaitable[None]], alive: Path | None = None
) -> int:
    """Export and print the 24h summary every OTEL_EXPORT_INTERVAL_SECS while ``keep_up`` folds new records;
    touch ``alive`` each time."""
    exporter = start_telemetry(ctx, projection)
    if exporter is None:
        ctx.console.warn(
            "OpenTelemetry is not configured (OPENTELEMETRY_* or OTEL_EXPORTER_OTLP_ENDPOINT): showing the summary only"
        )
    follower = asyncio.create_task(keep_up(exporter.observe if exporter else None))
    try:
        while True:
            if follower.done():
                await follower  # it failed (the broker went away, the store broke): say why
                raise CommandError("the monitor stopped following the event log")
            if alive is not None:
                alive.parent.mkdir(parents=True, exist_ok=True)
                alive.touch()
            m = projection.metrics("24h", ctx.clock())
            ctx.console.line(
                f"{ctx.clock():%H:%M:%S} 24h: {m.payment_count} payments, {m.total_amount} CC, "
                f"success {m.success_rate if m.success_rate is not None else '–'}%, "
                f"{m.active_users} users"
            )
            await asyncio.sleep(ctx.settings.otel_export_interval_secs)
    finally:
        await cancel_and_wait([follower])  # on Kafka, aiokafka can swallow the first cancel
        if exporter is not None:
            exporter.shutdown()


def run_test_otel(ctx: Context, args: argparse.Namespace) -> int:
    s = ctx.settings
    if not telemetry.enabled(s.opentelemetry_ingesting_host, os.environ):
        raise CommandError(
            "OpenTelemetry is not configured: set OPENTELEMETRY_INGESTING_HOST, _SOURCE_ID and "
            "_SOURCE_TOKEN (BetterStack), or OTEL_EXPORTER_OTLP_ENDPOINT"
        )
    dest = telemetry.Destination.from_settings(s.opentelemetry_ingesting_host, s.opentelemetry_source_token)
    metrics_ok, logs_ok = telemetry.send_test(
        telemetry.resource(s.app_name, s.canton_chain, s.opentelemetry_source_id), dest
    )
    ctx.console.line(f"test metric: {'accepted' if metrics_ok else 'REFUSED or unreachable'}")
    ctx.console.line(f"test log:    {'accepted' if logs_ok else 'REFUSED or unreachable'}")
    return 0 if metrics_ok and logs_ok else 1
