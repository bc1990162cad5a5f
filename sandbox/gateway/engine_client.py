"""A lean HTTP/1.1 client for the gateway's calls to the engines (completions only).

Why not httpx here: a streamed answer is relayed chunk by chunk, and httpx's layers (httpx,
httpcore, h11, anyio) cost tens of microseconds of Python per chunk, most of the gateway's CPU
per streamed request (see ``bench/gateway_overhead.py``). This client speaks just what vLLM's
server answers (a status line, headers, then a body by ``Content-Length`` or chunked), keeps
idle connections per engine for reuse, and reads each chunk with two buffered reads.

Its failures are httpx's exception types, so the one mapping of engine failures to answers
(``errors.upstream_failure``) serves both clients: a refused connection is ``ConnectError``
(nothing sent: safe to retry elsewhere), a slow connect ``ConnectTimeout``, a silent engine
``ReadTimeout``, a broken connection ``ReadError``/``WriteError``/``RemoteProtocolError``.
Closing a response before its end closes the connection, which is how vLLM learns that the
client went away and aborts the request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from urllib.parse import urlsplit

import httpx

__all__ = ["EngineClient", "EngineResponse"]

_MAX_HEADER_LINES = 100
_MAX_IDLE_PER_ENGINE = 64

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def _unchunk(buffer: bytes) -> tuple[bytes, bytes, bool]:
    """Take every complete chunk off ``buffer``: (their data joined, what is left, last seen)."""
    pieces: list[bytes] = []
    pos = 0
    while True:
        line_end = buffer.find(b"\r\n", pos)
        if line_end < 0:
            break
        try:
            size = int(buffer[pos:line_end].split(b";", 1)[0], 16)
        except ValueError:
            raise httpx.RemoteProtocolError(
                f"bad chunk size line {buffer[pos:line_end][:40]!r}"
            ) from None
        start = line_end + 2
        if size == 0:  # the last chunk, then optional trailers, then an empty line
            if buffer[start : start + 2] == b"\r\n":
                return b"".join(pieces), buffer[start + 2 :], True
            end = buffer.find(b"\r\n\r\n", start)
            if end < 0:
                break
            return b"".join(pieces), buffer[end + 4 :], True
        if len(buffer) < start + size + 2:
            break
        pieces.append(buffer[start : start + size])
        pos = start + size + 2
    return b"".join(pieces), buffer[pos:], False


class EngineResponse:
    """One answer; read it with ``aiter_raw`` (a stream) or ``aread``, then ``aclose``."""

    def __init__(
        self,
        client: EngineClient,
        key: tuple[str, int],
        connection: Connection,
        status_code: int,
        headers: dict[str, str],
        read_timeout_s: float,
    ) -> None:
        self._client = client
        self._key = key
        self._reader, self._writer = connection
        self.status_code = status_code
        self.headers = headers
        self._timeout = read_timeout_s
        self._chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length = headers.get("content-length")
        self._remaining = int(length) if length is not None and not self._chunked else None
        self._keep_alive = headers.get("connection", "").lower() != "close"
        self._done = False
        self._closed = False
        self._timed_out = False
        self.content = b""
        self._arm()

    # The read timeout: one timer per answer, not one per read. Each read notes the time; the
    # timer, when due, closes the connection if nothing came for ``read_timeout_s`` (the read
    # then fails, and is reported as a timeout), else waits for the new deadline.
    def _arm(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._last = self._loop.time()
        self._timer = self._loop.call_at(self._last + self._timeout, self._check)

    def _check(self) -> None:
        due = self._last + self._timeout
        if self._loop.time() >= due:
            self._timed_out = True
            self._writer.close()
        elif not self._closed and not self._done:
            self._timer = self._loop.call_at(due, self._check)

    async def _read(self, coroutine: object) -> bytes:
        try:
            data: bytes = await coroutine  # type: ignore[misc]
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            if self._timed_out:
                raise httpx.ReadTimeout(f"no data from the engine in {self._timeout:g} s") from None
            if isinstance(exc, asyncio.IncompleteReadError):
                raise httpx.RemoteProtocolError(
                    "the engine closed the connection mid-answer"
                ) from None
            raise httpx.ReadError(f"{type(exc).__name__}: {exc}") from None
        if self._timed_out:
            raise httpx.ReadTimeout(f"no data from the engine in {self._timeout:g} s")
        self._last = self._loop.time()
        return data

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        """The body as it arrives, chunked framing removed: one piece per read of the socket.

        Every complete chunk of a read comes out in one piece, so when the gateway falls behind
        (a busy core), events that queued up are relayed in one write instead of one each.
        """
        reader = self._reader
        if self._chunked:
            buffer = b""
            while True:
                pieces, buffer, finished = _unchunk(buffer)
                if pieces:
                    yield pieces
                if finished:
                    self._keep_alive = self._keep_alive and not buffer  # nothing may follow
                    break
                data = await self._read(reader.read(65536))
                if not data:
                    raise httpx.RemoteProtocolError("the engine closed the connection mid-answer")
                buffer = buffer + data if buffer else data
        elif self._remaining is not None:
            while self._remaining > 0:
                data = await self._read(reader.read(min(self._remaining, 65536)))
                if not data:
                    raise httpx.RemoteProtocolError("the engine closed the connection mid-answer")
                self._remaining -= len(data)
                yield data
        else:  # the body ends when the connection does
            self._keep_alive = False
            while data := await self._read(reader.read(65536)):
                yield data
        self._done = True
        self._timer.cancel()

    async def aread(self) -> bytes:
        self.content = b"".join([piece async for piece in self.aiter_raw()])
        return self.content

    async def aclose(self) -> None:
        """Give the connection back if the answer was read to its end, else close it."""
        if self._closed:
            return
        self._closed = True
        self._timer.cancel()
        if self._done and self._keep_alive:
            self._client._release(self._key, (self._reader, self._writer))
        else:
            self._writer.close()


class EngineClient:
    def __init__(self, connect_timeout_s: float, read_timeout_s: float) -> None:
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self._idle: dict[tuple[str, int], list[Connection]] = {}

    def _release(self, key: tuple[str, int], connection: Connection) -> None:
        idle = self._idle.setdefault(key, [])
        if len(idle) < _MAX_IDLE_PER_ENGINE:
            idle.append(connection)
        else:
            connection[1].close()

    def _reusable(self, key: tuple[str, int]) -> Connection | None:
        idle = self._idle.get(key)
        while idle:
            reader, writer = idle.pop()
            if not writer.is_closing() and not reader.at_eof() and not reader._buffer:  # type: ignore[attr-defined]
                return reader, writer
            writer.close()
        return None

    async def _connect(self, host: str, port: int) -> Connection:
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                return await asyncio.open_connection(host, port, limit=1 << 20)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connect to {host}:{port} timed out") from None
        except OSError as exc:
            raise httpx.ConnectError(f"{host}:{port}: {exc}") from None

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], sent: list[float]
    ) -> EngineResponse:
        """Send one POST; return once the status and headers are in (``sent`` gets the time the
        request was written). A reused connection the engine had closed is replaced once."""
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        key = (host, port)
        head = [f"POST {parts.path or '/'} HTTP/1.1\r\nhost: {parts.netloc}\r\n"]
        head.extend(f"{name}: {value}\r\n" for name, value in headers.items())
        head.append(f"content-length: {len(body)}\r\n\r\n")
        request = "".join(head).encode("latin-1") + body
        for attempt in (0, 1):
            connection = self._reusable(key) if attempt == 0 else None
            reused = connection is not None
            if connection is None:
                connection = await self._connect(host, port)
            reader, writer = connection
            try:
                writer.write(request)
                await writer.drain()
            except OSError as exc:
                writer.close()
                if reused:
                    continue
                raise httpx.WriteError(f"{type(exc).__name__}: {exc}") from None
            sent.append(time.perf_counter())
            try:
                async with asyncio.timeout(self.read_timeout_s):
                    status_line = await reader.readline()
                    if not status_line and reused:
                        writer.close()
                        continue  # the engine closed it while idle; it never saw this request
                    status, response_headers = await self._head(reader, status_line)
            except TimeoutError:
                writer.close()
                raise httpx.ReadTimeout(
                    f"no answer from the engine in {self.read_timeout_s:g} s"
                ) from None
            except OSError as exc:
                writer.close()
                if reused and not isinstance(exc, TimeoutError):
                    continue
                raise httpx.ReadError(f"{type(exc).__name__}: {exc}") from None
            except httpx.HTTPError:
                writer.close()
                raise
            except ValueError as exc:  # a header line over the reader's limit
                writer.close()
                raise httpx.RemoteProtocolError(str(exc)) from None
            return EngineResponse(
                self, key, connection, status, response_headers, self.read_timeout_s
            )
        raise httpx.ReadError("the engine closed the connection twice before answering")

    @staticmethod
    async def _head(reader: asyncio.StreamReader, status_line: bytes) -> tuple[int, dict[str, str]]:
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise httpx.RemoteProtocolError(f"bad status line {status_line[:60]!r}")
        try:
            status = int(parts[1])
        except ValueError:
            raise httpx.RemoteProtocolError(f"bad status line {status_line[:60]!r}") from None
        headers: dict[str, str] = {}
        for _ in range(_MAX_HEADER_LINES):
            line = await reader.readline()
            if line in (b"\r\n", b"\n"):
                return status, headers
            if not line:
                raise httpx.RemoteProtocolError("the engine closed the connection in the headers")
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        raise httpx.RemoteProtocolError("too many header lines")

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for _, writer in idle:
                writer.close()
        self._idle.clear()
