"""The daemon's local API: how other `billing` processes write while `start` runs.

RocksDB allows one writer, so `pay`, `pay-all` and `restart` in another terminal send
their `PaymentRequested` events here; reads never come here (they follow the log as a
RocksDB secondary). Loopback only, bearer token required; the token lives in the state
directory with owner-only permissions, so only the daemon's OS user can read it.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from commands.services.daemon_api import RequestBatch
from pipeline.events import PaymentRequested, Recorded
from pipeline.log.port import EventLog

MAX_BODY = 8 * 1024 * 1024
_batch = msgspec.json.Decoder(RequestBatch)


AuditRow = Callable[[Recorded], dict[str, Any]]
Submit = Callable[[list[PaymentRequested]], Awaitable[list[int]]]


def make_app(log: EventLog, token: str, submit: Submit, audit_row: AuditRow) -> Starlette:
    """The ASGI app. ``submit`` appends requests (the daemon's own log writer)."""

    def authorised(headers: Any, query: Any = None) -> bool:
        given = headers.get("authorization", "").removeprefix("Bearer ").strip()
        given = given or (query or {}).get("token", "")
        return hmac.compare_digest(given.encode(), token.encode())

    async def health(request: Request) -> Response:
        if not authorised(request.headers):
            return _denied()
        return JSONResponse({"status": "ok", "last_offset": await log.last_offset()})

    async def requests(request: Request) -> Response:
        if not authorised(request.headers):
            return _denied()
        body = await request.body()
        if len(body) > MAX_BODY:
            return JSONResponse({"error": f"body over {MAX_BODY} bytes; send smaller batches"}, 413)
        try:
            batch = _batch.decode(body)
        except msgspec.DecodeError as err:
            return JSONResponse({"error": f"invalid request batch: {err}"}, 400)
        offsets = await submit(batch.requests)
        return JSONResponse({"offsets": offsets})

    async def audit(socket: WebSocket) -> None:
        if not authorised(socket.headers, socket.query_params):
            await socket.close(code=4401, reason="missing or wrong token")
            return
        await socket.accept()
        start = int(socket.query_params.get("from", "0"))
        try:
            async for record in log.follow(start):
                await socket.send_text(msgspec.json.encode(audit_row(record)).decode())
        except WebSocketDisconnect:
            return

    return Starlette(
        routes=[
            Route("/v1/health", health),
            Route("/v1/requests", requests, methods=["POST"]),
            WebSocketRoute("/v1/audit", audit),
        ]
    )


def _denied() -> Response:
    return JSONResponse({"error": "missing or wrong token (see BILLING_API_TOKEN)"}, 401)
