"""HTTP for the Ledger API, Scan, the OAuth2 token endpoint and the daemon's local API: the one
module that imports httpx (and aiohttp, the connection pool under it).

One pooled `httpx.AsyncClient` per service (connect and read timeouts, keep-alive).
`Http` sends JSON (msgspec), adds the bearer token, refreshes it once after a 401,
retries idempotent reads with capped backoff (never submissions: the processor
decides, knowing the commandId), and turns every failure into a classified
`CantonError` (`pipeline/canton/errors.py`).
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp
import httpx
import msgspec
from httpx_aiohttp import AiohttpTransport

from pipeline.canton.auth import ClientCredentials, PostForm, TokenSource, token_fetcher
from pipeline.canton.errors import LIST_LIMIT, CantonError, ErrorClass, from_response, transport_failure
from pipeline.canton.splice_types import json_body

Sleep = Callable[[float], Awaitable[None]]
# The request never left this machine: safe to send again, nothing can have committed.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
JSON = {"content-type": "application/json", "accept": "application/json"}
USER_AGENT = "canton-billing/0.1"
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")


class PooledTransport(AiohttpTransport):
    """httpx over aiohttp's connection pool (httpx-aiohttp, by httpx's maintainer): the transport
    of every client that goes to the network without a proxy (`make_client`).

    aiohttp's pool takes and returns a connection in constant time, however many are open
    (pay-all keeps hundreds); httpcore's walks all of them on each request. Its failures are
    mapped here by what they mean for a submission, not by the library's generic table
    (which calls a dropped connection a connect timeout): never connected means nothing
    was sent; anything after that is *in doubt*.
    """

    def __init__(self, max_connections: int) -> None:
        self.tls = ssl.create_default_context()  # the system's CAs; certificate and host name checked
        super().__init__(
            verify=self.tls,
            client=lambda: aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=max_connections, ssl=self.tls), trust_env=False
            ),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await super().handle_async_request(request)
        except FAILURES as err:
            raise _meaning(err, request) from err
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _MappedStream(response.stream, request)
        return response


class _MappedStream(httpx.AsyncByteStream):
    """The answer's body, with a failure while reading it mapped like the head's."""

    def __init__(self, inner: httpx.AsyncByteStream, request: httpx.Request) -> None:
        self.inner, self.request = inner, request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.inner:
                yield chunk
        except FAILURES as err:
            raise _meaning(err, self.request) from err

    async def aclose(self) -> None:
        await self.inner.aclose()


#: What the transport can raise: httpx's mapping of aiohttp's errors, or an aiohttp error that
#: the library's table does not name (a garbled answer, for one).
FAILURES = (httpx.TransportError, aiohttp.ClientError)


def _meaning(err: Exception, request: httpx.Request) -> httpx.TransportError:
    cause = err.__cause__ if isinstance(err, httpx.TransportError) and err.__cause__ else err
    text = str(cause) or type(cause).__name__
    if isinstance(cause, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(text, request=request)
    if isinstance(cause, aiohttp.ClientConnectorError):
        return httpx.ConnectError(text, request=request)
    if isinstance(cause, aiohttp.ServerTimeoutError):
        return httpx.ReadTimeout(text, request=request)
    return httpx.RemoteProtocolError(text, request=request)


def _proxied() -> bool:
    return any(os.environ.get(v) or os.environ.get(v.upper()) for v in PROXY_VARIABLES)


def make_client(
    base_url: str,
    timeout: float,
    transport: httpx.AsyncBaseTransport | None = None,
    *,
    connect_timeout: float = 5.0,
    max_connections: int = 100,
    headers: Mapping[str, str] | None = None,
) -> httpx.AsyncClient:
    """One pooled client per service, with connect and read timeouts.

    ``base_url`` may end with a slash or not; ``transport`` replaces the network (tests
    and the demo pass the in-process simulator).
    """
    if transport is None and not _proxied():  # PooledTransport ignores proxy variables; httpx's own honours them
        transport = PooledTransport(max_connections)
    return httpx.AsyncClient(
        base_url=base_url.rstrip("/"),
        transport=transport,
        timeout=httpx.Timeout(timeout, connect=min(timeout, connect_timeout)),
        # For httpx's own pool (behind a proxy): keep every connection alive, since closing idle
        # ones under load means reconnecting for the next request.
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        headers={"user-agent": USER_AGENT, **(headers or {})},
    )


def asgi_transport(app: Any) -> httpx.AsyncBaseTransport:
    """Serve requests from an in-process ASGI app (the simulator) instead of the network."""
    return httpx.ASGITransport(app=app)


class ReadRetry(msgspec.Struct, frozen=True, kw_only=True):
    """Attempts and capped exponential backoff for idempotent reads."""

    attempts: int = 3
    base_delay: float = 0.2
    max_delay: float = 2.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return float(min(self.base_delay * 2 ** (attempt - 1), self.max_delay))


def retry_read(err: CantonError) -> bool:
    """Is a failed read worth repeating? Transport trouble, 5xx, 429 and retryable Canton codes,
    but not a list over the node's limit (retryable to Canton, yet only a smaller page helps)."""
    return err.kind in (ErrorClass.RETRYABLE, ErrorClass.IN_DOUBT) and err.code not in ("INVALID_RESPONSE", LIST_LIMIT)


class Http:
    """JSON over one shared client: auth, a token refresh after a 401, read retries, CantonError."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        name: str,
        auth: TokenSource | None = None,
        *,
        retry: ReadRetry | None = None,
        sleep: Sleep = asyncio.sleep,
        slots: int = 100,
    ) -> None:
        self.client, self.name, self.auth = client, name, auth
        self.retry = retry or ReadRetry()
        self._sleep = sleep
        # At most ``slots`` requests in flight (the pool's size); the others queue here, whatever
        # the transport: httpcore's pool behind a proxy, whose bookkeeping grows with its queue,
        # or the in-process simulator, which has no pool at all.
        self._slots = asyncio.Semaphore(slots)

    async def read(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        *,
        into: Any = Any,
    ) -> Any:
        """An idempotent call, retried on transport errors, 5xx and retryable answers."""
        for attempt in range(1, self.retry.attempts + 1):
            try:
                return await self.call(method, path, body, params, into=into)
            except CantonError as err:
                if attempt >= self.retry.attempts or not retry_read(err):
                    raise
                await self._sleep(self.retry.delay(attempt))
        raise AssertionError("unreachable: the loop returns or raises")

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        *,
        into: Any = Any,
    ) -> Any:
        """One call (plus one repeat with a fresh token after a 401), decoded into ``into``."""
        content = None if body is None else json_body(body)
        response = await self._send(method, path, content, params)
        if response.status_code == 401 and self.auth is not None and self.auth.refreshable:
            self.auth.invalidate()  # the IdP may have rotated keys or the token expired early
            response = await self._send(method, path, content, params)
        if response.status_code >= 400:
            raise from_response(response.status_code, response.content, self.name, path)
        try:
            return msgspec.json.decode(response.content, type=into, strict=False)
        except msgspec.MsgspecError as err:
            raise CantonError(
                ErrorClass.IN_DOUBT,
                f"{self.name} sent an unexpected body for {path}: {err}",
                response.status_code,
                "INVALID_RESPONSE",
            ) from err

    async def _send(
        self, method: str, path: str, content: bytes | None, params: Mapping[str, Any] | None
    ) -> httpx.Response:
        headers = dict(JSON)
        if self.auth is not None:
            headers["authorization"] = f"Bearer {await self.auth.token()}"
        try:
            async with self._slots:
                return await self.client.request(method, path, content=content, params=params, headers=headers)
        except NOT_SENT as err:
            raise transport_failure(False, self.name, path, _describe(err)) from err
        except httpx.UnsupportedProtocol as err:
            raise CantonError(
                ErrorClass.FINAL,
                f"{self.name}: bad URL {self.client.base_url}{path}: {err}",
                code="BAD_URL",
            ) from err
        except (httpx.TransportError, OSError) as err:  # sent, no (complete) answer: in doubt
            raise transport_failure(True, self.name, path, _describe(err)) from err


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def token_poster(client: httpx.AsyncClient) -> PostForm:
    """POST a form to a token endpoint through ``client``: its (status, body), or a retryable
    `CantonError` when no answer came."""

    async def post(token_url: str, form: Mapping[str, str]) -> tuple[int, bytes]:
        try:
            response = await client.post(token_url, data=dict(form), headers={"accept": "application/json"})
        except (httpx.TransportError, OSError) as err:
            raise CantonError(
                ErrorClass.RETRYABLE,
                f"token endpoint {token_url} unreachable: {_describe(err)}",
                code="TOKEN_UNREACHABLE",
            ) from err
        return response.status_code, response.content

    return post


def client_credentials(
    client: httpx.AsyncClient,
    token_url: str,
    client_id: str,
    client_secret: str,
    audience: str | None = None,
    scope: str | None = None,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ClientCredentials:
    """An OAuth2 client-credentials token source that fetches through ``client``."""
    return ClientCredentials(
        token_fetcher(token_poster(client), token_url),
        client_id=client_id,
        client_secret=client_secret,
        audience=audience,
        scope=scope,
        clock=clock,
    )
