"""Starlette routes of the simulated user and party management of the JSON Ledger API v2.

Shapes from json-ledger-api-openapi.yaml: `GET /v2/authenticated-user` (GetUserResponse),
`GET /v2/users/{user-id}/rights` (ListUserRightsResponse, a user may read its own),
`GET /v2/parties/participant-id`, `GET /v2/parties/{party}?parties=…` (GetPartiesResponse,
``isLocal`` = hosted here) and `GET /v2/parties` (ListKnownPartiesResponse); the party
reads need admin claims, as in Canton (see `hosting.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pipeline.simulator.hosting import permission_denied
from pipeline.simulator.ledger_routes import Body, _guarded
from pipeline.simulator.responses import ok

if TYPE_CHECKING:
    from pipeline.simulator.app import Simulator


def routes(sim: Simulator) -> list[Route]:
    return [
        Route("/v2/authenticated-user", _guarded(sim, "users", _me), methods=["GET"]),
        Route("/v2/users/{user_id}/rights", _guarded(sim, "users", _rights), methods=["GET"]),
        Route("/v2/parties/participant-id", _guarded(sim, "parties", _participant), methods=["GET"]),
        Route("/v2/parties/{party}", _guarded(sim, "parties", _parties), methods=["GET"]),
        Route("/v2/parties", _guarded(sim, "parties", _parties), methods=["GET"]),
    ]


def _me(sim: Simulator, request: Request, user: str, body: Body) -> Response:
    return ok({"user": {"id": user, "isDeactivated": False, "identityProviderId": ""}})


def _rights(sim: Simulator, request: Request, user: str, body: Body) -> Response:
    wanted = request.path_params["user_id"]
    if wanted != user and user not in sim.hosting.admins:
        raise permission_denied()
    return ok({"rights": sim.hosting.rights(wanted)})


def _participant(sim: Simulator, request: Request, user: str, body: Body) -> Response:
    if user not in sim.hosting.admins:
        raise permission_denied()
    return ok({"participantId": sim.hosting.participant_id})


def _parties(sim: Simulator, request: Request, user: str, body: Body) -> Response:
    if user not in sim.hosting.admins:
        raise permission_denied()
    first = request.path_params.get("party")
    asked = [first, *request.query_params.getlist("parties")] if first else sim.hosting.known()
    details = [
        {"party": p, "isLocal": sim.hosting.hosted(p), "identityProviderId": ""}
        for p in dict.fromkeys(asked)
        if p in sim.hosting.known()
    ]
    return ok({"partyDetails": details} if first else {"partyDetails": details, "nextPageToken": ""})
