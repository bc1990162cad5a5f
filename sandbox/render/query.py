"""Range queries against Prometheus, with Grafana's template variables replaced."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import httpx

__all__ = ["QueryError", "Series", "legend", "query_range", "substitute"]


class QueryError(Exception):
    """Prometheus refused or failed a query; the message has the expression and the reason."""


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]
    times: tuple[float, ...]
    values: tuple[float, ...]

    @property
    def finite(self) -> bool:
        return any(math.isfinite(v) for v in self.values)


def substitute(expr: str, variables: dict[str, str], step_s: float, range_s: float) -> str:
    """Replace ``$var``/``${var}`` with the variable's All value and Grafana's interval macros."""
    macros = {
        "__rate_interval": f"{max(int(4 * step_s), 60)}s",
        "__interval": f"{max(int(step_s), 1)}s",
        "__range": f"{max(int(range_s), 1)}s",
    }
    values = {**variables, **macros}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return values.get(name, match.group(0))

    names = "|".join(sorted(map(re.escape, values), key=len, reverse=True))
    return re.sub(rf"\$\{{({names})\}}|\$({names})\b", replace, expr)


def legend(template: str, labels: dict[str, str]) -> str:
    """Grafana's ``{{label}}`` legend; without a template, the label set."""
    if not template:
        shown = {k: v for k, v in labels.items() if k != "__name__"}
        return (
            "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(shown.items())) + "}"
            if shown
            else "value"
        )
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template).strip()


def query_range(
    client: httpx.Client, prometheus_url: str, expr: str, start: float, end: float, step_s: float
) -> list[Series]:
    try:
        response = client.get(
            f"{prometheus_url.rstrip('/')}/api/v1/query_range",
            params={
                "query": expr,
                "start": f"{start:.3f}",
                "end": f"{end:.3f}",
                "step": f"{step_s:g}",
            },
        )
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise QueryError(f"{expr}: {type(exc).__name__}: {exc}") from exc
    if body.get("status") != "success":
        raise QueryError(
            f"{expr}: {body.get('errorType', 'error')}: {body.get('error', response.text[:200])}"
        )
    series = []
    for item in body["data"]["result"]:
        points = [(float(t), float(v)) for t, v in item.get("values", [])]
        series.append(
            Series(item.get("metric", {}), tuple(t for t, _ in points), tuple(v for _, v in points))
        )
    return series
