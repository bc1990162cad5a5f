"""What the learner's pager shows (``s``), and the time an interactive drill gives them: its
changes outlive the reference run by LEARNER_TIME_S, the pager view says how long the scenario
stays broken, and once its faults have reverted themselves no mitigation is credited."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import pytest

from faults import ChangeCategory, FaultHandle
from sandbox.drill.context import LEARNER_TIME_S, DrillContext
from sandbox.drill.page import pager_view, scenario_clock
from sandbox.drill.prompts import Prompter
from sandbox.drill.respond import respond_interactive
from sandbox.drill.result import DrillFailure
from sandbox.drill.webhook import AlertNotification
from tests.support import drill_context


def _handle(expires_in_s: float) -> FaultHandle:
    now = time.time()
    return FaultHandle(
        id="f1",
        change="traffic-tenant",
        category=ChangeCategory.FAULT,
        target="loadgen:tenant",
        params={},
        created_at=now,
        ttl_s=1200,
        expires_at=now + expires_in_s,
    )


def test_interactive_changes_live_for_the_learner(tmp_path: Path) -> None:
    auto = drill_context(tmp_path / "a", "auto", [])
    interactive = drill_context(tmp_path / "i", "interactive", [])
    assert auto.ttl_s(1800) == 1800
    assert interactive.ttl_s(1800) == 1800 + LEARNER_TIME_S
    assert interactive.budget_s() == auto.budget_s() + LEARNER_TIME_S


def test_the_clock_says_how_long_the_scenario_stays_broken(tmp_path: Path) -> None:
    d = drill_context(tmp_path / "run", "interactive", [])
    assert "not started" in scenario_clock(d)
    d.fault_handles["long-tenant"] = _handle(expires_in_s=25 * 60 + 10)
    assert scenario_clock(d) == "  the scenario stays broken for 25 more min"
    d.fault_handles["long-tenant"] = _handle(expires_in_s=-1)
    assert "time is up" in scenario_clock(d)


def test_no_mitigation_is_credited_once_the_faults_reverted(tmp_path: Path) -> None:
    d: DrillContext = drill_context(tmp_path / "run", "interactive", [])
    d.fault_handles["long-tenant"] = _handle(expires_in_s=-1)
    out = io.StringIO()

    def prompter(**callbacks: Any) -> Prompter:
        return Prompter(io.StringIO("m\n1\n"), out, require_tty=False, **callbacks)

    with pytest.raises(DrillFailure) as failure:
        respond_interactive(d, prompter)
    assert failure.value.step == "expired"
    assert d.result.attempts == []
    assert "time is up" in out.getvalue()


class AlertsNow:
    """Prometheus' /api/v1/alerts answer, as ``PrometheusClient.alerts`` returns it."""

    def __init__(self, *alerts: tuple[str, str, str]) -> None:
        self.answer = [
            {
                "state": state,
                "labels": {"alertname": name, "severity": severity},
                "annotations": {"summary": f"{name} summary"},
                "value": "0.21",
            }
            for name, severity, state in alerts
        ]

    def alerts(self) -> list[dict[str, Any]]:
        return self.answer


def test_the_pager_shows_pages_and_the_alert_that_paged(tmp_path: Path) -> None:
    d = drill_context(tmp_path / "run", "interactive", [], incident="bad-rollout")
    d.prom = AlertsNow(  # type: ignore[assignment]
        ("CanaryClientErrorRatioHigh", "warning", "firing"),
        ("TimeToFirstTokenSLOBreach", "page", "firing"),
        ("KVCacheNearFull", "warning", "firing"),
        ("ErrorBudgetBurn", "page", "pending"),
    )
    before_page = pager_view(d)
    assert "TimeToFirstTokenSLOBreach" in before_page
    assert "Canary" not in before_page and "KVCache" not in before_page
    assert "ErrorBudgetBurn" not in before_page  # pending: no pager rings for it yet
    d.result.page = AlertNotification(
        status="firing", labels={"alertname": "CanaryClientErrorRatioHigh"}
    )
    shown = pager_view(d)
    assert (
        "FIRING CanaryClientErrorRatioHigh (value 0.21): CanaryClientErrorRatioHigh summary"
        in shown
    )
    assert "KVCache" not in shown
