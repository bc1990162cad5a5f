"""End to end: each incident passes MODE=auto on the real local stack, its signature tells it
apart (must-stay-normal checks stayed normal while the fault was active), and afterwards no
fault is active, no drill process (traffic, proxy, autoscaler, canary or scaled-out engine) is
left and no alert fires (the checks are in drill_checks.py, shared with the interactive test,
which is the live proof of ``INTERACTIVE_INCIDENT``).

Skipped, naming the missing piece, until the load generator and the SLO alert rules exist."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from sandbox.drill.manifest import list_incidents, load_incident
from sandbox.drill.runner import Drill, DrillOptions
from sandbox.drill.traffic import loadgen_available
from sandbox.settings import REPO_ROOT
from tests.integration.drill_checks import (
    INTERACTIVE_INCIDENT,
    assert_autoscaler_added_a_serving_replica,
    assert_drill_outcome,
    assert_recording_replays,
    assert_stack_clean,
    drill_timeout_s,
)
from tests.support import StackHandle


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


# The catalog decides what is tested: a new incident folder is a new end-to-end test.
# An incident listed here, with the reason, runs only with SANDBOX_TEST_ALL_DRILLS=1.
# slow-retrieval was, until the drill's window was judged up to its very end (its cause
# alert fired in the last step and was missed) and the gateway's RAG timeout default stopped
# capping its damage just above the SLO.
OPT_IN: dict[str, str] = {
    INTERACTIVE_INCIDENT: "proved live by test_drill_interactive.py, which runs it through a "
    "terminal and makes the same checks (drill_checks.py)"
}


# Its reference fix scales out through the autoscaler: the drill is also the live proof that
# the autoscaler adds a real vLLM replica that serves (test_autoscaler_integration.py is opt-in).
AUTOSCALED_INCIDENT = "cold-start-autoscaling"


def _drill_params() -> list[object]:
    run_all = os.environ.get("SANDBOX_TEST_ALL_DRILLS") == "1"
    return [
        pytest.param(
            i,
            marks=[
                pytest.mark.skipif(not run_all and i in OPT_IN, reason=OPT_IN.get(i, "")),
                pytest.mark.timeout(drill_timeout_s(i)),
            ],
        )
        for i in list_incidents()
    ]


@pytest.mark.parametrize("incident_id", _drill_params())
def test_incident_passes_auto(incident_id: str, local_stack: StackHandle, tmp_path: Path) -> None:
    started = time.time()
    result = Drill(
        load_incident(incident_id),
        local_stack.settings,
        DrillOptions(mode="auto", report_dir=tmp_path),
        runtime=local_stack.runtime,
    ).run()
    assert result.ok, result.failures
    assert_drill_outcome(tmp_path, incident_id)
    assert_recording_replays(tmp_path, incident_id, local_stack.settings.prometheus_url)
    assert_stack_clean(local_stack)
    if incident_id == AUTOSCALED_INCIDENT:
        assert_autoscaler_added_a_serving_replica(local_stack, since=started)
