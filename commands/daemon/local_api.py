"""The daemon's local API: how other `billing` processes write while `start` runs.

RocksDB allows one writer, so `pay`, `pay-all` and `restart` in another terminal send
their `PaymentRequested` events here; reads never come here (they follow the log as a
RocksDB secondary). Loopback only, bearer token required; the token lives in the state
directory with owner-only permissions, so only the daemon's OS user can read it.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from pipeline.events import PaymentRequested, Recorded
from pipeline.log.port import EventLog

TOKEN_FILE = "api-token"
MAX_BODY = 8 * 1024 * 1024


class RequestBatch(msgspec.Struct, forbid_unknown_fields=True):
    """Inbound commands are strict: an unknown field is a client bug, not a new version."""

    requests: list[PaymentRequested]


_batch = msgspec.json.Decoder(RequestBatch)


def api_token(state_dir: Path, configured: str | None) -> str:
    """The configured token, else the one in the state dir (created on first use, mode 0600)."""
    if configured:
        return configured
    path = state_dir / TOKEN_FILE
    if not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(32))
    return path.read_text().strip()


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
