"""A TCP proxy that adds latency, not bandwidth limits: ``python -m faults.delay_proxy``.

Each chunk read from one side is written to the other ``delay_s`` (+ uniform jitter) after it
arrived, in order, while later chunks keep flowing: this is what a longer network path does
(a streamed response arrives late but at the same pace), unlike sleeping between chunks.
The network-latency fault runs it through the runtime and points the gateway's engine at it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import signal
import sys
import time

__all__ = ["main", "serve"]


def _log(message: str, **fields: object) -> None:
    print(
        json.dumps({"ts": time.time(), "service": "delay_proxy", "msg": message, **fields}),
        flush=True,
    )


async def _pump(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    delay_s: float,
    jitter_s: float,
    rng: random.Random,
) -> None:
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    async def read() -> None:
        release = 0.0
        while True:
            data = await reader.read(65536)
            # Release times never go backwards, so jitter cannot reorder bytes of one stream.
            release = max(
                release, loop.time() + max(0.0, delay_s + rng.uniform(-jitter_s, jitter_s))
            )
            await queue.put((release, data))
            if not data:
                return

    async def write() -> None:
        while True:
            release, data = await queue.get()
            wait = release - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                with contextlib.suppress(OSError):
                    if writer.can_write_eof():
                        writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    reading = asyncio.create_task(read())
    try:
        await write()
    finally:
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError, OSError):
            await reading


async def serve(
    listen_host: str,
    listen_port: int,
    upstream_host: str,
    upstream_port: int,
    delay_s: float,
    jitter_s: float,
    seed: int | None = None,
) -> None:
    rng = random.Random(seed)

    async def handle(
        client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(upstream_host, upstream_port)
        except OSError as exc:
            _log("upstream connect failed", error=str(exc))
            client_writer.close()
            return
        try:
            await asyncio.gather(
                _pump(client_reader, up_writer, delay_s, jitter_s, rng),
                _pump(up_reader, client_writer, delay_s, jitter_s, rng),
            )
        except (OSError, asyncio.IncompleteReadError):
            pass  # either side went away: close both
        finally:
            for writer in (client_writer, up_writer):
                writer.close()

    server = await asyncio.start_server(handle, listen_host, listen_port)
    _log(
        "listening",
        listen=f"{listen_host}:{listen_port}",
        upstream=f"{upstream_host}:{upstream_port}",
        delay_s=delay_s,
        jitter_s=jitter_s,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
    _log("stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen-host", default="127.0.0.1")
    parser.add_argument("--listen-port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="host:port")
    parser.add_argument("--delay-s", type=float, required=True)
    parser.add_argument("--jitter-s", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    host, _, port = args.upstream.rpartition(":")
    asyncio.run(
        serve(
            args.listen_host,
            args.listen_port,
            host,
            int(port),
            args.delay_s,
            args.jitter_s,
            args.seed,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
