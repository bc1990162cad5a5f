"""What every live drill test demands of a finished drill, auto or interactive: its outcome
(``result.json``), its recording, and a stack left as it was found.

One incident's live proof is the interactive test (``INTERACTIVE_INCIDENT``): it runs through a
terminal and makes the same checks, so the auto test leaves that incident out and the suite
does not pay for the same drill twice (about 450 s on two cores).
"""

from __future__ import annotations

import os
from pathlib import Path

import faults
from faults import StackContext
from sandbox.drill.manifest import list_incidents, load_incident
from sandbox.drill.outcome import DrillOutcome
from sandbox.promapi import AlertmanagerClient, PrometheusClient
from sandbox.recording import serve_recording
from sandbox.recording.fidelity import compare
from sandbox.runtime.base import ServiceState
from sandbox.timeline import read as read_timeline
from tests.integration.gateway_support import prom_scalar
from tests.support import StackHandle, poll_until

__all__ = [
    "INTERACTIVE_INCIDENT",
    "assert_autoscaler_added_a_serving_replica",
    "assert_drill_outcome",
    "assert_recording_replays",
    "assert_stack_clean",
    "drill_timeout_s",
]

# The quickest page, and a wrong mitigation that restarts an engine (what the interactive test
# needs to show a verdict and an undo).
INTERACTIVE_INCIDENT = "bad-rollout"

# Engine restarts (setup, mitigation, cleanup), the speed probe and the grace period come on
# top of the manifest's own waits; 300 s covers them on two cores.
DRILL_OVERHEAD_S = 300.0


def drill_timeout_s(incident_id: str, extra_s: float = 0.0) -> float:
    """The drill bounds every wait itself and reports which one ran out; the test's timeout
    must outlast those bounds, or a slow but passing run is killed without a verdict (seen:
    kv-exhaustion at x2.08 paged after 364 s and recovered after 287 s, past the 900 s
    default). ``extra_s``: what a test adds on top (a learner's wrong mitigation)."""
    m = load_incident(incident_id).manifest
    waits = m.timing.baseline_timeout_s + m.timing.page_timeout_s + m.recovery.timeout_s
    return waits + m.signature.grace_s + DRILL_OVERHEAD_S + extra_s


def assert_drill_outcome(out_dir: Path, incident_id: str) -> DrillOutcome:
    """The drill passed, told its incident apart, and paged as the manifest expects."""
    outcome = DrillOutcome.read(out_dir)
    assert outcome.incident == incident_id
    assert outcome.ok, outcome.failures
    # Told apart: every must-stay-normal check stayed normal while the fault was active.
    normal = [c for c in outcome.signature if c.kind == "normal"]
    assert normal and all(not c.breached for c in normal), [(c.name, c.worst) for c in normal]
    assert all(c.breached for c in outcome.signature if c.kind == "anomalous")
    # Distinct: the run satisfies its own signature and no other incident's (its matrix row).
    assert outcome.matrix == {i: i == incident_id for i in list_incidents()}, outcome.matrix
    # Every expected alert fired, and no page the incident does not expect (pages the manifest
    # tolerates, side effects its notes explain, are not failures).
    fired = {a.name: a for a in outcome.alerts}
    assert set(load_incident(incident_id).manifest.alerts.expected) <= set(fired), fired
    unexpected = [
        a.name for a in fired.values() if a.severity == "page" and a.verdict == "NOT expected"
    ]
    assert unexpected == [], unexpected
    assert (out_dir / "report.html").exists()
    print(
        f"{incident_id}: page after {outcome.paged_after_s:.0f} s; recovered "
        f"{outcome.recovered_after_s:.0f} s after the first mitigation; worst: "
        + ", ".join(f"{c.name} {c.worst:.3g}" for c in outcome.signature if c.worst is not None)
    )
    return outcome


def assert_recording_replays(out_dir: Path, incident_id: str, prometheus_url: str) -> None:
    """The drill's recording replays offline with the live stack's answers to its signature."""
    path = out_dir / "recording.tar.gz"
    assert path.exists() and path.stat().st_size <= 5 * 1024 * 1024
    m = load_incident(incident_id).manifest
    checks = [*m.signature.anomalous, *m.signature.normal, *m.recovery.slis]
    exprs = [(c.name, c.expr) for c in checks]
    with serve_recording(path) as served, served.client() as replay:
        with PrometheusClient(prometheus_url) as live:
            fidelity = compare(live, replay, exprs, served.start, served.end, every_s=15)
    assert fidelity.ok and fidelity.compared > 0, fidelity.problems[:5]
    print(f"{incident_id} recording: {path.stat().st_size // 1024} KiB; {fidelity.summary()}")


def assert_stack_clean(stack: StackHandle) -> None:
    """No fault, no drill process (traffic, proxies, autoscaler), no canary or scaled-out
    replica, the engine's CPUs as they were, and no alert firing."""
    settings = stack.settings
    ctx = StackContext.from_settings(settings, stack.runtime)
    assert faults.active_handles(ctx) == []
    running = [
        n for n in stack.runtime.names() if stack.runtime.status(n).state is ServiceState.RUNNING
    ]
    leftovers = [n for n in running if n.startswith(("loadgen", "netdelay", "autoscaler"))]
    assert leftovers == []
    with stack.deployer(routed=False) as deployer:
        assert [r.name for r in deployer.state().active()] == []
    engine_pid = stack.runtime.status("engine").pid
    # engine-cpus undone
    assert engine_pid and os.sched_getaffinity(engine_pid) == os.sched_getaffinity(0)
    alertmanager = AlertmanagerClient(settings.alertmanager_url)
    try:
        poll_until(
            lambda: alertmanager.active_alerts() == [],
            "no alert firing after the drill",
            timeout_s=180,
            interval_s=5,
        )
    finally:
        alertmanager.close()


def assert_autoscaler_added_a_serving_replica(stack: StackHandle, since: float) -> None:
    """The autoscaler's path on the real stack, proved by the drill whose fix depends on it
    (cold-start-autoscaling): a scale-up decision started a real vLLM replica, it became ready
    and registered, its own vLLM counted requests the gateway sent it, and the drill's cleanup
    removed it (``assert_stack_clean``). Scaling down on a falling signal is tested with
    stand-in engines in tests/unit/test_autoscaler_controller.py."""
    run_dir = stack.settings.run_dir
    ups = read_timeline(run_dir, since=since, kind_prefix="autoscaler.scale_up")
    assert ups, "the autoscaler never scaled up during the drill"
    started = {u["detail"]["replica"] for u in ups}
    ready = {
        e["detail"]["replica"]: e["detail"]
        for e in read_timeline(run_dir, since=since, kind_prefix="replica.ready")
        if e["detail"]["replica"] in started
    }
    assert ready, f"no replica the autoscaler started became ready: {sorted(started)}"
    assert any(d["requested_by"] == "autoscaler" for d in ready.values()), ready
    served = {
        name: prom_scalar(
            stack.prometheus_url,
            f'max(max_over_time(vllm:request_success_total{{replica="{name}"}}[1h]))',
        )
        or 0.0
        for name in ready
    }
    assert any(n > 0 for n in served.values()), f"no added replica served a request: {served}"
    for name, detail in ready.items():
        print(
            f"autoscaler: {name} ready {detail['start_to_ready_s']:.0f} s after its start, "
            f"served {served[name]:.0f} requests"
        )
