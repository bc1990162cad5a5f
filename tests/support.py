"""Helpers the tests share: bounded polling and free ports. (Fixtures live in conftest.py.)"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml

from faults import StackContext
from sandbox import stack
from sandbox.admin_paths import GATEWAY_PATHS
from sandbox.components.base import free_port as components_free_port
from sandbox.deploy import Deployer, HttpGatewayRouting
from sandbox.deploy.targets import read_job_targets
from sandbox.drill.context import DrillContext
from sandbox.drill.manifest import load_incident
from sandbox.drill.result import DrillOptions, DrillResult, Mode
from sandbox.gateway.component import gateway_url
from sandbox.promapi import AlertmanagerClient, PrometheusClient
from sandbox.runtime.base import ServiceState
from sandbox.runtime.local import LocalRuntime, group_alive
from sandbox.settings import Settings, load_settings

__all__ = [
    "StackHandle",
    "drill_context",
    "free_port",
    "isolated_settings",
    "poll_until",
    "require_stack_binaries",
    "start_test_stack",
    "stop_process",
    "stop_test_stack",
    "throwaway_prometheus",
]

T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    return components_free_port("127.0.0.1")


def stop_process(process: subprocess.Popen[Any], timeout_s: float = 10.0) -> None:
    """Stop a child started with Popen: SIGTERM, then SIGKILL if it outlives ``timeout_s``."""
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout_s)


def poll_until(
    check: Callable[[], T | None],
    description: str,
    timeout_s: float = 60.0,
    interval_s: float = 0.5,
) -> T:
    """Call ``check`` until it returns something truthy; fail naming ``description`` and the
    last error when ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    last_error: BaseException | None = None
    last_value: object = None
    while True:
        try:
            value = check()
            if value:
                return value
            last_value = value
        except Exception as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f"last error: {last_error!r}" if last_error else f"last value: {last_value!r}"
            raise AssertionError(
                f"timed out after {timeout_s:.0f}s waiting for {description} ({detail})"
            )
        time.sleep(interval_s)


@dataclass(frozen=True)
class StackHandle:
    settings: Settings
    runtime: LocalRuntime
    owned: bool  # False when reusing a stack someone else started: never stop it

    @property
    def engine_url(self) -> str:
        return self.settings.engine_url

    @property
    def gateway_url(self) -> str:
        return gateway_url(self.settings)

    @property
    def prometheus_url(self) -> str:
        return self.settings.prometheus_url

    @property
    def alertmanager_url(self) -> str:
        return self.settings.alertmanager_url

    def deployer(self, routed: bool = True) -> Deployer:
        """The deployment layer over this stack; unless ``routed`` it only reads and changes
        replicas, never the gateway's rotation."""
        routing = HttpGatewayRouting(self.gateway_url) if routed else None
        return Deployer(self.settings, self.runtime, routing)

    def gateway_engines(self) -> list[str]:
        """The engines in the gateway's rotation, as its admin state lists them."""
        state = httpx.get(f"{self.gateway_url}{GATEWAY_PATHS.state}").json()
        return [engine["name"] for engine in state["engines"]]

    def scraped_engines(self) -> set[str]:
        """The engine replicas written to Prometheus' discovery file."""
        return {target.labels["replica"] for target in read_job_targets(self.settings, "engine")}

    @classmethod
    def from_running(cls) -> StackHandle:
        settings = load_settings()
        return cls(settings, LocalRuntime(settings.run_dir), owned=False)


def require_stack_binaries(settings: Settings) -> None:
    """Skip (with the reason) where vLLM or Prometheus is missing, but never in CI: CI installs them."""
    missing = []
    if not Path(settings.engine_python).exists():
        missing.append(f"vLLM ({settings.engine_python})")
    for binary in (settings.prometheus_bin, settings.alertmanager_bin):
        if shutil.which(binary) is None:
            missing.append(binary)
    if not missing:
        return
    reason = f"not installed: {', '.join(missing)} (run `make setup`)"
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the real stack, but {reason}")
    pytest.skip(reason)


def isolated_settings(run_dir: Path, **overrides: object) -> Settings:
    """Settings for a stack of its own: a temporary run directory and free ports."""
    ports = {
        f"{name}_port": free_port()
        for name in (
            "engine",
            "gateway",
            "retriever",
            "loadgen",
            "trace_sink",
            "prometheus",
            "alertmanager",
            "alert_webhook",
            "console",
        )
    }
    return load_settings(run_dir=run_dir, **{**ports, **overrides})


def drill_context(
    run_dir: Path, mode: Mode, said: list[str], incident: str = "kv-exhaustion"
) -> DrillContext:
    """A drill's shared state on an isolated stack that is not running: for the steps' logic."""
    settings = isolated_settings(run_dir)
    runtime = LocalRuntime(settings.run_dir)
    loaded = load_incident(incident)
    return DrillContext(
        incident=loaded,
        settings=settings,
        options=DrillOptions(mode=mode),
        runtime=runtime,
        say=said.append,
        ctx=StackContext.from_settings(settings, runtime),
        prom=PrometheusClient(settings.prometheus_url),
        alertmanager=AlertmanagerClient(settings.alertmanager_url),
        result=DrillResult(loaded, mode, time.time()),
        rng=random.Random(0),
    )


def start_test_stack(run_dir: Path) -> StackHandle:
    settings = isolated_settings(run_dir)
    require_stack_binaries(settings)
    runtime = LocalRuntime(settings.run_dir)
    stack.up(settings, runtime, progress=lambda message: print(f"[stack] {message}"))
    return StackHandle(settings, runtime, owned=True)


def stop_test_stack(handle: StackHandle) -> None:
    if not handle.owned:
        return
    pids = [s.pid for s in (handle.runtime.status(n) for n in handle.runtime.names()) if s.pid]
    stack.down(
        handle.settings, handle.runtime, progress=lambda message: print(f"[stack] {message}")
    )
    leftovers = [pid for pid in pids if group_alive(pid)]
    assert not leftovers, f"process groups left running after down: {leftovers}"
    assert all(
        handle.runtime.status(n).state is ServiceState.STOPPED for n in ("engine", "prometheus")
    )


@contextmanager
def throwaway_prometheus(
    tmp_path: Path, scrape_self: bool = False, data: Path | None = None
) -> Iterator[str]:
    """A real Prometheus on a free port, its files under ``tmp_path``; yields its URL. Its TSDB
    is ``data`` (e.g. blocks made by promtool) or an empty one; with ``scrape_self`` it scrapes
    itself every second."""
    binary = shutil.which("prometheus")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have the prometheus binary (make setup)")
        pytest.skip("prometheus is not installed (run `make setup`)")
    port = free_port()
    config: dict[str, Any] = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [],
    }
    if scrape_self:
        config["scrape_configs"] = [
            {"job_name": "prometheus", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
        ]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={data or tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        poll_until(
            lambda: httpx.get(f"{url}/-/ready", timeout=2).status_code == 200,
            "throwaway prometheus ready",
            30,
        )
        yield url
    finally:
        stop_process(process)
        log.close()
