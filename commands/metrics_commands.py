"""`metrics`, `replay`, `monitor`, `test-otel`: the window projection and its export."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec

from commands.context import Context
from commands.errors import CommandError
from commands.logs import Redactor
from pipeline.embedded_log import EmbeddedLog
from pipeline.errors import StoreBusy, StoreUnavailable
from pipeline.rocks import Store
from projections import telemetry
from projections.replay import Retention, catch_up, follow, open_projection, rebuild
from projections.windows import WINDOWS, WindowMetrics, WindowProjection

log = logging.getLogger(__name__)


def add_commands(sub: Any) -> None:
    m = sub.add_parser(
        "metrics", help="show billing metrics per time window",
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
    r = sub.add_parser("replay", help="rebuild every projection from the event log",
                       description="Delete the window metrics and fold the whole event log again.")
    r.add_argument("--from", dest="start", type=int, default=0, metavar="OFFSET",
                   help="leave out the events before OFFSET (default: from the first event)")
    r.set_defaults(handler=run_replay)
    mon = sub.add_parser("monitor", help="aggregate and export metrics in the foreground",
                         description="Follow the log, keep the window metrics current, export them over "
                         "OpenTelemetry every OTEL_EXPORT_INTERVAL_SECS, and print a live summary. Ctrl-C stops.")
    mon.set_defaults(handler=run_monitor)
    t = sub.add_parser("test-otel", help="send a test metric and log to the OTLP endpoint",
                       description="Send one test gauge (canton.billing.test.metric = 42) and one log record, "
                       "and say whether the endpoint accepted each.")
    t.set_defaults(handler=run_test_otel)


def retention_of(ctx: Context) -> Retention:
    return Retention(ctx.settings.retention_days, ctx.clock)


@asynccontextmanager
async def current_projection(ctx: Context) -> AsyncIterator[WindowProjection]:
    """The projection brought up to date with the log; read-only while the daemon owns it."""
    settings = ctx.settings
    try:
        log = EmbeddedLog.open(settings.log_dir, sync=settings.log_fsync)
    except StoreBusy:
        try:
            projection = WindowProjection(Store.open(settings.projections_dir, mode="follow"))
        except StoreUnavailable as err:
            raise CommandError(f"the daemon has not written metrics yet: {err}") from err
        try:
            yield projection
        finally:
            projection.store.close()
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
        title = "Billing metrics" + (f" for {args.user}" if args.user else "") + (
            f" on {args.subscription}" if args.subscription else "")
        ctx.console.table(title, ["window", "payments", "ok", "failed", "amount CC", "success",
                                  "users", "subs"], [_row(r) for r in rows])
    return 0


def _row(m: WindowMetrics) -> list[Any]:
    rate = f"{m.success_rate}%" if m.success_rate is not None else "–"
    return [m.window, m.payment_count, m.success_count, m.failure_count, m.total_amount, rate, m.active_users,
            m.active_subscriptions]


def run_replay(ctx: Context, args: argparse.Namespace) -> int:
    if args.start < 0:
        raise CommandError("--from must be 0 or more")

    async def go() -> int:
        try:
            log = EmbeddedLog.open(ctx.settings.log_dir, follow=True)
        except StoreUnavailable:
            ctx.console.line("the event log is empty: nothing to replay")
            return 0
        try:
            with ctx.console.progress("replaying", total=None) as bar:
                projection = await rebuild(log, ctx.settings.projections_dir, start=args.start,
                                           progress=lambda done, total: bar.update(done, total),
                                           retention=retention_of(ctx))
        except StoreBusy as err:
            raise CommandError("stop `billing start` first: the daemon owns the projections while it runs") from err
        finally:
            await log.close()
        ctx.console.line(f"replayed {projection.position - args.start} events; "
                         f"{projection.unreadable} record(s) skipped that are not events or not readable outcomes "
                         "(`billing tail` shows every unreadable record with its reason)")
        projection.store.close()
        return 0

    return asyncio.run(go())


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
        (None, None, {"scope": "overall", "subscription": "all"})]
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
        log.warning("per-user OTel series capped; the other users stay in `billing metrics --user`",
                    extra={"users": len(ctx.catalogue.users), "exported": s.otel_max_user_series})
    dest = telemetry.Destination.from_settings(s.opentelemetry_ingesting_host, s.opentelemetry_source_token)
    res = telemetry.resource(s.app_name, s.canton_chain, s.opentelemetry_source_id)
    return telemetry.Telemetry(res, dest, lambda: list(snapshot_of(projection, ctx)), s.otel_export_interval_secs,
                               redact=Redactor(s.secrets()).redact)


def run_monitor(ctx: Context, args: argparse.Namespace) -> int:
    async def go() -> int:
        try:
            log = EmbeddedLog.open(ctx.settings.log_dir, follow=True)
        except StoreUnavailable as err:
            raise CommandError("nothing to monitor yet: the event log is empty") from err
        projection = open_projection(ctx.settings.projections_dir, retention_of(ctx))
        exporter = start_telemetry(ctx, projection)
        if exporter is None:
            ctx.console.warn("OpenTelemetry is not configured (OPENTELEMETRY_* or OTEL_EXPORTER_OTLP_ENDPOINT): "
                             "showing the summary only")
        follower = asyncio.create_task(follow(log, projection, observe=exporter.observe if exporter else None))
        try:
            while True:
                m = projection.metrics("24h", ctx.clock())
                ctx.console.line(f"{ctx.clock():%H:%M:%S} 24h: {m.payment_count} payments, {m.total_amount} CC, "
                                 f"success {m.success_rate if m.success_rate is not None else '–'}%, "
                                 f"{m.active_users} users")
                await asyncio.sleep(ctx.settings.otel_export_interval_secs)
        finally:
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)
            if exporter is not None:
                exporter.shutdown()
            projection.store.close()
            await log.close()

    return asyncio.run(go())


def run_test_otel(ctx: Context, args: argparse.Namespace) -> int:
    s = ctx.settings
    if not telemetry.enabled(s.opentelemetry_ingesting_host, os.environ):
        raise CommandError("OpenTelemetry is not configured: set OPENTELEMETRY_INGESTING_HOST, _SOURCE_ID and "
                           "_SOURCE_TOKEN (BetterStack), or OTEL_EXPORTER_OTLP_ENDPOINT")
    dest = telemetry.Destination.from_settings(s.opentelemetry_ingesting_host, s.opentelemetry_source_token)
    metrics_ok, logs_ok = telemetry.send_test(telemetry.resource(s.app_name, s.canton_chain,
                                                                 s.opentelemetry_source_id), dest)
    ctx.console.line(f"test metric: {'accepted' if metrics_ok else 'REFUSED or unreachable'}")
    ctx.console.line(f"test log:    {'accepted' if logs_ok else 'REFUSED or unreachable'}")
    return 0 if metrics_ok and logs_ok else 1
