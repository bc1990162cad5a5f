"""Grading of a drill: diagnosis answers, mitigation attempts, hints and time, as pure functions.

The score is out of 100, built so that guessing earns little:

- diagnosis, 50: each question's chosen-answer points (0..1) times its weight, over the total;
- mitigation, 30: recovered by a correct mitigation earns 30, less 10 for every wrong
  mitigation tried before it; never recovering earns 0;
- time to diagnose, 10: full within the incident's target, falling linearly to 0 at twice it,
  and scaled by how right the diagnosis was (a fast wrong answer is not fast work);
- time to mitigate, 10: from the page to the recovery, full within the target, falling to 0
  at twice it, earned only when a correct mitigation brought the recovery;
- every hint costs 5 points.

Choices and mitigations are shown in an order shuffled per drill (``shuffled``), relabelled
a, b, c..., so their position says nothing; the seed is in the report.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from sandbox.drill.manifest import Choice, Mitigation, Question

__all__ = [
    "DiagnosisGrade",
    "MitigationAttempt",
    "QuestionGrade",
    "Score",
    "grade_answer",
    "grade_diagnosis",
    "score_drill",
    "shuffled",
    "shuffled_mitigations",
]

DIAGNOSIS_POINTS = 50.0
MITIGATION_POINTS = 30.0
WRONG_MITIGATION_COST = 10.0
DIAGNOSE_TIME_POINTS = 10.0
MITIGATE_TIME_POINTS = 10.0
HINT_COST = 5.0
LETTERS = "abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class QuestionGrade:
    question_id: str
    question: str
    chosen: str
    chosen_text: str
    points: float  # 0..1
    weight: float
    explanation: str
    best: str  # text of the fully right answer(s)


@dataclass(frozen=True)
class DiagnosisGrade:
    questions: list[QuestionGrade]

    @property
    def fraction(self) -> float:
        total = sum(q.weight for q in self.questions)
        return sum(q.points * q.weight for q in self.questions) / total if total else 0.0


@dataclass(frozen=True)
class MitigationAttempt:
    mitigation: Mitigation
    recovered: bool
    applied_at: float
    detail: str = ""


@dataclass(frozen=True)
class Score:
    total: float
    parts: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def shuffled(question: Question, rng: random.Random) -> list[tuple[str, Choice]]:
    """The question's choices in a random order, labelled a, b, c... in that order."""
    choices = list(question.choices)
    rng.shuffle(choices)
    return [(LETTERS[i], c) for i, c in enumerate(choices)]


def shuffled_mitigations(mitigations: list[Mitigation], rng: random.Random) -> list[Mitigation]:
    out = list(mitigations)
    rng.shuffle(out)
    return out


def grade_answer(question: Question, choice_id: str) -> QuestionGrade:
    """Grade one answer by the manifest's choice id; an unknown one is a ValueError naming the
    valid ones."""
    choices = {c.id: c for c in question.choices}
    key = choice_id.strip().lower()
    if key not in choices:
        raise ValueError(f"{choice_id!r} is not a choice of {question.id}: {', '.join(choices)}")
    chosen = choices[key]
    best = "; ".join(c.text for c in question.choices if c.points >= 1.0)
    return QuestionGrade(
        question.id,
        question.question,
        chosen.id,
        chosen.text,
        chosen.points,
        question.weight,
        chosen.explanation,
        best,
    )


def grade_diagnosis(questions: list[Question], answers: dict[str, str]) -> DiagnosisGrade:
    """Every question must be answered; a missing answer is a ValueError naming the question."""
    missing = [q.id for q in questions if q.id not in answers]
    if missing:
        raise ValueError(f"no answer for {', '.join(missing)}")
    return DiagnosisGrade([grade_answer(q, answers[q.id]) for q in questions])


def _speed(seconds: float | None, target_s: float) -> float:
    """1 within the target, falling linearly to 0 at twice it; 0 when it never happened."""
    if seconds is None:
        return 0.0
    over = max(0.0, seconds - target_s) / target_s
    return max(0.0, 1.0 - over)


def score_drill(
    diagnosis: DiagnosisGrade | None,
    attempts: list[MitigationAttempt],
    hints_used: int,
    time_to_diagnose_s: float | None,
    time_to_mitigate_s: float | None,
    diagnosis_target_s: float,
    mitigation_target_s: float,
) -> Score:
    notes: list[str] = []
    parts: dict[str, float] = {}
    fraction = diagnosis.fraction if diagnosis else 0.0
    parts["diagnosis"] = round(DIAGNOSIS_POINTS * fraction, 1)
    first_good = next(
        (i for i, a in enumerate(attempts) if a.recovered and a.mitigation.correct), None
    )
    wrong = [a.mitigation.id for a in attempts if not a.mitigation.correct]
    if wrong:
        notes.append(f"wrong mitigation(s) tried: {', '.join(wrong)}")
    if first_good is None:
        parts["mitigation"] = 0.0
        notes.append("no correct mitigation brought recovery")
    else:
        tried_wrong = sum(1 for a in attempts[:first_good] if not a.mitigation.correct)
        parts["mitigation"] = max(0.0, MITIGATION_POINTS - WRONG_MITIGATION_COST * tried_wrong)
    parts["time to diagnose"] = round(
        DIAGNOSE_TIME_POINTS * fraction * _speed(time_to_diagnose_s, diagnosis_target_s), 1
    )
    parts["time to mitigate"] = (
        0.0
        if first_good is None
        else round(MITIGATE_TIME_POINTS * _speed(time_to_mitigate_s, mitigation_target_s), 1)
    )
    parts["hints"] = -HINT_COST * max(0, hints_used)
    total = max(0.0, min(100.0, sum(parts.values())))
    return Score(round(total, 1), parts, notes)
