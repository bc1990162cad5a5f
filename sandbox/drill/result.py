"""What a drill produced: its options, its outcome and the failure of a step. Plain data, so
the report reads it without importing the loop that filled it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sandbox.drill.grading import DiagnosisGrade, MitigationAttempt, Score
from sandbox.drill.manifest import Incident
from sandbox.drill.signature import AlertFiring, CheckResult
from sandbox.drill.webhook import AlertNotification
from sandbox.exceptions import SandboxError

__all__ = ["DrillFailure", "DrillOptions", "DrillResult", "Mode"]

Mode = Literal["auto", "interactive"]


class DrillFailure(SandboxError):
    """A step of the drill failed; ``step`` names it and ``reason`` says why."""

    def __init__(self, step: str, reason: str) -> None:
        super().__init__(f"{step}: {reason}")
        self.step = step
        self.reason = reason


@dataclass
class DrillOptions:
    mode: Mode = "auto"
    seed: int | None = None
    start_stack: bool = True
    report_dir: Path | None = None


@dataclass
class DrillResult:
    incident: Incident
    mode: Mode
    started_at: float
    seed: int = 0  # the shuffle of choices and mitigations (reproducible from the report)
    ended_at: float | None = None
    injected_at: float | None = None
    paged_at: float | None = None
    page: AlertNotification | None = None
    diagnosed_at: float | None = None
    recovered_at: float | None = None
    first_mitigation_at: float | None = None
    # The end of the judged window: its query grid ends exactly there (replays re-judge from it).
    judged_until: float | None = None
    diagnosis: DiagnosisGrade | None = None
    attempts: list[MitigationAttempt] = field(default_factory=list)
    hints_used: int = 0
    # Time the learner spent waiting for mitigations to be applied, judged and undone before
    # answering the diagnosis: not diagnosis time (mitigating first is the on-call order).
    mitigation_wait_before_diagnosis_s: float = 0.0
    signature: list[CheckResult] = field(default_factory=list)
    signature_at_page: dict[str, float | None] = field(default_factory=dict)
    alerts: list[AlertFiring] = field(default_factory=list)  # every alert that fired, first time
    # incident id -> whether this run's window satisfies that incident's whole signature
    matrix: dict[str, bool] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    score: Score | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    report_paths: list[Path] = field(default_factory=list)
    gave_up: bool = False

    @property
    def ok(self) -> bool:
        return not self.failures and self.recovered_at is not None

    def since_inject(self, ts: float | None) -> float | None:
        return None if ts is None or self.injected_at is None else ts - self.injected_at

    @property
    def time_to_diagnose(self) -> float | None:
        if self.diagnosed_at is None or self.paged_at is None:
            return None
        return max(0.0, self.diagnosed_at - self.paged_at - self.mitigation_wait_before_diagnosis_s)

    @property
    def time_to_recover(self) -> float | None:
        """From the first mitigation to the recovery."""
        if self.recovered_at is None or self.first_mitigation_at is None:
            return None
        return self.recovered_at - self.first_mitigation_at

    @property
    def time_to_mitigate(self) -> float | None:
        """From the page to the recovery (the SLIs held)."""
        if self.recovered_at is None or self.paged_at is None:
            return None
        return self.recovered_at - self.paged_at
