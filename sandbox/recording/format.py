"""The recording format, version 1: what each member of the file holds.

A recording is one gzip-compressed tar file (``*.tar.gz``) with these members, in this order:

``meta.json``       ``Meta`` below: format name and version, the window, the scrape interval,
                    the injection time, the incident (id and manifest hash) when there is one,
                    and the counts of what follows (a reader checks them to detect truncation).
``samples.jsonl``   one raw series a line: ``{"labels": {...}, "t0": ms, "dt": [ms...],
                    "v": [...]}``; ``t0`` is the first sample's timestamp in Unix
                    milliseconds, ``dt`` the gaps to each next sample, ``v`` the values (JSON
                    numbers, exact; ``"NaN"``, ``"+Inf"`` and ``"-Inf"`` as strings).
``spans.jsonl``     OTLP/JSON export requests of the window, as the trace sink keeps them.
``timeline.jsonl``  the drill's timeline events (``{"ts", "kind", "detail"}``).
``alerts.jsonl``    every Alertmanager webhook notification: ``{"received_at", "notification"}``.
``report.json``     the drill's outcome (free-form JSON; absent for ``sandbox record``).
``incident.yaml``   a copy of the incident manifest the drill ran (absent without an incident).

Every member but ``meta.json`` and ``samples.jsonl`` may be absent. A reader refuses a file
whose ``format`` is not ``sandbox-recording`` or whose ``version`` it does not know.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sandbox.exceptions import ConfigError

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "IncidentRef",
    "Meta",
    "RecordedSeries",
    "Recording",
    "RecordingError",
    "Window",
    "decode_value",
    "encode_value",
]

FORMAT_NAME: Literal["sandbox-recording"] = "sandbox-recording"
FORMAT_VERSION = 1

MEMBERS = (
    "meta.json",
    "samples.jsonl",
    "spans.jsonl",
    "timeline.jsonl",
    "alerts.jsonl",
    "report.json",
    "incident.yaml",
)


class RecordingError(ConfigError):
    """A recording cannot be written or read; the message names the file and the problem."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Window(_Model):
    start: float = Field(description="Unix seconds, inclusive")
    end: float = Field(description="Unix seconds, inclusive")


class IncidentRef(_Model):
    id: str
    manifest_sha256: str | None = Field(None, description="sha256 of incident.yaml as it ran")
    git_commit: str | None = Field(None, description="the sandbox's commit when recorded")


class Counts(_Model):
    series: int = 0
    samples: int = 0
    span_lines: int = 0
    events: int = 0
    notifications: int = 0


class Meta(_Model):
    model_config = ConfigDict(extra="allow", frozen=True)  # newer minor fields are kept

    format: Literal["sandbox-recording"] = FORMAT_NAME
    version: int = FORMAT_VERSION
    created_at: float
    source: Literal["drill", "record"]
    prometheus_url: str = ""
    window: Window
    scrape_interval_s: float = Field(gt=0)
    injected_at: float | None = None
    paged_at: float | None = None
    incident: IncidentRef | None = None
    matchers: list[str] = Field(default_factory=list)
    recorded_rules: list[str] = Field(
        default_factory=list,
        description="metric names that the source's rules computed (ALERTS included); a live "
        "replay drops them and lets the rules compute them again",
    )
    counts: Counts = Field(default_factory=Counts)


def encode_value(value: float) -> float | str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return value


def decode_value(raw: Any) -> float:
    if isinstance(raw, str):
        return float(raw)  # "NaN", "+Inf", "-Inf" all parse
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return float(raw)
    raise ValueError(f"{raw!r} is not a sample value")


@dataclass(frozen=True)
class RecordedSeries:
    """One series' raw samples: timestamps in Unix milliseconds, ascending."""

    labels: dict[str, str]
    times_ms: tuple[int, ...]
    values: tuple[float, ...]

    @property
    def name(self) -> str:
        return self.labels.get("__name__", "")

    def to_json(self) -> dict[str, Any]:
        t = self.times_ms
        return {
            "labels": dict(sorted(self.labels.items())),
            "t0": t[0] if t else 0,
            "dt": [b - a for a, b in itertools.pairwise(t)],
            "v": [encode_value(v) for v in self.values],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RecordedSeries:
        labels = data["labels"]
        if not isinstance(labels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
        ):
            raise ValueError("labels must map strings to strings")
        values = tuple(map(float, data["v"]))  # numbers, and "NaN", "+Inf", "-Inf"
        gaps = data["dt"]
        if gaps and min(gaps) <= 0:
            raise ValueError("timestamps must increase")
        times = list(itertools.accumulate(gaps, initial=int(data["t0"]))) if values else []
        if len(times) != len(values):
            raise ValueError(f"{len(times)} timestamps for {len(values)} values")
        return cls(labels, tuple(times), values)


@dataclass
class Recording:
    """A whole recording in memory."""

    meta: Meta
    series: list[RecordedSeries]
    spans: list[str] = field(default_factory=list)  # raw OTLP JSON lines
    events: list[dict[str, Any]] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    report: dict[str, Any] | None = None
    manifest_yaml: str | None = None

    @property
    def start(self) -> float:
        return self.meta.window.start

    @property
    def end(self) -> float:
        return self.meta.window.end

    @property
    def incident_id(self) -> str | None:
        return self.meta.incident.id if self.meta.incident else None

    @property
    def sample_count(self) -> int:
        return sum(len(s.values) for s in self.series)
