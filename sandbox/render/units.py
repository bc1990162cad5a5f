"""Grafana units as the renderer shows them on axes and in stat panels."""

from __future__ import annotations

import math

__all__ = ["format_value", "unit_label"]

_SUFFIX = {"reqps": " req/s", "ops": " ops/s", "short": "", "none": "", "": ""}


def unit_label(unit: str) -> str:
    """A short name of the unit for an axis title."""
    if unit == "s":
        return "seconds"
    if unit == "percentunit":
        return "%"
    if unit.startswith("suffix:"):
        return unit.removeprefix("suffix:").strip()
    return _SUFFIX.get(unit, unit).strip()


def _number(value: float, decimals: int | None) -> str:
    if decimals is not None:
        return f"{value:.{decimals}f}"
    magnitude = abs(value)
    if magnitude >= 1e6:
        return f"{value / 1e6:.3g}M"
    if magnitude >= 1e3:
        return f"{value / 1e3:.3g}k"
    return f"{value:.3g}"


def format_value(value: float | None, unit: str, decimals: int | None = None) -> str:
    """``0.0123`` in ``s`` -> ``12.3 ms``; ``0.42`` in ``percentunit`` -> ``42%``."""
    if value is None or math.isnan(value):
        return "No data"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if unit == "s":
        magnitude = abs(value)
        if magnitude == 0:
            return "0 s"
        if magnitude < 1e-3:
            return f"{_number(value * 1e6, decimals)} µs"
        if magnitude < 1:
            return f"{_number(value * 1e3, decimals)} ms"
        if magnitude < 120:
            return f"{_number(value, decimals)} s"
        return f"{_number(value / 60, decimals)} min"
    if unit == "percentunit":
        return f"{_number(value * 100, decimals)}%"
    if unit.startswith("suffix:"):
        return f"{_number(value, decimals)} {unit.removeprefix('suffix:').strip()}"
    return f"{_number(value, decimals)}{_SUFFIX.get(unit, ' ' + unit)}"
