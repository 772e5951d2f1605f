"""`billing simulator`: the Canton/Scan simulator on loopback, seeded from data/users.json."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from commands.context import Context
from commands.errors import BadArgument
from commands.ports import claim_port
from commands.services.simulated_network import build, serve_simulator
from pipeline.simulator.app import DEFAULT_MAX_COMMANDS_IN_FLIGHT
from pipeline.simulator.faults import CLI_FAULTS
from pipeline.simulator.refusals import DEFAULT_LIST_LIMIT


def add_commands(sub: Any) -> None:
    p = sub.add_parser(
        "simulator",
        help="serve the Canton/Scan simulator on loopback",
        description="Serve a simulated JSON Ledger API v2 (at /) and Scan API (at /api/scan/) so billing runs "
        "without a Canton node. Every party in users.json and the app party start with Canton Coin. Prints "
        "'simulator ready on http://HOST:PORT', then the environment to use it.",
        epilog="examples:\n  billing simulator --port 7575\n  billing simulator --latency-ms 250 "
        "--fault timeout_after_commit=0.05\n\nfaults: " + ", ".join(CLI_FAULTS),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="listen address (loopback by default)")
    p.add_argument("--port", type=int, default=7575, help="listen port (default 7575)")
    p.add_argument("--latency-ms", type=int, default=0, help="delay added to every submission")
    p.add_argument("--fault", action="append", default=[], metavar="NAME=RATE", help="inject a fault at a rate")
    p.add_argument("--with-preapproval", action="store_true", help="start with the app's preapproval in place")
    p.add_argument(
        "--max-commands-in-flight",
        type=int,
        default=DEFAULT_MAX_COMMANDS_IN_FLIGHT,
        metavar="N",
        help="submissions in flight before PARTICIPANT_BACKPRESSURE (Canton's default 256; LocalNet 30)",
    )
    p.add_argument(
        "--list-limit",
        type=int,
        default=DEFAULT_LIST_LIMIT,
        metavar="N",
        help="elements per HTTP list before answering 413, as the node's "
        f"http-list-max-elements-limit (default {DEFAULT_LIST_LIMIT})",
    )
    p.set_defaults(handler=run_simulator)


def run_simulator(ctx: Context, args: argparse.Namespace) -> int:
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        ctx.console.warn(f"listening on {args.host}: the simulator has no real security, keep it on loopback")
    if args.max_commands_in_flight < 1:
        raise BadArgument("--max-commands-in-flight must be at least 1")
    sock = claim_port(args.host, args.port, "choose another --port")
    try:
        sim = build(
            ctx,
            faults=args.fault,
            latency_ms=args.latency_ms,
            preapproval=args.with_preapproval,
            max_commands_in_flight=args.max_commands_in_flight,
            list_limit=args.list_limit,
        )
        return asyncio.run(serve_simulator(ctx, sim, args.host, args.port, sock))
    finally:
        sock.close()  # already closed when the server ran; closing twice is harmless
