"""The window projection as commands read it: brought up to date, followed, shown, rebuilt.

On the embedded log a command folds the log itself, or reads the daemon's projection as a
secondary while `billing start` owns it; on Kafka it keeps the whole-topic view.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from commands.context import Context
from commands.errors import CommandError
from pipeline.errors import StoreBusy, StoreUnavailable
from pipeline.events import Recorded
from pipeline.log.embedded import EmbeddedLog
from pipeline.log.store import Store
from projections.replay import Retention, catch_up, follow, open_projection, rebuild
from projections.windows import WINDOWS, WindowMetrics, WindowProjection

if TYPE_CHECKING:
    from projections.topic_view import TopicView  # imports aiokafka: loaded only on the Kafka backend

Observe = Callable[[Recorded], None] | None
KeepUp = Callable[[Observe], Coroutine[Any, Any, None]]


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
async def topic_view(ctx: Context, *, fresh: bool = False) -> AsyncIterator[TopicView]:
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


async def show_metrics(
    ctx: Context, *, window: str | None, user: str | None, subscription: str | None, as_json: bool
) -> int:
    """Print the metrics of ``window`` (default: all seven), overall or for one user and/or plan."""
    party = ctx.catalogue.find_user(user).party if user else None
    if subscription:
        ctx.catalogue.plan(subscription)

    async with current_projection(ctx) as projection:
        now = ctx.clock()
        windows = [window] if window else list(WINDOWS)
        rows = [projection.metrics(w, now, user=party, plan=subscription) for w in windows]
    if as_json:
        ctx.console.json([msgspec.to_builtins(r) for r in rows])
    else:
        title = "Billing metrics" + (f" for {user}" if user else "") + (f" on {subscription}" if subscription else "")
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


@asynccontextmanager
async def monitored(ctx: Context) -> AsyncIterator[tuple[WindowProjection, KeepUp]]:
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


async def replay_log(ctx: Context, start: int) -> int:
    """`billing replay`: fold the embedded log again, from ``start``, into fresh window metrics."""
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
                start=start,
                progress=lambda done, total: bar.update(done, total),
                retention=retention_of(ctx),
            )
    except StoreBusy as err:
        raise CommandError("stop `billing start` first: the daemon owns the projections while it runs") from err
    finally:
        await log.close()
    ctx.console.line(
        f"replayed {projection.position - start} events; "
        f"{projection.unreadable} record(s) skipped that are not events or not readable outcomes "
        "(`billing tail` shows every unreadable record with its reason)"
    )
    projection.store.close()
    return 0


async def replay_topic(ctx: Context) -> int:
    """`billing replay` on Kafka: rebuild the whole-topic view from every partition."""
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
