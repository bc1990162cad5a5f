"""The lean HTTP/1.1 client of the two hot paths: the gateway's calls to the engines and the load
generator's requests. One POST, the answer read as it streams, connections kept alive.

Why not httpx here: its layers (httpx, httpcore, h11, anyio) cost tens of microseconds of Python
per streamed chunk, and both callers relay or time every chunk of thousands of streams. This
client parses answers with ``httptools`` (llhttp, in C, uvicorn's parser) inside an
``asyncio.Protocol``: a read of the socket is one parser call, the chunked framing is removed in
C, and the reader wakes once per read. It speaks just what an OpenAI-style server answers: plain
``http://``, a status line, headers, a body by ``Content-Length``, chunked or until close.
Everything else (the CLI, admin calls, HTTPS targets) uses httpx.

Failures are httpx's exception types, so the gateway's one mapping of engine failures to answers
(``gateway.errors.upstream_failure``) and the generator's outcomes need no second vocabulary:

- ``ConnectError``: refused (nothing was sent: safe to try elsewhere); ``ConnectTimeout``;
- ``ReadTimeout``: nothing came for ``read_timeout_s`` (headers or body);
- ``ReadError`` / ``WriteError``: the connection broke; ``RemoteProtocolError``: the answer was
  not HTTP/1.1, or the server closed the connection before its end.

A kept-alive connection the server closed while it was idle is replaced once, transparently: the
server never saw the request. Closing an answer before its end closes the connection, which is
how vLLM learns that the client went away and aborts the request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from urllib.parse import urlsplit

import httptools
import httpx

__all__ = ["StreamClient", "StreamResponse"]

_MAX_IDLE_PER_HOST = 64
# Unread body beyond this pauses reading the socket, so a slow reader does not buffer a whole answer.
_MAX_BUFFERED = 1 << 20


class _Connection(asyncio.Protocol):
    """One TCP connection; the parser's callbacks fill the answer being received."""

    def __init__(self, key: tuple[str, int], registry: set[_Connection]) -> None:
        self.key = key
        self._registry = registry  # the client's open connections, for its aclose
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.response: StreamResponse | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport, but behave as one.
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        response = self.response
        if response is None:
            self.close()  # nothing is owed on an idle connection: it cannot be reused
            return
        response.received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._registry.discard(self)
        if self.response is not None:
            self.response.lost(exc)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class StreamResponse:
    """One answer: ``status_code`` once ``post`` returns; read the body with ``aiter_raw`` (as it
    streams) or ``aread``, then ``aclose`` (always: it gives the connection back or closes it)."""

    def __init__(
        self, client: StreamClient, connection: _Connection, read_timeout_s: float | None
    ) -> None:
        self._client = client
        self._connection = connection
        self._parser = httptools.HttpResponseParser(self)
        self._loop = asyncio.get_running_loop()
        self.status_code = 0
        self.content = b""
        self._headers_done = False
        self._keep_alive = False
        self._complete = False
        self._body: list[bytes] = []
        self._buffered = 0
        self._paused = False
        self._error: httpx.HTTPError | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._any_data = False
        self._closed = False
        # The read timeout: one timer per answer, not one per read. Each read notes the time; the
        # timer, when due, fails the answer if nothing came for ``read_timeout_s``, else waits for
        # the new deadline.
        self._timeout = read_timeout_s
        self._last = self._loop.time()
        self._timer = (
            self._loop.call_at(self._last + read_timeout_s, self._check)
            if read_timeout_s is not None
            else None
        )

    # -- Called by the connection and the parser (inside data_received) ----------------------

    def received(self, data: bytes) -> None:
        self._any_data = True
        self._last = self._loop.time()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(httpx.RemoteProtocolError("the server switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"bad HTTP answer: {exc}"))

    def lost(self, exc: Exception | None) -> None:
        if self._complete:
            return
        if exc is None:
            self._fail(httpx.RemoteProtocolError("the server closed the connection mid-answer"))
        else:
            self._fail(httpx.ReadError(f"{type(exc).__name__}: {exc}"))

    def on_headers_complete(self) -> None:
        self.status_code = self._parser.get_status_code()
        # Read here: once the message is complete, llhttp has reset what this answer said.
        self._keep_alive = self._parser.should_keep_alive()
        self._headers_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)
        self._buffered += len(body)
        if self._buffered > _MAX_BUFFERED and not self._paused:
            self._paused = True
            transport = self._connection.transport
            if transport is not None:
                transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        self._complete = True
        if self._timer is not None:
            self._timer.cancel()
        self._wake()

    def _check(self) -> None:
        assert self._timeout is not None
        due = self._last + self._timeout
        if self._loop.time() >= due:
            self._fail(httpx.ReadTimeout(f"no data from the server in {self._timeout:g} s"))
        elif not self._complete and self._error is None:
            self._timer = self._loop.call_at(due, self._check)

    def _fail(self, error: httpx.HTTPError) -> None:
        if self._error is None:
            self._error = error
        self._connection.response = None
        self._connection.close()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self) -> None:
        if self._error is not None:
            raise self._error
        self._waiter = self._loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    # -- The caller's side --------------------------------------------------------------------

    async def _start(self) -> None:
        while not self._headers_done:
            await self._wait()

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        """The body as it arrives, framing removed: what came in one read of the socket is one
        piece, so when the reader falls behind (a busy core), data that queued up comes out in
        one piece instead of many."""
        while True:
            body = self._body
            if body:
                self._body = []
                self._buffered = 0
                if self._paused:
                    self._paused = False
                    transport = self._connection.transport
                    if transport is not None:
                        transport.resume_reading()
                yield body[0] if len(body) == 1 else b"".join(body)
            elif self._complete:
                return
            else:
                await self._wait()

    async def aread(self) -> bytes:
        self.content = b"".join([piece async for piece in self.aiter_raw()])
        return self.content

    def abort(self) -> None:
        """Close the connection now (from any callback): a pending read fails with ``ReadError``."""
        self._fail(httpx.ReadError("the answer was aborted"))

    async def aclose(self) -> None:
        """Give the connection back if the answer was read to its end, else close it."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        connection = self._connection
        connection.response = None
        if self._complete and self._keep_alive and not self._body and self._error is None:
            self._client._release(connection)
        else:
            connection.close()


class StreamClient:
    """Keep-alive connections to any number of ``http://host:port``; ``post`` sends one request.

    ``read_timeout_s`` None leaves timeouts to the caller (``asyncio.timeout``)."""

    def __init__(
        self, connect_timeout_s: float | None = None, read_timeout_s: float | None = None
    ) -> None:
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._open: set[_Connection] = set()

    def _release(self, connection: _Connection) -> None:
        idle = self._idle.setdefault(connection.key, [])
        if len(idle) < _MAX_IDLE_PER_HOST and not connection.closed:
            idle.append(connection)
        else:
            connection.close()

    def _reusable(self, key: tuple[str, int]) -> _Connection | None:
        idle = self._idle.get(key)
        while idle:
            connection = idle.pop()
            if not connection.closed:
                return connection
        return None

    async def _connect(self, key: tuple[str, int]) -> _Connection:
        host, port = key
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                transport, connection = await loop.create_connection(
                    lambda: _Connection(key, self._open), host, port
                )
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connect to {host}:{port} timed out") from None
        except OSError as exc:
            raise httpx.ConnectError(f"{host}:{port}: {exc}") from None
        # uvloop may call connection_made after create_connection returns: set it here too.
        connection.transport = transport
        self._open.add(connection)
        return connection

    async def post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        sent: list[float] | None = None,
    ) -> StreamResponse:
        """Send one POST; return once the status and headers are in (``sent``, if given, gets the
        time the request was written)."""
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"StreamClient speaks plain http://host:port only, not {url!r}")
        key = (parts.hostname, parts.port or 80)
        head = [f"POST {parts.path or '/'} HTTP/1.1\r\nhost: {parts.netloc}\r\n"]
        head.extend(f"{name}: {value}\r\n" for name, value in headers.items())
        head.append(f"content-length: {len(body)}\r\n\r\n")
        request = "".join(head).encode("latin-1") + body
        for attempt in (0, 1):
            connection = self._reusable(key) if attempt == 0 else None
            reused = connection is not None
            if connection is None:
                connection = await self._connect(key)
            response = StreamResponse(self, connection, self.read_timeout_s)
            connection.response = response
            assert connection.transport is not None
            try:
                connection.transport.write(request)
            except OSError as exc:
                await response.aclose()
                if reused:
                    continue
                raise httpx.WriteError(f"{type(exc).__name__}: {exc}") from None
            if sent is not None:
                sent.append(time.perf_counter())
            try:
                await response._start()
            except httpx.HTTPError as exc:
                await response.aclose()
                # A kept-alive connection the server closed just before this request: once more
                # on a new one (nothing of the answer had come, so the server never saw it).
                if (
                    reused
                    and not response._any_data
                    and not isinstance(exc, httpx.TimeoutException)
                ):
                    continue
                raise
            except BaseException:
                await response.aclose()
                raise
            return response
        raise httpx.ReadError("the server closed the connection twice before answering")

    async def aclose(self) -> None:
        for connection in list(self._open):
            connection.close()
        self._open.clear()
        self._idle.clear()
