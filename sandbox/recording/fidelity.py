"""Does a replay answer as the source did? The same queries at the same instants, compared.

Raw selectors (no function, no range) must match exactly; anything else within ``tolerance``
(relative). An instant is compared only from Prometheus' 5-minute lookback, or the expression's
longest range window if longer, after the recording's start: before that, the source could
still see samples from before the window (a range function's, or the last sample of a series
whose Prometheus stopped without writing a staleness marker), which no recording of the window
holds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from sandbox.promapi import PrometheusClient, PrometheusError

__all__ = ["Fidelity", "compare"]

_RANGE = re.compile(r"\[(\d+)([smh])\]")
_SECONDS = {"s": 1, "m": 60, "h": 3600}


@dataclass
class Fidelity:
    expressions: int = 0
    compared: int = 0
    exact: int = 0
    within: int = 0
    worst_relative: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        return (
            f"expressions: {self.expressions}; values compared: {self.compared}; exact: "
            f"{self.exact}; within tolerance: {self.within}; largest relative difference: "
            f"{self.worst_relative:.3g}; problems: {len(self.problems)}"
        )


def longest_window_s(expr: str) -> int:
    return max((int(n) * _SECONDS[u] for n, u in _RANGE.findall(expr)), default=0)


def _answers(prom: PrometheusClient, expr: str, at: float) -> dict[str, float] | str:
    try:
        return {str(sorted(s.labels.items())): s.value for s in prom.instant(expr, at)}
    except PrometheusError as exc:
        return f"error: {exc}"


def compare(
    source: PrometheusClient,
    replay: PrometheusClient,
    exprs: Sequence[tuple[str, str]],
    start: float,
    end: float,
    every_s: float = 10.0,
    tolerance: float = 0.01,
    lookback_s: float = 300.0,
) -> Fidelity:
    """Compare ``(where, expr)`` pairs at every ``every_s`` of ``[start, end]``."""
    out = Fidelity(expressions=len(exprs))
    for where, expr in exprs:
        raw = not _RANGE.search(expr) and "(" not in expr
        at = start + max(lookback_s, longest_window_s(expr)) + 1
        while at <= end:
            want, got = _answers(source, expr, at), _answers(replay, expr, at)
            if isinstance(want, str) or isinstance(got, str):
                if want != got:
                    out.problems.append(f"{where} @{at:.0f}: source {want!r}, replay {got!r}")
            elif want.keys() != got.keys():
                out.problems.append(
                    f"{where} @{at:.0f}: series differ: source only "
                    f"{sorted(want.keys() - got.keys())[:2]}, replay only {sorted(got.keys() - want.keys())[:2]}"
                )
            else:
                for key, a in want.items():
                    b = got[key]
                    out.compared += 1
                    if a == b or (math.isnan(a) and math.isnan(b)):
                        out.exact += 1
                        continue
                    rel = abs(a - b) / max(abs(a), abs(b))
                    out.worst_relative = max(out.worst_relative, rel)
                    if raw or rel > tolerance:
                        out.problems.append(f"{where} @{at:.0f} {key}: source {a}, replay {b}")
                    else:
                        out.within += 1
            at += every_s
    return out
