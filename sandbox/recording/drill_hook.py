"""The recording every drill writes at its end: ``record_drill(drill)``.

The window runs from ``LEAD_S`` before the drill started (so rates and ``for:`` at the drill's
first instant have their history) to its end. Everything comes from the live stack: raw samples
of every series from Prometheus, the trace sink's spans of the window, the drill's timeline,
the pages the drill's webhook received, the drill's outcome and a copy of the manifest. A
failure here is reported and never fails the drill.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from sandbox.promapi import PrometheusClient
from sandbox.recording.archive import write_recording
from sandbox.recording.capture import capture_series
from sandbox.recording.format import IncidentRef, Meta, Recording, Window
from sandbox.settings import REPO_ROOT, Settings
from sandbox.tracesink.store import spans_path

if TYPE_CHECKING:
    from sandbox.drill.runner import Drill, DrillResult

__all__ = [
    "LEAD_S",
    "RECORDING_NAME",
    "drill_outcome",
    "record_drill",
    "rule_outputs",
    "spans_between",
]

LEAD_S = 120.0
RECORDING_NAME = "recording.tar.gz"
RULES_DIR = REPO_ROOT / "stack" / "prometheus" / "rules"


def rule_outputs(rules_dir: Path = RULES_DIR) -> list[str]:
    """Metric names the sandbox's rules write: every ``record:`` name, and ALERTS."""
    names = {"ALERTS", "ALERTS_FOR_STATE"}
    for path in sorted(rules_dir.glob("*.yml")):
        for group in (yaml.safe_load(path.read_text()) or {}).get("groups", []):
            for rule in group.get("rules", []):
                if "record" in rule:
                    names.add(rule["record"])
    return sorted(names)


def _span_times(export: dict[str, Any]) -> Iterable[float]:
    for resource in export.get("resourceSpans", []):
        for scope in resource.get("scopeSpans", []):
            for span in scope.get("spans", []):
                raw = span.get("startTimeUnixNano")
                if raw is not None:
                    yield int(raw) / 1e9


def spans_between(path: Path, start: float, end: float) -> list[str]:
    """The trace sink's lines (the rotated file first) with a span starting in the window."""
    kept = []
    for file in (path.with_name(path.name + ".1"), path):
        try:
            lines = file.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            continue
        for line in lines:
            try:
                times = list(_span_times(json.loads(line)))
            except (ValueError, AttributeError):
                continue  # a line cut short by a crash
            if any(start <= t <= end for t in times):
                kept.append(line)
    return kept


def drill_outcome(result: DrillResult) -> dict[str, Any]:
    """The drill's outcome as plain JSON: what a replay grades against."""
    return {
        "ok": result.ok,
        "mode": result.mode,
        "started_at": result.started_at,
        "ended_at": result.ended_at,
        "injected_at": result.injected_at,
        "paged_at": result.paged_at,
        "page": result.page.name if result.page else None,
        "diagnosed_at": result.diagnosed_at,
        "first_mitigation_at": result.first_mitigation_at,
        "judged_until": result.judged_until,
        "recovered_at": result.recovered_at,
        "attempts": [
            {
                "mitigation": a.mitigation.id,
                "correct": a.mitigation.correct,
                "recovered": a.recovered,
                "applied_at": a.applied_at,
            }
            for a in result.attempts
        ],
        "signature": [
            {
                "name": r.check.name,
                "kind": r.kind,
                "ok": r.ok,
                "breached": r.breached,
                "first_breach_at": r.first_breach_at,
                "worst": r.worst,
                "error": r.error,
            }
            for r in result.signature
        ],
        "signature_at_page": result.signature_at_page,
        "failures": result.failures,
        "hints_used": result.hints_used,
        "score": None
        if result.score is None
        else {"total": result.score.total, "parts": result.score.parts},
    }


def _git_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def build_drill_recording(
    result: DrillResult,
    settings: Settings,
    notifications: list[dict[str, Any]],
    progress: Callable[[str], None] | None = None,
) -> Recording:
    start = result.started_at - LEAD_S
    end = result.ended_at or time.time()
    with PrometheusClient(settings.prometheus_url, timeout_s=60) as prom:
        series = capture_series(prom, start, end, progress=progress)
    manifest_path = result.incident.folder / "incident.yaml"
    manifest = manifest_path.read_text() if manifest_path.exists() else None
    meta = Meta(
        created_at=time.time(),
        source="drill",
        prometheus_url=settings.prometheus_url,
        window=Window(start=start, end=end),
        scrape_interval_s=settings.scrape_interval_s,
        injected_at=result.injected_at,
        paged_at=result.paged_at,
        incident=IncidentRef(
            id=result.incident.id,
            manifest_sha256=hashlib.sha256(manifest.encode()).hexdigest() if manifest else None,
            git_commit=_git_commit(),
        ),
        recorded_rules=rule_outputs(),
    )
    return Recording(
        meta=meta,
        series=series,
        spans=spans_between(spans_path(settings.run_dir), start, end),
        events=[e for e in result.events if start <= float(e.get("ts", 0)) <= end],
        notifications=notifications,
        report=drill_outcome(result),
        manifest_yaml=manifest,
    )


def record_drill(drill: Drill, say: Callable[[str], None] = print) -> Path | None:
    """Write the drill's recording next to its report; None (and a message) when it cannot."""
    result = drill.result
    receiver = getattr(drill, "receiver", None)
    received = list(getattr(receiver, "received", []))
    notifications = [{"received_at": ts, "notification": n.model_dump()} for ts, n in received]
    out_dir = (
        result.report_paths[0].parent
        if result.report_paths
        else drill.options.report_dir or drill.settings.run_dir / "reports"
    )
    try:
        recording = build_drill_recording(result, drill.settings, notifications)
        path = write_recording(out_dir / RECORDING_NAME, recording)
    except Exception as exc:  # a recording must never fail the drill
        say(f"  recording failed: {type(exc).__name__}: {exc}")
        return None
    size_kib = path.stat().st_size / 1024
    say(
        f"recording: {path} ({size_kib:.0f} KiB, {recording.meta.counts.series} series); "
        f"replay it with `sandbox replay {path}`"
    )
    return path
