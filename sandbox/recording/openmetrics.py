"""Recorded samples as OpenMetrics text, the input of ``promtool tsdb create-blocks-from openmetrics``.

Every series is written as a family of type ``unknown`` (the recording does not keep metric
types; queries do not need them). Timestamps are seconds with a fourth decimal of 0.0004 s,
because promtool turns seconds into milliseconds by truncation: ``.123`` could come back as
``.122`` after the float multiplication, ``.1234`` always comes back as ``.123``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from pathlib import Path

from sandbox.recording.format import RecordedSeries

__all__ = ["format_timestamp", "format_value", "openmetrics_lines", "write_openmetrics"]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def format_timestamp(ms: int) -> str:
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    return f"{sign}{ms // 1000}.{ms % 1000:03d}4"


def format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def openmetrics_lines(series: Iterable[RecordedSeries]) -> Iterator[str]:
    by_name: dict[str, list[RecordedSeries]] = {}
    for s in series:
        by_name.setdefault(s.name, []).append(s)
    for family, members in sorted(by_name.items()):
        # Names such as foo_total or foo_bucket are not given their OpenMetrics types here; a
        # family of unknown type may carry any suffix.
        yield f"# TYPE {family} unknown\n"
        for s in members:
            labels = ",".join(
                f'{k}="{_escape(v)}"' for k, v in sorted(s.labels.items()) if k != "__name__"
            )
            head = f"{family}{{{labels}}}" if labels else family
            for t, v in zip(s.times_ms, s.values, strict=True):
                yield f"{head} {format_value(v)} {format_timestamp(t)}\n"
    yield "# EOF\n"


def write_openmetrics(path: Path, series: Iterable[RecordedSeries]) -> Path:
    with path.open("w") as out:
        out.writelines(openmetrics_lines(series))
    return path
