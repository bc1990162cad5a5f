"""Deployments with real processes (stand-in engines under the LocalRuntime) and the real gateway
app: state transitions, deadlines, readiness gating, canary weights, shadow, rollback, timeline."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from sandbox.cli import cli
from sandbox.deploy import (
    Deployer,
    DeployError,
    HttpGatewayRouting,
    ReplicaState,
    TransitionError,
    load_versions,
)
from sandbox.deploy.engines import in_flight_from_metrics
from sandbox.deploy.rollout import Rollout
from sandbox.deploy.state import Replica, StateStore
from sandbox.deploy.targets import read_job_targets
from sandbox.deploy.versions import (
    ENGINE_SETTINGS,
    EngineVersion,
    VersionError,
    version_field,
    version_settings,
)
from sandbox.runtime.base import ServiceSpec, ServiceState
from sandbox.runtime.local import LocalRuntime, group_alive
from sandbox.settings import Settings, SettingsError, load_settings
from sandbox.timeline import read as read_timeline
from sandbox.timeline import record
from tests.support import free_port, isolated_settings, poll_until
from tests.unit.deploy_helpers import SCRIPT, STANDIN_VERSIONS, StandInLauncher
from tests.unit.gateway_helpers import Server


# `gateway`, the real gateway app with a stand-in stable engine: tests/unit/conftest.py.
@pytest.fixture
def settings(tmp_path: Path, gateway: Server) -> Settings:
    return isolated_settings(tmp_path / "run", gateway_port=gateway.port, stop_timeout_s=3.0)


@pytest.fixture
def deployer(settings: Settings, gateway: Server) -> Iterator[Deployer]:
    runtime = LocalRuntime(settings.run_dir)
    deployer = Deployer(
        settings,
        runtime,
        HttpGatewayRouting(gateway.url),
        versions=dict(STANDIN_VERSIONS),
        launcher=StandInLauncher(),
        drain_timeout_s=3.0,
        base_engine=False,
    )
    try:
        yield deployer
    finally:
        for name in runtime.names():
            runtime.stop(name, 3.0)
        deployer.gateway.set_shadow(None)  # type: ignore[union-attr]
        deployer.gateway.set_weights({"stable": 1})  # type: ignore[union-attr]
        for name in deployer.gateway.engines():  # type: ignore[union-attr]
            if name != "engine":
                deployer.gateway.unregister(name)  # type: ignore[union-attr]
        deployer.close()


def _gateway_state(gateway: Server) -> dict[str, object]:
    return httpx.get(f"{gateway.url}/admin/state").json()  # type: ignore[no-any-return]


def _ready(deployer: Deployer, name: str) -> Replica:
    return deployer.wait_settled(name, timeout_s=20)


# -- The state machine ----------------------------------------------------------------------------


def test_replica_moves_only_along_its_state_machine() -> None:
    replica = Replica(name="r", version="stable", track="stable", port=1, url="http://x")
    replica.move(ReplicaState.READY)
    assert replica.ready_at is not None
    with pytest.raises(TransitionError, match="ready -> starting"):
        replica.move(ReplicaState.STARTING)
    replica.move(ReplicaState.DRAINING, "scale down")
    replica.move(ReplicaState.STOPPED)
    for target in ReplicaState:
        with pytest.raises(TransitionError):
            replica.move(target)


def test_state_survives_a_new_deployer_and_keeps_a_bounded_history(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    with store.transaction() as state:
        for _ in range(60):
            name = state.new_name("stable")
            replica = Replica(name=name, version="stable", track="stable", port=1, url="u")
            replica.move(ReplicaState.FAILED, "test")
            state.replicas.append(replica)
        state.replicas.append(
            Replica(name=state.new_name("canary"), version="v", track="canary", port=2, url="u")
        )
    again = StateStore(tmp_path).load()
    assert again.next_index == 62
    assert [r.name for r in again.active()] == ["engine-canary-61"]
    assert len(again.replicas) == 41  # the active one plus the last 40 finished


def test_a_failed_transaction_leaves_the_state_unchanged(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    with pytest.raises(RuntimeError):
        with store.transaction() as state:
            state.weights = {"canary": 100}
            raise RuntimeError("boom")
    assert store.load().weights == {"stable": 100.0}


# -- Versions ---------------------------------------------------------------------------------------


def test_the_versions_file_defines_stable_and_the_bad_canaries(settings: Settings) -> None:
    versions = load_versions()
    assert {"stable", "canary-bad-maxlen", "canary-slow", "broken-flag"} <= set(versions)
    assert version_settings(settings, versions["canary-slow"]).max_num_seqs == 1
    assert version_settings(settings, versions["canary-bad-maxlen"]).max_model_len == 512
    assert version_settings(settings, versions["stable"]) == settings


def test_a_version_overrides_stack_settings_and_is_validated_as_they_are() -> None:
    for setting in ENGINE_SETTINGS:
        assert setting in Settings.model_fields
        assert version_field(setting) in EngineVersion.model_fields
    # The stack refuses --max-model-len below 256, so a version may not ask for it either.
    with pytest.raises(SettingsError, match="MAX_MODEL_LEN"):
        load_settings(max_model_len=100)
    with pytest.raises(ValidationError, match="greater than or equal to 256") as caught:
        EngineVersion.model_validate({"name": "short", "max_model_len": 100})
    assert caught.value.errors()[0]["loc"] == ("max_model_len",)
    with pytest.raises(ValidationError, match="not a CPU list"):
        EngineVersion.model_validate({"name": "nowhere", "cpus": "a-b"})


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            "versions:\n  stable: {}\n  fast:\n    max_num_seqs: 0\n",
            r"versions\.yaml: versions\.fast\.max_num_seqs",
        ),
        ("versions:\n  canary: {}\n", r"versions\.stable is missing"),
        ("versions:\n  stable:\n    max_num_seq: 2\n", "max_num_seq"),
    ],
    ids=["bad-value", "no-stable", "unknown-field"],
)
def test_a_bad_versions_file_names_the_file_and_field(
    tmp_path: Path, text: str, error: str
) -> None:
    path = tmp_path / "versions.yaml"
    path.write_text(text)
    with pytest.raises(VersionError, match=error):
        load_versions(path)


def test_the_vllm_launcher_applies_the_version_to_the_engine_argv(settings: Settings) -> None:
    from sandbox.deploy.engines import VllmLauncher
    from sandbox.settings import Mode

    versions = load_versions()
    replica = Replica(
        name="engine-canary-1", version="canary-slow", track="canary", port=4321, url="u"
    )
    spec = VllmLauncher(settings, Mode.LOCAL).spec(versions["canary-slow"], replica)
    argv = list(spec.argv)
    assert argv[argv.index("--max-num-seqs") + 1] == "1"
    assert argv[argv.index("--port") + 1] == "4321"
    bad = VllmLauncher(settings, Mode.LOCAL).spec(versions["broken-flag"], replica)
    assert bad.argv[-1] == "--no-such-vllm-flag"
    # In a container it listens on all its interfaces on the engine's container port, and
    # loads the model from where the volume mounts it.
    inside = VllmLauncher(settings, Mode.COMPOSE).spec(versions["canary-slow"], replica)
    command = list(inside.command)
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert command[command.index("--port") + 1] == "8000"
    model = f"/models/{settings.model_dir.name}"
    assert command[command.index("--model") + 1] == model
    assert inside.volumes == {str(settings.model_dir): model}
    assert inside.container_port == 8000
    assert command[command.index("--max-num-seqs") + 1] == "1"
    assert (
        VllmLauncher(settings, Mode.COMPOSE).url("engine-canary-1", 4321)
        == "http://engine-canary-1:8000"  # its alias on the network
    )


def test_the_stack_engine_is_the_replica_of_version_stable(tmp_path: Path) -> None:
    from sandbox.components.engine import engine_component
    from sandbox.deploy.engines import VllmLauncher, stack_engine_component
    from sandbox.settings import Mode

    settings = load_settings(run_dir=tmp_path, engine_port=8100, engine_backend="cpu")
    # With the shipped versions, it is the engine the stack always started.
    stack_spec = stack_engine_component().spec(settings)
    old = engine_component().spec(settings)
    assert (stack_spec.name, stack_spec.argv, stack_spec.env) == (old.name, old.argv, old.env)
    # A stable replica beside it runs the same configuration; only its name and port differ.
    stable = load_versions()["stable"]
    beside = Replica(name="engine-stable-1", version="stable", track="stable", port=8200, url="")
    replica_spec = VllmLauncher(settings, Mode.LOCAL).spec(stable, beside)
    swap = {"8200": "8100"}
    assert [swap.get(a, a) for a in replica_spec.argv] == list(stack_spec.argv)
    assert replica_spec.env == stack_spec.env
    assert replica_spec.compute_threads == stack_spec.compute_threads > 0
    # On the CPU the stack engine's API server is real-time; a replica, which starts while the
    # stack serves, is not.
    assert (stack_spec.realtime, replica_spec.realtime) == (True, False)
    assert stack_spec.child_nice == replica_spec.child_nice > 0
    # What versions.yaml says of `stable` holds for the stack's engine too.
    path = tmp_path / "versions.yaml"
    path.write_text("versions:\n  stable:\n    max_num_seqs: 3\n    cpus: '0'\n")
    spec = stack_engine_component(path).spec(settings)
    assert spec.argv[list(spec.argv).index("--max-num-seqs") + 1] == "3"
    assert spec.cpus == (0,) and spec.compute_threads == 1
    path.write_text("versions:\n  stable:\n    max_num_seqs: lots\n")
    with pytest.raises(VersionError, match=r"versions\.stable\.max_num_seqs"):
        stack_engine_component(path).spec(settings)


def test_a_version_with_its_own_cores_confines_each_replica(settings: Settings) -> None:
    from sandbox.deploy.engines import VllmLauncher
    from sandbox.deploy.versions import EngineVersion
    from sandbox.settings import Mode

    replica = Replica(name="engine-stable-1", version="pinned", track="stable", port=4321, url="u")
    spec = VllmLauncher(settings, Mode.LOCAL).spec(
        EngineVersion(name="pinned", cpus="0-1"), replica
    )
    # A compute thread per core it has.
    assert spec.cpus == (0, 1) and spec.compute_threads == 2
    with pytest.raises(ValueError, match="not a CPU list"):
        EngineVersion(name="pinned", cpus="core 1")


def test_in_flight_is_read_from_vllm_metrics() -> None:
    text = (
        '# HELP vllm:num_requests_running x\nvllm:num_requests_running{engine="0",model_name="tiny"} 2.0\n'
        'vllm:num_requests_waiting{engine="0",model_name="tiny"} 3.0\nvllm:num_requests_waiting_by_reason 9\n'
    )
    assert in_flight_from_metrics(text) == 5.0


# -- Replicas -----------------------------------------------------------------------------------------


def test_a_replica_is_admitted_to_prometheus_and_the_gateway_only_once_ready(
    deployer: Deployer, settings: Settings, gateway: Server
) -> None:
    replica = deployer.start_replica("slow-start")
    assert replica.state is ReplicaState.STARTING
    deployer.poll()
    assert deployer.state().get(replica.name).state is ReplicaState.STARTING
    assert read_job_targets(settings, "engine") == []
    assert replica.name not in deployer.gateway.engines()  # type: ignore[union-attr]

    ready = _ready(deployer, replica.name)
    assert ready.state is ReplicaState.READY and ready.registered
    assert ready.ready_at is not None and ready.ready_at - ready.created_at >= 1.0
    [target] = read_job_targets(settings, "engine")
    assert target.address == f"127.0.0.1:{replica.port}"
    assert target.labels == {"version": "stable", "replica": replica.name, "config": "slow-start"}
    engines = {e["name"]: e for e in _gateway_state(gateway)["engines"]}  # type: ignore[union-attr]
    assert (
        engines[replica.name]["version"] == "stable" and engines[replica.name]["url"] == replica.url
    )
    kinds = [e["kind"] for e in read_timeline(settings.run_dir, kind_prefix="replica.")]
    assert kinds == ["replica.starting", "replica.ready"]


def test_an_engine_that_exits_while_starting_fails_with_its_log(
    deployer: Deployer, settings: Settings
) -> None:
    replica = deployer.start_replica("broken-flag")
    failed = poll_until(
        lambda: (
            (r := (deployer.poll(), deployer.state().get(replica.name))[1]).state
            is ReplicaState.FAILED
            and r
        ),
        "the broken replica to fail",
        timeout_s=15,
    )
    assert "exited while starting" in failed.reason and "--no-such-vllm-flag" in failed.reason
    assert failed.failure == "exited"  # the bounded kind the autoscaler's metric label uses
    assert deployer.runtime.status(replica.name).state is ServiceState.STOPPED
    assert read_job_targets(settings, "engine") == []
    [event] = read_timeline(settings.run_dir, kind_prefix="replica.failed")
    assert event["detail"]["replica"] == replica.name and "exited" in event["detail"]["reason"]


def test_an_engine_never_ready_by_its_deadline_is_failed_and_stopped(deployer: Deployer) -> None:
    replica = deployer.start_replica("never-ready")  # ready_timeout_s 3
    pid = deployer.runtime.status(replica.name).pid
    assert pid is not None
    settled = deployer.wait_settled(replica.name, timeout_s=15)
    assert settled.state is ReplicaState.FAILED
    assert (
        "not ready 3 s after start" in settled.reason and "/health answered 503" in settled.reason
    )
    assert not group_alive(pid)
    assert not settled.registered


def test_without_readiness_gating_a_starting_replica_is_routed_at_once(
    deployer: Deployer, settings: Settings, gateway: Server
) -> None:
    replica = deployer.start_replica("never-ready", gated=False)
    assert replica.state is ReplicaState.STARTING and replica.registered
    assert replica.name in deployer.gateway.engines()  # type: ignore[union-attr]
    assert [t.labels["replica"] for t in read_job_targets(settings, "engine")] == [replica.name]
    failed = deployer.wait_settled(replica.name, timeout_s=15)
    assert failed.state is ReplicaState.FAILED
    assert replica.name not in deployer.gateway.engines()  # type: ignore[union-attr]
    assert read_job_targets(settings, "engine") == []


def test_draining_withdraws_then_stops_the_replica(deployer: Deployer, settings: Settings) -> None:
    replica = _ready(deployer, deployer.start_replica("stable").name)
    pid = deployer.runtime.status(replica.name).pid
    draining = deployer.drain(replica.name, "scale down")
    assert draining.state is ReplicaState.DRAINING and not draining.registered
    assert replica.name not in deployer.gateway.engines()  # type: ignore[union-attr]
    assert read_job_targets(settings, "engine") == []
    moves = deployer.poll()  # idle: stopped at the first poll
    assert [(m.before, m.after) for m in moves] == [(ReplicaState.DRAINING, ReplicaState.STOPPED)]
    assert deployer.state().get(replica.name).reason == "drained"
    assert pid is not None and not group_alive(pid)


def test_a_ready_replica_that_dies_is_failed_and_withdrawn(deployer: Deployer) -> None:
    replica = _ready(deployer, deployer.start_replica("stable").name)
    pid = deployer.runtime.status(replica.name).pid
    assert pid is not None
    import os
    import signal

    os.killpg(pid, signal.SIGKILL)
    poll_until(lambda: not group_alive(pid), "the killed replica to go", timeout_s=5)
    moves = deployer.poll()
    assert [(m.replica.name, m.after) for m in moves] == [(replica.name, ReplicaState.FAILED)]
    assert "died while ready" in deployer.state().get(replica.name).reason
    assert replica.name not in deployer.gateway.engines()  # type: ignore[union-attr]


def test_the_stack_engine_counts_as_a_ready_stable_replica_and_is_never_drained(
    settings: Settings,
) -> None:
    runtime = LocalRuntime(settings.run_dir)
    port = free_port()
    runtime.start(
        ServiceSpec(name="engine", argv=("python3", str(SCRIPT), "--port", str(port)), port=port)
    )
    try:
        with Deployer(
            settings, runtime, None, versions=dict(STANDIN_VERSIONS), launcher=StandInLauncher()
        ) as deployer:
            assert deployer.counts()["ready"] == 1
            assert deployer.counts("canary")["ready"] == 0
            with pytest.raises(DeployError, match="not managed"):
                deployer.drain("engine", "test")
            deployer.poll()
            [target] = read_job_targets(settings, "engine")
            assert target.labels == {"version": "stable", "replica": "engine"}
    finally:
        runtime.stop("engine", 3.0)


# -- Canary, shadow, rollback -----------------------------------------------------------------------


def test_deploy_shifts_weights_only_after_ready_and_rollback_restores_stable(
    deployer: Deployer, settings: Settings, gateway: Server
) -> None:
    replica = Rollout(deployer).deploy("canary-good", 25)
    assert replica.state is ReplicaState.READY and replica.track == "canary"
    state = _gateway_state(gateway)
    assert state["weights"] == {"stable": 75.0, "canary": 25.0}
    assert deployer.state().weights == {"stable": 75.0, "canary": 25.0}

    again = Rollout(deployer).deploy("canary-good", 50)  # same version: only the weight moves
    assert again.name == replica.name
    assert _gateway_state(gateway)["weights"] == {"stable": 50.0, "canary": 50.0}

    stopped = Rollout(deployer).rollback()
    assert [(r.name, r.state) for r in stopped] == [(replica.name, ReplicaState.STOPPED)]
    state = _gateway_state(gateway)
    assert state["weights"]["stable"] == 100.0 and state["weights"].get("canary", 0) == 0  # type: ignore[index,union-attr]
    assert [e["name"] for e in state["engines"]] == ["engine"]  # type: ignore[union-attr]
    assert deployer.runtime.status(replica.name).state is ServiceState.STOPPED
    kinds = [
        e["kind"] for e in read_timeline(settings.run_dir) if not e["kind"].startswith("replica.")
    ]
    assert kinds == ["deploy", "deploy", "rollback"]
    deploy_event = read_timeline(settings.run_dir, kind_prefix="deploy")[0]["detail"]
    assert deploy_event["version"] == "canary-good" and deploy_event["weight"] == 25
    assert deploy_event["start_to_ready_s"] >= 0


def test_shadow_mirrors_without_taking_traffic(deployer: Deployer, gateway: Server) -> None:
    Rollout(deployer).deploy("canary-good", 40, shadow=True)
    state = _gateway_state(gateway)
    assert state["shadow"] == {"version": "canary", "share": 0.4}
    assert state["weights"] == {"stable": 100.0, "canary": 0.0}
    Rollout(deployer).rollback()
    assert _gateway_state(gateway)["shadow"] is None


def test_deploying_another_version_replaces_the_canary(deployer: Deployer) -> None:
    first = Rollout(deployer).deploy("canary-good", 10)
    second = Rollout(deployer).deploy("slow-start", 10)
    assert second.name != first.name and second.version == "slow-start"
    assert deployer.state().get(first.name).state is ReplicaState.STOPPED
    assert [r.name for r in deployer.state().active("canary")] == [second.name]


def test_a_deploy_that_never_becomes_ready_fails_and_leaves_stable_serving(
    deployer: Deployer, settings: Settings, gateway: Server
) -> None:
    with pytest.raises(DeployError, match="never-ready did not become ready: not ready"):
        Rollout(deployer).deploy("never-ready", 50)
    weights = _gateway_state(gateway)["weights"]
    assert weights["stable"] == 1.0 and weights.get("canary", 0) == 0  # type: ignore[index,union-attr]
    assert not deployer.state().active()
    assert read_timeline(settings.run_dir, kind_prefix="deploy.failed")
    with pytest.raises(DeployError, match="between 0 and 100"):
        Rollout(deployer).deploy("canary-good", 120)
    with pytest.raises(VersionError, match="unknown version 'nope'"):
        Rollout(deployer).deploy("nope", 10)


# -- Timeline and CLI ------------------------------------------------------------------------------


def test_the_timeline_is_json_lines_and_skips_a_torn_line(tmp_path: Path) -> None:
    record(tmp_path, "fault.inject", {"name": "x"}, ts=1.0)
    with open(tmp_path / "timeline.jsonl", "a") as out:
        out.write('{"ts": 2, "kind": "cut')
        out.write("\n")
    record(tmp_path, "rollback", {}, ts=3.0)
    assert [e["kind"] for e in read_timeline(tmp_path)] == ["fault.inject", "rollback"]
    assert [e["kind"] for e in read_timeline(tmp_path, since=2.5)] == ["rollback"]
    line = (tmp_path / "timeline.jsonl").read_text().splitlines()[0]
    assert json.loads(line) == {"ts": 1.0, "kind": "fault.inject", "detail": {"name": "x"}}


def test_cli_deployments_and_rollback(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDBOX_RUN_DIR", str(settings.run_dir))
    monkeypatch.setenv("SANDBOX_GATEWAY_PORT", str(settings.gateway_port))
    monkeypatch.setenv("SANDBOX_MODE", "local")
    runner = CliRunner()
    result = runner.invoke(cli, ["deployments"])
    assert result.exit_code == 0, result.output
    assert "weights: stable=100; shadow: off" in result.output
    result = runner.invoke(cli, ["rollback"])
    assert result.exit_code == 0, result.output
    assert "no canary was running" in result.output
    result = runner.invoke(cli, ["deploy", "no-such-version", "--weight", "10"])
    assert result.exit_code == 1 and "unknown version 'no-such-version'" in result.output
    assert read_timeline(settings.run_dir, kind_prefix="rollback")
