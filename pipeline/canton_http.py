"""HTTP clients of the JSON Ledger API v2 and the Scan API (httpx), as the processor uses them.

One shared `httpx.AsyncClient` per service (timeouts, connection reuse). Reads retry with
capped backoff; submissions never do (the processor decides, knowing the commandId).
Every failure becomes one `CantonError` that says what kind it is: `duplicate`,
`retryable`, `in_doubt` (the command may have committed: timeouts, dropped connections,
proxy 5xx) or `final`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx

Kind = Literal["duplicate", "retryable", "in_doubt", "final"]
RETRYABLE_CODES = {"SUBMISSION_ALREADY_IN_FLIGHT", "PARTICIPANT_BACKPRESSURE", "LOCAL_VERDICT_LOCKED_CONTRACTS",
                   "LOCAL_VERDICT_INACTIVE_CONTRACTS", "CONTRACT_NOT_FOUND", "CONTRACT_NOT_ACTIVE"}
STALE_CODES = {"LOCAL_VERDICT_INACTIVE_CONTRACTS", "CONTRACT_NOT_FOUND", "CONTRACT_NOT_ACTIVE"}
STALE_CAUSES = ("openRound.opensAt", "TransferPreapproval.expiresAt")
POOL_SIZE = 64  # connections per service


@dataclass
class CantonError(Exception):
    """A Ledger API or Scan failure, classified (canton-apis.md §7.2)."""

    kind: Kind
    message: str
    status: int | None = None
    code: str = "HTTP_ERROR"
    category: int | None = None
    context: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message

    @property
    def error_id(self) -> str | None:
        return self.context.get("error_id")

    @property
    def stale_context(self) -> bool:
        return self.code in STALE_CODES or any(c in self.message for c in STALE_CAUSES)


def classify(status: int, body: bytes, where: str) -> CantonError:
    """What an error response means for a submission."""
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and "code" in doc and "errorCategory" in doc:
        code, category = str(doc["code"]), int(doc["errorCategory"])
        context = {str(k): str(v) for k, v in (doc.get("context") or {}).items()}
        cause = str(doc.get("cause", ""))[:400]
        return CantonError(_kind(code, category, status, cause), f"{code}: {cause}", status, code, category, context)
    text = (doc.get("error") if isinstance(doc, dict) else None) or body[:200].decode(errors="replace")
    if status in (401, 403):
        return CantonError("final", f"{where} refused the token (HTTP {status}): check APP_PROVIDER_JWT or the "
                           "OAuth settings and the user's rights", status, "UNAUTHENTICATED")
    kind: Kind = "in_doubt" if status >= 500 else "final"
    return CantonError(kind, f"{where} answered HTTP {status}: {text}", status)


def _kind(code: str, category: int, status: int, cause: str) -> Kind:
    if code == "DUPLICATE_COMMAND":
        return "duplicate"
    if category == 3 or code == "REQUEST_TIME_OUT":
        return "in_doubt"  # deadline exceeded: the outcome is unknown
    if code in RETRYABLE_CODES or category in (1, 2, 12) or any(c in cause for c in STALE_CAUSES):
        return "retryable"
    if status >= 500 and category not in (4, 5):
        return "in_doubt"
    return "final"


class TokenSource:
    """A bearer token for the Ledger API: static, or OAuth2 client credentials."""

    async def token(self) -> str:
        raise NotImplementedError

    def invalidate(self) -> None:
        """Forget the token (after a 401); static tokens cannot be refreshed."""


@dataclass
class StaticToken(TokenSource):
    value: str

    async def token(self) -> str:
        return self.value


class ClientCredentials(TokenSource):
    """Fetched from the IdP, cached, refreshed a minute before expiry or after a 401."""

    def __init__(self, http: httpx.AsyncClient, url: str, client_id: str, secret: str, audience: str | None,
                 scope: str | None = None, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._http, self._url, self._clock = http, url, clock
        self._form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
        if audience:
            self._form["audience"] = audience
        if scope:
            self._form["scope"] = scope
        self._value: str | None = None
        self._expires = datetime.min.replace(tzinfo=UTC)
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        async with self._lock:
            if self._value is None or self._clock() >= self._expires - timedelta(seconds=60):
                await self._fetch()
            assert self._value is not None
            return self._value

    async def _fetch(self) -> None:
        try:
            response = await self._http.post(self._url, data=self._form)
        except httpx.HTTPError as err:
            raise CantonError("retryable", f"token endpoint {self._url} unreachable: {err}") from err
        if response.status_code != 200:
            raise CantonError("final", f"token endpoint refused the client credentials (HTTP "
                              f"{response.status_code}); check LEDGER_AUTH_CLIENT_ID/SECRET", response.status_code)
        doc = response.json()
        self._value = doc["access_token"]
        self._expires = self._clock() + timedelta(seconds=int(doc.get("expires_in", 300)))

    def invalidate(self) -> None:
        self._value = None


class Http:
    """JSON over one shared client: auth, read retries, and errors as `CantonError`."""

    def __init__(self, client: httpx.AsyncClient, name: str, auth: TokenSource | None = None,
                 read_attempts: int = 3, backoff: float = 0.2) -> None:
        self.client, self.name, self.auth = client, name, auth
        self.read_attempts, self.backoff = read_attempts, backoff
        # Requests wait here, not in httpcore's pool, whose bookkeeping grows with the queue
        # (quadratic with hundreds of waiting requests). One slot per pooled connection.
        self._slots = asyncio.Semaphore(POOL_SIZE)

    async def read(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        """An idempotent call: retried on transport errors and 5xx, with capped backoff."""
        for attempt in range(1, self.read_attempts + 1):
            try:
                return await self.call(method, path, body, params)
            except CantonError as err:
                if err.kind not in ("in_doubt", "retryable") or attempt == self.read_attempts:
                    raise
                await asyncio.sleep(min(self.backoff * 2 ** (attempt - 1), 2.0))
        raise AssertionError("unreachable")

    async def call(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        """One call; a 401 refreshes the token once and repeats the call."""
        response = await self._send(method, path, body, params)
        if response.status_code == 401 and self.auth is not None:
            self.auth.invalidate()
            response = await self._send(method, path, body, params)
        if response.status_code >= 400:
            raise classify(response.status_code, response.content, self.name)
        try:
            return response.json()
        except ValueError as err:
            raise CantonError("in_doubt", f"{self.name} sent a body that is not JSON for {path}") from err

    async def _send(self, method: str, path: str, body: Any, params: dict[str, Any] | None) -> httpx.Response:
        headers = {"authorization": f"Bearer {await self.auth.token()}"} if self.auth else {}
        try:
            async with self._slots:
                return await self.client.request(method, path, json=body, params=params, headers=headers)
        except httpx.ConnectError as err:  # never reached the server: nothing was sent
            raise CantonError("retryable", f"{self.name} at {self.client.base_url} is unreachable: {err}") from err
        except (httpx.HTTPError, ConnectionError) as err:  # sent, but no answer: in doubt
            raise CantonError("in_doubt", f"{self.name} did not answer {path}: {type(err).__name__} {err}") from err


def make_client(base_url: str, timeout: float, transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """One pooled client per service, with connect and read timeouts."""
    return httpx.AsyncClient(
        base_url=base_url.rstrip("/"), transport=transport,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
        limits=httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE),
        headers={"user-agent": "canton-billing/0.1"},
    )


def asgi_transport(app: Any) -> httpx.AsyncBaseTransport:
    """Serve requests from an in-process ASGI app (the simulator) instead of the network."""
    return httpx.ASGITransport(app=app)
