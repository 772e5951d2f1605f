"""Run the simulator over TCP with uvicorn (the demo, benchmarks, manual tries with curl).

Once the socket accepts connections it prints exactly one line
``simulator ready on http://HOST:PORT``, then the ``KEY=VALUE`` settings billing needs
to talk to it (APP_PROVIDER_API_URL, SCAN_API_URL, APP_PROVIDER_JWT, PARTY_APP).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable
from typing import TextIO

import uvicorn

from pipeline.simulator.app import Simulator
from pipeline.simulator.responses import quiet_dropped_connections

LOOPBACK = "127.0.0.1"
START_TIMEOUT = 10.0


def settings_lines(sim: Simulator, base_url: str) -> list[str]:
    """The environment for billing to use this simulator."""
    return [
        f"APP_PROVIDER_API_URL={base_url}",
        f"SCAN_API_URL={base_url}/api/scan",
        f"APP_PROVIDER_JWT={sim.static_token}",
        f"PARTY_APP={sim.app_party}",
    ]


async def serve_async(
    sim: Simulator,
    host: str = LOOPBACK,
    port: int = 0,
    *,
    out: TextIO | None = None,
    on_ready: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve ``sim`` until ``stop`` is set (or forever); ``port`` 0 picks a free port.

    ``on_ready`` receives the base URL once connections are accepted.
    """
    out = out or sys.stdout
    quiet_dropped_connections()
    config = uvicorn.Config(sim, host=host, port=port, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        await _wait_started(server, task)
        bound_host, bound_port = server.servers[0].sockets[0].getsockname()[:2]
        base_url = f"http://{bound_host}:{bound_port}"
        print(f"simulator ready on {base_url}", file=out)
        for line in settings_lines(sim, base_url):
            print(line, file=out)
        out.flush()
        if on_ready is not None:
            on_ready(base_url)
        waiter = asyncio.create_task((stop or asyncio.Event()).wait())
        try:
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
    finally:
        server.should_exit = True
        await task


async def _wait_started(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    for _ in range(int(START_TIMEOUT / 0.01)):
        if server.started:
            return
        if task.done():
            task.result()  # re-raises why it could not start (port in use...)
            raise RuntimeError("the simulator's server stopped before it started")
        await asyncio.sleep(0.01)
    raise TimeoutError(f"the simulator did not start within {START_TIMEOUT:g}s")


def serve(host: str = LOOPBACK, port: int = 0, *, simulator: Simulator, out: TextIO | None = None) -> None:
    """Blocking: serve ``simulator`` on ``host:port`` until interrupted (Ctrl-C)."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_async(simulator, host, port, out=out))
