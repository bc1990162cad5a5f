"""The run's timeline: ``<run_dir>/timeline.jsonl``, one event a line (the core layer).

Each event is ``{"ts": <unix seconds>, "kind": "...", "detail": {...}}``. Every layer writes
here: deploys, rollbacks, replica states and autoscaler decisions (services), fault injections
and reverts (changes), drill steps (the drill), so a report can place them side by side. A line
is appended with one ``write`` on a file opened with O_APPEND, so several processes may write at
once; a line cut short by a crash is skipped when reading.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

__all__ = ["TIMELINE_FILE", "read", "record", "timeline_path"]

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


def read(
    run_dir: Path,
    since: float | None = None,
    until: float | None = None,
    kind_prefix: str = "",
) -> list[dict[str, Any]]:
    """Events in time order (stable for equal times), between ``since`` and ``until`` when
    given, of kinds starting with ``kind_prefix``."""
    try:
        lines = timeline_path(run_dir).read_text().splitlines()
    except FileNotFoundError:
        return []
    events = []
    for line in lines:
        try:
            event = json.loads(line)
            ts = float(event.get("ts", 0))
        except (json.JSONDecodeError, TypeError, ValueError, AttributeError):
            continue
        if (since is not None and ts < since) or (until is not None and ts > until):
            continue
        if not str(event.get("kind", "")).startswith(kind_prefix):
            continue
        events.append(event)
    return sorted(events, key=lambda e: float(e["ts"]))
