"""Starlette routes of the simulated JSON Ledger API v2 (and a client-credentials token endpoint).

Same paths, field names and status codes as json-ledger-api-openapi.yaml: bodies that
cannot be decoded get 400 text/plain, everything else that fails a `JsCantonError`
with the status of its category.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pipeline.simulator import wire
from pipeline.simulator.choices import execute
from pipeline.simulator.faults import Fault, Planned
from pipeline.simulator.model import Rejection, iso, template_matches
from pipeline.simulator.refusals import (
    acs_token_start,
    check_active_at,
    check_completions_from,
    list_page,
)
from pipeline.simulator.responses import (
    DroppedResponse,
    backpressure,
    bad_body,
    canton_error,
    fault_error,
    ok,
    parse_json,
    proxy_page,
    unauthenticated,
)
from pipeline.simulator.update_stream import updates

if TYPE_CHECKING:
    from pipeline.simulator.app import Simulator

Handler = Callable[[Request], Awaitable[Response]]
REQUIRED = {
    "submit": ("commands", "commandId", "actAs"),
    "active-contracts": ("activeAtOffset",),
    "completions": ("parties",),
    "updates": ("beginExclusive",),
    "update-by-id": ("updateId", "updateFormat"),
    "update-by-offset": ("offset", "updateFormat"),
}


def routes(sim: Simulator) -> list[Route]:
    return [
        Route("/v2/state/ledger-end", _guarded(sim, "ledger-end", _ledger_end), methods=["GET"]),
        Route(
            "/v2/state/active-contracts",
            _guarded(sim, "active-contracts", _active_contracts),
            methods=["POST"],
        ),
        Route("/v2/commands/submit-and-wait", _submit(sim), methods=["POST"]),
        Route("/v2/commands/completions", _guarded(sim, "completions", _completions), methods=["POST"]),
        Route("/v2/updates", _guarded(sim, "updates", _updates), methods=["POST"]),
        Route(
            "/v2/updates/update-by-id",
            _guarded(sim, "update-by-id", _update_by_id),
            methods=["POST"],
        ),
        Route(
            "/v2/updates/update-by-offset",
            _guarded(sim, "update-by-offset", _update_by_offset),
            methods=["POST"],
        ),
    ]


Body = dict[str, Any]
Read = Callable[["Simulator", Request, str, Body], Response]


def _guarded(sim: Simulator, endpoint: str, read: Read) -> Handler:
    """Auth, fault, body decoding, then the read itself."""

    async def handle(request: Request) -> Response:
        user = sim.user_of(request)
        if user is None:
            return unauthenticated()
        _, early = await sim.gate(endpoint)
        if early is not None:
            return early
        body = await _body(request, endpoint) if request.method == "POST" else {}
        if isinstance(body, Response):
            return body
        try:
            return read(sim, request, user, body)
        except Rejection as rejection:
            return canton_error(rejection)

    return handle


async def _body(request: Request, endpoint: str) -> Body | Response:
    try:
        body = parse_json(await request.body())
    except ValueError as err:
        return bad_body(str(err))
    if not isinstance(body, dict):
        return bad_body("expected a JSON object")
    missing = [k for k in REQUIRED.get(endpoint, ()) if k not in body]
    return bad_body(f"missing required field(s) {', '.join(missing)}") if missing else body


def _ledger_end(sim: Simulator, request: Request, user: str, body: Body) -> Response:
    return ok({"offset": sim.ledger.offset})


def _filters(fmt: Body | None) -> tuple[dict[str | None, list[str] | None], bool]:
    """An EventFormat's party (None: any) → template ids (None: wildcard), and verbose."""
    fmt = fmt or {}
    out: dict[str | None, list[str] | None] = {}
    for party, filters in (fmt.get("filtersByParty") or {}).items():
        out[party] = _templates(filters)
    if fmt.get("filtersForAnyParty") is not None:
        out[None] = _templates(fmt["filtersForAnyParty"])
    return out, bool(fmt.get("verbose"))


def _templates(filters: Body | None) -> list[str] | None:
    names = []
    for item in (filters or {}).get("cumulative") or []:
        ident = (item or {}).get("identifierFilter") or {}
        if "TemplateFilter" in ident:
            names.append(ident["TemplateFilter"]["value"]["templateId"])
        elif "WildcardFilter" in ident:
            return None
    return names or None


def _wants_blob(fmt: Body | None) -> bool:
    fmt = fmt or {}
    filters = [*(fmt.get("filtersByParty") or {}).values(), fmt.get("filtersForAnyParty") or {}]
    for item in (i for f in filters for i in (f or {}).get("cumulative") or []):
        ident = (item or {}).get("identifierFilter") or {}
        for kind in ("TemplateFilter", "WildcardFilter"):
            if (ident.get(kind) or {}).get("value", {}).get("includeCreatedEventBlob"):
                return True
    return False


def _active_contracts(sim: Simulator, request: Request, user: str, body: Body) -> Response:
    ledger, at = sim.ledger, int(body["activeAtOffset"])
    if at > ledger.offset:
        raise Rejection(
            "OFFSET_AFTER_LEDGER_END",
            f"activeAtOffset {at} is after the ledger end {ledger.offset}",
            12,
        )
    check_active_at(at, sim.pruned_up_to)
    filters, _ = _filters(body.get("eventFormat") or body.get("filter"))
    sim.hosting.check_readers(user, filters)
    blob = _wants_blob(body.get("eventFormat") or body.get("filter"))
    rows: dict[str, tuple[Any, str]] = {}
    for party, templates in filters.items():
        if party is not None and not sim.hosting.hosted(party):
            continue  # this participant's ACS holds no contract of a party it does not host
        for contract in ledger.active(party=party, at_offset=at):
            if templates is None or any(template_matches(t, contract.template) for t in templates):
                rows.setdefault(contract.contract_id, (contract, party or contract.signatories[0]))
    ordered = sorted(rows.values(), key=lambda r: (r[0].created_offset, r[0].contract_id))
    start = acs_token_start(body.get("streamContinuationToken"), at)
    page = list_page(ordered[start:], request.query_params.get("limit"), sim.list_limit)
    return ok(
        [
            wire.active_contract(
                c,
                party=p,
                synchronizer_id=ledger.synchronizer_id,
                blob=blob,
                token=f"sim-acs-{at}-{start + i + 1}",
            )
            for i, (c, p) in enumerate(page)
        ]
    )


def _completions(sim: Simulator, request: Request, user: str, body: Body) -> Response:
    ledger = sim.ledger
    parties, begin = set(body["parties"]), int(body.get("beginExclusive") or 0)
    if not parties:
        raise Rejection("INVALID_ARGUMENT", "parties must not be empty", 8)
    sim.hosting.check_readers(user, parties)
    wanted_user = body.get("userId") or user
    check_completions_from(begin, ledger.offset, sim.pruned_up_to)
    # Completions are appended in offset order: start at the first one after ``begin``.
    start = bisect.bisect_right(ledger.completions, begin, key=lambda c: c.offset)
    mine = (
        c
        for c in itertools.islice(ledger.completions, start, None)
        if c.user_id == wanted_user and parties & set(c.act_as)
    )
    found = list(itertools.islice(mine, sim.list_limit + 1))  # tells full from over the limit
    items = [wire.completion(c, ledger.synchronizer_id) for c in found]
    last = found[-1].offset if found else begin
    if len(items) <= sim.list_limit and ledger.offset > last:
        items.append(wire.checkpoint(ledger.offset, ledger.synchronizer_id, iso(ledger.now())))
    return ok(list_page(items, request.query_params.get("limit"), sim.list_limit))


def _updates(sim: Simulator, request: Request, user: str, body: Body) -> Response:
    return ok(updates(sim, body, request.query_params.get("limit")))


def _update_format(body: Body) -> tuple[set[str] | None, bool]:
    txf = (body.get("updateFormat") or {}).get("includeTransactions")
    if not txf:
        raise Rejection("UPDATE_NOT_FOUND", "no transactions requested by the update format", 11)
    filters, _ = _filters(txf.get("eventFormat"))
    parties = None if None in filters else {p for p in filters if p is not None}
    return parties, txf.get("transactionShape") == "TRANSACTION_SHAPE_LEDGER_EFFECTS"


def _update(sim: Simulator, body: Body, tx: Any, what: str) -> Response:
    parties, effects = _update_format(body)
    # Pointwise lookups drop pruned events (digital-asset/canton .../platform/store/dao/events/
    # TransactionOrReassignmentPointwiseReader.scala, `filterPrunedEvents`): not found, not an error.
    pruned = tx is not None and tx.offset <= sim.pruned_up_to
    if tx is None or pruned or (parties is not None and not parties & tx.witnesses):
        raise Rejection("UPDATE_NOT_FOUND", f"Update not found: {what}", 11)
    doc = wire.transaction(tx, parties, effects=effects, synchronizer_id=sim.ledger.synchronizer_id)
    return ok({"update": {"Transaction": {"value": doc}}})


def _update_by_id(sim: Simulator, request: Request, user: str, body: Body) -> Response:
    return _update(sim, body, sim.ledger.transaction(str(body["updateId"])), f"update id {body['updateId']}")


def _update_by_offset(sim: Simulator, request: Request, user: str, body: Body) -> Response:
    return _update(sim, body, sim.ledger.transaction_at(int(body["offset"])), f"offset {body['offset']}")


def _submit(sim: Simulator) -> Handler:
    async def handle(request: Request) -> Response:
        user = sim.user_of(request)
        if user is None:
            return unauthenticated()
        planned, early = await sim.gate("submit", hold=True)
        if early is not None:
            return early
        body = await _body(request, "submit")
        if isinstance(body, Response):
            return body
        if sim.commands_in_flight >= sim.max_commands_in_flight:
            return canton_error(backpressure())
        change = (str(body.get("userId") or user), frozenset(body["actAs"]), str(body["commandId"]))
        if change in sim.in_flight:
            return fault_error(Fault.IN_FLIGHT)
        sim.in_flight.add(change)
        sim.commands_in_flight += 1
        try:
            delay = sim.submit_latency
            if planned is not None and planned.fault is Fault.LATENCY:
                delay += planned.delay
            if delay > 0:
                await asyncio.sleep(delay)
            return _run(sim, body, change, planned, user)
        finally:
            sim.in_flight.discard(change)
            sim.commands_in_flight -= 1

    return handle


def _run(sim: Simulator, body: Body, change: Any, planned: Planned | None, user: str) -> Response:
    ledger, submission = sim.ledger, body.get("submissionId")
    try:
        sim.hosting.check_submitters(user, body["actAs"])  # before sequencing: no completion
        ledger.check_duplicate(change, body.get("deduplicationPeriod"))
        root, archived, created = execute(ledger, body, list(body["actAs"]))
    except Rejection as rejection:
        if rejection.sequenced:
            ledger.reject(change, submission, rejection)
        return canton_error(rejection)
    tx = ledger.commit(change, submission, root, archived, created)
    fault = planned.fault if planned else None
    if fault is Fault.TIMEOUT_AFTER_COMMIT:
        return fault_error(fault)
    if fault is Fault.PROXY_502_AFTER_COMMIT:
        return proxy_page(502)
    if fault is Fault.DROP_AFTER_COMMIT:
        return DroppedResponse()
    return ok({"updateId": tx.update_id, "completionOffset": tx.offset})


def oauth_token(sim: Simulator) -> Handler:
    """`POST /oauth/token`: RFC 6749 client credentials, form-encoded."""

    async def handle(request: Request) -> Response:
        _, early = await sim.gate("token")
        if early is not None:
            return early
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode(errors="replace")).items()}
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, 400)
        client, secret = form.get("client_id", ""), form.get("client_secret", "")
        if client not in sim.oauth_clients or sim.oauth_clients[client] != secret:
            return JSONResponse({"error": "invalid_client"}, 401)
        token, lifetime = sim.issue_token(client)
        return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": lifetime})

    return handle
