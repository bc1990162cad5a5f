"""A drill's outcome as ``result.json`` beside its report: what a script, a game-day tool or a
test reads instead of parsing the report's HTML or the terminal's text.

It holds the verdicts, not the evidence: times from injection, each signature check's worst
value and verdict, the matrix row, the alerts that fired and the score. The evidence (samples
and timeline) is in ``recording.tar.gz`` next to it.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from sandbox.drill.result import DrillResult

__all__ = ["OUTCOME_FILE", "AlertOutcome", "CheckOutcome", "DrillOutcome"]

OUTCOME_FILE = "result.json"


class _Record(BaseModel):
    # A check at 0 against a `below` threshold has an infinite margin: kept as "Infinity".
    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="strings")


class CheckOutcome(_Record):
    name: str
    kind: str  # anomalous | normal | recovery
    breached: bool
    ok: bool  # what the incident wants: anomalous breached, the others never breached
    worst: float | None
    margin: float | None  # worst against the threshold (2 or more is a clear anomaly)
    error: str = ""


class AlertOutcome(_Record):
    name: str
    severity: str
    verdict: str  # expected | tolerated | NOT expected, as the manifest counts it
    fired_after_s: float | None  # from injection


class DrillOutcome(_Record):
    incident: str
    mode: str
    seed: int
    ok: bool
    failures: list[str]
    gave_up: bool
    paged_after_s: float | None  # from injection
    recovered_after_s: float | None  # from the first mitigation
    score: float | None
    signature: list[CheckOutcome]
    matrix: dict[str, bool]  # incident -> whether this run satisfies its whole signature
    alerts: list[AlertOutcome]

    @classmethod
    def of(cls, result: DrillResult) -> DrillOutcome:
        alerts = result.incident.manifest.alerts
        return cls(
            incident=result.incident.id,
            mode=result.mode,
            seed=result.seed,
            ok=result.ok,
            failures=list(result.failures),
            gave_up=result.gave_up,
            paged_after_s=result.since_inject(result.paged_at),
            recovered_after_s=result.time_to_recover,
            score=None if result.score is None else result.score.total,
            signature=[
                CheckOutcome(
                    name=r.check.name,
                    kind=r.kind,
                    breached=r.breached,
                    ok=r.ok,
                    worst=r.worst,
                    margin=r.margin,
                    error=r.error,
                )
                for r in result.signature
            ],
            matrix=dict(result.matrix),
            alerts=[
                AlertOutcome(
                    name=a.name,
                    severity=a.severity,
                    verdict=alerts.verdict(a.name),
                    fired_after_s=result.since_inject(a.first_at),
                )
                for a in result.alerts
            ],
        )

    def write(self, out_dir: Path) -> Path:
        path = out_dir / OUTCOME_FILE
        path.write_text(self.model_dump_json(indent=2) + "\n")
        return path

    @classmethod
    def read(cls, out_dir: Path) -> DrillOutcome:
        return cls.model_validate_json((out_dir / OUTCOME_FILE).read_text())
