"""The simulator plugged into the product's Canton adapter in-process (httpx.ASGITransport)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

from pipeline.canton.adapter import CantonAdapter, Endpoints, open_canton
from pipeline.canton.auth import StaticToken
from pipeline.canton.http import asgi_transport
from pipeline.simulator.app import Simulator, seeded

APP = "app::1220" + "ab" * 30
USERS = {f"{name}::1220" + f"{i:02x}" * 30: Decimal("1000") for i, name in enumerate(["alice", "bob", "carol"])}
TOKEN = "test-token-123456"
ENDPOINTS = Endpoints(ledger_url="http://sim", scan_url="http://sim/api/scan", timeout=5)


def simulator(balances: dict[str, Decimal] | None = None, *, preapproval: bool = True) -> Simulator:
    """The app (100 CC, featured) and Alice, Bob, Carol (1000 CC each) on the wall clock."""
    holdings = USERS if balances is None else balances
    return seeded(holdings.items(), APP, preapproval=preapproval, static_token=TOKEN)


@asynccontextmanager
async def adapter(sim: Simulator, *, transport: Any = None, dedup_seconds: int = 86400) -> AsyncIterator[CantonAdapter]:
    """The product's adapter over ``sim`` (or over ``transport``, e.g. a recording one)."""
    async with open_canton(
        ENDPOINTS,
        lambda http: StaticToken(sim.static_token),
        receiver=APP,
        dedup_seconds=dedup_seconds,
        transport=transport or asgi_transport(sim),
    ) as port:
        yield port
