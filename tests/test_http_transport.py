"""The connection pool under httpx (aiohttp's, through `PooledTransport`), against
real loopback servers: keep-alive reuse, framing, and every way an exchange can fail."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from pipeline.asgi_server import free_port
from pipeline.canton.errors import CantonError, ErrorClass
from pipeline.canton.http import Http, PooledTransport, ReadRetry, make_client

Reply = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{"a": 1.5}\n'


class Served:
    url = ""
    connections = 0


@asynccontextmanager
async def server(reply: Reply) -> AsyncIterator[Served]:
    """A loopback server answering each connection with ``reply``; counts its connections."""
    served = Served()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served.connections += 1
        try:
            await reply(reader, writer)
        finally:
            writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    served.url = f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}"
    async with srv:
        yield served


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")),
        0,
    )
    return head + (await reader.readexactly(length) if length else b"")


async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    for _ in range(100):  # bounded: a test never sends more
        try:
            await read_request(reader)
        except asyncio.IncompleteReadError:
            return
        writer.write(OK)
        await writer.drain()


def http(url: str, timeout: float = 2.0) -> Http:
    return Http(make_client(url, timeout), "the test server", retry=ReadRetry(attempts=1))


async def test_sequential_requests_share_one_connection() -> None:
    async with server(keep_alive) as served:
        client = http(served.url)
        assert isinstance(client.client._transport, PooledTransport)
        for _ in range(20):
            assert await client.call("POST", "/x", {"n": 1}) == {"a": 1.5}
        await client.client.aclose()
    assert served.connections == 1


async def test_concurrent_requests_open_at_most_the_pool_size() -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(100):
            try:
                await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            await asyncio.sleep(0.01)
            writer.write(OK)
            await writer.drain()

    async with server(slow) as served:
        client = Http(make_client(served.url, 2.0, max_connections=4), "the test server")
        answers = await asyncio.gather(*(client.call("GET", "/y") for _ in range(40)))
        assert answers == [{"a": 1.5}] * 40
        await client.client.aclose()
    assert served.connections <= 4


async def test_a_body_without_length_ends_with_the_connection() -> None:
    async def http10(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.0 200 OK\r\ncontent-type: application/json\r\n\r\n[1, 2, 3]")
        await writer.drain()

    async with server(http10) as served:
        client = http(served.url)
        assert await client.call("GET", "/z") == [1, 2, 3]
        assert await client.call("GET", "/z") == [1, 2, 3]  # a new connection: the last one closed
        await client.client.aclose()


async def dropped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b'HTTP/1.1 200 OK\r\ncontent-length: 512\r\n\r\n{"partial')
    await writer.drain()


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    await asyncio.sleep(2)


async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"NOT HTTP AT ALL\r\n\r\n")
    await writer.drain()


@pytest.mark.parametrize("reply", [dropped, silent, garbage])
async def test_a_sent_request_without_a_complete_answer_is_in_doubt(reply: Reply) -> None:
    async with server(reply) as served:
        client = http(served.url, timeout=0.3)
        with pytest.raises(CantonError) as caught:
            await client.call("POST", "/v2/commands/submit-and-wait", {"commandId": "c"})
        await client.client.aclose()
    assert caught.value.kind is ErrorClass.IN_DOUBT


async def test_an_unreachable_server_is_retryable_nothing_was_sent() -> None:
    client = http(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(CantonError) as caught:
        await client.call("POST", "/v2/commands/submit-and-wait", {"commandId": "c"})
    await client.client.aclose()
    assert (caught.value.kind, caught.value.code) == (ErrorClass.RETRYABLE, "UNREACHABLE")


async def test_proxies_keep_httpx_own_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    client = make_client("https://participant.example", 5)
    assert not isinstance(client._transport, PooledTransport)
    await client.aclose()
