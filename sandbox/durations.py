"""Durations as Prometheus and Grafana write them (``500ms``, ``30s``, ``15m``, ``1h30m``), in
seconds: the one parser for a rule's ``for:``, a scrape interval, an annotation step, and the
``now-15m`` of a time range.
"""

from __future__ import annotations

import re

__all__ = ["duration_s", "relative_to_now"]

# Prometheus' duration units (a year is 365 days there).
_UNIT_S = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
    "y": 31536000.0,
}
# "ms" before "m", so 500ms is one part and not 500m followed by a stray s.
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")


def duration_s(text: str) -> float:
    """The seconds of a duration of one or more parts (``1h30m``); ValueError for anything else."""
    text = text.strip()
    parts = _PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise ValueError(f"{text!r} is not a Prometheus duration (e.g. 30s, 2m, 1h30m)")
    return sum(float(number) * _UNIT_S[unit] for number, unit in parts)


def relative_to_now(text: str, now: float) -> float | None:
    """Unix seconds of Grafana's relative times, ``now`` and ``now-<duration>``; None for any
    other text (the caller tries its other forms: Unix seconds, milliseconds, ISO 8601)."""
    text = text.strip()
    if text == "now":
        return now
    if not text.startswith("now-"):
        return None
    try:
        return now - duration_s(text.removeprefix("now-"))
    except ValueError:
        return None
