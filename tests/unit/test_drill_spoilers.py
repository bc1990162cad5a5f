"""Until the learner has answered, an interactive drill names neither its changes, their
parameters, its traffic profile nor the alert it waits for; in MODE=auto it says everything."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.drill.context import COVER
from sandbox.drill.result import Mode
from sandbox.drill.steady import setup
from tests.support import drill_context


@pytest.mark.parametrize("mode", ["interactive", "auto"])
def test_the_scenario_is_hidden_until_answered(tmp_path: Path, mode: Mode) -> None:
    said: list[str] = []
    d = drill_context(tmp_path / "run", mode, said)
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
    d = drill_context(tmp_path / "run", "interactive", said)
    # No engine runs here, so the change itself fails; what was said before it is the point.
    with pytest.raises(Exception):  # noqa: B017
        setup(d)
    text = "\n".join(said)
    assert COVER in text
    for secret in ("engine-kv-budget", "kv_blocks", "long-context-tenant"):
        assert secret not in text
