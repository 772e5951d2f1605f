"""Bearer tokens for the Ledger API: a static token, or OAuth2 client credentials.

The OAuth2 source caches its token, fetches a new one shortly before it expires and
after the server refused it (``invalidate``). Fetching is a seam (`FetchToken`):
`token_fetcher` reads the token endpoint's answer, sent by a `PostForm` that
`pipeline/canton/http.py` supplies; tests may pass a plain coroutine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Protocol

import msgspec

from pipeline.canton.errors import CantonError, ErrorClass

Clock = Callable[[], datetime]
DEFAULT_LIFETIME = timedelta(minutes=5)  # when the IdP does not say (expires_in is optional)
REFRESH_MARGIN = timedelta(seconds=30)


class TokenGrant(msgspec.Struct, frozen=True, kw_only=True):
    """The part of an RFC 6749 §5.1 token response that matters here."""

    access_token: str
    expires_in: int | None = None
    token_type: str = "Bearer"


FetchToken = Callable[[Mapping[str, str]], Awaitable[TokenGrant]]
#: POST a form to a token endpoint (its URL, the form) and return the answer's status and body.
PostForm = Callable[[str, Mapping[str, str]], Awaitable[tuple[int, bytes]]]


class TokenSource(Protocol):
    """Where the Ledger API client gets its bearer token."""

    @property
    def refreshable(self) -> bool:
        """Whether `invalidate` + `token` can produce a different token."""
        ...

    async def token(self) -> str: ...

    def invalidate(self) -> None:
        """Forget the current token (the server answered 401)."""
        ...


class StaticToken:
    """A fixed token (APP_PROVIDER_JWT); a 401 cannot be cured by asking again."""

    refreshable = False

    def __init__(self, value: str) -> None:
        self._value = value

    def __repr__(self) -> str:
        return "StaticToken(***)"  # never print the secret

    async def token(self) -> str:
        return self._value

    def invalidate(self) -> None:
        return None


def client_credentials_form(
    client_id: str, client_secret: str, audience: str | None, scope: str | None
) -> dict[str, str]:
    """The form of a client-credentials grant (RFC 6749 §4.4.2, plus Auth0-style audience)."""
    form = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": client_secret,
    }
    if audience:
        form["audience"] = audience
    if scope:
        form["scope"] = scope
    return form


def token_fetcher(post: PostForm, token_url: str) -> FetchToken:
    """Fetch a grant from ``token_url`` with a client-credentials form (RFC 6749 §4.4)."""

    async def fetch(form: Mapping[str, str]) -> TokenGrant:
        status, body = await post(token_url, form)
        if status >= 500:
            raise CantonError(
                ErrorClass.RETRYABLE,
                f"token endpoint {token_url} answered HTTP {status}",
                status,
                "TOKEN_UNAVAILABLE",
            )
        if status != 200:
            raise CantonError(
                ErrorClass.FINAL,
                f"token endpoint {token_url} refused the client credentials "
                f"(HTTP {status}); check LEDGER_AUTH_CLIENT_ID and "
                "LEDGER_AUTH_CLIENT_SECRET",
                status,
                "TOKEN_REFUSED",
            )
        try:
            return msgspec.json.decode(body, type=TokenGrant, strict=False)
        except msgspec.MsgspecError as err:
            raise CantonError(
                ErrorClass.FINAL,
                f"token endpoint {token_url} sent no usable access_token: {err}",
                status,
                "TOKEN_INVALID_RESPONSE",
            ) from err

    return fetch


def refresh_at(issued: datetime, lifetime: timedelta, margin: timedelta = REFRESH_MARGIN) -> datetime:
    """When to fetch again: ``margin`` before expiry, but not before half the lifetime has passed
    (a short-lived token would otherwise be fetched on every call)."""
    return issued + max(lifetime - margin, lifetime / 2)


class ClientCredentials:
    """OAuth2 client credentials with a cached token, refreshed before expiry and after a 401."""

    refreshable = True

    def __init__(
        self,
        fetch: FetchToken,
        *,
        client_id: str,
        client_secret: str,
        audience: str | None = None,
        scope: str | None = None,
        clock: Clock = lambda: datetime.now(UTC),
        margin: timedelta = REFRESH_MARGIN,
    ) -> None:
        self._fetch, self._clock, self._margin = fetch, clock, margin
        self._form = client_credentials_form(client_id, client_secret, audience, scope)
        self._value: str | None = None
        self._refresh_at = datetime.min.replace(tzinfo=UTC)
        self._lock = asyncio.Lock()
        self.fetches = 0  # how many times the IdP was asked (observable in tests and logs)

    def __repr__(self) -> str:
        return f"ClientCredentials(client_id={self._form['client_id']!r})"

    async def token(self) -> str:
        # One fetch at a time: concurrent payments share the new token instead of each asking.
        async with self._lock:
            if self._value is None or self._clock() >= self._refresh_at:
                issued = self._clock()
                grant = await self._fetch(self._form)
                self.fetches += 1
                lifetime = timedelta(seconds=grant.expires_in) if grant.expires_in else DEFAULT_LIFETIME
                self._value, self._refresh_at = (
                    grant.access_token,
                    refresh_at(issued, lifetime, self._margin),
                )
            return self._value

    def invalidate(self) -> None:
        self._value = None
