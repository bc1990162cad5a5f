"""What the dashboard tests share: the dashboards' and rules' queries and metric names (read by
the grader's own ``sandbox.promql.metric_names``). A Prometheus to parse and evaluate them
with is ``tests.support.throwaway_prometheus``."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sandbox.promql import metric_names
from sandbox.settings import REPO_ROOT

__all__ = [
    "DASHBOARD_FILES",
    "RULE_FILES",
    "Expr",
    "all_exprs",
    "dashboard_exprs",
    "metric_names",
    "recorded_names",
    "rule_exprs",
    "with_variables",
]

DASHBOARD_FILES = sorted((REPO_ROOT / "dashboards").glob("*.json"))
RULE_FILES = sorted((REPO_ROOT / "stack" / "prometheus" / "rules").glob("*.yml"))


@dataclass(frozen=True)
class Expr:
    where: str  # "dashboards/overview.json panel 7 A" or "rules/slo-alerts.yml TimeToFirstTokenSLOBreach"
    expr: str


def dashboard_exprs() -> list[Expr]:
    found = []
    for path in DASHBOARD_FILES:
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                found.append(
                    Expr(
                        f"dashboards/{path.name} panel {panel['id']} {target.get('refId')}",
                        target["expr"],
                    )
                )
        for annotation in board.get("annotations", {}).get("list", []):
            if annotation.get("expr"):
                found.append(
                    Expr(
                        f"dashboards/{path.name} annotation {annotation['name']}",
                        annotation["expr"],
                    )
                )
    return found


def _rules() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                yield path, rule


def rule_exprs() -> list[Expr]:
    return [
        Expr(f"rules/{path.name} {rule.get('alert') or rule.get('record')}", rule["expr"])
        for path, rule in _rules()
    ]


def all_exprs() -> list[Expr]:
    return dashboard_exprs() + rule_exprs()


def recorded_names() -> set[str]:
    return {rule["record"] for _, rule in _rules() if "record" in rule}


def with_variables(expr: str) -> str:
    """A dashboard query as Grafana sends it with every variable at All."""
    return re.sub(r"\$(version|engine|tenant)\b", ".*", expr)
