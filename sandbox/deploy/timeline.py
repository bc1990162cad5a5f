"""The drill's timeline: ``<run_dir>/timeline.jsonl``, one event a line.

Each event is ``{"ts": <unix seconds>, "kind": "...", "detail": {...}}``. Deploys, rollbacks,
weight changes, replica state changes and autoscaler decisions are written here so the drill's
report can place them next to the fault and the page. Lines are appended with one ``write`` on
a file opened with O_APPEND, so several processes (CLI, autoscaler, drill) may write at once.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

__all__ = ["TIMELINE_FILE", "read_timeline", "record", "timeline_path"]

TIMELINE_FILE = "timeline.jsonl"


def timeline_path(run_dir: Path) -> Path:
    return run_dir / TIMELINE_FILE


def record(
    run_dir: Path, kind: str, detail: dict[str, Any] | None = None, ts: float | None = None
) -> dict[str, Any]:
    """Append one event and return it."""
    event = {"ts": time.time() if ts is None else ts, "kind": kind, "detail": detail or {}}
    line = (json.dumps(event, sort_keys=True, default=str) + "\n").encode()
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(timeline_path(run_dir), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return event


def read_timeline(
    run_dir: Path, since: float | None = None, kind_prefix: str = ""
) -> list[dict[str, Any]]:
    """Events in file order, optionally from ``since`` on and of kinds starting with ``kind_prefix``.
    A line cut short by a crash is skipped."""
    try:
        lines = timeline_path(run_dir).read_text().splitlines()
    except FileNotFoundError:
        return []
    events = []
    for line in lines:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if since is not None and event.get("ts", 0) < since:
            continue
        if not str(event.get("kind", "")).startswith(kind_prefix):
            continue
        events.append(event)
    return events
