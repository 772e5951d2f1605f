"""The dashboard's HTTP and WebSocket routes (Starlette), mounted at ``/dashboard``.

``/dashboard/login?code=…`` trades a one-time code for the session cookie, then every
other route needs that cookie (or the API token as a bearer header): the page, its live
fragment, the JSON snapshot it is drawn from, and the audit feed WebSocket.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket

from commands.catalogue import Catalogue
from commands.dashboard.auth import Sessions, cookie_header, same_origin
from commands.dashboard.data import Snapshot, feed_item
from commands.dashboard.page import live, page
from commands.errors import CommandError
from pipeline.log.port import EventLog

SnapshotSource = Callable[[], Awaitable[Snapshot]]
_json = msgspec.json.Encoder(decimal_format="string")
_NOT_SIGNED_IN = (
    "<!doctype html><title>billing dashboard</title><p>Open the one-time link that "
    "<code>billing start</code> or <code>billing dashboard</code> printed; each link works once. "
    "For another browser, start <code>billing dashboard</code> again.</p>"
)


class Page(msgspec.Struct, frozen=True, kw_only=True):
    """What the page needs besides the numbers."""

    app_name: str
    chain: str


def dashboard_routes(
    source: SnapshotSource, log: EventLog, catalogue: Callable[[], Catalogue], sessions: Sessions, about: Page
) -> list[BaseRoute]:
    """The routes under ``/dashboard``."""

    async def login(request: Request) -> Response:
        session = sessions.redeem(request.query_params.get("code", ""))
        if session is None:
            return HTMLResponse(_NOT_SIGNED_IN, 401, headers=_private())
        # 303 to a URL without the code, so the spent code is not what the address bar or history keeps
        return RedirectResponse("/dashboard/", 303, headers={**_private(), "set-cookie": cookie_header(session)})

    async def index(request: Request) -> Response:
        if not sessions.allows(request.headers, request.cookies):
            return HTMLResponse(_NOT_SIGNED_IN, 401, headers=_private())
        if isinstance(snap := await current(), Response):
            return snap
        nonce = secrets.token_urlsafe(16)
        html = page(snap, app_name=about.app_name, chain=about.chain, nonce=nonce)
        return HTMLResponse(html, headers={**_private(), "content-security-policy": _policy(nonce)})

    async def fragment(request: Request) -> Response:
        if not sessions.allows(request.headers, request.cookies):
            return HTMLResponse("", 401, headers=_private())
        snap = await current()
        return snap if isinstance(snap, Response) else HTMLResponse(live(snap), headers=_private())

    async def snapshot(request: Request) -> Response:
        if not sessions.allows(request.headers, request.cookies):
            return JSONResponse({"error": "open the dashboard link first, or send the API token as a bearer"}, 401)
        snap = await current()
        if isinstance(snap, Response):
            return snap
        return Response(_json.encode(snap), media_type="application/json", headers=_private())

    async def current() -> Snapshot | Response:
        """The snapshot, or a 503 that says why there is none yet (one line, never a traceback)."""
        try:
            return await source()
        except CommandError as err:
            return JSONResponse({"error": str(err)}, 503, headers=_private())

    async def audit(socket: WebSocket) -> None:
        if not (sessions.allows(socket.headers, socket.cookies) and same_origin(socket.headers)):
            await socket.close(code=4401, reason="not signed in to the dashboard")
            return
        await socket.accept()
        try:
            start = max(0, int(socket.query_params.get("from", "0") or 0))
        except ValueError:
            await socket.close(code=1008, reason="from must be a log offset")
            return

        async def pump() -> None:
            async for record in log.follow(start):
                await socket.send_text(_json.encode(feed_item(record, catalogue())).decode())

        # a closed tab must end the follow at once, not at the next record (an idle log may have none for hours)
        sender = asyncio.create_task(pump())
        try:
            while (await socket.receive())["type"] != "websocket.disconnect":
                pass
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)

    return [
        Route("/login", login),
        Route("/", index),
        Route("/live", fragment),
        Route("/api/snapshot", snapshot),
        WebSocketRoute("/audit", audit),
    ]


def dashboard_app(routes: list[BaseRoute], *others: BaseRoute) -> Starlette:
    """One ASGI app: the dashboard under /dashboard, beside ``others`` (the daemon's API routes)."""
    return Starlette(
        routes=[Route("/", lambda _: RedirectResponse("/dashboard/", 307)), Mount("/dashboard", routes=routes), *others]
    )


def other_routes(app: Starlette) -> list[BaseRoute]:
    """The routes of an existing app (the local API), to serve them beside the dashboard."""
    return list(app.routes)


def _private() -> dict[str, str]:
    return {"cache-control": "no-store", "referrer-policy": "no-referrer", "x-content-type-options": "nosniff"}


def _policy(nonce: str) -> str:
    """Nothing from elsewhere: inline style, our one script, fetch and WebSocket to this origin only."""
    return (
        f"default-src 'none'; style-src 'unsafe-inline'; script-src 'nonce-{nonce}'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
