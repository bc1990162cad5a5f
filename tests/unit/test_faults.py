"""Faults against the real gateway, retriever and load generator (in process, on free ports)
and a real LocalRuntime: inject, revert, TTL, idempotence, the handle written before the change,
and `sandbox reset` after a crash."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import faults
from faults import FaultConflict, FaultError, HandleState, ParamError, StackContext
from faults.endpoints import Endpoints
from faults.store import HandleStore
from sandbox import stack
from sandbox.components.base import Component, ScrapeTarget, http_ready
from sandbox.components.engine import engine_argv
from sandbox.runtime.base import ServiceSpec, ServiceState
from sandbox.runtime.local import LocalRuntime, group_alive
from sandbox.settings import REPO_ROOT, Settings, load_settings
from tests.support import free_port, poll_until
from tests.unit.fault_targets import (
    LONG_CONTEXT,
    STANDIN_ENGINE,
    Call,
    Targets,
    running_targets,
)

REPO = str(REPO_ROOT)


# Named apart from the fixture so that a module importing it can take ``targets`` as a
# parameter without shadowing the import.
@pytest.fixture(name="targets")
def targets_fixture(tmp_path: Path) -> Iterator[Targets]:
    with running_targets(tmp_path / "run" / "faults") as targets:
        yield targets


def _settings(tmp_path: Path, targets: Targets, **extra: object) -> Settings:
    return load_settings(
        run_dir=tmp_path / "run",
        gateway_port=targets.gateway.port,
        retriever_port=targets.retriever.port,
        loadgen_port=targets.loadgen.port,
        engine_port=targets.engine_port,
        stop_timeout_s=3.0,
        ready_timeout_s=20.0,
        **extra,
    )


def _ctx(settings: Settings) -> StackContext:
    return StackContext(
        settings=settings,
        runtime=LocalRuntime(settings.run_dir),
        endpoints=Endpoints.from_settings(settings),
        engine_component=_standin_engine(),
        progress=lambda message: None,
    )


def _standin_engine() -> Component:
    def spec(settings: Settings) -> ServiceSpec:
        # The real engine's flags (--port, --max-num-seqs, the KV blocks), which it answers on /argv.
        argv = (sys.executable, "-c", STANDIN_ENGINE, *engine_argv(settings, settings.engine_port))
        return ServiceSpec(
            name="engine", argv=argv, port=settings.engine_port, cpus=settings.engine_cpu_set
        )

    return Component(
        name="engine",
        spec=spec,
        url=lambda s: s.engine_url,
        check=lambda s, client: http_ready(client, f"{s.engine_url}/health", "stand-in engine"),
        scrape=lambda s: [ScrapeTarget("engine", f"{s.host}:{s.engine_port}", {})],
    )


# -- parameters ------------------------------------------------------------------------------


def test_bad_params_name_the_field(tmp_path: Path, targets: Targets) -> None:
    ctx = _ctx(_settings(tmp_path, targets))
    with pytest.raises(ParamError) as info:
        faults.inject(ctx, "retriever-latency", {"kind": "fixed", "delay_s": -1})
    assert "delay_s" in str(info.value) and info.value.problems[0][0] == "delay_s"
    with pytest.raises(ParamError, match="kind fixed needs delay_s"):
        faults.inject(ctx, "retriever-latency", {"kind": "fixed"})
    with pytest.raises(ParamError, match="'colour'"):
        faults.inject(ctx, "traffic-tenant", {"tenant": "x", "enabled": True, "colour": "red"})
    with pytest.raises(ParamError, match="at least one of"):
        faults.inject(ctx, "traffic-tenant", {"tenant": "x"})
    with pytest.raises(FaultError, match="no fault named 'nope'"):
        faults.inject(ctx, "nope", {})
    assert targets.calls == [] and faults.active_handles(ctx) == []


# -- inject / revert / idempotence -----------------------------------------------------------


def test_retriever_latency_inject_revert_and_handle_written_first(
    tmp_path: Path, targets: Targets
) -> None:
    ctx = _ctx(_settings(tmp_path, targets))
    handle = faults.inject(ctx, "retriever-latency", {"median_s": 0.5, "sigma": 1.2}, ttl_s=60)
    assert handle.state is HandleState.ACTIVE
    assert (ctx.faults_dir / f"{handle.id}.json").exists()
    search = targets.retriever_faults()["search"]
    assert search["kind"] == "heavy_tail" and search["params"] == {"median_s": 0.5, "sigma": 1.2}
    # The retriever's own TTL backs ours up, with a margin.
    assert search["expires_in_s"] > 60
    # Every state-changing call found the handle already on disk.
    assert [c.what for c in targets.calls] == ["PUT /admin/fault"]
    assert all(c.handle_on_disk for c in targets.calls)

    again = faults.inject(ctx, "retriever-latency", {"median_s": 0.5, "sigma": 1.2})
    assert again.id == handle.id and len(targets.calls) == 1  # idempotent: no second PUT
    with pytest.raises(FaultConflict, match=handle.id):
        faults.inject(ctx, "retriever-latency", {"median_s": 2.0})
    # Only a change whose apply goes from any old value to the new one replaces in place.
    with pytest.raises(FaultError, match="in place"):
        faults.inject(ctx, "retriever-latency", {"median_s": 2.0}, replaces=[handle.id])

    reverted = faults.revert(ctx, handle.id)
    assert reverted.state is HandleState.REVERTED and targets.retriever_faults() == {}
    assert not (ctx.faults_dir / f"{handle.id}.json").exists()
    assert (ctx.faults_dir / "done" / f"{handle.id}.json").exists()
    assert targets.calls[-1] == Call("DELETE /admin/fault?phase=search", handle_on_disk=True)
    calls = len(targets.calls)
    assert faults.revert(ctx, handle.id).state is HandleState.REVERTED  # twice: harmless, no call
    assert len(targets.calls) == calls
    kinds = [
        json.loads(line)["kind"]
        for line in (ctx.settings.run_dir / "timeline.jsonl").read_text().splitlines()
    ]
    assert kinds == ["fault.inject", "fault.revert"]


def test_retriever_latency_restores_a_fault_set_by_hand(tmp_path: Path, targets: Targets) -> None:
    ctx = _ctx(_settings(tmp_path, targets))
    by_hand = {"phase": "search", "kind": "fixed", "params": {"delay_s": 0.1}}
    targets.set_retriever_fault(by_hand)
    handle = faults.inject(ctx, "retriever-latency", {"kind": "fixed", "delay_s": 3})
    assert targets.retriever_faults()["search"]["params"] == {"delay_s": 3}
    faults.revert(ctx, handle.id)
    restored = targets.retriever_faults()["search"]
    assert {k: restored[k] for k in by_hand} == by_hand


def test_traffic_tenant_changes_and_restores(tmp_path: Path, targets: Targets) -> None:
    ctx = _ctx(_settings(tmp_path, targets))
    before = targets.tenant("long_context")
    handle = faults.inject(
        ctx, "traffic-tenant", {"tenant": "long_context", "enabled": True, "prompt_tokens": 2000}
    )
    changed = targets.tenant("long_context")
    assert changed["enabled"] is True and changed["prompt_tokens"] == 2000
    assert changed["rate_per_s"] == LONG_CONTEXT["rate_per_s"]  # untouched
    assert targets.calls == [Call("update_tenant long_context", handle_on_disk=True)]
    faults.revert(ctx, handle.id)
    assert targets.tenant("long_context") == before
    with pytest.raises(FaultError, match="'tenant': 'ghost' is not in the running profile"):
        faults.inject(ctx, "traffic-tenant", {"tenant": "ghost", "enabled": True})
    assert faults.active_handles(ctx) == []


def test_gateway_operator_changes_restore_previous_values(tmp_path: Path, targets: Targets) -> None:
    ctx = _ctx(_settings(tmp_path, targets))
    # Only the options: the engines' part moves with every probe.
    before = {k: targets.gateway_state()[k] for k in ("admission", "rag")}
    adm = faults.inject(ctx, "gateway-admission", {"max_in_flight_tokens": 3000})
    rag = faults.inject(ctx, "gateway-rag-timeout", {"timeout_s": 0.3})
    state = targets.gateway_state()
    assert state["admission"]["enabled"] is True
    assert state["admission"]["max_in_flight_tokens"] == 3000
    assert state["rag"]["timeout_s"] == 0.3
    assert all(c.handle_on_disk for c in targets.calls) and len(targets.calls) == 2
    reverted, errors = faults.reset(ctx)
    assert errors == [] and [h.id for h in reverted] == [rag.id, adm.id]  # newest first
    after = targets.gateway_state()
    assert {k: after[k] for k in before} == before


def test_unreachable_target_fails_inject_cleanly(tmp_path: Path, targets: Targets) -> None:
    settings = _settings(tmp_path, targets).model_copy(update={"retriever_port": free_port()})
    ctx = _ctx(settings)
    with pytest.raises(FaultError, match="nothing listens"):
        faults.inject(ctx, "retriever-latency", {"median_s": 0.5})
    assert faults.active_handles(ctx) == []


# -- TTL ----------------------------------------------------------------------------------


def test_ttl_reverts_on_reap_and_on_the_next_cli_call(tmp_path: Path, targets: Targets) -> None:
    settings = _settings(tmp_path, targets)
    ctx = _ctx(settings)
    handle = faults.inject(ctx, "retriever-latency", {"median_s": 0.5}, ttl_s=0.5)
    assert faults.reap_expired(ctx, now=handle.created_at + 0.1) == []
    assert "search" in targets.retriever_faults()
    time.sleep(0.6)
    # Any CLI call reaps expired handles first: run a real one in another process.
    result = _cli(settings, "faults", "active")
    assert result.returncode == 0, result.stderr
    assert (
        f"TTL expired: reverted {handle.id}" in result.stdout and "no active fault" in result.stdout
    )
    assert targets.retriever_faults() == {}
    done = json.loads((ctx.faults_dir / "done" / f"{handle.id}.json").read_text())
    assert done["state"] == "reverted" and "reverted (ttl expired)" in done["notes"]


def test_zero_ttl_is_refused(tmp_path: Path, targets: Targets) -> None:
    with pytest.raises(FaultError, match="ttl_s must be above 0"):
        faults.inject(
            _ctx(_settings(tmp_path, targets)), "retriever-latency", {"median_s": 0.5}, ttl_s=0
        )


# -- crash and reset ----------------------------------------------------------------------

_CRASHING_INJECTOR = """
import sys, time
from faults import StackContext, inject
from sandbox.settings import load_settings
ctx = StackContext.from_settings(load_settings(), progress=lambda m: None)
print("injecting", flush=True)
handle = inject(ctx, "retriever-latency", {"kind": "fixed", "delay_s": 2}, ttl_s=600, source="drill:test")
print("INJECTED", handle.id, flush=True)
time.sleep(120)
"""


def _env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": REPO,
        "SANDBOX_RUN_DIR": str(settings.run_dir),
        "SANDBOX_RETRIEVER_PORT": str(settings.retriever_port),
        "SANDBOX_GATEWAY_PORT": str(settings.gateway_port),
        "SANDBOX_LOADGEN_PORT": str(settings.loadgen_port),
        "SANDBOX_ENGINE_PORT": str(settings.engine_port),
    }


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from sandbox.cli import main; main()", *args],
        env=_env(settings),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _spawn_injector(settings: Settings) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _CRASHING_INJECTOR],
        env=_env(settings),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _read_until(process: subprocess.Popen[str], marker: str, timeout_s: float = 30.0) -> str:
    found: list[str] = []

    def reader() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith(marker):
                found.append(line)
                return

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    thread.join(timeout_s)
    assert found, f"the injector never printed {marker!r}"
    return found[0]


def test_reset_after_the_injector_is_killed(tmp_path: Path, targets: Targets) -> None:
    settings = _settings(tmp_path, targets)
    process = _spawn_injector(settings)
    try:
        handle_id = _read_until(process, "INJECTED").split()[1]
        assert "search" in targets.retriever_faults()
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    assert (settings.run_dir / "faults" / f"{handle_id}.json").exists()
    result = _cli(settings, "reset")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "reset: 1 change(s) reverted" in result.stdout
    assert targets.retriever_faults() == {}
    assert _cli(settings, "reset").stdout.strip() == "nothing to reset: no active fault"


def test_reset_after_a_kill_in_the_middle_of_inject(tmp_path: Path, targets: Targets) -> None:
    settings = _settings(tmp_path, targets)
    hold = targets.witness.hold = threading.Event()  # the PUT arrives, then waits: kill there
    process = _spawn_injector(settings)
    try:
        poll_until(lambda: targets.calls, "the injector's PUT", timeout_s=30, interval_s=0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    targets.witness.hold = None
    hold.set()  # the PUT lands after its caller died: the worst case for the reset
    poll_until(lambda: "search" in targets.retriever_faults(), "the late PUT", timeout_s=10)
    live = faults.active_handles(_ctx(settings))
    assert [h.state for h in live] == [HandleState.INJECTING]
    result = _cli(settings, "reset")
    assert result.returncode == 0, result.stdout + result.stderr
    assert [c.what for c in targets.calls] == [
        "PUT /admin/fault",
        "DELETE /admin/fault?phase=search",
    ]
    assert targets.retriever_faults() == {} and faults.active_handles(_ctx(settings)) == []


def test_reset_with_the_target_gone_counts_as_reverted(tmp_path: Path, targets: Targets) -> None:
    ctx = _ctx(_settings(tmp_path, targets))
    handle = faults.inject(ctx, "retriever-latency", {"median_s": 0.5})
    targets.retriever.stop()  # the retriever died: its in-memory fault died with it
    reverted, errors = faults.reset(ctx)
    assert errors == [] and reverted[0].id == handle.id
    assert any("target gone" in note for note in reverted[0].notes)


# -- engine restarts through the runtime ----------------------------------------------------


def _engine_argv(settings: Settings) -> list[str]:
    return list(httpx.get(f"{settings.engine_url}/argv", timeout=5).json()["argv"])


@pytest.fixture
def engine_ctx(tmp_path: Path, targets: Targets) -> Iterator[StackContext]:
    """A context whose stand-in engine runs under the real LocalRuntime and answers /health.
    Afterwards every fault is reset and the engine (and a network-latency proxy) stopped."""
    settings = _settings(tmp_path, targets)
    ctx = _ctx(settings)
    ctx.runtime.start(ctx.engine_component.spec(settings))
    try:
        poll_until(
            lambda: http_ready(httpx.Client(), f"{settings.engine_url}/health", "e").ready,
            "stand-in engine",
            20,
        )
        yield ctx
    finally:
        faults.reset(ctx)
        ctx.runtime.stop("netdelay-engine", 3.0)
        pid = ctx.runtime.status("engine").pid
        ctx.runtime.stop("engine", 3.0)
        assert pid is None or not group_alive(pid)


def test_engine_kv_budget_restarts_and_reverts(engine_ctx: StackContext) -> None:
    ctx, settings, runtime = engine_ctx, engine_ctx.settings, engine_ctx.runtime
    first_pid = runtime.status("engine").pid
    kv = faults.inject(ctx, "engine-kv-budget", {"kv_tokens": 3072})
    argv = _engine_argv(settings)
    assert argv[argv.index("--num-gpu-blocks-override") + 1] == "24"
    assert runtime.status("engine").pid != first_pid and not group_alive(first_pid)  # type: ignore[arg-type]
    # A second engine setting composes with the first.
    seqs = faults.inject(ctx, "engine-max-num-seqs", {"max_num_seqs": 128})
    argv = _engine_argv(settings)
    assert argv[argv.index("--num-gpu-blocks-override") + 1] == "24"
    assert argv[argv.index("--max-num-seqs") + 1] == "128"
    faults.revert(ctx, kv.id)
    argv = _engine_argv(settings)
    assert "--num-gpu-blocks-override" not in argv  # back to the settings (no override)
    assert argv[argv.index("--max-num-seqs") + 1] == "128"
    faults.revert(ctx, seqs.id)
    argv = _engine_argv(settings)
    assert argv[argv.index("--max-num-seqs") + 1] == str(settings.max_num_seqs)
    assert runtime.status("engine").state is ServiceState.RUNNING


def test_engine_setting_replaced_in_place_restarts_once(engine_ctx: StackContext) -> None:
    ctx, settings = engine_ctx, engine_ctx.settings
    small = faults.inject(ctx, "engine-kv-budget", {"kv_tokens": 3072}, source="drill:x")
    with pytest.raises(FaultConflict):
        faults.inject(ctx, "engine-kv-budget", {"kv_tokens": 32768})
    restarts: list[str] = []
    ctx.progress = restarts.append
    large = faults.inject(ctx, "engine-kv-budget", {"kv_tokens": 32768}, replaces=[small.id])
    argv = _engine_argv(settings)
    assert argv[argv.index("--num-gpu-blocks-override") + 1] == "256"
    assert len([m for m in restarts if m.startswith("restarting engine")]) == 1, restarts
    assert [h.id for h in faults.active_handles(ctx)] == [large.id]
    old = HandleStore(ctx.faults_dir).read(small.id)
    assert old is not None and old.state is HandleState.REVERTED
    assert any(f"replaced in place by {large.id}" in n for n in old.notes)
    faults.revert(ctx, large.id)
    assert "--num-gpu-blocks-override" not in _engine_argv(settings)


def test_engine_settings_in_one_block_restart_the_engine_once(engine_ctx: StackContext) -> None:
    ctx, settings = engine_ctx, engine_ctx.settings
    restarts: list[str] = []
    ctx.progress = restarts.append
    with faults.one_engine_restart(ctx, "setup"):
        seqs = faults.inject(ctx, "engine-max-num-seqs", {"max_num_seqs": 2})
        kv = faults.inject(ctx, "engine-kv-budget", {"kv_tokens": 3072})
        assert not [m for m in restarts if m.startswith("restarting engine")]
    argv = _engine_argv(settings)
    assert argv[argv.index("--max-num-seqs") + 1] == "2"
    assert argv[argv.index("--num-gpu-blocks-override") + 1] == "24"
    assert len([m for m in restarts if m.startswith("restarting engine")]) == 1, restarts
    # Reset reverts both, again with one restart, back to the settings.
    restarts.clear()
    reverted, errors = faults.reset(ctx)
    assert {h.id for h in reverted} == {seqs.id, kv.id} and not errors
    assert len([m for m in restarts if m.startswith("restarting engine")]) == 1, restarts
    argv = _engine_argv(settings)
    assert argv[argv.index("--max-num-seqs") + 1] == str(settings.max_num_seqs)
    assert "--num-gpu-blocks-override" not in argv


def test_an_engine_started_with_the_setup_is_not_restarted_for_it(
    engine_ctx: StackContext,
) -> None:
    """A drill that starts the stack starts the engine with its setup's settings; the setup's
    changes then find it running as asked and restart nothing."""
    ctx, settings, runtime = engine_ctx, engine_ctx.settings, engine_ctx.runtime
    setup = [
        (faults.get_change("engine-kv-budget"), {"kv_tokens": 3072}),
        (faults.get_change("traffic-tenant"), {"tenant": "long_context", "enabled": True}),
    ]
    overrides = faults.setting_overrides(setup)
    assert overrides == {"kv_tokens": 3072}  # the traffic change does not touch the engine
    runtime.stop("engine", 3.0)
    stack.up(settings, runtime, [ctx.engine_component], lambda m: None, engine_overrides=overrides)
    started = runtime.status("engine").pid
    restarts: list[str] = []
    ctx.progress = restarts.append
    with faults.one_engine_restart(ctx, "setup"):
        kv = faults.inject(ctx, "engine-kv-budget", {"kv_tokens": 3072})
    assert runtime.status("engine").pid == started
    assert not [m for m in restarts if m.startswith("restarting engine")], restarts
    assert any("already runs with" in m for m in restarts), restarts
    # Another value, or the revert, still restarts it.
    faults.revert(ctx, kv.id)
    assert runtime.status("engine").pid != started
    assert "--num-gpu-blocks-override" not in _engine_argv(settings)


def test_engine_cpus_confines_the_engine_and_revert_frees_it(engine_ctx: StackContext) -> None:
    ctx, runtime = engine_ctx, engine_ctx.runtime
    everywhere = os.sched_getaffinity(0)
    core = max(everywhere)
    handle = faults.inject(ctx, "engine-cpus", {"engine_cpus": str(core)})
    assert os.sched_getaffinity(runtime.status("engine").pid) == {core}  # type: ignore[arg-type]
    faults.revert(ctx, handle.id)
    assert os.sched_getaffinity(runtime.status("engine").pid) == everywhere  # type: ignore[arg-type]
    with pytest.raises(FaultError, match="engine_cpus"):
        faults.inject(ctx, "engine-cpus", {"engine_cpus": "one"})


def test_engine_change_needs_a_running_engine(tmp_path: Path, targets: Targets) -> None:
    ctx = _ctx(_settings(tmp_path, targets))
    with pytest.raises(FaultError, match="not running"):
        faults.inject(ctx, "engine-kv-budget", {"kv_tokens": 3072})


def test_engine_revert_after_stack_down_leaves_it_stopped(engine_ctx: StackContext) -> None:
    ctx = engine_ctx
    handle = faults.inject(ctx, "engine-kv-budget", {"kv_tokens": 2048})
    # `make down` stopped everything: revert must not start a lone engine.
    ctx.runtime.stop("engine", 3.0)
    reverted = faults.revert(ctx, handle.id)
    assert ctx.runtime.status("engine").state is ServiceState.STOPPED
    assert any("stack down" in note for note in reverted.notes)


# -- network latency: a real delaying proxy through the runtime --------------------------------


def test_network_latency_proxy_delays_and_reverts(
    engine_ctx: StackContext, targets: Targets
) -> None:
    ctx, settings = engine_ctx, engine_ctx.settings
    assert targets.gateway_engines()["engine"]["url"] == settings.engine_url
    handle = faults.inject(ctx, "network-latency", {"delay_s": 0.3})
    engines = targets.gateway_engines()
    assert set(engines) == {"engine-netdelay"}
    proxied = engines["engine-netdelay"]["url"]
    start = time.monotonic()
    response = httpx.get(f"{proxied}/health", timeout=10)
    elapsed = time.monotonic() - start
    assert response.status_code == 200
    assert 0.55 <= elapsed < 3.0, elapsed  # request and response each wait 0.3 s
    proxy_pid = ctx.runtime.status("netdelay-engine").pid
    faults.revert(ctx, handle.id)
    engines = targets.gateway_engines()
    assert set(engines) == {"engine"} and engines["engine"]["url"] == settings.engine_url
    assert ctx.runtime.status("netdelay-engine").state is ServiceState.STOPPED
    assert proxy_pid is not None and not group_alive(proxy_pid)
    with pytest.raises(FaultError, match="no engine 'nope'"):
        faults.inject(ctx, "network-latency", {"engine": "nope", "delay_s": 0.1})
