"""Grading: answers, shuffling, the diagnosis fraction, mitigation attempts, hints and both
times; and the blind learner who never opens a dashboard scores under half on every incident."""

from __future__ import annotations

import random

import pytest

from sandbox.drill.grading import (
    MitigationAttempt,
    grade_answer,
    grade_diagnosis,
    score_drill,
    shuffled,
    shuffled_mitigations,
)
from sandbox.drill.manifest import IncidentManifest, list_incidents, load_incident

KV = load_incident("kv-exhaustion").manifest
BY_ID = {m.id: m for m in KV.mitigations}


def _perfect(m: IncidentManifest = KV) -> dict[str, str]:
    return {q.id: next(c.id for c in q.choices if c.points >= 1) for q in m.diagnosis}


def test_answers_are_graded_with_partial_credit_and_explanations() -> None:
    phase = KV.diagnosis[0]
    assert grade_answer(phase, "b").points == 1.0
    partial = grade_answer(phase, "C")  # ids are case-insensitive
    assert partial.points == 0.25 and "preempted" in partial.explanation
    assert "engine.queue" in partial.best
    with pytest.raises(ValueError, match="'z' is not a choice of phase: a, b, c, d"):
        grade_answer(phase, "z")


def test_choices_are_shuffled_per_seed_and_relabelled() -> None:
    phase = KV.diagnosis[0]
    orders = {tuple(c.id for _, c in shuffled(phase, random.Random(seed))) for seed in range(30)}
    assert len(orders) > 5  # the right answer moves around
    labels = [label for label, _ in shuffled(phase, random.Random(1))]
    assert labels == ["a", "b", "c", "d"]
    same = [c.id for _, c in shuffled(phase, random.Random(7))]
    assert same == [c.id for _, c in shuffled(phase, random.Random(7))]  # reproducible
    firsts = {shuffled_mitigations(list(KV.mitigations), random.Random(s))[0].id for s in range(30)}
    assert firsts == {m.id for m in KV.mitigations}


def test_diagnosis_needs_every_answer() -> None:
    assert grade_diagnosis(KV.diagnosis, _perfect()).fraction == 1.0
    with pytest.raises(ValueError, match="no answer for evidence"):
        grade_diagnosis(KV.diagnosis, {"phase": "b", "cause": "b"})
    wrong = {q.id: next(c.id for c in q.choices if c.points == 0) for q in KV.diagnosis}
    assert grade_diagnosis(KV.diagnosis, wrong).fraction == 0.0


def test_a_perfect_drill_scores_100() -> None:
    score = score_drill(
        grade_diagnosis(KV.diagnosis, _perfect()),
        [MitigationAttempt(BY_ID["more-kv"], True, 0.0)],
        hints_used=0,
        time_to_diagnose_s=60,
        time_to_mitigate_s=200,
        diagnosis_target_s=600,
        mitigation_target_s=600,
    )
    assert score.total == 100 and score.parts == {
        "diagnosis": 50,
        "mitigation": 30,
        "time to diagnose": 10,
        "time to mitigate": 10,
        "hints": 0,
    }


def test_every_hint_a_wrong_mitigation_and_slowness_cost_points() -> None:
    attempts = [
        MitigationAttempt(BY_ID["more-seqs"], False, 0.0),
        MitigationAttempt(BY_ID["more-kv"], True, 1.0),
    ]
    score = score_drill(
        grade_diagnosis(KV.diagnosis, _perfect()),
        attempts,
        hints_used=4,
        time_to_diagnose_s=900,
        time_to_mitigate_s=900,
        diagnosis_target_s=600,
        mitigation_target_s=600,
    )
    assert score.parts["mitigation"] == 20 and score.parts["hints"] == -20
    assert score.parts["time to diagnose"] == 5 and score.parts["time to mitigate"] == 5
    assert score.total == 50 + 20 + 5 + 5 - 20
    assert score.notes == ["wrong mitigation(s) tried: more-seqs"]
    # The fourth hint costs as much as the first.
    three = score_drill(None, [], 3, None, None, 600, 600)
    four = score_drill(grade_diagnosis(KV.diagnosis, _perfect()), [], 4, None, None, 600, 600)
    assert three.parts["hints"] == -15 and four.parts["hints"] == -20


def test_no_recovery_no_mitigation_points_and_never_below_zero() -> None:
    score = score_drill(
        None, [MitigationAttempt(BY_ID["more-seqs"], False, 0.0)], 9, None, None, 600, 600
    )
    assert score.total == 0 and "no correct mitigation brought recovery" in score.notes
    # A wrong mitigation that happened to coincide with recovery earns nothing either.
    lucky = score_drill(
        None, [MitigationAttempt(BY_ID["more-seqs"], True, 0.0)], 0, None, 60, 600, 600
    )
    assert lucky.parts["mitigation"] == 0 and lucky.parts["time to mitigate"] == 0


def blind_learner_score(m: IncidentManifest, seed: int) -> float:
    """Never opens a dashboard: answers instantly with the longest choice as shown, applies the
    first mitigation listed, and after a wrong one (undone) the first of those left. Correct
    mitigations are taken to recover, wrong ones not, as the manifest says."""
    rng = random.Random(seed)
    answers = {}
    for q in m.diagnosis:
        shown = shuffled(q, rng)
        longest = max(shown, key=lambda lc: len(lc[1].text))  # first of equals, as listed
        answers[q.id] = longest[1].id
    remaining = shuffled_mitigations(list(m.mitigations), rng)
    attempts = []
    while remaining:
        mitigation = remaining.pop(0)
        attempts.append(MitigationAttempt(mitigation, mitigation.correct, 0.0))
        if mitigation.correct:
            break
    return score_drill(
        grade_diagnosis(m.diagnosis, answers),
        attempts,
        hints_used=0,
        time_to_diagnose_s=1.0,
        time_to_mitigate_s=60.0 * len(attempts),
        diagnosis_target_s=m.timing.diagnosis_target_s,
        mitigation_target_s=m.timing.mitigation_target_s,
    ).total


@pytest.mark.parametrize("incident_id", list_incidents())
def test_a_blind_learner_scores_under_half(incident_id: str) -> None:
    m = load_incident(incident_id).manifest
    scores = [blind_learner_score(m, seed) for seed in range(200)]
    print(f"{incident_id}: blind learner max {max(scores)}, mean {sum(scores) / len(scores):.1f}")
    assert max(scores) < 50, (incident_id, max(scores))


@pytest.mark.parametrize("incident_id", list_incidents())
def test_the_right_answer_is_never_the_longest(incident_id: str) -> None:
    m = load_incident(incident_id).manifest
    for q in m.diagnosis:
        longest = max(q.choices, key=lambda c: len(c.text))
        assert longest.points == 0, (q.id, longest.text)
