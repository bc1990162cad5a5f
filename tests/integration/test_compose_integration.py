"""Compose mode for real: the CPU profile comes up and one incident runs against its containers.

It needs a Docker engine with the Compose plugin; where none answers (the machines this
project is built on) it is skipped with that reason. Nothing here stands in for Docker.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox import stack
from sandbox.drill.manifest import load_incident
from sandbox.drill.runner import Drill, DrillOptions
from sandbox.runtime import runtime_for
from sandbox.runtime.docker import DockerRuntime, docker_available
from sandbox.settings import REPO_ROOT, EngineBackend, Mode, Settings, load_settings

# A project of its own, so a user's `llm-sandbox` project is never touched.
PROJECT = "llm-sandbox-test"


def _missing() -> str | None:
    if not docker_available():
        return "no Docker engine answers on this machine: compose mode cannot be run here"
    try:
        subprocess.run(
            ["docker", "compose", "version"], check=True, capture_output=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return "Docker answers, but the Compose plugin (`docker compose`) is missing"
    return None


MISSING = _missing()
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(MISSING is not None, reason=MISSING or ""),
]


def _compose(*args: str, timeout: float) -> None:
    subprocess.run(
        ["docker", "compose", "-p", PROJECT, "--profile", "cpu", *args],
        cwd=REPO_ROOT,
        check=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def compose_settings() -> Iterator[Settings]:
    settings = load_settings(
        mode=Mode.COMPOSE, compose_project=PROJECT, engine_backend=EngineBackend.CPU
    )
    settings.targets_dir.mkdir(parents=True, exist_ok=True)
    _compose("up", "-d", "--wait", "--build", timeout=3600)
    try:
        yield settings
    finally:
        _compose("down", "--remove-orphans", "--volumes", timeout=600)


def test_the_cpu_profile_serves_kv_exhaustion(compose_settings: Settings, tmp_path: Path) -> None:
    runtime = runtime_for(compose_settings)
    assert isinstance(runtime, DockerRuntime)
    rows = stack.up(compose_settings, runtime, progress=print)
    assert all(row.ready for row in rows), [(r.name, r.why) for r in rows]
    result = Drill(
        load_incident("kv-exhaustion"),
        compose_settings,
        DrillOptions(mode="auto", report_dir=tmp_path),
        runtime=runtime,
    ).run()
    assert result.ok, result.failures
    # The engine change was undone: compose's own engine serves again.
    engine = runtime.find("engine")
    assert engine is not None and engine.labels.get("com.docker.compose.service") == "engine-cpu"
