"""`metrics`, `replay`, `monitor`, `test-otel`: the window projection and its export."""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
from pathlib import Path
from typing import Any

from commands.context import Context
from commands.errors import CommandError
from commands.services.ledger_rebuild import run_rebuild
from commands.services.metrics import KeepUp, monitored, replay_log, replay_topic, show_metrics
from commands.services.telemetry_export import start_telemetry
from pipeline.tasks import cancel_and_wait
from projections import telemetry
from projections.windows import WINDOWS, WindowProjection


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


def run_metrics(ctx: Context, args: argparse.Namespace) -> int:
    return asyncio.run(
        show_metrics(ctx, window=args.window, user=args.user, subscription=args.subscription, as_json=args.json)
    )


def run_replay(ctx: Context, args: argparse.Namespace) -> int:
    if args.from_ledger:
        if ctx.settings.kafka:
            raise CommandError("--from-ledger rebuilds the embedded log; on Kafka the topic is the record")
        return run_rebuild(ctx)
    if not ctx.settings.kafka:
        return asyncio.run(replay_log(ctx, args.start))
    if args.start:
        raise CommandError(
            "--from is an offset of the embedded log; on Kafka, replay rebuilds from the "
            "start of every partition (leave --from out)"
        )
    return asyncio.run(replay_topic(ctx))


def run_monitor(ctx: Context, args: argparse.Namespace) -> int:
    # On Kafka the monitor is a service of its own (docker-compose.yml): its healthcheck reads this file's age.
    alive = Path(ctx.settings.rocksdb_path) / f"alive-monitor-{socket.gethostname()}" if ctx.settings.kafka else None

    async def go() -> int:
        async with monitored(ctx) as (projection, keep_up):
            return await _monitor(ctx, projection, keep_up, alive)

    return asyncio.run(go())


async def _monitor(ctx: Context, projection: WindowProjection, keep_up: KeepUp, alive: Path | None = None) -> int:
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
