"""Starlette routes of the simulated user and party management of the JSON Ledger API v2.

Shapes from json-ledger-api-openapi.yaml: `GET /v2/authenticated-user` (GetUserResponse),
`GET /v2/users/{user-id}/rights` (ListUserRightsResponse, a user may read its own),
`GET /v2/parties/participant-id`, `GET /v2/parties/{party}?parties=…` (GetPartiesResponse,
``isLocal`` = hosted here) and `GET /v2/parties` (ListKnownPartiesResponse); the party
reads need admin claims, as in Canton (see `hosting.py`).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pipeline.simulator.gate import Body, guarded
from pipeline.simulator.hosting import permission_denied
from pipeline.simulator.node import Node
from pipeline.simulator.responses import ok


def routes(node: Node) -> list[Route]:
    return [
        Route("/v2/authenticated-user", guarded(node, "users", _me), methods=["GET"]),
        Route("/v2/users/{user_id}/rights", guarded(node, "users", _rights), methods=["GET"]),
        Route("/v2/parties/participant-id", guarded(node, "parties", _participant), methods=["GET"]),
        Route("/v2/parties/{party}", guarded(node, "parties", _parties), methods=["GET"]),
        Route("/v2/parties", guarded(node, "parties", _parties), methods=["GET"]),
    ]


def _me(node: Node, request: Request, user: str, body: Body) -> Response:
    return ok({"user": {"id": user, "isDeactivated": False, "identityProviderId": ""}})


def _rights(node: Node, request: Request, user: str, body: Body) -> Response:
    wanted = request.path_params["user_id"]
    if wanted != user and user not in node.hosting.admins:
        raise permission_denied()
    return ok({"rights": node.hosting.rights(wanted)})


def _participant(node: Node, request: Request, user: str, body: Body) -> Response:
    if user not in node.hosting.admins:
        raise permission_denied()
    return ok({"participantId": node.hosting.participant_id})


def _parties(node: Node, request: Request, user: str, body: Body) -> Response:
    if user not in node.hosting.admins:
        raise permission_denied()
    first = request.path_params.get("party")
    asked = [first, *request.query_params.getlist("parties")] if first else node.hosting.known()
    details = [
        {"party": p, "isLocal": node.hosting.hosted(p), "identityProviderId": ""}
        for p in dict.fromkeys(asked)
        if p in node.hosting.known()
    ]
    return ok({"partyDetails": details} if first else {"partyDetails": details, "nextPageToken": ""})
