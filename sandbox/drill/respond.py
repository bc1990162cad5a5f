"""The response to the page, in on-call order.

``auto``: judge the window, then apply the reference mitigation (the incident's end-to-end test).

``interactive``: the learner investigates and may mitigate first and diagnose afterwards, or
the other way round. A mitigation that does not help gets its verdict ``recovery.verdict_s``
after it took effect, is undone, and the learner chooses again. Nothing names the scenario
before the learner has answered; the answer key comes once the drill is over.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sandbox.drill.context import DrillContext
from sandbox.drill.grading import shuffled_mitigations
from sandbox.drill.page import pager_view, scenario_clock
from sandbox.drill.prompts import Prompter
from sandbox.drill.quiz import ask_diagnosis, ask_mitigation, explain
from sandbox.drill.recovery import apply, judge_window, undo, wait_anomalies
from sandbox.drill.result import DrillFailure

__all__ = ["respond_auto", "respond_interactive"]

MENU = (
    "d = answer the diagnosis, m = apply a mitigation, h = hint, s = what the pager shows, q = quit"
)


def respond_auto(d: DrillContext) -> None:
    wait_anomalies(d)
    judge_window(d, until=time.time())
    attempt = apply(d, d.m.reference_mitigation)
    d.result.attempts.append(attempt)
    if not attempt.recovered:
        raise DrillFailure(
            "recovery",
            f"not recovered within {d.m.recovery.timeout_s:.0f} s of "
            f"the reference mitigation ({attempt.mitigation.id})",
        )


def respond_interactive(d: DrillContext, prompter_factory: Callable[..., Prompter]) -> None:
    hints = iter(d.m.hints)

    def hint() -> str | None:
        text = next(hints, None)
        if text is not None:
            d.result.hints_used += 1
            d.event("drill.hint", n=d.result.hints_used)
        return text

    prompter = prompter_factory(on_hint=hint, on_status=lambda: pager_view(d))
    remaining = shuffled_mitigations(list(d.m.mitigations), d.rng)
    recovered = False
    prompter.say("\nInvestigate (dashboards, traces), then answer and act in the order you choose.")
    prompter.say(scenario_clock(d) + " (s shows the time left).")
    while d.result.diagnosis is None or not recovered:
        keys = [k for k, todo in (("d", d.result.diagnosis is None), ("m", not recovered)) if todo]
        key = prompter.ask_key(f"[{MENU}] ({'/'.join(keys)}): ", keys)
        if key == "d":
            d.result.diagnosis = ask_diagnosis(prompter, d.m.diagnosis, d.rng)
            d.result.diagnosed_at = time.time()
            d.event("drill.diagnosed", fraction=round(d.result.diagnosis.fraction, 2))
            continue
        if not remaining:
            raise DrillFailure("recovery", "no mitigation brought recovery")
        mitigation = ask_mitigation(prompter, remaining)
        if (d.scenario_left_s() or 0.0) <= 0:
            # The faults are gone: any mitigation would "recover" a system that is no longer broken.
            raise DrillFailure(
                "expired",
                "the scenario's faults reverted themselves (their time to live passed) before "
                "a mitigation was applied; start the drill again to retry",
            )
        remaining.remove(mitigation)
        busy_since = time.time()
        attempt = apply(d, mitigation)
        d.result.attempts.append(attempt)
        if attempt.recovered:
            recovered = True
            prompter.say("  it worked: the SLIs are back within SLO and the page resolved.")
        else:
            prompter.say("  it did not bring recovery; undoing it.")
            undo(d, mitigation)
        if d.result.diagnosis is None:
            d.result.mitigation_wait_before_diagnosis_s += time.time() - busy_since
        if not attempt.recovered:
            if not remaining:
                raise DrillFailure("recovery", "no mitigation brought recovery")
    d.revealed = True
    # The incident's own window ends where the learner first changed the system.
    judge_window(d, until=d.result.first_mitigation_at or time.time())
    explain(prompter, d.result.diagnosis, d.result.attempts)
