"""The in-process Canton/Scan simulator seeded from the catalogue (`billing simulator`, `billing demo`)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Sequence
from decimal import Decimal

from commands.context import Context
from commands.errors import BadArgument, CommandError
from pipeline.asgi_server import serve
from pipeline.simulator.app import DEFAULT_MAX_COMMANDS_IN_FLIGHT, Simulator, seeded
from pipeline.simulator.refusals import DEFAULT_LIST_LIMIT
from pipeline.simulator.responses import quiet_dropped_connections
from pipeline.simulator.serve import settings_lines

DEMO_APP_PARTY = "billing_app::1220" + "0a" * 30
START_BALANCE = Decimal("1000")


def build(
    ctx: Context,
    *,
    faults: Sequence[str] = (),
    latency_ms: int = 0,
    preapproval: bool = False,
    max_commands_in_flight: int = DEFAULT_MAX_COMMANDS_IN_FLIGHT,
    list_limit: int = DEFAULT_LIST_LIMIT,
) -> Simulator:
    """A simulator seeded with the app party and every user party of the catalogue."""
    app = ctx.settings.party_app or DEMO_APP_PARTY
    users = {u.party: START_BALANCE for u in ctx.catalogue.users}  # a party funded once
    sim = seeded(
        users.items(),
        app,
        app_amount=Decimal("500"),
        featured=True,
        preapproval=preapproval,
        static_token=ctx.settings.app_provider_jwt,
        submit_latency=latency_ms / 1000,
        max_commands_in_flight=max_commands_in_flight,
        list_limit=list_limit,
    )
    for spec in faults:
        name, _, rate = spec.partition("=")
        try:
            sim.set_fault_rate(name, float(rate or "1"))
        except ValueError as err:
            raise BadArgument(f"--fault {spec!r}: {err}") from err
    return sim


async def serve_simulator(ctx: Context, sim: Simulator, host: str, port: int, sock: socket.socket) -> int:
    """Serve ``sim`` on ``sock`` until cancelled; print where and the settings that use it, once ready."""
    quiet_dropped_connections()
    ready = asyncio.Event()
    server = asyncio.create_task(serve(sim.app, host, port, ready=ready, sock=sock))
    waiter = asyncio.create_task(ready.wait())
    await asyncio.wait([server, waiter], return_when=asyncio.FIRST_COMPLETED)
    if server.done():
        waiter.cancel()
        raise CommandError(f"cannot listen on {host}:{port}: {server.exception()}")
    url = f"http://{host}:{port}"
    for line in (f"simulator ready on {url}", *settings_lines(sim, url)):
        ctx.console.line(line)
    with contextlib.suppress(asyncio.CancelledError):
        await server
    return 0
