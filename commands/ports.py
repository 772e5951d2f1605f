"""Taking a loopback port before a command does anything else (`start`, `simulator`, `dashboard`)."""

from __future__ import annotations

import errno
import socket

from commands.errors import CommandError
from pipeline.asgi_server import listening_socket


def claim_port(host: str, port: int, remedy: str) -> socket.socket:
    """The listening socket of ``host:port``, or a one-line `CommandError` that says ``remedy``.

    Called before the store is opened or anything is requested, so a busy port leaves no trace.
    """
    try:
        return listening_socket(host, port)
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            raise CommandError(f"port {port} on {host} is already in use: {remedy}") from err
        raise CommandError(f"cannot listen on {host}:{port} ({err.strerror or err}): {remedy}") from err
