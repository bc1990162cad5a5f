"""Deployments on the real local stack: a canary vLLM engine with a bad configuration takes a
share of traffic through the gateway, shows up per version in Prometheus, and is rolled back;
a version whose engine cannot start is reported and removed. One extra engine at a time."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from sandbox.deploy import Deployer, DeployError, ReplicaState
from sandbox.deploy.rollout import Rollout
from sandbox.runtime.base import ServiceState
from sandbox.timeline import read as read_timeline
from tests.integration.gateway_support import prom_scalar
from tests.integration.traffic import complete
from tests.support import StackHandle, poll_until

pytestmark = pytest.mark.integration

LONG_PROMPT = (
    "the quick brown fox jumps over the lazy dog " * 70
)  # ~630 tokens: over 512, under 4096


@pytest.fixture
def deployer(local_stack: StackHandle) -> Iterator[Deployer]:
    deployer = local_stack.deployer()
    try:
        yield deployer
    finally:
        try:
            Rollout(deployer).rollback()
        finally:
            deployer.close()
        leftovers = [r.name for r in deployer.state().active()]
        assert not leftovers, f"replicas left running: {leftovers}"


def test_bad_canary_takes_its_share_then_rollback_returns_all_traffic_to_stable(
    local_stack: StackHandle, deployer: Deployer
) -> None:
    settings = local_stack.settings
    gateway = local_stack.gateway_url
    started = time.monotonic()
    replica = Rollout(deployer).deploy("canary-bad-maxlen", 50, progress=print)
    print(f"canary ready {replica.ready_at - replica.created_at:.1f} s after start")  # type: ignore[operator]
    assert replica.state is ReplicaState.READY and time.monotonic() - started < 300
    assert local_stack.scraped_engines() == {"engine", replica.name}

    # Short prompts succeed on both versions; long ones fail only where max-model-len is 512.
    statuses: dict[tuple[str, int], int] = {}
    for _ in range(16):
        response = complete(gateway, LONG_PROMPT, 8)
        version = response.headers.get("x-sandbox-version", "?")
        statuses[(version, response.status_code)] = (
            statuses.get((version, response.status_code), 0) + 1
        )
    assert all(complete(gateway, "hello", 8).status_code == 200 for _ in range(4))
    assert statuses.get(("stable", 200), 0) > 0, statuses
    assert sum(n for (v, code), n in statuses.items() if code == 400) > 0, statuses
    assert not any(code != 200 for (v, code) in statuses if v == "stable"), statuses

    # Per version in Prometheus: the canary is scraped as version="canary" and its errors are its own.
    poll_until(
        lambda: (
            prom_scalar(local_stack.prometheus_url, f'up{{job="engine",replica="{replica.name}"}}')
            == 1
        ),
        "Prometheus scraping the canary",
        timeout_s=30,
    )
    poll_until(
        lambda: (
            (
                prom_scalar(
                    local_stack.prometheus_url,
                    'sum(sandbox_gateway_requests_total{version="canary",status_class="4xx"})',
                )
                or 0
            )
            > 0
        ),
        "canary 4xx in Prometheus",
        timeout_s=30,
    )
    stable_4xx = (
        prom_scalar(
            local_stack.prometheus_url,
            'sum(sandbox_gateway_requests_total{version="stable",status_class="4xx"})',
        )
        or 0
    )
    assert stable_4xx == 0

    Rollout(deployer).deploy(
        "canary-bad-maxlen", 10
    )  # the same version: the weight moves, no restart
    assert httpx.get(f"{gateway}/admin/state").json()["weights"] == {"stable": 90.0, "canary": 10.0}

    pid = local_stack.runtime.status(replica.name).pid
    stopped = Rollout(deployer).rollback()
    assert [r.state for r in stopped] == [ReplicaState.STOPPED]
    assert local_stack.runtime.status(replica.name).state is ServiceState.STOPPED and pid
    assert local_stack.gateway_engines() == ["engine"]
    assert all(complete(gateway, LONG_PROMPT, 8).status_code == 200 for _ in range(4))
    assert local_stack.scraped_engines() == {"engine"}
    kinds = [
        e["kind"] for e in read_timeline(settings.run_dir) if e["kind"] in ("deploy", "rollback")
    ]
    assert kinds[-3:] == ["deploy", "deploy", "rollback"]


def test_a_version_that_cannot_start_is_reported_and_removed(
    local_stack: StackHandle, deployer: Deployer
) -> None:
    with pytest.raises(
        DeployError, match="broken-flag did not become ready: exited while starting"
    ) as failure:
        Rollout(deployer).deploy("broken-flag", 50, timeout_s=240)
    assert "no-such-vllm-flag" in str(failure.value)
    [replica] = [r for r in deployer.state().replicas if r.version == "broken-flag"][-1:]
    assert replica.state is ReplicaState.FAILED
    assert local_stack.runtime.status(replica.name).state is ServiceState.STOPPED
    assert local_stack.gateway_engines() == ["engine"]
    assert complete(local_stack.gateway_url, "still serving", 8).status_code == 200
    [event] = [
        e
        for e in read_timeline(local_stack.settings.run_dir, kind_prefix="replica.failed")
        if e["detail"]["replica"] == replica.name
    ]
    assert "exited while starting" in event["detail"]["reason"]
