"""`up`, `status`, `down` with small real services (Python's http.server), and the rendered configs."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from sandbox import stack
from sandbox.components.alertmanager import alertmanager_component, render_alertmanager_config
from sandbox.components.base import Component, ScrapeTarget, http_ready
from sandbox.components.prometheus import render_prometheus_config
from sandbox.runtime.base import ServiceSpec, ServiceState
from sandbox.runtime.local import LocalRuntime, group_alive
from sandbox.settings import Settings
from tests.support import free_port, isolated_settings, poll_until


def web_component(name: str, port: int, argv: tuple[str, ...] | None = None) -> Component:
    """A stand-in service that really listens: enough to exercise the life cycle."""
    command = argv or (sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1")
    return Component(
        name=name,
        spec=lambda settings: ServiceSpec(name=name, argv=command, port=port),
        url=lambda settings: settings.url(port),
        check=lambda settings, client: http_ready(client, settings.url(port), name),
        scrape=lambda settings: [ScrapeTarget("web", f"127.0.0.1:{port}", {"replica": name})],
    )


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return isolated_settings(tmp_path, ready_timeout_s=20, stop_timeout_s=5)


def test_up_status_down(settings: Settings) -> None:
    runtime = LocalRuntime(settings.run_dir)
    components = [web_component("web-a", free_port()), web_component("web-b", free_port())]
    messages: list[str] = []
    rows = stack.up(settings, runtime, components, progress=messages.append)
    assert [r.ready for r in rows] == [True, True]
    assert any("web-a ready" in m for m in messages)
    targets = json.loads((settings.targets_dir / "web.json").read_text())
    assert {g["labels"]["replica"] for g in targets} == {"web-a", "web-b"}

    # A second `up` leaves running services alone.
    again = stack.up(settings, runtime, components, progress=messages.append)
    assert [r.pid for r in again] == [r.pid for r in rows]

    stack.down(settings, runtime, progress=messages.append)
    assert not any(group_alive(r.pid) for r in rows if r.pid)
    assert [r.state for r in stack.status(settings, runtime, components)] == [
        ServiceState.STOPPED
    ] * 2
    assert stack.down(settings, runtime, progress=messages.append) == []  # safe twice


def test_status_reports_a_crashed_component_and_why(settings: Settings) -> None:
    runtime = LocalRuntime(settings.run_dir)
    component = web_component("web", free_port())
    (row,) = stack.up(settings, runtime, [component], progress=lambda m: None)
    child = _children(row.pid)[0]
    subprocess.run(["kill", "-9", str(child)], check=True)
    (after,) = poll_until(
        lambda: (
            (rows := stack.status(settings, runtime, [component]))[0].state is ServiceState.EXITED
            and rows
        ),
        "the crash to show in status",
        10,
    )
    assert not after.ready
    assert "exited with code -9" in after.why
    stack.down(settings, runtime, progress=lambda m: None)


def test_failed_up_says_why_and_leaves_nothing_running(settings: Settings) -> None:
    runtime = LocalRuntime(settings.run_dir)
    good = web_component("good", free_port())
    bad = web_component(
        "bad",
        free_port(),
        (sys.executable, "-c", "import sys; print('no model here'); sys.exit(2)"),
    )
    with pytest.raises(stack.StackError) as excinfo:
        stack.up(settings, runtime, [good, bad], progress=lambda m: None)
    assert "bad stopped while starting" in str(excinfo.value)
    assert "no model here" in str(excinfo.value)
    assert runtime.names() == []


def test_preflight_names_the_taken_port(settings: Settings) -> None:
    runtime = LocalRuntime(settings.run_dir)
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with pytest.raises(stack.StackError, match=f"port {port} .* taken"):
            stack.up(settings, runtime, [web_component("web", port)], progress=lambda m: None)


def test_down_cleans_up_after_up_was_killed(settings: Settings, tmp_path: Path) -> None:
    """Kill `up` mid-start (as a crash would); `down` still stops what it had started."""
    ports = [free_port(), free_port()]
    script = tmp_path / "crashing_up.py"
    script.write_text(
        textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from sandbox import stack
        from sandbox.runtime.local import LocalRuntime
        from tests.unit.test_stack import web_component
        from sandbox.settings import load_settings
        settings = load_settings(run_dir={str(settings.run_dir)!r}, ready_timeout_s=600)
        never_ready = web_component("never-ready", {ports[1]}, (sys.executable, "-c", "import time; time.sleep(600)"))
        stack.up(settings, LocalRuntime(settings.run_dir), [web_component("web", {ports[0]}), never_ready], progress=print)
    """)
    )
    up = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        runtime = LocalRuntime(settings.run_dir)
        poll_until(lambda: len(runtime.names()) == 2, "both services to be started", 20)
        pids = [runtime.status(n).pid for n in runtime.names()]
        up.send_signal(signal.SIGKILL)
        up.wait(10)
    finally:
        if up.poll() is None:
            up.kill()
        up.stdout.close()  # type: ignore[union-attr]
    assert all(pid and group_alive(pid) for pid in pids), "the services outlive the crashed up"
    stopped = stack.down(settings, runtime, progress=lambda m: None)
    assert sorted(stopped) == ["never-ready", "web"]
    assert not any(group_alive(pid) for pid in pids if pid)


def test_rendered_prometheus_config_passes_promtool(settings: Settings) -> None:
    promtool = shutil.which("promtool") or pytest.skip("promtool not installed (run `make setup`)")
    stack.write_targets(settings, [ScrapeTarget("engine", "127.0.0.1:8100", {"version": "stable"})])
    config = render_prometheus_config(settings)
    result = subprocess.run(
        [promtool, "check", "config", str(config)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = config.read_text()
    assert str(settings.targets_dir / "engine.json") in text
    assert f"127.0.0.1:{settings.alertmanager_port}" in text


def test_rendered_alertmanager_config_passes_amtool(settings: Settings) -> None:
    amtool = shutil.which("amtool") or pytest.skip("amtool not installed (run `make setup`)")
    config = render_alertmanager_config(settings)
    result = subprocess.run([amtool, "check-config", str(config)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"127.0.0.1:{settings.alert_webhook_port}/alerts" in config.read_text()


def test_alertmanager_starts_without_the_last_runs_notification_log(settings: Settings) -> None:
    # A stale log would make Alertmanager treat a new firing of a known alert as already sent.
    data = settings.run_dir / "alertmanager" / "data"
    data.mkdir(parents=True)
    (data / "nflog").write_bytes(b"stale")
    (data / "silences").write_bytes(b"kept")
    alertmanager_component().spec(settings)
    assert not (data / "nflog").exists() and (data / "silences").read_bytes() == b"kept"


def _children(pid: int | None) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def test_http_ready_says_what_answered() -> None:
    with httpx.Client(timeout=1) as client:
        readiness = http_ready(client, f"http://127.0.0.1:{free_port()}/health", "thing")
    assert not readiness.ready and "ConnectError" in readiness.why
