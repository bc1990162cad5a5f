"""Grading of a drill: diagnosis answers, mitigation attempts, hints and time, as pure functions.

The score is out of 100:

- diagnosis, 50: each question's chosen-answer points (0..1) times its weight, over the total weight;
- mitigation, 30: a correct mitigation on the first attempt earns 30, on the second 15, later 5;
  never recovering earns 0;
- recovery, 10: the SLIs recovered and held;
- time, 10: diagnosing within the incident's target earns 10, falling linearly to 0 at twice it;
- hints cost 4 points each, at most 12.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sandbox.drill.manifest import Mitigation, Question

__all__ = [
    "DiagnosisGrade",
    "MitigationAttempt",
    "QuestionGrade",
    "Score",
    "grade_answer",
    "grade_diagnosis",
    "score_drill",
]

DIAGNOSIS_POINTS = 50.0
MITIGATION_POINTS = (30.0, 15.0, 5.0)  # by attempt that first recovered: 1st, 2nd, later
RECOVERY_POINTS = 10.0
TIME_POINTS = 10.0
HINT_COST = 4.0
HINT_CAP = 12.0


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


def grade_answer(question: Question, choice_id: str) -> QuestionGrade:
    """Grade one answer; an unknown choice is a ValueError naming the valid ones."""
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


def score_drill(
    diagnosis: DiagnosisGrade | None,
    attempts: list[MitigationAttempt],
    recovered: bool,
    hints_used: int,
    time_to_diagnose_s: float | None,
    diagnosis_target_s: float,
) -> Score:
    notes: list[str] = []
    parts: dict[str, float] = {}
    parts["diagnosis"] = round(DIAGNOSIS_POINTS * diagnosis.fraction, 1) if diagnosis else 0.0
    first_good = next(
        (i for i, a in enumerate(attempts) if a.recovered and a.mitigation.correct), None
    )
    if first_good is None:
        parts["mitigation"] = 0.0
        notes.append("no correct mitigation brought recovery")
    else:
        parts["mitigation"] = MITIGATION_POINTS[min(first_good, len(MITIGATION_POINTS) - 1)]
        wrong = [a.mitigation.id for a in attempts[:first_good] if not a.mitigation.correct]
        if wrong:
            notes.append(f"tried first: {', '.join(wrong)}")
    parts["recovery"] = RECOVERY_POINTS if recovered else 0.0
    if time_to_diagnose_s is None:
        parts["time"] = 0.0
    else:
        over = max(0.0, time_to_diagnose_s - diagnosis_target_s) / diagnosis_target_s
        parts["time"] = round(TIME_POINTS * max(0.0, 1.0 - over), 1)
    parts["hints"] = -min(HINT_CAP, HINT_COST * max(0, hints_used))
    total = max(0.0, min(100.0, sum(parts.values())))
    return Score(round(total, 1), parts, notes)
