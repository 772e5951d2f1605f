"""`billing dashboard`, and the dashboard inside `billing start`: a local web page on loopback.

On its own it reads the projections as `billing metrics` does (as a secondary reader while
the daemon runs) and follows the log as `billing tail -f` does; inside the daemon it reads
the daemon's own projection and log. Either way it prints a one-time sign-in link.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from commands.catalogue import Catalogue
from commands.context import Context
from commands.dashboard.auth import Sessions
from commands.dashboard.data import Snapshot, snapshot, tail_records
from commands.dashboard.routes import Page, dashboard_app, dashboard_routes, other_routes
from commands.errors import CommandError
from commands.services.daemon_api import api_token
from commands.services.metrics import current_projection
from pipeline.asgi_server import serve
from pipeline.errors import StoreUnavailable
from pipeline.log.embedded import EmbeddedLog
from pipeline.log.port import EventLog
from projections.windows import WindowProjection

HOST = "127.0.0.1"


def serve_dashboard(ctx: Context, port: int, sock: socket.socket) -> int:
    """Serve the page on ``sock`` until Ctrl-C, after the checks that make it worth serving."""
    ctx.catalogue  # a broken catalogue is reported before anything is served  # noqa: B018
    if ctx.settings.kafka:
        raise CommandError(
            "the web dashboard serves the embedded log only; on Kafka the whole topic is in "
            "`billing metrics`, `billing tail -f`, and the monitor's OpenTelemetry export "
            "(dashboard/billing.json)"
        )
    try:
        log = EmbeddedLog.open(ctx.settings.log_dir, follow=True)
    except StoreUnavailable as err:
        raise CommandError(
            f"nothing to show yet: there is no event log at {ctx.settings.log_dir}; "
            "run `billing start` (or `billing demo --keep DIR` and ROCKSDB_PATH=DIR)"
        ) from err
    return asyncio.run(_serve_alone(ctx, log, port, sock))


def standalone_app(ctx: Context, log: EventLog) -> tuple[Any, Sessions]:
    """The dashboard on its own: each request reads the projections as `billing metrics` does."""
    lock = asyncio.Lock()  # one projection handle at a time: RocksDB allows one writer per directory

    async def source() -> Snapshot:
        async with lock, current_projection(ctx) as projection:
            return snapshot(projection, ctx.catalogue, ctx.clock(), await tail_records(log), source="billing dashboard")

    sessions = new_sessions(ctx)
    return dashboard_app(dashboard_routes(source, log, lambda: ctx.catalogue, sessions, _about(ctx))), sessions


async def _serve_alone(ctx: Context, log: EmbeddedLog, port: int, sock: socket.socket) -> int:
    app, sessions = standalone_app(ctx, log)
    ready = asyncio.Event()
    server = asyncio.create_task(serve(app, HOST, port, ready=ready, sock=sock))
    waiter = asyncio.create_task(ready.wait())
    try:
        await asyncio.wait([server, waiter], return_when=asyncio.FIRST_COMPLETED)
        if server.done():
            raise CommandError(f"cannot listen on {HOST}:{port} ({server.exception()}); choose another --port")
        announce(ctx, port, sessions)
        await server
    finally:
        waiter.cancel()
        server.cancel()
        await asyncio.gather(server, waiter, return_exceptions=True)
        await log.close()
    return 0


def in_daemon(
    ctx: Context, api: Any, log: EventLog, projection: WindowProjection, catalogue: Callable[[], Catalogue]
) -> tuple[Any, Sessions]:
    """The daemon's API app with the dashboard beside it, reading the daemon's own projection."""

    async def source() -> Snapshot:
        return snapshot(projection, catalogue(), ctx.clock(), await tail_records(log), source="billing start")

    sessions = new_sessions(ctx)
    routes = dashboard_routes(source, log, catalogue, sessions, _about(ctx))
    return dashboard_app(routes, *other_routes(api)), sessions


def new_sessions(ctx: Context) -> Sessions:
    return Sessions(api_token(Path(ctx.settings.rocksdb_path), ctx.settings.api_token), ctx.clock)


def announce(ctx: Context, port: int, sessions: Sessions) -> None:
    """Print the sign-in link on stdout only: it is a credential, so it never goes to the logs or OTel."""
    ctx.console.line(f"dashboard: http://{HOST}:{port}/dashboard/login?code={sessions.new_code()}")
    ctx.console.note("the link signs in one browser, once; Ctrl-C stops")


def _about(ctx: Context) -> Page:
    return Page(app_name=ctx.settings.app_name, chain=ctx.settings.canton_chain)
