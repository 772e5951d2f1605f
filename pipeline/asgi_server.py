"""Serve an ASGI app over TCP (uvicorn), for the simulator and the daemon's local API."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import uvicorn


async def serve(
    app: Callable[..., Any],
    host: str,
    port: int,
    *,
    ready: asyncio.Event | None = None,
    sock: socket.socket | None = None,
) -> None:
    """Serve until cancelled; set ``ready`` once connections are accepted. ``sock``: a socket
    from `listening_socket`, already bound to ``host:port`` (uvicorn then binds nothing)."""
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")
    # uvicorn handles SIGINT and SIGTERM itself while it serves; when it stops it puts the caller's
    # handlers back and raises a signal it caught again for them.
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock] if sock is not None else None))
    try:
        while not server.started:
            if task.done():
                task.result()  # raises the bind error (port in use, …)
                raise OSError(f"cannot listen on {host}:{port}")
            await asyncio.sleep(0.01)
        if ready is not None:
            ready.set()
        await task
    finally:
        server.should_exit = True
        if not task.done():
            await asyncio.wait([task], timeout=5)


def listening_socket(host: str, port: int) -> socket.socket:
    """``host:port`` bound and listening now, for `serve(sock=...)`.

    A command takes its port first, before it opens its store or sends a request: a busy
    port then fails at once, with nothing done, and nobody can take the port meanwhile.

    Raises:
        OSError: the port is in use (EADDRINUSE) or not ours to take (EACCES).
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        # As uvicorn binds: a port left in TIME_WAIT by our previous run is free, a listener is not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def install_fast_loop() -> bool:
    """Run asyncio on uvloop when it is installed (uvicorn[standard] brings it along): its
    transports, timers and callbacks cost less CPU than the stdlib loop's, and pay-all and the
    simulator spend much of theirs there.
    """
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (tests and the demo)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
