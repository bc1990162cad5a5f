"""Grafana's template variables and legends, applied to panel queries and their series."""

from __future__ import annotations

import re

__all__ = ["legend", "substitute"]


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
