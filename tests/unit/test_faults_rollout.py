"""The rollout and autoscaling changes against real processes where they can run here: the
autoscaler service itself, the stand-in engine for a restart, the options file the service reads.
Deploying a real canary is covered on the real stack (tests/integration, the bad-rollout drill)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
import pytest

import faults
from faults import FaultError, ParamError
from sandbox.autoscaler.options import load_options, options_path
from sandbox.deploy.targets import read_job_targets
from sandbox.runtime.base import ServiceSpec, ServiceState
from tests.unit.fault_targets import Targets
from tests.unit.test_faults import _cli, _ctx, _settings, targets_fixture  # noqa: F401 - a fixture


def test_autoscaler_policy_validates_before_writing_and_restores(
    tmp_path: Path, targets: Targets
) -> None:
    ctx = _ctx(_settings(tmp_path, targets))
    path = options_path(ctx.settings.run_dir)
    with pytest.raises(FaultError, match="signal 'rps'"):
        faults.inject(ctx, "autoscaler-policy", {"signal": "rps"})
    with pytest.raises(FaultError, match="min_replicas 3 > max_replicas 2"):
        faults.inject(ctx, "autoscaler-policy", {"min_replicas": 3})
    with pytest.raises(ParamError, match="'target'"):
        faults.inject(ctx, "autoscaler-policy", {"target": 0})
    with pytest.raises(FaultError, match="at least one field"):
        faults.inject(ctx, "autoscaler-policy", {})
    assert not path.exists() and not faults.active_handles(ctx)

    handle = faults.inject(
        ctx, "autoscaler-policy", {"signal": "request_rate", "target": 4, "readiness_gating": False}
    )
    options = load_options(path)
    assert (options.signal, options.target, options.readiness_gating) == (
        "request_rate",
        4.0,
        False,
    )
    assert handle.undo["previous"] == {
        "signal": "queue_depth",
        "target": 4.0,
        "readiness_gating": True,
    }
    faults.revert(ctx, handle.id)
    options = load_options(path)
    assert (options.signal, options.readiness_gating) == ("queue_depth", True)


def test_autoscaler_run_starts_the_service_and_undo_stops_it(
    tmp_path: Path, targets: Targets
) -> None:
    ctx = _ctx(_settings(tmp_path, targets))
    path = options_path(ctx.settings.run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"signal": "kv_usage", "target": 0.5}))  # someone's own options

    handle = faults.inject(
        ctx, "autoscaler-run", {"version": "stable-bounded", "max_replicas": 2, "interval_s": 1}
    )
    try:
        status = ctx.runtime.status("autoscaler")
        assert status.state is ServiceState.RUNNING
        port = load_options(path).port
        state = httpx.get(f"http://127.0.0.1:{port}/state", timeout=5).json()
        assert (
            state["options"]["version"] == "stable-bounded"
            and state["options"]["max_replicas"] == 2
        )
        [target] = read_job_targets(ctx.settings, "autoscaler")
        assert target.address == f"127.0.0.1:{port}"
        with pytest.raises(FaultError, match=r"already changed|already running"):
            faults.inject(ctx, "autoscaler-run", {"max_replicas": 3})
    finally:
        faults.revert(ctx, handle.id)
    assert ctx.runtime.status("autoscaler").state is not ServiceState.RUNNING
    assert read_job_targets(ctx.settings, "autoscaler") == []
    assert json.loads(path.read_text()) == {"signal": "kv_usage", "target": 0.5}


def test_canary_deploy_refuses_an_unknown_version_before_changing_anything(
    tmp_path: Path, targets: Targets
) -> None:
    ctx = _ctx(_settings(tmp_path, targets))
    with pytest.raises(
        FaultError, match=r"unknown version 'canary-nope'; known: .*canary-bad-maxlen"
    ):
        faults.inject(ctx, "canary-deploy", {"version": "canary-nope", "weight": 10})
    with pytest.raises(ParamError, match="'weight'"):
        faults.inject(ctx, "canary-deploy", {"version": "canary-slow", "weight": 120})
    assert not faults.active_handles(ctx)


def test_canary_deploy_live_and_shadow_are_separate_targets() -> None:
    change = faults.get_change("canary-deploy")
    live = change.target(change.parse({"version": "canary-slow", "weight": 25}))
    shadow = change.target(change.parse({"version": "canary-slow", "weight": 50, "shadow": True}))
    assert live != shadow


def test_engine_restart_restarts_with_the_live_settings_and_has_nothing_to_undo(
    tmp_path: Path, targets: Targets
) -> None:
    settings = _settings(tmp_path, targets)
    ctx = _ctx(settings)
    with pytest.raises(FaultError, match="not running"):
        faults.inject(ctx, "engine-restart", {})
    ctx.runtime.start(ctx.engine_component.spec(settings))
    try:
        seqs = faults.inject(ctx, "engine-max-num-seqs", {"max_num_seqs": 4})
        before = ctx.runtime.status("engine").pid
        restart = faults.inject(ctx, "engine-restart", {})
        after = ctx.runtime.status("engine")
        assert after.state is ServiceState.RUNNING and after.pid != before
        argv = Path(f"/proc/{after.pid}/cmdline").read_bytes().split(b"\0")
        assert b"4" == argv[argv.index(b"--max-num-seqs") + 1]  # the live engine change is kept
        faults.revert(ctx, restart.id)
        assert ctx.runtime.status("engine").pid == after.pid
        faults.revert(ctx, seqs.id)
    finally:
        ctx.runtime.stop("engine", 3.0)


def test_reset_stops_the_traffic_of_a_killed_drill(tmp_path: Path, targets: Targets) -> None:
    settings = _settings(tmp_path, targets)
    ctx = _ctx(settings)
    spec = ServiceSpec(
        name="loadgen",
        argv=(sys.executable, "-c", "import time; time.sleep(120)"),
        port=settings.loadgen_port,
    )
    ctx.runtime.start(spec)
    try:
        result = _cli(settings, "reset")
        assert result.returncode == 0, result.stderr
        assert "stopped the drill's load generator" in result.stdout
        assert ctx.runtime.status("loadgen").state is not ServiceState.RUNNING
        assert _cli(settings, "reset").stdout.strip() == "nothing to reset: no active fault"
    finally:
        ctx.runtime.stop("loadgen", 3.0)
