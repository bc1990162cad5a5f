"""A lean HTTP/1.1 client for the generator's hot path: POST a JSON body, read the answer as it
streams, keep connections alive.

Why not httpx here: a streamed answer of ten chunks costs httpx (httpcore, h11, anyio) about
2.3 ms of CPU, so one core saturates near 400 requests per second and, well before that, the
event loop is busy often enough to start requests late. This client parses responses with
``httptools`` (llhttp, in C; uvicorn's parser) and costs a fraction of that. It does only what
the generator needs: plain ``http://`` targets, ``POST``, ``Content-Length`` or chunked answers.
Everything else (the CLI, the control API, HTTPS targets) uses httpx.

Errors: a refused, reset or closed connection raises ``ConnectionError`` (or ``OSError``); an
answer that is not HTTP raises ``ProtocolError``. Timeouts are the caller's (``asyncio.timeout``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httptools

from sandbox.exceptions import UpstreamError

__all__ = ["FastClient", "ProtocolError", "Response"]


class ProtocolError(UpstreamError, ConnectionError):
    """The server's answer was not valid HTTP/1.1."""


class _Connection(asyncio.Protocol):
    """One TCP connection; the parser's callbacks fill the current response."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.error: BaseException | None = None
        self.response: Response | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport, but behave as one.
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        response = self.response
        if response is None:
            self._fail(ProtocolError("data from the server with no request outstanding"))
            return
        try:
            response.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ProtocolError(f"bad HTTP answer: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.error = self.error or exc or ConnectionError("the server closed the connection")
        if self.response is not None:
            self.response.wake()

    def _fail(self, exc: BaseException) -> None:
        self.error = exc
        self.close()
        if self.response is not None:
            self.response.wake()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class Response:
    """An answer being received: ``status`` after ``start``, then the body as it arrives."""

    def __init__(self, connection: _Connection, loop: asyncio.AbstractEventLoop) -> None:
        self.connection = connection
        self.loop = loop
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.headers_done = False
        self.keep_alive = False
        self.complete = False
        self._body: deque[bytes] = deque()
        self._waiter: asyncio.Future[None] | None = None

    # httptools callbacks
    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        # Read here: after the message completes, llhttp has reset what this answer said.
        self.keep_alive = self.parser.should_keep_alive()
        self.headers_done = True
        self.wake()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)
        self.wake()

    def on_message_complete(self) -> None:
        self.complete = True
        self.wake()

    def wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _wait(self) -> None:
        if self.connection.error is not None:
            raise self.connection.error
        self._waiter = self.loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def start(self) -> None:
        while not self.headers_done:
            await self._wait()

    async def iter_body(self) -> AsyncIterator[bytes]:
        while True:
            while self._body:
                yield self._body.popleft()
            if self.complete:
                return
            await self._wait()

    async def read(self) -> bytes:
        return b"".join([piece async for piece in self.iter_body()])


class FastClient:
    """Keep-alive connections to one ``http://host:port``; ``request`` is an async context manager."""

    def __init__(self, base_url: str) -> None:
        url = urlsplit(base_url)
        if url.scheme != "http" or not url.hostname:
            raise ValueError(f"FastClient speaks plain http://host:port only, not {base_url!r}")
        self.host = url.hostname
        self.port = url.port or 80
        self.prefix = url.path.rstrip("/")
        self._host_header = f"{self.host}:{self.port}".encode()
        self._idle: list[_Connection] = []
        self._all: set[_Connection] = set()

    async def _connection(self, reuse: bool = True) -> tuple[_Connection, bool]:
        """A connection, and whether it was reused (kept alive from an earlier answer)."""
        while reuse and self._idle:
            conn = self._idle.pop()
            if not conn.closed:
                return conn, True
        loop = asyncio.get_running_loop()
        transport, conn = await loop.create_connection(_Connection, self.host, self.port)
        # uvloop may call connection_made after create_connection returns: set it here too.
        conn.transport = transport
        self._all.add(conn)
        return conn, False

    def _release(self, conn: _Connection, response: Response) -> None:
        conn.response = None
        if response.complete and not conn.closed and response.keep_alive:
            self._idle.append(conn)
        else:
            conn.close()
            self._all.discard(conn)

    def request(self, path: str, body: bytes, headers: dict[str, str]) -> _Exchange:
        head = [
            b"POST " + (self.prefix + path).encode() + b" HTTP/1.1",
            b"Host: " + self._host_header,
            b"Content-Type: application/json",
            b"Content-Length: " + str(len(body)).encode(),
        ]
        head += [f"{k}: {v}".encode() for k, v in headers.items()]
        return _Exchange(self, b"\r\n".join(head) + b"\r\n\r\n" + body)

    async def aclose(self) -> None:
        for conn in list(self._all):
            conn.close()
        self._all.clear()
        self._idle.clear()


class _Exchange:
    """``async with client.request(...) as response``: the connection goes back to the pool
    only when the answer was read to its end; otherwise (error, cancel, timeout) it is closed."""

    def __init__(self, client: FastClient, payload: bytes) -> None:
        self.client = client
        self.payload = payload
        self.conn: _Connection | None = None
        self.response: Response | None = None

    async def __aenter__(self) -> Response:
        reuse = True
        while True:
            self.conn, reused = await self.client._connection(reuse)
            self.response = Response(self.conn, asyncio.get_running_loop())
            self.conn.response = self.response
            assert self.conn.transport is not None
            try:
                self.conn.transport.write(self.payload)
                await self.response.start()
                return self.response
            except BaseException as exc:
                self.conn.close()
                self.client._all.discard(self.conn)
                # A kept-alive connection the server closed just before our request: once more
                # on a new connection (nothing of the answer had arrived).
                if (
                    reused
                    and isinstance(exc, ConnectionError)
                    and not isinstance(exc, ProtocolError)
                ):
                    reuse = False
                    continue
                self.conn = self.response = None
                raise

    async def __aexit__(self, *exc: object) -> None:
        if self.conn is not None and self.response is not None:
            self.client._release(self.conn, self.response)
