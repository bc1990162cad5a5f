"""Grading: answers, diagnosis fraction, mitigation attempts, hints and time."""

from __future__ import annotations

import pytest

from sandbox.drill.grading import MitigationAttempt, grade_answer, grade_diagnosis, score_drill
from sandbox.drill.manifest import load_incident

KV = load_incident("kv-exhaustion").manifest
BY_ID = {m.id: m for m in KV.mitigations}


def _perfect() -> dict[str, str]:
    return {q.id: next(c.id for c in q.choices if c.points >= 1) for q in KV.diagnosis}


def test_answers_are_graded_with_partial_credit_and_explanations() -> None:
    phase = KV.diagnosis[0]
    assert grade_answer(phase, "b").points == 1.0
    partial = grade_answer(phase, "C")  # letters are case-insensitive
    assert (
        partial.points == 0.25
        and "preempted" in partial.explanation
        and "engine.queue" in partial.best
    )
    with pytest.raises(ValueError, match="'z' is not a choice of phase: a, b, c, d"):
        grade_answer(phase, "z")


def test_diagnosis_needs_every_answer() -> None:
    assert grade_diagnosis(KV.diagnosis, _perfect()).fraction == 1.0
    with pytest.raises(ValueError, match="no answer for evidence"):
        grade_diagnosis(KV.diagnosis, {"phase": "b", "cause": "b"})
    wrong = {q.id: next(c.id for c in q.choices if c.points == 0) for q in KV.diagnosis}
    assert grade_diagnosis(KV.diagnosis, wrong).fraction == 0.0


def test_a_perfect_drill_scores_100() -> None:
    score = score_drill(
        grade_diagnosis(KV.diagnosis, _perfect()),
        [MitigationAttempt(BY_ID["admission"], True, 0.0)],
        recovered=True,
        hints_used=0,
        time_to_diagnose_s=60,
        diagnosis_target_s=600,
    )
    assert score.total == 100 and score.parts == {
        "diagnosis": 50,
        "mitigation": 30,
        "recovery": 10,
        "time": 10,
        "hints": 0,
    }


def test_wrong_first_mitigation_hints_and_slowness_cost_points() -> None:
    attempts = [
        MitigationAttempt(BY_ID["more-seqs"], False, 0.0),
        MitigationAttempt(BY_ID["admission"], True, 1.0),
    ]
    score = score_drill(
        grade_diagnosis(KV.diagnosis, _perfect()),
        attempts,
        recovered=True,
        hints_used=5,
        time_to_diagnose_s=900,
        diagnosis_target_s=600,
    )
    assert (
        score.parts["mitigation"] == 15 and score.parts["hints"] == -12 and score.parts["time"] == 5
    )
    assert score.total == 50 + 15 + 10 + 5 - 12
    assert score.notes == ["tried first: more-seqs"]


def test_no_recovery_no_mitigation_points_and_never_below_zero() -> None:
    score = score_drill(
        None,
        [MitigationAttempt(BY_ID["more-seqs"], False, 0.0)],
        recovered=False,
        hints_used=9,
        time_to_diagnose_s=None,
        diagnosis_target_s=600,
    )
    assert score.total == 0 and "no correct mitigation brought recovery" in score.notes
    # A wrong mitigation that happened to coincide with recovery earns nothing either.
    lucky = score_drill(
        None,
        [MitigationAttempt(BY_ID["more-seqs"], True, 0.0)],
        recovered=True,
        hints_used=0,
        time_to_diagnose_s=None,
        diagnosis_target_s=600,
    )
    assert lucky.parts["mitigation"] == 0
