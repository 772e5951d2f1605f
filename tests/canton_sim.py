"""The simulator plugged into the real clients in-process (httpx.ASGITransport), for tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from pipeline.canton_adapter import CantonAdapter, Endpoints, open_canton
from pipeline.canton_http import StaticToken, asgi_transport
from pipeline.sim_app import Simulator

APP = "app::1220" + "ab" * 30
USERS = {f"{name}::1220" + f"{i:02x}" * 30: Decimal("1000") for i, name in enumerate(["alice", "bob", "carol"])}


def simulator(balances: dict[str, Decimal] | None = None, *, preapproval: bool = True) -> Simulator:
    sim = Simulator(APP, token="test-token-123456")
    sim.seed({APP: Decimal("100"), **(USERS if balances is None else balances)})
    if preapproval:
        sim.ledger.add_preapproval(APP, APP, datetime.now(UTC) + timedelta(days=365))
    return sim


@asynccontextmanager
async def adapter(sim: Simulator) -> AsyncIterator[CantonAdapter]:
    endpoints = Endpoints("http://sim", "http://sim/api/scan", timeout=5)
    async with open_canton(endpoints, lambda http: StaticToken(sim.static_token), receiver=APP,
                           dedup_seconds=86400, transport=asgi_transport(sim.app)) as port:
        yield port
