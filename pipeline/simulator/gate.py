"""What a request passes before the node reads it: its bearer token, the fault plan, its body.

Bodies that cannot be decoded get 400 text/plain, as the JSON Ledger API answers them
(json-ledger-api-openapi.yaml); a `Rejection` raised by a read becomes its `JsCantonError`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from pipeline.simulator.faults import AFTER_COMMIT, Fault, Planned
from pipeline.simulator.model import Rejection
from pipeline.simulator.node import Node
from pipeline.simulator.responses import bad_body, canton_error, fault_answer, parse_json, unauthenticated

Handler = Callable[[Request], Awaitable[Response]]
Body = dict[str, Any]
Read = Callable[[Node, Request, str, Body], Response]
REQUIRED = {
    "submit": ("commands", "commandId", "actAs"),
    "active-contracts": ("activeAtOffset",),
    "completions": ("parties",),
    "updates": ("beginExclusive",),
    "update-by-id": ("updateId", "updateFormat"),
    "update-by-offset": ("offset", "updateFormat"),
}


def authenticated_user(node: Node, request: Request) -> str | None:
    """The ledger user the request's bearer token stands for, or None."""
    return node.user_of(request.headers.get("authorization", ""))


async def gate(node: Node, endpoint: str, *, hold: bool = False) -> tuple[Planned | None, Response | None]:
    """Count the request and apply its fault: an early answer, or the fault to apply later.

    With ``hold`` the caller sleeps out a latency fault itself (submit does, while it
    holds the change id in flight).
    """
    node.requests[endpoint] += 1
    planned = node.faults.draw(endpoint)
    if planned is None:
        return None, None
    if planned.fault is Fault.LATENCY:
        if not hold:
            await asyncio.sleep(planned.delay)
        return planned, None
    if endpoint == "submit" and planned.fault in AFTER_COMMIT:
        return planned, None  # applied once the command has committed
    return planned, fault_answer(planned.fault)


def guarded(node: Node, endpoint: str, read: Read) -> Handler:
    """Auth, fault, body decoding, then the read itself."""

    async def handle(request: Request) -> Response:
        user = authenticated_user(node, request)
        if user is None:
            return unauthenticated()
        _, early = await gate(node, endpoint)
        if early is not None:
            return early
        body = await read_body(request, endpoint) if request.method == "POST" else {}
        if isinstance(body, Response):
            return body
        try:
            return read(node, request, user, body)
        except Rejection as rejection:
            return canton_error(rejection)

    return handle


async def read_body(request: Request, endpoint: str) -> Body | Response:
    """The request's JSON object with the fields ``endpoint`` requires, or the 400 answering it."""
    try:
        body = parse_json(await request.body())
    except ValueError as err:
        return bad_body(str(err))
    if not isinstance(body, dict):
        return bad_body("expected a JSON object")
    missing = [k for k in REQUIRED.get(endpoint, ()) if k not in body]
    return bad_body(f"missing required field(s) {', '.join(missing)}") if missing else body
