"""The interactive questions in a real pseudo-terminal with scripted answers, and the clear
refusal (not a hang) without a terminal."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from sandbox.settings import REPO_ROOT
from tests.terminal import Terminal

# Runs the drill's real question code against the shipped kv-exhaustion manifest.
SCRIPT = r"""
import random
from sandbox.drill.manifest import load_incident
from sandbox.drill.prompts import Prompter
from sandbox.drill.quiz import ask_diagnosis, ask_mitigation, explain
m = load_incident("kv-exhaustion").manifest
hints = iter(m.hints)
p = Prompter(on_hint=lambda: next(hints, None), on_status=lambda: "  FIRING TimeToFirstTokenSLOBreach (value 7.1)")
key = p.ask_key("menu (d/m): ", ["d", "m"])
grade = ask_diagnosis(p, m.diagnosis, random.Random(3))
chosen = ask_mitigation(p, list(m.mitigations))
print(f"RESULT key={key} fraction={grade.fraction:.3f} mitigation={chosen.id}", flush=True)
explain(p, grade, [])
"""


def _terminal(script: str) -> Terminal:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return Terminal([sys.executable, "-c", script], REPO_ROOT, env)


def test_scripted_learner_in_a_pseudo_terminal() -> None:
    t = _terminal(SCRIPT)
    try:
        t.expect("menu")
        t.send("h")  # a hint while investigating
        t.expect("hint: Open the serving overview")
        t.send("s")  # what the pager shows
        t.expect(r"FIRING TimeToFirstTokenSLOBreach \(value 7.1\)")
        t.send("x")
        t.expect("please type one of d, m")
        t.send("d")
        t.expect(r"answer \[a/b/c/d")
        t.send(t.option("engine.queue, waiting for KV cache room"))  # phase: right
        t.expect(r"answer \[a/b/c")
        t.send(t.option("rate doubled"))  # cause: partly
        t.expect(r"answer \[a/b/c")
        t.send(t.option("Preemptions while KV usage"))  # evidence: right
        t.expect("explanations come with the report")
        during = t.output
        t.expect(r"answer \[1/2/3")
        t.send(t.option("--max-num-seqs"))
        t.expect("RESULT key=d fraction=0.750 mitigation=more-seqs")
        t.expect("the answer key")
        t.wait()
    finally:
        t.close()
    # No verdict or explanation while the diagnosis is being answered.
    assert "preempts running sequences only when" not in during
    assert "vLLM preempts running sequences only when" in t.output  # at the end


def test_quit_is_clear() -> None:
    t = _terminal(SCRIPT)
    try:
        t.expect("menu")
        t.send("q")
        t.expect("GiveUp")  # the drill catches it; here it surfaces as the exception name
    finally:
        t.close()


def test_no_terminal_fails_at_once_not_hangs() -> None:
    start = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from sandbox.cli import main; main()",
            "incident",
            "run",
            "kv-exhaustion",
            "--mode",
            "interactive",
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert result.returncode != 0
    assert "interactive mode needs a terminal" in result.stderr and "--mode auto" in result.stderr
    assert time.monotonic() - start < 30
