"""The learner-facing questions of a drill: the diagnosis (all questions first, explanations
only once the whole drill is answered) and the choice of a mitigation. Choices appear in the
drill's shuffled order. Separate from the loop so a terminal test can drive them alone."""

from __future__ import annotations

import random

from sandbox.drill.grading import DiagnosisGrade, MitigationAttempt, grade_answer, shuffled
from sandbox.drill.manifest import Mitigation, Question
from sandbox.drill.prompts import Prompter

__all__ = ["ask_diagnosis", "ask_mitigation", "explain"]


def ask_diagnosis(
    prompter: Prompter, questions: list[Question], rng: random.Random
) -> DiagnosisGrade:
    """Ask every question in turn; no verdict or explanation until the end of the drill."""
    grades = []
    for question in questions:
        shown = shuffled(question, rng)
        letter = prompter.choose(question.question, [(label, c.text) for label, c in shown])
        choice = dict(shown)[letter]
        grades.append(grade_answer(question, choice.id))
    prompter.say("  answers recorded; explanations come with the report")
    return DiagnosisGrade(grades)


def ask_mitigation(prompter: Prompter, options: list[Mitigation]) -> Mitigation:
    key = prompter.choose(
        "Which mitigation do you apply?", [(str(i + 1), m.title) for i, m in enumerate(options)]
    )
    return options[int(key) - 1]


def explain(
    prompter: Prompter, diagnosis: DiagnosisGrade | None, attempts: list[MitigationAttempt]
) -> None:
    """The answer key, once the drill is over: each answer's verdict and why, then the
    mitigations tried and why each worked or not."""
    prompter.say("\n== the answer key")
    for grade in diagnosis.questions if diagnosis else []:
        mark = "right" if grade.points >= 1 else ("partly right" if grade.points > 0 else "wrong")
        prompter.say(f"  {grade.question}\n    you: {grade.chosen_text} ({mark})")
        prompter.say(f"    {grade.explanation}")
        if grade.points < 1:
            prompter.say(f"    best: {grade.best}")
    for attempt in attempts:
        m = attempt.mitigation
        verdict = "correct" if m.correct else "tempting but wrong"
        prompter.say(f"  mitigation {m.title}: {verdict}\n    {m.why.strip()}")
