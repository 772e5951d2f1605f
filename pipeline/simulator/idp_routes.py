"""The identity provider's token endpoint: `POST /oauth/token`, RFC 6749 client credentials.

Billing's OAuth mode fetches its bearer token here; the node accepts the tokens it
issues until they expire (`Node.user_of`).
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pipeline.simulator.gate import Handler, gate
from pipeline.simulator.node import Node


def routes(node: Node) -> list[Route]:
    return [Route("/oauth/token", _token(node), methods=["POST"])]


def _token(node: Node) -> Handler:
    """Form-encoded client credentials in, a bearer token and its lifetime out."""

    async def handle(request: Request) -> Response:
        _, early = await gate(node, "token")
        if early is not None:
            return early
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode(errors="replace")).items()}
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, 400)
        client, secret = form.get("client_id", ""), form.get("client_secret", "")
        if client not in node.oauth_clients or node.oauth_clients[client] != secret:
            return JSONResponse({"error": "invalid_client"}, 401)
        token, lifetime = node.issue_token(client)
        return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": lifetime})

    return handle
