"""The lean streaming client (gateway and load generator) against a raw server: framing, reuse,
failures as httpx's."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
import pytest

from sandbox.httpstream import StreamClient

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _serve(handler: Handler) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/v1/completions"


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    return await reader.readexactly(length)


def test_chunked_stream_then_the_connection_is_reused() -> None:
    connections = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        while True:
            try:
                body = await _read_request(reader)
            except asyncio.IncompleteReadError:
                return
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            for event in (b"data: 1\n\n", b"data: " + body + b"\n\n"):
                writer.write(b"%x\r\n%s\r\n" % (len(event), event))
            writer.write(b"0\r\n\r\n")
            await writer.drain()

    async def main() -> None:
        server, url = await _serve(handler)
        client = StreamClient(1.0, 1.0)
        for _ in range(2):
            sent: list[float] = []
            response = await client.post(url, b"hello", {"content-type": "application/json"}, sent)
            assert response.status_code == 200 and sent
            pieces = [piece async for piece in response.aiter_raw()]
            assert b"".join(pieces) == b"data: 1\n\ndata: hello\n\n"  # chunks of a read: one piece
            await response.aclose()
        assert len(connections) == 1
        await client.aclose()
        server.close()

    asyncio.run(main())


def test_content_length_answer_and_a_connection_closed_while_idle() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}")
        await writer.drain()
        writer.close()  # as a server does with an idle keep-alive connection

    async def main() -> None:
        server, url = await _serve(handler)
        client = StreamClient(1.0, 1.0)
        for _ in range(2):  # the second finds its pooled connection closed, and opens another
            response = await client.post(url, b"x", {}, [])
            assert (response.status_code, await response.aread()) == (400, b"{}")
            await response.aclose()
        await asyncio.sleep(0.05)
        response = await client.post(url, b"x", {}, [])
        assert response.status_code == 400
        await client.aclose()
        server.close()

    asyncio.run(main())


def test_an_answer_that_is_not_http_is_a_protocol_error() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n")
        await writer.drain()
        await asyncio.sleep(1)

    async def main() -> None:
        server, url = await _serve(garbage)
        response = await StreamClient(1.0, 1.0).post(url, b"x", {})
        with pytest.raises(httpx.RemoteProtocolError):
            [piece async for piece in response.aiter_raw()]
        await response.aclose()
        server.close()
        with pytest.raises(ValueError, match="plain http"):
            await StreamClient().post("https://example.invalid/v1/completions", b"x", {})

    asyncio.run(main())


def test_failures_are_httpx_exceptions() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n")
        await writer.drain()
        await asyncio.sleep(5)

    async def broken(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel")
        await writer.drain()
        writer.close()

    async def main() -> None:
        closed, url = await _serve(silent)
        closed.close()
        await closed.wait_closed()
        with pytest.raises(httpx.ConnectError):
            await StreamClient(1.0, 1.0).post(url, b"x", {}, [])

        server, url = await _serve(silent)
        response = await StreamClient(1.0, 0.2).post(url, b"x", {}, [])
        with pytest.raises(httpx.ReadTimeout):
            [piece async for piece in response.aiter_raw()]
        await response.aclose()
        server.close()

        server, url = await _serve(broken)
        response = await StreamClient(1.0, 1.0).post(url, b"x", {}, [])
        with pytest.raises(httpx.RemoteProtocolError):
            [piece async for piece in response.aiter_raw()]
        await response.aclose()
        server.close()

    asyncio.run(main())
