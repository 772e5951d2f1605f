"""HTTP routes of the simulator: request parsing and response shapes from the specs."""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pipeline.sim_ledger import TEMPLATES, Contract, SimRejection, Transaction, iso, template_name

if TYPE_CHECKING:
    from pipeline.sim_app import Simulator

Handler = Callable[[Request], Awaitable[Response]]


def _unauthorised() -> JSONResponse:
    return JSONResponse({"code": "UNAUTHENTICATED", "cause": "The command is missing a (valid) JWT token",
                         "context": {}, "errorCategory": 6}, 401)


async def _json(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError as err:
        raise SimRejection(400, "INVALID_ARGUMENT", f"Invalid value for: body ({err})", 8) from err


def _guarded(sim: Simulator, handler: Callable[[Request, str], Awaitable[Response]]) -> Handler:
    async def run(request: Request) -> Response:
        from pipeline.sim_app import canton_error

        user = sim.authorised(request)
        if user is None:
            return _unauthorised()
        try:
            return await handler(request, user)
        except SimRejection as err:
            return canton_error(err)
        except (KeyError, TypeError) as err:
            return Response(f"Invalid value for: body (missing or wrong field {err})", 400,
                            media_type="text/plain")

    return run


def ledger_routes(sim: Simulator) -> list[Route]:
    ledger = sim.ledger

    async def ledger_end(request: Request, user: str) -> Response:
        return JSONResponse({"offset": ledger.offset})

    async def active_contracts(request: Request, user: str) -> Response:
        body = await _json(request)
        limit = int(request.query_params.get("limit", "1000"))
        wanted = _wanted(body)
        if all(names == {"Amulet"} for names in wanted.values()):
            candidates = [c for party in wanted for c in ledger.holdings(party)]  # the common, indexed case
        else:
            candidates = list(ledger.contracts.values())
        rows = [_active_contract(c, ledger.synchronizer_id) for c in candidates if _matches(c, wanted)]
        if len(rows) > limit:
            return JSONResponse({"code": "HTTP_LIST_LIMIT", "cause": "too many elements", "context": {},
                                 "errorCategory": 8}, 413)
        return JSONResponse(rows)

    async def submit(request: Request, user: str) -> Response:
        return await sim.submit(await _json(request), user)

    async def completions(request: Request, user: str) -> Response:
        body = await _json(request)
        parties = set(body["parties"])
        begin = int(body.get("beginExclusive", 0))
        limit = int(request.query_params.get("limit", "1000"))
        found = [c for c in ledger.completions if c.offset > begin and parties & set(c.act_as)][:limit]
        return JSONResponse([{"completionResponse": {"Completion": {"value": _completion(c, sim)}}} for c in found])

    async def update_by_id(request: Request, user: str) -> Response:
        body = await _json(request)
        return _update(ledger.transaction(update_id=body["updateId"]), sim)

    async def update_by_offset(request: Request, user: str) -> Response:
        body = await _json(request)
        return _update(ledger.transaction(offset=int(body["offset"])), sim)

    return [
        Route("/v2/state/ledger-end", _guarded(sim, ledger_end)),
        Route("/v2/state/active-contracts", _guarded(sim, active_contracts), methods=["POST"]),
        Route("/v2/commands/submit-and-wait", _guarded(sim, submit), methods=["POST"]),
        Route("/v2/commands/completions", _guarded(sim, completions), methods=["POST"]),
        Route("/v2/updates/update-by-id", _guarded(sim, update_by_id), methods=["POST"]),
        Route("/v2/updates/update-by-offset", _guarded(sim, update_by_offset), methods=["POST"]),
    ]


def _wanted(body: dict[str, Any]) -> dict[str, set[str] | None]:
    """party -> template names asked for (None = all), from eventFormat (or the deprecated filter)."""
    fmt = body.get("eventFormat") or body.get("filter") or {}
    out: dict[str, set[str] | None] = {}
    for party, filters in (fmt.get("filtersByParty") or {}).items():
        names: set[str] = set()
        for cumulative in (filters or {}).get("cumulative") or []:
            template = cumulative.get("identifierFilter", {}).get("TemplateFilter")
            if template:
                names.add(template_name(template["value"]["templateId"]))
        out[party] = names or None
    return out


def _matches(c: Contract, wanted: dict[str, set[str] | None]) -> bool:
    parties = set(c.signatories) | {c.payload.get("owner")}
    return any(names is None or c.template in names for party, names in wanted.items() if party in parties)


def _active_contract(c: Contract, synchronizer: str) -> dict[str, Any]:
    event = {"offset": c.offset, "nodeId": 0, "contractId": c.contract_id, "templateId": c.template_id,
             "createArgument": c.payload, "createdAt": iso(c.created_at), "packageName": "splice-amulet",
             "representativePackageId": c.template_id.split(":")[0], "acsDelta": True,
             "witnessParties": c.signatories, "signatories": c.signatories, "observers": []}
    return {"contractEntry": {"JsActiveContract": {"createdEvent": event, "synchronizerId": synchronizer,
                                                   "reassignmentCounter": 0}}}


def _completion(c: Any, sim: Simulator) -> dict[str, Any]:
    out: dict[str, Any] = {"commandId": c.command_id, "userId": c.user_id, "offset": c.offset, "actAs": c.act_as,
                           "synchronizerTime": {"synchronizerId": sim.ledger.synchronizer_id,
                                                "recordTime": iso(sim.ledger.clock())}}
    if c.update_id:
        out["updateId"] = c.update_id
    if c.submission_id:
        out["submissionId"] = c.submission_id
    if c.status:
        out["status"] = c.status
    return out


def _update(tx: Transaction | None, sim: Simulator) -> Response:
    if tx is None:
        return JSONResponse({"code": "UPDATE_NOT_FOUND", "cause": "Update not found", "context": {},
                             "errorCategory": 11}, 404)
    value = {"updateId": tx.update_id, "commandId": tx.command_id, "effectiveAt": iso(tx.record_time),
             "offset": tx.offset, "synchronizerId": sim.ledger.synchronizer_id, "recordTime": iso(tx.record_time),
             "events": tx.events}
    return JSONResponse({"update": {"Transaction": {"value": value}}})


def scan_routes(sim: Simulator) -> list[Route]:
    ledger = sim.ledger

    def with_state(c: Contract) -> dict[str, Any]:
        return {"contract": c.scan_json(), "domain_id": ledger.synchronizer_id}

    async def dso(request: Request) -> Response:
        rounds = ledger.open_rounds()
        return JSONResponse({
            "sv_user": "sv", "sv_party_id": "sv::1220" + "5" * 60, "dso_party_id": ledger.dso_party,
            "voting_threshold": 1, "latest_mining_round": with_state(rounds[-1]),
            "amulet_rules": with_state(ledger.amulet_rules), "dso_rules": with_state(ledger.amulet_rules),
            "sv_node_states": [],
        })

    async def rounds(request: Request) -> Response:
        body = await request.json()
        cached = set(body.get("cached_open_mining_round_contract_ids") or [])
        open_rounds = {c.contract_id: ({"domain_id": ledger.synchronizer_id} if c.contract_id in cached
                                       else with_state(c)) for c in ledger.open_rounds()}
        ttl = int(ledger.round_ttl().total_seconds() * 1_000_000)
        return JSONResponse({"open_mining_rounds": open_rounds, "issuing_mining_rounds": {},
                             "time_to_live_in_microseconds": max(ttl, 1_000_000)})

    async def featured(request: Request) -> Response:
        right = ledger.featured(request.path_params["provider"])
        return JSONResponse({"featured_app_right": right.scan_json()} if right else {})

    async def preapproval(request: Request) -> Response:
        found = ledger.preapproval(request.path_params["party"])
        if found is None:
            return JSONResponse({"error": f"No TransferPreapproval found for party {request.path_params['party']}"},
                                404)
        return JSONResponse({"transfer_preapproval": with_state(found)})

    async def update(request: Request) -> Response:
        tx = ledger.transaction(update_id=request.path_params["update_id"])
        if tx is None or not sim.scan_sees(tx):
            return JSONResponse({"error": f"Update {request.path_params['update_id']} not found"}, 404)
        return JSONResponse(scan_update(tx, sim))

    async def updates(request: Request) -> Response:
        body = await request.json()
        after = (body.get("after") or {}).get("after_record_time")
        items = [scan_update(t, sim) for t in ledger.transactions if after is None or iso(t.record_time) > after]
        return JSONResponse({"transactions": items[: int(body["page_size"])]})

    return [
        Route("/v0/dso", dso),
        Route("/v0/open-and-issuing-mining-rounds", rounds, methods=["POST"]),
        Route("/v0/featured-apps/{provider}", featured),
        Route("/v0/transfer-preapprovals/by-party/{party}", preapproval),
        Route("/v2/updates/{update_id}", update),
        Route("/v2/updates", updates, methods=["POST"]),
    ]


def scan_update(tx: Transaction, sim: Simulator) -> dict[str, Any]:
    """An UpdateHistoryTransactionV2: the exercise as root, its effects as children."""
    ex = tx.exercised
    root = f"{tx.update_id}:0"
    events: dict[str, Any] = {}
    children = []
    for i, (kind, c) in enumerate(ex["effects"], start=1):
        if kind != "created":
            continue
        event_id = f"{tx.update_id}:{i}"
        children.append(event_id)
        events[event_id] = {"event_type": "created_event", "event_id": event_id, "contract_id": c.contract_id,
                            "template_id": c.template_id, "package_name": "splice-amulet",
                            "create_arguments": c.payload, "created_at": iso(c.created_at),
                            "signatories": c.signatories, "observers": []}
    events[root] = {"event_type": "exercised_event", "event_id": root, "contract_id": ex["contract_id"],
                    "template_id": TEMPLATES[ex["template"]], "package_name": "splice-amulet", "choice": ex["choice"],
                    "choice_argument": ex["argument"], "child_event_ids": children, "exercise_result": {},
                    "consuming": False, "acting_parties": ex["acting"]}
    return {"update_id": tx.update_id, "migration_id": 0, "workflow_id": "", "record_time": iso(tx.record_time),
            "synchronizer_id": sim.ledger.synchronizer_id, "effective_at": iso(tx.record_time),
            "root_event_ids": [root], "events_by_id": events}


def oauth_token(sim: Simulator) -> Handler:
    async def issue(request: Request) -> Response:
        form = await request.form()
        if form.get("grant_type") != "client_credentials" or form.get("client_secret") != sim.static_token:
            return JSONResponse({"error": "invalid_client"}, 401)
        token = "oauth-" + secrets.token_hex(16)
        sim.tokens[token] = sim.ledger.clock() + sim.token_lifetime
        return JSONResponse({"access_token": token, "token_type": "Bearer",
                             "expires_in": int(sim.token_lifetime.total_seconds())})

    return issue
