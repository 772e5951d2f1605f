"""`billing start`: its options and the checks made before the daemon (`commands/daemon/main.py`) runs."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from commands.context import Context
from commands.daemon.main import Daemon
from commands.errors import CommandError
from commands.ports import claim_port
from commands.services.runtime import require_canton
from pipeline.errors import StoreBusy


def add_commands(sub: Any) -> None:
    p = sub.add_parser(
        "start",
        help="run the billing daemon: scheduler, processor, metrics",
        description="Run billing continuously: request each due period once, charge it, retry "
        "what can be retried, keep metrics, and serve the local API (127.0.0.1:BILLING_API_PORT) "
        "that other billing commands use meanwhile, and the web dashboard at /dashboard/. "
        "Stop it with Ctrl-C or SIGTERM.",
        epilog="examples:\n  billing start\n  billing start --once      # one pass, wait for outcomes, exit",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--once", action="store_true", help="one scheduler pass, then exit when it settles")
    p.add_argument("--interval", type=int, metavar="SECS", help="tick (default CHECK_INTERVAL_SECS)")
    p.add_argument("--dry-run", action="store_true", help="log what would be requested; charge nothing")
    p.add_argument("--backend", choices=["embedded", "kafka"], help="event log backend (default: from EVENT_LOG)")
    p.set_defaults(handler=run_start)


def run_start(ctx: Context, args: argparse.Namespace) -> int:
    if args.backend == "kafka" and not ctx.settings.kafka:
        raise CommandError("--backend kafka needs the broker: set EVENT_LOG=kafka://host:port")
    if args.backend == "embedded" and ctx.settings.kafka:
        raise CommandError("--backend embedded contradicts EVENT_LOG; unset EVENT_LOG (or set it to embedded)")
    require_canton(ctx, "`billing start`")
    ctx.catalogue  # fail now, with exit code 2, if the files are broken  # noqa: B018
    # The local API's port is taken before the store is opened or Canton asked anything.
    serves = not args.once and not ctx.settings.kafka
    port = ctx.settings.api_port
    sock = (
        claim_port(
            "127.0.0.1",
            port,
            "another billing daemon or program listens there; stop it, or set BILLING_API_PORT to a free port",
        )
        if serves
        else None
    )
    try:
        return asyncio.run(Daemon(ctx, args, sock).run())
    except StoreBusy as err:
        raise CommandError(f"another billing daemon is running on this data: {err}") from err
    finally:
        if sock is not None:
            sock.close()  # already closed when the API ran; closing twice is harmless
