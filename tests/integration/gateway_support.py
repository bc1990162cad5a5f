"""What the gateway integration tests start next to the local stack, and how they read figures.

``GatewayProcess`` runs ``python -m sandbox.gateway`` as the stack would (its own process
group, killed at the end); ``TcpProxy`` stands between a gateway and an engine so a test can
cut the engine off and bring it back in a second (restarting vLLM takes a minute); the
``prom_*`` helpers read figures from Prometheus.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from sandbox.settings import REPO_ROOT, Settings
from tests.support import free_port, poll_until

__all__ = [
    "GatewayProcess",
    "TcpProxy",
    "prom_query",
    "prom_scalar",
    "register_scrape_target",
    "vllm_metric",
]


class GatewayProcess:
    def __init__(
        self,
        settings: Settings,
        engines: list[str],
        log: Path,
        *,
        port: int | None = None,
        otlp_endpoint: str | None = None,
        retriever_url: str | None = None,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [
            sys.executable,
            "-m",
            "sandbox.gateway",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--config",
            str(log.parent / "no-such-gateway.json"),
            "--otlp-endpoint",
            otlp_endpoint or "none",
        ]
        for engine in engines:
            argv += ["--engine", engine]
        if retriever_url:
            argv += ["--retriever-url", retriever_url]
        env = {
            **os.environ,
            "SANDBOX_RUN_DIR": str(settings.run_dir),
            "TOKENIZERS_PARALLELISM": "false",
        }
        self.log = log
        self._out = log.open("ab")
        self.process = subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            poll_until(
                self._ready,
                f"the gateway on port {self.port} (log {log})",
                timeout_s=60,
                interval_s=0.2,
            )
        except BaseException:
            self.stop()
            raise

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(
                f"gateway exited with {self.process.returncode}: {self.log.read_text()[-2000:]}"
            )
        try:
            return httpx.get(f"{self.url}/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        self._out.close()


class TcpProxy:
    """Forwards 127.0.0.1:port to a target; ``cut()`` closes everything, ``restore()`` listens again."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.restore()

    def _call(self, coro: object) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)  # type: ignore[arg-type]

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    async def _start(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True
        )

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    def cut(self) -> None:
        self._call(self._stop())

    def restore(self) -> None:
        self._call(self._start())

    def close(self) -> None:
        self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()


def register_scrape_target(
    settings: Settings, job: str, address: str, labels: dict[str, str]
) -> Path:
    """Add a target to Prometheus' discovery file of ``job`` (kept: entries the stack wrote)."""
    path = settings.targets_dir / f"{job}.json"
    groups = json.loads(path.read_text() or "[]") if path.exists() else []
    groups = [g for g in groups if address not in g.get("targets", [])]
    groups.append({"targets": [address], "labels": labels})
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(groups, indent=2) + "\n")
    tmp.replace(path)
    return path


def unregister_scrape_target(settings: Settings, job: str, address: str) -> None:
    path = settings.targets_dir / f"{job}.json"
    if not path.exists():
        return
    groups = [
        g for g in json.loads(path.read_text() or "[]") if address not in g.get("targets", [])
    ]
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(groups, indent=2) + "\n")
    tmp.replace(path)


def prom_query(prometheus_url: str, promql: str) -> list[dict[str, object]]:
    answer = httpx.get(
        f"{prometheus_url}/api/v1/query", params={"query": promql}, timeout=10
    ).json()
    assert answer["status"] == "success", answer
    return list(answer["data"]["result"])


def prom_scalar(prometheus_url: str, promql: str) -> float | None:
    result = prom_query(prometheus_url, promql)
    return float(result[0]["value"][1]) if result else None  # type: ignore[index]


def vllm_metric(engine_url: str, name: str) -> float:
    """Sum of a vLLM metric's samples, read from the engine's own /metrics."""
    total = 0.0
    for line in httpx.get(f"{engine_url}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total
