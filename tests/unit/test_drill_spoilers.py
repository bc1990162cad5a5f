"""Until the learner has answered, an interactive drill names neither its changes, their
parameters, its traffic profile nor the alert it waits for; in MODE=auto it says everything."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from faults import StackContext
from sandbox.drill.context import COVER, DrillContext
from sandbox.drill.manifest import load_incident
from sandbox.drill.result import DrillOptions, DrillResult, Mode
from sandbox.drill.steady import setup
from sandbox.promapi import AlertmanagerClient, PrometheusClient
from sandbox.runtime.local import LocalRuntime
from tests.support import isolated_settings


def _context(tmp_path: Path, mode: Mode, said: list[str]) -> DrillContext:
    settings = isolated_settings(tmp_path / "run")
    runtime = LocalRuntime(settings.run_dir)
    incident = load_incident("kv-exhaustion")
    return DrillContext(
        incident=incident,
        settings=settings,
        options=DrillOptions(mode=mode),
        runtime=runtime,
        say=said.append,
        ctx=StackContext.from_settings(settings, runtime),
        prom=PrometheusClient(settings.prometheus_url),
        alertmanager=AlertmanagerClient(settings.alertmanager_url),
        result=DrillResult(incident, mode, time.time()),
        rng=random.Random(0),
    )


@pytest.mark.parametrize("mode", ["interactive", "auto"])
def test_the_scenario_is_hidden_until_answered(tmp_path: Path, mode: Mode) -> None:
    said: list[str] = []
    d = _context(tmp_path, mode, said)
    d.tell("== setup: engine-kv-budget {'kv_blocks': 24}")
    d.progress(secret=True)("waiting for TimeToFirstTokenSLOBreach to fire")
    d.progress()("engine ready")
    if mode == "interactive":
        assert said == [COVER, "  engine ready"]
        d.revealed = True
        d.tell("injected long-tenant (traffic-tenant)")
        assert said[-1] == "injected long-tenant (traffic-tenant)"
    else:
        assert said == [
            "== setup: engine-kv-budget {'kv_blocks': 24}",
            "  waiting for TimeToFirstTokenSLOBreach to fire",
            "  engine ready",
        ]


def test_setup_step_prints_the_cover_not_the_change(tmp_path: Path) -> None:
    said: list[str] = []
    d = _context(tmp_path, "interactive", said)
    # No engine runs here, so the change itself fails; what was said before it is the point.
    with pytest.raises(Exception):  # noqa: B017
        setup(d)
    text = "\n".join(said)
    assert COVER in text
    for secret in ("engine-kv-budget", "kv_blocks", "long-context-tenant"):
        assert secret not in text
