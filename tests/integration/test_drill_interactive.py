"""The interactive drill end to end, through a pseudo-terminal, on the real local stack: a
scripted learner mitigates before diagnosing, tries the tempting wrong mitigation first (its
verdict comes 75 s after it took effect, and it is undone), then the right one, then answers the
diagnosis. Nothing printed before the answers names the scenario. (First passed on 2026-12-05,
in 736 s on a 2-core machine busy with other work.)

It is also the live proof of its incident: the drill's outcome, recording and clean-up are
checked as the auto test checks the others' (drill_checks.py), and the auto test leaves it out.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import pytest

from sandbox.drill.manifest import load_incident
from sandbox.settings import REPO_ROOT
from tests.integration.drill_checks import (
    INTERACTIVE_INCIDENT,
    assert_drill_outcome,
    assert_recording_replays,
    assert_stack_clean,
    drill_timeout_s,
)
from tests.support import StackHandle
from tests.terminal import Terminal

pytestmark = pytest.mark.integration

INCIDENT = INTERACTIVE_INCIDENT
# The wrong mitigation's verdict and undo (up to 200 s) come on top of an auto drill's bounds.
WRONG_MITIGATION_S = 200.0


@pytest.mark.timeout(drill_timeout_s(INCIDENT, extra_s=WRONG_MITIGATION_S))
def test_mitigate_first_wrong_one_undone_then_diagnose(
    local_stack: StackHandle, tmp_path: Path
) -> None:
    m = load_incident(INCIDENT).manifest
    wrong = next(x for x in m.mitigations if not x.correct)
    right = m.reference_mitigation
    settings = local_stack.settings
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        # The session's stack: its run directory and ports.
        **{
            f"SANDBOX_{k.upper()}": str(v)
            for k, v in settings.model_dump().items()
            if k.endswith("_port") or k in ("run_dir", "engine_python", "model_dir")
        },
    }
    argv = [
        sys.executable,
        "-c",
        "from sandbox.cli import main; main()",
        "incident",
        "run",
        INCIDENT,
        "--mode",
        "interactive",
        "--no-up",
        "--seed",
        "11",
        "--report-dir",
        str(tmp_path),
    ]
    t = Terminal(argv, REPO_ROOT, env)
    try:
        t.expect("PAGE after", timeout_s=m.timing.baseline_timeout_s + m.timing.page_timeout_s + 60)
        before_page = t.output
        t.expect(r"\(d/m\)")
        t.send("s")  # the pager: the page firing, and how long the scenario stays broken
        t.expect(f"FIRING {m.alerts.page_alert}")  # a warning, but the alert that paged
        t.expect("stays broken for")
        t.expect(r"\(d/m\)")
        t.send("m")
        t.expect(r"answer \[1/2")
        t.send(t.option(wrong.title))
        asked = time.monotonic()
        t.expect("undoing it", timeout_s=200)
        verdict_s = time.monotonic() - asked
        t.expect(r"\(d/m\)", timeout_s=120)
        t.send("m")
        t.expect(r"answer \[1")
        t.send(t.option(right.title))
        t.expect("it worked", timeout_s=m.recovery.timeout_s + 60)
        t.expect(r"\(d\)")
        t.send("d")
        for q in m.diagnosis:
            best = next(c for c in q.choices if c.points >= 1)
            t.expect(re.escape(q.question))
            t.expect(r"answer \[")
            t.send(t.option(best.text))
        t.expect("the answer key", timeout_s=120)
        code = t.wait(timeout_s=300)
    finally:
        t.close()
    # No spoiler before the page: no change, parameter, profile or awaited alert named. The
    # first line echoes the incident the learner asked for by name, so it is not a spoiler.
    echoed, before = before_page.split("PAGE after")[0].split("\n", 1)
    assert echoed.rstrip().endswith(f"incident {INCIDENT}"), echoed
    for secret in [
        "engine-restart",
        "canary",
        "deploy-canary",
        m.workload.profile,
        m.alerts.page_alert,
    ]:
        assert secret not in before, secret
    assert "setting up the scenario" in before_page
    # Its engine restart, then 75 s of watching (VERDICT_S + hold_s), then the undo.
    assert 75 < verdict_s < 150, verdict_s
    assert code == 0, t.output[-3000:]
    assert "score:" in t.output
    outcome = assert_drill_outcome(tmp_path, INCIDENT)
    assert outcome.mode == "interactive" and outcome.score is not None
    assert_recording_replays(tmp_path, INCIDENT, settings.prometheus_url)
    assert_stack_clean(local_stack)
