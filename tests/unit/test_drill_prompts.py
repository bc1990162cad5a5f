"""The interactive prompts in a real pseudo-terminal with scripted answers, and the clear
refusal (not a hang) without a terminal."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time

from sandbox.settings import REPO_ROOT

# Runs the drill's real question code against the shipped kv-exhaustion manifest.
SCRIPT = r"""
from sandbox.drill.manifest import load_incident
from sandbox.drill.prompts import Prompter, GiveUp
from sandbox.drill.quiz import ask_diagnosis, ask_mitigation
m = load_incident("kv-exhaustion").manifest
hints = iter(m.hints)
p = Prompter(on_hint=lambda: next(hints, None), on_status=lambda: "  KV usage: 0.98")
p.wait_ready("Investigate; Enter = diagnose: ")
grade = ask_diagnosis(p, m.diagnosis)
chosen = ask_mitigation(p, list(m.mitigations))
print(f"RESULT fraction={grade.fraction:.3f} mitigation={chosen.id}", flush=True)
"""


def _drive(script: str, answers: list[tuple[str, str]], timeout_s: float = 30.0) -> str:
    """Run ``script`` on a pty; each time ``expect`` appears in the output, type ``send``."""
    main_fd, child_fd = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=child_fd,
        stdout=child_fd,
        stderr=child_fd,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        close_fds=True,
    )
    os.close(child_fd)
    output = b""
    pending = list(answers)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main_fd], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(main_fd, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
            while pending and pending[0][0].encode() in output.split(b"\x00")[-1]:
                expect, send = pending.pop(0)
                output = output.replace(
                    expect.encode(), b"<" + expect.encode() + b">", 1
                )  # consume the match
                os.write(main_fd, send.encode() + b"\n")
            if process.poll() is not None and not ready:
                break
        return output.decode(errors="replace")
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(5)
        os.close(main_fd)


def test_scripted_learner_in_a_pseudo_terminal() -> None:
    out = _drive(
        SCRIPT,
        [
            ("Enter = diagnose: ", "h"),  # a hint while investigating
            ("Enter = diagnose: ", "s"),  # the signals
            ("Enter = diagnose: ", ""),  # go
            ("answer [a/b/c/d", "x"),  # not a choice: asked again
            ("please type one of", "b"),  # phase: right
            ("answer [a/b/c", "a"),  # cause: wrong
            ("answer [a/b/c", "a"),  # evidence: right
            ("answer [1/2/3", "3"),  # mitigation: the tempting wrong one
        ],
    )
    assert "hint: Open the serving overview" in out
    assert "KV usage: 0.98" in out
    assert "right: vLLM's queue time" in out and "wrong: Per-token decode time" in out
    assert "RESULT fraction=0.667 mitigation=more-seqs" in out, out


def test_quit_and_end_of_input_are_clear() -> None:
    out = _drive(SCRIPT + "\n", [("Enter = diagnose: ", "q")])
    assert "GiveUp" in out  # the drill catches it; here it surfaces as the exception name


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
