"""The drill as the console shows it: the page, deep links, the timeline so far, hints on request.

Everything comes from the run directory the drill writes (``drill/live.json`` and the timeline),
so the console and the terminal are two views of one drill. A hint given here is recorded on the
timeline (``drill.hint``, ``via: console``), so the drill counts it like one asked in the terminal.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sandbox import timeline
from sandbox.drill.live import console_hints, read_live

__all__ = ["drill_view", "next_hint", "on_call_sees", "secret_since"]

# Nothing printed before the learner answers may name the fault: the timeline shows these kinds
# with their details, every other event of the drill by its kind alone.
_OPEN_DETAIL = {"drill.page", "drill.baseline_steady", "drill.traffic", "drill.end", "drill.hint"}


# While an interactive drill keeps its scenario hidden, its timeline shows what an on-call
# engineer would know: the page, the replicas coming and going, and their own actions. When the
# fault came and which changes were made before it are the scenario (a page may say "nothing was
# deployed"); the timeline marked both, by kind, on every dashboard.
_SEEN_BY_ON_CALL = (
    "drill.page",
    "drill.diagnosed",
    "drill.mitigation",
    "drill.recovered",
    "drill.hint",
    "drill.end",
    "replica.",
)


def secret_since(run_dir: Path) -> float | None:
    """When the running drill began, while it keeps its scenario hidden; else None."""
    state = read_live(run_dir)
    if state is None or state.get("scenario_shown", True) or state.get("ended_at"):
        return None
    return float(state.get("started_at") or 0)


def on_call_sees(event: dict[str, Any], hidden_from: float | None) -> bool:
    if hidden_from is None or float(event.get("ts", 0)) < hidden_from:
        return True
    return str(event.get("kind", "")).startswith(_SEEN_BY_ON_CALL)


def _hints(incident: str) -> list[str]:
    from sandbox.drill.manifest import load_incident

    try:
        return list(load_incident(incident).manifest.hints)
    except Exception:  # an unknown or broken incident: no hints rather than no page
        return []


def _event_row(event: dict[str, Any]) -> dict[str, Any]:
    kind = str(event.get("kind", ""))
    detail = event.get("detail", {}) if kind in _OPEN_DETAIL else {}
    shown = {k: v for k, v in detail.items() if k != "incident"}
    return {"time": float(event.get("ts", 0)), "kind": kind, "detail": shown}


def drill_view(run_dir: Path) -> dict[str, Any] | None:
    """The last drill of this run directory, or None when none ran."""
    state = read_live(run_dir)
    if state is None:
        return None
    started = float(state.get("started_at") or 0)
    ended = state.get("ended_at")
    events = timeline.read(run_dir, since=started - 1, until=float(ended) + 1 if ended else None)
    given = console_hints(run_dir, started)
    terminal = sum(
        1
        for e in events
        if e.get("kind") == "drill.hint" and e.get("detail", {}).get("via") != "console"
    )
    hints = _hints(str(state.get("incident", "")))
    window_start = float(state.get("injected_at") or started) - 120
    hidden_from = secret_since(run_dir)
    shown = dict(state)
    if ended is None:  # a blind drill (INCIDENT=random) must not name itself before it ends
        shown.pop("incident", None)
        shown.pop("title", None)
    return {
        **shown,
        "running": ended is None,
        "timeline": [_event_row(e) for e in events if on_call_sees(e, hidden_from)],
        "hints_given": hints[:given] if state.get("page") else [],
        "hints_left": max(0, len(hints) - given - terminal) if state.get("page") else 0,
        "window": {
            "from": int(window_start * 1000),
            "to": "now" if ended is None else int(float(ended) * 1000),
        },
    }


def next_hint(run_dir: Path) -> str | None:
    """Give the next hint of the running drill (after the page), or None when none is left."""
    view, state = drill_view(run_dir), read_live(run_dir) or {}
    if view is None or not view["running"] or not view.get("page") or view["hints_left"] <= 0:
        return None
    hints = _hints(str(state.get("incident", "")))
    given = len(view["hints_given"])
    timeline.record(
        run_dir,
        "drill.hint",
        {"incident": state.get("incident"), "via": "console", "n": given + 1},
        ts=time.time(),
    )
    return hints[given]
