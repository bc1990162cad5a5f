"""What the sandbox reads from a PromQL expression without a full parser: the metric names it
reads and the quantiles it asks for. The dashboard grader and the drill's check of an
incident's signature both ask this, so one reader serves both. Syntax errors are left to
Prometheus, which reports them when the query runs."""

from __future__ import annotations

import re

__all__ = ["metric_names", "quantiles"]

_KEYWORDS = {
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "inf",
    "nan",
    "atan2",
}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_NAME_MATCHER = re.compile(r'__name__\s*=\s*"([^"]+)"')


def metric_names(expr: str) -> set[str]:
    """Metric names ``expr`` selects (function names, keywords, labels and durations removed)."""
    names = set(_NAME_MATCHER.findall(expr))
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text, flags=re.I
    )
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range and subquery selectors
    text = re.sub(r"\b(offset|@)\s*-?[\w.]+", " ", text)
    for match in re.finditer(r"(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def quantiles(expr: str) -> list[float]:
    """The quantiles ``expr`` computes: ``histogram_quantile(q, ...)``, ``quantile(q, ...)``,
    ``quantile_over_time(q, ...)``, a ``quantile="0.99"`` label, or a ``p95``-style name."""
    found = [
        float(q)
        for q in re.findall(
            r"\b(?:histogram_quantile|quantile|quantile_over_time)\s*\(\s*([0-9.]+)", expr
        )
    ]
    found += [float(q) for q in re.findall(r'quantile\s*=~?\s*"([0-9.]+)"', expr)]
    found += [float(p) / 100 for p in re.findall(r"(?:^|[_:])p(\d{2})(?:[_:]|$|\b)", expr)]
    return found
