"""``result.json``: a drill's verdicts as data, read back exactly as written (an infinite margin
included), with times counted from injection and from the first mitigation."""

from __future__ import annotations

import json
from pathlib import Path

from sandbox.drill.manifest import Check, load_incident
from sandbox.drill.outcome import OUTCOME_FILE, DrillOutcome
from sandbox.drill.result import DrillResult
from sandbox.drill.signature import AlertFiring, CheckResult


def test_an_outcome_is_written_and_read_back_with_the_drills_times_and_verdicts(
    tmp_path: Path,
) -> None:
    incident = load_incident("kv-exhaustion")
    page = incident.manifest.alerts.page_alert
    result = DrillResult(incident, "auto", started_at=1000.0, seed=7)
    result.injected_at = 1010.0
    result.paged_at = 1085.0
    result.first_mitigation_at = 1100.0
    result.recovered_at = 1153.0
    free_kv = Check.model_validate({"name": "free KV", "expr": "up", "below": 0.25})
    result.signature = [CheckResult(free_kv, "anomalous", True, 1050.0, 0.0, 30)]
    result.matrix = {"kv-exhaustion": True, "cold-start-autoscaling": False}
    result.alerts = [AlertFiring(page, "page", 1080.0), AlertFiring("Surprise", "page", 1090.0)]

    DrillOutcome.of(result).write(tmp_path)
    raw = json.loads((tmp_path / OUTCOME_FILE).read_text())
    outcome = DrillOutcome.read(tmp_path)

    assert raw["signature"][0]["margin"] == "Infinity"  # free KV at 0 against `below: 0.25`
    assert outcome == DrillOutcome.of(result)
    assert outcome.ok and outcome.incident == "kv-exhaustion" and outcome.seed == 7
    assert (outcome.paged_after_s, outcome.recovered_after_s) == (75.0, 53.0)
    assert [(a.name, a.verdict, a.fired_after_s) for a in outcome.alerts] == [
        (page, "expected", 70.0),
        ("Surprise", "NOT expected", 80.0),
    ]
    assert outcome.signature[0].ok and outcome.matrix["kv-exhaustion"]


def test_a_drill_that_never_recovered_says_so() -> None:
    result = DrillResult(load_incident("bad-rollout"), "interactive", started_at=0.0)
    result.failures = ["page: no page in 480 s"]
    outcome = DrillOutcome.of(result)
    assert not outcome.ok
    assert (outcome.paged_after_s, outcome.recovered_after_s, outcome.score) == (None, None, None)
