"""Fixtures for the Canton client and simulator tests: a seeded simulator on a manual clock,
and the real clients plugged into it in-process (httpx.ASGITransport).

Fixtures ``clock``, ``sim``, ``canton``: a test module imports ``clock_fixture``,
``sim_fixture``, ``canton_fixture`` (the names differ so arguments do not shadow imports).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_core import Config, OpenAPI

from pipeline.canton.adapter import CantonAdapter, Endpoints, open_canton
from pipeline.canton.auth import StaticToken, TokenSource
from pipeline.canton.http import Http, ReadRetry, asgi_transport, make_client
from pipeline.canton.ledger import LedgerApi
from pipeline.canton.scan import ScanApi
from pipeline.canton.scan_context import ScanContextCache
from pipeline.canton.transfers import Selection, select_inputs, send_commands
from pipeline.canton.types import JsCommands
from pipeline.simulator.app import Simulator, seeded
from pipeline.simulator.clock import ManualClock

APP = "app::1220" + "ab" * 32
ALICE = "alice::1220" + "01" * 32
BOB = "bob::1220" + "02" * 32
CAROL = "carol::1220" + "03" * 32
TOKEN = "test-token-0123456789"
LEDGER_URL = "http://sim.test"
SCAN_URL = "http://sim.test/api/scan"
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
LEDGER_SPEC = "specs/canton/release-line-3.5/json-ledger-api-openapi.yaml"
SCAN_SPEC = "specs/splice/apps/scan/src/main/openapi/scan.yaml"
AUTH = {"authorization": f"Bearer {TOKEN}"}


def shared_dir() -> Path:
    """../shared beside the repository, or a skip saying why the test cannot run."""
    if not SHARED.is_dir():
        pytest.skip(f"needs the vendored specs in {SHARED} (absent in this clone)")
    return SHARED


def new_sim(clock: ManualClock | None = None, *, preapproval: bool = True, **options: Any) -> Simulator:
    """Alice 100 CC (two amulets), Bob 40, Carol 5, the app 100 and featured."""
    holdings = [(ALICE, Decimal(60)), (ALICE, Decimal(40)), (BOB, Decimal(40)), (CAROL, Decimal(5))]
    options.setdefault("static_token", TOKEN)
    return seeded(holdings, APP, clock=clock or ManualClock(), preapproval=preapproval, **options)


@dataclass
class Canton:
    """The clients under test, wired to one simulator."""

    sim: Simulator
    ledger: LedgerApi
    scan: ScanApi
    context: ScanContextCache
    sleeps: list[float] = field(default_factory=list)


@asynccontextmanager
async def open_clients(
    sim: Simulator,
    *,
    auth: Callable[[httpx.AsyncClient], TokenSource] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    page_size: int | None = None,
    retry: ReadRetry | None = None,
) -> AsyncIterator[Canton]:
    """Ledger and Scan clients (one pooled httpx client each) over ``sim`` in-process."""
    transport = transport or asgi_transport(sim)
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)  # recorded, not slept: retries stay fast and observable

    async with (
        make_client(LEDGER_URL, 5, transport) as lc,
        make_client(SCAN_URL, 5, transport) as sc,
    ):
        token = auth(lc) if auth else StaticToken(TOKEN)
        http = Http(lc, "the Ledger API", token, retry=retry, sleep=sleep)
        ledger = LedgerApi(http, page_size=page_size) if page_size else LedgerApi(http)  # billing's default
        scan = ScanApi(Http(sc, "Scan", retry=retry, sleep=sleep))
        assert isinstance(sim.clock, ManualClock)
        yield Canton(sim, ledger, scan, ScanContextCache(scan, receiver=APP, clock=sim.clock), sleeps)


async def payment(
    c: Canton,
    sender: str,
    amount: Decimal | str,
    command_id: str,
    *,
    submission_id: str = "attempt-1",
    dedup_seconds: int = 86400,
) -> JsCommands:
    """The Send command paying the app ``amount`` from ``sender`` (context and inputs fetched)."""
    ctx = await c.context.get()
    chosen = select_inputs(
        await c.ledger.amulets(sender),
        Decimal(amount),
        max_inputs=ctx.open_round.max_num_inputs,
    )
    assert isinstance(chosen, Selection), chosen
    return send_commands(
        ctx,
        sender=sender,
        amount=Decimal(amount),
        inputs=chosen.inputs,
        description=f"test payment {command_id}",
        command_id=command_id,
        submission_id=submission_id,
        dedup_seconds=dedup_seconds,
    )


def raw(sim: Simulator) -> httpx.AsyncClient:
    """A bare client to the simulator: for requests billing's own clients would never send."""
    return httpx.AsyncClient(transport=asgi_transport(sim), base_url=LEDGER_URL)


async def raw_post(sim: Simulator, path: str, body: object, **params: int) -> httpx.Response:
    """A request to the simulated Ledger API as any client could send it (the answer unchecked)."""
    async with raw(sim) as client:
        return await client.post(path, json=body, params=params, headers=AUTH)


@pytest.fixture(name="clock")
def clock_fixture() -> ManualClock:
    return ManualClock()


@pytest.fixture(name="sim")
def sim_fixture(clock: ManualClock) -> Simulator:
    return new_sim(clock)


@pytest.fixture(name="canton")
async def canton_fixture(sim: Simulator) -> AsyncIterator[Canton]:
    async with open_clients(sim) as clients:
        yield clients


@pytest.fixture(name="specs", scope="module")
def specs_fixture() -> dict[str, OpenAPI]:
    """The Ledger API and Scan OpenAPI files, loaded once per module."""
    shared = shared_dir()
    config = Config(spec_validator_cls=None)  # the upstream files are not strictly valid (empty `required`)
    return {
        "ledger": OpenAPI.from_file_path(str(shared / LEDGER_SPEC), config=config),
        "scan": OpenAPI.from_file_path(str(shared / SCAN_SPEC), config=config),
    }


@asynccontextmanager
async def adapter_on(
    sim: Simulator, clock: Callable[[], datetime], *, dedup_seconds: int = 86400
) -> AsyncIterator[CantonAdapter]:
    """The product's adapter over ``sim`` (paying APP), on ``clock``."""
    endpoints = Endpoints(ledger_url=LEDGER_URL, scan_url=SCAN_URL, timeout=5)
    async with open_canton(
        endpoints,
        lambda http: StaticToken(sim.static_token),
        receiver=APP,
        dedup_seconds=dedup_seconds,
        clock=clock,
        transport=asgi_transport(sim),
    ) as port:
        yield port
