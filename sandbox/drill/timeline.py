"""The drill's timeline: ``<run_dir>/timeline.jsonl``, one event a line.

Each event is ``{"ts": <unix seconds>, "kind": "...", "detail": {...}}`` (the same format the
deployer writes, so the report shows deploys, fault changes and drill steps on one line). A line
is appended with one ``write`` on a file opened with O_APPEND, so processes may write at once.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

__all__ = ["TIMELINE_FILE", "read_events", "record_event"]

TIMELINE_FILE = "timeline.jsonl"


def record_event(
    run_dir: Path, kind: str, detail: dict[str, Any] | None = None, ts: float | None = None
) -> dict[str, Any]:
    event = {"ts": time.time() if ts is None else ts, "kind": kind, "detail": detail or {}}
    line = (json.dumps(event, sort_keys=True, default=str) + "\n").encode()
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / TIMELINE_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return event


def read_events(
    run_dir: Path, since: float | None = None, until: float | None = None
) -> list[dict[str, Any]]:
    """Events in time order between ``since`` and ``until``; a line cut short by a crash is skipped."""
    try:
        lines = (run_dir / TIMELINE_FILE).read_text().splitlines()
    except FileNotFoundError:
        return []
    events = []
    for line in lines:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        ts = float(event.get("ts", 0))
        if (since is not None and ts < since) or (until is not None and ts > until):
            continue
        events.append(event)
    return sorted(events, key=lambda e: e["ts"])
