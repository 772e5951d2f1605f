"""`billing demo`: the whole pipeline on the embedded log against the in-process simulator.

No Canton node, no network, no Kafka: a simulated network is seeded from data/users.json,
the app's preapproval is created, every active subscription is charged once, a second
run shows that nothing is charged twice, and the ledger is checked against the log.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from commands.context import Context
from commands.services.events_view import event_line
from commands.services.metrics import show_metrics
from commands.services.payments import pay_all
from commands.services.preapproval_setup import setup_preapproval
from commands.services.runtime import canton_factory
from commands.services.simulated_network import DEMO_APP_PARTY, build
from pipeline.canton.http import asgi_transport
from pipeline.log.embedded import EmbeddedLog
from pipeline.simulator.app import Simulator


def add_commands(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="run the whole pipeline against the built-in simulator",
        description="Run billing end to end on a simulated Canton network, in a temporary state directory: "
        "create the preapproval, charge every active subscription, charge again (nothing is charged twice), "
        "and check the ledger against the event log.",
    )
    p.add_argument("--keep", metavar="DIR", help="keep the state in DIR (default: a temporary directory)")
    p.set_defaults(handler=run_demo)


def run_demo(ctx: Context, args: argparse.Namespace) -> int:
    ctx.catalogue  # a broken catalogue stops the demo before anything runs  # noqa: B018
    if ctx.settings.log_level == "info":
        logging.getLogger("pipeline").setLevel(logging.WARNING)  # the demo prints its own story
    if args.keep:
        return asyncio.run(_demo(ctx, Path(args.keep)))
    with tempfile.TemporaryDirectory(prefix="billing-demo-") as state:
        return asyncio.run(_demo(ctx, Path(state)))


async def _demo(ctx: Context, state: Path) -> int:
    sim = build(ctx)
    settings = msgspec.structs.replace(
        ctx.settings,
        rocksdb_path=str(state),
        party_app=DEMO_APP_PARTY,
        app_provider_api_url="http://simulator",
        scan_api_url="http://simulator/api/scan",
        app_provider_jwt=sim.static_token,
        ledger_auth_token_url=None,
        max_payment_retries=5,
        payment_retry_interval=1,
    )
    demo = Context(settings, ctx.console, ctx.clock, transport=asgi_transport(sim))
    demo.catalogue = ctx.catalogue  # already loaded and validated
    say = ctx.console.line
    say(f"Canton Billing demo: simulated network, state in {state}\n")
    say("1. Create the app's TransferPreapproval (run twice: the second run finds it and pays nothing)")
    for _ in range(2):
        async with canton_factory(demo)() as canton:
            await setup_preapproval(demo, canton, 525600)
    say("\n2. Charge every active subscription (pay-all)")
    first = await pay_all(demo, dry_run=False)
    say("\n3. Charge again: the same periods are already paid, nothing is charged twice")
    second = await pay_all(demo, dry_run=False)
    say("\n4. The audit trail (billing tail)")
    log = EmbeddedLog.open(settings.log_dir, follow=True)
    try:
        async for record in log.read():
            say(event_line(record))
    finally:
        await log.close()
    say("\n5. The metrics, folded from the same log (billing metrics)")
    await show_metrics(demo, window=None, user=None, subscription=None, as_json=False)
    return _check(ctx, sim, first or second)


def _check(ctx: Context, sim: Simulator, code: int) -> int:
    transfers = sim.transfers()
    commands = [t.command_id for t in transfers]
    total = sum((t.amount for t in transfers), Decimal(0))
    ctx.console.line(
        f"\n6. The ledger holds {len(transfers)} transfer(s), {total} CC in all, "
        f"{len(set(commands))} distinct command id(s): "
        + ("every period charged exactly once." if len(commands) == len(set(commands)) else "DUPLICATES FOUND.")
    )
    if len(commands) != len(set(commands)):
        return 1
    return code
