"""The autoscaler's loop against a real Prometheus (answering constant PromQL such as
`vector(12)`), stand-in engines under the LocalRuntime and the real gateway app: scale up and
down through the deployment layer, a replica that never becomes ready, metrics, options reload."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from sandbox.autoscaler.component import autoscaler_component
from sandbox.autoscaler.controller import Controller, JsonLog
from sandbox.autoscaler.options import AutoscalerOptions, options_path, save_options, update_options
from sandbox.autoscaler.policy import Direction
from sandbox.autoscaler.server import serve_http
from sandbox.cli import cli
from sandbox.deploy import Deployer, HttpGatewayRouting, ReplicaState
from sandbox.promapi import PrometheusClient, PrometheusError, Reduce
from sandbox.runtime.local import LocalRuntime
from sandbox.settings import Settings
from sandbox.timeline import read as read_timeline
from tests.support import free_port, isolated_settings, poll_until, throwaway_prometheus
from tests.unit.deploy_helpers import STANDIN_VERSIONS, StandInLauncher
from tests.unit.gateway_helpers import Server


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with throwaway_prometheus(tmp_path_factory.mktemp("prom")) as url:
        yield url


# `gateway`, the real gateway app with a stand-in stable engine: tests/unit/conftest.py.
@pytest.fixture
def settings(tmp_path: Path, gateway: Server) -> Settings:
    return isolated_settings(tmp_path / "run", gateway_port=gateway.port, stop_timeout_s=3.0)


class Loop:
    def __init__(self, controller: Controller, log: io.StringIO, settings: Settings) -> None:
        self.controller, self.log_text, self.settings = controller, log, settings

    def set(self, **changes: object) -> None:
        update_options(options_path(self.settings.run_dir), **changes)

    def logged(self, event: str) -> list[dict[str, object]]:
        return [
            r for r in map(json.loads, self.log_text.getvalue().splitlines()) if r["event"] == event
        ]

    def tick_until(self, check: object, what: str, timeout_s: float = 20) -> object:
        return poll_until(
            lambda: (self.controller.tick(), check())[1], what, timeout_s=timeout_s, interval_s=0.2
        )  # type: ignore[operator]


@pytest.fixture
def loop(settings: Settings, gateway: Server, prometheus: str) -> Iterator[Loop]:
    save_options(
        options_path(settings.run_dir),
        AutoscalerOptions(
            signal="custom",
            query="vector(2)",
            target=4,
            min_replicas=1,
            max_replicas=2,
            scale_up_cooldown_s=0,
            scale_down_cooldown_s=0,
            scale_down_stabilization_s=0,
            interval_s=0.2,
        ),
    )
    runtime = LocalRuntime(settings.run_dir)
    routing = HttpGatewayRouting(gateway.url)
    deployer = Deployer(
        settings,
        runtime,
        routing,
        versions=dict(STANDIN_VERSIONS),
        launcher=StandInLauncher(),
        drain_timeout_s=3.0,
        base_engine=False,
    )
    log = io.StringIO()
    controller = Controller(deployer, options_path(settings.run_dir), prometheus, log=JsonLog(log))
    try:
        yield Loop(controller, log, settings)
    finally:
        for name in runtime.names():
            runtime.stop(name, 3.0)
        for name in routing.engines():
            if name != "engine":
                routing.unregister(name)
        controller.close()
        deployer.close()


def test_scales_up_on_a_high_signal_and_down_when_it_falls(loop: Loop, settings: Settings) -> None:
    # No replica at all is below the warm minimum of 1: the first one starts whatever the signal.
    first = loop.controller.tick()
    assert first.direction is Direction.UP and first.reason == "below min_replicas 1"
    loop.tick_until(
        lambda: loop.controller.deployer.counts()["ready"] == 1, "the first replica ready"
    )
    steady = loop.controller.tick()
    assert steady.direction is Direction.NONE and steady.signal == 2.0

    loop.set(query="vector(12)")  # 12 waiting per replica against a target of 4
    up = loop.controller.tick()
    assert (up.direction, up.desired, up.recommendation) == (Direction.UP, 2, 2)
    assert loop.logged("options_changed")[0]["changes"] == {"query": "vector(12)"}
    loop.tick_until(
        lambda: loop.controller.deployer.counts()["ready"] == 2, "the second replica ready"
    )
    names = [r.name for r in loop.controller.deployer.state().active("stable")]
    assert len(names) == 2 and set(names) <= set(loop.controller.deployer.gateway.engines())  # type: ignore[union-attr]

    loop.set(query="vector(0.5)")
    down = loop.controller.tick()
    assert (down.direction, down.desired) == (Direction.DOWN, 1)
    loop.tick_until(
        lambda: (
            loop.controller.deployer.counts()["ready"] == 1
            and not loop.controller.deployer.counts()["draining"]
        ),
        "one replica left",
    )
    newest = names[-1]
    assert loop.controller.deployer.state().get(newest).state is ReplicaState.STOPPED
    # Still below target, but the warm minimum holds the last replica.
    assert loop.controller.tick().direction is Direction.NONE

    text = loop.controller.metrics.registry
    from prometheus_client import generate_latest

    metrics = generate_latest(text).decode()
    assert 'sandbox_autoscaler_decisions_total{direction="up"} 2.0' in metrics
    assert 'sandbox_autoscaler_decisions_total{direction="down"} 1.0' in metrics
    assert "sandbox_autoscaler_scale_up_to_ready_seconds_count 2.0" in metrics
    assert "sandbox_autoscaler_ready_replicas 1.0" in metrics
    assert (
        "sandbox_autoscaler_signal_value 0.5" in metrics
        and "sandbox_autoscaler_signal_target 4.0" in metrics
    )
    assert 'sandbox_autoscaler_signal_info{signal="custom"} 1.0' in metrics
    decisions = loop.logged("decision")
    assert {"signal", "target", "ready", "starting", "desired", "reason", "query"} <= set(
        decisions[-1]
    )
    kinds = [
        e["kind"]
        for e in read_timeline(settings.run_dir)
        if e["kind"].startswith("autoscaler.scale")
    ]
    assert kinds == ["autoscaler.scale_up", "autoscaler.scale_up", "autoscaler.scale_down"]


def test_a_replica_that_never_becomes_ready_is_reported_and_removed(loop: Loop) -> None:
    loop.set(version="never-ready", ready_timeout_s=2.0, scale_up_cooldown_s=60)
    assert loop.controller.tick().direction is Direction.UP
    [starting] = loop.controller.deployer.state().active()
    loop.tick_until(lambda: loop.logged("replica_failed"), "the replica to be failed")
    [failed] = loop.logged("replica_failed")
    assert failed["replica"] == starting.name and failed["reason"] == "deadline"
    assert "not ready" in str(failed["detail"])
    assert loop.controller.deployer.runtime.status(starting.name).state.value == "stopped"
    from prometheus_client import generate_latest

    assert (
        'sandbox_autoscaler_replica_failures_total{reason="deadline"} 1.0'
        in generate_latest(loop.controller.metrics.registry).decode()
    )


def test_without_readiness_gating_the_gateway_gets_a_starting_replica(loop: Loop) -> None:
    loop.set(version="slow-start", readiness_gating=False)
    loop.controller.tick()
    [replica] = loop.controller.deployer.state().active()
    assert replica.state is ReplicaState.STARTING and replica.registered
    assert replica.name in loop.controller.deployer.gateway.engines()  # type: ignore[union-attr]


def test_a_bad_options_file_is_rejected_and_the_old_options_kept(
    loop: Loop, settings: Settings
) -> None:
    options_path(settings.run_dir).write_text('{"signal": "latency"}')
    loop.controller.tick()
    [rejected] = loop.logged("options_rejected")
    assert "use one of queue_depth" in str(rejected["error"])
    assert loop.controller.options.query == "vector(2)"


def test_the_signal_query_reports_prometheus_errors(prometheus: str) -> None:
    two = 'label_replace(vector(1), "a", "x", "", "") or label_replace(vector(2), "a", "y", "", "")'
    with PrometheusClient(prometheus) as prom:
        assert prom.value("vector(3)", Reduce.ONLY) == 3.0
        assert prom.value("absent_metric_xyz", Reduce.ONLY) is None
        with pytest.raises(PrometheusError, match="parse error"):
            prom.value("sum(", Reduce.ONLY)
        with pytest.raises(PrometheusError, match="returned 2 series"):
            prom.value(two, Reduce.ONLY)
        assert prom.value(two, Reduce.MAX) == 2.0
        assert prom.value(two, Reduce.SUM) == 3.0
    with (
        PrometheusClient(f"http://127.0.0.1:{free_port()}") as down,
        pytest.raises(PrometheusError, match="ConnectError"),
    ):
        down.value("vector(1)", Reduce.ONLY)


def test_http_endpoints_and_cli(
    loop: Loop, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    server = serve_http("127.0.0.1", port, loop.controller.metrics.registry, loop.controller.state)
    try:
        loop.controller.tick()
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/health").status_code == 200
        assert "sandbox_autoscaler_desired_replicas 1.0" in httpx.get(f"{base}/metrics").text
        state = httpx.get(f"{base}/state").json()
        assert (
            state["last_decision"]["reason"] == "below min_replicas 1"
            and state["query"] == "vector(2)"
        )
        monkeypatch.setenv("SANDBOX_RUN_DIR", str(settings.run_dir))
        update_options(options_path(settings.run_dir), port=port)
        runner = CliRunner()
        result = runner.invoke(cli, ["autoscaler", "status"])
        assert result.exit_code == 0 and '"desired": 1' in result.output, result.output
        result = runner.invoke(cli, ["autoscaler", "set", "signal=queue_depth", "min_replicas=2"])
        assert result.exit_code == 0 and "signal=queue_depth, min_replicas=2" in result.output, (
            result.output
        )
        result = runner.invoke(cli, ["autoscaler", "set", "min_replicas=9"])
        assert result.exit_code == 2 and "min_replicas 9 > max_replicas 2" in result.output
        result = runner.invoke(cli, ["autoscaler", "set", "colour=blue"])
        assert result.exit_code == 2 and "expected field=value" in result.output
    finally:
        server.shutdown()


def test_the_component_writes_its_options_and_scrapes_its_port(settings: Settings) -> None:
    component = autoscaler_component(AutoscalerOptions(port=8411, signal="request_rate"))
    spec = component.spec(settings)
    assert spec.argv[1:] == ("-m", "sandbox.autoscaler") and spec.port == 8411
    assert (
        spec.env["SANDBOX_RUN_DIR"] == str(settings.run_dir) and spec.env["SANDBOX_MODE"] == "auto"
    )
    assert json.loads(options_path(settings.run_dir).read_text())["signal"] == "request_rate"
    [target] = component.scrape(settings)
    assert (target.job, target.address) == ("autoscaler", "127.0.0.1:8411")
