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


def _answer(raw: bytes, close: bool) -> Handler:
    """A server that answers every request with ``raw``, then closes or falls silent."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(raw)
        await writer.drain()
        if close:
            writer.close()  # as a server does with an idle keep-alive connection
        else:
            await asyncio.sleep(5)

    return handler


def test_content_length_answer_and_a_connection_closed_while_idle() -> None:
    async def main() -> None:
        server, url = await _serve(
            _answer(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}", True)
        )
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


_CHUNKED = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(
    ("raw", "close", "error"),
    [
        (_CHUNKED + b"5\r\nhello\r\n", False, httpx.ReadTimeout),  # then silence
        (_CHUNKED + b"5\r\nhel", True, httpx.RemoteProtocolError),  # closed mid-answer
        (_CHUNKED + b"zz\r\n", False, httpx.RemoteProtocolError),  # not HTTP
    ],
)
def test_a_broken_stream_fails_with_an_httpx_exception(
    raw: bytes, close: bool, error: type[httpx.HTTPError]
) -> None:
    async def main() -> None:
        server, url = await _serve(_answer(raw, close))
        response = await StreamClient(1.0, 0.2).post(url, b"x", {}, [])
        with pytest.raises(error):
            [piece async for piece in response.aiter_raw()]
        await response.aclose()
        server.close()

    asyncio.run(main())


def test_refused_connections_and_urls_it_cannot_speak_to() -> None:
    async def main() -> None:
        closed, url = await _serve(_answer(b"", False))
        closed.close()
        await closed.wait_closed()
        with pytest.raises(httpx.ConnectError):
            await StreamClient(1.0, 1.0).post(url, b"x", {}, [])
        with pytest.raises(ValueError, match="plain http"):
            await StreamClient().post("https://example.invalid/v1/completions", b"x", {})

    asyncio.run(main())
