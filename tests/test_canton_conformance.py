"""Every request the Canton clients send, and every answer the simulator gives them, validates
against the vendored OpenAPI files (openapi-core), recorded on the wire between the two.

Covers the clients of `pipeline/canton/ledger.py` and `pipeline/canton/scan.py` and the simulator
package `pipeline/simulator/` (tests/test_spec_conformance.py covers the processor's whole flow).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from pipeline.canton.auth import StaticToken
from pipeline.canton.errors import CantonError
from pipeline.canton.hosting import PartyDirectory
from pipeline.canton.scan_context import choose_round, disclose, open_round_contracts, read_rounds
from pipeline.canton.setup import create_preapproval_commands, renew_preapproval_commands
from pipeline.canton.transfers import send_commands
from pipeline.simulator.app import Simulator
from pipeline.simulator.clock import ManualClock
from pipeline.simulator.faults import Fault
from tests.canton_fixtures import (
    ALICE,
    APP,
    BOB,
    CAROL,
    Canton,
    new_sim,
    open_clients,
    payment,
    specs_fixture,  # noqa: F401 - registers the fixture
)

Exchange = tuple[httpx.Request, int, bytes, str]


class Recording(httpx.AsyncBaseTransport):
    """Passes every exchange to the simulator and keeps a copy of both sides."""

    def __init__(self, app: Any) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.exchanges: list[Exchange] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        self.exchanges.append((request, response.status_code, body, response.headers.get("content-type", "")))
        return httpx.Response(response.status_code, headers=response.headers, content=body)


def mock_request(request: httpx.Request) -> tuple[str, MockRequest]:
    path = request.url.path
    kind = "scan" if path.startswith("/api/scan/") else "ledger"
    host = "https://example.com" if kind == "scan" else "http://localhost"  # scan.yaml's server is …/api/scan
    content_type = request.headers.get("content-type", "application/json").split(";")[0]
    return kind, MockRequest(
        host,
        request.method.lower(),
        path,
        args=dict(request.url.params),
        data=request.content or None,
        headers=dict(request.headers),
        content_type=content_type,
    )


async def exercise_everything(sim: Simulator, recording: Recording) -> None:
    """Every call the clients make, on success and on the error paths that have a spec'd answer."""
    async with open_clients(sim, transport=recording, page_size=2) as c:
        await _payments(c)
        await _lookups(c)
        await _setup(c)
        await _hosting(c)
    async with open_clients(sim, transport=recording, auth=lambda http: StaticToken("wrong")) as c:
        with pytest.raises(CantonError):
            await c.ledger.ledger_end()  # 401


async def _payments(c: Canton) -> None:
    command = await payment(c, ALICE, "25.5", "pay-1")  # ledger end, paged ACS, the whole Scan context
    stale = await payment(c, ALICE, "1", "pay-stale")  # the same inputs, spent by pay-1 first
    await c.ledger.submit_and_wait(command)
    with pytest.raises(CantonError):
        await c.ledger.submit_and_wait(command)  # 409 DUPLICATE_COMMAND
    with pytest.raises(CantonError):
        await c.ledger.submit_and_wait(stale)  # 404 LOCAL_VERDICT_INACTIVE_CONTRACTS, a failed completion
    c.sim.inject(Fault.TIMEOUT_AFTER_COMMIT)
    with pytest.raises(CantonError):
        await c.ledger.submit_and_wait(await payment(c, ALICE, "2", "pay-2"))  # 504 after committing
    ctx = await c.context.get()
    [carol] = await c.ledger.amulets(CAROL)
    with pytest.raises(CantonError):  # 400 DAML_FAILURE insufficient funds
        await c.ledger.submit_and_wait(
            send_commands(
                ctx,
                sender=CAROL,
                amount=Decimal(50),
                inputs=[carol.contract_id],
                description=None,
                command_id="pay-3",
                submission_id="s-3",
                dedup_seconds=60,
            )
        )


async def _lookups(c: Canton) -> None:
    first = c.sim.transfers()[0]
    assert await c.ledger.find_completion(ALICE, "pay-2", begin_exclusive=0) is not None
    assert await c.ledger.update_by_id(first.update_id, party=ALICE, effects=True) is not None
    assert await c.ledger.update_by_offset(first.offset, party=APP) is not None
    assert await c.ledger.update_by_id("1220" + "0" * 64, party=ALICE) is None  # 404 UPDATE_NOT_FOUND
    assert await c.scan.update_by_id(first.update_id) is not None
    assert await c.scan.update_by_id("1220" + "0" * 64) is None  # 404 ErrorResponse
    page = await c.scan.updates(page_size=1)
    await c.scan.updates(page_size=5, after=page.next_after)
    assert await c.scan.transfer_preapproval(ALICE) is None  # 404
    assert await c.scan.featured_app_right(ALICE) is None  # {}


async def _setup(c: Canton) -> None:
    dso = await c.scan.dso()
    chosen = choose_round(
        read_rounds(open_round_contracts(await c.scan.open_and_issuing_mining_rounds())),
        c.sim.clock(),
    )
    sync = dso.amulet_rules.domain_id or ""
    assert chosen is not None
    await c.ledger.submit_and_wait(
        create_preapproval_commands(
            amulet_rules=disclose(dso.amulet_rules.contract, sync),
            open_round=disclose(chosen.contract, sync),
            party=APP,
            inputs=[h.contract_id for h in await c.ledger.amulets(APP)],
            expires_at=c.sim.clock() + timedelta(days=30),
            dso_party=dso.dso_party_id,
            command_id="setup",
            submission_id="s-setup",
            dedup_seconds=600,
        )
    )


async def _hosting(c: Canton) -> None:
    """The user and party reads of `pipeline/canton/hosting.py`, a renewal, and the ledger's refusals."""
    directory = PartyDirectory(c.ledger.http, user_id=None, clock=c.sim.clock)
    c.sim.host_elsewhere(BOB)
    c.sim.revoke_act_as(CAROL)
    found = await directory.standings([APP, ALICE, BOB, CAROL])
    assert [p for p, s in found.items() if not s.chargeable] == [BOB, CAROL]
    ctx = await c.context.get()
    preapproval = await c.scan.transfer_preapproval(APP)
    assert preapproval is not None
    await c.ledger.submit_and_wait(
        renew_preapproval_commands(
            preapproval_id=preapproval.contract.contract_id,
            amulet_rules=disclose(ctx.amulet_rules, ctx.synchronizer_id),
            open_round=disclose(ctx.open_round.contract, ctx.synchronizer_id),
            party=APP,
            inputs=[h.contract_id for h in await c.ledger.amulets(APP)],
            new_expires_at=c.sim.clock() + timedelta(days=100),  # 70 more days: free
            command_id="renew",
            submission_id="s-renew",
            dedup_seconds=600,
        )
    )
    for sender in (BOB, CAROL):  # 404 NO_SYNCHRONIZER_…, 403 PERMISSION_DENIED
        with pytest.raises(CantonError):
            await c.ledger.submit_and_wait(
                send_commands(
                    ctx,
                    sender=sender,
                    amount=Decimal(1),
                    inputs=["00ab"],
                    description=None,
                    command_id=f"pay-{sender}",
                    submission_id="s",
                    dedup_seconds=60,
                )
            )


def check(specs: dict[str, OpenAPI], exchange: Exchange) -> None:
    sent, status, body, content_type = exchange
    kind, request = mock_request(sent)
    specs[kind].validate_request(request)
    media = content_type.split(";")[0] or "text/plain"
    if kind == "ledger" and status == 400 and media == "application/json":
        # The Ledger API spec declares 400 as text/plain only, but Canton answers categories 8 and 9
        # (DAML_FAILURE...) with HTTP 400 and a JsCantonError (canton-apis.md §6.1): check that body
        # against the `default` response, which is the JsCantonError.
        status = 599
    specs[kind].validate_response(request, MockResponse(body, status_code=status, content_type=media))


async def test_client_requests_and_simulator_answers_match_the_specs(
    specs: dict[str, OpenAPI],
) -> None:
    sim = new_sim(ManualClock())
    recording = Recording(sim)
    await exercise_everything(sim, recording)
    seen = set()
    for exchange in recording.exchanges:
        if exchange[0].url.path != "/oauth/token":  # not part of either API
            check(specs, exchange)
            seen.add(
                (
                    exchange[0].url.path.split("/by-party/")[0].split("/featured-apps/")[0],
                    exchange[1],
                )
            )
    paths = {path for path, _ in seen}
    for needed in (
        "/v2/state/ledger-end",
        "/v2/state/active-contracts",
        "/v2/commands/submit-and-wait",
        "/v2/commands/completions",
        "/v2/updates/update-by-id",
        "/v2/updates/update-by-offset",
        "/api/scan/v0/dso",
        "/api/scan/v0/open-and-issuing-mining-rounds",
        "/api/scan/v0",
        "/api/scan/v0/transfer-preapprovals",
        "/api/scan/v2/updates",
        "/v2/authenticated-user",
        "/v2/users/ledger-api-user/rights",
        f"/v2/parties/{APP}",
    ):
        assert needed in paths, f"{needed} was never exercised"
    statuses = {status for path, status in seen if path == "/v2/commands/submit-and-wait"}
    assert statuses == {200, 400, 403, 404, 409, 504}
    assert any(path.startswith("/api/scan/v2/updates/") for path in paths)


async def test_oauth_requests_and_answers_also_validate(specs: dict[str, OpenAPI]) -> None:
    from pipeline.canton.http import client_credentials

    sim = new_sim(ManualClock())
    recording = Recording(sim)
    async with open_clients(
        sim,
        transport=recording,
        auth=lambda http: client_credentials(
            http, "http://sim.test/oauth/token", "billing", "billing-secret", clock=sim.clock
        ),
    ) as c:
        await c.ledger.ledger_end()
        sim.revoke_tokens()
        await c.ledger.amulets(ALICE)  # 401, new token, repeated
    ledger = [e for e in recording.exchanges if e[0].url.path != "/oauth/token"]
    assert [e[1] for e in ledger] == [200, 401, 200, 200]
    for exchange in ledger:
        check(specs, exchange)


def test_the_validator_is_not_vacuous(specs: dict[str, OpenAPI]) -> None:
    """A body without the required commandId, and a Scan answer missing fields, are caught."""
    bad = httpx.Request(
        "POST",
        "http://sim.test/v2/commands/submit-and-wait",
        json={"commands": [], "actAs": ["a::1"]},
        headers={"authorization": "Bearer x"},
    )
    kind, request = mock_request(bad)
    with pytest.raises(Exception, match="commandId"):
        specs[kind].validate_request(request)
    _, dso = mock_request(httpx.Request("GET", "http://sim.test/api/scan/v0/dso"))
    with pytest.raises(Exception):  # noqa: B017 - any validation error will do
        specs["scan"].validate_response(dso, MockResponse(b'{"sv_user": "x"}', status_code=200))
    acs = httpx.Request(
        "POST",
        "http://sim.test/v2/state/active-contracts",
        json={"activeAtOffset": 1},
        headers={"authorization": "Bearer x"},
    )
    _, request = mock_request(acs)
    # A CreatedEvent without createArgument, createdAt and other required fields:
    event = b'{"offset": 1, "nodeId": 0, "contractId": "c", "templateId": "t"}'
    answer = (
        b'[{"contractEntry": {"JsActiveContract": {"createdEvent": '
        + event
        + (b', "synchronizerId": "s", "reassignmentCounter": 0}}}]')
    )
    with pytest.raises(Exception):  # noqa: B017
        specs["ledger"].validate_response(request, MockResponse(answer, status_code=200))
