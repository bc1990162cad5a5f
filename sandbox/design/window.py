"""The grader's boundary with recordings: one ``Window`` per incident, served by a Prometheus.

``Window`` is all the grader needs: where to query, the recorded window, the fault's injection
time (before it: the recording's own baseline) and the area the incident's answer points at.
``serve_windows`` is the adapter from recording files (``sandbox.recording``) to windows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sandbox.design.areas import PHASES, ROLLOUT
from sandbox.drill.manifest import IncidentManifest, list_incidents, load_incident
from sandbox.recording import serve_recording
from sandbox.settings import REPO_ROOT

__all__ = [
    "DEFAULT_BASELINE_S",
    "RATE_WINDOW_S",
    "RECORDING_NAME",
    "Window",
    "expected_area",
    "recording_paths",
    "serve_windows",
]

RECORDING_NAME = "recording.tar.gz"
DEFAULT_BASELINE_S = 90.0
RATE_WINDOW_S = 60.0  # the dashboards' rate windows: a baseline must start this long after traffic


@dataclass(frozen=True)
class Window:
    incident: str
    prometheus_url: str
    start: float  # Unix seconds
    end: float
    injected_at: float  # [start, injected_at) is the baseline
    phase: str  # the area the incident's answer points at: a phase of docs/phases.md or "rollout"
    step_s: float = 2.0  # the recording's scrape interval; range queries use at least this
    baseline_start: float | None = None  # where the steady baseline begins (default: see below)
    traffic_start: float | None = None  # when a drill's load generator started, if known

    @property
    def ramping_at_baseline(self) -> bool:
        """Whether 1-minute rates may still be filling up during the baseline: it began less
        than a rate window after the traffic (or, traffic start unknown, is itself shorter)."""
        if self.traffic_start is not None:
            return self.baseline_from - self.traffic_start < RATE_WINDOW_S
        return self.injected_at - self.baseline_from < RATE_WINDOW_S

    @property
    def baseline_from(self) -> float:
        """The healthy reference: from ``baseline_start`` (a drill's steady traffic), else the
        last ``DEFAULT_BASELINE_S`` before the injection, never before the window."""
        if self.baseline_start is not None:
            return max(self.start, min(self.baseline_start, self.injected_at))
        return max(self.start, self.injected_at - DEFAULT_BASELINE_S)


def expected_area(manifest: IncidentManifest) -> str:
    """The phase named by the fully right answer of a diagnosis question (``engine.queue, ...``);
    for an incident whose answer names no phase but a version (a rollout), ``rollout``."""
    for question in manifest.diagnosis:
        for choice in question.choices:
            if choice.points < 1.0:
                continue
            first = re.split(r"[\s,(]", choice.text.strip(), maxsplit=1)[0].lower()
            if first in PHASES:
                return first
    text = " ".join(c.expr for c in manifest.signature.anomalous)
    if "version=" in text or "canary" in manifest.alerts.page_alert.lower():
        return ROLLOUT
    return "unknown"


def recording_paths(root: Path | None = None) -> list[Path]:
    """The shipped recordings: ``incidents/<id>/recording.tar.gz`` for every incident that has one."""
    root = root or REPO_ROOT / "incidents"
    return [
        root / i / RECORDING_NAME
        for i in list_incidents(root)
        if (root / i / RECORDING_NAME).exists()
    ]


def _traffic_since(events: Sequence[dict[str, Any]]) -> float | None:
    """When a drill's traffic started (its ``drill.traffic`` event), if the recording says."""
    for event in events:
        if event.get("kind") == "drill.traffic":
            return float(event.get("ts", 0.0))
    return None


def _steady_since(events: Sequence[dict[str, Any]], manifest_yaml: str | None) -> float | None:
    """A drill's steady baseline: its ``drill.baseline_steady`` event came ``timing.steady_s``
    after traffic settled. The window's first minutes (before traffic, then ramping up) are no
    reference for anything."""
    steady_s = 20.0
    if manifest_yaml:
        try:
            steady_s = float(
                (yaml.safe_load(manifest_yaml).get("timing") or {}).get("steady_s", 20)
            )
        except (yaml.YAMLError, AttributeError, TypeError, ValueError):
            pass
    for event in events:
        if event.get("kind") == "drill.baseline_steady":
            return float(event.get("ts", 0.0)) - steady_s
    return None


@contextmanager
def serve_windows(
    paths: Sequence[Path], skipped: list[str] | None = None
) -> Iterator[list[Window]]:
    """Serve every recording at once (one Prometheus each) and yield their windows; every
    Prometheus is stopped on leaving. The incident's expected area comes from its manifest.
    A recording without an injection (a drill that failed before its fault) has no incident to
    grade: it is left out, and said so in ``skipped``."""
    with ExitStack() as stack:
        windows = []
        for path in paths:
            served = stack.enter_context(serve_recording(path))
            incident = served.incident_id or Path(path).parent.name
            try:
                area = expected_area(load_incident(incident).manifest)
            except Exception:  # a recording of an incident no longer in the catalog
                area = "unknown"
            if served.injected_at is None:
                if skipped is not None:
                    skipped.append(f"{path}: no fault was injected in this recording; left out")
                continue
            injected = served.injected_at
            windows.append(
                Window(
                    incident,
                    served.url,
                    served.start,
                    served.end,
                    injected,
                    area,
                    served.step_s,
                    _steady_since(served.recording.events, served.recording.manifest_yaml),
                    _traffic_since(served.recording.events),
                )
            )
        yield windows
