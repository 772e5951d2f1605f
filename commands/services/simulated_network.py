"""The in-process Canton/Scan simulator seeded from the catalogue (`billing simulator`, `billing demo`)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from commands.context import Context
from commands.errors import BadArgument
from pipeline.simulator.app import DEFAULT_MAX_COMMANDS_IN_FLIGHT, Simulator, seeded
from pipeline.simulator.refusals import DEFAULT_LIST_LIMIT

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
