"""Compose mode without a Docker engine: what the sandbox asks of the runtime, and what it refuses.

An SDK client pointed at a socket that does not exist stands for the runtime's client; any call
that would reach an engine fails, so these tests prove the code decides without one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import docker
import faults
from faults import FaultError, StackContext
from sandbox.runtime.docker import DockerRuntime
from sandbox.settings import REPO_ROOT, load_settings
from sandbox.stack import default_components, preflight

# Incidents that use a change refusing compose mode; docs/compose.md lists the same.
LOCAL_ONLY = {"cold-start-autoscaling"}


@pytest.fixture()
def runtime() -> DockerRuntime:
    client = docker.DockerClient(
        base_url="unix:///nonexistent/docker.sock", version="1.43", timeout=1
    )
    return DockerRuntime(client, network="llm-sandbox_default")


def _changes(node: object) -> set[str]:
    if isinstance(node, dict):
        found = {str(node["change"])} if "change" in node else set()
        return found.union(*(_changes(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_changes(v) for v in node))
    return set()


def test_changes_without_a_compose_equivalent_refuse_clearly(
    runtime: DockerRuntime, tmp_path: Path
) -> None:
    ctx = StackContext.from_settings(load_settings(run_dir=tmp_path), runtime, progress=print)
    assert ctx.compose_mode
    with pytest.raises(
        FaultError,
        match=r"does not work in compose mode: the autoscaler would run.*SANDBOX_MODE=local",
    ):
        faults.inject(ctx, "autoscaler-run", {})


def test_the_local_only_incidents_are_those_using_such_changes() -> None:
    refusing = {c.name for c in faults.list_changes() if c.compose_refusal}
    assert refusing == {"autoscaler-run"}
    local_only = {
        path.parent.name
        for path in (REPO_ROOT / "incidents").glob("*/incident.yaml")
        if _changes(yaml.safe_load(path.read_text())) & refusing
    }
    assert local_only == LOCAL_ONLY
    guide = (REPO_ROOT / "docs" / "compose.md").read_text()
    assert all(f"`{name}`" in guide for name in LOCAL_ONLY | refusing)


def test_up_in_compose_mode_needs_no_local_engine_or_prometheus(
    runtime: DockerRuntime, tmp_path: Path
) -> None:
    settings = load_settings(
        run_dir=tmp_path, engine_python=tmp_path / "missing", prometheus_bin="no-such-prometheus"
    )
    components = default_components(compose=True)
    # The collector stands in for the local trace sink; everything else is compose's.
    assert "tracesink" not in {c.name for c in components}
    assert preflight(settings, components, runtime) == []
