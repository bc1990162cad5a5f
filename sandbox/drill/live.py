"""What a running drill shows to other processes: ``<run_dir>/drill/live.json``.

The drill writes it at each step (start, inject, page, end); the console reads it to show the
page, deep links and hints. Hints the learner asks for in the console are timeline events
(``drill.hint`` with ``via: console``), so the drill counts them in its score like its own.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sandbox import timeline

__all__ = ["LIVE_FILE", "console_hints", "read_live", "write_live"]

LIVE_FILE = Path("drill") / "live.json"


def write_live(run_dir: Path, state: dict[str, Any]) -> Path:
    """Replace the state atomically (the console may read at any moment)."""
    path = run_dir / LIVE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state, sort_keys=True, default=str, indent=1))
    tmp.replace(path)
    return path


def read_live(run_dir: Path) -> dict[str, Any] | None:
    """The last drill's state, or None when no drill ran in this run directory."""
    try:
        state = json.loads((run_dir / LIVE_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def console_hints(run_dir: Path, since: float) -> int:
    """How many hints the console gave since ``since``."""
    return sum(
        1
        for e in timeline.read(run_dir, since=since)
        if e.get("kind") == "drill.hint" and e.get("detail", {}).get("via") == "console"
    )
