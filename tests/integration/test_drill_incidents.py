"""End to end: each incident passes MODE=auto on the real local stack, its signature tells it
apart (must-stay-normal checks stayed normal while the fault was active), and afterwards no
fault is active, no drill process (traffic, proxy, autoscaler, canary or scaled-out engine) is
left and no alert fires.

Skipped, naming the missing piece, until the load generator and the SLO alert rules exist."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import faults
from faults import StackContext
from sandbox.drill.manifest import list_incidents, load_incident
from sandbox.drill.runner import Drill, DrillOptions
from sandbox.drill.traffic import loadgen_available
from sandbox.promapi import AlertmanagerClient, PrometheusClient
from sandbox.recording import serve_recording
from sandbox.recording.fidelity import compare
from sandbox.runtime.base import ServiceState
from sandbox.settings import REPO_ROOT
from tests.support import StackHandle, poll_until


def _missing() -> str | None:
    why = loadgen_available()
    if why:
        return why
    rules = "\n".join(
        p.read_text() for p in (REPO_ROOT / "stack" / "prometheus" / "rules").glob("*.yml")
    )
    for incident_id in list_incidents():
        page = load_incident(incident_id).manifest.alerts.page_alert
        if f"alert: {page}" not in rules:
            return f"the alert {page} that pages {incident_id} is not in stack/prometheus/rules (dashboards/alerts issue)"
    return None


MISSING = _missing()
# Decided before the session's stack starts, so a missing piece costs no vLLM start-up.
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(MISSING is not None, reason=MISSING or ""),
]


def _recording_round_trip(path: Path, incident_id: str, prometheus_url: str) -> None:
    """The drill's recording replays offline with the live stack's answers to its signature."""
    assert path.exists() and path.stat().st_size <= 5 * 1024 * 1024
    m = load_incident(incident_id).manifest
    checks = [*m.signature.anomalous, *m.signature.normal, *m.recovery.slis]
    exprs = [(c.name, c.expr) for c in checks]
    with serve_recording(path) as served, served.client() as replay:
        with PrometheusClient(prometheus_url) as live:
            fidelity = compare(live, replay, exprs, served.start, served.end, every_s=15)
    assert fidelity.ok and fidelity.compared > 0, fidelity.problems[:5]
    print(f"{incident_id} recording: {path.stat().st_size // 1024} KiB; {fidelity.summary()}")


# The catalog decides what is tested: a new incident folder is a new end-to-end test.
# An incident listed here, with the measured reason, runs only with SANDBOX_TEST_ALL_DRILLS=1.
# None is: slow-retrieval was, until the drill's window was judged up to its very end (its cause
# alert fired in the last step and was missed) and the gateway's RAG timeout default stopped
# capping its damage just above the SLO.
OPT_IN: dict[str, str] = {}


# Engine restarts (setup, mitigation, cleanup), the speed probe and the grace period come on
# top of the manifest's own waits; 300 s covers them on two cores.
DRILL_OVERHEAD_S = 300.0


def _drill_timeout_s(incident_id: str) -> float:
    """The drill bounds every wait itself and reports which one ran out; the test's timeout
    must outlast those bounds, or a slow but passing run is killed without a verdict (seen:
    kv-exhaustion at x2.08 paged after 364 s and recovered after 287 s, past the 900 s
    default)."""
    m = load_incident(incident_id).manifest
    waits = m.timing.baseline_timeout_s + m.timing.page_timeout_s + m.recovery.timeout_s
    return waits + m.signature.grace_s + DRILL_OVERHEAD_S


def _drill_params() -> list[object]:
    run_all = os.environ.get("SANDBOX_TEST_ALL_DRILLS") == "1"
    return [
        pytest.param(
            i,
            marks=[
                pytest.mark.skipif(not run_all and i in OPT_IN, reason=OPT_IN.get(i, "")),
                pytest.mark.timeout(_drill_timeout_s(i)),
            ],
        )
        for i in list_incidents()
    ]


@pytest.mark.parametrize("incident_id", _drill_params())
def test_incident_passes_auto(incident_id: str, local_stack: StackHandle, tmp_path: Path) -> None:
    settings = local_stack.settings
    incident = load_incident(incident_id)
    result = Drill(
        incident,
        settings,
        DrillOptions(mode="auto", report_dir=tmp_path),
        runtime=local_stack.runtime,
    ).run()
    assert result.ok, result.failures
    # Told apart: every must-stay-normal check stayed normal while the fault was active.
    normal = [r for r in result.signature if r.kind == "normal"]
    assert normal and all(not r.breached for r in normal), [(r.check.name, r.worst) for r in normal]
    assert all(r.breached for r in result.signature if r.kind == "anomalous")
    # Distinct: the run satisfies its own signature and no other incident's (its matrix row).
    assert result.matrix == {i: i == incident_id for i in list_incidents()}, result.matrix
    # Every expected alert fired, and no page the incident does not expect.
    fired = {a.name: a for a in result.alerts}
    assert set(incident.manifest.alerts.expected) <= set(fired), fired
    # Pages the manifest tolerates (side effects its notes explain) are not failures.
    alerts = incident.manifest.alerts
    unexpected = [
        a.name
        for a in fired.values()
        if a.severity == "page" and alerts.verdict(a.name) == "NOT expected"
    ]
    assert unexpected == [], unexpected
    assert (tmp_path / "report.html").exists()
    _recording_round_trip(tmp_path / "recording.tar.gz", incident_id, settings.prometheus_url)
    print(
        f"{incident_id}: page after {result.since_inject(result.paged_at):.0f} s; signature at page "
        f"{result.signature_at_page}; recovered {result.recovered_at - result.first_mitigation_at:.0f} s after mitigation"
    )  # type: ignore[operator]
    # Clean afterwards: no fault, no drill process (traffic, proxies), no alert.
    ctx = StackContext.from_settings(settings, local_stack.runtime)
    assert faults.active_handles(ctx) == []
    running = [
        n
        for n in local_stack.runtime.names()
        if local_stack.runtime.status(n).state is ServiceState.RUNNING
    ]
    leftovers = [n for n in running if n.startswith(("loadgen", "netdelay", "autoscaler"))]
    assert leftovers == []
    with local_stack.deployer(routed=False) as deployer:  # no canary, no scaled-out replica
        assert [r.name for r in deployer.state().active()] == []
    engine_pid = local_stack.runtime.status("engine").pid
    assert engine_pid and os.sched_getaffinity(engine_pid) == os.sched_getaffinity(
        0
    )  # engine-cpus undone
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
