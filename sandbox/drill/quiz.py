"""The learner-facing questions of a drill: diagnosis (graded at once, with explanations) and
the choice of a mitigation. Separate from the loop so a terminal test can drive them alone."""

from __future__ import annotations

from sandbox.drill.grading import DiagnosisGrade, grade_answer
from sandbox.drill.manifest import Mitigation, Question
from sandbox.drill.prompts import Prompter

__all__ = ["ask_diagnosis", "ask_mitigation"]


def ask_diagnosis(prompter: Prompter, questions: list[Question]) -> DiagnosisGrade:
    grades = []
    for question in questions:
        choice = prompter.choose(question.question, [(c.id, c.text) for c in question.choices])
        grade = grade_answer(question, choice)
        grades.append(grade)
        mark = "right" if grade.points >= 1 else ("partly right" if grade.points > 0 else "wrong")
        prompter.say(f"  {mark}: {grade.explanation}")
    return DiagnosisGrade(grades)


def ask_mitigation(prompter: Prompter, options: list[Mitigation]) -> Mitigation:
    key = prompter.choose(
        "Which mitigation do you apply?", [(str(i + 1), m.title) for i, m in enumerate(options)]
    )
    return options[int(key) - 1]
