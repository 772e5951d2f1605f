"""Wiring of the real Canton clients from the settings (kept in one place)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from commands.context import Context
from commands.errors import ConfigError
from pipeline.canton.adapter import CantonAdapter, Endpoints, open_canton
from pipeline.canton.auth import StaticToken, TokenSource
from pipeline.canton.http import client_credentials

CANTON_SETTINGS = ("PARTY_APP", "APP_PROVIDER_API_URL", "SCAN_API_URL")
OAUTH_SETTINGS = ("LEDGER_AUTH_TOKEN_URL", "LEDGER_AUTH_CLIENT_ID", "LEDGER_AUTH_CLIENT_SECRET")


def require_canton(ctx: Context, why: str) -> None:
    """Fail early, naming every missing variable, when Canton cannot be reached at all."""
    ctx.settings.require(*CANTON_SETTINGS, why=why)
    s = ctx.settings
    if not s.app_provider_jwt and not s.ledger_auth_token_url:
        raise ConfigError(
            f"{why} needs Ledger API credentials: APP_PROVIDER_JWT, or "
            f"{', '.join(OAUTH_SETTINGS)} for OAuth2 client credentials"
        )
    if s.ledger_auth_token_url:
        s.require(*OAUTH_SETTINGS, why="OAuth2 client credentials")


def token_source(ctx: Context) -> Callable[[Any], TokenSource]:
    s = ctx.settings
    if s.ledger_auth_token_url:
        url, client, secret = s.ledger_auth_token_url, s.ledger_auth_client_id or "", s.ledger_auth_client_secret or ""
        return lambda http: client_credentials(
            http, url, client, secret, s.ledger_auth_audience, s.ledger_auth_scope, clock=ctx.clock
        )
    token = s.app_provider_jwt or ""
    return lambda http: StaticToken(token)


def canton_factory(ctx: Context) -> Callable[[], AbstractAsyncContextManager[CantonAdapter]]:
    """Opens the clients and the adapter for one command or daemon run."""
    s = ctx.settings
    endpoints = Endpoints(
        ledger_url=s.app_provider_api_url or "",
        scan_url=s.scan_api_url or "",
        timeout=s.http_timeout_secs,
        user_id=s.ledger_user_id,
        # every payment in flight may hold a connection for its submission,
        # and still needs one for its reads: never make reads queue behind them
        max_connections=s.max_in_flight + 32,
    )
    return lambda: open_canton(
        endpoints,
        token_source(ctx),
        receiver=s.party_app or "",
        dedup_seconds=s.deduplication_secs,
        clock=ctx.clock,
        transport=ctx.transport,
    )
