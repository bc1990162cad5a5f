"""The incident format: ``incidents/<id>/incident.yaml`` (+ ``notes.md``), validated here.

``docs/incident-format.md`` explains every field for authors. A bad manifest raises
``ManifestError`` naming the file and the dotted path of each bad field, e.g.
``incidents/kv-exhaustion/incident.yaml: mitigations.1.action.params.kv_blocks: ...``.
Changes named in ``setup``, ``faults`` and mitigation actions are checked against the fault
registry, and their parameters against the change's own parameter model.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sandbox.exceptions import ConfigError
from sandbox.settings import REPO_ROOT
from sandbox.slos import SloError, load_slos
from sandbox.validation import field_problems

__all__ = [
    "NOTES_SECTIONS",
    "ChangeSpec",
    "Check",
    "Choice",
    "Incident",
    "IncidentManifest",
    "ManifestError",
    "Mitigation",
    "Question",
    "SetupStep",
    "incidents_dir",
    "list_incidents",
    "load_incident",
    "pick_incident",
]

NOTES_SECTIONS = ("Mechanism", "Why it matters", "Tradeoffs", "Common mistakes")
ID_PATTERN = r"^[a-z0-9][a-z0-9-]*$"


class ManifestError(ConfigError):
    """A manifest is invalid; the message names the file and each bad field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChangeSpec(_Strict):
    """One change of the fault registry with its parameters (validated against the change)."""

    change: str = Field(description="a name from `sandbox faults list`")
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known(self) -> ChangeSpec:
        from faults import REGISTRY, ParamError

        if self.change not in REGISTRY:
            raise ValueError(
                f"unknown change {self.change!r}; known: {', '.join(sorted(REGISTRY))}"
            )
        try:
            REGISTRY[self.change].parse(self.params)
        except ParamError as exc:
            raise ValueError(str(exc)) from None
        return self


class SetupStep(ChangeSpec):
    scale_with_load: list[str] = Field(
        default_factory=list,
        description=(
            "numeric params that are rates sized on the machine the incident was tuned on: "
            "multiplied by the drill's load scale (workload.engine_reference), like the "
            "profile's rates; such a step is applied once the probe has read the engine"
        ),
    )

    @model_validator(mode="after")
    def _scalable(self) -> SetupStep:
        for name in self.scale_with_load:
            value = self.params.get(name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"scale_with_load: {name!r} is not a numeric param of this step")
        return self

    def params_at(self, scale: float) -> dict[str, Any]:
        """The params, with those of ``scale_with_load`` times ``scale``."""
        if not self.scale_with_load or scale == 1.0:
            return dict(self.params)
        return {
            k: round(v * scale, 3) if k in self.scale_with_load else v
            for k, v in self.params.items()
        }


class FaultStep(ChangeSpec):
    id: str = Field(pattern=ID_PATTERN, description="name mitigations use to refer to this fault")
    after_s: float = Field(
        0.0,
        ge=0,
        le=3600,
        description="seconds after the injection time, not counting the time earlier steps took to apply",
    )
    ttl_s: float = Field(1200.0, gt=0, le=86400, description="reverts itself after this long")


class Check(_Strict):
    """A PromQL expression and the side of a threshold that counts as *breached*."""

    name: str = Field(min_length=1)
    expr: str = Field(min_length=1)
    above: float | None = Field(
        None, description="breached when the value is above this (a number, or slo.<name>)"
    )
    below: float | None = Field(
        None, description="breached when the value is below this (a number, or slo.<name>)"
    )
    unit: str = Field("", description="how to print the value: s, ratio, 1/s, ...")
    no_data: Literal["breached", "ok"] = Field(
        "breached",
        description="how to count an empty result (default: breached, so a broken query is seen)",
    )

    @field_validator("above", "below", mode="before")
    @classmethod
    def _slo_threshold(cls, value: object) -> object:
        # `above: slo.ttft_s` cites stack/slos.yaml, so an SLO's number is written in one place.
        if isinstance(value, str) and value.startswith("slo."):
            try:
                return load_slos().value(value.removeprefix("slo."))
            except SloError as exc:
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _one_side(self) -> Check:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of above or below")
        return self

    def breached(self, value: float | None) -> bool:
        if value is None or value != value:  # no data, or NaN
            return self.no_data == "breached"
        return value > self.above if self.above is not None else value < self.below  # type: ignore[operator]

    def scaled(self, factor: float) -> Check:
        """The same check with its threshold times ``factor``: a rate the profile's rates
        set, read against a load that was scaled to the engine."""
        if factor == 1.0:
            return self
        if self.above is not None:
            return self.model_copy(update={"above": self.above * factor})
        return self.model_copy(update={"below": (self.below or 0.0) * factor})

    def describe(self) -> str:
        side = f"> {self.above:g}" if self.above is not None else f"< {self.below:g}"
        return f"{self.name} {side}{(' ' + self.unit) if self.unit else ''}"


class Signature(_Strict):
    anomalous: list[Check] = Field(min_length=1, description="must be breached during the incident")
    normal: list[Check] = Field(
        min_length=1, description="must never be breached while the fault is active"
    )
    grace_s: float = Field(
        60.0,
        ge=0,
        le=900,
        description="after the page, time left for anomalous checks to breach (auto mode watches all of it)",
    )


class Alerts(_Strict):
    expected: list[str] = Field(min_length=1, description="alert names that must fire")
    page: str | None = Field(
        None, description="the alert whose arrival is the page (default: first expected)"
    )
    tolerated: list[str] = Field(
        default_factory=list,
        description="pages that may fire as a side effect the notes explain: not required, not a failure",
    )

    @model_validator(mode="after")
    def _page_expected(self) -> Alerts:
        if self.page is not None and self.page not in self.expected:
            raise ValueError(f"page {self.page!r} is not in expected")
        return self

    @property
    def page_alert(self) -> str:
        return self.page or self.expected[0]

    def verdict(self, name: str) -> str:
        """How a fired alert counts: expected, tolerated, or NOT expected."""
        if name in self.expected:
            return "expected"
        return "tolerated" if name in self.tolerated else "NOT expected"


class Choice(_Strict):
    id: str = Field(pattern=r"^[a-z]$", description="the letter the learner types")
    text: str = Field(min_length=1)
    points: float = Field(
        0.0, ge=0.0, le=1.0, description="credit for choosing it (1 = fully right)"
    )
    explanation: str = Field(
        min_length=1, description="shown after the answer: why it is right or wrong"
    )


class Question(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    question: str = Field(min_length=1)
    choices: list[Choice] = Field(min_length=2)
    weight: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _gradable(self) -> Question:
        ids = [c.id for c in self.choices]
        if len(ids) != len(set(ids)):
            raise ValueError(f"choice ids must be unique, got {ids}")
        if max(c.points for c in self.choices) < 1.0:
            raise ValueError("at least one choice must be fully right (points: 1)")
        return self


class RevertFault(_Strict):
    revert_fault: str = Field(description="id of a fault of this incident: remove the cause")


class Mitigation(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    title: str = Field(
        min_length=1, description="what the learner chooses, as an operator would say it"
    )
    action: ChangeSpec | RevertFault
    correct: bool
    reference: bool = Field(False, description="what MODE=auto applies; exactly one, and correct")
    why: str = Field(min_length=1, description="why it works, or why it is tempting and wrong")
    settle_s: float = Field(
        0.0, ge=0, le=600, description="wait this long after applying before checking recovery"
    )


class Recovery(_Strict):
    slis: list[Check] = Field(min_length=1, description="must all be unbreached for hold_s")
    alerts_resolved: bool = True
    hold_s: float = Field(30.0, ge=0, le=1800)
    timeout_s: float = Field(300.0, gt=0, le=3600)


class Timing(_Strict):
    baseline_min_s: float = Field(
        30.0, ge=0, le=1800, description="baseline runs at least this long"
    )
    steady_s: float = Field(
        20.0, ge=0, le=900, description="no check breached and no alert for this long"
    )
    baseline_timeout_s: float = Field(240.0, gt=0, le=3600)
    page_timeout_s: float = Field(
        300.0, gt=0, le=3600, description="the page must come within this"
    )
    diagnosis_target_s: float = Field(
        600.0, gt=0, description="time to diagnose that earns the full time bonus"
    )
    mitigation_target_s: float = Field(
        600.0, gt=0, description="page to recovery that earns the full time-to-mitigate bonus"
    )


class Workload(_Strict):
    profile: str = Field(min_length=1, description="load generator profile name (or path)")
    traffic_check: Check | None = Field(
        None,
        description=(
            "breached while traffic is NOT flowing (baseline waits); its threshold is a rate "
            "at the profile's own rates, scaled with them (engine_reference)"
        ),
    )
    engine_reference: float | None = Field(
        None,
        gt=0,
        description=(
            "what sandbox.engine_speed's probe read (requests/s) on the machine the incident "
            "was tuned on; set, the profile's rates are scaled by today's reading over it"
        ),
    )


class Panel(_Strict):
    title: str
    expr: str
    unit: str = ""


class Report(_Strict):
    dashboard: str | None = Field(
        None, description="dashboard the renderer should draw for the incident window"
    )
    panels: list[Panel] = Field(
        default_factory=list, description="key panels charted in the report"
    )


class IncidentManifest(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    title: str = Field(min_length=1)
    difficulty: Literal["beginner", "intermediate", "advanced"]
    concepts: list[str] = Field(min_length=1)
    page: str = Field(
        min_length=1, description="what the learner reads when paged: symptoms, never the cause"
    )
    workload: Workload
    setup: list[SetupStep] = Field(
        default_factory=list, description="applied before the baseline, reverted at the end"
    )
    faults: list[FaultStep] = Field(min_length=1)
    timing: Timing = Field(default_factory=Timing)
    signature: Signature
    alerts: Alerts
    diagnosis: list[Question] = Field(min_length=1)
    mitigations: list[Mitigation] = Field(min_length=2)
    recovery: Recovery
    hints: list[str] = Field(min_length=1, description="in order, from gentle to giving it away")
    report: Report = Field(default_factory=Report)

    @field_validator("concepts")
    @classmethod
    def _concepts(cls, value: list[str]) -> list[str]:
        bad = [c for c in value if not re.match(ID_PATTERN, c)]
        if bad:
            raise ValueError(f"concepts are lower-case-with-dashes: {bad}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> IncidentManifest:
        fault_ids = [f.id for f in self.faults]
        if len(fault_ids) != len(set(fault_ids)):
            raise ValueError(f"fault ids must be unique: {fault_ids}")
        mitigation_ids = [m.id for m in self.mitigations]
        if len(mitigation_ids) != len(set(mitigation_ids)):
            raise ValueError(f"mitigation ids must be unique: {mitigation_ids}")
        for m in self.mitigations:
            if isinstance(m.action, RevertFault) and m.action.revert_fault not in fault_ids:
                raise ValueError(
                    f"mitigation {m.id}: revert_fault {m.action.revert_fault!r} is not a fault id ({fault_ids})"
                )
        if not any(m.correct for m in self.mitigations):
            raise ValueError("mitigations: at least one must be correct")
        if all(m.correct for m in self.mitigations):
            raise ValueError(
                "mitigations: at least one must be tempting but wrong (correct: false)"
            )
        references = [m for m in self.mitigations if m.reference]
        if len(references) != 1 or not references[0].correct:
            raise ValueError(
                "mitigations: exactly one must be the reference (reference: true), and it must be correct"
            )
        if self.workload.engine_reference is None and any(s.scale_with_load for s in self.setup):
            raise ValueError("setup: scale_with_load needs workload.engine_reference to scale by")
        question_ids = [q.id for q in self.diagnosis]
        if len(question_ids) != len(set(question_ids)):
            raise ValueError(f"diagnosis question ids must be unique: {question_ids}")
        return self

    @property
    def reference_mitigation(self) -> Mitigation:
        return next(m for m in self.mitigations if m.reference)


class Incident(BaseModel):
    """A validated manifest with its folder and notes."""

    model_config = ConfigDict(frozen=True)

    manifest: IncidentManifest
    folder: Path
    notes: str

    @property
    def id(self) -> str:
        return self.manifest.id


def incidents_dir() -> Path:
    return REPO_ROOT / "incidents"


def _problems(exc: ValidationError) -> list[str]:
    return [f"{field}: {msg}" for field, msg in field_problems(exc, default="(top level)")]


def _check_notes(path: Path) -> str:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ManifestError(f"{path}: missing (every incident has notes.md)") from None
    headings = {m.group(1).strip().lower() for m in re.finditer(r"^##\s+(.+)$", text, re.MULTILINE)}
    missing = [s for s in NOTES_SECTIONS if s.lower() not in headings]
    if missing:
        raise ManifestError(f"{path}: missing section(s) {', '.join('## ' + s for s in missing)}")
    return text


def load_incident(ref: str | Path, root: Path | None = None) -> Incident:
    """Load an incident by id (a folder of ``root``) or by the path of its folder or manifest."""
    root = root or incidents_dir()
    path = Path(ref)
    if path.suffix in (".yaml", ".yml"):
        manifest_path = path
    elif path.is_dir():
        manifest_path = path / "incident.yaml"
    else:
        manifest_path = root / str(ref) / "incident.yaml"
    if not manifest_path.exists():
        known = ", ".join(list_incidents(root)) or "none"
        raise ManifestError(f"{manifest_path}: no such incident (known: {known})")
    try:
        data = yaml.safe_load(manifest_path.read_text())
    except yaml.YAMLError as exc:
        raise ManifestError(f"{manifest_path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{manifest_path}: the manifest must be a mapping of fields")
    try:
        manifest = IncidentManifest.model_validate(data)
    except ValidationError as exc:
        raise ManifestError(f"{manifest_path}: " + "; ".join(_problems(exc))) from None
    if manifest.id != manifest_path.parent.name:
        raise ManifestError(
            f"{manifest_path}: id: {manifest.id!r} must equal its folder name {manifest_path.parent.name!r}"
        )
    notes = _check_notes(manifest_path.parent / "notes.md")
    return Incident(manifest=manifest, folder=manifest_path.parent, notes=notes)


def list_incidents(root: Path | None = None) -> list[str]:
    root = root or incidents_dir()
    if not root.is_dir():
        return []
    return sorted(p.parent.name for p in root.glob("*/incident.yaml"))


def pick_incident(ref: str, seed: int | None, root: Path | None = None) -> Incident:
    """``random`` picks one blind (reproducibly with a seed); anything else loads by id."""
    if ref == "random":
        ids = list_incidents(root)
        if not ids:
            raise ManifestError("no incident in the catalog")
        return load_incident(random.Random(seed).choice(ids), root)
    return load_incident(ref, root)
