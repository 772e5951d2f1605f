"""Keep-alive HTTP/1.1 connections to one origin, taken and returned in O(1) (asyncio + httptools).

httpcore's pool walks every connection (and polls its socket) on each request and
each release, so with the hundred-odd connections pay-all keeps open most of the
client's CPU went there. This pool keeps idle connections on a stack, parses answers
with httptools (the C parser uvicorn uses) and knows nothing of httpx: the adapter in
`pipeline/clients.py` maps its results and errors onto httpx's.
"""

from __future__ import annotations

import asyncio
import ssl
import time

import httptools

Headers = list[tuple[bytes, bytes]]
_FRAMED = (b"content-length", b"transfer-encoding")


class PoolError(Exception):
    """Base of the failures the adapter maps to httpx errors."""


class ConnectFailed(PoolError):
    """The connection could not be made: the request was not sent."""


class ConnectTimedOut(ConnectFailed):
    pass


class ReadTimedOut(PoolError):
    """Sent, but no complete answer within the read timeout."""


class Disconnected(PoolError):
    """Sent, but the server closed the connection or answered garbage."""


class _Connection(asyncio.Protocol):
    """One socket; one exchange at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = time.monotonic()
        self._reset()

    def _reset(self) -> None:
        self.status, self.headers, self.body = 0, [], bytearray()
        self.waiter: asyncio.Future[None] | None = None
        self.keep_alive = True

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as err:
            self._fail(Disconnected(f"malformed HTTP answer: {err}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.status and not any(n.lower() in _FRAMED for n, _ in self.headers):
            self.keep_alive = False  # an unframed body ends where the connection does
            self.on_message_complete()
        self._fail(Disconnected("the server closed the connection before answering"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def _fail(self, err: PoolError) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(err)
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    async def exchange(self, raw: bytes, timeout: float | None) -> tuple[int, Headers, bytes]:
        assert self.transport is not None
        self._reset()
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        try:
            await asyncio.wait_for(self.waiter, timeout)
        except TimeoutError as err:
            self.close()
            raise ReadTimedOut(f"no answer within {timeout:g}s") from err
        return self.status, self.headers, bytes(self.body)


class ConnectionPool:
    """Up to ``max_connections`` keep-alive connections to ``host:port``."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: ssl.SSLContext | None = None,
        max_connections: int = 100,
        keepalive_expiry: float = 4.0,  # below uvicorn's 5 s, so the server never closes first
    ) -> None:
        self.host, self.port, self.tls = host, port, tls
        self.keepalive_expiry = keepalive_expiry
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[_Connection] = []
        self.opened = 0

    async def request(
        self, raw: bytes, *, connect_timeout: float | None, read_timeout: float | None
    ) -> tuple[int, Headers, bytes]:
        """Send one serialized request and return (status, headers, body)."""
        async with self._slots:
            conn = self._take() or await self._connect(connect_timeout)
            try:
                status, headers, body = await conn.exchange(raw, read_timeout)
            except BaseException:
                conn.close()
                raise
            if conn.keep_alive and not conn.closed:
                conn.idle_since = time.monotonic()
                self._idle.append(conn)
            else:
                conn.close()
            return status, headers, body

    def _take(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()  # the most recently used: the least likely to have expired
            if not conn.closed and now - conn.idle_since < self.keepalive_expiry:
                return conn
            conn.close()
        return None

    async def _connect(self, timeout: float | None) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    _Connection,
                    self.host,
                    self.port,
                    ssl=self.tls,
                    server_hostname=self.host if self.tls else None,
                ),
                timeout,
            )
        except TimeoutError as err:
            raise ConnectTimedOut(f"connecting to {self.host}:{self.port} timed out") from err
        except OSError as err:
            raise ConnectFailed(f"cannot connect to {self.host}:{self.port}: {err}") from err
        self.opened += 1
        return conn

    def close(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()
