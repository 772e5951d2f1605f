"""`billing dashboard`: its options and its port; the page is served by `commands/dashboard/server.py`."""

from __future__ import annotations

import argparse
from typing import Any

from commands.context import Context
from commands.dashboard.server import HOST, serve_dashboard
from commands.errors import BadArgument
from commands.ports import claim_port


def add_commands(sub: Any) -> None:
    p = sub.add_parser(
        "dashboard",
        help="serve the local web dashboard (works while `start` runs)",
        description="Serve a web page on 127.0.0.1 with the 24 h totals, every metric across the seven "
        "windows and hour by hour, revenue per plan, the latest failures and a live audit feed. "
        "Prints a one-time sign-in link. `billing start` serves the same page on BILLING_API_PORT.",
        epilog="examples:\n  billing dashboard\n  billing dashboard --port 9000",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--port", type=int, help="loopback port (default BILLING_API_PORT + 1)")
    p.set_defaults(handler=run_dashboard)


def run_dashboard(ctx: Context, args: argparse.Namespace) -> int:
    port = args.port if args.port is not None else ctx.settings.api_port + 1
    if not 0 < port < 65536:
        raise BadArgument(f"--port {port} is not a port number (1-65535)")
    sock = claim_port(HOST, port, "choose another --port (the default is BILLING_API_PORT + 1)")
    try:
        return serve_dashboard(ctx, port, sock)
    finally:
        sock.close()  # already closed when the server ran; closing twice is harmless
