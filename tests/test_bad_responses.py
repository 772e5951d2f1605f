"""Bad Canton and Scan answers, generated: every client call returns its type or a CantonError.

Real answers are first recorded from the simulator for every call the clients make; then an
`httpx.MockTransport` serves them back mutated (a field removed, a value of the wrong type,
a wrong status, non-JSON, HTML, an empty or a huge body). Each call must either succeed or
raise a `CantonError` whose one-line message names the service; anything else is a bug.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.canton.auth import StaticToken
from pipeline.canton.errors import CantonError
from pipeline.canton.http import Http, ReadRetry, asgi_transport, make_client
from pipeline.canton.ledger import LedgerApi
from pipeline.canton.scan import ScanApi
from pipeline.canton.scan_context import ScanContextCache
from pipeline.canton.types import JsCommands
from pipeline.canton.verification import find_transfer
from pipeline.simulator.clock import ManualClock
from tests.bad_inputs import tried
from tests.canton_fixtures import ALICE, APP, LEDGER_URL, SCAN_URL, TOKEN, new_sim, open_clients, payment

MAX_MESSAGE = 1200
Recorded = dict[tuple[str, str], bytes]  # (method, path) -> the simulator's real body


class Clients:
    def __init__(self, ledger: LedgerApi, scan: ScanApi, clock: ManualClock) -> None:
        self.ledger, self.scan, self.clock = ledger, scan, clock
        self.context = ScanContextCache(scan, receiver=APP, clock=clock)


async def _record() -> tuple[Recorded, JsCommands, str, ManualClock]:
    """Drive every call once against the simulator; keep each answer's body by path."""
    sim = new_sim(ManualClock())
    seen: Recorded = {}
    inner = asgi_transport(sim)

    class Recording(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            response = await inner.handle_async_request(request)
            body = await response.aread()
            seen[(request.method, request.url.path)] = body
            return httpx.Response(response.status_code, headers=response.headers, content=body)

    async with open_clients(sim, transport=Recording()) as c:
        commands = await payment(c, ALICE, "7", "pay-bad-input")
        result = await c.ledger.submit_and_wait(commands)
        await c.ledger.find_completion(ALICE, "pay-bad-input", begin_exclusive=0)
        await c.ledger.update_by_id(result.update_id, party=ALICE)
        await c.ledger.update_by_offset(result.completion_offset, party=ALICE)
        await c.scan.update_by_id(result.update_id)
        await c.scan.updates(page_size=10)
    assert isinstance(sim.clock, ManualClock)
    return seen, commands, result.update_id, sim.clock


RECORDED, COMMANDS, UPDATE_ID, CLOCK = asyncio.run(_record())


async def _find(c: Clients) -> object:
    update = await c.scan.update_by_id(UPDATE_ID)
    return update and find_transfer(update, sender=ALICE, receiver=APP, amount=Decimal(7))


# call name -> (the request path whose answer is spoiled, the call)
CALLS: dict[str, tuple[str, Callable[[Clients], Awaitable[object]]]] = {
    "ledger-end": ("/v2/state/ledger-end", lambda c: c.ledger.ledger_end()),
    "active-contracts": ("/v2/state/active-contracts", lambda c: c.ledger.amulets(ALICE)),
    "submit-and-wait": ("/v2/commands/submit-and-wait", lambda c: c.ledger.submit_and_wait(COMMANDS)),
    "completions": (
        "/v2/commands/completions",
        lambda c: c.ledger.find_completion(ALICE, "pay-bad-input", begin_exclusive=0),
    ),
    "update-by-id": ("/v2/updates/update-by-id", lambda c: c.ledger.update_by_id(UPDATE_ID, party=ALICE)),
    "update-by-offset": ("/v2/updates/update-by-offset", lambda c: c.ledger.update_by_offset(1, party=ALICE)),
    "scan dso": ("/api/scan/v0/dso", lambda c: c.context.get()),
    "scan rounds": ("/api/scan/v0/open-and-issuing-mining-rounds", lambda c: c.context.get()),
    "scan featured app": (f"/api/scan/v0/featured-apps/{APP}", lambda c: c.context.get()),
    "scan preapproval": (f"/api/scan/v0/transfer-preapprovals/by-party/{APP}", lambda c: c.context.get()),
    "scan update": (f"/api/scan/v2/updates/{UPDATE_ID}", _find),
    "scan updates": ("/api/scan/v2/updates", lambda c: c.scan.updates(page_size=10)),
}


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a JSON document."""
    out = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            out += _paths(value, (*prefix, i))
    return out


def _spoil(doc: Any, path: tuple[Any, ...], value: Any, remove: bool) -> Any:
    if not path:
        return value
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    if remove and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["", "NaN", "1e999999", "-1", "2026-13-45T99:00:00Z", "::", "x" * 5000])
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=5), inner, max_size=2),
    max_leaves=4,
)
RAW_BODIES = [
    b"",
    b"not json",
    b"<html><body>502 Bad Gateway</body></html>",
    b"{",
    b"\xff\xfe",
    b"null",
    b"[]",
    b'{"code": 3, "errorCategory": "x"}',
    b'{"error": "' + b"e" * 20_000 + b'"}',
    b"[" + b"1," * 1_000_000 + b"1]",
    b'"' + b"a" * 3_000_000 + b'"',
]


class Spoiled(httpx.AsyncBaseTransport):
    """Serves the recorded answers, with the target path's answer replaced by ``answer``."""

    def __init__(self, target: str, status: int, body: bytes) -> None:
        self.target, self.status, self.body = target, status, body

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == self.target:
            return httpx.Response(self.status, content=self.body, headers={"content-type": "application/json"})
        known = RECORDED.get((request.method, path))
        if known is None:  # e.g. the featured-app lookup of a provider spoiled into another party
            return httpx.Response(404, content=b'{"error": "not found"}')
        return httpx.Response(200, content=known)


async def _call(name: str, status: int, body: bytes) -> None:
    target, call = CALLS[name]
    transport = Spoiled(target, status, body)
    retry = ReadRetry(attempts=2, base_delay=0, max_delay=0)

    async def no_sleep(_: float) -> None:
        return None

    async with make_client(LEDGER_URL, 5, transport) as lc, make_client(SCAN_URL, 5, transport) as sc:
        clients = Clients(
            LedgerApi(Http(lc, "the Ledger API", StaticToken(TOKEN), retry=retry, sleep=no_sleep)),
            ScanApi(Http(sc, "Scan", retry=retry, sleep=no_sleep)),
            CLOCK,
        )
        try:
            await call(clients)
        except CantonError as err:
            text = str(err)
            assert "Ledger API" in text or "Scan" in text or "scan" in text, f"{name}: unnamed service: {text}"
            assert len(text) <= MAX_MESSAGE, f"{name}: a {len(text)}-character message"
            assert "\n" not in text, f"{name}: a multi-line error message"


def _run(name: str, status: int, body: bytes) -> None:
    tried(f"Canton/Scan answers: {name}")
    asyncio.run(_call(name, status, body))


@settings(max_examples=500, deadline=None)
@given(
    name=st.sampled_from(sorted(CALLS)),
    data=st.data(),
    value=json_values,
    remove=st.booleans(),
    status=st.sampled_from([200, 200, 200, 200, 400, 404, 409, 500]),
)
def test_a_spoiled_field_in_any_answer(name: str, data: st.DataObject, value: Any, remove: bool, status: int) -> None:
    doc = json.loads(RECORDED[(_method(name), CALLS[name][0])])
    path = data.draw(st.sampled_from(_paths(doc)), label="path")
    _run(name, status, json.dumps(_spoil(doc, path, value, remove)).encode())


@pytest.mark.parametrize("name", sorted(CALLS))
@pytest.mark.parametrize("status", [200, 400, 401, 404, 409, 429, 500, 502, 503, 504])
def test_raw_bodies_with_any_status(name: str, status: int) -> None:
    rng = random.Random(f"{name}{status}")
    for body in rng.sample(RAW_BODIES, 4) if status != 200 else RAW_BODIES:
        _run(name, status, body)


def _method(name: str) -> str:
    target = CALLS[name][0]
    return "POST" if ("POST", target) in RECORDED else "GET"


def _spoiled(name: str, path: tuple[Any, ...], value: Any) -> bytes:
    doc = json.loads(RECORDED[(_method(name), CALLS[name][0])])
    return json.dumps(_spoil(doc, path, value, False)).encode()


def _events_path(index: int, *rest: str) -> tuple[Any, ...]:
    return ("events_by_id", f"{UPDATE_ID}:{index}", *rest)


#: Answers that once escaped the clients as something other than a CantonError (found by the
#: generated cases above; fixed in pipeline/canton: scan.py, scan_context.py and errors.py).
ONCE_CRASHED: dict[str, tuple[str, Callable[[], bytes]]] = {
    "updates item without update_id": (
        "scan updates",
        lambda: _spoiled("scan updates", ("transactions", 0, "update_id"), None),
    ),
    "updates item without record_time": (
        "scan updates",
        lambda: _spoiled("scan updates", ("transactions", 0), {"a": 1}),
    ),
    "update amount not an object": (
        "scan update",
        lambda: _spoiled("scan update", _events_path(2, "create_arguments", "amount"), True),
    ),
    "update round number not a number": (
        "scan update",
        lambda: _spoiled("scan update", _events_path(2, "create_arguments", "amount", "createdAt", "number"), ""),
    ),
    "rounds ttl beyond any date": (
        "scan rounds",
        lambda: _spoiled("scan rounds", ("time_to_live_in_microseconds",), 2**70),
    ),
    "a 20 kB error text": ("ledger-end", lambda: b'{"error": "' + b"e" * 20_000 + b'"}'),
}


@pytest.mark.parametrize("case", sorted(ONCE_CRASHED))
def test_answers_that_once_crashed_a_client(case: str) -> None:
    name, body = ONCE_CRASHED[case]
    _run(name, 400 if case == "a 20 kB error text" else 200, body())
