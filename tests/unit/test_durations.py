"""The one duration parser: Prometheus' syntax, and Grafana's ``now-<duration>``."""

from __future__ import annotations

import pytest

from sandbox.durations import duration_s, relative_to_now


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("15s", 15.0),
        (" 2m ", 120.0),
        ("1h30m", 5400.0),
        ("1.5h", 5400.0),
        ("1d", 86400.0),
        ("1w", 604800.0),
    ],
)
def test_a_duration_is_read_in_seconds(text: str, seconds: float) -> None:
    assert duration_s(text) == seconds


@pytest.mark.parametrize("text", ["", "15", "m", "15x", "15 m", "1h 30m", "-5m"])
def test_anything_else_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match="is not a Prometheus duration"):
        duration_s(text)


def test_relative_times_count_back_from_now() -> None:
    assert relative_to_now("now", 1000.0) == 1000.0
    assert relative_to_now(" now-15m ", 1000.0) == 100.0
    assert relative_to_now("now-1.5m", 1000.0) == 910.0
    # Other forms are the caller's: Unix seconds, milliseconds, ISO 8601, or an error of its own.
    for text in ("1000", "2026-12-03T12:00:00Z", "now-", "now-15x", "now+5m", "later"):
        assert relative_to_now(text, 1000.0) is None
