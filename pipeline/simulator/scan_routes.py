"""Starlette routes of the simulated Scan API (mounted at `/api/scan`), as scan.yaml describes them.

Scan is unauthenticated. Errors are `ErrorResponse` bodies (``{"error": ...}``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pipeline.simulator import wire
from pipeline.simulator.gate import Handler, gate
from pipeline.simulator.model import Contract, digest, iso, parse_time
from pipeline.simulator.node import Node
from pipeline.simulator.responses import ok, parse_json, scan_error

Read = Callable[[Node, Request], Awaitable[Response]]


def routes(node: Node) -> list[Route]:
    return [
        Route("/v0/dso", _guarded(node, "scan-dso", _dso), methods=["GET"]),
        Route(
            "/v0/open-and-issuing-mining-rounds",
            _guarded(node, "scan-rounds", _rounds),
            methods=["POST"],
        ),
        Route(
            "/v0/featured-apps/{provider_party_id}",
            _guarded(node, "scan-featured", _featured),
            methods=["GET"],
        ),
        Route(
            "/v0/transfer-preapprovals/by-party/{party}",
            _guarded(node, "scan-preapproval", _preapproval),
            methods=["GET"],
        ),
        Route("/v2/updates/{update_id}", _guarded(node, "scan-update", _update), methods=["GET"]),
        Route("/v2/updates", _guarded(node, "scan-updates", _updates), methods=["POST"]),
    ]


def _guarded(node: Node, endpoint: str, read: Read) -> Handler:
    async def handle(request: Request) -> Response:
        _, early = await gate(node, endpoint)
        if early is not None:
            return early
        return await read(node, request)

    return handle


async def _json(request: Request) -> Any:
    try:
        return parse_json(await request.body())
    except ValueError as err:
        raise _BadRequest(str(err)) from err


class _BadRequest(ValueError):
    pass


def _dso_rules(node: Node) -> dict[str, Any]:
    # A stand-in DsoRules contract: billing never reads it, the schema requires it.
    ledger = node.ledger
    return {
        "contract": {
            "template_id": ledger.amulet_rules.template_id.replace("AmuletRules:AmuletRules", "DsoRules:DsoRules"),
            "contract_id": "00" + digest("DsoRules", ledger.dso_party),
            "payload": {"dso": ledger.dso_party},
            "created_event_blob": "",
            "created_at": iso(ledger.genesis),
        },
        "domain_id": ledger.synchronizer_id,
    }


async def _dso(node: Node, request: Request) -> Response:
    ledger = node.ledger
    latest = max(ledger.rounds(), key=lambda pair: pair[0].number)[1]
    return ok(
        {
            "sv_user": "sv-operator",
            "sv_party_id": "sv::1220" + digest("sv")[:64],
            "dso_party_id": ledger.dso_party,
            "voting_threshold": 1,
            "latest_mining_round": wire.with_state(latest, ledger.synchronizer_id),
            "amulet_rules": wire.with_state(ledger.amulet_rules, ledger.synchronizer_id),
            "dso_rules": _dso_rules(node),
            "sv_node_states": [],
            "initial_round": "0",
        }
    )


async def _rounds(node: Node, request: Request) -> Response:
    try:
        body = await _json(request)
        cached = set(body["cached_open_mining_round_contract_ids"])
        _ = body["cached_issuing_round_contract_ids"]
    except (_BadRequest, KeyError, TypeError) as err:
        return scan_error(400, f"bad request body: {err}")
    ledger, now = node.ledger, node.clock()
    rounds = ledger.rounds()
    answer = {}
    for _info, contract in rounds:
        # An id the caller already holds comes back without its contract ("you have it").
        entry: dict[str, Any] = {"domain_id": ledger.synchronizer_id}
        if contract.contract_id not in cached:
            entry["contract"] = wire.scan_contract(contract)
        answer[contract.contract_id] = entry
    # Valid until the set changes: the next round is created when the oldest closes.
    next_change = min(info.target_closes_at for info, _ in rounds)
    ttl = max(next_change - now, timedelta(0)) // timedelta(microseconds=1)
    return ok(
        {
            "open_mining_rounds": answer,
            "issuing_mining_rounds": {},
            "time_to_live_in_microseconds": ttl,
        }
    )


async def _featured(node: Node, request: Request) -> Response:
    right = node.ledger.featured_right(request.path_params["provider_party_id"])
    return ok({"featured_app_right": wire.scan_contract(right)} if right else {})


async def _preapproval(node: Node, request: Request) -> Response:
    party = request.path_params["party"]
    found: Contract | None = node.ledger.preapproval_of(party)
    if found is None:
        return scan_error(404, f"No TransferPreapproval found for party: {party}")
    return ok({"transfer_preapproval": wire.with_state(found, node.ledger.synchronizer_id)})


async def _update(node: Node, request: Request) -> Response:
    update_id = request.path_params["update_id"]
    tx = node.ledger.transaction(update_id)
    if tx is None:
        return scan_error(404, f"Transaction with id {update_id} not found")
    return ok(wire.scan_update(tx, node.ledger.synchronizer_id))


async def _updates(node: Node, request: Request) -> Response:
    try:
        body = await _json(request)
        size = int(body["page_size"])
        after = body.get("after")
        cursor = (int(after["after_migration_id"]), parse_time(after["after_record_time"])) if after else None
    except (_BadRequest, KeyError, TypeError, ValueError) as err:
        return scan_error(400, f"bad request body: {err}")
    if size <= 0:
        return scan_error(400, "page_size must be positive")
    txs = [tx for tx in node.ledger.transactions if cursor is None or (0, tx.record_time) > cursor]
    return ok({"transactions": [wire.scan_update(tx, node.ledger.synchronizer_id) for tx in txs[:size]]})
