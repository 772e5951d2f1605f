"""The simulator's HTTP surface (tokens, bad bodies, Scan errors), its fault plan and seeding, and serving
over TCP."""

from __future__ import annotations

import asyncio
import io
import logging
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from pipeline.canton.errors import CantonError, ErrorClass
from pipeline.canton.http import Http, make_client
from pipeline.canton.ledger import LedgerApi
from pipeline.simulator.app import Simulator, seeded
from pipeline.simulator.clock import ManualClock
from pipeline.simulator.faults import ConnectionDropped, Fault, FaultPlan
from pipeline.simulator.responses import quiet_dropped_connections
from pipeline.simulator.serve import serve_async
from tests.canton_fixtures import (  # noqa: F401 - the *_fixture names register fixtures
    ALICE,
    APP,
    AUTH,
    BOB,
    TOKEN,
    canton_fixture,
    clock_fixture,
    new_sim,
    raw,
    sim_fixture,
)

# --- HTTP surface -------------------------------------------------------------------------------


async def test_requests_without_a_valid_token_get_401(sim: Simulator) -> None:
    async with raw(sim) as client:
        none = await client.get("/v2/state/ledger-end")
        wrong = await client.get("/v2/state/ledger-end", headers={"authorization": "Bearer nope"})
        scan = await client.get("/api/scan/v0/dso")  # Scan is public
    assert none.status_code == wrong.status_code == 401 and none.json()["code"] == "UNAUTHENTICATED"
    assert scan.status_code == 200


async def test_the_token_endpoint_speaks_client_credentials(sim: Simulator) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": "billing",
        "client_secret": "billing-secret",
    }
    async with raw(sim) as client:
        good = await client.post("/oauth/token", data=form)
        bad = await client.post("/oauth/token", data=dict(form, client_secret="x"))
        grant = await client.post("/oauth/token", data=dict(form, grant_type="password"))
        used = await client.get(
            "/v2/state/ledger-end",
            headers={"authorization": f"Bearer {good.json()['access_token']}"},
        )
        sim.advance(timedelta(hours=1))  # the token's lifetime
        expired = await client.get(
            "/v2/state/ledger-end",
            headers={"authorization": f"Bearer {good.json()['access_token']}"},
        )
    assert good.status_code == 200 and good.json()["expires_in"] == 3600
    assert (bad.status_code, bad.json()) == (401, {"error": "invalid_client"})
    assert (grant.status_code, grant.json()) == (400, {"error": "unsupported_grant_type"})
    assert used.status_code == 200 and expired.status_code == 401


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'{"commandId": "x"}'])
async def test_undecodable_bodies_get_400_text(sim: Simulator, body: bytes) -> None:
    async with raw(sim) as client:
        answer = await client.post(
            "/v2/commands/submit-and-wait",
            content=body,
            headers={**AUTH, "content-type": "application/json"},
        )
    assert answer.status_code == 400 and answer.headers["content-type"].startswith("text/plain")


async def test_scan_errors_are_error_responses(sim: Simulator) -> None:
    async with raw(sim) as client:
        missing = await client.get(f"/api/scan/v0/transfer-preapprovals/by-party/{BOB}")
        bad = await client.post("/api/scan/v2/updates", json={"page_size": "many"})
    assert missing.status_code == 404 and set(missing.json()) == {"error"}
    assert bad.status_code == 400 and set(bad.json()) == {"error"}


# --- fault plan, seeding, state API ---------------------------------------------------------------


def test_queued_faults_hit_their_endpoint_in_order() -> None:
    plan = FaultPlan(seed=1)
    plan.inject(Fault.PROXY_502, on="ledger-end")
    plan.inject(Fault.IN_FLIGHT, 2)
    assert plan.draw("scan-dso") is None
    assert (planned := plan.draw("submit")) is not None and planned.fault is Fault.IN_FLIGHT
    assert (planned := plan.draw("ledger-end")) is not None and planned.fault is Fault.PROXY_502
    assert plan.draw("submit") is not None and plan.draw("submit") is None and plan.pending == 0


def test_a_fault_everywhere_and_bad_arguments() -> None:
    plan = FaultPlan()
    plan.inject("drop", on="*")
    assert (planned := plan.draw("scan-rounds")) is not None and planned.fault is Fault.DROP
    with pytest.raises(ValueError):
        plan.inject("flood")
    with pytest.raises(ValueError):
        plan.inject(Fault.DROP, on="nowhere")
    with pytest.raises(ValueError):
        plan.set_rate(Fault.DROP, 1.5)


def test_seeding_funds_parties_features_the_app_and_can_preapprove() -> None:
    sim = seeded([(ALICE, Decimal("12.5")), (BOB, Decimal(0))], APP, clock=ManualClock(), preapproval=True)
    assert sim.balances() == {ALICE: Decimal("12.5"), APP: Decimal(100)}
    assert sim.ledger.featured_right(APP) is not None and sim.ledger.preapproval_of(APP) is not None
    bare = seeded([], APP, app_amount=Decimal(0), featured=False)
    assert bare.balances() == {} and bare.ledger.featured_right(APP) is None


def test_advance_needs_a_manual_clock() -> None:
    with pytest.raises(TypeError):
        Simulator(app_party=APP).advance(1)


# --- over TCP -----------------------------------------------------------------------------------


async def test_serving_over_tcp_prints_the_settings_and_drops_connections_for_real() -> None:
    sim = new_sim(ManualClock())
    out, stop, ready = io.StringIO(), asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve_async(sim, "127.0.0.1", 0, out=out, on_ready=lambda url: ready.set(), stop=stop))
    try:
        await asyncio.wait_for(ready.wait(), 10)
        lines = out.getvalue().splitlines()
        base = lines[0].removeprefix("simulator ready on ")
        assert lines[0].startswith("simulator ready on http://127.0.0.1:")
        settings = dict(line.split("=", 1) for line in lines[1:])
        assert settings == {
            "APP_PROVIDER_API_URL": base,
            "SCAN_API_URL": f"{base}/api/scan",
            "APP_PROVIDER_JWT": TOKEN,
            "PARTY_APP": APP,
        }
        await _use_over_tcp(sim, settings)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def _use_over_tcp(sim: Simulator, settings: dict[str, Any]) -> None:
    from pipeline.canton.auth import StaticToken

    async with make_client(settings["APP_PROVIDER_API_URL"], 5) as client:
        ledger = LedgerApi(Http(client, "the Ledger API", StaticToken(settings["APP_PROVIDER_JWT"])))
        assert await ledger.ledger_end() == sim.ledger.offset
        sim.inject(Fault.DROP)
        with pytest.raises(CantonError) as caught:
            await ledger.http.call(
                "POST",
                "/v2/commands/submit-and-wait",
                {"commands": [], "commandId": "c", "actAs": [ALICE]},
            )
    assert (caught.value.kind, caught.value.code) == (ErrorClass.IN_DOUBT, "CONNECTION_LOST")


def test_intended_hang_ups_stay_out_of_the_server_log() -> None:
    """A `drop` fault is not a server error: no traceback per dropped connection."""
    quiet_dropped_connections()
    quiet_dropped_connections()  # idempotent: one filter
    server_log = logging.getLogger("uvicorn.error")
    assert len(server_log.filters) == 1

    def record(err: BaseException) -> logging.LogRecord:
        return server_log.makeRecord(
            "uvicorn.error", logging.ERROR, __file__, 1, "Exception in ASGI application", (), (type(err), err, None)
        )

    assert not server_log.filter(record(ConnectionDropped("on purpose")))
    assert server_log.filter(record(RuntimeError("a real bug")))
